"""Quantization error analysis: where a quantized model loses precision, tensor by tensor.

For every activation: its step (scale), format, the share of the calibration samples' min/max range that its
calibrated range keeps (the clipping method's choice for that tensor), the share of float values outside the
integer range (clipping), the measured quantization-noise variance of the tensor alone next to the uniform-noise
model step^2/12, and the SQNR against float both for the tensor alone (its float values quantized once) and
accumulated through the network (the int8 reference's value against the float reference's)."""

from __future__ import annotations

import math

import numpy as np

from .console import table
from .ir import Graph
from .ops.base import QRANGE
from .quantize import qformat_name
from .reference import dequantize, quantize_input, run_samples


def _sqnr(signal: np.ndarray, noise: np.ndarray) -> float:
    n = float(np.sum(noise.astype(np.float64) ** 2))
    return math.inf if n == 0 else 10 * math.log10(max(float(np.sum(signal.astype(np.float64) ** 2)), 1e-30) / n)


def quant_report(g: Graph, samples: list[dict[str, np.ndarray]]) -> list[dict]:
    """One row per activation tensor, worst accumulated SQNR first."""
    floats: dict[str, list[np.ndarray]] = {}
    ints: dict[str, list[np.ndarray]] = {}
    names = [*g.inputs, *(n.outputs[0] for n in g.nodes)]
    for fv, iv in zip(run_samples(g, samples, names=names), run_samples(g, samples, int8=True, names=names)):
        for name in iv:
            if g.const(name) is None:
                floats.setdefault(name, []).append(fv[name].ravel())
                ints.setdefault(name, []).append(iv[name].ravel())
    rows = []
    producers = {n.outputs[0]: n for n in g.nodes}
    calibrated = (g.info.get("calibration") or {}).get("ranges", {})
    for name in floats:
        t = g.tensors[name]
        if t.dtype == "float32":  # a float layer of a mixed graph
            continue
        f = np.concatenate(floats[name]).astype(np.float64)
        deq = dequantize(np.concatenate(ints[name]), t.scale, t.zero_point).astype(np.float64)
        alone = dequantize(quantize_input(f, t.scale, t.zero_point, t.dtype), t.scale, t.zero_point).astype(np.float64)
        qmin, qmax = QRANGE[t.dtype]
        lo, hi = (qmin - t.zero_point) * t.scale, (qmax - t.zero_point) * t.scale
        clipped = (f < lo - t.scale / 2) | (f > hi + t.scale / 2)
        inside = ~clipped
        node = producers.get(name)
        fmt = qformat_name(t.scale, t.zero_point, 16 if t.dtype == "int16" else 8) or f"{t.dtype} zp={t.zero_point}"
        rows.append({
            "tensor": name,
            "op": node.op if node else "input",
            "scale": t.scale,
            "format": f"{fmt} [{lo:.4g}, {hi:.4g}]",
            "clip_rate": float(clipped.mean()),
            "kept": calibrated.get(name, {}).get("kept"),  # share of the calibration min/max range quantized
            "noise_var": float(np.var((alone - f)[inside])) if inside.any() else 0.0,
            "noise_var_model": t.scale ** 2 / 12,
            "sqnr_alone_db": _sqnr(f, alone - f),
            "sqnr_accumulated_db": _sqnr(f, deq - f),
        })
    rows.sort(key=lambda r: r["sqnr_accumulated_db"])
    return rows


def format_report(rows: list[dict]) -> str:
    head = ("tensor", "op", "step", "format", "of min/max", "clip %", "noise var", "step^2/12", "SQNR alone",
            "SQNR accum.")
    body = [(r["tensor"], r["op"], f"{r['scale']:.4g}", r["format"],
             "-" if r["kept"] is None else f"{100 * r['kept']:.0f}%", f"{100 * r['clip_rate']:.3f}",
             f"{r['noise_var']:.3g}", f"{r['noise_var_model']:.3g}", f"{r['sqnr_alone_db']:.1f}",
             f"{r['sqnr_accumulated_db']:.1f}")
            for r in rows]
    return table(body, header=head, right=(2, 4, 5, 6, 7, 8, 9), indent=0)
