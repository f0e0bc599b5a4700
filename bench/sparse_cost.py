"""Measure the constants of the dense/sparse cost model in toolchain/sparse.py on an emulated target.

    .venv/bin/python bench/sparse_cost.py [--target cortex-m7] [--only fc|gather|block|conv]

Builds one-layer models (a Gemm or a Conv with a fused Relu, batch 1, random weights with a given share of zeros,
or an N:4 pattern) with every kernel the cost model compares, runs them in QEMU (exact instruction counts) and fits
each kernel's terms by least squares. Fully connected (N outputs, K inputs, S = ceil(K / 256) segments, B blocks of 4
entries):
  dense:      per_mac * N * K + per_row * N
  row-sparse: per_block * B + per_row * N + per_segment * N * S + per_column * K + per_call
  N:4:        per_block * B + per_row * N + per_column * K + per_call
  row-group:  per_step * steps + per_group * ceil(N / 4) + per_call (int8; toolchain/sparse.py GATHER_S8)
  block:      per_tile * tiles + per_group * ceil(N / 4) + per_column * K + per_call (int8, 4x4 tiles; BLOCK_S8)
Convolution (P output pixels, K = k_h k_w in_c): the same terms per pixel, dense with per_column * K and per_call
added; the layout copies around the one-layer model (NCHW to NHWC and back) are measured with one-Transpose models
and subtracted. Prints the measurements, the fits, their worst relative error and instructions per nonzero weight."""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgec import build as build_mod
from edgec import sparse
from edgec.build import BuildOptions, build
from edgec.ops.output_stage import quantize_weights
from edgec.runner import run_build
from edgec.target import load_target

FC_SHAPES = [(128, 128), (128, 640), (640, 128), (32, 300), (200, 64), (16, 520)]
DENSITIES = [0.05, 0.1, 0.3, 0.5]
# (in_c, out_c, h, w, k, stride, pad)
CONV_SHAPES = [(16, 16, 16, 16, 3, 1, 1), (32, 32, 8, 8, 3, 1, 1), (3, 16, 32, 32, 3, 1, 1),
               (16, 32, 16, 16, 3, 2, 1), (64, 64, 4, 4, 3, 1, 1), (8, 24, 10, 10, 5, 1, 2)]
CONV_DENSITIES = [0.1, 0.3, 0.5]


