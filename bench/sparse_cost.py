"""Measure the constants of the dense/sparse cost model in toolchain/sparse.py on an emulated target.

    .venv/bin/python bench/sparse_cost.py [--target cortex-m7]

Builds one-layer models (a Gemm with a fused Relu, batch 1, random weights with a given share of zeros) with every
kernel the cost model compares, runs them in QEMU (exact instruction counts) and fits, by least squares,
instructions = per_mac * N * K + per_row * N (dense kernels) and
instructions = per_block * B + per_row * N + per_segment * N * S + per_column * K + per_call (row-sparse),
N outputs, K inputs, S = ceil(K / 256) segments, B blocks of 4 entries. Prints the measurements and the fitted
constants."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgec import build as build_mod
from edgec import sparse
from edgec.build import BuildOptions, build
from edgec.ops.conv import quantize_weights
from edgec.runner import run_build
from edgec.target import load_target

SHAPES = [(128, 128), (128, 640), (640, 128), (32, 300), (200, 64), (16, 520)]
DENSITIES = [0.05, 0.1, 0.3, 0.5]


def gemm_model(w: np.ndarray, bias: np.ndarray) -> onnx.ModelProto:
    n, k = w.shape
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["input", "W", "B"], ["g"], transB=1), helper.make_node("Relu", ["g"], ["output"])],
        "fc", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, k])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, n])],
        [numpy_helper.from_array(w.astype(np.float32), "W"), numpy_helper.from_array(bias.astype(np.float32), "B")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def sparse_weights(rng: np.random.Generator, n: int, k: int, density: float) -> np.ndarray:
    w = rng.standard_normal((n, k))
    return w * (rng.random((n, k)) < density)


def instructions(model: onnx.ModelProto, target: str, quantize: str, mode: str, dsp: bool = True) -> tuple[int, str]:
    """Instructions of one inference and the kernel used, with sparse.MODE = mode; dsp=False drops the target's
    'dsp' feature (the portable int8 kernel)."""
    sparse.MODE = mode
    t = load_target(target)
    if not dsp:
        t = dataclasses.replace(t, features=tuple(f for f in t.features if f != "dsp"))
    k = model.graph.input[0].type.tensor_type.shape.dim[1].dim_value
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fc.onnx"
        onnx.save(model, path)
        calib = Path(tmp) / "calib.npz"
        np.savez(calib, input=rng.standard_normal((8, 1, k)).astype(np.float32))
        load = build_mod.load_target
        build_mod.load_target = lambda name: t
        try:
            out, meta, _ = build(BuildOptions(path, target=target, quantize=quantize, calib=calib,
                                              out=Path(tmp) / "b"))
        finally:
            build_mod.load_target = load
        res = run_build(out, [{"input": rng.standard_normal((1, k)).astype(np.float32)}])
    sparse.MODE = "auto"
    return res.instructions[0], meta["layers"][0]["kernels"][0]


def fit(rows: list[tuple[list[float], int]], names: list[str]) -> dict[str, float]:
    a = np.array([r[0] for r in rows], np.float64)
    b = np.array([r[1] for r in rows], np.float64)
    coef, *_ = np.linalg.lstsq(a, b, rcond=None)
    worst = float(np.max(np.abs(a @ coef - b) / b))
    print(f"  fit: {', '.join(f'{n} = {c:.3f}' for n, c in zip(names, coef))}; worst relative error {worst:.3f}")
    return dict(zip(names, coef))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--target", default="cortex-m7")
    a = p.parse_args()
    rng = np.random.default_rng(0)
    cases = [(n, k, d, sparse_weights(rng, n, k, d), rng.standard_normal(n) * 0.1)
             for n, k in SHAPES for d in DENSITIES]
    for quantize in ("int8", "none"):
        variants = [("dense", True)] + ([("dense", False)] if quantize == "int8" else [])
        for mode, dsp in variants:
            rows = []
            for n, k, _, w, b in cases[::len(DENSITIES)]:
                count, kernel = instructions(gemm_model(w, b), a.target, quantize, mode, dsp)
                print(f"{kernel} {n}x{k}: {count}")
                rows.append(([n * k, n], count))
            fit(rows, ["per_mac", "per_row"])
        rows = []
        for n, k, d, w, b in cases:
            wq = w.astype(np.float32) if quantize == "none" else quantize_weights(w)[0]
            blocks = int(sparse.encode_rows(wq).counts.sum(dtype=np.int64))
            count, kernel = instructions(gemm_model(w, b), a.target, quantize, "sparse")
            print(f"{kernel} {n}x{k} density {d}: {np.count_nonzero(wq)} nonzeros, {blocks} blocks: {count}")
            rows.append(([blocks, n, n * sparse.segments(k), k, 1], count))
        fit(rows, ["per_block", "per_row", "per_segment", "per_column", "per_call"])
    sys.stdout.flush()


if __name__ == "__main__":
    main()
