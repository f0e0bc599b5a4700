"""Calibration: the float range of every activation, from sample inputs run through the float reference.

Methods: minmax (the extremes seen), moving-average (the mean of each sample's extremes), percentile (drop the
rarest values at both ends), entropy (the clipping range whose 256-level histogram has the least KL divergence
from the float histogram), mse (the clipping range with the least expected squared quantization error) and output
(the clipping range of a tensor that layers read is the one whose quantization error, multiplied by those layers'
float weights, is least: the error of the layers' outputs, not of the tensor; other tensors keep min/max).

The float reference runs once over all samples (float_activations, in batches of BATCH samples); its activations
serve every method and every candidate quantization. Ranges and the `auto` choice are kept on disk (StatsCache,
under $XDG_CACHE_HOME/edgec or ~/.cache/edgec), keyed by a hash of the graph and of the samples, so a rebuild
skips them."""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
from pathlib import Path

import numpy as np

from .console import json_text, json_values, stage
from .errors import EdgecError
from .ir import Graph, Node
from .ops import REGISTRY
from .ops.base import is_weighted
from .reference import run_batch, stack_samples

METHODS = ("minmax", "moving-average", "percentile", "entropy", "mse", "output")
BINS = 2048
LEVELS = 256  # int8
MIN_HISTOGRAM_VALUES = 16 * LEVELS
BATCH = 16  # samples per run of the float reference (one progress step)


def float_activations(g: Graph, samples: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Every activation of the float reference on every sample, [S, *shape] each (constants left out)."""
    parts: dict[str, list[np.ndarray]] = {}
    with stage("float reference", len(samples), "samples") as progress:
        for start in range(0, len(samples), BATCH):
            chunk = samples[start:start + BATCH]
            for k, v in run_batch(g, stack_samples(g, chunk)).items():
                if g.const(k) is None:
                    parts.setdefault(k, []).append(v)
            progress.update(len(chunk))
    return {k: v[0] if len(v) == 1 else np.concatenate(v) for k, v in parts.items()}


def calibrate(g: Graph, samples: list[dict[str, np.ndarray]], method: str = "minmax",
              percentile: float = 99.99, acts: dict[str, np.ndarray] | None = None) -> dict[str, tuple[float, float]]:
    """(low, high) clipping range of every activation tensor (acts: float_activations(g, samples), if known)."""
    if method not in METHODS:
        raise EdgecError(f"--calibration {method}: choose one of {', '.join(METHODS)}")
    if not 50.0 < percentile <= 100.0:
        raise EdgecError(f"--percentile {percentile}: give a value in (50, 100]")
    acts = float_activations(g, samples) if acts is None else acts
    lows = {n: v.reshape(len(v), -1).min(axis=1).astype(np.float64) for n, v in acts.items()}
    highs = {n: v.reshape(len(v), -1).max(axis=1).astype(np.float64) for n, v in acts.items()}
    bad = next((n for n in lows if not np.isfinite(lows[n] + highs[n]).all()), None)
    if bad is not None:
        raise EdgecError(f"calibration: tensor '{bad}' takes non-finite values (NaN or infinity) on the calibration "
                         "samples; check the samples for NaN/infinity, or the float model for an overflow")
    if method == "moving-average":
        return {n: (float(np.mean(lows[n])), float(np.mean(highs[n]))) for n in lows}
    ranges = {n: (float(lows[n].min()), float(highs[n].max())) for n in lows}
    if method == "minmax":
        return ranges
    if method == "output":
        return {**ranges, **output_ranges(g, acts, ranges)}
    choose = {"percentile": lambda h, lo, hi: _percentile(h, lo, hi, percentile),
              "entropy": _entropy, "mse": _mse}[method]
    out = {}
    for n, (lo, hi) in ranges.items():
        # exact zeros (a ReLU's output) are exact at any scale: they carry no information here; a range that does
        # not split into BINS float32 bins (a constant, a denormal range) keeps min/max
        v = acts[n]
        hist = np.histogram(v[v != 0], bins=BINS, range=(lo, hi))[0] if _binnable(lo, hi) else np.zeros(BINS, int)
        # A histogram of too few values says little about the tails: such tensors keep their min/max.
        out[n] = choose(hist, lo, hi) if hist.sum() >= MIN_HISTOGRAM_VALUES else (lo, hi)
    return out


CACHE_VERSION = 1  # raise when what is cached, or how it is computed, changes


def cache_dir() -> Path:
    """$XDG_CACHE_HOME/edgec/calibration; the XDG base directory spec says a relative $XDG_CACHE_HOME is invalid
    and ignored (~/.cache then)."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    return (Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache") / "edgec" / "calibration"


