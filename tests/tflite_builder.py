"""Write small .tflite files for tests with the flatbuffers builder and the tflite package's schema functions
(no TensorFlow needed): tensors (activations or constants, float32 or quantized per tensor or per channel),
operators with their builtin options, one subgraph."""

from __future__ import annotations

from dataclasses import dataclass, field

import flatbuffers
import numpy as np
import tflite

_TYPES = {"float32": tflite.TensorType.FLOAT32, "int8": tflite.TensorType.INT8, "int16": tflite.TensorType.INT16,
          "int32": tflite.TensorType.INT32, "int64": tflite.TensorType.INT64}


@dataclass
class _Tensor:
    name: str
    shape: tuple[int, ...]
    dtype: str
    buffer: int
    scales: np.ndarray | None = None
    zero_points: np.ndarray | None = None
    axis: int = 0


@dataclass
class _Op:
    code: int
    inputs: list[int]
    outputs: list[int]
    options: str | None
    fields: dict = field(default_factory=dict)


class TFLiteBuilder:
    def __init__(self) -> None:
        self.tensors: list[_Tensor] = []
        self.buffers: list[bytes] = [b""]  # buffer 0 is the empty one, by convention
        self.ops: list[_Op] = []

    def tensor(self, name: str, shape, dtype: str = "int8", scale=None, zero_point=0, data=None,
               axis: int = 0) -> int:
        """A tensor: an activation (data None) or a constant; scale (and zero_point) a number or one per index of
        axis. Returns its index."""
        buffer = 0
        if data is not None:
            arr = np.ascontiguousarray(np.asarray(data).astype(dtype).reshape(shape))
            self.buffers.append(arr.tobytes())
            buffer = len(self.buffers) - 1
        scales = zps = None
        if scale is not None:
            scales = np.atleast_1d(np.asarray(scale, np.float32))
            zps = np.broadcast_to(np.atleast_1d(np.asarray(zero_point, np.int64)), scales.shape).copy()
        self.tensors.append(_Tensor(name, tuple(int(d) for d in shape), dtype, buffer, scales, zps, axis))
        return len(self.tensors) - 1

    def op(self, kind: str, inputs: list[int], outputs: list[int], options: str | None = None, **fields) -> None:
        """An operator (BuiltinOperator name) with its options table (e.g. "Conv2DOptions", Padding=..., ...)."""
        self.ops.append(_Op(getattr(tflite.BuiltinOperator, kind), inputs, outputs, options, fields))

    def finish(self, inputs: list[int], outputs: list[int]) -> bytes:
        b = flatbuffers.Builder(1024)
        buffers = []
        for data in self.buffers:
            vec = None
            if data:
                b.StartVector(1, len(data), 16)  # aligned, as TFLite's converter writes them
                b.head -= len(data)
                b.Bytes[b.head:b.head + len(data)] = data
                vec = b.EndVector()
            tflite.BufferStart(b)
            if vec is not None:
                tflite.BufferAddData(b, vec)
            buffers.append(tflite.BufferEnd(b))
        tensors = [self._tensor(b, t) for t in self.tensors]
        codes = sorted({op.code for op in self.ops})
        ops = [self._op(b, op, codes.index(op.code)) for op in self.ops]
        opcodes = []
        for code in codes:
            tflite.OperatorCodeStart(b)
            tflite.OperatorCodeAddDeprecatedBuiltinCode(b, min(code, 127))
            tflite.OperatorCodeAddBuiltinCode(b, code)
            tflite.OperatorCodeAddVersion(b, 1)
            opcodes.append(tflite.OperatorCodeEnd(b))
        name = b.CreateString("main")
        sg_in, sg_out = (b.CreateNumpyVector(np.array(v, np.int32)) for v in (inputs, outputs))
        t_vec, o_vec = self._vector(b, tensors), self._vector(b, ops)
        tflite.SubGraphStart(b)
        tflite.SubGraphAddTensors(b, t_vec)
        tflite.SubGraphAddInputs(b, sg_in)
        tflite.SubGraphAddOutputs(b, sg_out)
        tflite.SubGraphAddOperators(b, o_vec)
        tflite.SubGraphAddName(b, name)
        sg = tflite.SubGraphEnd(b)
        codes_vec, sg_vec, buf_vec = self._vector(b, opcodes), self._vector(b, [sg]), self._vector(b, buffers)
        desc = b.CreateString("edgec test model")
        tflite.ModelStart(b)
        tflite.ModelAddVersion(b, 3)
        tflite.ModelAddOperatorCodes(b, codes_vec)
        tflite.ModelAddSubgraphs(b, sg_vec)
        tflite.ModelAddDescription(b, desc)
        tflite.ModelAddBuffers(b, buf_vec)
        b.Finish(tflite.ModelEnd(b), file_identifier=b"TFL3")
        return bytes(b.Output())

    @staticmethod
    def _vector(b: flatbuffers.Builder, offsets: list[int]) -> int:
        b.StartVector(4, len(offsets), 4)
        for off in reversed(offsets):
            b.PrependUOffsetTRelative(off)
        return b.EndVector()

    def _tensor(self, b: flatbuffers.Builder, t: _Tensor) -> int:
        name = b.CreateString(t.name)
        shape = b.CreateNumpyVector(np.array(t.shape, np.int32))
        quant = None
        if t.scales is not None:
            scale = b.CreateNumpyVector(t.scales.astype(np.float32))
            zp = b.CreateNumpyVector(t.zero_points.astype(np.int64))
            tflite.QuantizationParametersStart(b)
            tflite.QuantizationParametersAddScale(b, scale)
            tflite.QuantizationParametersAddZeroPoint(b, zp)
            tflite.QuantizationParametersAddQuantizedDimension(b, t.axis)
            quant = tflite.QuantizationParametersEnd(b)
        tflite.TensorStart(b)
        tflite.TensorAddShape(b, shape)
        tflite.TensorAddType(b, _TYPES[t.dtype])
        tflite.TensorAddBuffer(b, t.buffer)
        tflite.TensorAddName(b, name)
        if quant is not None:
            tflite.TensorAddQuantization(b, quant)
        return tflite.TensorEnd(b)

    def _op(self, b: flatbuffers.Builder, op: _Op, index: int) -> int:
        options = None
        if op.options is not None:
            vectors = {k: b.CreateNumpyVector(np.asarray(v, np.int32)) for k, v in op.fields.items()
                       if isinstance(v, (list, tuple))}
            getattr(tflite, f"{op.options}Start")(b)
            for k, v in op.fields.items():
                getattr(tflite, f"{op.options}Add{k}")(b, vectors.get(k, v))
            options = getattr(tflite, f"{op.options}End")(b)
        ins, outs = (b.CreateNumpyVector(np.array(v, np.int32)) for v in (op.inputs, op.outputs))
        tflite.OperatorStart(b)
        tflite.OperatorAddOpcodeIndex(b, index)
        tflite.OperatorAddInputs(b, ins)
        tflite.OperatorAddOutputs(b, outs)
        if options is not None:
            tflite.OperatorAddBuiltinOptionsType(b, getattr(tflite.BuiltinOptions, op.options))
            tflite.OperatorAddBuiltinOptions(b, options)
        return tflite.OperatorEnd(b)


