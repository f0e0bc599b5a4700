"""Benchmark: tensor RAM of the MLPerf Tiny models in int8 against TFLite Micro's tensor arena.

    .venv/bin/python bench/memory.py [--target cortex-m7] [--models ../shared/models] [--no-run]

For each model, built with the default options: tensor RAM (every byte tensors and kernels occupy during one
inference, the model's input and output included, as TFLM's arena counts them), its ratio to TFLM's arena on
Cortex-M7 (../shared/anchors.md), the lower bound of the schedule (largest sum of buffers alive together), how
many layers write over their input, and, unless --no-run, instructions per inference (QEMU) and bit-exactness."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from mlperf import MODELS, TFLM_M7


def measure(model: Path, target: str, models: Path, run: bool) -> dict:
    name = model.stem
    with tempfile.TemporaryDirectory(prefix="edgec-bench-memory-") as tmp:
        out = Path(tmp) / name
        cmd = [sys.executable, "-m", "edgec.cli", "validate" if run else "build", str(model), "--target", target,
               "--quantize", "int8", "--calib", str(models / f"{name}.calib.npz"), "--out", str(out)]
        if run:
            cmd += ["--inputs", str(models / f"{name}.inputs.npz"), "--json"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode not in (0, 1):
            raise SystemExit(f"{name}: {proc.stderr.strip()}")
        meta = json.loads((out / "edgec.json").read_text())
    report = json.loads(proc.stdout) if run else {}
    return {"tensor_ram": meta["tensor_ram_bytes"], "bound": meta["arena_lower_bound_bytes"],
            "inplace": sum("inplace" in layer for layer in meta["layers"]),
            "instructions": report.get("instructions"), "bitexact": report.get("bitexact_vs_reference")}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--target", default="cortex-m7")
    p.add_argument("--models", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "models")
    p.add_argument("--no-run", action="store_true", help="build only: no instruction counts")
    a = p.parse_args()
    head = ("model", "TFLM arena", "tensor RAM", "/TFLM", "lower bound", "layers in place", "instructions",
            "bit-exact")
    rows = []
    for name in MODELS:
        r = measure(a.models / f"{name}.onnx", a.target, a.models, not a.no_run)
        arena = TFLM_M7[name][2]
        rows.append((name, f"{arena:,}", f"{r['tensor_ram']:,}", f"{r['tensor_ram'] / arena:.2f}", f"{r['bound']:,}",
                     str(r["inplace"]), "-" if r["instructions"] is None else f"{r['instructions']:,}",
                     "-" if r["bitexact"] is None else f"{r['bitexact']:.2f}"))
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    print(f"int8 on {a.target}, default options (TFLM arena: cortex-m7, shared/anchors.md)")
    for row in (head, *rows):
        print("  ".join(str(x).rjust(w) for x, w in zip(row, widths)))


if __name__ == "__main__":
    main()
