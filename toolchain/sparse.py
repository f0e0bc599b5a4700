"""Sparse weights: the encoders for the formats in runtime_c/include/edgec_sparse.h, their sizes, and the cost model
that picks a dense or a sparse kernel per layer at build time.

A fully connected layer (Gemm) and a 1x1 convolution with stride 1, no padding and one group (a fully connected
layer over the pixels) get a sparse kernel when the cost model says it executes fewer instructions than the dense
kernel the target would use. `MODE` overrides the choice for every layer: "auto" (the cost model), "dense" or
"sparse" (always the row-sparse kernel)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .calls import Arg, Array, Buf, Call, Lowered, Scratch, Struct
from .target import Target

SEGMENT = 256  # columns per segment: an index is one byte
MODE = "auto"


@dataclass
class RowSparse:
    """Row-sparse weights, segment by segment (256 columns): per segment and row the number of blocks of 4 entries,
    then the entries (in-segment column index and value), ascending by column, each (segment, row) padded with
    (0, 0) entries to whole blocks."""

    counts: np.ndarray  # uint8 [S][N]
    index: np.ndarray  # uint8 [4 * blocks]
    values: np.ndarray  # int8 or float32 [4 * blocks]

    @property
    def nbytes(self) -> int:
        return self.counts.nbytes + self.index.nbytes + self.values.nbytes

    def blocks_s8(self) -> np.ndarray:
        """The s8 kernel's single stream: per block the 4 indices, then the 4 int8 values."""
        return np.concatenate([self.index.reshape(-1, 4), self.values.view(np.uint8).reshape(-1, 4)], axis=1).ravel()


def segments(depth: int) -> int:
    return (depth + SEGMENT - 1) // SEGMENT


def encode_rows(w: np.ndarray) -> RowSparse:
    """[N][K] weights (int8 or float32) -> row-sparse arrays."""
    n, k = w.shape
    s = segments(k)
    rows, cols = np.nonzero(w)
    order = np.lexsort((cols, rows, cols // SEGMENT))  # by segment, row, column
    rows, cols = rows[order], cols[order]
    cell = cols // SEGMENT * n + rows  # (segment, row), ascending
    per_cell = np.bincount(cell, minlength=s * n)
    blocks = (per_cell + 3) // 4
    start = np.concatenate([[0], np.cumsum(4 * blocks)[:-1]])  # first entry of every cell
    first = np.concatenate([[0], np.cumsum(per_cell)[:-1]])
    pos = start[cell] + np.arange(cell.size) - first[cell]
    index = np.zeros(4 * int(blocks.sum()), np.uint8)
    values = np.zeros(index.size, w.dtype)
    index[pos] = cols % SEGMENT
    values[pos] = w[rows, cols]
    return RowSparse(blocks.reshape(s, n).astype(np.uint8), index, values)


def sparse_scratch_bytes(depth: int, out_c: int) -> int:
    """Twin of ec_fully_connected_sparse_s8_get_buffer_size: depth int16 values (rounded up to 4 bytes), then out_c
    int32 accumulators."""
    return 4 * ((depth + 1) // 2) + 4 * out_c


# ---- cost model ---------------------------------------------------------------------------------------------------


# Instructions on Cortex-M7, measured with bench/sparse_cost.py: one-layer int8 and float32 models (Gemm + Relu,
# batch 1, 6 shapes from 16x520 to 640x128, densities 0.05 to 0.5) built with each kernel and run in QEMU (exact
# counts), then a least-squares fit of the terms below. Worst relative error of the fits: 7.3% for the packed dense
# kernel (its output stage takes a faster path in some layers than in others), 1.1% for the others.
# Dense: per MAC, per output. 'dsp' targets run ec_fully_connected_packed_s8, others ec_fully_connected_s8.
DENSE_S8_DSP = (1.727, 83.7)
DENSE_S8 = (6.001, 60.2)
DENSE_F32 = (6.001, 18.1)
# Row-sparse: per block of 4 entries, per output, per (output, segment), per input column, per call.
SPARSE_S8 = (16.51, 23.3, 12.0, 2.3, 140.0)
SPARSE_F32 = (27.99, 17.3, 16.3, 0.0, 72.6)


def dense_instructions(n: int, k: int, rows: int, quantized: bool, dsp: bool) -> float:
    per_mac, per_row = (DENSE_S8_DSP if dsp else DENSE_S8) if quantized else DENSE_F32
    return rows * (per_mac * n * k + per_row * n)


def sparse_instructions(sp: RowSparse, k: int, rows: int, quantized: bool) -> float:
    per_block, per_row, per_segment, per_column, per_call = SPARSE_S8 if quantized else SPARSE_F32
    s, n = sp.counts.shape
    blocks = int(sp.counts.sum(dtype=np.int64))
    return rows * (per_block * blocks + per_row * n + per_segment * n * s + per_column * k) + per_call


def use_sparse(sp: RowSparse, k: int, rows: int, quantized: bool, target: Target) -> bool:
    """MODE, or in "auto" whether the row-sparse kernel needs fewer instructions than the dense one without needing
    more flash (without that condition, targets without 'dsp' would store nearly dense int8 layers sparse: their
    portable dense kernel needs more instructions per MAC than the sparse one per entry)."""
    if MODE != "auto":
        return MODE == "sparse"
    n = sp.counts.shape[1]
    dense = dense_instructions(n, k, rows, quantized, "dsp" in target.features)
    dense_bytes = n * k * (1 if quantized else 4)
    return sparse_instructions(sp, k, rows, quantized) < dense and sp.nbytes <= dense_bytes


def lower_sparse_fc(name: str, rows: int, w: np.ndarray, stage: Struct, bias: Array, x: Buf, y: Buf,
                    target: Target, macs: int) -> Lowered | None:
    """The row-sparse kernel call for a fully connected layer y = x @ w.T + bias over `rows` input rows (w int8 with
    an ec_quant_s8 stage, or float32 with an ec_act_f32 stage), or None when the dense kernel is cheaper."""
    quantized = w.dtype == np.int8
    n, k = w.shape
    sp = encode_rows(w)
    if not use_sparse(sp, k, rows, quantized, target):
        return None
    if quantized:
        weights: list[Arg] = [Array(f"w_{name}", sp.blocks_s8(), "uint8_t")]
    else:
        weights = [Array(f"wi_{name}", sp.index, "uint8_t"), Array(f"w_{name}", sp.values, "float")]
    args = [rows, k, n, stage, x, Array(f"wc_{name}", sp.counts, "uint8_t"), *weights, bias, y]
    if quantized:
        args.append(Scratch(sparse_scratch_bytes(k, n)))
    return Lowered([Call(f"ec_fully_connected_sparse_{'s8' if quantized else 'f32'}", args, node=name, macs=macs)])
