"""Compare a build's outputs on its target with onnxruntime (float) and with the numpy integer reference."""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnxruntime as ort

from .ir import Graph
from .reference import QRANGE, quantize_feeds, represented_range, run_graph
from .runner import RunResult, run_build

if TYPE_CHECKING:
    from .build import BuildOptions

FLOAT_REL_TOLERANCE = 1e-3  # float builds: max abs error / output range
DUMP_SAMPLES = 8  # validate --per-layer: samples whose every layer output is compared on the target


def onnxruntime_outputs(model: str, samples: list[dict[str, np.ndarray]]) -> list[dict]:
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return [dict(zip(names, sess.run(None, s))) for s in samples]


def reference_outputs(g: Graph, samples: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
    """The numpy integer reference's raw outputs for each sample (quantized builds only)."""
    out = []
    for s in samples:
        values = run_graph(g, quantize_feeds(g, s), int8=True)
        out.append({n: values[n] for n in g.outputs})
    return out


def metrics(got: list[dict], want: list[dict], names: list[str]) -> dict:
    a = np.concatenate([np.concatenate([s[n].ravel() for n in names]) for s in got]).astype(np.float64)
    b = np.concatenate([np.concatenate([s[n].ravel() for n in names]) for s in want]).astype(np.float64)
    err = np.abs(a - b)
    noise = float(((a - b) ** 2).sum())
    signal = float((b**2).sum())
    first = names[0]
    top1 = [np.argmax(x[first].reshape(-1)) == np.argmax(y[first].reshape(-1)) for x, y in zip(got, want)]
    denom = float(np.linalg.norm(a) * np.linalg.norm(b))
    return {
        "max_abs_err": float(err.max()),
        "mean_abs_err": float(err.mean()),
        "cosine": float(a @ b / denom) if denom else 1.0,
        "sqnr_db": float(10 * np.log10(signal / noise)) if noise > 0 else float("inf"),
        "top1_agreement": float(np.mean(top1)),
        "output_range": float(b.max() - b.min()),
    }


def bitexact_share(result: RunResult, reference: list[dict]) -> float:
    total = same = 0
    for raw, ref in zip(result.raw, reference):
        for name, r in ref.items():
            total += r.size
            same += int(np.sum(raw[name] == r))
    return same / total if total else 1.0


def input_clipping(g: Graph, samples: list[dict[str, np.ndarray]]) -> dict[str, dict]:
    """For each integer model input: the share of the samples' values that its quantization clips (those that
    round beyond the type's bounds, as in quantize_input), the range it represents and the range of the samples."""
    out = {}
    for name in g.inputs:
        t = g.tensors[name]
        if t.dtype == "float32":
            continue
        x = np.stack([np.asarray(s[name], np.float64).reshape(t.shape) for s in samples])
        lo, hi = QRANGE[t.dtype]
        q = np.round(x / t.scale) + t.zero_point
        out[name] = {"share": float(np.mean((q < lo) | (q > hi))),
                     "represents": represented_range(t.scale, t.zero_point, t.dtype),
                     "seen": (float(x.min()), float(x.max()))}
    return out


@dataclass
class Validation:
    """What validate_model measured: the report (metrics, sizes, instructions, per-layer tables), whether it
    passes, and what the CLI shows besides."""

    report: dict
    ok: bool
    meta: dict  # the build's
    g: Graph
    samples: list[dict[str, np.ndarray]]
    clipping: dict[str, dict]  # input_clipping of a quantized build
    given_ranges: set[str]  # the inputs --input-range set
    layers: list | None = None  # per-tensor quantization error (analysis.quant_report), --per-layer
    prof: dict | None = None  # per-layer instructions (profile.profile), --per-layer
    div: dict | None = None  # per-layer divergence (profile.dump_divergence), --per-layer quantized


def validate_model(options: Callable[[Path | None], BuildOptions], out: Path | None, inputs: Path | None,
                   per_layer: bool) -> Validation:
    """Build with options(build directory) (out, or a temporary one), run the samples of inputs (or 8 random
    ones) on the target and compare with onnxruntime and, quantized, with the integer reference. per_layer adds
    instruction profiles and, quantized, per-layer error and divergence (builds of their own)."""
    from .build import build
    from .data import load_samples, random_samples

    with tempfile.TemporaryDirectory(prefix="edgec-validate-") as tmp:
        opts = options(out or Path(tmp) / "build")
        out, meta, g = build(opts)
        if inputs:
            samples = load_samples(inputs, g, "input")
        else:
            print("warning: no --inputs; validating on 8 random normal samples", file=sys.stderr)
            samples = random_samples(g, 8, seed=1)
        res = run_build(out, samples)
    want = onnxruntime_outputs(str(opts.model), samples)
    report = metrics(res.outputs, want, g.outputs)
    report.pop("output_range")
    clipping: dict[str, dict] = {}
    if g.quantized:
        report["bitexact_vs_reference"] = bitexact_share(res, reference_outputs(g, samples))
        clipping = input_clipping(g, samples)
        if clipping:
            sizes = {n: g.tensors[n].size for n in clipping}
            report["input_clipped_share"] = sum(c["share"] * sizes[n] for n, c in clipping.items()) / sum(
                sizes.values())
    elf = meta.get("elf") or {}
    report.update({
        "flash_bytes": elf.get("flash", meta["weight_bytes"]),
        "ram_bytes": (elf["ram_static"] + (res.stack_bytes or 0)) if elf else meta["arena_bytes"],
        "arena_bytes": meta["arena_bytes"], "arena_lower_bound_bytes": meta["arena_lower_bound_bytes"],
        "instructions": res.instructions[0] if res.instructions else None,
        "macs": meta["macs"], "params": meta["params"],
    })
    if elf:
        report["model_flash_bytes"] = elf.get("model_flash")
        report["stack_bytes"] = res.stack_bytes
    rng = metrics(res.outputs, want, g.outputs)["output_range"]
    ok = (report["bitexact_vs_reference"] == 1.0) if g.quantized else \
        report["max_abs_err"] <= FLOAT_REL_TOLERANCE * max(rng, 1e-12)
    report["samples"] = len(samples)
    report["target"] = meta["target"]
    report["quantize"] = meta["quantize"]
    layers = prof = div = None
    if per_layer:
        from .profile import dump_divergence, profile

        prof = profile(options(None), samples[:1])
        report["profile"] = prof
    if per_layer and g.quantized:
        from .analysis import quant_report

        layers = quant_report(g, samples)
        report["per_layer"] = layers
        div = dump_divergence(options(None), samples[:DUMP_SAMPLES])
        report["divergence"] = div
        ok = ok and div["first"] is None
    return Validation(report, ok, meta, g, samples, clipping, set(opts.quant.input_ranges), layers, prof, div)
