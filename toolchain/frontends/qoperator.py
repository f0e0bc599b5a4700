"""Operator-form quantized ONNX, rewritten into the QDQ form that frontends/onnx.py imports.

onnxruntime's quantize_static(quant_format=QOperator) writes QLinearConv and QLinearMatMul, and in the com.microsoft
domain QLinearAdd, QLinearMul, QLinearAveragePool, QLinearGlobalAveragePool, QGemm, QLinearSoftmax, QLinearConcat,
QLinearLeakyRelu and QLinearSigmoid, on int8/uint8 tensors; ops that only move bytes (Reshape, MaxPool, ...) work on
the int8 tensors directly. ConvInteger and MatMulInteger give an int32 accumulator that Cast and Mul turn into float.

Each such node becomes its float op between DequantizeLinear and QuantizeLinear with the node's own scales and zero
points (an int32 bias is dequantized with scale input scale x weight scale), so the integers edgec computes are those
of the model. Dynamic quantization (DynamicQuantizeLinear: activation scales computed at run time) is refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ..errors import EdgecError
from ..ir import unique_name

# op -> (float op, input positions of the (x, scale, zero point) triples, positions of (y scale, y zero point))
QLINEAR = {
    "QLinearConv": ("Conv", [(0, 1, 2)], (6, 7)),
    "QLinearMatMul": ("MatMul", [(0, 1, 2), (3, 4, 5)], (6, 7)),
    "QLinearAdd": ("Add", [(0, 1, 2), (3, 4, 5)], (6, 7)),
    "QLinearMul": ("Mul", [(0, 1, 2), (3, 4, 5)], (6, 7)),
    "QLinearAveragePool": ("AveragePool", [(0, 1, 2)], (3, 4)),
    "QLinearGlobalAveragePool": ("GlobalAveragePool", [(0, 1, 2)], (3, 4)),
    "QGemm": ("Gemm", [(0, 1, 2)], (7, 8)),
    "QLinearSoftmax": ("Softmax", [(0, 1, 2)], (3, 4)),
    "QLinearLeakyRelu": ("LeakyRelu", [(0, 1, 2)], (3, 4)),
    "QLinearSigmoid": ("Sigmoid", [(0, 1, 2)], (3, 4)),
    "QLinearConcat": ("Concat", [], (0, 1)),  # triples from input 2 on
}
# Ops that only move or select int8 values: the output has the input's scale and zero point.
MOVES_BYTES = {"Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "MaxPool", "Identity"}
INTEGER_ACCUMULATORS = {"ConvInteger": "Conv", "MatMulInteger": "MatMul"}
SUPPORTED = sorted(set(QLINEAR) | set(INTEGER_ACCUMULATORS))


def is_operator_form(model: onnx.ModelProto) -> bool:
    return any(n.op_type in QLINEAR or n.op_type in INTEGER_ACCUMULATORS or n.op_type == "DynamicQuantizeLinear"
               for n in model.graph.node)


class _Rewriter:
    def __init__(self, model: onnx.ModelProto, path: Path) -> None:
        self.graph = model.graph
        self.path = path
        self.inits = {i.name: numpy_helper.to_array(i) for i in self.graph.initializer}
        self.qparams: dict[str, tuple[str, str]] = {}  # int8 tensor -> (scale, zero point) initializer names
        self.nodes: list[onnx.NodeProto] = []
        self.skip: set[int] = set()  # Cast/Mul/Add nodes folded into an integer accumulator's rewrite
        self.names = {o for n in self.graph.node for o in n.output} | set(self.inits)
        self.names |= {i.name for i in self.graph.input}
        self.ranks = {v.name: len(v.type.tensor_type.shape.dim) for v in list(self.graph.value_info) +
                      list(self.graph.input) + list(self.graph.output) if v.type.tensor_type.HasField("shape")}

    def fail(self, node: onnx.NodeProto, why: str) -> EdgecError:
        return EdgecError(f"{self.path}: {node.op_type} (node '{node.name}'): {why}")

    def fresh(self, base: str) -> str:
        name = unique_name(base, self.names)
        self.names.add(name)
        return name

    def const(self, node: onnx.NodeProto, k: int, what: str) -> np.ndarray:
        name = node.input[k] if len(node.input) > k else ""
        if name not in self.inits:
            raise self.fail(node, f"its {what} must be a constant initializer")
        return self.inits[name]

    def add_init(self, base: str, value: np.ndarray) -> str:
        name = self.fresh(base)
        self.inits[name] = value
        self.graph.initializer.append(numpy_helper.from_array(value, name))
        return name

    def dequantize(self, x: str, scale: str, zp: str, axis: int | None = None) -> str:
        out = self.fresh(f"{x}_dequantized")
        attrs = {} if axis is None else {"axis": axis}
        self.nodes.append(helper.make_node("DequantizeLinear", [x, scale, zp], [out], name=out, **attrs))
        return out

    def quantize(self, x: str, scale: str, zp: str, out: str) -> None:
        self.nodes.append(helper.make_node("QuantizeLinear", [x, scale, zp], [out], name=f"{out}_QuantizeLinear"))
        self.qparams[out] = (scale, zp)

    def weights(self, node: onnx.NodeProto, k: int, axis: int) -> str:
        """DequantizeLinear of constant int8 weights at input k (scale k + 1, zero point k + 2), which must be
        symmetric (zero point 0)."""
        w = self.const(node, k, "weight tensor")
        scale, zp = self.const(node, k + 1, "weight scale"), self.const(node, k + 2, "weight zero point")
        if np.any(zp) or w.dtype != np.int8:
            raise self.fail(node, "weights with a non-zero zero point or of type uint8 (asymmetric); edgec's "
                                  "kernels take symmetric int8 weights: quantize with weight_type=QInt8")
        return self.dequantize(node.input[k], node.input[k + 1], node.input[k + 2], axis if scale.size > 1 else None)

    def bias(self, node: onnx.NodeProto, k: int, x_scale: str, w_scale: str, alpha: float = 1.0) -> str:
        """DequantizeLinear of a constant int32 bias with scale x_scale * w_scale (per output channel)."""
        b = self.const(node, k, "bias")
        scale = (np.float32(self.inits[x_scale].reshape(())) * self.inits[w_scale].astype(np.float32) *
                 np.float32(alpha)).astype(np.float32)
        scale = np.broadcast_to(scale.ravel(), b.shape).copy() if scale.size > 1 else scale.reshape(())
        s = self.add_init(f"{node.input[k]}_scale", scale)
        z = self.add_init(f"{node.input[k]}_zero_point", np.zeros(scale.shape, np.int32))
        return self.dequantize(node.input[k], s, z, 0 if scale.ndim else None)

    def activation(self, node: onnx.NodeProto, x: int, s: int, z: int) -> str:
        for k in (s, z):
            if len(node.input) <= k or not node.input[k]:
                raise self.fail(node, "every scale and zero point must be given")
            self.const(node, k, "scale and zero point")
        if self.inits[node.input[s]].size != 1:
            raise self.fail(node, "activations need one scale per tensor")
        return self.dequantize(node.input[x], node.input[s], node.input[z])

    def rewrite_qlinear(self, node: onnx.NodeProto) -> None:
        op, triples, (ys, yz) = QLINEAR[node.op_type]
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "QLinearConcat":
            triples = [(k, k + 1, k + 2) for k in range(2, len(node.input), 3)]
        if node.op_type == "QLinearMatMul" and node.input[3] in self.inits:
            triples = triples[:1]  # constant weights, per column (axis 1 of [K][N]) below
        xs = [self.activation(node, *t) for t in triples]
        if node.op_type == "QLinearConv":
            xs.append(self.weights(node, 3, 0))
            if len(node.input) > 8 and node.input[8]:
                xs.append(self.bias(node, 8, node.input[1], node.input[4]))
        elif node.op_type == "QLinearMatMul" and len(xs) == 1:
            xs.append(self.weights(node, 3, 1))
        elif node.op_type == "QGemm":
            if attrs.get("transA", 0):
                raise self.fail(node, "transA=1 is not supported")
            xs.append(self.weights(node, 3, 0 if attrs.get("transB", 0) else 1))
            if len(node.input) > 6 and node.input[6]:
                xs.append(self.bias(node, 6, node.input[1], node.input[4], attrs.get("alpha", 1.0)))
        elif node.op_type in ("QLinearAveragePool", "QLinearGlobalAveragePool"):
            if attrs.pop("channels_last", 0):
                raise self.fail(node, "channels_last=1 is not supported")
        elif node.op_type == "QLinearSoftmax" and attrs.pop("opset", 13) < 13:
            rank = self.ranks.get(node.input[0])
            axis = attrs.get("axis", 1)
            if rank is None or axis % rank != rank - 1:
                raise self.fail(node, "softmax with opset < 13 semantics (over all axes from 'axis' on) is only "
                                      "imported over the last axis")
            attrs["axis"] = -1
        quantized_out = len(node.input) > yz and node.input[ys] and node.input[yz]
        y = node.output[0]
        out = self.fresh(f"{y}_float") if quantized_out else y
        self.nodes.append(helper.make_node(op, xs, [out], name=node.name, **attrs))
        if quantized_out:
            self.quantize(out, node.input[ys], node.input[yz], y)

    def rewrite_integer(self, node: onnx.NodeProto, consumers: dict[str, list[int]]) -> None:
        """ConvInteger / MatMulInteger on a QuantizeLinear output, then Cast to float, Mul by a constant
        (input scale x weight scale) and optionally Add of a constant bias."""
        x = node.input[0]
        if x not in self.qparams:
            raise self.fail(node, "its input must come from a QuantizeLinear with a constant scale (dynamic "
                                  "quantization is not supported)")
        x_scale, x_zp = self.qparams[x]
        if len(node.input) > 2 and node.input[2]:
            if not np.array_equal(self.const(node, 2, "input zero point").ravel(), self.inits[x_zp].ravel()):
                raise self.fail(node, "its input zero point differs from the QuantizeLinear's")
        chain = self._scale_chain(node, consumers)
        if chain is None:
            raise self.fail(node, "edgec imports it followed by Cast to float and Mul by a constant scale "
                                  "(optionally Add of a constant bias)")
        cast, mul, add, c, bias = chain
        self.skip |= {cast, mul} | ({add} if add is not None else set())
        w = self.const(node, 1, "weight tensor")
        conv = node.op_type == "ConvInteger"
        n_out = w.shape[0] if conv else w.shape[1]
        ws = (c.astype(np.float64).ravel() / float(self.inits[x_scale].reshape(()))).astype(np.float32)
        if ws.size not in (1, n_out):
            raise self.fail(node, f"the scale after it has {ws.size} values for {n_out} output channels")
        w_zp = self.const(node, 3, "weight zero point") if len(node.input) > 3 and node.input[3] else np.zeros(1)
        if np.any(w_zp):
            raise self.fail(node, "weights with a non-zero zero point (asymmetric, e.g. uint8 weights); edgec's "
                                  "kernels take symmetric int8 weights")
        if w.dtype != np.int8:
            raise self.fail(node, f"weights of type {w.dtype}; edgec takes int8 weights")
        ws = ws if ws.size > 1 else ws.reshape(())
        s = self.add_init(f"{node.input[1]}_scale", ws)
        z = self.add_init(f"{node.input[1]}_zero_point", np.zeros(ws.shape, np.int8))
        axis = None if ws.ndim == 0 else (0 if conv else 1)  # per output channel: [O][I][kh][kw] or [K][N]
        inputs = [self.dequantize(x, x_scale, x_zp), self.dequantize(node.input[1], s, z, axis)]
        out = self.graph.node[add if add is not None else mul].output[0]
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if conv:
            if bias is not None:
                inputs.append(self.add_init(f"{node.name}_bias", bias.astype(np.float32)))
            self.nodes.append(helper.make_node("Conv", inputs, [out], name=node.name, **attrs))
        elif bias is not None:
            mm = self.fresh(f"{out}_matmul")
            self.nodes.append(helper.make_node("MatMul", inputs, [mm], name=node.name))
            b = self.add_init(f"{node.name}_bias", bias.astype(np.float32))
            self.nodes.append(helper.make_node("Add", [mm, b], [out], name=f"{node.name}_bias_add"))
        else:
            self.nodes.append(helper.make_node("MatMul", inputs, [out], name=node.name))

    def _scale_chain(self, node: onnx.NodeProto, consumers: dict[str, list[int]]):
        """(Cast index, Mul index, Add index or None, the Mul's constant, the bias per output channel or None)."""
        nodes = self.graph.node

        def only(name: str, op: str) -> int | None:
            users = consumers.get(name, [])
            return users[0] if len(users) == 1 and nodes[users[0]].op_type == op else None

        def other(k: int, name: str) -> np.ndarray | None:
            ins = [i for i in nodes[k].input if i != name]
            return self.inits.get(ins[0]) if len(ins) == 1 else None

        cast = only(node.output[0], "Cast")
        if cast is None or {a.name: a.i for a in nodes[cast].attribute}.get("to") != onnx.TensorProto.FLOAT:
            return None
        mul = only(nodes[cast].output[0], "Mul")
        c = other(mul, nodes[cast].output[0]) if mul is not None else None
        if c is None:
            return None
        add = only(nodes[mul].output[0], "Add")
        bias = other(add, nodes[mul].output[0]) if add is not None else None
        if bias is None or nodes[mul].output[0] in {o.name for o in self.graph.output}:
            return cast, mul, None, c, None
        return cast, mul, add, c, bias.ravel()

    def run(self) -> None:
        consumers: dict[str, list[int]] = {}
        for k, n in enumerate(self.graph.node):
            for i in n.input:
                consumers.setdefault(i, []).append(k)
        for k, node in enumerate(self.graph.node):
            if k in self.skip:
                continue
            op = node.op_type
            if op == "DynamicQuantizeLinear":
                raise self.fail(node, "dynamic quantization computes activation scales at run time, and edgec "
                                      "compiles static int8; quantize the float model with onnxruntime's "
                                      "quantize_static (QDQ or QOperator), or build it with --quantize int8 --calib")
            if op == "QuantizeLinear":
                self.qparams[node.output[0]] = (node.input[1], node.input[2] if len(node.input) > 2 else "")
                self.nodes.append(node)
            elif op in QLINEAR:
                self.rewrite_qlinear(node)
            elif op in INTEGER_ACCUMULATORS:
                self.rewrite_integer(node, consumers)
            elif op in MOVES_BYTES and node.input[0] in self.qparams:
                scale, zp = self.qparams[node.input[0]]
                out = self.fresh(f"{node.output[0]}_float")
                moved = helper.make_node(op, [self.dequantize(node.input[0], scale, zp), *node.input[1:]], [out],
                                         name=node.name)
                moved.attribute.extend(node.attribute)
                self.nodes.append(moved)
                self.quantize(out, scale, zp, node.output[0])
            elif op != "DequantizeLinear" and any(i in self.qparams for i in node.input):
                name = next(i for i in node.input if i in self.qparams)
                raise self.fail(node, f"it works on the quantized tensor '{name}', which edgec cannot import; "
                                      f"quantized ops edgec imports: {', '.join(SUPPORTED)}, and "
                                      f"{', '.join(sorted(MOVES_BYTES))} on quantized tensors")
            else:
                self.nodes.append(node)
        del self.graph.node[:]
        self.graph.node.extend(self.nodes)


def qoperator_to_qdq(model: onnx.ModelProto, path: Path) -> None:
    """Rewrite the model's operator-form quantized nodes into DequantizeLinear -> float op -> QuantizeLinear."""
    if is_operator_form(model):
        _Rewriter(model, path).run()
