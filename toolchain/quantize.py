"""Static post-training int8 quantization: calibrate activation ranges, then let every op derive its integers.

Weights: int8 symmetric per output channel. Activations: int8 asymmetric per tensor from calibrated min/max.
Bias: int32 with scale input_scale * weight_scale. Requantization: int32 multiplier and shift (TFLite rounding)."""

from __future__ import annotations

import numpy as np

from .ir import Graph
from .ops import REGISTRY


def affine_params(lo: float, hi: float) -> tuple[float, int]:
    """int8 scale and zero point covering [lo, hi] and 0 exactly."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = (hi - lo) / 255.0 if hi > lo else 1.0 / 255.0
    zp = int(np.clip(round(-128 - lo / scale), -128, 127))
    return float(scale), zp


def needs_calibration(g: Graph) -> bool:
    """Whether some activation has no scale from the model itself (an imported QDQ model has them all)."""
    producers = {n.outputs[0]: n for n in g.nodes}
    for name in g.activations():
        node = producers.get(name)
        op = REGISTRY[node.op] if node else None
        if op and (op.keeps_quant or op.output_quant(node, g) is not None):
            continue
        if g.tensors[name].fixed_quant is None:
            return True
    return False


def is_prequantized(g: Graph) -> bool:
    return any(g.tensors[n].fixed_quant is not None for n in g.activations())


def quantize_graph(g: Graph, ranges: dict[str, tuple[float, float]]) -> None:
    """Set every activation's scale and zero point, then let each op derive its integer parameters.

    Priority: the op's own fixed output format (softmax), the input's format for ops that keep it (pooling,
    reshapes), the model's own (imported QDQ), the calibrated range."""
    for name in g.inputs:
        t = g.tensors[name]
        t.scale, t.zero_point = t.fixed_quant or affine_params(*ranges[name])
    for node in g.nodes:
        op = REGISTRY[node.op]
        out = g.tensors[node.outputs[0]]
        fixed = op.output_quant(node, g)
        if fixed is not None:
            out.scale, out.zero_point = fixed
        elif op.keeps_quant:
            src = g.tensors[node.inputs[0]]
            out.scale, out.zero_point = src.scale, src.zero_point
        else:
            out.scale, out.zero_point = out.fixed_quant or affine_params(*ranges[out.name])
    g.quantized = True
    for node in g.nodes:
        node.q = REGISTRY[node.op].quantize(node, g)
