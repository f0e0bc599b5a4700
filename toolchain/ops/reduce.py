"""ReduceMean over any axes, float and int8 (the output keeps the input's scale and zero point, as average pooling
does). A mean over all spatial axes of an N-C-spatial tensor is normalized into GlobalAveragePool instead
(toolchain/passes/normalize.py), which has int16 kernels too."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..calls import Array, Buf, Call, Lowered, Scratch
from ..ir import Graph, Node
from .base import LowerContext, Op, c_float, qparams, register
from .geometry import MAX_DIMS, logical_strides
from .params import Params
from .pool import rounding_divide


def reduce_axes(g: Graph, node: Node) -> list[int] | None:
    """The sorted axes a ReduceMean averages over (attribute up to opset 17, input from 18; none: all, or [] when
    noop_with_empty_axes is set); None when the axes input is not a constant."""
    rank = len(g.shape(node.inputs[0]))
    axes = node.attrs.get("axes")
    if len(node.inputs) > 1 and node.inputs[1]:
        axes = g.const(node.inputs[1])
        if axes is None:
            return None
    if axes is None or len(axes) == 0:
        return [] if node.attrs.get("noop_with_empty_axes", 0) else list(range(rank))
    return sorted({int(x) % rank for x in axes})


@dataclass(kw_only=True)
class ReduceParams(Params):
    """int8 mean: the input's zero point (the output has the input's quantization)."""

    zp: int


class ReduceMean(Op):
    types = ("ReduceMean",)
    keeps_quant = True

    def check(self, node: Node, g: Graph) -> str | None:
        if reduce_axes(g, node) is None:
            return "the axes must be constant"
        if len(g.shape(node.inputs[0])) > MAX_DIMS:
            return f"rank above {MAX_DIMS}"
        return None

    def unsupported(self, node: Node, g: Graph, scheme: str) -> str | None:
        if scheme in ("int16", "q15"):
            return "ReduceMean over these axes has float and int8 kernels (a mean over all spatial axes has int16 too)"
        return None

    def ref(self, node: Node, g: Graph, xs: list[np.ndarray]) -> np.ndarray:
        axes = tuple(reduce_axes(g, node))
        y = xs[0].astype(np.float64).mean(axis=axes, keepdims=bool(node.attrs.get("keepdims", 1)))
        return y.astype(np.float32)

    def quantize(self, node: Node, g: Graph) -> ReduceParams:
        return ReduceParams(zp=qparams(g, node.inputs[0])[1])

    def ref_s8(self, node: Node, g: Graph, xs: list[np.ndarray]) -> np.ndarray:
        axes = tuple(reduce_axes(g, node))
        acc = (xs[0].astype(np.int64) - node.q.zp).sum(axis=axes, keepdims=bool(node.attrs.get("keepdims", 1)))
        count = int(np.prod([xs[0].shape[a] for a in axes], dtype=np.int64))
        return np.clip(rounding_divide(acc, count) + node.q.zp, -128, 127).astype(np.int8)

    def lower(self, node: Node, g: Graph, ctx: LowerContext) -> Lowered:
        name = node.name
        src, dst = g.tensors[node.inputs[0]], g.tensors[node.outputs[0]]
        axes = reduce_axes(g, node)
        keep = node.attrs.get("keepdims", 1)
        out_st = logical_strides(dst)
        per_in, k = [], 0  # the output stride of each logical input dimension
        for d in range(len(src.shape)):
            if d in axes:
                per_in.append(0)
                k += 1 if keep else 0
            else:
                per_in.append(out_st[k])
                k += 1
        perm = src.storage_perm
        pad = MAX_DIMS - len(perm)
        shape = Array(f"shape_{name}", np.array([1] * pad + [src.shape[p] for p in perm], np.int32), "int32_t")
        strides = Array(f"ostr_{name}", np.array([0] * pad + [per_in[p] for p in perm], np.int32), "int32_t")
        count = src.size // max(dst.size, 1)
        if node.dtype == "int8":
            return Lowered([Call("ec_reduce_mean_s8", [shape, strides, dst.size, count, node.q.zp,
                                                       Buf(src.name, "int8_t"), Buf(dst.name, "int8_t", const=False),
                                                       Scratch(4 * dst.size)], node=name)])
        return Lowered([Call("ec_reduce_mean_f32", [shape, strides, dst.size, c_float(1.0 / count),
                                                    Buf(src.name, "float"), Buf(dst.name, "float", const=False)],
                             node=name)])


register(ReduceMean())
