"""Run a graph with the numpy references: float32 (ONNX semantics) or int8 (the bit-exact specification).

Samples run together as one batch (run_batch): every value carries a leading sample axis. A node whose op has the
`batched` trait runs once with the samples laid end to end along its batch axis (axis 0); other nodes run sample by
sample. Each sample's integers are the same either way (tests/test_calibrate.py checks it)."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext

import numpy as np

from .console import stage
from .ir import NUMPY_TYPES, Graph, Node
from .ops import REGISTRY
from .ops.base import QRANGE

BATCH = 32  # samples run together by run_samples (every activation of a batch is held at once)


def _evaluate(node: Node, g: Graph, xs: list[np.ndarray], int8: bool) -> np.ndarray:
    op = REGISTRY[node.op]
    if not int8:
        return op.ref(node, g, xs)
    if node.dtype == "float32":
        return op.ref_f32(node, g, xs)
    return op.ref_s8(node, g, xs)


def _joinable(node: Node, g: Graph) -> bool:
    """Whether the samples may be laid end to end along axis 0 for this node: its op treats axis 0 as independent
    samples (the `batched` trait), every activation it reads has the output's rank and batch size, and every
    constant operand of an unweighted op has a lower rank or a batch of 1 (so it broadcasts over the samples;
    a weighted op's constants are its weights)."""
    op = REGISTRY[node.op]
    if not op.batched:
        return False
    out = g.shape(node.outputs[0])
    for name in (i for i in node.inputs if i):
        c = g.const(name)
        shape = g.shape(name) if c is None else c.shape
        if c is None and (len(shape) != len(out) or not out or shape[0] != out[0]):
            return False
        if c is not None and not op.weighted and len(shape) >= len(out) and shape[0] != 1:
            return False
    return len(out) > 1


def run_batch(g: Graph, feeds: dict[str, np.ndarray], int8: bool = False) -> dict[str, np.ndarray]:
    """All samples through every node at once: feeds hold each input with a leading sample axis ([S, *shape]);
    returns every activation by name as [S, *logical shape]. int8 as in run_graph."""
    n = len(next(iter(feeds.values())))
    values: dict[str, np.ndarray] = dict(feeds)
    for node in g.nodes:
        names = [i for i in node.inputs if i]
        shape = tuple(g.shape(node.outputs[0]))
        if _joinable(node, g):
            xs = [values[i].reshape((-1,) + values[i].shape[2:]) if i in values else g.const(i) for i in names]
            y = np.asarray(_evaluate(node, g, xs, int8)).reshape((n,) + shape)
        else:
            y = np.stack([np.asarray(_evaluate(node, g, [values[i][s] if i in values else g.const(i) for i in names],
                                               int8)).reshape(shape) for s in range(n)])
        values[node.outputs[0]] = y
    return values


def run_graph(g: Graph, feeds: dict[str, np.ndarray], int8: bool = False) -> dict[str, np.ndarray]:
    """One sample through every node; returns every activation by name (logical shapes).

    int8=True runs the integer reference of a quantized graph (int8, int16 or mixed: each node in its own element
    type, float layers in float32) on feeds of each input's type (quantize_feeds); constant inputs are passed as
    their float values."""
    feeds = {k: np.asarray(v).reshape(g.shape(k) if k in g.inputs else np.shape(v))[None] for k, v in feeds.items()}
    return {k: v[0] for k, v in run_batch(g, feeds, int8).items()}


def stack_samples(g: Graph, samples: Sequence[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The samples' model inputs as one batch: [S, *input shape] each."""
    return {n: np.stack([np.asarray(s[n]).reshape(g.shape(n)) for s in samples]) for n in g.inputs}


def run_samples(g: Graph, samples: Sequence[dict[str, np.ndarray]], int8: bool = False,
                names: Sequence[str] | None = None, label: str = "") -> list[dict[str, np.ndarray]]:
    """Each sample's values (the tensors in names, default the graph's outputs), BATCH samples run together;
    int8=True quantizes the float samples to the inputs' types first (quantize_feeds) and runs the integer
    reference. label: a progress stage's name (none without)."""
    names = list(g.outputs if names is None else names)
    out: list[dict[str, np.ndarray]] = []
    with stage(label, len(samples), "samples") if label else nullcontext() as progress:
        for start in range(0, len(samples), BATCH):
            feeds = stack_samples(g, samples[start:start + BATCH])
            values = run_batch(g, quantize_batch(g, feeds) if int8 else feeds, int8)
            out += [{k: values[k][s] for k in names} for s in range(len(values[names[0]]))]
            if progress is not None:
                progress.update(len(values[names[0]]))
    return out


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


def quantize_batch(g: Graph, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """quantize_feeds of a batch ([S, *input shape] each)."""
    out = {}
    for n in g.inputs:
        t = g.tensors[n]
        x = np.asarray(feeds[n]).reshape((-1,) + tuple(t.shape))
        out[n] = x.astype(np.float32) if t.dtype == "float32" else quantize_input(x, t.scale, t.zero_point, t.dtype)
    return out
