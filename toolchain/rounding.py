"""Weight rounding learned on calibration data: GPTQ (Frantar et al. 2022, "GPTQ: Accurate Post-Training Quantization
for Generative Pre-trained Transformers"), without blocking.

A layer's weights keep the scales quantization gave them; only the rounding of each integer changes. Column by
column (input by input), each weight is rounded to nearest, and its rounding error is compensated in the columns
not yet rounded, so that the layer's output X W^T on the calibration inputs X changes least (X^T X, the "Hessian",
is all it needs). Biases and multipliers depend on the scales only, so they stay valid.

int4 weights are always rounded so (refine_int4_weights); `--weight-rounding gptq` (QuantOptions.weight_rounding)
rounds the int8 weights of int8, int16 (16x8), qformat and q15 layers the same way (round_weights).

Measured on the shared models (edgec validate --quantize int8, default calibration auto, test inputs; SQNR dB):
the float inputs in the natural column order are the best of the variants tried. GPTQ's act order (columns by
decreasing X^T X diagonal) was worse on every model (resnet8 24.54 against 25.51, dscnn_kws 24.65 against 25.77,
mobilenet_vww96 42.77 against 44.98, ad01 45.33 against 46.66); X^T X of the inputs quantized as the integer layer
reads them was worse on four models (resnet8 24.26, dscnn_kws 25.36, mobilenet_vww96 44.65, ad01 44.44) and better
on two (str_ww 48.77 against 47.19, dscnn_kws_int8src 26.39 against 26.31); fitting the integer model's actual
inputs to the float outputs (an asymmetric target, layer by layer) was much worse end to end (resnet8 23.24,
dscnn_kws 16.05) though better per layer on held-out calibration samples. Damping X^T X by K / rows where that
is above 1% (layers with few input rows: the last Gemm sees one per sample) and 64 samples instead of 32 were no
better overall (resnet8 25.15 and 24.30, mobilenet_vww96 42.05 and 43.95, dscnn_kws 28.19 and 27.68, ad01 43.82
and 44.97)."""

from __future__ import annotations

import numpy as np

from .calibrate import float_activations
from .ir import Graph, Node
from .ops import REGISTRY
from .ops.base import is_weighted
from .ops.output_stage import INT4_MAX

ROUNDINGS = ("nearest", "gptq")  # QuantOptions.weight_rounding
GPTQ_SAMPLES = 32  # calibration samples that weight rounding looks at
GPTQ_ROWS = 1024  # input rows (output positions) per sample and layer at most, evenly spaced
GPTQ_DAMPING = 0.01  # of the mean diagonal of X^T X
# The integer weights of each scheme (ops/output_stage.py quantize_weights); int4 is rounded by refine_int4_weights.
WEIGHT_BOUNDS = {"int8": (-127, 127), "int16": (-127, 127), "qformat": (-128, 127), "q15": (-128, 127)}

# A layer whose input rows on the samples are fewer than MIN_ROWS x its columns keeps nearest rounding: X^T X is
# then singular but for the damping, and GPTQ fits the error into directions the samples do not see (a Gemm after
# global pooling has one row per sample). Measured (default calibration, GPTQ everywhere -> with this): resnet8 25.51
# -> 26.31 dB, mobilenet_vww96 44.98 -> 45.23, dscnn_kws 25.77 -> 25.84, dscnn_kws_int8src 26.31 -> 26.67, ad01
# 46.66 -> 46.17 (top-1 of its 640 outputs 0.55 -> 0.70), str_ww 47.19 either way; 4 was worse on resnet8 and
# mobilenet_vww96.
MIN_ROWS = 1.0
Factor = tuple[np.ndarray, np.ndarray]  # gptq_factor: the upper Cholesky factor and the inputs that are always 0
# A layer's factors (None where its inputs' X^T X is not finite: it keeps nearest rounding) and its input rows.
Factors = tuple[list[Factor] | None, int]


def gptq_factor(h: np.ndarray) -> Factor:
    """From X^T X (K x K): the upper Cholesky factor of the damped inverse, and the inputs that are always 0."""
    h = h.astype(np.float64).copy()
    dead = np.diag(h) == 0
    h[dead, dead] = 1.0
    h += GPTQ_DAMPING * float(np.mean(np.diag(h))) * np.eye(len(h))
    return np.linalg.cholesky(np.linalg.inv(h)).T, dead


def gptq_round(w: np.ndarray, scales: np.ndarray, h: np.ndarray | Factor, qmax: int,
               qmin: int | None = None) -> np.ndarray:
    """Round w [O][K] to integers in [qmin, qmax] (qmin: -qmax when not given) at per-row scales, column by column,
    each column's rounding error compensated in the columns not yet rounded so that X w^T changes least for inputs
    with X^T X = h. h may be given as its gptq_factor. Weights that are exactly 0 (pruned) stay 0."""
    u, dead = gptq_factor(h) if isinstance(h, np.ndarray) else h
    qmin = -qmax if qmin is None else qmin
    keep = w != 0
    w = w.astype(np.float64).copy()
    w[:, dead] = 0.0
    q = np.zeros(w.shape, np.int8)
    for k in range(w.shape[1]):
        qk = np.where(keep[:, k], np.clip(np.round(w[:, k] / scales), qmin, qmax), 0)
        q[:, k] = qk
        err = (w[:, k] - qk * scales) / u[k, k]
        w[:, k + 1:] -= np.outer(err, u[k, k + 1:])
    return q


