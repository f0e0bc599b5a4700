"""The DSP, Helium and NEON elementwise and pooling kernels (ec_add_lut_s8, ec_add_lut_mve_s8, ec_mul_lut_s8,
ec_mul_lut_mve_s8, ec_add_affine_neon_s8, ec_avgpool_dsp_s8, ec_avgpool_mve_s8): bit-exact with the integer
reference on QEMU and in their plain C, for row tails of 1..31 elements, broadcasting, fused activations and zero
points at both extremes."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import onnx
import pytest
from helpers import assert_bitexact, integer_samples, make_model, needs_target
from onnx import helper

from edgec.build import BuildOptions, build
from edgec.ops import tflm
from edgec.ops.base import quantize_multiplier
from edgec.ops.binary import (
    ADD_LEFT_SHIFT,
    AFFINE_SHIFT,
    LUT_SHIFT,
    BinaryParams,
    TflmBinaryParams,
    fit_affine,
    fit_lut,
    int_arith,
)
from edgec.runner import run_build


def lut_model(seed: int):
    """Adds, Subs and Muls of contiguous rows of many lengths, broadcasting ones and fused activations, each input
    with its own range (all positive: zero point -128; all negative: 127; around 0) and scale.
    Returns (model, calib)."""
    rng = np.random.default_rng(seed)
    nodes, inputs, outputs, ranges = [], {}, {}, {}
    cases = [([1, m], [1, m]) for m in (1, 2, 3, 5, 7, 13, 16, 17, 20, 31, 33, 47, 100)]
    cases += [([1, 3, 4, 5], [1, 1, 4, 1]), ([2, 6], [6]), ([1, 5], [1]), ([1, 1, 1, 9], [1, 4, 3, 9])]
    for k, (sa, sb) in enumerate(cases):
        a, b, y = f"a{k}", f"b{k}", f"y{k}"
        inputs[a], inputs[b] = sa, sb
        op = ("Add", "Sub", "Mul")[k % 3]
        act = k % 4
        if act == 0:
            nodes.append(helper.make_node(op, [a, b], [y]))
        else:
            nodes.append(helper.make_node(op, [a, b], [f"s{k}"]))
            nodes.append(helper.make_node("Relu", [f"s{k}"], [y]) if act == 1 else
                         helper.make_node("Clip", [f"s{k}", "lo", "hi"], [y]))
        outputs[y] = None
        for name in (a, b):
            s = float(np.exp(rng.uniform(-1.0, 1.0)))
            ranges[name] = [(0.0, s), (-s, 0.0), (-s, s), (-0.3 * s, s)][int(rng.integers(4))]
    model = make_model(nodes, inputs, outputs, {"lo": np.float32(-0.5), "hi": np.float32(0.7)})
    calib = {name: np.stack([rng.uniform(lo, hi, inputs[name]).astype(np.float32) for _ in range(8)])
             for name, (lo, hi) in ranges.items()}
    return model, calib


def build_lut(seed: int, tmp_path, target: str):
    model, calib = lut_model(seed)
    path = tmp_path / "model.onnx"
    onnx.save(model, path)
    np.savez(tmp_path / "calib.npz", **calib)
    out, _, g = build(BuildOptions(path, target=target, quantize="int8", calib=tmp_path / "calib.npz",
                                   out=tmp_path / "build"))
    meta = json.loads((tmp_path / "build" / "edgec.json").read_text())
    kernels = [(layer["op"], k) for layer in meta["layers"] if layer["op"] in ("Add", "Sub", "Mul")
               for k in layer["kernels"]]
    samples = integer_samples(g, 3, seed)
    return g, samples, run_build(out, samples), kernels


def assert_lut_kernels(kernels: list[tuple[str, str]], suffix: str) -> None:
    """Every Add/Sub ran the table kernel; Muls the table kernel, or ec_mul_s8 where no table form fits (one in the
    plain C test's model), most of them the table kernel."""
    assert {k for op, k in kernels if op != "Mul"} == {"ec_add_lut" + suffix}
    muls = [k for op, k in kernels if op == "Mul"]
    assert set(muls) <= {"ec_mul_lut" + suffix, "ec_mul_s8"} and muls.count("ec_mul_lut" + suffix) >= 4


@pytest.mark.parametrize("target,seed", [pytest.param(t, s, marks=needs_target(t))
                                         for t in ("cortex-m7", "cortex-m55") for s in (1, 2)])
def test_add_lut_qemu(target, seed, tmp_path):
    """Every Add/Sub/Mul lowers to the target's table kernel and equals the reference bit for bit."""
    g, samples, res, kernels = build_lut(seed, tmp_path, target)
    assert_bitexact(g, samples, res)
    assert_lut_kernels(kernels, "_mve_s8" if target == "cortex-m55" else "_s8")


@pytest.mark.parametrize("feature", ["dsp", "mve"])
def test_add_lut_plain_c(feature, tmp_path, monkeypatch):
    """The plain C of both kernels (host), lowered as for a DSP / Helium target."""
    import edgec.build

    host = edgec.build.load_target("host")
    monkeypatch.setattr(edgec.build, "load_target",
                        lambda name: dataclasses.replace(host, features=(*host.features, feature)))
    g, samples, res, kernels = build_lut(3, tmp_path, "host")
    assert_bitexact(g, samples, res)
    assert_lut_kernels(kernels, "_mve_s8" if feature == "mve" else "_s8")


def add_q(rng: np.random.Generator, ratio: float, use_tflm: bool) -> BinaryParams:
    """Add parameters for random scales (the output's within `ratio` of the larger input's) and zero points."""
    sa, sb = np.exp(rng.uniform(-5, 0, 2))
    so = max(sa, sb) * float(np.exp(rng.uniform(-np.log(ratio), np.log(ratio))))
    za, zb, zo = (int(z) for z in rng.integers(-128, 128, 3))
    common = {"a_zp": za, "b_zp": zb, "out_zp": zo, "act_min": int(max(-128, zo)) if rng.integers(2) else -128,
              "act_max": 127, "consts": [None, None]}
    if use_tflm:
        return TflmBinaryParams(**common, **tflm.add_params(sa, sb, so))
    twice = 2 * max(sa, sb)
    (am, ash), (bm, bsh), (om, osh) = (quantize_multiplier(r) for r in
                                       (sa / twice, sb / twice, twice / ((1 << ADD_LEFT_SHIFT) * so)))
    return BinaryParams(**common, left_shift=ADD_LEFT_SHIFT, a_mult=am, a_shift=ash, b_mult=bm, b_shift=bsh,
                        out_mult=om, out_shift=osh)


@pytest.mark.parametrize("use_tflm", [False, True])
def test_fit_lut_formula(use_tflm):
    """fit_lut's form, evaluated as the C kernels do (int32 wrap-around, arithmetic shift, clamp), equals the
    integer Add/Sub/Mul on all 65,536 operand pairs; it exists for every Add/Sub with scales as trained models have
    them, and for most Muls (one slope per value of the other operand: some come too close to a fraction of small
    denominator for 20 fractional bits)."""
    rng = np.random.default_rng(7)
    v = np.arange(-128, 128, dtype=np.int64)
    misses = 0
    for i in range(60):
        op = ("Add", "Add", "Sub", "Mul")[i % 4]
        q = add_q(rng, 4.0, use_tflm)
        if op == "Mul":  # the output scale near the product's
            real = float(np.exp(rng.uniform(-3, 3))) / 128
            q.out_mult, q.out_shift = (tflm.quantize_multiplier if use_tflm else quantize_multiplier)(real)
        fit = fit_lut(op, q)
        misses += fit is None
        if fit is None and op == "Mul":
            continue
        assert fit is not None, (op, q)
        x, y = (v[None, :], v[:, None]) if fit.swap else (v[:, None], v[None, :])  # [a][b]
        mult = fit.mult if fit.mults is None else fit.mults[y & 0xFF].astype(np.int64)
        acc = (x * mult + fit.table[y & 0xFF].astype(np.int64)).astype(np.int32)  # wraps as int32 would
        got = np.clip(np.clip(acc.astype(np.int64) >> LUT_SHIFT, -128, 127), fit.act_min, fit.act_max)
        np.testing.assert_array_equal(got, int_arith(op, q, v[:, None], v[None, :]))
    assert misses <= 5  # of the 15 Muls


def test_fit_lut_declines():
    """An output scale far below the inputs' (a slope beyond the 32-bit form) gets no table form (the portable
    kernel computes it), nor does an op other than Add, Sub and Mul."""
    rng = np.random.default_rng(3)
    q = add_q(rng, 1.0, False)
    q.out_mult, q.out_shift = quantize_multiplier(2.0 * 200.0 / (1 << ADD_LEFT_SHIFT))  # so = s_in / 200
    assert fit_lut("Add", q) is None
    assert fit_lut("Div", q) is None


def assert_affine_kernels(kernels: list[tuple[str, str]]) -> None:
    """Adds and Subs ran ec_add_affine_neon_s8, or ec_add_s8 where no affine form was found (2 of the 12 in the
    models of seeds 2 and 3, whose operand scales lie further apart than a trained model's: 7 with seed 1); Muls
    ec_mul_s8."""
    adds = [k for op, k in kernels if op != "Mul"]
    assert set(adds) <= {"ec_add_affine_neon_s8", "ec_add_s8"} and adds.count("ec_add_affine_neon_s8") >= 10
    assert {k for op, k in kernels if op == "Mul"} == {"ec_mul_s8"}


@pytest.mark.parametrize("target,seed", [pytest.param(t, s, marks=needs_target(t))
                                         for t in ("cortex-a53", "cortex-a7") for s in (2, 3)])
def test_add_affine_qemu(target, seed, tmp_path):
    """The NEON Adds/Subs (16 elements per step, then one at a time; broadcasting rows in plain C) equal the
    reference bit for bit."""
    g, samples, res, kernels = build_lut(seed, tmp_path, target)
    assert_bitexact(g, samples, res)
    assert_affine_kernels(kernels)


def test_add_affine_plain_c(tmp_path, monkeypatch):
    """The plain C of ec_add_affine_neon_s8 (host), lowered as for a NEON target."""
    import edgec.build

    host = edgec.build.load_target("host")
    monkeypatch.setattr(edgec.build, "load_target",
                        lambda name: dataclasses.replace(host, features=(*host.features, "neon")))
    g, samples, res, kernels = build_lut(2, tmp_path, "host")
    assert_bitexact(g, samples, res)
    assert_affine_kernels(kernels)


@pytest.mark.parametrize("use_tflm", [False, True])
def test_fit_affine_formula(use_tflm):
    """fit_affine's form, evaluated as ec_add_affine_neon_s8 does (two products of at most 8 and 16 bits in uint32,
    int32 wrap-around, arithmetic shift, saturation, clamp), equals the integer Add/Sub on all 65,536 operand pairs;
    it exists for most random Adds/Subs (25 of these 30, 26 with TFLM's multipliers)."""
    rng = np.random.default_rng(11)
    v = np.arange(-128, 128, dtype=np.int64)
    misses = 0
    for i in range(30):
        op = ("Add", "Add", "Sub")[i % 3]
        q = add_q(rng, 2.0 if i % 2 else 4.0, use_tflm)
        fit = fit_affine(op, q)
        misses += fit is None
        if fit is None:
            continue
        assert 1 <= min(fit.x_mul8, fit.y_mul8) and max(fit.x_mul8, fit.y_mul8) <= 255
        assert 1 <= min(fit.x_mul16, fit.y_mul16) and max(fit.x_mul16, fit.y_mul16) <= 65535
        xu = (v[:, None] + 128) * fit.x_mul8 * fit.x_mul16  # [a][b], each below 2^32 as the kernel's products
        yu = ((v[None, :] & 0xFF) ^ fit.y_flip) * fit.y_mul8 * fit.y_mul16
        acc = (xu + yu + fit.bias).astype(np.uint32).astype(np.int32).astype(np.int64)  # wraps as int32 would
        got = np.clip(np.clip(acc >> AFFINE_SHIFT, -128, 127), fit.act_min, fit.act_max)
        np.testing.assert_array_equal(got, int_arith(op, q, v[:, None], v[None, :]))
    assert misses <= 5


def test_fit_affine_declines():
    """A Mul, and an output scale far below the inputs' (slopes beyond the kernel's multipliers), get no affine
    form."""
    rng = np.random.default_rng(3)
    q = add_q(rng, 1.0, False)
    assert fit_affine("Mul", q) is None
    q.out_mult, q.out_shift = quantize_multiplier(2.0 * 200.0 / (1 << ADD_LEFT_SHIFT))  # so = s_in / 200
    assert fit_affine("Add", q) is None


def pool_model(seed: int):
    """Average pools over channel counts around the kernels' groups (8 and 4 on DSP, 16 on Helium), with padding
    counted or not, strides, and a global pool; inputs all positive (zero point -128), all negative or around 0.
    Returns (model, calib)."""
    rng = np.random.default_rng(seed)
    nodes, inputs, outputs, ranges = [], {}, {}, {}
    cases = [(3, 5, 5, dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1])),
             (12, 6, 7, dict(kernel_shape=[2, 3], strides=[2, 2], pads=[0, 1, 1, 0], count_include_pad=1)),
             (21, 4, 4, dict(kernel_shape=[4, 4])),
             (37, 7, 5, dict(kernel_shape=[3, 2], strides=[1, 2], pads=[1, 0, 1, 1])),
             (16, 9, 9, dict(kernel_shape=[16, 16], pads=[4, 4, 3, 3], count_include_pad=1)),
             (64, 8, 8, None), (8, 25, 5, None)]
    for k, (c, h, w, attrs) in enumerate(cases):
        x, y = f"x{k}", f"y{k}"
        inputs[x] = [1, c, h, w]
        nodes.append(helper.make_node("GlobalAveragePool", [x], [y]) if attrs is None else
                     helper.make_node("AveragePool", [x], [y], **attrs))
        outputs[y] = None
        s = float(np.exp(rng.uniform(-1.0, 1.0)))
        ranges[x] = [(0.0, s), (-s, 0.0), (-s, s)][k % 3]
    model = make_model(nodes, inputs, outputs)
    calib = {name: np.stack([rng.uniform(lo, hi, inputs[name]).astype(np.float32) for _ in range(8)])
             for name, (lo, hi) in ranges.items()}
    return model, calib


