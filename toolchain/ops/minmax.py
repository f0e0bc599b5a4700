"""Max and Min of two operands with ONNX broadcasting (float); Max/Min of more inputs are normalized into chains
of these (toolchain/passes/normalize.py)."""

from __future__ import annotations

import numpy as np

from ..calls import Array, Buf, Call, Lowered, Raw
from ..ir import Graph, Node
from .base import LowerContext, Op, check_broadcast, check_io, register
from .geometry import broadcast_struct


class MinMax(Op):
    types = ("Max", "Min")

    def check(self, node: Node, g: Graph) -> str | None:
        # ONNX's Max/Min take any number of operands; passes/normalize.py turns more than two into a chain of two
        reason = check_io(node, g, (1, 2**31)) or check_broadcast(node, g)
        if reason:
            return reason
        if all(g.const(i) is not None for i in node.inputs):
            return "every operand is constant (should have been folded)"
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
