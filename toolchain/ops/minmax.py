"""Max and Min of two operands with ONNX broadcasting (float); Max/Min of more inputs are normalized into chains
of these (toolchain/passes/normalize.py)."""

from __future__ import annotations

import numpy as np

from ..calls import Array, Buf, Call, Lowered, Raw
from ..ir import Graph, Node
from .base import LowerContext, Op, register
from .geometry import MAX_DIMS, broadcast_struct


class MinMax(Op):
    types = ("Max", "Min")

    def check(self, node: Node, g: Graph) -> str | None:
        if len([i for i in node.inputs if i]) != 2:
            return "expected two operands here"
        if all(g.const(i) is not None for i in node.inputs):
            return "both operands are constant (should have been folded)"
        if len(g.shape(node.outputs[0])) > MAX_DIMS:
            return f"rank above {MAX_DIMS}"
        return None

    def unsupported(self, node: Node, g: Graph, scheme: str) -> str | None:
        return f"{node.op} has only a float kernel"

    def ref(self, node: Node, g: Graph, xs: list[np.ndarray]) -> np.ndarray:
        f = np.maximum if node.op == "Max" else np.minimum
        return f(xs[0].astype(np.float32), xs[1].astype(np.float32))

    def lower(self, node: Node, g: Graph, ctx: LowerContext) -> Lowered:
        name = node.name
        ins = [g.tensors[i] for i in node.inputs]
        bp = broadcast_struct(name, g.tensors[node.outputs[0]], ins)
        operands = [Array(f"c_{name}_{k}", x.data.astype(np.float32), "float") if x.is_const else Buf(x.name, "float")
                    for k, x in enumerate(ins)]
        op = Raw("EC_MAX" if node.op == "Max" else "EC_MIN")
        return Lowered([Call("ec_binary_f32", [bp, op, Raw("NULL"), *operands,
                                               Buf(node.outputs[0], "float", const=False)], node=name)])


register(MinMax())
