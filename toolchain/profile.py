"""Per-layer instruction profiles and per-layer divergence from the integer reference, measured on the target.

Both come from instrumented builds that differ from the normal build only by calls between layers (see
codegen/emit.py): a profiling build counts each layer's instructions exactly (Cortex-M: SysTick locked to
instruction edges under QEMU -icount shift=0; Cortex-A: edgec's QEMU plugin at a marker function), and a
tensor dump build hands every layer's output to the harness, which writes it out."""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import numpy as np

from edgec.codegen.emit import element_type

from .build import BuildOptions, build
from .console import table
from .errors import EdgecError
from .ir import Graph
from .reference import quantize_feeds, run_graph
from .runner import run_build
from .target import load_target

RETURN_ROW = "(return from run)"  # the run function after its last kernel call


def profile(opts: BuildOptions, samples: list[dict[str, np.ndarray]]) -> dict:
    """Build opts for profiling, run the samples on the target and return the per-layer table of sample 0:
    {"target", "quantize", "measured", "rows": [...], "total": {...}, "totals": [per sample], "per_sample":
    [per sample, per layer instructions]}. A layer's instructions are its kernels' and the run function's own
    before each of its calls (setting up the arguments; the first layer's include the function's entry); the
    return row is the rest of the run function. On the host nothing counts instructions: "measured" is False
    and instructions are None."""
    with tempfile.TemporaryDirectory(prefix="edgec-profile-") as tmp:
        out = Path(opts.out) if opts.out else Path(tmp) / "build"
        out, meta, _ = build(dataclasses.replace(opts, instrument="profile", out=out))
        measured = load_target(meta["target"]).kind != "host"
        res = run_build(out, samples) if measured else None
    per_sample, returns = [], []
    for part in res.profile if res else []:
        calls = iter(part["calls"])
        if len(part["calls"]) != sum(len(layer["kernels"]) for layer in meta["layers"]):
            raise EdgecError(f"profiling: {len(part['calls'])} kernel calls ran, the model has "
                             f"{sum(len(layer['kernels']) for layer in meta['layers'])}")
        per_sample.append([sum(sum(next(calls)) for _ in layer["kernels"]) for layer in meta["layers"]])
        returns.append(part["return"])
    rows = []
    for k, layer in enumerate(meta["layers"]):
        rows.append({"node": layer["node"], "op": layer["op"], "kernel": ", ".join(layer["kernels"]) or "-",
                     "macs": layer["macs"], "instructions": per_sample[0][k] if res else None,
                     "scratch_bytes": layer["scratch_bytes"], "weight_bytes": layer["weight_bytes"]})
    if res:
        rows.append({"node": RETURN_ROW, "op": "-", "kernel": "-", "macs": 0, "instructions": returns[0],
                     "scratch_bytes": 0, "weight_bytes": 0})
    totals = [sum(layers) + r for layers, r in zip(per_sample, returns)]
    if res and totals != res.instructions:
        raise EdgecError(f"profiling: the parts add up to {totals}, the whole inference to {res.instructions}")
    for r in rows:
        r["instructions_per_mac"] = r["instructions"] / r["macs"] if r["macs"] and r["instructions"] else None
    total_instructions = totals[0] if res else None
    total = {"node": "total", "op": "-", "kernel": "-", "macs": meta["macs"], "instructions": total_instructions,
             "instructions_per_mac": total_instructions / meta["macs"] if total_instructions and meta["macs"]
             else None, "scratch_bytes": max((r["scratch_bytes"] for r in rows), default=0),
             "weight_bytes": meta["weight_bytes"]}
    return {"target": meta["target"], "quantize": meta["quantize"], "measured": measured, "rows": rows,
            "total": total, "per_sample": per_sample, "totals": totals}


