"""Fold BatchNormalization into the Conv/Gemm before it; turn a standalone one into a depthwise 1x1 Conv."""

from __future__ import annotations

import numpy as np

from ..ir import Graph, Node
from ..ops.base import is_weighted


def _bn_affine(g: Graph, bn: Node) -> tuple[np.ndarray, np.ndarray] | None:
    params = [g.const(i) for i in bn.inputs[1:5]]
    if any(p is None for p in params):
        return None
    gamma, beta, mean, var = (p.astype(np.float64) for p in params)
    scale = gamma / np.sqrt(var + bn.attrs.get("epsilon", 1e-5))
    return scale, beta - mean * scale


def _single_consumer(g: Graph, name: str) -> Node | None:
    users = g.consumers(name)
    return users[0] if len(users) == 1 and name not in g.outputs else None


def fold_batchnorm(g: Graph) -> None:
    for bn in [n for n in g.nodes if n.op == "BatchNormalization"]:
        affine = _bn_affine(g, bn)
        if affine is None:
            continue
        scale, shift = affine
        prod = g.producer(bn.inputs[0])
        if (prod is not None and is_weighted(prod) and _single_consumer(g, bn.inputs[0]) is bn
                and g.const(prod.inputs[1]) is not None and prod.attrs.get("transB", 1) == 1):
            w = g.const(prod.inputs[1]).astype(np.float64)
            bias = g.const(prod.inputs[2]) if len(prod.inputs) > 2 and prod.inputs[2] else None
            b = np.zeros(w.shape[0]) if bias is None else bias.astype(np.float64)
            w = w * scale.reshape((-1,) + (1,) * (w.ndim - 1))
            b = b * scale + shift
            prod.inputs = [prod.inputs[0], g.add_const(f"{prod.name}_W_bn", w.astype(np.float32)),
                           g.add_const(f"{prod.name}_B_bn", b.astype(np.float32))]
            prod.outputs = [bn.outputs[0]]
            g.nodes.remove(bn)
            continue
        rank = len(g.shape(bn.inputs[0]))
        c = g.shape(bn.inputs[0])[1]
        if rank in (3, 4):
            w = scale.reshape((c, 1) + (1,) * (rank - 2))
            bn.op, bn.attrs = "Conv", {"group": c, "kernel_shape": [1] * (rank - 2)}
        elif rank == 2:
            w = np.diag(scale)
            bn.op, bn.attrs = "Gemm", {"transB": 1}
        else:
            continue
        bn.inputs = [bn.inputs[0], g.add_const(f"{bn.name}_W", w.astype(np.float32)),
                     g.add_const(f"{bn.name}_B", shift.astype(np.float32))]
    g.remove_unused()