def _digest_into(h, *parts) -> None:
    for p in parts:
        if isinstance(p, np.ndarray):
            h.update(f"{p.dtype.str}{p.shape}".encode())
            h.update(np.ascontiguousarray(p).tobytes())
        elif isinstance(p, dict):
            for k in sorted(p, key=str):
                _digest_into(h, str(k), p[k])
        elif isinstance(p, (list, tuple)):
            h.update(f"[{len(p)}".encode())
            _digest_into(h, *p)
        else:
            h.update(f"{type(p).__name__}:{p!r};".encode())


def stats_key(g: Graph, samples: list[dict[str, np.ndarray]]) -> str:
    """A hash of what the statistics depend on: the graph's nodes, attributes, shapes and constants, the samples'
    values, and edgec's own Python sources (the references that computed them)."""
    from . import __version__

    h = hashlib.sha256(f"edgec {__version__} calibration {CACHE_VERSION}".encode())
    for f in sorted(Path(__file__).parent.rglob("*.py")):
        h.update(f.read_bytes())
    for node in g.nodes:
        _digest_into(h, node.op, node.name, list(node.inputs), list(node.outputs), node.attrs)
    for name in sorted(g.tensors):
        t = g.tensors[name]
        _digest_into(h, name, list(t.shape), t.data if t.is_const else None)
    _digest_into(h, list(g.inputs), list(g.outputs), [dict(s) for s in samples])
    return h.hexdigest()


class StatsCache:
    """Calibration statistics of one graph and sample set in a JSON file: entries of ranges per method and of
    `auto` choices per option set, with the key and a checksum of the entries. A file that is unreadable, of
    another key, whose checksum fails or whose entry is malformed is not used (the statistics are computed again
    and the file rewritten); a folder that cannot be written leaves the build uncached."""

    def __init__(self, g: Graph, samples: list[dict[str, np.ndarray]]) -> None:
        self.key = stats_key(g, samples)
        self.path = cache_dir() / f"{self.key}.json"
        self.names = {n for n in [*g.inputs, *(node.outputs[0] for node in g.nodes)] if g.const(n) is None}
        try:  # (only a regular file: a FIFO put in its place would block the build)
            data = json.loads(self.path.read_text()) if self.path.is_file() else {}
            ok = data["key"] == self.key and data["digest"] == _entries_digest(data["entries"])
            self.entries = data["entries"] if ok and isinstance(data["entries"], dict) else {}
        except (OSError, ValueError, KeyError, TypeError, RecursionError):  # (RecursionError: JSON nested deeply)
            self.entries = {}

    def ranges(self, entry: str) -> dict[str, tuple[float, float]] | None:
        r = self.entries.get(entry)
        ok = isinstance(r, dict) and set(r) == self.names and all(
            isinstance(v, list) and len(v) == 2 and all(map(finite_float32, v)) and v[0] <= v[1] for v in r.values())
        return {k: (float(v[0]), float(v[1])) for k, v in r.items()} if ok else None

    def get(self, entry: str):
        return self.entries.get(entry)

    def put(self, entry: str, value) -> None:
        self.entries[entry] = json_values(value)  # (as it reads back: an infinite SQNR is null)
        tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json_text({"key": self.key, "digest": _entries_digest(self.entries),
                                      "entries": self.entries}))
            os.replace(tmp, self.path)
        except OSError:  # (the folder is a file, read-only, full: the build goes on uncached)
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)


def _entries_digest(entries) -> str:
    """A checksum of the entries (a file changed by anything but StatsCache.put is ignored)."""
    return hashlib.sha256(json.dumps(entries, sort_keys=True).encode()).hexdigest()


FLOAT32_MAX = float(np.finfo(np.float32).max)


