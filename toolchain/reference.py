"""Run a graph with the numpy references: float32 (ONNX semantics) or int8 (the bit-exact specification)."""

from __future__ import annotations

import numpy as np

from .ir import NUMPY_TYPES, Graph
from .ops import REGISTRY
from .ops.base import QRANGE


def run_graph(g: Graph, feeds: dict[str, np.ndarray], int8: bool = False) -> dict[str, np.ndarray]:
    """One sample through every node; returns every activation by name (logical shapes).

    int8=True runs the integer reference of a quantized graph (int8, int16 or mixed: each node in its own element
    type, float layers in float32) on feeds of each input's type (quantize_feeds); constant inputs are passed as
    their float values."""
    values: dict[str, np.ndarray] = dict(feeds)
    for node in g.nodes:
        op = REGISTRY[node.op]
        xs = [values[i] if i in values else g.const(i) for i in node.inputs if i]
        if not int8:
            y = op.ref(node, g, xs)
        elif node.dtype == "float32" and node.op != "Convert":
            y = op.ref_f32(node, g, xs)
        else:
            y = op.ref_s8(node, g, xs)
        values[node.outputs[0]] = np.asarray(y).reshape(g.shape(node.outputs[0]))
    return values


def quantize_input(x: np.ndarray, scale: float, zp: int, dtype: str = "int8") -> np.ndarray:
    lo, hi = QRANGE[dtype]
    return np.clip(np.round(x.astype(np.float64) / scale) + zp, lo, hi).astype(NUMPY_TYPES[dtype])


def represented_range(scale: float, zp: int, dtype: str = "int8") -> tuple[float, float]:
    """The float range an integer tensor of this scale and zero point represents (its type's bounds dequantized)."""
    lo, hi = QRANGE[dtype]
    return (lo - zp) * scale, (hi - zp) * scale


def quantize_feeds(g: Graph, sample: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A sample's model inputs in their element types (float32 inputs as they are)."""
    out = {}
    for n in g.inputs:
        t = g.tensors[n]
        x = np.asarray(sample[n]).reshape(t.shape)
        out[n] = x.astype(np.float32) if t.dtype == "float32" else quantize_input(x, t.scale, t.zero_point, t.dtype)
    return out


def dequantize(q: np.ndarray, scale: float, zp: int) -> np.ndarray:
    return ((q.astype(np.float64) - zp) * scale).astype(np.float32)
