"""Data movement: Reshape (Flatten, Squeeze and Unsqueeze are normalized into it), Transpose, LayoutCast (our own
layout change, logically the identity), Concat and Pad (constant, reflect and edge modes)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..calls import Array, Buf, Call, Lowered, Raw, Struct
from ..ir import ELEM_BYTES, Graph, Node, Tensor
from .base import (
    QRANGE,
    REGISTRY,
    LowerContext,
    Op,
    check_axis,
    check_io,
    is_int,
    nctype,
    out_dtype,
    pick,
    qparams,
    quantize_multiplier,
    register,
    requantize,
)
from .geometry import MAX_DIMS, axis_split
from .params import Params
from .unary import lut


def storage_strides(view: tuple[int, ...], perm: tuple[int, ...]) -> list[int]:
    """Element strides of each view dimension when the data is stored as view.transpose(perm)."""
    st = [0] * len(perm)
    acc = 1
    for k in range(len(perm) - 1, -1, -1):
        st[perm[k]] = acc
        acc *= view[perm[k]]
    return st


def copy_call(name: str, src: Tensor, dst: Tensor, src_of_dst_dim: list[int], g: Graph) -> Call:
    """ec_transpose writing dst in its storage order; dst view dim d reads src view dim src_of_dst_dim[d]."""
    view, perm = dst.storage_view, dst.storage_perm
    sst = storage_strides(src.storage_view, src.storage_perm)
    shape = [view[p] for p in perm]
    strides = [sst[src_of_dst_dim[p]] for p in perm]
    pad = MAX_DIMS - len(shape)
    bp = Struct(f"bp_{name}", "ec_broadcast_params", {
        "out_shape": [1] * pad + shape, "a_strides": [0] * pad + strides, "b_strides": [0] * MAX_DIMS})
    elem = ELEM_BYTES[g.tensors[src.name].dtype]
    return Call("ec_transpose", [bp, elem, Buf(src.name, "void"), Buf(dst.name, "void", const=False)], node=name)


class Reshape(Op):
    types = ("Reshape",)
    layout = "flatten"
    keeps_quant = True

    def check(self, node: Node, g: Graph) -> str | None:
        """Also Flatten, Squeeze and Unsqueeze (normalize checks their axes): the element count is kept."""
        reason = check_io(node, g, (1, 2))
        if reason:
            return reason
        src, dst = g.tensors[node.inputs[0]], g.tensors[node.outputs[0]]
        if src.size != dst.size:
            return f"output shape {list(dst.shape)} holds {dst.size} elements, the input {list(src.shape)} {src.size}"
        return None

    def ref(self, node: Node, g: Graph, xs: list[np.ndarray]) -> np.ndarray:
        return xs[0].reshape(g.shape(node.outputs[0]))

    def reads_channels(self, node: Node, g: Graph, tensor: str, channels: int) -> str | None:
        """A flattening to rows that only weighted rows readers (Gemm) read: they lose the channels' columns."""
        out = node.outputs[0]
        readers = g.consumers(out)
        rows = all(REGISTRY[c.op].weighted and REGISTRY[c.op].layout == "rows" and c.inputs[0] == out for c in readers)
        flat = len(g.shape(out)) == 2 and g.shape(out)[0] == g.shape(tensor)[0]
        return "flatten" if flat and rows and out not in g.outputs else None

    def export_inputs(self, node: Node, g: Graph, w: Any) -> list[str]:
        out = node.outputs[0]
        return [w.init(f"{out}_shape", np.array(g.shape(out), np.int64))]

    def ref_s8(self, node: Node, g: Graph, xs: list[np.ndarray]) -> np.ndarray:
        return self.ref(node, g, xs)

    def lower(self, node: Node, g: Graph, ctx: LowerContext) -> Lowered:
        src, dst = g.tensors[node.inputs[0]], g.tensors[node.outputs[0]]
        if node.outputs[0] not in g.outputs:
            return Lowered(alias=src.name)
        # A model output needs its own buffer: copy (the layout pass left both in the same byte order).
        n = src.size
        flat = Tensor(src.name, (n,))
        return Lowered([copy_call(node.name, flat, Tensor(dst.name, (n,)), [0], g)])