def input_hessians(g: Graph, node: Node, acts: dict[str, np.ndarray], count: int) -> tuple[list[np.ndarray], int]:
    """X^T X per group of the node's float input rows on the first `count` samples of acts (float_activations), up
    to GPTQ_ROWS rows per sample, and the number of rows."""
    from .quantize import float_input  # (quantize imports this module)

    op = REGISTRY[node.op]
    x = float_input(g, acts, node.inputs[0])[:count]
    # Inputs far from 1 in magnitude (|x| ~ 1e20 overflows X^T X in float32; ~1e-25 underflows it to 0 and reads as
    # dead inputs) are scaled by a power of two first. GPTQ is invariant to the scale of X^T X, and a power of two
    # scales every floating-point step exactly, so the rounding is the same bit for bit.
    peak = float(np.max(np.abs(x), initial=0.0))
    if peak > 0 and not 2.0**-16 <= peak <= 2.0**16:
        x = np.ldexp(x, -np.frexp(peak)[1]).astype(x.dtype)
    sums: list[np.ndarray] = []
    rows = 0
    for s in range(count):
        cols = [r[::-(-len(r) // GPTQ_ROWS)].astype(np.float32) for r in op.input_rows(node, g, x[s])]
        sums = [(c.T @ c).astype(np.float64) + (sums[i] if sums else 0) for i, c in enumerate(cols)]
        rows += len(cols[0])
    return sums, rows


def _round_layer(g: Graph, node: Node, factors: list[Factor], bounds: tuple[int, int]) -> None:
    """Re-round the node's integer weights (node.q["w"], same scales) with gptq_round, group by group."""
    wq = node.q["w"]
    w = REGISTRY[node.op].weight_matrix(node, g)
    groups = len(factors)
    w = w.reshape(groups, w.shape[0] // groups, -1)
    scales = node.q["w_scale"].reshape(groups, -1)
    lo, hi = bounds
    q = np.stack([gptq_round(w[i], scales[i], factors[i], hi, lo) for i in range(groups)])
    node.q["w"] = q.reshape(wq.shape)


def _factors(g: Graph, layers: list[Node], samples: list[dict[str, np.ndarray]], hs: dict,
             acts: dict[str, np.ndarray] | None) -> list[Factors]:
    """The gptq_factor of every layer's input Hessians and their number of input rows, from hs (a cache kept across
    quantizations: the float inputs do not depend on the ranges) or computed and added to it."""
    missing = [n for n in layers if _key(n) not in hs]
    if missing:
        count = min(len(samples), GPTQ_SAMPLES)
        acts = float_activations(g, samples[:count]) if acts is None else acts
        for node in missing:
            sums, rows = input_hessians(g, node, acts, count)
            factors = [gptq_factor(h) for h in sums] if all(np.isfinite(h).all() for h in sums) else None
            hs[_key(node)] = factors, rows
    return [hs[_key(n)] for n in layers]


def _key(node: Node) -> str:
    """The Hessian cache's key of a layer: its output tensor, unique in a graph (node names need not be)."""
    return node.outputs[0]


def refine_int4_weights(g: Graph, samples: list[dict[str, np.ndarray]],
                        hs: dict | None = None, acts: dict[str, np.ndarray] | None = None) -> None:
    """int4: re-round every Conv/Gemm's weights (same scales) with gptq_round on the layer's float inputs from the
    first GPTQ_SAMPLES calibration samples; biases and multipliers stay valid. hs caches the gptq_factor of X^T X
    per layer and group (filled for the layers it lacks); acts: float_activations(g, samples), when known."""
    layers = [n for n in g.nodes if is_weighted(n) and n.scheme == "int4"]
    for node, (factors, _) in zip(layers, _factors(g, layers, samples, {} if hs is None else hs, acts)):
        if factors is not None:
            _round_layer(g, node, factors, (-INT4_MAX, INT4_MAX))


def round_weights(g: Graph, samples: list[dict[str, np.ndarray]], hs: dict | None = None,
                  acts: dict[str, np.ndarray] | None = None) -> list[str]:
    """--weight-rounding gptq: re-round the int8 weights of every quantized Conv/Gemm (int8, int16, qformat, q15;
    same scales) with gptq_round on the layer's float inputs from the first GPTQ_SAMPLES calibration samples. hs:
    the Hessian cache (shared with refine_int4_weights); acts: float_activations(g, samples), when known. Layers
    with fewer input rows than MIN_ROWS x columns keep nearest rounding. Returns the names of the layers rounded."""
    layers = [n for n in g.nodes if is_weighted(n) and n.q is not None and n.scheme in WEIGHT_BOUNDS]
    done = []
    for node, (factors, rows) in zip(layers, _factors(g, layers, samples, {} if hs is None else hs, acts)):
        if factors is not None and rows >= MIN_ROWS * len(factors[0][0]):
            _round_layer(g, node, factors, WEIGHT_BOUNDS[node.scheme])
            done.append(node.name)
    return done

