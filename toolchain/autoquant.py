"""--quantize auto: a scheme per layer, int8 or int4 weights and int8 or int16 activations, chosen by measured
sensitivity.

Every weighted layer (Conv, Gemm) is tried alone as int4 (weights rounded GPTQ-style, as --quantize int4) and
alone as int16 (the rest int8), and the output SQNR of the numpy integer model against float is measured on
calibration samples. Flash is the weight bytes of the lowered model on the target (exact). Then, from all-int8:
- with a flash budget: layers become int4, least SQNR lost per byte saved first, until the weights fit; then
  layers whose int16 activations measured a gain become int16 (flash grows only by their wider biases) while the
  measured SQNR improves and the weights still fit;
- with a maximum SQNR drop D (dB below all-int8): layers become int4 in the same order while the measured SQNR of
  the whole model stays within D; int16 is not used (it makes the model bigger).
The smallest model meeting the constraint is the aim; each step is checked on the whole model, not estimated."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import numpy as np

from .calibrate import float_activations
from .errors import EdgecError
from .ir import Graph
from .ops.base import is_weighted
from .quantize import (
    QuantOptions,
    correct_biases,
    float_outputs,
    output_sqnr,
    quantize_calibrated,
    quantize_graph,
    refine_int4_weights,
    round_weights,
)

AUTO_SAMPLES = 32  # calibration samples on which configurations are compared
MIN_INT16_GAIN_DB = 0.1


def choose_schemes(g: Graph, samples: list[dict[str, np.ndarray]], opts: QuantOptions, calibration: str,
                   percentile: float, weight_bytes: Callable[[Graph], int], flash_budget: int | None = None,
                   max_sqnr_drop: float | None = None) -> dict:
    """Quantize g with per-layer schemes meeting flash_budget (weight bytes) or max_sqnr_drop; returns a report."""
    if (flash_budget is None) == (max_sqnr_drop is None):
        raise EdgecError("--quantize auto needs exactly one of --flash-budget BYTES and --max-sqnr-drop DB")
    if max_sqnr_drop is not None and not 0 <= max_sqnr_drop < math.inf:
        raise EdgecError(f"--max-sqnr-drop {max_sqnr_drop}: give a finite number of dB, 0 or more (e.g. 1)")
    base = dataclasses.replace(opts, scheme="int8", layers={})
    chosen, ranges = quantize_calibrated(g, samples, calibration, percentile, base)
    acts = float_activations(g, samples)  # the float reference once, for every configuration measured
    picked = list(range(0, len(samples), max(1, len(samples) // AUTO_SAMPLES)))[:AUTO_SAMPLES]
    subset = [samples[s] for s in picked]
    want = float_outputs(g, subset, {n: acts[n][picked] for n in g.outputs})
    layers = [n.name for n in g.nodes if is_weighted(n)]
    hessians: dict[str, list[tuple]] = {}  # int4 weight rounding (GPTQ), per layer, computed once

    def measure(config: dict[str, str]) -> tuple[float, int]:
        quantize_graph(g, ranges, dataclasses.replace(base, layers=config))
        if "int4" in config.values():
            refine_int4_weights(g, samples, hessians, acts)
        if base.weight_rounding == "gptq":
            round_weights(g, samples, hessians, acts)
        if chosen["bias_correction"]:
            correct_biases(g, samples, acts)
        return output_sqnr(g, subset, want), weight_bytes(g)

    sqnr0, bytes0 = measure({})
    alone = {(name, s): measure({name: s}) for name in layers for s in ("int4", "int16")}
    saved = {name: bytes0 - alone[(name, "int4")][1] for name in layers}
    lost = {name: sqnr0 - alone[(name, "int4")][0] for name in layers}
    order = sorted((n for n in layers if saved[n] > 0), key=lambda n: max(lost[n], 0.0) / saved[n])
    config: dict[str, str] = {}
    sqnr, size = sqnr0, bytes0
    if flash_budget is not None:
        for name in order:
            if size <= flash_budget:
                break
            config[name] = "int4"
            sqnr, size = measure(config)
        if size > flash_budget:
            raise EdgecError(f"--flash-budget {flash_budget}: the weights need {size} bytes even with every layer's "
                             "weights int4; raise the budget")
        gains = sorted((n for n in layers if n not in config and
                        alone[(n, "int16")][0] - sqnr0 >= MIN_INT16_GAIN_DB),
                       key=lambda n: -(alone[(n, "int16")][0] - sqnr0))
        for name in gains:
            trial = {**config, name: "int16"}
            s, b = measure(trial)
            if s > sqnr and b <= flash_budget:
                config, sqnr, size = trial, s, b
    else:
        for name in order:
            s, b = measure({**config, name: "int4"})
            if s >= sqnr0 - max_sqnr_drop:
                config[name], sqnr, size = "int4", s, b
    final = measure(config)
    assert final == (sqnr, size) or math.isclose(final[0], sqnr)
    return {"calibration": chosen["calibration"], "bias_correction": chosen["bias_correction"],
            "layers": {n: config.get(n, "int8") for n in layers}, "sqnr_db": round(sqnr, 2),
            "int8_sqnr_db": round(sqnr0, 2), "weight_bytes": size, "int8_weight_bytes": bytes0,
            "alone": {f"{n} {s}": {"sqnr_db": round(v[0], 2), "weight_bytes": v[1]} for (n, s), v in alone.items()}}
