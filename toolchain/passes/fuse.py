"""Fuse Relu and Clip (Relu6 included) into the op that produces their input."""

from __future__ import annotations

import math

from ..ir import Graph
from ..ops import REGISTRY


def fuse_activations(g: Graph) -> None:
    """A node that only clamps its input (Op.clamp_range: Relu, Clip) becomes the fused activation of the node that
    produces its input, when that one fuses_activation and nothing else reads the input."""
    for act in list(g.nodes):
        bounds = REGISTRY[act.op].clamp_range(act) if act.op in REGISTRY else None
        src = act.inputs[0] if act.inputs else None
        prod = g.producer(src) if bounds else None
        if prod is None or not REGISTRY.get(prod.op) or not REGISTRY[prod.op].fuses_activation:
            continue
        if len(g.consumers(src)) != 1 or src in g.outputs:
            continue
        lo, hi = bounds
        old_lo, old_hi = prod.attrs.get("act", (-math.inf, math.inf))
        prod.attrs["act"] = (max(lo, old_lo), min(hi, old_hi))
        prod.outputs = [act.outputs[0]]
        g.nodes.remove(act)
    g.remove_unused()