# ---- small quantized models for per-operator tests ------------------------------------------------------------

SAME, VALID = tflite.Padding.SAME, tflite.Padding.VALID
ACT = {"NONE": tflite.ActivationFunctionType.NONE, "RELU": tflite.ActivationFunctionType.RELU,
       "RELU6": tflite.ActivationFunctionType.RELU6, "RELU_N1_TO_1": tflite.ActivationFunctionType.RELU_N1_TO_1}


def conv_model(rng: np.random.Generator, x_shape, out_c: int, k, stride, padding, act: str = "NONE",
               depthwise: bool = False, per_channel: bool = True, dilation=(1, 1), multiplier: int = 1,
               int16: bool = False, s_out: float | None = None, bias16: str = "int64") -> bytes:
    """One int8 CONV_2D or DEPTHWISE_CONV_2D with int32 bias and the given geometry (int16: 16x8, int16
    activations with zero point 0 and a bias16 bias); s_out: the output scale (else one that spreads the outputs)."""
    m = TFLiteBuilder()
    n, h, w, c = x_shape
    s_in, zp_in = 0.05, int(rng.integers(-20, 20))
    adt, bdt, gain = "int8", "int32", 1
    if int16:
        s_in, zp_in, adt, bdt, gain = 0.05 / 256, 0, "int16", bias16, 256
    cols = c * multiplier if depthwise else out_c
    wshape = (1, k[0], k[1], cols) if depthwise else (out_c, k[0], k[1], c)
    wq = rng.integers(-127, 128, size=wshape)
    ws = (rng.uniform(0.002, 0.01, cols) if per_channel else np.array([0.005])).astype(np.float32)
    taps = k[0] * k[1] * (1 if depthwise else c)
    s_out = s_out or float(np.sqrt(taps) * 74 * 73 * s_in * float(ws.mean()) / 30)
    bias = rng.integers(-2000, 2000, size=cols) * gain
    x = m.tensor("x", x_shape, adt, scale=s_in, zero_point=zp_in)
    wt = m.tensor("w", wshape, data=wq, scale=ws, axis=3 if depthwise else 0)
    bt = m.tensor("b", (cols,), bdt, data=bias, scale=(s_in * ws.astype(np.float64)).astype(np.float32))
    if padding == SAME:
        oh, ow = -(-h // stride[0]), -(-w // stride[1])
    else:
        oh = -(-(h - (k[0] - 1) * dilation[0]) // stride[0])
        ow = -(-(w - (k[1] - 1) * dilation[1]) // stride[1])
    y = m.tensor("y", (n, oh, ow, cols), adt, scale=s_out, zero_point=0 if int16 else int(rng.integers(-10, 10)))
    fields = dict(Padding=padding, StrideH=stride[0], StrideW=stride[1], FusedActivationFunction=ACT[act],
                  DilationHFactor=dilation[0], DilationWFactor=dilation[1])
    if depthwise:
        m.op("DEPTHWISE_CONV_2D", [x, wt, bt], [y], "DepthwiseConv2DOptions", DepthMultiplier=multiplier, **fields)
    else:
        m.op("CONV_2D", [x, wt, bt], [y], "Conv2DOptions", **fields)
    return m.finish([x], [y])


def fc_model(rng: np.random.Generator, x_shape, units: int, act: str = "NONE", int16: bool = False,
             bias_step: float = 1.0, out_step: float = 1.0) -> bytes:
    """One FULLY_CONNECTED, per-tensor weights (int16: 16x8, int16 activations with zero point 0, int64 bias).
    bias_step, out_step: factors on the bias scale (1: input x weight scale) and on the output scale."""
    m = TFLiteBuilder()
    k = int(np.prod(x_shape[1:]))
    s_in, ws = 0.04, 0.004
    adt, bdt, zp_in, zp_out, gain = "int8", "int32", int(rng.integers(-20, 20)), 3, 1
    if int16:
        s_in, adt, bdt, zp_in, zp_out, gain = s_in / 256, "int16", "int64", 0, 0, 256
    x = m.tensor("x", x_shape, adt, scale=s_in, zero_point=zp_in)
    wt = m.tensor("w", (units, k), data=rng.integers(-127, 128, size=(units, k)), scale=ws)
    bt = m.tensor("b", (units,), bdt, data=rng.integers(-3000, 3000, size=units) * gain, scale=s_in * ws * bias_step)
    y = m.tensor("y", (x_shape[0], units), adt, scale=float(np.sqrt(k) * 74 * 73 * s_in * ws / 30) * out_step,
                 zero_point=zp_out)
    m.op("FULLY_CONNECTED", [x, wt, bt], [y], "FullyConnectedOptions", FusedActivationFunction=ACT[act])
    return m.finish([x], [y])


def pool_model(kind: str, x_shape, k, stride, padding, act: str = "NONE") -> bytes:
    m = TFLiteBuilder()
    n, h, w, c = x_shape
    x = m.tensor("x", x_shape, scale=0.1, zero_point=-5)
    if padding == SAME:
        oh, ow = -(-h // stride[0]), -(-w // stride[1])
    else:
        oh, ow = -(-(h - k[0] + 1) // stride[0]), -(-(w - k[1] + 1) // stride[1])
    y = m.tensor("y", (n, oh, ow, c), scale=0.1, zero_point=-5)
    m.op(kind, [x], [y], "Pool2DOptions", Padding=padding, StrideH=stride[0], StrideW=stride[1],
         FilterHeight=k[0], FilterWidth=k[1], FusedActivationFunction=ACT[act])
    return m.finish([x], [y])


def binary_model(kind: str, shape, scales=(0.05, 0.07, 0.1), act: str = "NONE") -> bytes:
    m = TFLiteBuilder()
    a = m.tensor("a", shape, scale=scales[0], zero_point=4)
    b = m.tensor("b", shape, scale=scales[1], zero_point=-9)
    y = m.tensor("y", shape, scale=scales[2], zero_point=2)
    m.op(kind, [a, b], [y], f"{kind.capitalize()}Options", FusedActivationFunction=ACT[act])
    return m.finish([a, b], [y])


def unary_model(kind: str, shape, out_scale: float, out_zp: int, options: str | None = None, **fields) -> bytes:
    m = TFLiteBuilder()
    x = m.tensor("x", shape, scale=0.05, zero_point=-3)
    y = m.tensor("y", shape, scale=out_scale, zero_point=out_zp)
    m.op(kind, [x], [y], options, **fields)
    return m.finish([x], [y])


def reshape_model(x_shape, y_shape) -> bytes:
    m = TFLiteBuilder()
    x = m.tensor("x", x_shape, scale=0.1, zero_point=1)
    shape = m.tensor("shape", (len(y_shape),), "int32", data=np.array(y_shape))
    y = m.tensor("y", y_shape, scale=0.1, zero_point=1)
    m.op("RESHAPE", [x, shape], [y], "ReshapeOptions", NewShape=list(y_shape))
    return m.finish([x], [y])


def pad_model(x_shape, pads) -> bytes:
    m = TFLiteBuilder()
    x = m.tensor("x", x_shape, scale=0.1, zero_point=7)
    p = m.tensor("paddings", (len(x_shape), 2), "int32", data=np.array(pads))
    y = m.tensor("y", tuple(s + a + b for s, (a, b) in zip(x_shape, pads)), scale=0.1, zero_point=7)
    m.op("PAD", [x, p], [y], "PadOptions")
    return m.finish([x], [y])


def concat_model(shapes, axis: int) -> bytes:
    m = TFLiteBuilder()
    xs = [m.tensor(f"x{k}", s, scale=0.1, zero_point=-2) for k, s in enumerate(shapes)]
    out = list(shapes[0])
    out[axis] = sum(s[axis] for s in shapes)
    y = m.tensor("y", out, scale=0.1, zero_point=-2)
    m.op("CONCATENATION", xs, [y], "ConcatenationOptions", Axis=axis, FusedActivationFunction=ACT["NONE"])
    return m.finish(xs, [y])


def transpose_model(x_shape, perm) -> bytes:
    m = TFLiteBuilder()
    x = m.tensor("x", x_shape, scale=0.1, zero_point=0)
    p = m.tensor("perm", (len(perm),), "int32", data=np.array(perm))
    y = m.tensor("y", [x_shape[a] for a in perm], scale=0.1, zero_point=0)
    m.op("TRANSPOSE", [x, p], [y], "TransposeOptions")
    return m.finish([x], [y])


def mean_model(x_shape, keep: bool) -> bytes:
    m = TFLiteBuilder()
    n, _, _, c = x_shape
    x = m.tensor("x", x_shape, scale=0.1, zero_point=-4)
    axes = m.tensor("axes", (2,), "int32", data=np.array([1, 2]))
    y = m.tensor("y", (n, 1, 1, c) if keep else (n, c), scale=0.05, zero_point=1)
    m.op("MEAN", [x, axes], [y], "ReducerOptions", KeepDims=keep)
    return m.finish([x], [y])


def softmax_model(shape) -> bytes:
    m = TFLiteBuilder()
    x = m.tensor("x", shape, scale=0.08, zero_point=10)
    y = m.tensor("y", shape, scale=1 / 256, zero_point=-128)
    m.op("SOFTMAX", [x], [y], "SoftmaxOptions", Beta=1.0)
    return m.finish([x], [y])


def float_model(rng: np.random.Generator) -> bytes:
    """A float32 model: CONV_2D (SAME, stride 2, RELU) -> DEPTHWISE_CONV_2D -> MEAN -> FULLY_CONNECTED ->
    SOFTMAX."""
    m = TFLiteBuilder()
    x = m.tensor("image", (1, 9, 11, 3), "float32")
    w1 = m.tensor("w1", (8, 3, 3, 3), "float32", data=rng.standard_normal((8, 3, 3, 3)) * 0.3)
    b1 = m.tensor("b1", (8,), "float32", data=rng.standard_normal(8) * 0.1)
    h1 = m.tensor("h1", (1, 5, 6, 8), "float32")
    m.op("CONV_2D", [x, w1, b1], [h1], "Conv2DOptions", Padding=SAME, StrideH=2, StrideW=2,
         FusedActivationFunction=ACT["RELU"], DilationHFactor=1, DilationWFactor=1)
    w2 = m.tensor("w2", (1, 3, 3, 8), "float32", data=rng.standard_normal((1, 3, 3, 8)) * 0.3)
    b2 = m.tensor("b2", (8,), "float32", data=rng.standard_normal(8) * 0.1)
    h2 = m.tensor("h2", (1, 5, 6, 8), "float32")
    m.op("DEPTHWISE_CONV_2D", [h1, w2, b2], [h2], "DepthwiseConv2DOptions", Padding=SAME, StrideH=1, StrideW=1,
         DepthMultiplier=1, FusedActivationFunction=ACT["RELU6"], DilationHFactor=1, DilationWFactor=1)
    axes = m.tensor("axes", (2,), "int32", data=np.array([1, 2]))
    h3 = m.tensor("h3", (1, 8), "float32")
    m.op("MEAN", [h2, axes], [h3], "ReducerOptions", KeepDims=False)
    w4 = m.tensor("w4", (5, 8), "float32", data=rng.standard_normal((5, 8)))
    b4 = m.tensor("b4", (5,), "float32", data=rng.standard_normal(5) * 0.1)
    h4 = m.tensor("h4", (1, 5), "float32")
    m.op("FULLY_CONNECTED", [h3, w4, b4], [h4], "FullyConnectedOptions", FusedActivationFunction=ACT["NONE"])
    y = m.tensor("probs", (1, 5), "float32")
    m.op("SOFTMAX", [h4], [y], "SoftmaxOptions", Beta=1.0)
    return m.finish([x], [y])


def quantize_dequantize_model(rng: np.random.Generator) -> bytes:
    """float input -> QUANTIZE -> int8 FULLY_CONNECTED -> DEQUANTIZE -> float output."""
    m = TFLiteBuilder()
    x = m.tensor("x", (1, 16), "float32")
    xq = m.tensor("xq", (1, 16), scale=0.02, zero_point=-7)
    m.op("QUANTIZE", [x], [xq])
    wt = m.tensor("w", (8, 16), data=rng.integers(-127, 128, size=(8, 16)), scale=0.01)
    bt = m.tensor("b", (8,), "int32", data=rng.integers(-500, 500, size=8), scale=0.02 * 0.01)
    yq = m.tensor("yq", (1, 8), scale=0.05, zero_point=3)
    m.op("FULLY_CONNECTED", [xq, wt, bt], [yq], "FullyConnectedOptions", FusedActivationFunction=ACT["NONE"])
    y = m.tensor("y", (1, 8), "float32")
    m.op("DEQUANTIZE", [yq], [y])
    return m.finish([x], [y])


def _layer(m: TFLiteBuilder, rng: np.random.Generator, x: int, x_shape, out_c: int, k, stride, padding, act: str,
           depthwise: bool = False, s_out: float | None = None, name: str = "c") -> tuple[int, tuple]:
    """A CONV_2D or DEPTHWISE_CONV_2D (per-channel weights, int32 bias) reading tensor x; returns (y, its shape)."""
    n, h, w, c = x_shape
    s_in = float(m.tensors[x].scales[0])
    cols = c if depthwise else out_c
    wshape = (1, k[0], k[1], cols) if depthwise else (out_c, k[0], k[1], c)
    ws = rng.uniform(0.002, 0.01, cols).astype(np.float32)
    taps = k[0] * k[1] * (1 if depthwise else c)
    s_out = s_out or float(np.sqrt(taps) * 74 * 73 * s_in * float(ws.mean()) / 30)
    wt = m.tensor(f"{name}_w", wshape, data=rng.integers(-127, 128, size=wshape), scale=ws, axis=3 if depthwise else 0)
    bt = m.tensor(f"{name}_b", (cols,), "int32", data=rng.integers(-2000, 2000, size=cols),
                  scale=(s_in * ws.astype(np.float64)).astype(np.float32))
    if padding == SAME:
        oh, ow = -(-h // stride[0]), -(-w // stride[1])
    else:
        oh, ow = -(-(h - k[0] + 1) // stride[0]), -(-(w - k[1] + 1) // stride[1])
    y = m.tensor(name, (n, oh, ow, cols), scale=s_out, zero_point=int(rng.integers(-10, 10)))
    fields = dict(Padding=padding, StrideH=stride[0], StrideW=stride[1], FusedActivationFunction=ACT[act])
    if depthwise:
        m.op("DEPTHWISE_CONV_2D", [x, wt, bt], [y], "DepthwiseConv2DOptions", DepthMultiplier=1, **fields)
    else:
        m.op("CONV_2D", [x, wt, bt], [y], "Conv2DOptions", **fields)
    return y, (n, oh, ow, cols)


def _fc(m: TFLiteBuilder, rng: np.random.Generator, x: int, k: int, units: int, name: str, act: str = "NONE",
        s_out: float | None = None) -> int:
    s_in = float(m.tensors[x].scales[0])
    ws = 0.01
    wt = m.tensor(f"{name}_w", (units, k), data=rng.integers(-127, 128, size=(units, k)), scale=ws)
    bt = m.tensor(f"{name}_b", (units,), "int32", data=rng.integers(-3000, 3000, size=units), scale=s_in * ws)
    y = m.tensor(name, (1, units), scale=s_out or float(np.sqrt(k) * 74 * 73 * s_in * ws / 30), zero_point=3)
    m.op("FULLY_CONNECTED", [x, wt, bt], [y], "FullyConnectedOptions", FusedActivationFunction=ACT[act])
    return y


def chain_model(rng: np.random.Generator, extreme: bool = False) -> bytes:
    """CONV_2D (RELU), DEPTHWISE_CONV_2D (RELU6), a 1x1 CONV_2D, a residual ADD, SUB, MUL, AVERAGE_POOL_2D with
    padding at the borders, MAX_POOL_2D, RESHAPE, FULLY_CONNECTED, SOFTMAX. extreme: output scales far below
    input x weight (left shifts, saturation) and far above it (shifts near -20)."""
    m = TFLiteBuilder()
    x = m.tensor("x", (1, 9, 10, 3), scale=0.05, zero_point=-3)
    c0, shape = _layer(m, rng, x, (1, 9, 10, 3), 6, (3, 3), (1, 1), SAME, "RELU", s_out=1e-5 if extreme else None,
                       name="c0")
    d1, _ = _layer(m, rng, c0, shape, 6, (3, 3), (1, 1), SAME, "RELU6", depthwise=True, name="d1")
    c2, _ = _layer(m, rng, d1, shape, 6, (1, 1), (1, 1), VALID, "NONE", s_out=40.0 if extreme else None, name="c2")
    scale = float(m.tensors[c2].scales[0])
    a = m.tensor("add", shape, scale=scale * 1.5, zero_point=-4)
    m.op("ADD", [c0, c2], [a], "AddOptions", FusedActivationFunction=ACT["NONE"])
    s = m.tensor("sub", shape, scale=scale * 1.7, zero_point=6)
    m.op("SUB", [a, d1], [s], "SubOptions", FusedActivationFunction=ACT["NONE"])
    mu = m.tensor("mul", shape, scale=scale * float(m.tensors[c2].scales[0]) * 20, zero_point=1)
    m.op("MUL", [s, c2], [mu], "MulOptions", FusedActivationFunction=ACT["RELU"])
    p = m.tensor("avg", (1, 5, 5, 6), scale=float(m.tensors[mu].scales[0]), zero_point=1)
    m.op("AVERAGE_POOL_2D", [mu], [p], "Pool2DOptions", Padding=SAME, StrideH=2, StrideW=2, FilterHeight=3,
         FilterWidth=3, FusedActivationFunction=ACT["NONE"])
    q = m.tensor("max", (1, 2, 2, 6), scale=float(m.tensors[mu].scales[0]), zero_point=1)
    m.op("MAX_POOL_2D", [p], [q], "Pool2DOptions", Padding=VALID, StrideH=2, StrideW=2, FilterHeight=2,
         FilterWidth=2, FusedActivationFunction=ACT["NONE"])
    new_shape = m.tensor("shape", (2,), "int32", data=np.array([1, 24]))
    r = m.tensor("flat", (1, 24), scale=float(m.tensors[mu].scales[0]), zero_point=1)
    m.op("RESHAPE", [q, new_shape], [r], "ReshapeOptions", NewShape=[1, 24])
    f = _fc(m, rng, r, 24, 10, "fc", s_out=0.08)
    y = m.tensor("y", (1, 10), scale=1 / 256, zero_point=-128)
    m.op("SOFTMAX", [f], [y], "SoftmaxOptions", Beta=1.0)
    return m.finish([x], [y])


def head_model(rng: np.random.Generator) -> bytes:
    """CONV_2D (stride 2), TANH, MEAN over H and W, FULLY_CONNECTED, LEAKY_RELU, FULLY_CONNECTED, LOGISTIC."""
    m = TFLiteBuilder()
    x = m.tensor("x", (1, 11, 9, 3), scale=0.05, zero_point=2)
    c0, shape = _layer(m, rng, x, (1, 11, 9, 3), 8, (3, 3), (2, 2), VALID, "NONE", name="c0")
    t = m.tensor("tanh", shape, scale=1 / 128, zero_point=0)
    m.op("TANH", [c0], [t])
    axes = m.tensor("axes", (2,), "int32", data=np.array([1, 2]))
    mean = m.tensor("mean", (1, 8), scale=1 / 256, zero_point=-5)
    m.op("MEAN", [t, axes], [mean], "ReducerOptions", KeepDims=False)
    f = _fc(m, rng, mean, 8, 5, "fc0")
    lr = m.tensor("leaky", (1, 5), scale=float(m.tensors[f].scales[0]), zero_point=3)
    m.op("LEAKY_RELU", [f], [lr], "LeakyReluOptions", Alpha=0.2)
    f1 = _fc(m, rng, lr, 5, 4, "fc1")
    y = m.tensor("y", (1, 4), scale=1 / 256, zero_point=-128)
    m.op("LOGISTIC", [f1], [y])
    return m.finish([x], [y])
