"""Q-format q7 (--quantize qformat) and int4 weights (--quantize int4): format selection, the shift-only output
stage, int4 packing, C kernels bit for bit against the integer reference (host, Cortex-M7), QDQ export, digits."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from helpers import HAVE_ARM, MODELS, assert_bitexact, assert_int8_sane, build_and_run, make_model
from onnx import TensorProto, helper, numpy_helper
from test_export import qdq_outputs
from test_ops import CASES, random_convs

from edgec.cli import main
from edgec.export import export_qdq
from edgec.ops.base import frac_bits, shift_round
from edgec.ops.packing import pack_s4, unpack_s4
from edgec.quantize import pow2_params, qformat_name
from edgec.rounding import gptq_round

needs_arm = pytest.mark.skipif(not HAVE_ARM, reason="needs arm-none-eabi-gcc and qemu-system-arm")
needs_models = pytest.mark.skipif(not MODELS.exists(), reason="needs ../shared/models")

LOWBIT_CASES = ["conv2d", "conv2d_stride2_asym_pads", "conv2d_groups", "depthwise", "depthwise_multiplier2_stride2",
                "depthwise_c7_dilation2", "conv1x1_odd", "conv1d", "conv1d_depthwise", "gemm_transb0_alpha_beta",
                "flatten_gemm_nhwc", "residual_add_relu", "mul_const_nhwc_relu", "prelu", "sigmoid",
                "avgpool_include_pad", "concat_channels", "softmax_channels_nhwc"]
WEIGHTED = ("Conv", "Gemm")


def test_qformat_selection():
    # n = 7 - ceil(log2(max |x|)): Qm.n with m + n = 7 and a scale of 2^-n
    assert [int(frac_bits(a)) for a in (1.0, 0.9, 1.5, 6.0, 0.3, 200.0, 0.0)] == [7, 7, 6, 4, 8, -1, 7]
    assert pow2_params(-5.9, 2.0) == (2.0**-4, 0)
    assert pow2_params(0.0, 0.24) == (2.0**-9, 0)
    assert [qformat_name(2.0**-n, 0) for n in (7, 4, 9, -1)] == ["Q0.7", "Q3.4", "Q-2.9", "Q8.-1"]
    assert qformat_name(1 / 256, -128) == "UQ0.8"  # softmax's [0, 1) output
    assert qformat_name(0.03, 0) is None and qformat_name(0.25, 3) is None


def test_shift_round_is_rounding_half_up():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.integers(-(2**31), 2**31, 4000), np.arange(-70, 70)])
    for s in (1, 2, 5, 13, 30, 31):
        want = np.array([(int(v) + (1 << (s - 1))) >> s for v in x])  # exact integers: floor(x / 2^s + 1/2)
        np.testing.assert_array_equal(shift_round(x, s), want)
    for s in (0, -1, -7):  # a left shift: the result only feeds an int8 clamp
        np.testing.assert_array_equal(np.clip(shift_round(x, s), -128, 127), np.clip(x * 2**-s, -128, 127))


@pytest.mark.parametrize("shape", [(1, 2), (3, 5), (4, 1), (2, 8), (7, 27)])
@pytest.mark.parametrize("grouped", [True, False])
def test_int4_packing_round_trip(shape, grouped):
    w = np.random.default_rng(1).integers(-8, 8, shape).astype(np.int8)
    packed = pack_s4(w, grouped)
    assert packed.dtype == np.uint8 and packed.size == shape[0] * ((shape[1] + 1) // 2)
    np.testing.assert_array_equal(unpack_s4(packed, *shape, grouped), w)


def test_int4_nibble_order():
    assert list(pack_s4(np.array([[1, -1], [-8, 7]]), grouped=False)) == [0xF1, 0x78]  # low nibble first
    # groups of 8: byte j holds elements j (low) and j + 4 (high); the tail in pairs
    row = np.array([[0, 1, 2, 3, -4, -3, -2, -1, 5, 6, -7]])
    assert list(pack_s4(row)) == [0xC0, 0xD1, 0xE2, 0xF3, 0x65, 0x09]


def test_gptq_rounding():
    rng = np.random.default_rng(2)
    w = rng.standard_normal((6, 20))
    scales = np.abs(w).max(axis=1) / 7
    plain = np.clip(np.round(w / scales[:, None]), -7, 7)
    # uncorrelated inputs: nothing to compensate, plain rounding
    np.testing.assert_array_equal(gptq_round(w, scales, np.eye(20) * 3.0, 7), plain)
    # correlated inputs: less output error than plain rounding, weights still in [-7, 7]
    x = rng.standard_normal((500, 20)) @ rng.standard_normal((20, 20))
    q = gptq_round(w, scales, x.T @ x, 7)
    assert np.abs(q).max() <= 7

    def err(v):
        return float(np.sum((x @ (w - v * scales[:, None]).T) ** 2))

    assert err(q) < 0.7 * err(plain)


def test_qformat_channel_of_tiny_weights(tmp_path):
    """A channel whose weights are far below one output step (mobilenet_vww96 has them): its n_w is capped so that
    the shift stays at most 24 and the bias fits int32; still bit-exact."""
    rng = np.random.default_rng(3)
    wt = (rng.standard_normal((4, 3, 3, 3)) * 0.3).astype(np.float32)
    wt[1] *= 1e-9
    model = make_model([helper.make_node("Conv", ["input", "W", "B"], ["output"], pads=[1, 1, 1, 1])],
                       {"input": [1, 3, 6, 6]}, {"output": None},
                       {"W": wt, "B": np.array([0.1, 0.5, -0.2, 0.0], np.float32)})
    samples, res, g, want = build_and_run(model, tmp_path, quantize="qformat")
    assert_bitexact(g, samples, res)
    assert_int8_sane(res, want, "qformat")
    q = next(n.q for n in g.nodes if n.op == "Conv")
    assert q["shift"].max() <= 24 and np.abs(q["bias"]).max() < 2**30


def _check_qformat(g) -> None:
    for name in g.activations():  # Qm.n with zero point 0; softmax's output (and its copies) UQ0.8
        t = g.tensors[name]
        assert qformat_name(t.scale, t.zero_point) in (qformat_name(t.scale, 0), "UQ0.8"), (name, t.scale)
    for node in g.nodes:
        if node.op in WEIGHTED:
            assert "mult" not in node.q and qformat_name(float(node.q["w_scale"][0]), 0) is not None


def _check_int4(g) -> None:
    for node in g.nodes:
        if node.op in WEIGHTED:
            assert np.abs(node.q["w"]).max() <= 7


@pytest.mark.parametrize("scheme", ["qformat", "int4"])
@pytest.mark.parametrize("case", LOWBIT_CASES)
def test_lowbit_bitexact_host(scheme, case, tmp_path):
    samples, res, g, want = build_and_run(CASES[case](), tmp_path, quantize=scheme)
    assert_bitexact(g, samples, res)
    assert_int8_sane(res, want, scheme)
    (_check_qformat if scheme == "qformat" else _check_int4)(g)


@needs_arm
@pytest.mark.parametrize("scheme", ["qformat", "int4"])
@pytest.mark.parametrize("case", ["random0", "random1", "depthwise_multiplier2_stride2", "gemm_transb0_alpha_beta",
                                  "conv2d_groups", "softmax_channels_nhwc"])
def test_lowbit_bitexact_cortex_m7(scheme, case, tmp_path):
    model = random_convs(int(case[-1])) if case.startswith("random") else CASES[case]()
    samples, res, g, _ = build_and_run(model, tmp_path, quantize=scheme, target="cortex-m7")
    assert_bitexact(g, samples, res)


def test_int4_weights_take_half_the_flash(tmp_path):
    _, _, g8, _ = build_and_run(CASES["flatten_gemm_nhwc"](), tmp_path / "8", quantize="int8")
    _, _, g4, _ = build_and_run(CASES["flatten_gemm_nhwc"](), tmp_path / "4", quantize="int4")
    meta8 = json.loads((tmp_path / "8" / "build" / "edgec.json").read_text())
    meta4 = json.loads((tmp_path / "4" / "build" / "edgec.json").read_text())
    kernels = {k for layer in meta4["layers"] for k in layer["kernels"]}
    assert {"ec_conv2d_s4", "ec_fully_connected_s4"} <= kernels
    w8 = sum(g8.const(n.inputs[1]).size for n in g8.nodes if n.op in WEIGHTED)
    saved = meta8["weight_bytes"] - meta4["weight_bytes"]
    assert w8 // 2 - len(g4.nodes) <= saved <= (w8 + 1) // 2


@pytest.mark.parametrize("scheme", ["qformat", "int4"])
@pytest.mark.parametrize("case", ["conv2d_stride2_asym_pads", "depthwise_multiplier2_stride2", "residual_add_relu",
                                  "mul_const_nhwc_relu", "prelu", "flatten_gemm_nhwc", "softmax_2d"])
def test_qdq_export_runs_in_onnxruntime(scheme, case, tmp_path):
    samples, res, g, _ = build_and_run(CASES[case](), tmp_path, quantize=scheme)
    path = tmp_path / "q.onnx"
    export_qdq(g, path)
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    inits = {i.name: i for i in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type in ("QuantizeLinear", "DequantizeLinear") and scheme == "qformat":
            scale = numpy_helper.to_array(inits[node.input[1]]).astype(np.float64)
            assert np.all(np.exp2(np.round(np.log2(scale))) == scale), node.input[1]  # powers of two
    weights = [inits[n.input[0]] for n in model.graph.node if n.op_type == "DequantizeLinear"
               and n.output[0] in {i for m in model.graph.node if m.op_type in WEIGHTED for i in m.input[1:2]}]
    assert weights or not any(n.op in WEIGHTED for n in g.nodes)
    assert all(w.data_type == (TensorProto.INT4 if scheme == "int4" else TensorProto.INT8)
                           for w in weights)
    # onnxruntime computes in float between Q/DQ pairs and rounds half to even: a few LSB apart at most
    diff = np.concatenate([np.abs(ours[n] - theirs[n]).ravel() / g.tensors[n].scale
                           for ours, theirs in zip(res.outputs, qdq_outputs(path, samples)) for n in g.outputs])
    assert diff.max() <= 4.01 and diff.mean() <= 0.75, (case, diff.max(), diff.mean())


@needs_models
@pytest.mark.parametrize("scheme,name,target", [
    ("qformat", "dscnn_kws", "host"), pytest.param("qformat", "dscnn_kws", "cortex-m7", marks=needs_arm),
    ("int4", "resnet8", "host"), pytest.param("int4", "resnet8", "cortex-m7", marks=needs_arm)])
def test_mlperf_lowbit(scheme, name, target, capsys, tmp_path):
    out, inputs = tmp_path / "b", tmp_path / "inputs.npz"
    with np.load(MODELS / f"{name}.inputs.npz") as x:  # 4 test inputs keep QEMU short
        np.savez(inputs, **{k: x[k][:4] for k in x.files})
    code = main(["validate", str(MODELS / f"{name}.onnx"), "--target", target, "--quantize", scheme,
                 "--calibration", "minmax", "--calib", str(MODELS / f"{name}.calib.npz"),
                 "--inputs", str(inputs), "--json",
                 "--out", str(out)])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["bitexact_vs_reference"] == 1.0
    meta = json.loads((out / "edgec.json").read_text())
    kernels = {k for layer in meta["layers"] for k in layer["kernels"]}
    if scheme == "qformat":
        assert "ec_conv2d_q7" in kernels and "ec_depthwise_conv2d_q7" in kernels
        assert all(meta["formats"][n] for n in meta["formats"])
    else:
        assert "ec_conv2d_s4" in kernels and "ec_fully_connected_s4" in kernels
