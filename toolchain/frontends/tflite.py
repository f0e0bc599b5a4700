"""Import a TensorFlow Lite flatbuffer (.tflite) into the IR, read with the `tflite` package's schema accessors.

TFLite tensors are NHWC; the IR keeps ONNX semantics (logical NCHW), so every 4-D activation gets its NCHW shape
and the layout pass stores it channels-last again. A 4-D model input or output keeps the file's NHWC shape and name:
a Transpose joins it to the NCHW graph, so users feed and read exactly the bytes TFLite does. A quantized model
keeps its own parameters: activations carry fixed_quant (scale, zero point), weights their per-channel scales
(weight_scales) and int32 biases their integers (int_values), and the graph is marked arithmetic="tflm".

Everything read from the file is checked (indices, buffer sizes, shapes, each op's output shape): a bad file is an
EdgecError naming the file and the operator, never an exception from deep inside."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..errors import EdgecError
from ..ir import Graph, Node, Tensor, unique_name

TFLITE_ID = b"TFL3"  # the flatbuffer file identifier at bytes 4..8
MAX_ELEMENTS = 1 << 24  # elements of one tensor: 16 M, far beyond any model edgec targets (a guard on corrupt sizes)
NCHW_OF_NHWC = (0, 3, 1, 2)  # x_nchw = x_nhwc.transpose(NCHW_OF_NHWC)
NHWC_OF_NCHW = (0, 2, 3, 1)
NHWC_AXIS = (0, 2, 3, 1)  # NHWC axis a is NCHW axis NHWC_AXIS[a]


def is_tflite(path: Path) -> bool:
    """Whether the file is a TFLite flatbuffer (its identifier), whatever its name."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError:
        return False
    return len(head) == 8 and head[4:8] == TFLITE_ID


def _schema():
    try:
        import tflite
    except ImportError:
        raise EdgecError("reading .tflite models needs the tflite package: pip install tflite") from None
    return tflite


def load_tflite(path: Path, input_shapes: dict[str, tuple[int, ...]] | None = None) -> Graph:
    """The load stage for a .tflite file: the IR graph (NCHW inside, the file's NHWC at its inputs and outputs)."""
    path = Path(path)
    if not path.is_file():
        raise EdgecError(f"{path}: no such file")
    data = path.read_bytes()
    if len(data) < 8 or data[4:8] != TFLITE_ID:
        raise EdgecError(f"{path}: not a TFLite model (no '{TFLITE_ID.decode()}' flatbuffer identifier at bytes 4..8); "
                         "check that the file is a complete .tflite export")
    importer = _Importer(path, data, _schema())
    try:
        g = importer.run()
    except EdgecError:
        raise
    except Exception as exc:  # noqa: BLE001 - flatbuffers raises many types on corrupt or truncated data
        raise EdgecError(f"{path}: corrupt or truncated TFLite file ({type(exc).__name__}: {exc}); check that "
                         "the file is a complete .tflite export") from None
    for name, shape in (input_shapes or {}).items():
        if name not in g.inputs:
            raise EdgecError(f"--input-shape names '{name}', but the model's inputs are: {', '.join(g.inputs)}")
        if tuple(shape) != g.shape(name):
            raise EdgecError(f"--input-shape {name}={','.join(map(str, shape))}: {path} is a TFLite model with the "
                             f"fixed shape {list(g.shape(name))}; leave --input-shape out")
    return g


