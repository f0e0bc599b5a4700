"""Cross-layer equalization (Nagel et al. 2019, "Data-Free Quantization Through Weight Equalization and Bias
Correction"), on the float graph before calibration (`--equalize`, QuantOptions.equalize).

Two weighted layers in a row, the first's output read by the second only, joined by an activation f with
f(x / s) = f(x) / s for s > 0 (ReLU or none; a fused ReLU6 or other clip is not: its bound would move per channel):
the first layer's output channel i (weights and bias) is divided by s_i and the second layer's weights reading
input channel i are multiplied by s_i, which leaves the float model unchanged (up to float32 rounding). With
s_i = sqrt(r1_i / r2_i), r1_i the largest |weight| of channel i in the first layer and r2_i the largest |weight|
reading it in the second, both become sqrt(r1_i * r2_i): the per-channel weight ranges of depthwise-separable
models (a depthwise layer's channels differ by orders of magnitude) even out. Chains of pairs are swept until the
scales settle; the weights are kept in float64 meanwhile and written once."""

from __future__ import annotations

import math

import numpy as np

from .ir import Graph, Node
from .ops import REGISTRY
from .ops.base import act_range, is_weighted

SWEEPS = 50  # sweeps over the pairs at most
SETTLED = 1e-4  # a sweep whose every scale is within this of 1 ends the iteration
# A channel whose weights are all below this share of the layer's largest is left alone: scaling it up to the others'
# range would scale its bias (its whole output) with it. mobilenet_vww96's depthwise layers have channels of weights
# around 1e-30 (dead in training) with biases around 1; equalized, its 12th layer's output range reached 1e13.
DEAD = 1e-6


def homogeneous(node: Node) -> bool:
    """Whether the node's fused activation commutes with positive per-channel scales: none, or a ReLU."""
    lo, hi = act_range(node)
    return lo in (0.0, -math.inf) and hi == math.inf


def pairs(g: Graph) -> list[tuple[Node, Node]]:
    """The (first, second) weighted layers equalization may scale: the first's output feeds only the second's
    activation input (not a graph output), through a homogeneous activation, on the channel axis of both."""
    found = []
    for first in g.nodes:
        if not is_weighted(first) or not homogeneous(first) or first.outputs[0] in g.outputs:
            continue
        readers = g.consumers(first.outputs[0])
        if len(readers) != 1 or not is_weighted(readers[0]) or readers[0].inputs[0] != first.outputs[0]:
            continue
        second, rank = readers[0], len(g.shape(first.outputs[0]))
        if REGISTRY[first.op].channel_axis % rank == REGISTRY[second.op].channel_axis % rank:
            found.append((first, second))
    return found


def _input_columns(w: np.ndarray, groups: int, channels: int) -> np.ndarray:
    """A view of w [O][K] as [groups][O / groups][channels / groups][taps]: the columns by input channel."""
    return w.reshape(groups, w.shape[0] // groups, channels // groups, -1)


def equalize(g: Graph) -> dict[str, float]:
    """Equalize every pair(g) in place; returns, per first layer of a pair, the largest |log2 s_i| applied."""
    found = pairs(g)
    nodes = {n.name: n for pair in found for n in pair}
    w = {k: np.ascontiguousarray(REGISTRY[n.op].weight_matrix(n, g), np.float64) for k, n in nodes.items()}
    b = {k: REGISTRY[n.op].bias_vector(n, g) for k, n in nodes.items()}
    b = {k: None if v is None else np.array(v, np.float64) for k, v in b.items()}
    total = {first.name: np.ones(w[first.name].shape[0]) for first, _ in found}
    for _ in range(SWEEPS):
        moved = 0.0
        for first, second in found:
            channels = w[first.name].shape[0]
            cols = _input_columns(w[second.name], REGISTRY[second.op].groups(second), channels)
            r1 = np.abs(w[first.name]).max(axis=1)
            r2 = np.abs(cols).max(axis=(1, 3)).reshape(-1)
            live = (r1 > DEAD * r1.max()) & (r2 > DEAD * r2.max())
            s = np.where(live, np.sqrt(r1 / np.where(live, r2, 1.0)), 1.0)
            w[first.name] /= s[:, None]
            if b[first.name] is not None:
                b[first.name] /= s
            cols *= s.reshape(cols.shape[0], 1, -1, 1)
            total[first.name] *= s
            moved = max(moved, float(np.abs(np.log(s)).max(initial=0.0)))
        if moved < SETTLED:
            break
    for k, n in nodes.items():
        REGISTRY[n.op].set_weights(n, g, w[k], b[k])
    g.remove_unused()
    return {k: float(np.abs(np.log2(s)).max(initial=0.0)) for k, s in total.items()}
