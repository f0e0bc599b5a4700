"""Write a graph back as ONNX that onnxruntime runs: float (e.g. after pruning) or quantized as standard QDQ.

In QDQ form every integer activation gets QuantizeLinear/DequantizeLinear of its element type (int8, or int16 with
zero point 0) with edgec's scale and zero point; weights, biases and constant operands are stored as int8/int16/int32
initializers behind DequantizeLinear (per output channel for Conv and Gemm weights). Fused activations become explicit
Relu/Clip nodes before the output's Q/DQ pair. Q-format models have power-of-two scales everywhere; int4 weights are
ONNX INT4 initializers and int16 activations INT16 Q/DQ pairs (both opset 21, which onnxruntime runs).

int16 layers (16x8, q15) have int64 biases, which ONNX cannot dequantize: they are written as int32 behind
DequantizeLinear at the accumulator's scale, one beyond int32 (which edgec keeps a multiple of 2^k) as its quotient by
2^k at 2^k times that scale; edgec's importer reads the same integers back. (A float bias would not do: onnxruntime
quantizes it to int32 at the accumulator's scale, wrapping around beyond int32.)

In a mixed model (--qconfig) each tensor has the Q/DQ pair of its own type; a float layer has float weights and reads
DequantizeLinear outputs, and a Convert between two integer types is a DQ -> Q pair (DequantizeLinear of the one,
QuantizeLinear to the other). The model's metadata names each layer's scheme (frontends.onnx.LAYER_SCHEMES_KEY)."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .frontends.onnx import LAYER_SCHEMES_KEY
from .ir import NUMPY_TYPES, Graph, Node, Tensor, unique_name
from .ops import REGISTRY
from .ops.base import is_weighted
from .ops.output_stage import INT32_MAX, bias_shifts
from .outdir import write_file

OPSET = 13
OPSET_WIDE = 21  # DequantizeLinear of INT4 tensors, QuantizeLinear to INT16


class _Writer:
    def __init__(self, g: Graph, quantized: bool) -> None:
        self.g = g
        self.quantized = quantized
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.names: set[str] = set(g.tensors)
        self.dq: dict[str, str] = {}  # activation -> its dequantized name
        self.q: dict[str, str] = {}  # integer activation -> its QuantizeLinear output
        self.finals: dict[str, str] = {}  # graph output (renamed) -> the output's name in the file

    def fresh(self, base: str) -> str:
        name = unique_name(base, self.names)
        self.names.add(name)
        return name

    def init(self, base: str, value: np.ndarray) -> str:
        name = self.fresh(base)
        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def int4_init(self, base: str, value: np.ndarray) -> str:
        name = self.fresh(base)
        self.inits.append(helper.make_tensor(name, TensorProto.INT4, value.shape, value.ravel().tolist()))
        return name

    def dequantized_const(self, base: str, q: np.ndarray, scale, zp, axis: int | None = None,
                          int4: bool = False) -> str:
        if int4:
            inputs = [self.int4_init(f"{base}_q", q), self.init(f"{base}_scale", np.asarray(scale, np.float32)),
                      self.int4_init(f"{base}_zp", np.asarray(zp, np.int8))]
        else:
            inputs = [self.init(f"{base}_q", q), self.init(f"{base}_scale", np.asarray(scale, np.float32)),
                      self.init(f"{base}_zp", np.asarray(zp, q.dtype))]
        out = self.fresh(f"{base}_dq")
        kw = {"axis": axis} if axis is not None else {}
        self.nodes.append(helper.make_node("DequantizeLinear", inputs, [out], **kw))
        return out

    def qdq(self, name: str, value: str | None = None) -> None:
        """name's float value (value, default name) -> Q -> DQ; consumers read the DQ output (a float tensor:
        the value itself)."""
        t = self.g.tensors[name]
        value = value or name
        if not self.quantized or t.dtype == "float32":
            self.dq[name] = value
            return
        scale = self.init(f"{name}_scale", np.float32(t.scale))
        zp = self.init(f"{name}_zp", NUMPY_TYPES[t.dtype](t.zero_point))
        q, dq = self.fresh(f"{name}_q"), self.finals.get(name) or self.fresh(f"{name}_dq")
        self.nodes += [helper.make_node("QuantizeLinear", [value, scale, zp], [q]),
                       helper.make_node("DequantizeLinear", [q, scale, zp], [dq])]
        self.dq[name] = dq
        self.q[name] = q

    def act(self, node: Node, out: str) -> str:
        """Append the fused activation of node (if any) reading `out`; returns the name to Q/DQ."""
        lo, hi = node.attrs.get("act", (-math.inf, math.inf))
        if (lo, hi) == (-math.inf, math.inf):
            return out
        pre = self.fresh(f"{out}_preact")
        self.nodes[-1].output[0] = pre
        if (lo, hi) == (0.0, math.inf):
            self.nodes.append(helper.make_node("Relu", [pre], [out]))
        else:
            self.nodes.append(helper.make_node("Clip", [pre, self.init(f"{out}_min", np.float32(lo)),
                                                        self.init(f"{out}_max", np.float32(hi))], [out]))
        return out

    def node(self, node: Node) -> None:
        g = self.g
        op, out = REGISTRY[node.op], node.outputs[0]
        if op.export_node(node, g, self):  # Op.export_node: Convert, LayoutCast, a Gemm of rows
            return
        ins = []
        for k, name in enumerate(node.inputs):
            if g.const(name) is None:
                ins.append(self.dq[name])
            else:
                ins.append(self.const_input(node, k, name))
        if is_weighted(node) and len(ins) == 2 and node.q is not None and np.any(node.q["bias"]):
            ins.append(self.bias(node, f"{node.name}_bias"))  # bias correction gave a layer without bias one
        ins += op.export_inputs(node, g, self)
        self.nodes.append(helper.make_node(node.op, ins, [out], name=node.name, **op.export_attrs(node)))
        self.act(node, out)
        self.qdq(out)

    def convert(self, node: Node) -> None:
        """A Convert: the input's DQ output, quantized again with the output's Q (float: as it is)."""
        g, src, out = self.g, node.inputs[0], node.outputs[0]
        if g.tensors[src].dtype == g.tensors[out].dtype == "int8":
            # onnxruntime's DoubleQDQPairsRemover would replace Q1 -> DQ1 -> Q2 -> DQ2 (int8) by one pair
            # without the second rounding (then fuse the next layer with a bias at the wrong scale); it leaves
            # a Q1 with two readers alone: a second DequantizeLinear of it, whose output nothing reads
            t = g.tensors[src]
            self.nodes.append(helper.make_node("DequantizeLinear", [self.q[src], self.init(
                f"{src}_scale", np.float32(t.scale)), self.init(f"{src}_zp", np.int8(t.zero_point))],
                [self.fresh(f"{src}_dq_unused")]))
        self.qdq(out, self.dq[src])

    def identity(self, node: Node) -> None:
        """A node that is logically the identity (a LayoutCast)."""
        out = node.outputs[0]
        self.nodes.append(helper.make_node("Identity", [self.dq[node.inputs[0]]], [out]))
        self.qdq(out)

    def gemm_rows(self, node: Node) -> None:
        """A Gemm of an input of another rank than 2 (edgec multiplies its last axis) as Reshape to rows, Gemm,
        Reshape back. (A MatMul by dequantized int8 weights would be rewritten by onnxruntime into MatMulNBits,
        which rounds int16 activations to 8 bits.)"""
        g, x, out = self.g, node.inputs[0], node.outputs[0]
        rows, inner = self.fresh(f"{x}_rows"), self.fresh(f"{out}_rows")
        for name, like in ((rows, x), (inner, out)):
            t = g.tensors[like]
            g.tensors[name] = Tensor(name, (int(np.prod(t.shape[:-1])), t.shape[-1]), dtype=t.dtype, scale=t.scale,
                                     zero_point=t.zero_point)
        self.nodes.append(helper.make_node("Reshape", [self.dq[x], self.init(
            f"{rows}_shape", np.array(g.shape(rows), np.int64))], [rows]))
        self.dq[rows] = rows  # the dequantized value, reshaped (Reshape keeps the Q/DQ grid)
        self.node(Node("Gemm", node.name, [rows, *node.inputs[1:]], [inner], node.attrs, node.q, node.scheme,
                       node.dtype))
        self.nodes.append(helper.make_node("Reshape", [self.dq[inner], self.init(
            f"{out}_shape", np.array(g.shape(out), np.int64))], [out]))
        self.qdq(out)

    def bias(self, node: Node, name: str) -> str:
        """A Conv/Gemm's integer bias as int32 behind DequantizeLinear at the accumulator's scale (an int16 layer's
        int64 bias beyond int32: the quotient by 2^k at 2^k times that scale, exact, see bias_shifts)."""
        q = node.q
        step = (self.g.tensors[node.inputs[0]].scale * q["w_scale"]).astype(np.float32)
        k = bias_shifts(q["bias"]) if node.dtype == "int16" else np.zeros(len(step), np.int64)
        ints = q["bias"].astype(np.int64) >> k
        assert np.array_equal(ints << k, q["bias"]) and np.abs(ints).max(initial=0) <= INT32_MAX, node.name
        return self.dequantized_const(name, ints.astype(np.int32), step * np.ldexp(np.float32(1.0), k).astype(
            np.float32), np.zeros(len(step), np.int32), axis=0)

    def const_input(self, node: Node, k: int, name: str) -> str:
        g, q = self.g, node.q
        data = g.const(name)
        if not self.quantized or node.dtype == "float32":
            return self.init(name, data)
        if is_weighted(node) and k in (1, 2):
            ws = q["w_scale"].astype(np.float32)
            if k == 1:
                return self.dequantized_const(name, q["w"], ws, np.zeros(len(ws), np.int8), axis=0,
                                              int4=node.scheme == "int4")
            return self.bias(node, name)
        ints = REGISTRY[node.op].export_const(node, g, k)  # Op.export_const
        if ints is not None:
            return self.dequantized_const(name, *ints)
        return self.init(name, data)  # pads and other non-numeric constants stay as they are


def export_qdq(g: Graph, path: Path) -> None:
    """Write the quantized graph g as a QDQ ONNX model with g's input and output names."""
    assert g.quantized, "export_qdq needs a quantized graph"
    _export(g, path, quantized=True)


