"""ReduceMean over any axes (float). A mean over all spatial axes of an N-C-spatial tensor is normalized into
GlobalAveragePool instead (toolchain/passes/normalize.py), which also has integer kernels."""

from __future__ import annotations

import numpy as np

from ..calls import Array, Buf, Call, Lowered
from ..ir import Graph, Node
from ..target import Target
from .base import Op, c_float, register
from .geometry import MAX_DIMS, logical_strides


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


class ReduceMean(Op):
    types = ("ReduceMean",)

    def check(self, node: Node, g: Graph) -> str | None:
        if reduce_axes(g, node) is None:
            return "the axes must be constant"
        if len(g.shape(node.inputs[0])) > MAX_DIMS:
            return f"rank above {MAX_DIMS}"
        return None

    def unsupported(self, node: Node, g: Graph, scheme: str) -> str | None:
        return "ReduceMean over these axes has only a float kernel (a mean over all spatial axes has integer ones)"

    def ref(self, node: Node, g: Graph, xs: list[np.ndarray]) -> np.ndarray:
        axes = tuple(reduce_axes(g, node))
        y = xs[0].astype(np.float64).mean(axis=axes, keepdims=bool(node.attrs.get("keepdims", 1)))
        return y.astype(np.float32)

    def lower(self, node: Node, g: Graph, target: Target) -> Lowered:
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
        return Lowered([Call("ec_reduce_mean_f32", [shape, strides, dst.size, c_float(1.0 / count),
                                                    Buf(src.name, "float"), Buf(dst.name, "float", const=False)],
                             node=name)])


register(ReduceMean())