def model_of(node: onnx.NodeProto, w: np.ndarray, bias: np.ndarray, in_shape: list[int],
             out_shape: list[int]) -> onnx.ModelProto:
    graph = helper.make_graph(
        [node, helper.make_node("Relu", ["y"], ["output"])], "one",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, out_shape)],
        [numpy_helper.from_array(w.astype(np.float32), "W"), numpy_helper.from_array(bias.astype(np.float32), "B")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def gemm_model(w: np.ndarray, bias: np.ndarray) -> onnx.ModelProto:
    node = helper.make_node("Gemm", ["input", "W", "B"], ["y"], transB=1)
    return model_of(node, w, bias, [1, w.shape[1]], [1, w.shape[0]])


def conv_model(shape: tuple, w: np.ndarray, bias: np.ndarray) -> onnx.ModelProto:
    in_c, _, h, wd, k, stride, pad = shape
    node = helper.make_node("Conv", ["input", "W", "B"], ["y"], kernel_shape=[k, k], strides=[stride, stride],
                            pads=[pad] * 4)
    oh, ow = (h + 2 * pad - k) // stride + 1, (wd + 2 * pad - k) // stride + 1
    return model_of(node, w, bias, [1, in_c, h, wd], [1, w.shape[0], oh, ow])


def random_weights(rng: np.random.Generator, shape: tuple, density: float | None, n: int | None = None) -> np.ndarray:
    """Gaussian weights with the given share of nonzeros, or with n of every aligned 4 along the im2col axis."""
    w = rng.standard_normal(shape)
    if n is None:
        return w * (rng.random(shape) < density)
    cols = w.reshape(shape[0], shape[1], -1).transpose(0, 2, 1).reshape(shape[0], -1) if w.ndim == 4 else w
    keep = np.zeros(cols.shape, bool)
    g = keep.reshape(shape[0], -1, 4)
    for j in range(n):  # n distinct random positions per group
        pos = rng.permuted(np.tile(np.arange(4), g.shape[:2] + (1,)), axis=2)[:, :, :n]
        g[np.arange(g.shape[0])[:, None], np.arange(g.shape[1])[None, :], pos[:, :, j]] = True
    cols = cols * keep
    if w.ndim == 4:
        return cols.reshape(shape[0], shape[2] * shape[3], shape[1]).transpose(0, 2, 1).reshape(shape)
    return cols


def instructions(model: onnx.ModelProto, target: str, quantize: str, mode: str, dsp: bool = True,
                 layer: int = 0) -> tuple[int, str]:
    """Instructions of one inference and the kernel of the given layer, with --sparse-kernels mode ("sparse":
    rows); dsp=False drops the target's 'dsp' feature (the portable int8 kernels)."""
    t = load_target(target)
    if not dsp:
        t = dataclasses.replace(t, features=tuple(f for f in t.features if f != "dsp"))
    shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.onnx"
        onnx.save(model, path)
        calib = Path(tmp) / "calib.npz"
        np.savez(calib, input=rng.standard_normal([8] + shape).astype(np.float32))
        load = build_mod.load_target
        build_mod.load_target = lambda name: t
        try:
            out, meta, _ = build(BuildOptions(path, target=target, quantize=quantize, calib=calib,
                                              out=Path(tmp) / "b", sparse_kernels={"sparse": "rows"}.get(mode, mode)))
        finally:
            build_mod.load_target = load
        res = run_build(out, [{"input": rng.standard_normal(shape).astype(np.float32)}])
    return res.instructions[0], meta["layers"][layer]["kernels"][0]


def fit(rows: list[tuple[list[float], int]], names: list[str], per_nonzero: float = 0.0) -> None:
    a = np.array([r[0] for r in rows], np.float64)
    b = np.array([r[1] for r in rows], np.float64)
    coef, *_ = np.linalg.lstsq(a, b, rcond=None)
    worst = float(np.max(np.abs(a @ coef - b) / b))
    extra = f"; {coef[0] / per_nonzero:.2f} instructions per entry" if per_nonzero else ""
    print(f"  fit: ({', '.join(f'{c:.3f}' for c in coef)})  # {', '.join(names)}; worst relative error "
          f"{worst:.3f}{extra}", flush=True)


def quantized_2d(w: np.ndarray, quantize: str) -> np.ndarray:
    """The weights as the kernel sees them: [N][K] in im2col order, int8 or float32."""
    wq = w.astype(np.float32) if quantize == "none" else quantize_weights(w)[0]
    return wq.transpose(0, 2, 3, 1).reshape(w.shape[0], -1) if w.ndim == 4 else wq


def measure_fc(target: str, rng: np.random.Generator) -> None:
    cases = [(n, k, d, random_weights(rng, (n, k), d), rng.standard_normal(n) * 0.1)
             for n, k in FC_SHAPES for d in DENSITIES]
    nm_cases = [(n, k, m, random_weights(rng, (n, k), None, m), rng.standard_normal(n) * 0.1)
                for n, k in FC_SHAPES for m in (1, 2)]
    for quantize in ("int8", "none"):
        for dsp in ((True, False) if quantize == "int8" else (True,)):
            rows = []
            for n, k, _, w, b in cases[::len(DENSITIES)]:
                count, kernel = instructions(gemm_model(w, b), target, quantize, "dense", dsp)
                print(f"{kernel} {n}x{k}: {count}")
                rows.append(([n * k, n], count))
            fit(rows, ["per_mac", "per_row"])
        rows = []
        for n, k, d, w, b in cases:
            blocks = int(sparse.encode_rows(quantized_2d(w, quantize)).counts.sum(dtype=np.int64))
            count, kernel = instructions(gemm_model(w, b), target, quantize, "sparse")
            print(f"{kernel} {n}x{k} density {d}: {blocks} blocks: {count}")
            rows.append(([blocks, n, n * sparse.segments(k), k, 1], count))
        fit(rows, ["per_block", "per_row", "per_segment", "per_column", "per_call"], 4)
        rows = []
        for n, k, m, w, b in nm_cases:
            nm = sparse.encode_nm(quantized_2d(w, quantize), m)
            count, kernel = instructions(gemm_model(w, b), target, quantize, "nm")
            print(f"{kernel} {n}x{k} {m}:4: {nm.blocks} blocks: {count}")
            rows.append(([nm.blocks, n, k, 1], count))
        fit(rows, ["per_block", "per_row", "per_column", "per_call"], 4)


def transpose_model(shape: list[int]) -> onnx.ModelProto:
    graph = helper.make_graph(
        [helper.make_node("Transpose", ["input"], ["output"], perm=[0, 2, 3, 1])], "t",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [shape[i] for i in (0, 2, 3, 1)])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def layout_cost(target: str, quantize: str, shape: tuple, cache: dict) -> int:
    """Instructions of the two layout copies around a convolution model (NCHW input to NHWC, NHWC output to NCHW),
    to subtract from its count: two one-Transpose models of the same sizes, minus one call without data."""
    def one(dims: tuple) -> int:
        if (dims, quantize) not in cache:
            cache[dims, quantize] = instructions(transpose_model(list(dims)), target, quantize, "dense")[0]
        return cache[dims, quantize]

    in_c, out_c, h, wd, k, stride, pad = shape
    oh, ow = (h + 2 * pad - k) // stride + 1, (wd + 2 * pad - k) // stride + 1
    return one((1, in_c, h, wd)) + one((1, out_c, oh, ow)) - one((1, 1, 1, 1))


def conv_pixels(shape: tuple) -> int:
    _, _, h, wd, k, stride, pad = shape
    return ((h + 2 * pad - k) // stride + 1) * ((wd + 2 * pad - k) // stride + 1)


def measure_conv(target: str, rng: np.random.Generator) -> None:
    def wshape(s: tuple) -> tuple:
        return (s[1], s[0], s[4], s[4])

    cases = [(s, d, random_weights(rng, wshape(s), d), rng.standard_normal(s[1]) * 0.1)
             for s in CONV_SHAPES for d in CONV_DENSITIES]
    nm_cases = [(s, m, random_weights(rng, wshape(s), None, m), rng.standard_normal(s[1]) * 0.1)
                for s in CONV_SHAPES for m in (1, 2) if s[0] % 4 == 0]
    cache: dict = {}
    for quantize in ("int8", "none"):
        for dsp in ((True, False) if quantize == "int8" else (True,)):
            rows = []
            for s, _, w, b in cases[::len(CONV_DENSITIES)]:
                count, kernel = instructions(conv_model(s, w, b), target, quantize, "dense", dsp, layer=1)
                count -= layout_cost(target, quantize, s, cache)
                p, n, k = conv_pixels(s), s[1], s[0] * s[4] ** 2
                print(f"{kernel} {s}: {count}")
                rows.append(([p * n * k, p * n, p * k, 1], count))
            fit(rows, ["per_mac", "per_row", "per_column", "per_call"])
        rows = []
        for s, d, w, b in cases:
            p, n, k = conv_pixels(s), s[1], s[0] * s[4] ** 2
            blocks = int(sparse.encode_rows(quantized_2d(w, quantize)).counts.sum(dtype=np.int64))
            count, kernel = instructions(conv_model(s, w, b), target, quantize, "sparse", layer=1)
            count -= layout_cost(target, quantize, s, cache)
            print(f"{kernel} {s} density {d}: {blocks} blocks: {count}")
            rows.append(([p * blocks, p * n, p * n * sparse.segments(k), p * k, 1], count))
        fit(rows, ["per_block", "per_row", "per_segment", "per_column", "per_call"], 4)
        rows = []
        for s, m, w, b in nm_cases:
            p, n, k = conv_pixels(s), s[1], s[0] * s[4] ** 2
            nm = sparse.encode_nm(quantized_2d(w, quantize), m)
            count, kernel = instructions(conv_model(s, w, b), target, quantize, "nm", layer=1)
            count -= layout_cost(target, quantize, s, cache)
            print(f"{kernel} {s} {m}:4: {nm.blocks} blocks: {count}")
            rows.append(([p * nm.blocks, p * n, p * k, 1], count))
        fit(rows, ["per_block", "per_row", "per_column", "per_call"], 4)


def measure_gather(target: str, rng: np.random.Generator) -> None:
    """The row-group kernel (int8, fast output stage): per step of 4 entries, per group of 4 rows, per call."""
    rows = []
    for n, k in FC_SHAPES:
        for d in DENSITIES:
            w = random_weights(rng, (n, k), d)
            wq = quantized_2d(w, "int8")
            count, kernel = instructions(gemm_model(w, rng.standard_normal(n) * 0.1), target, "int8", "gather")
            steps, groups = sparse.gather_steps(wq), (n + 3) // 4
            print(f"{kernel} {n}x{k} density {d}: {steps} steps, {groups} groups: {count}", flush=True)
            rows.append(([steps, groups, 1], count))
    fit(rows, ["per_step", "per_group", "per_call"])


def block_random(rng: np.random.Generator, shape: tuple, density: float) -> np.ndarray:
    """Gaussian [N][K] weights with the given share of 4x4 tiles kept (N and K multiples of 4), the rest zero."""
    n, k = shape
    keep = np.repeat(np.repeat(rng.random((n // 4, k // 4)) < density, 4, axis=0), 4, axis=1)
    return rng.standard_normal(shape) * keep


def measure_block(target: str, rng: np.random.Generator) -> None:
    """The block-sparse kernel (int8): per 4x4 tile, per group of 4 rows, per input column, per call."""
    rows = []
    for n, k in FC_SHAPES:
        for d in DENSITIES + [0.8]:
            w = block_random(rng, (n, k), d)
            count, kernel = instructions(gemm_model(w, rng.standard_normal(n) * 0.1), target, "int8", "block")
            tiles = int(sparse.block_tiles(quantized_2d(w, "int8")).sum())
            print(f"{kernel} {n}x{k} tile density {d}: {tiles} tiles: {count}", flush=True)
            rows.append(([tiles, (n + 3) // 4, k, 1], count))
    fit(rows, ["per_tile", "per_group", "per_column", "per_call"], 16)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--target", default="cortex-m7")
    p.add_argument("--only", choices=["fc", "conv", "gather", "block"])
    a = p.parse_args()
    rng = np.random.default_rng(0)
    if a.only in (None, "fc"):
        measure_fc(a.target, rng)
    if a.only in (None, "gather"):
        measure_gather(a.target, rng)
    if a.only in (None, "block"):
        measure_block(a.target, rng)
    if a.only in (None, "conv"):
        measure_conv(a.target, rng)


if __name__ == "__main__":
    main()