def export_float(g: Graph, path: Path) -> None:
    """Write the float graph g (after edgec's passes: BatchNorm folded, activations fused) as ONNX."""
    _export(g, path, quantized=False)


def _export(g: Graph, path: Path, quantized: bool) -> None:
    g = copy.deepcopy(g)
    finals = list(g.outputs)
    for name in finals:  # the value before the output's Q/DQ pair (or final Identity) gets another name
        g.rename_tensor(name, g.fresh_name(f"{name}_float"))
    w = _Writer(g, quantized)
    w.names.update(finals)
    w.finals = {inner: final for inner, final in zip(g.outputs, finals) if inner not in g.inputs}
    for name in g.inputs:
        w.qdq(name)
    for node in g.nodes:
        w.node(node)
    for inner, final in zip(g.outputs, finals):
        if w.dq[inner] != final:  # (an integer output's DequantizeLinear writes the final name itself)
            w.nodes.append(helper.make_node("Identity", [w.dq[inner]], [final]))
    graph = helper.make_graph(
        w.nodes, f"{g.name}_{'qdq' if quantized else 'edgec'}",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(g.shape(n))) for n in g.inputs],
        [helper.make_tensor_value_info(f, TensorProto.FLOAT, list(g.shape(i))) for i, f in zip(g.outputs, finals)],
        w.inits)
    wide = any(n.scheme == "int4" for n in g.nodes) or any(t.dtype == "int16" for t in g.tensors.values())
    opset = OPSET_WIDE if quantized and wide else max([OPSET] + [REGISTRY[n.op].min_opset(n) for n in g.nodes])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="edgec")
    schemes = {n.name: n.scheme for n in g.nodes if not REGISTRY[n.op].inserted(n)}
    if quantized and len(set(schemes.values())) > 1:  # a mixed model: which scheme each layer computes in
        helper.set_model_props(model, {LAYER_SCHEMES_KEY: json.dumps(schemes)})
    onnx.checker.check_model(model)
    # never a half-written model, never a file edgec must not write (toolchain/outdir.py)
    write_file(Path(path), lambda tmp: onnx.save(model, str(tmp)), "--output")
