"""Benchmark: wall time of int8 builds as models grow (calibration, the `auto` calibration choice, bias
correction and the numpy integer reference), and of a rebuild that finds its calibration statistics cached.

    .venv/bin/python bench/buildtime.py [--only cnn32,cnn64,cnn128,resnet8] [--models ../shared/models]

Models: plain CNNs written here with onnx.helper (3x3 convolutions with ReLU at 32x32, the first from 3 input
channels, then global average pooling and a 10-way Gemm; random He-scaled weights, fixed seed) and 16 random
normal calibration samples each: cnn32 (4 layers of 32 channels, 29 MMAC), cnn64 (8 of 64, 0.27 GMAC), cnn128
(16 of 128, 2.27 GMAC), built int8 for the host; and resnet8 from ../shared/models built int8 for cortex-m7 (C
compile and link included). Each build is `edgec build` in a fresh process (import time included), first with
an empty calibration cache (XDG_CACHE_HOME set to a fresh folder), then again with the cache it left. Wall time
and CPU time (the build process and the compilers it runs) are shown: on a shared machine the CPU time varies
less."""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

CNNS = {"cnn32": (4, 32), "cnn64": (8, 64), "cnn128": (16, 128)}  # name: (convolutions, channels)
SIZE = 32
SAMPLES = 16


def plain_cnn(layers: int, channels: int, seed: int = 0) -> onnx.ModelProto:
    """layers 3x3 convolutions (pads 1, ReLU) at SIZE x SIZE, channels wide, then GlobalAveragePool and Gemm."""
    rng = np.random.default_rng(seed)
    nodes, inits = [], []
    x, c_in = "input", 3
    for i in range(layers):
        w = rng.normal(0, np.sqrt(2.0 / (9 * c_in)), (channels, c_in, 3, 3)).astype(np.float32)
        b = rng.normal(0, 0.05, channels).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(b, f"b{i}")]
        nodes += [helper.make_node("Conv", [x, f"w{i}", f"b{i}"], [f"conv{i}"], name=f"conv{i}", pads=[1, 1, 1, 1]),
                  helper.make_node("Relu", [f"conv{i}"], [f"relu{i}"], name=f"relu{i}")]
        x, c_in = f"relu{i}", channels
    fc = rng.normal(0, np.sqrt(1.0 / channels), (10, channels)).astype(np.float32)
    inits += [numpy_helper.from_array(fc, "fc_w"), numpy_helper.from_array(np.zeros(10, np.float32), "fc_b")]
    nodes += [helper.make_node("GlobalAveragePool", [x], ["gap"], name="gap"),
              helper.make_node("Flatten", ["gap"], ["flat"], name="flat"),
              helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"], name="fc", transB=1)]
    graph = helper.make_graph(nodes, f"cnn{channels}x{layers}",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, SIZE, SIZE])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 10])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def macs(layers: int, channels: int) -> int:
    return SIZE * SIZE * 9 * channels * (3 + (layers - 1) * channels) + 10 * channels


def timed_build(model: Path, calib: Path, target: str, out: Path, cache: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the build and its compilers) of one `edgec build` process."""
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    cmd = [sys.executable, "-m", "edgec.cli", "--quiet", "build", str(model), "--target", target, "--quantize",
           "int8", "--calib", str(calib), "--out", str(out), "--force"]
    start, cpu = time.perf_counter(), _children_cpu()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{model.name}: {proc.stderr.strip()}")
    return elapsed, _children_cpu() - cpu


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--models", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "models")
    p.add_argument("--only", default=",".join([*CNNS, "resnet8"]), help="comma-separated: cnn32,cnn64,cnn128,resnet8")
    a = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="edgec-bench-buildtime-") as tmp:
        tmp = Path(tmp)
        for name in a.only.split(","):
            if name in CNNS:
                layers, channels = CNNS[name]
                model, calib, target = tmp / f"{name}.onnx", tmp / f"{name}.calib.npz", "host"
                onnx.save(plain_cnn(layers, channels), model)
                rng = np.random.default_rng(1)
                np.savez(calib, input=rng.normal(0, 1, (SAMPLES, 3, SIZE, SIZE)).astype(np.float32))
                work = macs(layers, channels)
            else:
                model, calib, target = a.models / f"{name}.onnx", a.models / f"{name}.calib.npz", "cortex-m7"
                work = None
            cache = tmp / f"cache-{name}"
            cold = timed_build(model, calib, target, tmp / f"{name}-cold", cache)
            warm = timed_build(model, calib, target, tmp / f"{name}-warm", cache)
            mmac = "-" if work is None else f"{work / 1e6:,.0f}"
            rows.append((name, target, mmac, *(f"{x:.1f}" for x in (*cold, *warm))))
            print(*rows[-1], flush=True, file=sys.stderr)
    head = ("model", "target", "MMAC", "build s", "CPU s", "rebuild s (cached)", "CPU s")
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    print(f"int8 builds, --calibration auto, {SAMPLES} calibration samples for the CNNs")
    for row in (head, *rows):
        print("  ".join(str(x).rjust(w) for x, w in zip(row, widths)))


if __name__ == "__main__":
    main()
