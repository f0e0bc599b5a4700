"""Operator-form quantized models (QLinearConv, QLinearMatMul, com.microsoft QLinearAdd, ..., ConvInteger,
MatMulInteger) compile to the int8 kernels with their own scales, zero points and integers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from helpers import HAVE_ARM, MODELS, SampleReader, assert_bitexact, make_model, run_cli
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static
from test_errors import assert_user_error
from test_qdq_import import lsb_apart

from edgec.build import BuildOptions, build
from edgec.runner import run_build

TARGETS = ["host", pytest.param("cortex-m7", marks=pytest.mark.skipif(not HAVE_ARM, reason="needs arm tools"))]


def residual_model() -> onnx.ModelProto:
    """Conv -> Relu -> Conv, residual Add, AveragePool, GlobalAveragePool, Flatten, MatMul."""
    rng = np.random.default_rng(3)
    n = helper.make_node
    inits = {"w1": rng.normal(0, 0.4, (6, 3, 3, 3)).astype(np.float32), "b1": rng.normal(0, 0.1, 6).astype(np.float32),
             "w2": rng.normal(0, 0.2, (6, 6, 3, 3)).astype(np.float32), "b2": rng.normal(0, 0.1, 6).astype(np.float32),
             "fc": rng.normal(0, 0.5, (6, 5)).astype(np.float32)}
    nodes = [n("Conv", ["input", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
             n("Relu", ["c1"], ["r1"], name="relu1"),
             n("Conv", ["r1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1], name="conv2"),
             n("Add", ["r1", "c2"], ["sum"], name="add"),
             n("AveragePool", ["sum"], ["pool"], kernel_shape=[2, 2], strides=[2, 2], name="pool"),
             n("GlobalAveragePool", ["pool"], ["gap"], name="gap"),
             n("Flatten", ["gap"], ["flat"], name="flatten"),
             n("MatMul", ["flat", "fc"], ["output"], name="fc")]
    return make_model(nodes, {"input": [1, 3, 8, 8]}, {"output": [1, 5]}, inits, opset=13)


def quantized(tmp: Path, model: onnx.ModelProto, fmt: QuantFormat, x: np.ndarray, **kw) -> Path:
    src, out = tmp / "float.onnx", tmp / "quantized.onnx"
    onnx.save(model, src)
    quantize_static(str(src), str(out), SampleReader(x), quant_format=fmt, per_channel=True,
                    activation_type=kw.pop("activation_type", QuantType.QInt8),
                    weight_type=kw.pop("weight_type", QuantType.QInt8), **kw)
    return out


def build_and_compare(path: Path, tmp: Path, target: str, samples: list[dict]) -> tuple[np.ndarray, object]:
    """Build, run on the target, check bit-exactness with the integer reference; |edgec - onnxruntime| in LSB."""
    out, _, g = build(BuildOptions(path, target=target, quantize="int8", out=tmp / f"b_{target}"))
    res = run_build(out, samples)
    assert_bitexact(g, samples, res)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = g.outputs[0]
    return lsb_apart(res, sess, samples, name, g.tensors[name].scale), g


@pytest.mark.parametrize("target", TARGETS)
def test_qoperator_model(tmp_path, target):
    rng = np.random.default_rng(0)
    model = residual_model()
    path = quantized(tmp_path, model, QuantFormat.QOperator, rng.uniform(-1, 1, (8, 1, 3, 8, 8)).astype(np.float32))
    ops = {n.op_type for n in onnx.load(path).graph.node}
    assert {"QLinearConv", "QLinearAdd", "QLinearAveragePool", "QLinearGlobalAveragePool", "QLinearMatMul"} <= ops
    samples = [{"input": s} for s in rng.uniform(-1, 1, (6, 1, 3, 8, 8)).astype(np.float32)]
    lsb, g = build_and_compare(path, tmp_path, target, samples)
    assert lsb.max() <= 1.01 and np.mean(lsb < 0.01) >= 0.9
    # The pooled output has its own scale (requantized in the kernel), as onnxruntime's QLinearAveragePool does.
    pool = next(n for n in g.nodes if n.op == "AveragePool")
    assert g.tensors[pool.outputs[0]].scale != g.tensors[pool.inputs[0]].scale


@pytest.mark.skipif(not (MODELS / "resnet8.onnx").is_file(), reason="needs ../shared/models")
def test_resnet8_qoperator(tmp_path):
    """QLinearConv, QLinearAdd, QLinearAveragePool, int8 Reshape, QGemm and QLinearSoftmax (measured: all 200
    values within 1 LSB of onnxruntime, 99.5% equal)."""
    calib = np.load(MODELS / "resnet8.calib.npz")["input"]
    path = quantized(tmp_path, onnx.load(MODELS / "resnet8.onnx"), QuantFormat.QOperator, calib)
    samples = [{"input": s} for s in np.load(MODELS / "resnet8.inputs.npz")["input"]]
    lsb, _ = build_and_compare(path, tmp_path, "host", samples)
    assert lsb.max() <= 1.01 and np.mean(lsb < 0.01) >= 0.95


def integer_model(rng: np.random.Generator) -> onnx.ModelProto:
    """QuantizeLinear -> ConvInteger -> Cast -> Mul -> Add -> Q/DQ -> Flatten -> QuantizeLinear -> MatMulInteger
    -> Cast -> Mul -> Q/DQ, with static scales and zero points (as one writes it with onnx.helper)."""
    n, c = helper.make_node, 4
    w = rng.integers(-127, 128, (c, 2, 3, 3)).astype(np.int8)
    w_scale = rng.uniform(0.002, 0.01, c).astype(np.float32)
    fc = rng.integers(-127, 128, (c * 16, 3)).astype(np.int8)
    fc_scale = rng.uniform(0.002, 0.01, 3).astype(np.float32)
    x_scale, y_scale, z_scale = np.float32(0.02), np.float32(0.05), np.float32(0.08)
    inits = {"x_scale": x_scale, "x_zp": np.int8(-3), "w": w, "w_zp": np.int8(0),
             "conv_scale": (x_scale * w_scale).reshape(1, c, 1, 1), "bias": rng.normal(0, 0.5, (1, c, 1, 1)),
             "y_scale": y_scale, "y_zp": np.int8(5), "fc": fc, "fc_zp": np.int8(0),
             "fc_scale": (y_scale * fc_scale).astype(np.float32), "z_scale": z_scale, "z_zp": np.int8(-7)}
    inits = {k: np.asarray(v, np.float32) if np.asarray(v).dtype == np.float64 else np.asarray(v)
             for k, v in inits.items()}
    nodes = [n("QuantizeLinear", ["input", "x_scale", "x_zp"], ["xq"], name="quantize_input"),
             n("ConvInteger", ["xq", "w", "x_zp", "w_zp"], ["acc"], pads=[1, 1, 1, 1], name="conv"),
             n("Cast", ["acc"], ["accf"], to=TensorProto.FLOAT, name="cast"),
             n("Mul", ["accf", "conv_scale"], ["scaled"], name="scale"),
             n("Add", ["scaled", "bias"], ["y"], name="bias_add"),
             n("QuantizeLinear", ["y", "y_scale", "y_zp"], ["yq"], name="quantize_y"),
             n("DequantizeLinear", ["yq", "y_scale", "y_zp"], ["yf"], name="dequantize_y"),
             n("Flatten", ["yf"], ["flat"], name="flatten"),
             n("QuantizeLinear", ["flat", "y_scale", "y_zp"], ["fq"], name="quantize_flat"),
             n("MatMulInteger", ["fq", "fc", "y_zp", "fc_zp"], ["acc2"], name="fc"),
             n("Cast", ["acc2"], ["acc2f"], to=TensorProto.FLOAT, name="cast2"),
             n("Mul", ["acc2f", "fc_scale"], ["z"], name="scale2"),
             n("QuantizeLinear", ["z", "z_scale", "z_zp"], ["zq"], name="quantize_z"),
             n("DequantizeLinear", ["zq", "z_scale", "z_zp"], ["output"], name="dequantize_z")]
    return make_model(nodes, {"input": [1, 2, 4, 4]}, {"output": [1, 3]}, inits, opset=13)


@pytest.mark.parametrize("target", TARGETS)
def test_conv_integer_and_matmul_integer(tmp_path, target):
    rng = np.random.default_rng(1)
    path = tmp_path / "integer.onnx"
    onnx.save(integer_model(rng), path)
    samples = [{"input": s} for s in rng.uniform(-2, 2, (8, 1, 2, 4, 4)).astype(np.float32)]
    lsb, g = build_and_compare(path, tmp_path, target, samples)
    assert lsb.max() <= 1.01 and np.mean(lsb < 0.01) >= 0.9
    # the weights are the model's integers, at the scale the Mul implies
    w = numpy_helper.to_array(next(i for i in onnx.load(path).graph.initializer if i.name == "w"))
    np.testing.assert_array_equal(next(n for n in g.nodes if n.op == "Conv").q["w"], w)


def test_dynamic_quantization_is_refused(tmp_path, capsys):
    src, dyn = tmp_path / "float.onnx", tmp_path / "dynamic.onnx"
    onnx.save(residual_model(), src)
    quantize_dynamic(str(src), str(dyn), weight_type=QuantType.QInt8)
    node = next(n for n in onnx.load(dyn).graph.node if n.op_type == "DynamicQuantizeLinear")
    code, err = run_cli(capsys, "build", dyn, "--quantize", "int8", "--out", tmp_path / "out")
    assert_user_error(code, err, "DynamicQuantizeLinear", f"'{node.name}'", "quantize_static")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("fmt", [QuantFormat.QOperator, QuantFormat.QDQ])
def test_asymmetric_weights_are_refused(tmp_path, capsys, fmt):
    x = np.random.default_rng(0).uniform(-1, 1, (4, 1, 3, 8, 8)).astype(np.float32)
    path = quantized(tmp_path, residual_model(), fmt, x, activation_type=QuantType.QUInt8,
                     weight_type=QuantType.QUInt8)
    code, err = run_cli(capsys, "build", path, "--quantize", "int8", "--out", tmp_path / "out")
    assert_user_error(code, err, "(node '", "weight_type=QInt8")


def test_unsupported_op_on_a_quantized_tensor(tmp_path, capsys):
    n = helper.make_node
    model = make_model([n("QuantizeLinear", ["input", "s", "z"], ["q"], name="quant"),
                        n("Abs", ["q"], ["a"], name="int8_abs"),
                        n("DequantizeLinear", ["a", "s", "z"], ["output"], name="dequant")],
                       {"input": [1, 4]}, {"output": [1, 4]}, {"s": np.float32(0.1), "z": np.int8(0)}, opset=13)
    path = tmp_path / "abs.onnx"
    onnx.save(model, path)
    code, err = run_cli(capsys, "build", path, "--quantize", "int8", "--out", tmp_path / "out")
    assert_user_error(code, err, "Abs (node 'int8_abs')", "quantized tensor 'q'")
