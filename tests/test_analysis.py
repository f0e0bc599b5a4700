"""Quantization error analysis: noise against the step^2/12 model, clipping rate, ordering, CLI."""

from __future__ import annotations

import json

import numpy as np
import onnx
from helpers import make_model
from onnx import helper

from edgec.analysis import quant_report
from edgec.build import prepare_graph
from edgec.cli import main
from edgec.quantize import quantize_graph


def test_uniform_noise_and_clipping(tmp_path):
    model = make_model([helper.make_node("Relu", ["input"], ["output"])], {"input": [1, 4000]},
                       {"output": [1, 4000]})
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    g = prepare_graph(path)
    quantize_graph(g, {"input": (-1.0, 1.0), "output": (0.0, 1.0)})
    rng = np.random.default_rng(0)
    samples = [{"input": rng.uniform(-1.1, 1.1, (1, 4000)).astype(np.float32)} for _ in range(5)]
    rows = {r["tensor"]: r for r in quant_report(g, samples)}
    x = rows["input"]
    assert abs(x["noise_var"] / x["noise_var_model"] - 1) < 0.1  # uniform data: the classic model holds
    assert abs(x["clip_rate"] - 0.1 / 1.1) < 0.02  # |x| > 1 for 1/11 of the values
    report = quant_report(g, samples)
    assert [r["sqnr_accumulated_db"] for r in report] == sorted(r["sqnr_accumulated_db"] for r in report)


def test_report_and_per_layer_commands(tmp_path, capsys):
    from edgec.examples import convnet, sample_inputs

    model = convnet()
    src, calib = tmp_path / "c.onnx", tmp_path / "calib.npz"
    onnx.save(model, src)
    np.savez(calib, **sample_inputs(model, 8, seed=1))
    assert main(["quantize", str(src), "--calib", str(calib), "-o", str(tmp_path / "q.onnx"), "--report"]) == 0
    out = capsys.readouterr().out
    assert "SQNR accum." in out and "output" in out
    assert main(["validate", str(src), "--quantize", "int8", "--calib", str(calib), "--inputs", str(calib),
                 "--per-layer", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {r["tensor"] for r in report["per_layer"]} >= {"input", "output"}
