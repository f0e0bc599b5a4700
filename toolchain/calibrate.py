"""Calibration: the float range of every activation, from sample inputs run through the float reference.

Methods: minmax (the extremes seen), moving-average (the mean of each sample's extremes), percentile (drop the
rarest values at both ends), entropy (the clipping range whose 256-level histogram has the least KL divergence
from the float histogram) and mse (the clipping range with the least expected squared quantization error)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .console import track
from .errors import EdgecError
from .ir import Graph
from .reference import run_graph

METHODS = ("minmax", "moving-average", "percentile", "entropy", "mse")
BINS = 2048
LEVELS = 256  # int8
MIN_HISTOGRAM_VALUES = 16 * LEVELS


def _activations(g: Graph, samples: list[dict[str, np.ndarray]], label: str) -> Iterator[dict[str, np.ndarray]]:
    for feeds in track(samples, label, "samples"):
        values = run_graph(g, feeds)
        yield {k: v for k, v in values.items() if g.const(k) is None}


def calibrate(g: Graph, samples: list[dict[str, np.ndarray]], method: str = "minmax",
              percentile: float = 99.99) -> dict[str, tuple[float, float]]:
    """(low, high) clipping range of every activation tensor."""
    if method not in METHODS:
        raise EdgecError(f"--calibration {method}: choose one of {', '.join(METHODS)}")
    if not 50.0 < percentile <= 100.0:
        raise EdgecError(f"--percentile {percentile}: give a value in (50, 100]")
    lows: dict[str, list[float]] = {}
    highs: dict[str, list[float]] = {}
    for values in _activations(g, samples, "calibrating"):
        for name, v in values.items():
            lows.setdefault(name, []).append(float(v.min()))
            highs.setdefault(name, []).append(float(v.max()))
    bad = next((n for n in lows if not np.isfinite(lows[n] + highs[n]).all()), None)
    if bad is not None:
        raise EdgecError(f"calibration: tensor '{bad}' takes non-finite values (NaN or infinity) on the calibration "
                         "samples; check the samples for NaN/infinity, or the float model for an overflow")
    if method == "moving-average":
        return {n: (float(np.mean(lows[n])), float(np.mean(highs[n]))) for n in lows}
    ranges = {n: (min(lows[n]), max(highs[n])) for n in lows}
    if method == "minmax":
        return ranges
    hists = {n: np.zeros(BINS, np.int64) for n in ranges}
    binnable = {n for n, r in ranges.items() if _binnable(*r)}  # the others (a constant, a denormal range) keep min/max
    for values in _activations(g, samples, "calibration histograms"):
        for name, v in values.items():
            lo, hi = ranges[name]
            if name in binnable:  # exact zeros (a ReLU's output) are exact at any scale: they carry no information here
                hists[name] += np.histogram(v[v != 0], bins=BINS, range=(lo, hi))[0]
    choose = {"percentile": lambda h, lo, hi: _percentile(h, lo, hi, percentile),
              "entropy": _entropy, "mse": _mse}[method]
    # A histogram of too few values says little about the tails: such tensors keep their min/max.
    return {n: choose(hists[n], *ranges[n]) if hists[n].sum() >= MIN_HISTOGRAM_VALUES else ranges[n] for n in ranges}


def _binnable(lo: float, hi: float) -> bool:
    """Whether [lo, hi] splits into BINS distinct float32 bins (np.histogram of float32 values needs it)."""
    edges = np.linspace(np.float32(lo), np.float32(hi), BINS + 1, dtype=np.float32)
    return hi > lo and bool(np.all(np.diff(edges) > 0))


def _edges(lo: float, hi: float) -> np.ndarray:
    return np.linspace(lo, hi, BINS + 1)


def _percentile(hist: np.ndarray, lo: float, hi: float, p: float) -> tuple[float, float]:
    cdf = np.cumsum(hist) / hist.sum()
    edges = _edges(lo, hi)
    tail = 1.0 - p / 100.0
    new_lo = edges[int(np.searchsorted(cdf, tail, side="right"))] if lo < 0 else lo
    new_hi = edges[int(np.searchsorted(cdf, 1.0 - tail, side="left")) + 1] if hi > 0 else hi
    return float(min(new_lo, 0.0) if lo < 0 else lo), float(max(new_hi, 0.0) if hi > 0 else hi)


SHRINK = np.linspace(0.1, 1.0, 91)


def _search(lo: float, hi: float, cost) -> tuple[float, float]:
    """The clipping range of least cost: the upper end shrunk toward 0 first, then the lower end."""
    best_hi = min((hi * f for f in SHRINK), key=lambda h: cost((lo, h))) if hi > 0 else hi
    best_lo = min((lo * f for f in SHRINK), key=lambda x: cost((x, best_hi))) if lo < 0 else lo
    return float(best_lo), float(best_hi)


def _quantized_centers(centers: np.ndarray, lo: float, hi: float) -> np.ndarray:
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = (hi - lo) / (LEVELS - 1)
    zp = np.round(-lo / scale)
    q = np.clip(np.round(centers / scale) + zp, 0, LEVELS - 1)
    return (q - zp) * scale


def _mse(hist: np.ndarray, lo: float, hi: float) -> tuple[float, float]:
    edges = _edges(lo, hi)
    centers = (edges[:-1] + edges[1:]) / 2
    return _search(lo, hi, lambda c: float(hist @ (centers - _quantized_centers(centers, *c)) ** 2))


def _entropy(hist: np.ndarray, lo: float, hi: float) -> tuple[float, float]:
    """TensorRT-style: per candidate range, fold the clipped tails into the edge bins (P), spread each quantization
    level's mass evenly over the bins with data that map to it (Q), and keep the range with the least KL(P || Q)."""
    edges = _edges(lo, hi)
    centers = (edges[:-1] + edges[1:]) / 2

    def divergence(c: tuple[float, float]) -> float:
        inside = (centers >= min(c[0], 0.0)) & (centers <= max(c[1], 0.0))
        first, last = int(np.argmax(inside)), len(inside) - 1 - int(np.argmax(inside[::-1]))
        raw = hist[first:last + 1].astype(np.float64)
        p = raw.copy()
        p[0] += hist[:first].sum()
        p[-1] += hist[last + 1:].sum()
        p /= p.sum()
        # Q comes from the unclipped bins only, so mass that clipping moves into the edge bins costs divergence.
        nonzero = raw > 0
        _, inverse = np.unique(_quantized_centers(centers[first:last + 1], *c), return_inverse=True)
        mass = np.bincount(inverse, weights=raw)
        count = np.bincount(inverse, weights=nonzero.astype(np.float64))
        q = np.where(nonzero, mass[inverse] / np.maximum(count[inverse], 1), 0.0)
        q = np.maximum(q / q.sum(), 1e-12)
        keep = p > 0
        return float(np.sum(p[keep] * np.log(p[keep] / q[keep])))

    return _search(lo, hi, divergence)