class Transpose(Op):
    types = ("Transpose", "LayoutCast")
    keeps_quant = True

    def perm(self, node: Node, g: Graph) -> list[int]:
        rank = len(g.shape(node.inputs[0]))
        if node.op == "LayoutCast":
            return list(range(rank))
        return list(node.attrs.get("perm", range(rank - 1, -1, -1)))

    def check(self, node: Node, g: Graph) -> str | None:
        reason = check_io(node, g, (1, 1))
        if reason:
            return reason
        x, y = g.shape(node.inputs[0]), g.shape(node.outputs[0])
        if len(x) > MAX_DIMS:
            return f"rank above {MAX_DIMS}"
        perm = self.perm(node, g)
        if sorted(int(p) if isinstance(p, (int, np.integer)) else -1 for p in perm) != list(range(len(x))):
            return f"perm={list(perm)} is not a permutation of the {len(x)} axes"
        if tuple(y) != tuple(x[p] for p in perm):
            return f"output shape {list(y)} is not the input {list(x)} permuted by {list(perm)}"
        return None

    def ref(self, node: Node, g: Graph, xs: list[np.ndarray]) -> np.ndarray:
        return xs[0].transpose(self.perm(node, g))

    def layout_role(self, node: Node, g: Graph) -> str:
        """NHWC -> NCHW of a rank-4 tensor (a channels-last model input, e.g. a .tflite's) is "to_channels_first":
        stored channels-last, its bytes are the input's. Otherwise it reads any order and writes plain order."""
        return "to_channels_first" if node.op == "Transpose" and len(g.shape(node.inputs[0])) == 4 and \
            list(node.attrs.get("perm", [])) == [0, 3, 1, 2] else "plain"

    def export_attrs(self, node: Node) -> dict:
        return pick(node.attrs, ("perm",))

    def export_node(self, node: Node, g: Graph, w: Any) -> bool:
        """A LayoutCast (the same logical tensor in another byte order) is an Identity."""
        if node.op != "LayoutCast":
            return False
        w.identity(node)
        return True

    def inserted(self, node: Node) -> bool:
        return node.op == "LayoutCast"

    def ref_s8(self, node: Node, g: Graph, xs: list[np.ndarray]) -> np.ndarray:
        return self.ref(node, g, xs)

    def lower(self, node: Node, g: Graph, ctx: LowerContext) -> Lowered:
        src, dst = g.tensors[node.inputs[0]], g.tensors[node.outputs[0]]
        if node.op == "LayoutCast" and src.view is not None:
            # A flattened channels-last tensor back to plain order: copy in the source's view.
            assert dst.perm is None
            dst = Tensor(dst.name, src.view)
            src = Tensor(src.name, src.view, perm=src.perm)
        call = copy_call(node.name, src, dst, self.perm(node, g), g)
        if node.outputs[0] not in g.outputs and _in_order(call):
            return Lowered(alias=src.name)  # the storage orders agree: the output is the input's bytes
        return Lowered([call])


def _in_order(call: Call) -> bool:
    """Whether an ec_transpose call copies its source in order (the bytes stay the same)."""
    bp = call.args[0].fields
    acc = 1
    for size, stride in reversed(list(zip(bp["out_shape"], bp["a_strides"]))):
        if size != 1 and stride != acc:
            return False
        acc *= size
    return True


@dataclass(kw_only=True)
class ConcatParams(Params):
    """Per input: its constant in the output's type (None for an activation), and how an activation with other
    quantization than the output's is converted while copied: int8 a table (ec_concat), int16 a multiplier and shift
    (ec_concat_s16); None copies it as it is."""

    consts: list[np.ndarray | None]
    tables: list[np.ndarray | None] = field(default_factory=list)  # int8
    requant: list[tuple[int, int] | None] = field(default_factory=list)  # int16