def build_pool(tmp_path, target: str):
    model, calib = pool_model(5)
    onnx.save(model, tmp_path / "model.onnx")
    np.savez(tmp_path / "calib.npz", **calib)
    out, _, g = build(BuildOptions(tmp_path / "model.onnx", target=target, quantize="int8",
                                   calib=tmp_path / "calib.npz", out=tmp_path / "build"))
    meta = json.loads((tmp_path / "build" / "edgec.json").read_text())
    kernels = {k for layer in meta["layers"] if "Pool" in layer["op"] for k in layer["kernels"]}
    samples = integer_samples(g, 3, 5)
    return g, samples, run_build(out, samples), kernels


@pytest.mark.parametrize("target", [pytest.param(t, marks=needs_target(t)) for t in ("cortex-m7", "cortex-m55")])
def test_avgpool_simd_qemu(target, tmp_path):
    """The DSP / Helium average pools (a 16x16 window: 256 taps, the most their 16-bit sums take) equal the
    reference bit for bit."""
    g, samples, res, kernels = build_pool(tmp_path, target)
    assert_bitexact(g, samples, res)
    assert kernels == {"ec_avgpool_mve_s8" if target == "cortex-m55" else "ec_avgpool_dsp_s8"}


@pytest.mark.parametrize("feature", ["dsp", "mve"])
def test_avgpool_simd_plain_c(feature, tmp_path, monkeypatch):
    """Their plain C (host), lowered as for a DSP / Helium target."""
    import edgec.build

    host = edgec.build.load_target("host")
    monkeypatch.setattr(edgec.build, "load_target",
                        lambda name: dataclasses.replace(host, features=(*host.features, feature)))
    g, samples, res, kernels = build_pool(tmp_path, "host")
    assert_bitexact(g, samples, res)
    assert kernels == {"ec_avgpool_mve_s8" if feature == "mve" else "ec_avgpool_dsp_s8"}
