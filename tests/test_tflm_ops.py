"""Graphs built with TFLM's arithmetic (Graph.arithmetic == "tflm", as the TFLite front end sets it) compile to the
<kernel>_tflm kernels, whose outputs equal the numpy integer reference (toolchain/ops/tflm.py) bit for bit on the host
and on the emulated targets (DSP, Helium, NEON); edgec's own arithmetic is untouched."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import HAVE_ARM, assert_bitexact, build_and_run, make_model, needs_target
from onnx import helper
from test_ops import random_convs

import edgec.build
from edgec.errors import EdgecError

R = np.random.default_rng(7)


def w(*shape: int, scale: float = 0.5) -> np.ndarray:
    return (R.standard_normal(shape) * scale).astype(np.float32)


def n(op: str, ins: list[str], outs: list[str], **attrs):
    return helper.make_node(op, ins, outs, **attrs)


def op_chain():
    """Conv (+Relu), a residual Add, Sub, Mul, AveragePool with padding at the borders, MaxPool, Gemm, Softmax."""
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


def head():
    """Conv, Tanh, GlobalAveragePool (TFLM's MEAN), Gemm, LeakyRelu, Gemm, Sigmoid."""
    nodes = [n("Conv", ["input", "W0", "B0"], ["c0"], strides=[2, 2]), n("Tanh", ["c0"], ["t"]),
             n("GlobalAveragePool", ["t"], ["p"]), n("Flatten", ["p"], ["f"]),
             n("Gemm", ["f", "WG", "BG"], ["g"], transB=1), n("LeakyRelu", ["g"], ["l"], alpha=0.2),
             n("Gemm", ["l", "WH"], ["h"], transB=1), n("Sigmoid", ["h"], ["output"])]
    inits = {"W0": w(8, 3, 3, 3, scale=0.4), "B0": w(8, scale=0.1), "WG": w(5, 8), "BG": w(5, scale=0.1),
             "WH": w(4, 5)}
    return make_model(nodes, {"input": [1, 3, 11, 9]}, {"output": None}, inits)


HEAD_QUANT = {"t": (1.0 / 128.0, 0), "output": (1.0 / 256.0, -128)}  # TFLM's TANH and LOGISTIC outputs


@pytest.fixture
def tflm_arithmetic(monkeypatch):
    """Builds load their graph with arithmetic "tflm"; fixed output quantizations can be given per tensor."""
    fixed: dict[str, tuple[float, int]] = {}
    load = edgec.build.load_onnx

    def load_tflm(*args, **kwargs):
        g = load(*args, **kwargs)
        g.arithmetic = "tflm"
        for name, quant in fixed.items():
            g.tensors[name].fixed_quant = quant
        return g

    monkeypatch.setattr(edgec.build, "load_onnx", load_tflm)
    return fixed


def kernels(tmp_path) -> set[str]:
    meta = json.loads((tmp_path / "build" / "edgec.json").read_text())
    return {k for layer in meta["layers"] for k in layer["kernels"]}


def test_edgec_arithmetic_unchanged(tmp_path):
    """Without the TFLite front end nothing changes: edgec's kernels, not their TFLM builds."""
    samples, res, g, _ = build_and_run(op_chain(), tmp_path, quantize="int8")
    assert g.arithmetic == "edgec"
    assert_bitexact(g, samples, res)
    assert not any(k.endswith("_tflm") or "tflm" in k for k in kernels(tmp_path))


@pytest.mark.parametrize("seed", range(3))
def test_random_convs_host(tflm_arithmetic, seed, tmp_path):
    samples, res, g, _ = build_and_run(random_convs(seed), tmp_path, quantize="int8")
    assert_bitexact(g, samples, res)
    assert all(k.endswith("_tflm") or k == "ec_transpose" for k in kernels(tmp_path))


def test_op_chain_host(tflm_arithmetic, tmp_path):
    samples, res, g, _ = build_and_run(op_chain(), tmp_path, quantize="int8", n_samples=6)
    assert_bitexact(g, samples, res)
    assert {"ec_add_s8_tflm", "ec_mul_s8_tflm", "ec_avgpool_s8_tflm", "ec_softmax_tflm_s8",
            "ec_maxpool_s8"} <= kernels(tmp_path)


def test_head_host(tflm_arithmetic, tmp_path):
    tflm_arithmetic.clear()
    tflm_arithmetic.update(HEAD_QUANT)
    samples, res, g, _ = build_and_run(head(), tmp_path, quantize="int8", n_samples=6)
    assert_bitexact(g, samples, res)
    assert {"ec_lut_s8", "ec_avgpool_s8_tflm", "ec_fully_connected_s8_tflm"} <= kernels(tmp_path)


def test_extreme_requantization_host(tflm_arithmetic, tmp_path):
    """Output scales far below input * weight (requantization shifts > 0: left shifts that wrap, saturation) and
    far above it (shifts near -31)."""
    tflm_arithmetic.update({"c0": (1e-5, 3), "c1": (40.0, -100)})
    samples, res, g, _ = build_and_run(op_chain(), tmp_path, quantize="int8")
    assert_bitexact(g, samples, res)
    shifts = [int(s) for node in g.nodes if node.op == "Conv" for s in node.q["shift"]]
    assert max(shifts) > 0 and min(shifts) < -10


@pytest.mark.parametrize("op", ["PRelu", "HardSigmoid", "Sigmoid"])
def test_refuses_what_it_cannot_compute(tflm_arithmetic, op, tmp_path):
    """An integer op without TFLM's arithmetic here (PRelu's kernel, a HardSigmoid table, a Sigmoid whose output
    scale is not TFLM's 1/256) stops the build with a message instead of computing edgec's arithmetic."""
    extra = {"slope": w(2, 1, 1)} if op == "PRelu" else {}
    model = make_model([n("Conv", ["input", "W"], ["c"]), n(op, ["c", *extra], ["output"])], {"input": [1, 2, 3, 3]},
                       {"output": None}, {"W": w(2, 2, 1, 1), **extra})
    with pytest.raises(EdgecError, match=f"{op} .*TFLM"):
        build_and_run(model, tmp_path, quantize="int8")


@pytest.mark.skipif(not HAVE_ARM, reason="needs arm-none-eabi-gcc and qemu-system-arm")
def test_cortex_m7(tflm_arithmetic, tmp_path):
    """The DSP-extension kernels (SMMULR output stage) with TFLM's arithmetic."""
    samples, res, g, _ = build_and_run(random_convs(0), tmp_path / "c", quantize="int8", target="cortex-m7")
    assert_bitexact(g, samples, res)
    assert {"ec_conv2d_im2col_s8_tflm", "ec_depthwise_conv2d_3x3_s8_tflm"} <= kernels(tmp_path / "c")
    samples, res, g, _ = build_and_run(op_chain(), tmp_path / "o", quantize="int8", target="cortex-m7")
    assert_bitexact(g, samples, res)
    tflm_arithmetic.clear()
    tflm_arithmetic.update(HEAD_QUANT)
    samples, res, g, _ = build_and_run(head(), tmp_path / "h", quantize="int8", target="cortex-m7")
    assert_bitexact(g, samples, res)


@pytest.mark.parametrize("target", [pytest.param(t, marks=needs_target(t)) for t in ("cortex-m55", "cortex-a53")])
def test_vector_targets(tflm_arithmetic, target, tmp_path):
    """The Helium and NEON kernels with TFLM's arithmetic (VQRDMULH and a rounding shift with the negative fixup),
    on random layers and on the op chain with extreme requantizations."""
    samples, res, g, _ = build_and_run(random_convs(1), tmp_path / "c", quantize="int8", target=target)
    assert_bitexact(g, samples, res)
    assert any(("_mve_" in k or "_neon_" in k) and k.endswith("_tflm") for k in kernels(tmp_path / "c"))
    tflm_arithmetic.update({"c0": (1e-5, 3), "c1": (40.0, -100)})
    samples, res, g, _ = build_and_run(op_chain(), tmp_path / "o", quantize="int8", target=target)
    assert_bitexact(g, samples, res)
    tflm_arithmetic.clear()
    tflm_arithmetic.update(HEAD_QUANT)
    samples, res, g, _ = build_and_run(head(), tmp_path / "h", quantize="int8", target=target)
    assert_bitexact(g, samples, res)
