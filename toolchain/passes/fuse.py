"""Fuse Relu and Clip (Relu6 included) into the op that produces their input."""

from __future__ import annotations

import math

from ..ir import Graph
from ..ops import REGISTRY


def fuse_activations(g: Graph) -> None:
    for act in [n for n in g.nodes if n.op in ("Relu", "Clip")]:
        src = act.inputs[0]
        prod = g.producer(src)
        if prod is None or not REGISTRY.get(prod.op) or not REGISTRY[prod.op].fuses_activation:
            continue
        if len(g.consumers(src)) != 1 or src in g.outputs:
            continue
        lo, hi = (0.0, math.inf) if act.op == "Relu" else (act.attrs.get("min", -math.inf),
                                                             act.attrs.get("max", math.inf))
        old_lo, old_hi = prod.attrs.get("act", (-math.inf, math.inf))
        prod.attrs["act"] = (max(lo, old_lo), min(hi, old_hi))
        prod.outputs = [act.outputs[0]]
        g.nodes.remove(act)
    g.remove_unused()
