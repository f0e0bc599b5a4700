"""Benchmark: the MLPerf Tiny models in int8 on an emulated target, against TFLite Micro's measured figures.

    .venv/bin/python bench/mlperf.py [--target cortex-m7] [--models ../shared/models]

Prints instructions per inference (exact, QEMU -icount), flash, tensor RAM (every byte tensors and kernels occupy
during an inference, the model's input and output included, as TFLM's arena counts them), the arena and its lower
bound, and fidelity to the float model. The TFLM columns are the figures in ../shared/anchors.md: TFLM + CMSIS-NN
on the same core and board where anchors.md has them (Cortex-M4, M7, M55; M7 otherwise) with the ratio
edgec / TFLM (below 1: edgec needs fewer instructions), TFLM's reference kernels and its tensor arena on Cortex-M7
(QEMU mps2-an500)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

MODELS = ["ad01", "resnet8", "dscnn_kws", "mobilenet_vww96"]
TFLM_M7 = {  # model: (CMSIS-NN instructions, reference-kernel instructions, tensor arena bytes)
    "ad01": (583_560, 1_949_280, 2_580),
    "resnet8": (30_028_160, 108_662_200, 54_996),
    "dscnn_kws": (7_643_520, 43_613_080, 22_820),
    "mobilenet_vww96": (24_026_440, 101_222_680, 100_708),
}
TFLM_CMSIS = {  # TFLM + CMSIS-NN instructions per inference on the other cores of anchors.md
    "cortex-m4": {"ad01": 583_280, "resnet8": 29_865_120, "dscnn_kws": 7_697_760, "mobilenet_vww96": 24_102_840},
    "cortex-m55": {"ad01": 150_312, "resnet8": 4_913_656, "dscnn_kws": 1_813_500, "mobilenet_vww96": 6_559_156},
}


def validate(model: Path, target: str, models: Path) -> dict:
    name = model.stem
    cmd = [sys.executable, "-m", "edgec.cli", "validate", str(model), "--target", target, "--quantize", "int8",
           "--calib", str(models / f"{name}.calib.npz"), "--inputs", str(models / f"{name}.inputs.npz"), "--json"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{name}: {proc.stderr.strip()}")
    return json.loads(proc.stdout)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--target", default="cortex-m7")
    p.add_argument("--models", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "models")
    a = p.parse_args()
    head = ("model", "MACs", "instructions", "instr/MAC", "TFLM+CMSIS-NN", "edgec/TFLM", "TFLM ref", "model flash",
            "tensor RAM", "/TFLM", "arena", "lower bound", "TFLM arena", "SQNR dB", "top-1", "bit-exact")
    anchor_core = a.target if a.target in TFLM_CMSIS else "cortex-m7"
    rows = []
    for name in MODELS:
        r = validate(a.models / f"{name}.onnx", a.target, a.models)
        cmsis, ref, arena = TFLM_M7[name]
        cmsis = TFLM_CMSIS.get(a.target, {}).get(name, cmsis)
        rows.append((name, f"{r['macs']:,}", f"{r['instructions']:,}", f"{r['instructions'] / r['macs']:.2f}",
                     f"{cmsis:,}", f"{r['instructions'] / cmsis:.2f}", f"{ref:,}", f"{r['model_flash_bytes']:,}",
                     f"{r['tensor_ram_bytes']:,}", f"{r['tensor_ram_bytes'] / arena:.2f}", f"{r['arena_bytes']:,}",
                     f"{r['arena_lower_bound_bytes']:,}", f"{arena:,}", f"{r['sqnr_db']:.1f}",
                     f"{r['top1_agreement']:.2f}", f"{r['bitexact_vs_reference']:.2f}"))
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    print(f"int8 on {a.target} (shared/anchors.md: TFLM+CMSIS-NN on {anchor_core}; TFLM ref and TFLM arena on "
          "cortex-m7)")
    for row in (head, *rows):
        print("  ".join(str(x).rjust(w) for x, w in zip(row, widths)))


if __name__ == "__main__":
    main()
