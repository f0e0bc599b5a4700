"""The Python API (edgec.build, edgec.validate, edgec.compare, edgec.Build): the README's example runs as shown,
and the API gives what the command line gives."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import numpy as np
import onnx
import pytest

import edgec
from edgec.cli import main
from edgec.errors import EdgecError
from edgec.examples import convnet, sample_inputs

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_api_example_runs(tmp_path, monkeypatch, capsys):
    block = re.search(r"<!-- api-example -->\n```python\n(.*?)```\n<!-- /api-example -->", README.read_text(), re.S)
    assert block, "README.md has no api-example block"
    monkeypatch.chdir(tmp_path)
    exec(compile(block.group(1), "README.md api-example", "exec"), {})
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "build/convnet/convnet.h 9408 bytes of arena"
    assert re.fullmatch(r"\[( *\d)+\]", printed[1])
    assert re.fullmatch(r"SQNR \d+\.\d dB, bit-exact 100%, passed True", printed[2]), printed[2]
    assert (tmp_path / "build" / "convnet" / "harness" / "libconvnet.so").is_file()


def test_api_matches_the_command_line(tmp_path, capsys):
    model = convnet()
    onnx.save(model, tmp_path / "m.onnx")
    np.savez(tmp_path / "calib.npz", **sample_inputs(model, 16, seed=1))
    np.savez(tmp_path / "x.npz", **sample_inputs(model, 3, seed=2))
    b = edgec.build(tmp_path / "m.onnx", quantize="int8", calib=tmp_path / "calib.npz", out=tmp_path / "api",
                    per_channel=False)
    assert isinstance(b, edgec.Build) and b.name == "m" and b.header.is_file()
    assert b.report == json.loads((tmp_path / "api" / "edgec.json").read_text())
    assert main(["build", str(tmp_path / "m.onnx"), "--quantize", "int8", "--calib", str(tmp_path / "calib.npz"),
                 "--per-tensor", "-o", str(tmp_path / "cli")]) == 0
    assert (tmp_path / "api" / "m.c").read_text() == (tmp_path / "cli" / "m.c").read_text()
    assert main(["run", str(tmp_path / "cli"), "--inputs", str(tmp_path / "x.npz"), "-o", str(tmp_path / "y.npz")]) == 0
    from_file, loaded = b.run(tmp_path / "x.npz"), edgec.Build.load(tmp_path / "cli")
    from_arrays = loaded.run(dict(np.load(tmp_path / "x.npz")))
    for y in (from_file, from_arrays):
        assert np.array_equal(y["output"], np.load(tmp_path / "y.npz")["output"])
    capsys.readouterr()
    assert main(["validate", str(tmp_path / "m.onnx"), "--quantize", "int8", "--calib", str(tmp_path / "calib.npz"),
                 "--inputs", str(tmp_path / "x.npz"), "--json"]) == 0
    cli_report = json.loads(capsys.readouterr().out)
    report = edgec.validate(tmp_path / "m.onnx", quantize="int8", calib=tmp_path / "calib.npz",
                            inputs=tmp_path / "x.npz")
    assert report.pop("passed") is True and report == cli_report
    with pytest.raises(TypeError, match="per_chanel"):
        edgec.build(tmp_path / "m.onnx", per_chanel=False)
    with pytest.raises(EdgecError, match=r"the arrays: input array 'input' has shape \(2, 3, 28, 28\)"):
        b.run({"input": np.zeros((2, 3, 28, 28), np.float32)})


def test_api_compare_rows_and_their_reproduce_commands(tmp_path, capsys):
    model = convnet()
    onnx.save(model, tmp_path / "my model.onnx")  # a space: the command is quoted for the shell
    np.savez(tmp_path / "calib.npz", **sample_inputs(model, 8, seed=1))
    np.savez(tmp_path / "x.npz", **sample_inputs(model, 4, seed=2))
    grid = [edgec.compare.Config("float32"), edgec.compare.Config("int8 per-channel", "int8")]
    rows = edgec.compare(tmp_path / "my model.onnx", calib=tmp_path / "calib.npz", inputs=tmp_path / "x.npz",
                         grid=grid, out=tmp_path / "c", jobs=1)
    assert [r["config"] for r in rows] == ["float32", "int8 per-channel"] and all("error" not in r for r in rows)
    assert json.loads((tmp_path / "c" / "results.json").read_text())[1]["config"] == "int8 per-channel"
    assert rows[1]["bitexact"] == 1.0
    capsys.readouterr()
    argv = shlex.split(rows[1]["command"])
    assert argv[:2] == ["edgec", "validate"] and "--calib" in argv and "--inputs" in argv
    assert main(argv[1:] + ["--json"]) == 0
    assert json.loads(capsys.readouterr().out)["sqnr_db"] == rows[1]["sqnr_db"]
