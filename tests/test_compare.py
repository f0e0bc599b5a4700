"""edgec compare: outputs exist and agree with edgec validate, failures stay in their row, the cache is used."""

from __future__ import annotations

import csv
import json

import numpy as np
import onnx
import pytest

from edgec.cli import main
from edgec.examples import convnet, sample_inputs

GRID = """
[[config]]
name = "float32"

[[config]]
name = "int8"
quantize = "int8"

[[config]]
name = "magnitude 60% int8"
quantize = "int8"
prune = "magnitude"
sparsity = 0.6

[[config]]
name = "broken 3:7"
prune = "n:m"
pattern = "3:7"
"""


@pytest.fixture
def files(tmp_path):
    model = convnet()
    src = tmp_path / "convnet.onnx"
    onnx.save(model, src)
    np.savez(tmp_path / "calib.npz", **sample_inputs(model, 16, seed=1))
    np.savez(tmp_path / "eval.npz", **sample_inputs(model, 6, seed=2))
    (tmp_path / "grid.toml").write_text(GRID)
    return src, tmp_path / "calib.npz", tmp_path / "eval.npz", tmp_path / "grid.toml"


def test_compare_grid(files, tmp_path, capsys):
    src, calib, ev, grid = files
    out = tmp_path / "out"
    argv = ["compare", str(src), "--calib", str(calib), "--eval", str(ev), "--grid", str(grid), "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "broken 3:7: FAILED" in printed and "Pareto front" in printed
    rows = json.loads((out / "results.json").read_text())
    assert [r["config"] for r in rows] == ["float32", "int8", "magnitude 60% int8", "broken 3:7"]
    assert "does not divide" in rows[3]["error"]  # isolated: the other rows finished
    with open(out / "results.csv") as f:
        assert len(list(csv.DictReader(f))) == 4
    html = (out / "report.html").read_text()
    assert "edgec validate" in html and "broken 3:7" in html
    pngs = sorted(out.glob("*.png"))
    if pngs:  # with matplotlib
        assert html.count("data:image/png;base64,") == len(pngs)
    assert rows[1]["bitexact"] == 1.0 and rows[2]["weights_removed"] == int(0.6 * 288)  # conv2 (first, last kept)

    # The same numbers as a separate edgec validate of the int8 row.
    assert main(["validate", str(src), "--quantize", "int8", "--calib", str(calib), "--inputs", str(ev), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["sqnr_db"] == pytest.approx(rows[1]["sqnr_db"], rel=1e-9)
    assert report["top1_agreement"] == rows[1]["top1_agreement"]

    # A rerun takes every finished row from the cache.
    assert main(argv) == 0
    again = json.loads((out / "results.json").read_text())
    assert [r.get("cached", False) for r in again] == [True, True, True, False]
    assert again[1]["sqnr_db"] == rows[1]["sqnr_db"]


def test_compare_accuracy_with_labels(files, tmp_path, capsys):
    src, calib, _, _ = files
    import onnxruntime as ort

    # inputs of std 20: this untrained convnet predicts class 2 for most inputs in [0, 1], varied classes here
    x = (np.random.default_rng(2).standard_normal((6, 1, 1, 28, 28)) * 20).astype(np.float32)
    sess = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"])
    pred = np.array([int(np.argmax(sess.run(None, {"input": x[i]})[0])) for i in range(6)])
    assert len(set(pred.tolist())) >= 4  # a constant output scores at most 2/6 on the labels below
    label = pred.copy()
    label[4:] = (pred[4:] + 1) % 10  # labels onnxruntime gets right for 4 of the 6 samples
    ev = tmp_path / "labelled.npz"
    np.savez(ev, input=x, label=label)
    grid = tmp_path / "g.toml"
    grid.write_text('[[config]]\nname = "float32"\n')
    out = tmp_path / "o"
    assert main(["compare", str(src), "--calib", str(calib), "--eval", str(ev), "--labels", "label", "--grid",
                 str(grid), "--out", str(out)]) == 0
    row = json.loads((out / "results.json").read_text())[0]
    assert row["float_accuracy"] == pytest.approx(4 / 6)
    assert row["accuracy"] == pytest.approx(4 / 6)  # float C predicts what onnxruntime predicts
