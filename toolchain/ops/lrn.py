"""LRN: local response normalization across channels (AlexNet, GoogLeNet), float."""

from __future__ import annotations

import numpy as np

from ..calls import Buf, Call, Lowered, Struct
from ..ir import Graph, Node, Tensor
from .base import LowerContext, Op, c_float, register
from .geometry import logical_strides


def _strides(t: Tensor) -> list[int]:
    """Element strides of (batch, channel, position) with the spatial dimensions flattened into positions."""
    st = logical_strides(t)
    shape = t.shape
    for d in range(2, len(shape) - 1):
        assert st[d] == st[d + 1] * shape[d + 1], f"{t.name}: spatial dimensions are not contiguous"
    return [st[0], st[1], st[-1] if len(shape) > 2 else 1]


class LRN(Op):
    types = ("LRN",)

    def check(self, node: Node, g: Graph) -> str | None:
        size = node.attrs.get("size")
        if not isinstance(size, int) or size < 1:
            return "the size attribute must be a positive integer"
        if len(g.shape(node.inputs[0])) < 2:
            return "the input needs at least 2 dimensions (N, C, ...)"
        return None

    def unsupported(self, node: Node, g: Graph, scheme: str) -> str | None:
        return "LRN has only a float kernel"

    def ref(self, node: Node, g: Graph, xs: list[np.ndarray]) -> np.ndarray:
        a = node.attrs
        size, alpha, beta, bias = a["size"], a.get("alpha", 1e-4), a.get("beta", 0.75), a.get("bias", 1.0)
        x = xs[0].astype(np.float64)
        sq = x * x
        c = x.shape[1]
        total = np.zeros_like(x)
        for k in range(c):
            lo, hi = max(0, k - (size - 1) // 2), min(c - 1, k + size // 2)
            total[:, k] = sq[:, lo:hi + 1].sum(axis=1)
        return (x / (bias + alpha / size * total) ** beta).astype(np.float32)

    def lower(self, node: Node, g: Graph, ctx: LowerContext) -> Lowered:
        name, a = node.name, node.attrs
        src, dst = g.tensors[node.inputs[0]], g.tensors[node.outputs[0]]
        params = Struct(f"p_{name}", "ec_lrn_params", {
            "batch": src.shape[0], "channels": src.shape[1], "positions": int(np.prod(src.shape[2:], dtype=np.int64)),
            "in_strides": _strides(src), "out_strides": _strides(dst), "size": a["size"],
            "alpha": c_float(a.get("alpha", 1e-4)), "beta": c_float(a.get("beta", 0.75)),
            "bias": c_float(a.get("bias", 1.0))})
        return Lowered([Call("ec_lrn_f32", [params, Buf(src.name, "float"), Buf(dst.name, "float", const=False)],
                             node=name)])


register(LRN())
