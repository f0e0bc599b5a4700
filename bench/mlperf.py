"""Benchmark: the MLPerf Tiny models in int8 on an emulated target, against TFLite Micro's measured figures.

    .venv/bin/python bench/mlperf.py [--target cortex-m7] [--models ../shared/models] [--tflite]

Prints instructions per inference (exact, QEMU -icount), flash, tensor RAM (every byte tensors and kernels occupy
during an inference, the model's input and output included, as TFLM's arena counts them), the arena and its lower
bound, and fidelity to the float model. --tflite: the official int8 .tflite files instead, built with their own
quantization and TFLM's arithmetic, against TFLM + CMSIS-NN's figures on those very files: instructions, tensor RAM
and the model's flash (weights and code of the layers), with the share of output elements equal to TFLM's on the
first samples.

The TFLM columns are the figures in ../shared/anchors.md: TFLM + CMSIS-NN on the same core and board where
anchors.md has them (Cortex-M4, M7, M55; M7 otherwise) with the ratio edgec / TFLM (below 1: edgec needs fewer
instructions), TFLM's reference kernels, its tensor arena and its flash on Cortex-M7 (QEMU mps2-an500)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from table import print_table

MODELS = ["ad01", "resnet8", "dscnn_kws", "mobilenet_vww96"]
TFLM_M7 = {  # model: (CMSIS-NN instructions, reference-kernel instructions, tensor arena bytes)
    "ad01": (583_560, 1_949_280, 2_580),
    "resnet8": (30_028_160, 108_662_200, 54_996),
    "dscnn_kws": (7_643_520, 43_613_080, 22_820),
    "mobilenet_vww96": (24_026_440, 101_222_680, 100_708),
}
TFLM_FLASH = {  # Cortex-M7 bytes: TFLM runtime code, CMSIS-NN code, model flatbuffer (C library left out)
    "ad01": (23_896, 13_448, 276_976), "resnet8": (45_025, 42_136, 98_496),
    "dscnn_kws": (41_120, 51_640, 53_936), "mobilenet_vww96": (41_120, 51_640, 333_288),
}
TFLM_CMSIS = {  # TFLM + CMSIS-NN instructions per inference on the other cores of anchors.md
    "cortex-m4": {"ad01": 583_280, "resnet8": 29_865_120, "dscnn_kws": 7_697_760, "mobilenet_vww96": 24_102_840},
    "cortex-m55": {"ad01": 150_312, "resnet8": 4_913_656, "dscnn_kws": 1_813_500, "mobilenet_vww96": 6_559_156},
}


TFLITE = {  # the official .tflite file of each anchored model (anchors.md measured TFLM on these files)
    "ad01": "ad01_int8", "resnet8": "pretrainedResnet_quant", "dscnn_kws": "kws_ref_model",
    "mobilenet_vww96": "vww_96_int8",
}
TFLITE_SAMPLES = 3  # instruction counts do not depend on the input values; bit-exactness is checked on these


def validate(model: Path, target: str, models: Path) -> dict:
    name = model.stem
    cmd = [sys.executable, "-m", "edgec.cli", "validate", str(model), "--target", target, "--quantize", "int8",
           "--calib", str(models / f"{name}.calib.npz"), "--inputs", str(models / f"{name}.inputs.npz"), "--json"]
    return _run(name, cmd)


def _run(name: str, cmd: list[str]) -> dict:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{name}: {proc.stderr.strip()}")
    return json.loads(proc.stdout)


def tflite_rows(target: str, models: Path) -> None:
    """The official .tflite files next to TFLM + CMSIS-NN on the same files."""
    head = ("model", "file", "instructions", "TFLM+CMSIS-NN", "edgec/TFLM", "tensor RAM", "TFLM arena",
            "model flash", "TFLM flash", "bit-exact vs TFLM")
    rows = []
    for name, stem in TFLITE.items():
        path = models / f"{stem}.tflite"
        with tempfile.TemporaryDirectory() as tmp:
            inputs = Path(tmp) / "inputs.npz"
            np.savez(inputs, **{k: v[:TFLITE_SAMPLES] for k, v in np.load(models / f"{stem}.inputs.npz").items()})
            r = _run(stem, [sys.executable, "-m", "edgec.cli", "validate", str(path), "--target", target,
                            "--inputs", str(inputs), "--json"])
        cmsis = TFLM_CMSIS.get(target, {}).get(name, TFLM_M7[name][0])
        ram = r["tensor_ram_bytes"]  # the arena with the model's input and output, as TFLM's arena counts them
        rows.append((name, path.name, f"{r['instructions']:,}", f"{cmsis:,}", f"{r['instructions'] / cmsis:.2f}",
                     f"{ram:,}", f"{TFLM_M7[name][2]:,}", f"{r['model_flash_bytes']:,}", f"{sum(TFLM_FLASH[name]):,}",
                     f"{r['bitexact_vs_tflm']:.2f}"))
    print(f"official int8 .tflite on {target} (TFLM's arithmetic; shared/anchors.md: TFLM+CMSIS-NN on "
          f"{target if target in TFLM_CMSIS else 'cortex-m7'}; TFLM arena and flash (code + flatbuffer) on cortex-m7)")
    print_table(head, rows)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--target", default="cortex-m7")
    p.add_argument("--models", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "models")
    p.add_argument("--tflite", action="store_true", help="the official .tflite files against TFLM on them")
    a = p.parse_args()
    if a.tflite:
        tflite_rows(a.target, a.models)
        return
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
    print(f"int8 on {a.target} (shared/anchors.md: TFLM+CMSIS-NN on {anchor_core}; TFLM ref and TFLM arena on "
          "cortex-m7)")
    print_table(head, rows)


if __name__ == "__main__":
    main()