@dataclass(kw_only=True)
class PadParams(Params):
    """The constant pad value in the output's type."""

    value: int


class Concat(Op):
    types = ("Concat",)
    layout = "follows_input"

    def export_attrs(self, node: Node) -> dict:
        return pick(node.attrs, ("axis",))

    def axis(self, node: Node, g: Graph) -> int:
        return node.attrs["axis"] % len(g.shape(node.outputs[0]))

    def row_window(self, node: Node, g: Graph) -> tuple[int, int, int] | None:
        """Along channels only, every input an activation."""
        if len(g.shape(node.outputs[0])) != 4 or self.axis(node, g) != 1 or \
                any(g.const(x) is not None for x in node.inputs):
            return None
        return 1, 1, 0

    def check(self, node: Node, g: Graph) -> str | None:
        reason = check_io(node, g, (1, 1 << 16))
        if reason:
            return reason
        y = g.shape(node.outputs[0])
        reason = check_axis(node.attrs.get("axis"), len(y))
        if reason:
            return reason
        ax = self.axis(node, g)
        shapes = [g.shape(i) for i in node.inputs]
        for name, x in zip(node.inputs, shapes):
            if len(x) != len(y) or any(a != b for k, (a, b) in enumerate(zip(x, y)) if k != ax):
                return f"input '{name}' of shape {list(x)} does not fit the output {list(y)} along axis {ax}"
        if sum(x[ax] for x in shapes) != y[ax]:
            return f"the inputs' sizes along axis {ax} do not add up to the output's {y[ax]}"
        return None

    def ref(self, node: Node, g: Graph, xs: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(xs, axis=self.axis(node, g))

    def quantize(self, node: Node, g: Graph) -> ConcatParams:
        s_out, zp_out = qparams(g, node.outputs[0])
        if node.dtype == "int16":  # symmetric: an input with another scale is requantized while it is copied
            consts, mults = [], []
            for name in node.inputs:
                data = g.const(name)
                consts.append(None if data is None else
                              np.clip(np.round(data / s_out), -32768, 32767).astype(np.int16))
                s = None if data is not None else qparams(g, name)[0]
                mults.append(None if s is None or s == s_out else quantize_multiplier(s / s_out))
            return ConcatParams(consts=consts, requant=mults)
        tables, consts = [], []
        for name in node.inputs:
            data = g.const(name)
            if data is not None:
                consts.append(np.clip(np.round(data / s_out) + zp_out, -128, 127).astype(np.int8))
                tables.append(None)
                continue
            consts.append(None)
            s, zp = qparams(g, name)
            same = s == s_out and zp == zp_out
            tables.append(None if same else lut(lambda r: r, s, zp, s_out, zp_out))
        return ConcatParams(consts=consts, tables=tables)

    def ref_s8(self, node: Node, g: Graph, xs: list[np.ndarray]) -> np.ndarray:
        parts = []
        if node.dtype == "int16":
            for x, m, c in zip(xs, node.q.requant, node.q.consts):
                y = c if c is not None else (x if m is None else np.clip(requantize(x, *m), -32768, 32767))
                parts.append(np.asarray(y).astype(np.int16))
            return np.concatenate(parts, axis=self.axis(node, g))
        for x, table, c in zip(xs, node.q.tables, node.q.consts):
            parts.append(c if c is not None else (x if table is None else table[x.astype(np.int64) + 128]))
        return np.concatenate(parts, axis=self.axis(node, g))

    def export_const(self, node: Node, g: Graph, k: int) -> tuple[np.ndarray, np.float32, int] | None:
        t = g.tensors[node.outputs[0]]
        return node.q.consts[k], np.float32(t.scale), t.zero_point

    def lower(self, node: Node, g: Graph, ctx: LowerContext) -> Lowered:
        name, t = node.name, nctype(node)
        out = g.tensors[node.outputs[0]]
        ax = self.axis(node, g)
        outer, _, inner = axis_split(out, ax)
        perm = out.storage_perm
        inputs, tables = [], []
        for k, iname in enumerate(node.inputs):
            data = g.const(iname)
            if data is not None:
                data = node.q.consts[k] if is_int(node) else data.astype(np.float32)
                inputs.append(Array(f"c_{name}_{k}", np.ascontiguousarray(data.transpose(perm)), t))
            else:
                inputs.append(Buf(iname, t))
            table = node.q.tables[k] if node.dtype == "int8" else None
            tables.append(Raw("NULL") if table is None else Array(f"lut_{name}_{k}", table, "int8_t"))
        sizes = Array(f"axis_{name}", np.array([g.shape(i)[ax] for i in node.inputs], np.int32), "int32_t")
        ptrs = Array(f"in_{name}", np.array(inputs, dtype=object), "const void *")
        out_buf = Buf(node.outputs[0], "void", const=False)
        if node.dtype == "int16" and any(m is not None for m in node.q.requant):
            mult = np.array([0 if m is None else m[0] for m in node.q.requant], np.int32)
            shift = np.array([0 if m is None else m[1] for m in node.q.requant], np.int32)
            return Lowered([Call("ec_concat_s16", [len(inputs), outer, inner, sizes, ptrs,
                                                   Array(f"mult_{name}", mult, "int32_t"),
                                                   Array(f"shift_{name}", shift, "int32_t"), out_buf], node=name)])
        tabs = Raw("NULL") if all(isinstance(x, Raw) for x in tables) else \
            Array(f"luts_{name}", np.array(tables, dtype=object), "const int8_t *")
        return Lowered([Call("ec_concat", [len(inputs), outer, inner, sizes, ELEM_BYTES[node.dtype], ptrs, tabs,
                                           out_buf], node=name)])


class Pad(Op):
    types = ("Pad",)
    layout = "follows_input"
    keeps_quant = True

    def check(self, node: Node, g: Graph) -> str | None:
        reason = check_io(node, g, (1, 4))
        if reason:
            return reason
        mode = self.mode(node)
        if mode not in ("constant", "reflect", "edge"):
            return f"mode '{mode}' is not supported (constant, reflect and edge are)"
        if any(g.const(i) is None for i in node.inputs[1:] if i):
            return "pads, constant_value and axes must be constants"
        if len(node.inputs) < 2 and "pads" not in node.attrs:
            return "no pads given"
        x = g.shape(node.inputs[0])
        if len(x) > MAX_DIMS:
            return f"rank above {MAX_DIMS}"
        raw = g.const(node.inputs[1]) if len(node.inputs) > 1 else np.asarray(node.attrs["pads"])
        axes = g.const(node.inputs[3]) if len(node.inputs) > 3 and node.inputs[3] else np.arange(len(x))
        if axes.ndim != 1 or any(check_axis(int(a), len(x), "axes") for a in axes) or \
                len({int(a) % len(x) for a in axes}) != axes.size:
            return f"axes={axes.tolist()} are not distinct axes of a rank-{len(x)} input"
        if raw.ndim != 1 or raw.size != 2 * axes.size:
            return f"pads={raw.tolist()} must hold 2 values for each of the {axes.size} axes"
        if len(node.inputs) > 2 and node.inputs[2]:
            value = g.const(node.inputs[2])
            if value.size != 1 or not np.isfinite(value).all():
                return f"constant_value {value.tolist()} must be one finite number"
        begin, end, _ = self.pads(node, g)
        if min(begin + end) < 0:
            return "negative pads (cropping) are not supported"
        if mode == "reflect" and any(max(b, e) >= n and b + e > 0 for b, e, n in zip(begin, end, x)):
            return "reflect pads must be smaller than the padded dimension"
        if mode == "edge" and any(n == 0 and b + e > 0 for b, e, n in zip(begin, end, x)):
            return "edge padding of an empty dimension"
        want = [n + b + e for n, b, e in zip(x, begin, end)]
        if list(g.shape(node.outputs[0])) != want:
            return f"output shape {list(g.shape(node.outputs[0]))} differs from the padded input's {want}"
        return None

    def mode(self, node: Node) -> str:
        return node.attrs.get("mode", "constant")

    def pads(self, node: Node, g: Graph) -> tuple[list[int], list[int], float]:
        rank = len(g.shape(node.inputs[0]))
        raw = [int(p) for p in g.const(node.inputs[1])] if len(node.inputs) > 1 else list(node.attrs["pads"])
        value = 0.0
        if len(node.inputs) > 2 and node.inputs[2]:
            value = float(g.const(node.inputs[2]).reshape(-1)[0])
        axes = list(range(rank))
        if len(node.inputs) > 3 and node.inputs[3]:
            axes = [int(a) % rank for a in g.const(node.inputs[3])]
        begin, end = [0] * rank, [0] * rank
        for k, a in enumerate(axes):
            begin[a], end[a] = raw[k], raw[len(axes) + k]
        return begin, end, value

    def ref(self, node: Node, g: Graph, xs: list[np.ndarray]) -> np.ndarray:
        begin, end, value = self.pads(node, g)
        if self.mode(node) != "constant":  # numpy's reflect and edge modes are ONNX's
            return np.pad(xs[0], list(zip(begin, end)), mode=self.mode(node))
        return np.pad(xs[0], list(zip(begin, end)), constant_values=value)

    def quantize(self, node: Node, g: Graph) -> PadParams:
        s, zp = qparams(g, node.inputs[0])
        lo, hi = QRANGE[node.dtype]
        return PadParams(value=int(np.clip(round(self.pads(node, g)[2] / s) + zp, lo, hi)))

    def ref_s8(self, node: Node, g: Graph, xs: list[np.ndarray]) -> np.ndarray:
        begin, end, _ = self.pads(node, g)
        if self.mode(node) != "constant":  # moves values only: exact in every element type
            return np.pad(xs[0], list(zip(begin, end)), mode=self.mode(node)).astype(out_dtype(node))
        return np.pad(xs[0], list(zip(begin, end)), constant_values=node.q.value).astype(out_dtype(node))

    def lower(self, node: Node, g: Graph, ctx: LowerContext) -> Lowered:
        name, t = node.name, nctype(node)
        src = g.tensors[node.inputs[0]]
        begin, end, value = self.pads(node, g)
        perm = src.storage_perm
        pad = MAX_DIMS - len(perm)
        shape = Array(f"shape_{name}", np.array([1] * pad + [src.shape[p] for p in perm], np.int32), "int32_t")
        b = Array(f"pb_{name}", np.array([0] * pad + [begin[p] for p in perm], np.int32), "int32_t")
        e = Array(f"pe_{name}", np.array([0] * pad + [end[p] for p in perm], np.int32), "int32_t")
        if self.mode(node) != "constant":
            return Lowered([Call("ec_pad_mirror", [shape, b, e, ELEM_BYTES[node.dtype], int(self.mode(node) == "edge"),
                                                   Buf(src.name, "void"), Buf(node.outputs[0], "void", const=False)],
                                 node=name)])
        v = Array(f"pv_{name}", np.array([node.q.value if is_int(node) else value], out_dtype(node)), t)
        return Lowered([Call("ec_pad", [shape, b, e, ELEM_BYTES[node.dtype], v, Buf(src.name, "void"),
                                        Buf(node.outputs[0], "void", const=False)], node=name)])


register(Reshape())
register(Transpose())
register(Concat())
register(Pad())
