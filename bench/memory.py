"""Benchmark: tensor RAM of the MLPerf Tiny models in int8 against TFLite Micro's tensor arena.

    .venv/bin/python bench/memory.py [--target cortex-m7] [--models ../shared/models] [--no-run] [--budget]

For each model, built with the default options: tensor RAM (every byte tensors and kernels occupy during one
inference, the model's input and output included, as TFLM's arena counts them), its ratio to TFLM's arena on
Cortex-M7 (../shared/anchors.md), the lower bound of the schedule (largest sum of buffers alive together), how
many layers write over their input, and, unless --no-run, instructions per inference (QEMU) and bit-exactness.

--budget: the schedules under --memory-budget instead: the default build, the build at 0.6x TFLM's arena, and the
build at the smallest budget edgec meets (the least tensor RAM its error for a 1-byte budget names); for each its
tensor RAM, its schedule's lower bound, its extra MACs and (unless --no-run) instructions and bit-exactness."""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from mlperf import MODELS, TFLM_M7


def measure(model: Path, target: str, models: Path, run: bool, budget: int | None = None) -> dict:
    name = model.stem
    with tempfile.TemporaryDirectory(prefix="edgec-bench-memory-") as tmp:
        out = Path(tmp) / name
        cmd = [sys.executable, "-m", "edgec.cli", "validate" if run else "build", str(model), "--target", target,
               "--quantize", "int8", "--calib", str(models / f"{name}.calib.npz"), "--out", str(out)]
        if run:
            cmd += ["--inputs", str(models / f"{name}.inputs.npz"), "--json"]
        if budget is not None:
            cmd += ["--memory-budget", str(budget)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode not in (0, 1):
            raise SystemExit(f"{name}: {proc.stderr.strip()}")
        meta = json.loads((out / "edgec.json").read_text())
    report = json.loads(proc.stdout) if run else {}
    return {"tensor_ram": meta["tensor_ram_bytes"], "bound": meta["arena_lower_bound_bytes"],
            "inplace": sum("inplace" in layer for layer in meta["layers"]), "schedule": meta["schedule"]["kind"],
            "extra_macs": meta["schedule"]["extra_macs"], "macs": meta["macs"],
            "instructions": report.get("instructions"), "bitexact": report.get("bitexact_vs_reference")}


def least_budget(model: Path, target: str, models: Path) -> int:
    """The least tensor RAM a schedule reaches: from the error for a 1-byte budget."""
    cmd = [sys.executable, "-m", "edgec.cli", "build", str(model), "--target", target, "--quantize", "int8",
           "--calib", str(models / f"{model.stem}.calib.npz"), "--memory-budget", "1"]
    with tempfile.TemporaryDirectory(prefix="edgec-bench-memory-") as tmp:
        proc = subprocess.run([*cmd, "--out", str(Path(tmp) / "b")], capture_output=True, text=True)
    found = re.search(r"needs (\d+) bytes", proc.stderr)
    if proc.returncode != 2 or not found:
        raise SystemExit(f"{model.stem}: {proc.stderr.strip()}")
    return int(found.group(1))


def _print(title: str, head: tuple, rows: list[tuple]) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    print(title)
    for row in (head, *rows):
        print("  ".join(str(x).rjust(w) for x, w in zip(row, widths)))


def _n(x: int | float | None, fmt: str = ",") -> str:
    return "-" if x is None else format(x, fmt)


def budget_table(a: argparse.Namespace) -> None:
    head = ("model", "build", "budget", "tensor RAM", "/TFLM", "lower bound", "extra MACs", "instructions", "/default",
            "bit-exact", "schedule")
    rows = []
    for name in MODELS:
        model, arena = a.models / f"{name}.onnx", TFLM_M7[name][2]
        default = measure(model, a.target, a.models, not a.no_run)
        for label, budget in (("default", None), ("0.6x TFLM", int(0.6 * arena)),
                              ("smallest", least_budget(model, a.target, a.models))):
            r = default if budget is None else measure(model, a.target, a.models, not a.no_run, budget)
            ratio = None if r["instructions"] is None else r["instructions"] / default["instructions"]
            rows.append((name, label, _n(budget), f"{r['tensor_ram']:,}", f"{r['tensor_ram'] / arena:.2f}",
                         f"{r['bound']:,}", f"{r['extra_macs']:,}", _n(r["instructions"]), _n(ratio, ".3f"),
                         _n(r["bitexact"], ".2f"), r["schedule"]))
        rows.append((name, "TFLM arena", "", f"{arena:,}", "1.00", "", "", "", "", "", ""))
    _print(f"int8 on {a.target} under --memory-budget (TFLM arena: cortex-m7, shared/anchors.md)", head, rows)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--target", default="cortex-m7")
    p.add_argument("--models", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "models")
    p.add_argument("--no-run", action="store_true", help="build only: no instruction counts")
    p.add_argument("--budget", action="store_true", help="the schedules under --memory-budget (see above)")
    a = p.parse_args()
    if a.budget:
        budget_table(a)
        return
    head = ("model", "TFLM arena", "tensor RAM", "/TFLM", "lower bound", "layers in place", "instructions",
            "bit-exact")
    rows = []
    for name in MODELS:
        r = measure(a.models / f"{name}.onnx", a.target, a.models, not a.no_run)
        arena = TFLM_M7[name][2]
        rows.append((name, f"{arena:,}", f"{r['tensor_ram']:,}", f"{r['tensor_ram'] / arena:.2f}", f"{r['bound']:,}",
                     str(r["inplace"]), _n(r["instructions"]), _n(r["bitexact"], ".2f")))
    _print(f"int8 on {a.target}, default options (TFLM arena: cortex-m7, shared/anchors.md)", head, rows)


if __name__ == "__main__":
    main()
