"""The official MLPerf Tiny .tflite models, built with TFLM's arithmetic, reproduce TFLM's outputs
(../shared/models/<name>.outputs.npz, made with the tflite-micro package) exactly.

Until the TFLite front end lands, each model reaches edgec as an ONNX QDQ model written here from the .tflite file
(int8 weights with their per-channel scales, int32 biases and every activation's scale and zero point, exactly as
stored), which the QDQ import carries into the IR unchanged; the graph then gets arithmetic "tflm" as the front end
will set it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from helpers import needs_target
from onnx import TensorProto, helper, numpy_helper

import edgec.build
from edgec.build import BuildOptions, build
from edgec.runner import run_build

MODELS = Path(__file__).resolve().parents[1] / ".." / "shared" / "models"
tflite = pytest.importorskip("tflite")


def _same_pads(size: int, k: int, stride: int, dil: int, out: int) -> tuple[int, int]:
    total = max((out - 1) * stride + (k - 1) * dil + 1 - size, 0)
    return total // 2, total - total // 2


def tflite_to_qdq(path: Path) -> tuple[onnx.ModelProto, dict]:
    """An ONNX QDQ model (NCHW) computing the .tflite model's operators with its quantization; also the names and
    quantization of its input and output."""
    m = tflite.Model.GetRootAsModel(path.read_bytes(), 0)
    sg = m.Subgraphs(0)
    B = tflite.BuiltinOperator
    nodes, inits = [], []

    def quant(i: int) -> tuple[np.ndarray, np.ndarray]:
        q = sg.Tensors(i).Quantization()
        return q.ScaleAsNumpy().astype(np.float32), q.ZeroPointAsNumpy()

    def data(i: int, dtype) -> np.ndarray:
        t = sg.Tensors(i)
        raw = m.Buffers(t.Buffer()).DataAsNumpy()
        return np.frombuffer(raw.tobytes(), dtype).reshape(t.ShapeAsNumpy())

    def const(name: str, value: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def dq_weights(i: int, w: np.ndarray, axis_size: int) -> str:
        s, _ = quant(i)
        name = f"w{i}"
        args = [const(name + "_q", w.astype(np.int8)), const(name + "_s", s if s.size > 1 else s.reshape(())),
                const(name + "_z", np.zeros(s.shape if s.size > 1 else (), np.int8))]
        nodes.append(helper.make_node("DequantizeLinear", args, [name], axis=0))
        return name

    def dq_bias(i: int) -> str:
        s, _ = quant(i)
        name = f"b{i}"
        args = [const(name + "_q", data(i, np.int32)), const(name + "_s", s if s.size > 1 else s.reshape(())),
                const(name + "_z", np.zeros(s.shape if s.size > 1 else (), np.int32))]
        nodes.append(helper.make_node("DequantizeLinear", args, [name], axis=0))
        return name

    def qdq(src: str, i: int) -> str:
        """Quantize then dequantize src with tensor i's scale and zero point; the result is named t<i>."""
        s, zp = quant(i)
        args = [const(f"t{i}_s", s.reshape(())), const(f"t{i}_z", zp.astype(np.int8).reshape(()))]
        nodes.append(helper.make_node("QuantizeLinear", [src, *args], [f"t{i}_q"]))
        nodes.append(helper.make_node("DequantizeLinear", [f"t{i}_q", *args], [f"t{i}"]))
        return f"t{i}"

    def act(y: str, code: int, i: int) -> str:
        if code == tflite.ActivationFunctionType.RELU:
            nodes.append(helper.make_node("Relu", [y], [y + "_a"]))
            return y + "_a"
        if code == tflite.ActivationFunctionType.RELU6:
            nodes.append(helper.make_node("Clip", [y, const(f"lo{i}", np.float32(0)), const(f"hi{i}", np.float32(6))],
                                          [y + "_a"]))
            return y + "_a"
        assert code == tflite.ActivationFunctionType.NONE, code
        return y

    def options(op, cls):
        t, o = op.BuiltinOptions(), cls()
        o.Init(t.Bytes, t.Pos)
        return o

    x_index = sg.Inputs(0)
    x_shape = [int(v) for v in sg.Tensors(x_index).ShapeAsNumpy()]
    onnx_in = [x_shape[0], x_shape[3], x_shape[1], x_shape[2]] if len(x_shape) == 4 else x_shape
    qdq("input", x_index)
    for k in range(sg.OperatorsLength()):
        op = sg.Operators(k)
        code = m.OperatorCodes(op.OpcodeIndex())
        kind = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        ins, out = list(op.InputsAsNumpy()), int(op.OutputsAsNumpy()[0])
        y = f"y{out}"
        if kind in (B.CONV_2D, B.DEPTHWISE_CONV_2D):
            dw = kind == B.DEPTHWISE_CONV_2D
            o = options(op, tflite.DepthwiseConv2DOptions if dw else tflite.Conv2DOptions)
            w = data(ins[1], np.int8)  # conv [O, KH, KW, I]; depthwise [1, KH, KW, C * M]
            w = w.transpose(3, 0, 1, 2) if dw else w.transpose(0, 3, 1, 2)
            c_in = int(sg.Tensors(ins[0]).ShapeAsNumpy()[3])
            h, wd = (int(v) for v in sg.Tensors(ins[0]).ShapeAsNumpy()[1:3])
            oh, ow = (int(v) for v in sg.Tensors(out).ShapeAsNumpy()[1:3])
            kh, kw = w.shape[2:]
            sh, sw, dh, dwl = o.StrideH(), o.StrideW(), o.DilationHFactor(), o.DilationWFactor()
            pads = [0, 0, 0, 0]
            if o.Padding() == tflite.Padding.SAME:
                (pt, pb), (pl, pr) = _same_pads(h, kh, sh, dh, oh), _same_pads(wd, kw, sw, dwl, ow)
                pads = [pt, pl, pb, pr]
            args = [f"t{ins[0]}", dq_weights(ins[1], w, w.shape[0])] + ([dq_bias(ins[2])] if ins[2] >= 0 else [])
            nodes.append(helper.make_node("Conv", args, [y], strides=[sh, sw], dilations=[dh, dwl], pads=pads,
                                          group=c_in if dw else 1))
            qdq(act(y, o.FusedActivationFunction(), out), out)
        elif kind == B.FULLY_CONNECTED:
            o = options(op, tflite.FullyConnectedOptions)
            w = data(ins[1], np.int8)
            args = [f"t{ins[0]}", dq_weights(ins[1], w, w.shape[0])] + ([dq_bias(ins[2])] if ins[2] >= 0 else [])
            nodes.append(helper.make_node("Gemm", args, [y], transB=1))
            qdq(act(y, o.FusedActivationFunction(), out), out)
        elif kind == B.ADD:
            o = options(op, tflite.AddOptions)
            nodes.append(helper.make_node("Add", [f"t{ins[0]}", f"t{ins[1]}"], [y]))
            qdq(act(y, o.FusedActivationFunction(), out), out)
        elif kind == B.AVERAGE_POOL_2D:
            o = options(op, tflite.Pool2DOptions)
            h, wd = (int(v) for v in sg.Tensors(ins[0]).ShapeAsNumpy()[1:3])
            oh, ow = (int(v) for v in sg.Tensors(out).ShapeAsNumpy()[1:3])
            kh, kw, sh, sw = o.FilterHeight(), o.FilterWidth(), o.StrideH(), o.StrideW()
            pads = [0, 0, 0, 0]
            if o.Padding() == tflite.Padding.SAME:
                (pt, pb), (pl, pr) = _same_pads(h, kh, sh, 1, oh), _same_pads(wd, kw, sw, 1, ow)
                pads = [pt, pl, pb, pr]
            nodes.append(helper.make_node("AveragePool", [f"t{ins[0]}"], [y], kernel_shape=[kh, kw],
                                          strides=[sh, sw], pads=pads))
            qdq(act(y, o.FusedActivationFunction(), out), out)
        elif kind == B.RESHAPE:
            shape = sg.Tensors(ins[0]).ShapeAsNumpy()
            assert len(sg.Tensors(out).ShapeAsNumpy()) == 2 and (len(shape) == 2 or np.prod(shape[1:3]) == 1)
            nodes.append(helper.make_node("Flatten", [f"t{ins[0]}"], [y]))
            qdq(y, out)
        elif kind == B.SOFTMAX:
            assert options(op, tflite.SoftmaxOptions).Beta() == 1.0
            nodes.append(helper.make_node("Softmax", [f"t{ins[0]}"], [y], axis=-1))
            qdq(y, out)
        else:
            raise AssertionError(f"operator {kind} is not converted here")
    out_index = sg.Outputs(0)
    out_shape = [int(v) for v in sg.Tensors(out_index).ShapeAsNumpy()]
    graph = helper.make_graph(nodes, path.stem, [helper.make_tensor_value_info("input", TensorProto.FLOAT, onnx_in)],
                              [helper.make_tensor_value_info(f"t{out_index}", TensorProto.FLOAT, out_shape)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    (s_in,), (zp_in,) = quant(x_index)
    return model, {"output": f"t{out_index}", "in_scale": float(s_in), "in_zp": int(zp_in)}


def build_tflm(name: str, tmp_path: Path, target: str, monkeypatch) -> tuple[Path, dict]:
    load = edgec.build.load_onnx

    def load_tflm(*args, **kwargs):
        g = load(*args, **kwargs)
        g.arithmetic = "tflm"
        return g

    monkeypatch.setattr(edgec.build, "load_onnx", load_tflm)
    model, io = tflite_to_qdq(MODELS / f"{name}.tflite")
    onnx.save(model, tmp_path / f"{name}.onnx")
    out, _, _ = build(BuildOptions(tmp_path / f"{name}.onnx", quantize="int8", target=target, out=tmp_path / "b"))
    return out, io


def samples_of(name: str, io: dict, count: int) -> tuple[list[dict], np.ndarray]:
    """The first count samples as float NCHW inputs (dequantized: they quantize back exactly) and TFLM's outputs."""
    xs = np.load(MODELS / f"{name}.inputs.npz")
    ys = np.load(MODELS / f"{name}.outputs.npz")
    x = xs[xs.files[0]][:count].astype(np.float32)
    if x.ndim == 5:
        x = x.transpose(0, 1, 4, 2, 3)
    floats = (np.float32(io["in_scale"]) * (x - np.float32(io["in_zp"]))).astype(np.float32)
    return [{"input": f} for f in floats], ys[ys.files[0]][:count]


OFFICIAL = ["pretrainedResnet_quant", "kws_ref_model", "vww_96_int8", "ad01_int8", "str_ww_ref_model"]


@pytest.mark.parametrize("name", OFFICIAL)
def test_host_equals_tflm(name, tmp_path, monkeypatch):
    if not (MODELS / f"{name}.tflite").exists():
        pytest.skip("needs ../shared/models")
    out, io = build_tflm(name, tmp_path, "host", monkeypatch)
    samples, want = samples_of(name, io, 20)
    res = run_build(out, samples)
    got = np.stack([r[io["output"]] for r in res.raw])
    np.testing.assert_array_equal(got.reshape(want.shape), want)


ANCHORED = ["pretrainedResnet_quant", "kws_ref_model", "vww_96_int8", "ad01_int8"]


@pytest.mark.parametrize("target,name", [pytest.param(t, n, marks=needs_target(t)) for t, n in
                                         [(t, n) for t in ("cortex-m7", "cortex-m55") for n in ANCHORED]
                                         + [("cortex-a53", "kws_ref_model"), ("cortex-m7", "str_ww_ref_model")]])
def test_targets_equal_tflm(target, name, tmp_path, monkeypatch):
    if not (MODELS / f"{name}.tflite").exists():
        pytest.skip("needs ../shared/models")
    out, io = build_tflm(name, tmp_path, target, monkeypatch)
    samples, want = samples_of(name, io, 3)
    res = run_build(out, samples)
    got = np.stack([r[io["output"]] for r in res.raw])
    np.testing.assert_array_equal(got.reshape(want.shape), want)
