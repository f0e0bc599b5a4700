""".tflite models compile to the <kernel>_tflm kernels (TFLM's arithmetic, toolchain/ops/tflm.py), whose outputs equal
the numpy integer reference and TFLM's own outputs (the tflite-micro package's interpreter) bit for bit on the host
and on the emulated targets (DSP, Helium, NEON); ONNX builds keep edgec's own arithmetic."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tflite_builder as tb
from helpers import assert_bitexact, build_and_run, integer_samples, make_model, needs_target
from onnx import helper

from edgec.build import BuildOptions, build
from edgec.errors import EdgecError
from edgec.reference import quantize_feeds, run_graph
from edgec.runner import run_build
from edgec.validate import tflm_outputs

pytest.importorskip("tflite_micro", reason="needs the tflite extra: pip install 'edgec[tflite]'")

MODELS = {"chain": lambda: tb.chain_model(np.random.default_rng(3)),
          "chain_extreme": lambda: tb.chain_model(np.random.default_rng(3), extreme=True),
          "head": lambda: tb.head_model(np.random.default_rng(4))}


R = np.random.default_rng(7)


def op_chain():
    """An ONNX model: Conv (+Relu), a residual Add, Sub, Mul, AveragePool, MaxPool, Gemm, Softmax."""
    def w(*shape: int, scale: float = 0.5) -> np.ndarray:
        return (R.standard_normal(shape) * scale).astype(np.float32)

    n = helper.make_node
    nodes = [n("Conv", ["input", "W0", "B0"], ["c0"], pads=[1, 1, 1, 1]), n("Relu", ["c0"], ["r0"]),
             n("Conv", ["r0", "W1", "B1"], ["c1"], pads=[1, 1, 1, 1]),
             n("Add", ["r0", "c1"], ["a"]), n("Sub", ["a", "c0"], ["s"]), n("Mul", ["s", "c1"], ["m"]),
             n("AveragePool", ["m"], ["p"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
             n("MaxPool", ["p"], ["q"], kernel_shape=[2, 2]),
             n("Flatten", ["q"], ["f"]), n("Gemm", ["f", "WG", "BG"], ["g"], transB=1),
             n("Softmax", ["g"], ["output"])]
    inits = {"W0": w(6, 3, 3, 3, scale=0.4), "B0": w(6, scale=0.1), "W1": w(6, 6, 3, 3, scale=0.2),
             "B1": w(6, scale=0.1), "WG": w(10, 6 * 4 * 4, scale=0.1), "BG": w(10, scale=0.1)}
    return make_model(nodes, {"input": [1, 3, 9, 10]}, {"output": None}, inits)


def kernels(out: Path) -> set[str]:
    meta = json.loads((out / "edgec.json").read_text())
    return {k for layer in meta["layers"] for k in layer["kernels"]}


def check(tmp_path: Path, model: str, target: str, count: int = 6) -> set[str]:
    """Build the generated model for target; its outputs equal the integer reference and TFLM's. Returns the
    kernels it uses."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / f"{model}.tflite"
    path.write_bytes(MODELS[model]())
    out, _, g = build(BuildOptions(path, target=target, out=tmp_path / "b"))
    samples = integer_samples(g, count)
    res = run_build(out, samples)
    want = tflm_outputs(str(path), g, samples)
    for s, raw, w in zip(samples, res.raw, want):
        ref = run_graph(g, quantize_feeds(g, s), int8=True)
        for name in g.outputs:
            np.testing.assert_array_equal(raw[name], ref[name])
            np.testing.assert_array_equal(raw[name], w[name].reshape(raw[name].shape))
    return kernels(out)


def test_edgec_arithmetic_unchanged(tmp_path):
    """An ONNX model quantized by edgec computes edgec's kernels, not their TFLM builds."""
    samples, res, g, _ = build_and_run(op_chain(), tmp_path, quantize="int8")
    assert g.arithmetic == "edgec"
    assert_bitexact(g, samples, res)
    assert not any("tflm" in k for k in kernels(tmp_path / "build"))


def test_chain_host(tmp_path):
    used = check(tmp_path, "chain", "host")
    assert {"ec_conv2d_s8_tflm", "ec_add_s8_tflm", "ec_mul_s8_tflm", "ec_avgpool_s8_tflm", "ec_softmax_tflm_s8",
            "ec_maxpool_s8", "ec_fully_connected_s8_tflm"} <= used


def test_head_host(tmp_path):
    assert {"ec_lut_s8", "ec_avgpool_s8_tflm", "ec_fully_connected_s8_tflm"} <= check(tmp_path, "head", "host")


def test_extreme_requantization_host(tmp_path):
    """Output scales far below input x weight (requantization shifts > 0: left shifts that wrap, saturation) and
    far above it."""
    check(tmp_path, "chain_extreme", "host")
    g = build(BuildOptions(tmp_path / "chain_extreme.tflite", out=tmp_path / "b2"))[2]
    shifts = [int(s) for node in g.nodes if node.op == "Conv" for s in node.q["shift"]]
    assert max(shifts) > 0 and min(shifts) < -10


def test_refuses_what_it_cannot_compute(tmp_path):
    """A LOGISTIC whose output scale is not TFLM's 1/256 stops the build instead of computing edgec's arithmetic."""
    path = tmp_path / "m.tflite"
    path.write_bytes(tb.unary_model("LOGISTIC", (1, 4, 8, 8), 1 / 128, 0))
    with pytest.raises(EdgecError, match="TFLM"):
        build(BuildOptions(path, out=tmp_path / "b"))
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize("target", [pytest.param(t, marks=needs_target(t))
                                    for t in ("cortex-m7", "cortex-m55", "cortex-a53")])
def test_targets(target, tmp_path):
    """The DSP (SMMULR output stage), Helium (VQRDMULH and a rounding shift) and NEON kernels with TFLM's
    arithmetic, the extreme requantizations and the elementwise tables."""
    used = check(tmp_path / "c", "chain", target, count=3)
    assert any(k.endswith("_tflm") and k != "ec_softmax_tflm_s8" for k in used)
    check(tmp_path / "x", "chain_extreme", target, count=3)
    check(tmp_path / "h", "head", target, count=3)
