"""Benchmark: the kernels main has, on the MLPerf Tiny models in int8, per core, beside TFLM + CMSIS-NN.

    .venv/bin/python bench/kernels.py [--models ../shared/models] [--targets cortex-m4,cortex-m7,...] [--jobs 1]

For ad01, resnet8, dscnn_kws and mobilenet_vww96 on cortex-m4, cortex-m7, cortex-m55 and cortex-a53 it builds
the int8 model (calibrated on <model>.calib.npz), runs the first sample of <model>.inputs.npz on the target and
prints:
- instructions per inference (exact: QEMU -icount + SysTick on Cortex-M, edgec's QEMU plugin on Cortex-A) and
  per MAC, beside TFLM + CMSIS-NN's figures from ../shared/anchors.md (same QEMU boards) and the ratio
  edgec / TFLM (below 1: edgec needs fewer);
- flash: the model's weights and code, model and kernels (from the link map; the C library and semihosting
  left out, as in anchors.md); TFLM's is its runtime code + CMSIS-NN code + the model flatbuffer;
- RAM: the arena and other static data of the model and kernels + the stack measured in inference; TFLM's is
  its tensor arena + its stack in inference.
anchors.md gives memory for Cortex-M7 only and nothing for Cortex-A53: those cells show "-".
The last column says whether the sample's output is bit-exact with the numpy integer reference.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from table import print_table

MODELS = ["ad01", "resnet8", "dscnn_kws", "mobilenet_vww96"]
TARGETS = ["cortex-m4", "cortex-m7", "cortex-m55", "cortex-a53"]
# ../shared/anchors.md, TFLM + CMSIS-NN in QEMU 7.2 with -icount shift=0: instructions per inference.
TFLM_INSTRUCTIONS = {
    "cortex-m7": {"ad01": 583_560, "resnet8": 30_028_160, "dscnn_kws": 7_643_520, "mobilenet_vww96": 24_026_440},
    "cortex-m4": {"ad01": 583_280, "resnet8": 29_865_120, "dscnn_kws": 7_697_760, "mobilenet_vww96": 24_102_840},
    "cortex-m55": {"ad01": 150_312, "resnet8": 4_913_656, "dscnn_kws": 1_813_500, "mobilenet_vww96": 6_559_156},
}
# Memory on Cortex-M7: (tensor arena, TFLM runtime code, CMSIS-NN code, model flatbuffer, stack in inference).
TFLM_M7_MEMORY = {
    "ad01": (2_580, 23_896, 13_448, 276_976, 764),
    "resnet8": (54_996, 45_025, 42_136, 98_496, 1_236),
    "dscnn_kws": (22_820, 41_120, 51_640, 53_936, 1_236),
    "mobilenet_vww96": (100_708, 41_120, 51_640, 333_288, 1_236),
}


def measure(model: str, target: str, models: Path) -> dict:
    """Build model in int8 for target, run its first input sample; instructions, MACs, flash, RAM, bit-exactness."""
    from edgec.build import BuildOptions, build
    from edgec.data import load_samples
    from edgec.errors import EdgecError
    from edgec.runner import run_build
    from edgec.validate import bitexact_share, reference_outputs

    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="edgec-bench-") as tmp:
        opts = BuildOptions(models / f"{model}.onnx", target=target, quantize="int8",
                            calib=models / f"{model}.calib.npz", out=Path(tmp) / "build")
        try:
            out, meta, g = build(opts)
        except EdgecError as e:  # e.g. ad01's 284 KB of weights on a 256 KB Cortex-M0+ part
            return {"model": model, "target": target, "error": str(e).rpartition(": ")[2].split(".")[0],
                    "seconds": time.monotonic() - start}
        samples = load_samples(models / f"{model}.inputs.npz", g, "input")[:1]
        res = run_build(out, samples)
    elf = meta["elf"]
    return {"model": model, "target": target, "macs": meta["macs"], "instructions": res.instructions[0],
            "flash": elf["model_flash"], "ram": elf["model_ram"] + res.stack_bytes,
            "bitexact": bitexact_share(res, reference_outputs(g, samples)) == 1.0,
            "seconds": time.monotonic() - start}


def _ratio(ours: int, theirs: int | None) -> str:
    return "-" if theirs is None else f"{ours / theirs:.2f}"


def rows(results: list[dict]) -> list[tuple[str, ...]]:
    out = []
    for r in results:
        model, target = r["model"], r["target"]
        if "error" in r:
            out.append((model, target, r["error"], *["-"] * 11))
            continue
        tflm = TFLM_INSTRUCTIONS.get(target, {}).get(model)
        mem = TFLM_M7_MEMORY.get(model) if target == "cortex-m7" else None
        tflm_flash = sum(mem[1:4]) if mem else None
        tflm_ram = mem[0] + mem[4] if mem else None
        out.append((model, target, f"{r['instructions']:,}", f"{r['instructions'] / r['macs']:.2f}",
                    "-" if tflm is None else f"{tflm:,}", "-" if tflm is None else f"{tflm / r['macs']:.2f}",
                    _ratio(r["instructions"], tflm), f"{r['flash']:,}", "-" if tflm_flash is None else
                    f"{tflm_flash:,}", _ratio(r["flash"], tflm_flash), f"{r['ram']:,}",
                    "-" if tflm_ram is None else f"{tflm_ram:,}", _ratio(r["ram"], tflm_ram),
                    "yes" if r["bitexact"] else "NO"))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "models")
    p.add_argument("--targets", default=",".join(TARGETS), help="comma-separated (default: %(default)s)")
    p.add_argument("--only", help="comma-separated models (default: the four MLPerf Tiny models)")
    p.add_argument("--jobs", type=int, default=1, help="parallel builds and runs (default 1)")
    a = p.parse_args()
    if not (a.models / "ad01.onnx").is_file():
        sys.exit(f"{a.models}: no MLPerf Tiny models there (ad01.onnx); pass --models")
    targets, models = a.targets.split(","), (a.only.split(",") if a.only else MODELS)
    jobs = [(m, t) for m in models for t in targets]
    start = time.monotonic()
    with ProcessPoolExecutor(max_workers=a.jobs) as pool:
        results = list(pool.map(measure, *zip(*jobs), [a.models] * len(jobs)))
    head = ("model", "target", "instructions", "instr/MAC", "TFLM+CMSIS-NN", "TFLM instr/MAC", "ratio",
            "flash", "TFLM flash", "ratio", "RAM", "TFLM RAM", "ratio", "bit-exact")
    print("edgec int8 kernels vs TFLM + CMSIS-NN (../shared/anchors.md); ratio = edgec / TFLM, below 1 is better;")
    print("flash = weights + model and kernel code; RAM = arena + static data + measured stack; TFLM memory: "
          "Cortex-M7 figures only")
    print_table(head, rows(results), left={0, 1})
    geo = [r["instructions"] / TFLM_INSTRUCTIONS[r["target"]][r["model"]] for r in results
           if r["model"] in TFLM_INSTRUCTIONS.get(r["target"], {}) and "error" not in r]
    if geo:
        print(f"geometric mean of the instruction ratios: {float(np.exp(np.mean(np.log(geo)))):.2f} "
              f"({len(geo)} model/core pairs)")
    print(f"wall time {time.monotonic() - start:.0f} s (builds and QEMU runs: "
          f"{sum(r['seconds'] for r in results):.0f} s)")


if __name__ == "__main__":
    main()