def _same_pads(size: int, k: int, stride: int, dil: int) -> tuple[int, int, int]:
    """TF 'SAME' padding: (output size, pad before, pad after); the odd pixel goes after."""
    out = -(-size // stride)
    total = max(0, (out - 1) * stride + (k - 1) * dil + 1 - size)
    return out, total // 2, total - total // 2


def _valid_out(size: int, k: int, stride: int, dil: int) -> int:
    return max(0, -(-(size - (k - 1) * dil) // stride))


class _Importer:
    def __init__(self, path: Path, data: bytes, schema) -> None:
        self.path, self.data, self.tfl = path, data, schema
        self.tensors: dict[str, Tensor] = {}
        self.nodes: list[Node] = []
        self.ir: dict[int, str] = {}  # TFLite activation index -> IR tensor name (NCHW inside)
        self.consts: dict[int, np.ndarray] = {}  # folded constants (DEQUANTIZE of a constant)
        self.quantized = False
        self.ops = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
        self.types = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}

    # ---- errors and checked reads -----------------------------------------------------------------------------

    def fail(self, what: str) -> EdgecError:
        return EdgecError(f"{self.path}: {what}")

    def op_fail(self, where: str, what: str) -> EdgecError:
        return EdgecError(f"{self.path}: {where}: {what}")

    def tensor(self, i: int):
        if not 0 <= i < self.sg.TensorsLength():
            raise self.fail(f"tensor index {i} is out of range (the subgraph has {self.sg.TensorsLength()})")
        return self.sg.Tensors(i)

    def shape(self, i: int) -> tuple[int, ...]:
        t = self.tensor(i)
        shape = tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else ()
        if any(d <= 0 for d in shape) or math.prod(shape) > MAX_ELEMENTS:
            raise self.fail(f"tensor {i} ('{self.raw_name(i)}') has shape {list(shape)}; edgec needs fixed, "
                            f"positive sizes and at most {MAX_ELEMENTS:,} elements")
        return shape

    def raw_name(self, i: int) -> str:
        name = self.tensor(i).Name()
        return name.decode("utf-8", "replace") if name else f"tensor_{i}"

    def type_name(self, i: int) -> str:
        return self.types.get(self.tensor(i).Type(), f"type {self.tensor(i).Type()}")

    def quant(self, i: int) -> tuple[np.ndarray, np.ndarray, int] | None:
        """(scales, zero points, quantized dimension) or None."""
        q = self.tensor(i).Quantization()
        if q is None or q.ScaleLength() == 0:
            return None
        with np.errstate(all="ignore"):
            scales = q.ScaleAsNumpy().astype(np.float64)
        zps = q.ZeroPointAsNumpy().astype(np.int64) if q.ZeroPointLength() else np.zeros(scales.size, np.int64)
        if zps.size not in (1, scales.size) or not np.all(np.isfinite(scales)) or np.any(scales <= 0):
            raise self.fail(f"tensor '{self.raw_name(i)}' has invalid quantization parameters")
        return scales, np.broadcast_to(zps, scales.shape), int(q.QuantizedDimension())

    def buffer(self, i: int) -> bytes | None:
        """The constant bytes of tensor i, or None for an activation."""
        b = self.tensor(i).Buffer()
        if not 0 <= b < self.model.BuffersLength():
            raise self.fail(f"tensor '{self.raw_name(i)}' names buffer {b}; the file has {self.model.BuffersLength()}")
        buf = self.model.Buffers(b)
        if buf.Offset() > 1:  # a large model keeps its data after the flatbuffer
            start, size = int(buf.Offset()), int(buf.Size())
            if start + size > len(self.data):
                raise self.fail(f"buffer {b} lies beyond the end of the file (truncated?)")
            return self.data[start:start + size]
        if buf.DataLength() == 0:
            return None
        return buf.DataAsNumpy().tobytes()

    _NP = {"FLOAT32": np.float32, "INT8": np.int8, "INT16": np.int16, "INT32": np.int32, "INT64": np.int64,
           "UINT8": np.uint8, "FLOAT16": np.float16, "BOOL": np.bool_}

    def const(self, i: int) -> np.ndarray | None:
        """A constant tensor's integers or floats in the file's layout, or None for an activation."""
        if i in self.consts:
            return self.consts[i]
        raw = self.buffer(i)
        if raw is None:
            return None
        dtype = self._NP.get(self.type_name(i))
        if dtype is None:
            raise self.fail(f"constant '{self.raw_name(i)}' has element type {self.type_name(i)}, which edgec "
                            "does not read")
        shape = self.shape(i)
        want = math.prod(shape) * np.dtype(dtype).itemsize
        if len(raw) != want:
            raise self.fail(f"constant '{self.raw_name(i)}' of shape {list(shape)} ({self.type_name(i)}) needs "
                            f"{want} bytes; its buffer holds {len(raw)} (truncated or corrupt file)")
        arr = np.frombuffer(raw, dtype=dtype).reshape(shape)
        if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
            raise self.fail(f"constant '{self.raw_name(i)}' holds non-finite values")
        return arr

    def dequantized(self, i: int) -> np.ndarray:
        """A constant's real values (float32), per channel where the file quantizes it so."""
        c = self.const(i)
        q = self.quant(i)
        if c.dtype.kind == "f" or q is None:
            return c.astype(np.float32)
        scales, zps, axis = q
        shape = [1] * c.ndim
        if scales.size > 1:
            if not 0 <= axis < c.ndim or c.shape[axis] != scales.size:
                raise self.fail(f"constant '{self.raw_name(i)}' has {scales.size} scales for dimension {axis} of "
                                f"shape {list(c.shape)}")
            shape[axis] = -1
        return ((c.astype(np.float64) - zps.reshape(shape)) * scales.reshape(shape)).astype(np.float32)

    # ---- IR tensors -------------------------------------------------------------------------------------------

    def act_quant(self, i: int, t: Tensor) -> None:
        """Give an activation tensor the file's element type and scale."""
        kind = self.type_name(i)
        if kind == "FLOAT32":
            return
        q = self.quant(i)
        if kind not in ("INT8", "INT16") or q is None:
            raise self.fail(f"activation '{self.raw_name(i)}' is {kind}" + ("" if q else " without scale") +
                            "; edgec imports float32, int8 and int16 (16x8) activations")
        scales, zps, _ = q
        if scales.size != 1:
            raise self.fail(f"activation '{self.raw_name(i)}' is quantized per channel; edgec takes one scale per "
                            "activation")
        if kind == "INT16" and int(zps[0]) != 0:
            raise self.fail(f"int16 activation '{self.raw_name(i)}' has zero point {int(zps[0])}; TFLite's 16x8 "
                            "kernels (and edgec's) take zero point 0")
        if kind == "INT8" and not -128 <= int(zps[0]) <= 127:
            raise self.fail(f"int8 activation '{self.raw_name(i)}' has zero point {int(zps[0])}, outside [-128, 127]")
        t.fixed_quant, t.fixed_dtype = (float(scales[0]), int(zps[0])), kind.lower()
        self.quantized = True

    def new_tensor(self, base: str, shape: tuple[int, ...], like: int | None = None) -> str:
        name = unique_name(base, self.tensors)
        t = Tensor(name, tuple(shape))
        if like is not None:
            self.act_quant(like, t)
        self.tensors[name] = t
        return name

    def ir_shape(self, i: int) -> tuple[int, ...]:
        s = self.shape(i)
        return tuple(s[a] for a in NCHW_OF_NHWC) if len(s) == 4 else s

    def act(self, i: int, where: str) -> str:
        """The IR name of activation i (already produced)."""
        if i not in self.ir:
            if self.const(i) is not None:
                raise self.op_fail(where, f"operand '{self.raw_name(i)}' must be an activation, not a constant")
            raise self.op_fail(where, f"reads tensor '{self.raw_name(i)}' before any operator writes it")
        return self.ir[i]

    def out(self, i: int, where: str) -> str:
        """Create the IR tensor an operator writes for TFLite tensor i."""
        if i in self.ir or self.const(i) is not None:
            raise self.op_fail(where, f"writes tensor '{self.raw_name(i)}', which is already defined")
        base = self.raw_name(i) + ("_nchw" if i in self.graph_outputs and len(self.shape(i)) == 4 else "")
        self.ir[i] = self.new_tensor(base, self.ir_shape(i), like=i)
        return self.ir[i]

    def operand(self, i: int, rank: int, where: str) -> str:
        """An activation, or a constant operand of a broadcasting op as an IR constant of logical layout."""
        c = self.const(i)
        if c is None:
            return self.act(i, where)
        v = self.dequantized(i)
        if rank == 4:
            v = v.reshape((1,) * (4 - v.ndim) + v.shape).transpose(NCHW_OF_NHWC)
        name = unique_name(self.raw_name(i), self.tensors)
        self.tensors[name] = Tensor(name, tuple(v.shape), np.ascontiguousarray(v))
        return name

    def node(self, op: str, where: str, inputs: list[str], outputs: list[str], **attrs) -> Node:
        n = Node(op, where, inputs, outputs, attrs)
        self.nodes.append(n)
        return n

    def expect_shape(self, where: str, i: int, want: tuple[int, ...]) -> None:
        if self.shape(i) != tuple(want):
            raise self.op_fail(where, f"output '{self.raw_name(i)}' has shape {list(self.shape(i))}, but the operator "
                               f"computes {list(want)} from its inputs (corrupt file?)")

    # ---- the model --------------------------------------------------------------------------------------------

    def run(self) -> Graph:
        tfl = self.tfl
        self.model = tfl.Model.GetRootAs(self.data, 0)
        if self.model.SubgraphsLength() != 1:
            raise self.fail(f"the model has {self.model.SubgraphsLength()} subgraphs; edgec imports models with one "
                            "(no control flow operators)")
        self.sg = self.model.Subgraphs(0)
        ins = [int(x) for x in self.sg.InputsAsNumpy()] if self.sg.InputsLength() else []
        outs = [int(x) for x in self.sg.OutputsAsNumpy()] if self.sg.OutputsLength() else []
        if not ins or not outs:
            raise self.fail("the model has no inputs or no outputs")
        self.graph_outputs = set(outs)
        g_inputs = []
        self.input_ir: dict[int, str] = {}  # model input index -> its IR tensor (the file's shape and name)
        for i in ins:
            if self.const(i) is not None or i in self.ir:
                raise self.fail(f"input '{self.raw_name(i)}' is a constant or listed twice")
            if i in self.graph_outputs:
                raise self.fail(f"'{self.raw_name(i)}' is both an input and an output of the model")
            shape = self.shape(i)
            name = self.new_tensor(self.raw_name(i), shape, like=i)
            g_inputs.append(name)
            self.ir[i] = self.input_ir[i] = name
            if len(shape) == 4:
                inner = self.new_tensor(f"{name}_nchw", self.ir_shape(i), like=i)
                self.node("Transpose", f"{name}_to_nchw", [name], [inner], perm=list(NCHW_OF_NHWC))
                self.ir[i] = inner
        for k in range(self.sg.OperatorsLength()):
            self.operator(k)
        g_outputs = []
        for i in outs:
            if i not in self.ir:
                raise self.fail(f"output '{self.raw_name(i)}' is not written by any operator")
            if len(self.shape(i)) == 4:
                name = unique_name(self.raw_name(i), self.tensors)
                self.tensors[name] = Tensor(name, self.shape(i))
                self.act_quant(i, self.tensors[name])
                self.node("Transpose", f"{name}_to_nhwc", [self.ir[i]], [name], perm=list(NHWC_OF_NCHW))
                g_outputs.append(name)
            else:
                g_outputs.append(self.ir[i])
        g = Graph(self.path.stem, self.tensors, self.nodes, g_inputs, g_outputs)
        g.info["source_format"] = "tflite"
        g.info["tflite_tensors"] = {name: i for i, name in self.ir.items()}  # for comparing intermediates with TFLM
        # outputs the file holds as integers: edgec run writes them as the integers (the model's own dtype)
        g.info["integer_outputs"] = [n for n, i in zip(g_outputs, outs) if self.type_name(i) in ("INT8", "INT16")]
        if self.quantized:
            g.arithmetic = "tflm"
        return g

    def operator(self, k: int) -> None:
        op = self.sg.Operators(k)
        idx = op.OpcodeIndex()
        if not 0 <= idx < self.model.OperatorCodesLength():
            raise self.fail(f"operator {k} names operator code {idx}; the file has {self.model.OperatorCodesLength()}")
        code = self.model.OperatorCodes(idx)
        builtin = max(int(code.BuiltinCode()), int(code.DeprecatedBuiltinCode()))
        kind = self.ops.get(builtin, f"builtin operator {builtin}")
        if kind == "CUSTOM":
            custom = code.CustomCode()
            kind = f"CUSTOM ({custom.decode('utf-8', 'replace') if custom else '?'})"
        where = f"{kind} (operator {k})"
        ins = [int(x) for x in op.InputsAsNumpy()] if op.InputsLength() else []
        outs = [int(x) for x in op.OutputsAsNumpy()] if op.OutputsLength() else []
        handler = getattr(self, f"op_{kind.lower()}", None)
        if handler is None:
            raise self.op_fail(where, f"unsupported operator. edgec imports {', '.join(sorted(SUPPORTED))}")
        if len(outs) != 1 or not ins:
            raise self.op_fail(where, f"has {len(ins)} inputs and {len(outs)} outputs")
        handler(where, op, ins, outs[0])

    def options(self, op, cls_name: str):
        table = op.BuiltinOptions()
        opts = getattr(self.tfl, cls_name)()
        if table is None:
            return None
        opts.Init(table.Bytes, table.Pos)
        return opts

    def fused(self, where: str, code: int) -> tuple[float, float] | None:
        f = self.tfl.ActivationFunctionType
        ranges = {f.NONE: None, f.RELU: (0.0, math.inf), f.RELU6: (0.0, 6.0), f.RELU_N1_TO_1: (-1.0, 1.0)}
        if code not in ranges:
            raise self.op_fail(where, f"fused activation {code} is not supported (NONE, RELU, RELU6, RELU_N1_TO_1)")
        return ranges[code]

    def with_act(self, n: Node, act: tuple[float, float] | None) -> None:
        if act is not None:
            n.attrs["act"] = act

    def window(self, where: str, x: tuple[int, ...], k: tuple[int, int], stride: tuple[int, int],
               dil: tuple[int, int], padding: int) -> tuple[list[int], list[int]]:
        """(output H, W), ONNX pads [top, left, bottom, right] for TFLite SAME or VALID padding."""
        if min(stride) <= 0 or min(dil) <= 0 or min(k) <= 0:
            raise self.op_fail(where, f"strides {list(stride)}, dilations {list(dil)} and kernel {list(k)} must be "
                               "positive")
        if padding == self.tfl.Padding.SAME:
            (oh, t, b), (ow, le, r) = (_same_pads(x[d], k[d], stride[d], dil[d]) for d in (0, 1))
            return [oh, ow], [t, le, b, r]
        if padding == self.tfl.Padding.VALID:
            return [_valid_out(x[d], k[d], stride[d], dil[d]) for d in (0, 1)], [0, 0, 0, 0]
        raise self.op_fail(where, f"padding {padding} is not supported (SAME or VALID)")

    # ---- operators --------------------------------------------------------------------------------------------

    def _conv(self, where: str, op, ins: list[int], out: int, depthwise: bool) -> None:
        o = self.options(op, "DepthwiseConv2DOptions" if depthwise else "Conv2DOptions")
        if o is None:
            raise self.op_fail(where, "has no options")
        if len(ins) < 2 or len(self.shape(ins[0])) != 4:
            raise self.op_fail(where, "needs a 4-D input and weights")
        x = self.act(ins[0], where)
        n, h, w, c = self.shape(ins[0])
        wi = ins[1]
        if self.const(wi) is None or len(self.shape(wi)) != 4:
            raise self.op_fail(where, "the weights must be a 4-D constant")
        co, kh, kw, ci = self.shape(wi)
        if depthwise:  # weights [1, kh, kw, c * m]
            mult = max(1, int(o.DepthMultiplier()))
            if co != 1 or ci != c * mult:
                raise self.op_fail(where, f"depthwise weights {list(self.shape(wi))} do not fit {c} input channels")
            out_c, group = ci, c
        else:
            if ci <= 0 or c % ci:
                raise self.op_fail(where, f"weights {list(self.shape(wi))} do not fit {c} input channels")
            out_c, group = co, c // ci
        dil = (int(o.DilationHFactor()), int(o.DilationWFactor()))
        stride = (int(o.StrideH()), int(o.StrideW()))
        sp, pads = self.window(where, (h, w), (kh, kw), stride, dil, o.Padding())
        self.expect_shape(where, out, (n, sp[0], sp[1], out_c))
        wname = self.weights(where, wi, (3, 0, 1, 2) if depthwise else (0, 3, 1, 2), 0)
        inputs = [x, wname]
        if len(ins) > 2 and ins[2] >= 0:
            inputs.append(self.bias(where, ins[2], out_c))
        attrs = dict(kernel_shape=[kh, kw], strides=list(stride), dilations=list(dil), pads=pads, group=group)
        self.with_act(self.node("Conv", where, inputs, [self.out(out, where)], **attrs),
                      self.fused(where, o.FusedActivationFunction()))

    def op_conv_2d(self, where, op, ins, out):
        self._conv(where, op, ins, out, depthwise=False)

    def op_depthwise_conv_2d(self, where, op, ins, out):
        self._conv(where, op, ins, out, depthwise=True)

    def weights(self, where: str, i: int, perm: tuple[int, ...], channel_axis: int) -> str:
        """A weight constant in the IR's layout (perm of the file's), its int8 scales kept."""
        v = self.dequantized(i).transpose(perm)
        name = unique_name(self.raw_name(i), self.tensors)
        t = Tensor(name, tuple(v.shape), np.ascontiguousarray(v))
        if self.type_name(i) in ("INT8", "INT4"):
            scales, zps, axis = self.quant(i) or (None, None, 0)
            if scales is None or np.any(zps != 0):
                raise self.op_fail(where, f"weights '{self.raw_name(i)}' are int8 without symmetric scales (zero "
                                   "point 0); edgec's kernels take symmetric int8 weights")
            if scales.size > 1 and perm[channel_axis] != axis:
                raise self.op_fail(where, f"weights '{self.raw_name(i)}' are quantized along dimension {axis}, not "
                                   "per output channel")
            t.weight_scales = (scales, channel_axis)
        elif self.type_name(i) != "FLOAT32":
            raise self.op_fail(where, f"weights '{self.raw_name(i)}' are {self.type_name(i)}; edgec imports int8 and "
                               "float32 weights")
        self.tensors[name] = t
        return name

    def bias(self, where: str, i: int, channels: int) -> str:
        if self.const(i) is None or self.shape(i) != (channels,):
            raise self.op_fail(where, f"the bias must be a constant of {channels} values")
        name = unique_name(self.raw_name(i), self.tensors)
        kind = self.type_name(i)
        if kind == "FLOAT32":
            self.tensors[name] = Tensor(name, (channels,), self.const(i).astype(np.float32))
        elif kind in ("INT32", "INT64"):
            q = self.quant(i)
            if q is None or np.any(q[1] != 0):
                raise self.op_fail(where, f"the {kind} bias '{self.raw_name(i)}' has no scale or a non-zero zero point")
            ints = self.const(i).astype(np.int64)
            scales = np.broadcast_to(q[0], (channels,)).astype(np.float64)
            value = (ints.astype(np.float32) * scales.astype(np.float32)).astype(np.float32)
            t = Tensor(name, (channels,), value)
            t.int_values = (ints.astype(np.int32) if kind == "INT32" else ints, scales)  # (16x8 layers: int64)
            self.tensors[name] = t
        else:
            raise self.op_fail(where, f"the bias is {kind}; edgec imports int32 and float32 biases")
        return name

    def op_fully_connected(self, where, op, ins, out):
        o = self.options(op, "FullyConnectedOptions")
        if o is not None and o.WeightsFormat() != 0:
            raise self.op_fail(where, "shuffled weights formats are not supported")
        if len(ins) < 2 or self.const(ins[1]) is None or len(self.shape(ins[1])) != 2:
            raise self.op_fail(where, "the weights must be a 2-D constant")
        nout, k = self.shape(ins[1])
        if self.const(ins[0]) is not None:
            raise self.op_fail(where, "a constant input is not supported")
        if self.type_name(ins[0]) == "FLOAT32" and self.type_name(ins[1]) != "FLOAT32":
            raise self.op_fail(where, "hybrid models (float activations, int8 weights) are not supported; convert "
                               "the model to full integer or float")
        xs = self.shape(ins[0])
        if math.prod(xs) % k:
            raise self.op_fail(where, f"an input of shape {list(xs)} does not split into rows of {k}")
        rows = math.prod(xs) // k
        keep = o is not None and o.KeepNumDims()
        want = (*xs[:-1], nout) if keep else (rows, nout)
        self.expect_shape(where, out, want)
        x = self.flatten(where, ins[0], (rows, k))
        inputs = [x, self.weights(where, ins[1], (0, 1), 0)]
        if len(ins) > 2 and ins[2] >= 0:
            inputs.append(self.bias(where, ins[2], nout))
        act = self.fused(where, o.FusedActivationFunction()) if o is not None else None
        if keep and len(want) != 2:
            mid = self.new_tensor(f"{self.raw_name(out)}_rows", (rows, nout), like=out)
            self.with_act(self.node("Gemm", where, inputs, [mid], transB=1), act)
            self.reshape_to(where, mid, out)
        else:
            self.with_act(self.node("Gemm", where, inputs, [self.out(out, where)], transB=1), act)

    def flatten(self, where: str, i: int, shape: tuple[int, ...]) -> str:
        """Activation i reshaped (in NHWC element order, as TFLite does) to shape."""
        x = self.act(i, where)
        if self.shape(i) == shape:
            return x
        src = self.nhwc(where, i)
        flat = self.new_tensor(f"{self.raw_name(i)}_flat", shape, like=i)
        self.node("Reshape", f"{where}_flatten", [src], [flat])
        return flat

    def nhwc(self, where: str, i: int) -> str:
        """Activation i in the file's element order: itself, or a Transpose back to NHWC where that moves data."""
        x = self.act(i, where)
        shape = self.shape(i)
        if len(shape) != 4 or not _moves(shape):
            return x if len(shape) != 4 else self._plain_view(where, x, shape, i)
        t = self.new_tensor(f"{self.raw_name(i)}_nhwc", shape, like=i)
        self.node("Transpose", f"{where}_to_nhwc", [x], [t], perm=list(NHWC_OF_NCHW))
        return t

    def _plain_view(self, where: str, x: str, shape: tuple[int, ...], i: int) -> str:
        """A 4-D tensor whose NCHW and NHWC orders hold the same bytes: read as NHWC through a Reshape."""
        t = self.new_tensor(f"{self.raw_name(i)}_nhwc", shape, like=i)
        self.node("Reshape", f"{where}_as_nhwc", [x], [t])
        return t

    def reshape_to(self, where: str, src: str, out: int) -> None:
        """Write activation out (file layout) from the IR tensor src holding its values in NHWC element order."""
        shape = self.shape(out)
        if len(shape) != 4:
            self.node("Reshape", where, [src], [self.out(out, where)])
            return
        mid = self.new_tensor(f"{self.raw_name(out)}_nhwc", shape, like=out)
        self.node("Reshape", f"{where}_reshape", [src], [mid])
        if _moves(shape):
            self.node("Transpose", f"{where}_to_nchw", [mid], [self.out(out, where)], perm=list(NCHW_OF_NHWC))
        else:
            self.node("Reshape", f"{where}_as_nchw", [mid], [self.out(out, where)])

    def op_reshape(self, where, op, ins, out):
        if math.prod(self.shape(ins[0])) != math.prod(self.shape(out)):
            raise self.op_fail(where, f"cannot reshape {list(self.shape(ins[0]))} to {list(self.shape(out))}")
        src = self.nhwc(where, ins[0])
        if len(self.shape(ins[0])) == 4 or len(self.shape(out)) == 4:
            self.reshape_to(where, src, out)
        else:
            self.node("Reshape", where, [src], [self.out(out, where)])

    op_squeeze = op_reshape
    op_expand_dims = op_reshape

    def _pool(self, where: str, op, ins: list[int], out: int, kind: str) -> None:
        o = self.options(op, "Pool2DOptions")
        if o is None or len(self.shape(ins[0])) != 4:
            raise self.op_fail(where, "needs a 4-D input and options")
        n, h, w, c = self.shape(ins[0])
        k, stride = (int(o.FilterHeight()), int(o.FilterWidth())), (int(o.StrideH()), int(o.StrideW()))
        sp, pads = self.window(where, (h, w), k, stride, (1, 1), o.Padding())
        self.expect_shape(where, out, (n, sp[0], sp[1], c))
        attrs = dict(kernel_shape=list(k), strides=list(stride), pads=pads)
        self.with_act(self.node(kind, where, [self.act(ins[0], where)], [self.out(out, where)], **attrs),
                      self.fused(where, o.FusedActivationFunction()))

    def op_average_pool_2d(self, where, op, ins, out):
        self._pool(where, op, ins, out, "AveragePool")

    def op_max_pool_2d(self, where, op, ins, out):
        self._pool(where, op, ins, out, "MaxPool")

    def _binary(self, where: str, op, ins: list[int], out: int, kind: str, options: str) -> None:
        if len(ins) != 2:
            raise self.op_fail(where, "needs two inputs")
        shapes = [self.shape(i) for i in ins]
        try:
            want = np.broadcast_shapes(*shapes)
        except ValueError:
            raise self.op_fail(where, f"shapes {[list(s) for s in shapes]} do not broadcast") from None
        self.expect_shape(where, out, want)
        rank = len(want)
        o = self.options(op, options)
        inputs = []
        for i, s in zip(ins, shapes):
            if self.const(i) is None and len(s) != rank:
                raise self.op_fail(where, "broadcasting an activation of lower rank is not supported")
            inputs.append(self.operand(i, rank, where))
        if all(self.const(i) is not None for i in ins):
            raise self.op_fail(where, "both operands are constant")
        act = self.fused(where, o.FusedActivationFunction()) if o is not None else None
        self.with_act(self.node(kind, where, inputs, [self.out(out, where)]), act)

    def op_add(self, where, op, ins, out):
        self._binary(where, op, ins, out, "Add", "AddOptions")

    def op_sub(self, where, op, ins, out):
        self._binary(where, op, ins, out, "Sub", "SubOptions")

    def op_mul(self, where, op, ins, out):
        self._binary(where, op, ins, out, "Mul", "MulOptions")

    def op_softmax(self, where, op, ins, out):
        o = self.options(op, "SoftmaxOptions")
        if o is not None and o.Beta() != 1.0:
            raise self.op_fail(where, f"beta {o.Beta()} is not supported (only 1.0)")
        self.expect_shape(where, out, self.shape(ins[0]))
        axis = 1 if len(self.shape(ins[0])) == 4 else -1
        self.node("Softmax", where, [self.act(ins[0], where)], [self.out(out, where)], axis=axis)

    def op_concatenation(self, where, op, ins, out):
        o = self.options(op, "ConcatenationOptions")
        rank = len(self.shape(out))
        axis = int(o.Axis()) if o is not None else 0
        if not -rank <= axis < rank:
            raise self.op_fail(where, f"axis {axis} is out of range for rank {rank}")
        axis %= rank
        shapes = [self.shape(i) for i in ins]
        if any(len(s) != rank or s[:axis] + s[axis + 1:] != shapes[0][:axis] + shapes[0][axis + 1:] for s in shapes):
            raise self.op_fail(where, f"inputs {[list(s) for s in shapes]} do not concatenate along axis {axis}")
        want = list(shapes[0])
        want[axis] = sum(s[axis] for s in shapes)
        self.expect_shape(where, out, tuple(want))
        inputs = [self.operand(i, rank, where) for i in ins]
        self.unary_after(where, "Concat", inputs, out, self.fused(where, o.FusedActivationFunction() if o else 0),
                         axis=NHWC_AXIS[axis] if rank == 4 else axis)

    def unary_after(self, where: str, kind: str, inputs: list[str], out: int, act, **attrs) -> None:
        """An op without a fused activation stage, followed by its activation as its own node when there is one."""
        if act is None:
            self.node(kind, where, inputs, [self.out(out, where)], **attrs)
            return
        mid = self.new_tensor(f"{self.raw_name(out)}_pre_act", self.ir_shape(out), like=out)
        self.node(kind, where, inputs, [mid], **attrs)
        self.node("Clip", f"{where}_act", [mid], [self.out(out, where)], min=act[0], max=act[1])

    def op_pad(self, where, op, ins, out):
        shape = self.shape(ins[0])
        p = self.const(ins[1]) if len(ins) > 1 else None
        if p is None or p.shape != (len(shape), 2):
            raise self.op_fail(where, f"the paddings must be a constant of shape [{len(shape)}, 2]")
        p = p.astype(np.int64)
        if np.any(p < 0):
            raise self.op_fail(where, "negative paddings are not supported")
        self.expect_shape(where, out, tuple(int(s + a + b) for s, (a, b) in zip(shape, p)))
        value = 0.0
        if len(ins) > 2 and ins[2] >= 0:  # PADV2
            if self.const(ins[2]) is None or self.const(ins[2]).size != 1:
                raise self.op_fail(where, "the pad value must be a constant scalar")
            value = float(self.dequantized(ins[2]).reshape(-1)[0])
        order = NCHW_OF_NHWC if len(shape) == 4 else tuple(range(len(shape)))
        pads = [int(p[a, 0]) for a in order] + [int(p[a, 1]) for a in order]
        inputs = [self.act(ins[0], where)]
        if value != 0.0:
            inputs += [self.new_const(f"{where}_pads", np.array(pads, np.int64)),
                       self.new_const(f"{where}_value", np.array([value], np.float32))]
            self.node("Pad", where, inputs, [self.out(out, where)])
        else:
            self.node("Pad", where, inputs, [self.out(out, where)], pads=pads)

    op_padv2 = op_pad

    def new_const(self, base: str, v: np.ndarray) -> str:
        name = unique_name(base, self.tensors)
        self.tensors[name] = Tensor(name, tuple(v.shape), v)
        return name

    def op_mean(self, where, op, ins, out):
        shape = self.shape(ins[0])
        axes = self.const(ins[1]) if len(ins) > 1 else None
        if axes is None or len(shape) != 4:
            raise self.op_fail(where, "only a mean over the height and width of a 4-D tensor is supported")
        axes = sorted({int(a) % 4 for a in axes.reshape(-1)})
        if axes != [1, 2]:
            raise self.op_fail(where, f"a mean over axes {axes} is not supported (only [1, 2]: height and width)")
        o = self.options(op, "ReducerOptions")
        keep = bool(o.KeepDims()) if o is not None else False
        n, _, _, c = shape
        self.expect_shape(where, out, (n, 1, 1, c) if keep else (n, c))
        x = self.act(ins[0], where)
        # GlobalAveragePool; tflite_op tells the arithmetic it is TFLite's MEAN (not AVERAGE_POOL_2D)
        if keep:
            self.node("GlobalAveragePool", where, [x], [self.out(out, where)], tflite_op="MEAN")
            return
        mid = self.new_tensor(f"{self.raw_name(out)}_keepdims", (n, c, 1, 1), like=out)
        self.node("GlobalAveragePool", where, [x], [mid], tflite_op="MEAN")
        self.node("Reshape", f"{where}_squeeze", [mid], [self.out(out, where)])

    def op_transpose(self, where, op, ins, out):
        shape = self.shape(ins[0])
        perm = self.const(ins[1]) if len(ins) > 1 else None
        if perm is None or sorted(int(a) % max(len(shape), 1) for a in perm.reshape(-1)) != list(range(len(shape))):
            raise self.op_fail(where, "the permutation must be a constant listing every axis once")
        perm = [int(a) % len(shape) for a in perm.reshape(-1)]
        self.expect_shape(where, out, tuple(shape[a] for a in perm))
        if len(shape) == 4:  # NCHW -> NHWC, the file's permutation, NHWC -> NCHW
            perm = [NHWC_OF_NCHW[a] for a in perm]
            perm = [perm[a] for a in NCHW_OF_NHWC]
        self.node("Transpose", where, [self.act(ins[0], where)], [self.out(out, where)], perm=perm)

    def _unary(self, where: str, ins: list[int], out: int, kind: str, **attrs) -> None:
        self.expect_shape(where, out, self.shape(ins[0]))
        self.node(kind, where, [self.act(ins[0], where)], [self.out(out, where)], **attrs)

    def op_relu(self, where, op, ins, out):
        self._unary(where, ins, out, "Relu")

    def op_relu6(self, where, op, ins, out):
        self._unary(where, ins, out, "Clip", min=0.0, max=6.0)

    def op_relu_n1_to_1(self, where, op, ins, out):
        self._unary(where, ins, out, "Clip", min=-1.0, max=1.0)

    def op_logistic(self, where, op, ins, out):
        self._unary(where, ins, out, "Sigmoid")

    def op_tanh(self, where, op, ins, out):
        self._unary(where, ins, out, "Tanh")

    def op_hard_swish(self, where, op, ins, out):
        self._unary(where, ins, out, "HardSwish")

    def op_leaky_relu(self, where, op, ins, out):
        o = self.options(op, "LeakyReluOptions")
        self._unary(where, ins, out, "LeakyRelu", alpha=float(o.Alpha()) if o is not None else 0.2)

    def op_quantize(self, where, op, ins, out):
        """float -> int at a model input: the build's input is then the integer tensor (run and validate quantize
        float samples with its scale). Between two integer formats it is not supported yet."""
        self.expect_shape(where, out, self.shape(ins[0]))
        src = ins[0]
        if self.type_name(src) != "FLOAT32" or src not in self.input_ir:
            raise self.op_fail(where, f"QUANTIZE from {self.type_name(src)} inside the model is not supported; "
                               "edgec imports QUANTIZE only on a float model input")
        name = self.ir[src]
        self.act_quant(out, self.tensors[name])
        self.act_quant(out, self.tensors[self.input_ir[src]])  # 4-D: the NHWC input too
        self.node("Reshape", where, [name], [self.out(out, where)])

    def op_dequantize(self, where, op, ins, out):
        """A constant (weights stored as int8 or float16): folded. An activation at a model output: the build's
        output stays the integer tensor (run and validate dequantize it with its scale)."""
        self.expect_shape(where, out, self.shape(ins[0]))
        if self.const(ins[0]) is not None:
            self.consts[out] = self.dequantized(ins[0])
            return
        if out not in self.graph_outputs:
            raise self.op_fail(where, "DEQUANTIZE of an activation is supported only at a model output")
        x = self.act(ins[0], where)
        y = self.out(out, where)
        self.act_quant(ins[0], self.tensors[y])
        self.node("Reshape", where, [x], [y])


def _moves(nhwc: tuple[int, ...]) -> bool:
    """Whether NHWC -> NCHW order of this shape moves bytes (more than one of H*W and C above 1)."""
    kept = [a for a in NCHW_OF_NHWC if nhwc[a] != 1]
    return kept != sorted(kept)


SUPPORTED = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "AVERAGE_POOL_2D", "MAX_POOL_2D", "ADD", "SUB", "MUL",
             "RESHAPE", "SQUEEZE", "EXPAND_DIMS", "SOFTMAX", "CONCATENATION", "PAD", "PADV2", "MEAN", "QUANTIZE",
             "DEQUANTIZE", "LOGISTIC", "TANH", "HARD_SWISH", "RELU", "RELU6", "RELU_N1_TO_1", "LEAKY_RELU",
             "TRANSPOSE")