def format_profile(p: dict) -> str:
    head = ("layer", "op", "kernel", "MACs", "instructions", "instr/MAC", "scratch B", "weight B")

    def cells(r: dict) -> tuple[str, ...]:
        n, per = r["instructions"], r["instructions_per_mac"]
        return (r["node"], r["op"], r["kernel"], f"{r['macs']:,}", "-" if n is None else f"{n:,}",
                "-" if per is None else f"{per:.2f}", f"{r['scratch_bytes']:,}", f"{r['weight_bytes']:,}")

    lines = [table([*(cells(r) for r in p["rows"]), cells(p["total"])], header=head, right=range(3, len(head)),
                   rule_before_last=True)]
    if not p["measured"]:
        lines.append("  instructions: not measured on the host (no exact counter); profile an emulated target "
                     "such as cortex-m7 or cortex-a53")
    return "\n".join(lines)


def reference_tensors(g: Graph, sample: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Every node's output from the numpy integer reference, flat, in the C buffer's storage order."""
    values = run_graph(g, quantize_feeds(g, sample), int8=True)
    return [g.tensors[n.outputs[0]].to_storage(values[n.outputs[0]]) for n in g.nodes]


def divergence(g: Graph, dumps: list[list[tuple[int, bytes]]], samples: list[dict[str, np.ndarray]]) -> dict:
    """Compare every layer's output dumped on the target with the integer reference (quantized builds; a layer
    left in float is not compared: "values" stays 0).

    Returns {"layers": [{"node", "op", "values", "differing", "max_abs_diff_lsb"}] (summed over samples),
    "first": the first layer in execution order with a differing value, or None, "samples"}."""
    layers = [{"node": n.name, "op": n.op, "values": 0, "differing": 0, "max_abs_diff_lsb": 0} for n in g.nodes]
    types = [element_type(g, n.outputs[0])[2] for n in g.nodes]
    for records, sample in zip(dumps, samples):
        if [k for k, _ in records] != list(range(len(g.nodes))):
            raise EdgecError(f"the dump holds layers {[k for k, _ in records]}, expected 0..{len(g.nodes) - 1}")
        for (k, data), want in zip(records, reference_tensors(g, sample)):
            if types[k] == np.float32:
                continue
            got = np.frombuffer(data, types[k]).astype(np.int64)
            diff = np.abs(got - want.astype(np.int64))
            layers[k]["values"] += int(diff.size)
            layers[k]["differing"] += int(np.count_nonzero(diff))
            layers[k]["max_abs_diff_lsb"] = max(layers[k]["max_abs_diff_lsb"], int(diff.max(initial=0)))
    first = next((x for x in layers if x["differing"]), None)
    return {"layers": layers, "first": first, "samples": len(dumps)}


def dump_divergence(opts: BuildOptions, samples: list[dict[str, np.ndarray]]) -> dict:
    """Build opts as a tensor dump build, run the samples on its target and compare with the integer reference."""
    with tempfile.TemporaryDirectory(prefix="edgec-dump-") as tmp:
        out, _, g = build(dataclasses.replace(opts, instrument="dump", out=Path(tmp) / "build"))
        res = run_build(out, samples)
    return divergence(g, res.tensors, samples)


def format_divergence(d: dict, target: str) -> str:
    first = d["first"]
    if first is None:
        head = (f"every layer's output on {target} equals the integer reference ({len(d['layers'])} layers, "
                f"{d['samples']} samples)")
    else:
        head = (f"first layer that differs from the integer reference on {target}: {first['node']} ({first['op']}): "
                f"{first['differing']:,} of {first['values']:,} values differ, max |diff| "
                f"{first['max_abs_diff_lsb']} LSB ({d['samples']} samples)")
    rows = [(x["node"], f"{x['differing']:,}", f"of {x['values']:,} differ,", f"max {x['max_abs_diff_lsb']} LSB")
            for x in d["layers"] if x["differing"]]
    return "\n".join(["  " + head] + ([table(rows, right=(1, 2), indent=6)] if rows else []))
