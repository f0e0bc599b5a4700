"""edgec compare --scheduler: the grid's configurations as tasks on a real Dask cluster (a LocalCluster of two
worker processes on 127.0.0.1) give the same results.json rows as the local process pool."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

import edgec
from edgec.cli import main
from edgec.compare import Config
from edgec.examples import convnet, sample_inputs

distributed = pytest.importorskip("distributed")

GRID = [Config("float32"), Config("int8", "int8", calibration="minmax"),
        Config("broken 3:7", prune="n:m", pattern="3:7")]
GRID_TOML = """
[[config]]
name = "float32"

[[config]]
name = "int8"
quantize = "int8"
calibration = "minmax"

[[config]]
name = "broken 3:7"
prune = "n:m"
pattern = "3:7"
"""
TIMING = {"time_s", "build_s"}  # wall-clock seconds: the only fields that depend on the run


def _rows(path) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in TIMING} for r in json.loads(path.read_text())]


def test_compare_on_a_dask_cluster_gives_the_local_rows(tmp_path, capsys):
    model = convnet()
    src = tmp_path / "convnet.onnx"
    onnx.save(model, src)
    np.savez(tmp_path / "calib.npz", **sample_inputs(model, 8, seed=1))
    np.savez(tmp_path / "eval.npz", **sample_inputs(model, 4, seed=2))
    common = dict(calib=tmp_path / "calib.npz", inputs=tmp_path / "eval.npz", grid=GRID)
    local = edgec.compare(src, out=tmp_path / "local", jobs=2, **common)
    assert [("error" in r) for r in local] == [False, False, True] and local[1]["bitexact"] == 1.0

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  host="127.0.0.1") as cluster:
        remote = edgec.compare(src, out=tmp_path / "api", scheduler=cluster.scheduler_address, **common)
        grid = tmp_path / "grid.toml"
        grid.write_text(GRID_TOML)
        assert main(["compare", str(src), "--calib", str(tmp_path / "calib.npz"), "--inputs",
                     str(tmp_path / "eval.npz"), "--grid", str(grid), "-o", str(tmp_path / "cli"), "--scheduler",
                     cluster.scheduler_address]) == 0
    want = _rows(tmp_path / "local" / "results.json")
    assert [r["config"] for r in want] == [c.name for c in GRID] and "does not divide" in want[2]["error"]
    assert _rows(tmp_path / "api" / "results.json") == want
    assert _rows(tmp_path / "cli" / "results.json") == want
    assert [{k: v for k, v in r.items() if k not in TIMING} for r in remote] == want
    assert not (tmp_path / "api" / "work").exists() or not any((tmp_path / "api" / "work").rglob("*.c"))


def test_compare_with_no_scheduler_there(tmp_path, capsys):
    src = tmp_path / "convnet.onnx"
    onnx.save(convnet(), src)
    code = main(["compare", str(src), "--quick", "-o", str(tmp_path / "o"), "--scheduler", "tcp://127.0.0.1:9"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("edgec: error: --scheduler tcp://127.0.0.1:9: cannot connect") and \
        "dask scheduler" in err
