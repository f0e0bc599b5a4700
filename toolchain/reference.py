"""Run a graph with the numpy references: float32 (ONNX semantics) or int8 (the bit-exact specification)."""

from __future__ import annotations

import numpy as np

from .ir import Graph
from .ops import REGISTRY


def run_graph(g: Graph, feeds: dict[str, np.ndarray], int8: bool = False) -> dict[str, np.ndarray]:
    """One sample through every node; returns every activation by name (logical shapes).

    int8=True needs a quantized graph and int8 feeds; constant inputs are passed as their float values."""
    values: dict[str, np.ndarray] = dict(feeds)
    for node in g.nodes:
        op = REGISTRY[node.op]
        xs = [values[i] if i in values else g.const(i) for i in node.inputs if i]
        y = op.ref_s8(node, g, xs) if int8 else op.ref(node, g, xs)
        values[node.outputs[0]] = np.asarray(y).reshape(g.shape(node.outputs[0]))
    return values


def quantize_input(x: np.ndarray, scale: float, zp: int) -> np.ndarray:
    return np.clip(np.round(x.astype(np.float64) / scale) + zp, -128, 127).astype(np.int8)


def dequantize(q: np.ndarray, scale: float, zp: int) -> np.ndarray:
    return ((q.astype(np.float64) - zp) * scale).astype(np.float32)