def finite_float32(x) -> bool:
    """A JSON number that is a finite float32 (a range bound; a huge integer or 1e300 is not)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and abs(x) <= FLOAT32_MAX


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


def _search(lo: float, hi: float, cost, shrink: np.ndarray = SHRINK) -> tuple[float, float]:
    """The clipping range of least cost: the upper end shrunk toward 0 first, then the lower end."""
    best_hi = min((hi * f for f in shrink), key=lambda h: cost((lo, h))) if hi > 0 else hi
    best_lo = min((lo * f for f in shrink), key=lambda x: cost((x, best_hi))) if lo < 0 else lo
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


OUTPUT_SAMPLES = 16  # calibration samples whose layer outputs the output method compares
OUTPUT_ROWS = 8192  # input rows (output positions x samples) per layer and group at most, evenly spaced
OUTPUT_MACS = 1 << 22  # and at most this many multiply-accumulates per layer and candidate range (rows x K x O)
OUTPUT_SHRINK = np.linspace(0.2, 1.0, 41)


def output_ranges(g: Graph, acts: dict[str, np.ndarray], ranges: dict[str, tuple[float, float]]
                  ) -> dict[str, tuple[float, float]]:
    """For every tensor read by weighted layers (directly or through ops that keep its scale: pooling, reshapes):
    the clipping range, shrunk from min/max, with the least squared error of those layers' outputs when the tensor
    is quantized with it (float weights; by linearity the output error is the input error times the weights)."""
    readers: dict[str, list[tuple[list[Node], Node]]] = {}
    for node in g.nodes:
        if is_weighted(node):
            chain = _scale_chain(g, node.inputs[0])
            readers.setdefault(chain[0].inputs[0] if chain else node.inputs[0], []).append((chain, node))
    out = {}
    for name, layers in readers.items():
        lo, hi = ranges[name]
        if name in acts and hi > lo:
            x = acts[name][::-(-len(acts[name]) // OUTPUT_SAMPLES)]
            cost = _output_error(g, x.reshape((-1,) + x.shape[2:]), layers)
            out[name] = _search(lo, hi, cost, OUTPUT_SHRINK)
    return out


def _output_error(g: Graph, x: np.ndarray, layers: list[tuple[list[Node], Node]]):
    """cost((lo, hi)): the squared error of the layers' outputs (rows sampled) when they read x quantized over
    [lo, hi] (through their chains of scale-keeping ops) instead of x. Without a chain the layer's input rows are
    quantized directly (quantization commutes with taking windows: zero padding is exact)."""
    direct, chained = [], []
    for chain, node in layers:
        op = REGISTRY[node.op]
        w = op.weight_matrix(node, g).astype(np.float64)
        rows = op.input_rows(node, g, _through(g, chain, x))
        ws = [m.T for m in w.reshape(len(rows), w.shape[0] // len(rows), -1)]
        if chain:
            chained.append((chain, node, ws, rows))
        else:
            most = max(1, min(OUTPUT_ROWS, OUTPUT_MACS // w.size))
            direct += [(r[::-(-len(r) // most)], m) for r, m in zip(rows, ws)]

    def cost(c: tuple[float, float]) -> float:
        total = sum(float(np.sum(((_quantized_centers(r, *c) - r) @ m) ** 2)) for r, m in direct)
        for chain, node, ws, rows in chained:
            q = REGISTRY[node.op].input_rows(node, g, _through(g, chain, _quantized_centers(x, *c)))
            total += sum(float(np.sum(((a - r) @ m) ** 2)) for a, r, m in zip(q, rows, ws))
        return total

    return cost


def _scale_chain(g: Graph, name: str) -> list[Node]:
    """The ops, in graph order, through which `name` takes its scale from an earlier tensor (ops that keep their
    input's scale: pooling, reshapes); [] when it has a scale of its own."""
    chain: list[Node] = []
    node = g.producer(name)
    while node is not None and REGISTRY[node.op].keeps_quant and g.const(node.inputs[0]) is None:
        chain.insert(0, node)
        node = g.producer(node.inputs[0])
    return chain


def _through(g: Graph, chain: list[Node], x: np.ndarray) -> np.ndarray:
    """x (samples along axis 0) through the chain's float references, sample by sample."""
    for node in chain:
        op = REGISTRY[node.op]
        x = np.stack([np.asarray(op.ref(node, g, [v if i == node.inputs[0] else g.const(i)
                                                  for i in node.inputs if i])) for v in x[:, None]])
        x = x.reshape((len(x),) + tuple(g.shape(node.outputs[0]))[1:])
    return x


def _entropy(hist: np.ndarray, lo: float, hi: float) -> tuple[float, float]:
    """TensorRT-style: per candidate range, fold the clipped tails into the edge bins (P), spread each quantization
    level's mass evenly over the bins with data that map to it (Q), and keep the range with the least KL(P || Q)."""
    if not hist.any():  # (a tensor that is 0 on every sample)
        return lo, hi
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
        if not q.any():  # all the data clipped into the edge bins
            return math.inf
        q = np.maximum(q / q.sum(), 1e-12)
        keep = p > 0
        return float(np.sum(p[keep] * np.log(p[keep] / q[keep])))

    return _search(lo, hi, divergence)
