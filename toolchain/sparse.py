"""Sparse weights: the encoders for the formats in runtime_c/include/edgec_sparse.h (row-sparse, N:4, row-group,
block-sparse), their sizes and scratch twins, and the cost model that picks a dense, row-sparse, N:4, row-group or
block-sparse kernel per layer at build time.

Fully connected layers (Gemm) and 1x1 convolutions with stride 1, no padding and one group (a fully connected
layer over the pixels) use the fully connected kernels; other convolutions with one group (any kernel size, stride,
padding, dilation) the convolution kernels, which apply the weights to the im2col column of each output pixel.
Depthwise and grouped convolutions stay dense. The build's --sparse-kernels (`mode` below, from the lowering
context) overrides the choice for every layer: "auto" (the cost model), "dense", "rows" (always row-sparse), "gather"
(row-group for int8 fully connected layers, row-sparse elsewhere), "nm" (N:4 when the weights fit it, else
dense) or "block" (block-sparse 4x4 tiles for int8 fully connected layers with a zero tile, else dense)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from .calls import Arg, Array, Buf, Call, Lowered, Scratch, Struct
from .target import Target

if TYPE_CHECKING:  # ops imports this module
    from .ops.output_stage import Stage

SEGMENT = 256  # columns per segment: an index is one byte


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


@dataclass
class NM:
    """N:4 weights (n = 1 or 2): per row, blocks of 4 entries covering 16 / n columns; per block one index byte
    (2 bits per entry, entry j in bits 2j) and 4 values."""

    n: int
    index: np.ndarray  # uint8 [N][B]
    values: np.ndarray  # int8 or float32 [N][B][4]

    @property
    def nbytes(self) -> int:
        return self.index.nbytes + self.values.nbytes

    @property
    def blocks(self) -> int:
        return self.index.size


def nm_span(n: int) -> int:
    return 16 // n


def nm_depth(depth: int, n: int) -> int:
    """Twin of ec_nm_depth: depth rounded up to whole N:4 blocks."""
    span = nm_span(n)
    return (depth + span - 1) // span * span


def nm_fit(w: np.ndarray) -> int | None:
    """The n (1 or 2) of the N:4 format that holds [N][K] weights: the most nonzeros in any aligned group of 4
    columns; None when a group has 3 or 4."""
    n_rows, k = w.shape
    padded = np.zeros((n_rows, (k + 3) // 4 * 4), bool)
    padded[:, :k] = w != 0
    most = int(padded.reshape(n_rows, -1, 4).sum(axis=2).max(initial=0))
    return None if most > 2 else max(most, 1)


def encode_nm(w: np.ndarray, n: int) -> NM:
    """[N][K] weights with at most n nonzeros in every aligned group of 4 columns -> N:4 arrays."""
    rows, k = w.shape
    kp = nm_depth(k, n)
    padded = np.zeros((rows, kp), w.dtype)
    padded[:, :k] = w
    groups = padded.reshape(rows, kp // 4, 4)
    order = np.argsort(groups == 0, axis=2, kind="stable")[:, :, :n]  # the nonzeros first, ascending
    if np.count_nonzero(groups) != np.count_nonzero(np.take_along_axis(groups, order, axis=2)):
        raise ValueError(f"weights do not fit {n}:4")
    values = np.take_along_axis(groups, order, axis=2).reshape(rows, -1, 4)
    bits = order.reshape(rows, -1, 4).astype(np.uint8) << np.array([0, 2, 4, 6], np.uint8)
    return NM(n, np.bitwise_or.reduce(bits, axis=2).astype(np.uint8), values)


@dataclass
class GatherStage:
    """The per-row output stage of the row-group kernel (see constant_rows)."""

    mult: np.ndarray
    shift: np.ndarray
    bias: np.ndarray


GATHER_HEAD = 5  # EC_GATHER_HEAD: words before a row group's steps
GATHER_WORDS = 6  # EC_GATHER_WORDS: words per step of 4 entries
GATHER_TAIL = 12  # EC_GATHER_TAIL: words after a row group's steps


@dataclass
class Gather:
    """Row-group weights (edgec_sparse.h): the rows sorted by their number of nonzeros (most first) and taken four
    at a time, the last group filled up by repeating its last row; one int32 stream, per group the head (steps,
    the 4 biases with the input zero point folded in), the steps (4 column indices, the weights as two int16
    pairs) and the tail (4 multipliers, 4 ~shift, 4 output channels). `lanes`: the row of every lane."""

    stream: np.ndarray  # int32
    lanes: np.ndarray  # int64 [4 * groups]
    steps: int  # steps of all groups

    @property
    def groups(self) -> int:
        return self.lanes.size // 4

    @property
    def nbytes(self) -> int:
        return self.stream.nbytes


def gather_lanes(w: np.ndarray) -> np.ndarray:
    """The rows of [N][K] weights in lane order: by number of nonzeros, most first (ties by row), the last group
    filled up with its last row."""
    counts = np.count_nonzero(w, axis=1)
    order = np.lexsort((np.arange(w.shape[0]), -counts))
    pad = -order.size % 4
    return np.concatenate([order, np.repeat(order[-1:], pad)]) if order.size else order


def gather_steps(w: np.ndarray) -> int:
    """Steps of all groups (the longest row of every group) without building the stream."""
    counts = np.count_nonzero(w, axis=1)[gather_lanes(w)]
    return int(counts.reshape(-1, 4).max(axis=1, initial=0).sum()) if counts.size else 0


def encode_gather(w: np.ndarray, bias: np.ndarray, in_zp: int, mult: np.ndarray, shift: np.ndarray,
                  fast: bool) -> Gather:
    """[N][K] int8 weights, int32 bias, the input zero point and the per-channel output stage -> the row-group
    stream; fast (gather_fast): the weights and biases doubled, so that the kernel's accumulators are the 2 acc that
    ec_requant_fast computes. Raises ValueError when a folded bias bias - in_zp * sum(w) or a partial sum on top of
    it (doubled when fast) could leave int32."""
    scale = 2 if fast else 1
    w64 = w.astype(np.int64) * scale
    folded = scale * bias.astype(np.int64) - in_zp * w64.sum(axis=1)
    bound = np.abs(folded) + 128 * np.abs(w64).sum(axis=1)
    if bound.size and bound.max() >= 2**31:
        raise ValueError("the folded biases do not fit int32")
    lanes = gather_lanes(w)
    words: list[np.ndarray] = []
    total = 0
    for g in range(lanes.size // 4):
        rows = lanes[4 * g:4 * g + 4]
        cols = [np.flatnonzero(w[r]) for r in rows]
        steps = max(c.size for c in cols)
        total += steps
        idx = np.zeros((steps, 4), np.int64)
        val = np.zeros((steps, 4), np.int64)
        for j, (r, c) in enumerate(zip(rows, cols)):
            idx[:c.size, j] = c
            val[:c.size, j] = w64[r, c]
        pairs = np.stack([(val[:, 0] & 0xFFFF) | (val[:, 2] << 16), (val[:, 1] & 0xFFFF) | (val[:, 3] << 16)], 1)
        words += [np.array([4 * GATHER_WORDS * steps + steps % 4, *folded[rows]], np.int64),
                  np.concatenate([idx, pairs], 1).ravel(),
                  np.concatenate([mult[rows], ~shift[rows].astype(np.int64), rows])]
    stream = np.concatenate(words) if words else np.zeros(0, np.int64)
    return Gather((stream & 0xFFFFFFFF).astype(np.uint32).view(np.int32), lanes, total)


def gather_bytes(w: np.ndarray) -> int:
    """Gather.nbytes without building the stream."""
    groups = (w.shape[0] + 3) // 4
    return 4 * ((GATHER_HEAD + GATHER_TAIL) * groups + GATHER_WORDS * gather_steps(w))


def gather_fast(w: np.ndarray, bias: np.ndarray, shift: np.ndarray) -> bool:
    """Twin of ec_fast_ok for the row-group kernel, from the weights: every shift negative and every accumulator
    bias + sum(w * (x - in_zp)) (|x - in_zp| <= 255) below 2^30 in magnitude, with a margin (256) that keeps the
    doubled partial sums of the row-group kernel in int32."""
    bound = np.abs(bias.astype(np.int64)) + 256 * np.abs(w.astype(np.int64)).sum(axis=1)
    return bool(np.all(shift < 0) and (bound.size == 0 or bound.max() < 2**30))


TILE_WORDS = 9  # EC_TILE_WORDS: a tile's byte offset and 4 rows of 2 int16 pair words


@dataclass
class Blocks:
    """Block-sparse weights (ec_fully_connected_block_sparse_s8, edgec_sparse.h): the matrix cut into tiles of 4 rows
    x 4 columns (rows and columns padded with zeros to multiples of 4), only tiles with a nonzero weight stored; one
    int32 stream, per group of 4 rows the tile count, then per tile the byte offset 8 g of its columns in the
    expanded input and per row two words of int16 weight pairs for SMLAD (columns 0 and 2, then 1 and 3)."""

    stream: np.ndarray  # int32
    tiles: int
    groups: int

    @property
    def nbytes(self) -> int:
        return self.stream.nbytes


def block_tiles(w: np.ndarray) -> np.ndarray:
    """Which 4x4 tiles of [N][K] weights hold a nonzero: bool [ceil(N / 4)][ceil(K / 4)]."""
    n, k = w.shape
    nz = np.zeros(((n + 3) // 4 * 4, (k + 3) // 4 * 4), bool)
    nz[:n, :k] = w != 0
    return nz.reshape(nz.shape[0] // 4, 4, nz.shape[1] // 4, 4).any(axis=(1, 3))


def block_bytes(w: np.ndarray) -> int:
    """Blocks.nbytes without building the stream."""
    t = block_tiles(w)
    return 4 * (t.shape[0] + TILE_WORDS * int(t.sum()))


def encode_blocks(w: np.ndarray) -> Blocks:
    """[N][K] int8 weights -> the block-sparse stream."""
    n, k = w.shape
    tiles = block_tiles(w)
    p = np.zeros((4 * tiles.shape[0], 4 * tiles.shape[1]), np.int64)
    p[:n, :k] = w
    words: list[np.ndarray] = []
    for g in range(tiles.shape[0]):
        cols = np.flatnonzero(tiles[g])
        t = p[4 * g:4 * g + 4].reshape(4, -1, 4)[:, cols, :].transpose(1, 0, 2)  # [tiles][row][column]
        pairs = np.stack([(t[:, :, 0] & 0xFFFF) | (t[:, :, 2] << 16), (t[:, :, 1] & 0xFFFF) | (t[:, :, 3] << 16)], 2)
        words += [np.array([cols.size]), np.concatenate([8 * cols[:, None], pairs.reshape(cols.size, 8)], 1).ravel()]
    stream = np.concatenate(words) if words else np.zeros(0, np.int64)
    return Blocks((stream & 0xFFFFFFFF).astype(np.uint32).view(np.int32), int(tiles.sum()), tiles.shape[0])


def block_scratch_bytes(depth: int) -> int:
    """Twin of ec_fully_connected_block_sparse_s8_get_buffer_size: one int16 column of depth rounded up to 4."""
    return 2 * ((depth + 3) // 4 * 4)


# ---- scratch twins --------------------------------------------------------------------------------------------


def columns(rows: int) -> int:
    """Twin of ec_sparse_cols: the s8 kernels expand two input rows (pixels) at a time when there are two."""
    return 2 if rows >= 2 else 1


def sparse_scratch_bytes(rows: int, depth: int, out_c: int) -> int:
    """Twin of ec_fully_connected_sparse_s8_get_buffer_size and ec_conv2d_sparse_s8_get_buffer_size (rows: output
    pixels, depth = k_h k_w in_c): per column depth int16 values (rounded up to 4 bytes) and out_c accumulators."""
    return columns(rows) * (4 * ((depth + 1) // 2) + 4 * out_c)


def nm_scratch_bytes(rows: int, depth: int, out_c: int, n: int) -> int:
    """Twin of ec_fully_connected_nm_s8_get_buffer_size and ec_conv2d_nm_s8_get_buffer_size."""
    return columns(rows) * (2 * nm_depth(depth, n) + 4 * out_c)


def conv_sparse_f32_scratch_bytes(depth: int) -> int:
    """Twin of ec_conv2d_sparse_f32_get_buffer_size: one float im2col column."""
    return 4 * depth


def conv_nm_f32_scratch_bytes(depth: int, n: int) -> int:
    """Twin of ec_conv2d_nm_f32_get_buffer_size: one float im2col column up to whole blocks."""
    return 4 * nm_depth(depth, n)


# ---- cost model ---------------------------------------------------------------------------------------------------


# Instructions on Cortex-M7, measured with bench/sparse_cost.py: one-layer int8 and float32 models (a Gemm or a Conv
# with a fused Relu, batch 1, random weights at several densities or N:4 patterns) built with each kernel and run in
# QEMU (exact counts), then a least-squares fit of the terms below.
# Fully connected (6 shapes from 16x520 to 640x128), dense: per MAC, per output. 'dsp' targets run
# ec_fully_connected_block4_s8 [worst relative error 8.8%; measured 2026-12-05, after it replaced
# ec_fully_connected_packed_s8, whose fit (1.412, 94.6) made ad01's 8-input gemm_6 at 90% sparsity take the
# row-sparse kernel: 5,749 instructions where block4 needs 4,136], others ec_fully_connected_s8 [0.1%].
DENSE_S8_DSP = (1.201, 42.1)
DENSE_S8 = (6.001, 40.5)
DENSE_F32 = (6.001, 18.1)
# Row-sparse (densities 0.05 to 0.5): per block of 4 entries, per output, per (output, segment), per input column,
# per call [1.3%, 1.1%].
SPARSE_S8 = (16.50, 23.2, 12.7, 2.5, 182.7)
SPARSE_F32 = (27.99, 17.3, 16.3, 0.0, 72.6)
# N:4 (1:4 and 2:4): per block, per output, per input column, per call [11%, 1.1%].
NM_S8 = (20.58, 56.9, 10.3, 0.0)
NM_F32 = (28.99, 31.5, 0.1, 254.7)
# Convolution (6 shapes from 3x32x32 -> 16 to 64x4x4 -> 64, 3x3 and 5x5, stride 1 and 2, the layout copies around the
# one-layer model subtracted; fits without a per-call term, worst relative errors in brackets), per output pixel.
# Dense: per MAC, per output, per im2col column element. 'dsp' targets run ec_conv2d_im2col_s8 (its MACs count every
# kernel row padded to a multiple of 4 columns) [12%], others ec_conv2d_s8 [9%], float ec_conv2d_f32 [10%]. (The
# Cortex-M0+ and M3 run ec_conv2d_im2col_s8's plain C for some convolutions, see Conv.blocked; their predictions use
# the ec_conv2d_s8 fit, an estimate there.)
CONV_S8_DSP = (1.066, 89.1, 0.0)
CONV_S8 = (3.981, 226.1, 26.17)
CONV_F32 = (3.985, 180.2, 26.13)
# Row-sparse (densities 0.1 to 0.5): per block, per output, per column element [9%, 9%]; N:4: the same [3%, 4%].
# The s8 kernels take two pixels at a time (indices and weights loaded once), hence fewer instructions per block
# than the fully connected kernels measured above with one row; those use the per-block constants below too when
# they have two rows or more.
CONV_SPARSE_S8 = (12.98, 53.96, 2.43)
CONV_SPARSE_F32 = (28.12, 64.62, 2.07)
CONV_NM_S8 = (15.21, 46.36, 4.15)
CONV_NM_F32 = (28.71, 40.50, 4.72)


# Row-group (ec_fully_connected_sparse_gather_s8, int8 fully connected) on 'dsp' targets with the fast output stage
# (the assembly row loop): per step of 4 entries, per group of 4 rows, per input row. Measured on Cortex-M7 on the ten
# layers of ad01 pruned to 90% (edgec profile; steps and groups from gather_steps): 9.5 instructions per step (9 in
# the loop, a compare and branch per 4 steps), 42.4 per group (head, entry into the loop, output stage of 4 rows,
# 4 stores; 4 more with an activation clamp), 85 per call; worst relative error 0.9%. Other targets, and layers
# without the fast output stage, run the kernel's plain C, not measured for the cost model: the row-group kernel is a
# candidate only on 'dsp' targets with the fast output stage.
GATHER_S8 = (9.5, 42.4, 85.0)

# Block-sparse (ec_fully_connected_block_sparse_s8, int8 fully connected, fast output stage) on 'dsp' targets: per
# 4x4 tile, per group of 4 rows, per input column (the expansion), per call. Measured on Cortex-M7 with
# bench/sparse_cost.py --only block (the 6 fully connected shapes, 5%, 10%, 30%, 50% and 80% of the tiles kept, the
# harness's conversions included as in the dense fit): 16.0 instructions per tile (1.0 per MAC of a stored tile,
# against 1.2 per MAC dense), 83.5 per group (output stage of 4 rows), 1.4 per column, 158 per call; worst relative
# error 3.8%. Without the DSP extension the kernel's plain C is not measured for the cost model: a candidate only on
# 'dsp' targets.
BLOCK_S8 = (16.05, 83.5, 1.45, 158.2)

# The target features whose dense int8 kernels the sparse ones are compared with, first match wins: Helium's and
# NEON's dense kernels need 0.3-0.6 instructions per MAC (NEON on Cortex-A53: 0.31 in fully connected layers), below
# the sparse kernels' cost per nonzero weight unless nearly all are zero, and the cost model has no measurements of
# the sparse kernels on these cores: None keeps them dense. "dsp" and the portable kernels: their measured constants.
DENSE_FAMILIES: tuple[tuple[str, str | None], ...] = (("mve", None), ("neon", None), ("dsp", "dsp"), ("", "portable"))


def dense_family(target: Target) -> str | None:
    """The dense kernel family of a target (DENSE_FAMILIES): "dsp", "portable", or None (no sparse int8 kernels)."""
    return next(fam for feature, fam in DENSE_FAMILIES if not feature or feature in target.features)


def gather_instructions(w: np.ndarray, rows: int) -> float:
    per_step, per_group, per_call = GATHER_S8
    return rows * (per_step * gather_steps(w) + per_group * ((w.shape[0] + 3) // 4) + per_call)


def block_instructions(w: np.ndarray, rows: int) -> float:
    per_tile, per_group, per_column, per_call = BLOCK_S8
    t = block_tiles(w)
    return rows * (per_tile * int(t.sum()) + per_group * t.shape[0] + per_column * w.shape[1]) + per_call


def dense_instructions(n: int, k: int, rows: int, quantized: bool, dsp: bool) -> float:
    per_mac, per_row = (DENSE_S8_DSP if dsp else DENSE_S8) if quantized else DENSE_F32
    return rows * (per_mac * n * k + per_row * n)


def sparse_instructions(sp: RowSparse, k: int, rows: int, quantized: bool) -> float:
    per_block, per_row, per_segment, per_column, per_call = SPARSE_S8 if quantized else SPARSE_F32
    if quantized and rows >= 2:
        per_block = CONV_SPARSE_S8[0]
    s, n = sp.counts.shape
    blocks = int(sp.counts.sum(dtype=np.int64))
    return rows * (per_block * blocks + per_row * n + per_segment * n * s + per_column * k) + per_call


def nm_instructions(nm: NM, k: int, rows: int, quantized: bool) -> float:
    per_block, per_row, per_column, per_call = NM_S8 if quantized else NM_F32
    if quantized and rows >= 2:
        per_block = CONV_NM_S8[0]
    return rows * (per_block * nm.blocks + per_row * nm.index.shape[0] + per_column * k) + per_call


def conv_dense_instructions(n: int, k: int, k_dsp: int, pixels: int, quantized: bool, dsp: bool) -> float:
    """k: im2col column length; k_dsp: the same with every kernel row padded to a multiple of 4."""
    if quantized and dsp:
        per_mac, per_row, per_column = CONV_S8_DSP
        return pixels * (per_mac * n * k_dsp + per_row * n + per_column * k)
    per_mac, per_row, per_column = CONV_S8 if quantized else CONV_F32
    return pixels * (per_mac * n * k + per_row * n + per_column * k)


def conv_sparse_instructions(sp: RowSparse, k: int, pixels: int, quantized: bool) -> float:
    per_block, per_row, per_column = CONV_SPARSE_S8 if quantized else CONV_SPARSE_F32
    blocks = int(sp.counts.sum(dtype=np.int64))
    return pixels * (per_block * blocks + per_row * sp.counts.shape[1] + per_column * k)


def conv_nm_instructions(nm: NM, k: int, pixels: int, quantized: bool) -> float:
    per_block, per_row, per_column = CONV_NM_S8 if quantized else CONV_NM_F32
    return pixels * (per_block * nm.blocks + per_row * nm.index.shape[0] + per_column * k)


@dataclass
class Choice:
    """The kernel family for one layer and why: 'dense', 'rows' (row-sparse), 'nm' (N:4), 'gather' (row-group) or
    'block' (block-sparse)."""

    kind: str
    note: str
    rows: RowSparse | None = None
    nm: NM | None = None


# A sparse format is chosen only when predicted at least this much cheaper than dense: the dense convolution's
# instruction fit is off by up to 12% on some layers (resnet8 2:4 once took N:4 for a measured 0.98x).
SPARSE_MARGIN = 0.85


def choose(w: np.ndarray, rows: int, quantized: bool, target: Target, k_dsp: int | None = None,
           mode: str = "auto", fast: bool = True, blocks_fast: bool = False) -> Choice:
    """The format `mode` (--sparse-kernels) forces, or in "auto" the format with the fewest predicted instructions
    among dense and, when predicted at least 1 - SPARSE_MARGIN cheaper than dense, row-sparse (only when it
    needs no more flash than dense: without that condition targets without 'dsp' would store nearly dense int8 layers
    sparse, since their portable dense kernel needs more instructions per MAC than the sparse one per entry) and N:4
    (when every aligned group of 4 columns has at most 2 nonzeros), and for int8 fully connected layers on 'dsp'
    targets whose output stage is fast (gather_fast) the row-group format (also no more flash than dense, less the
    biases and the output stage both store), and for int8 fully connected layers on 'dsp' targets whose block-sparse
    output stage is fast (blocks_fast) the block-sparse format (no more flash than dense). rows: input rows (fully
    connected) or output pixels (convolution, with k_dsp the padded column length of its dense DSP kernel). The note
    gives the predictions."""
    conv = k_dsp is not None
    n_out, k = w.shape
    family = dense_family(target) if quantized else "portable"
    dsp = family == "dsp"
    dense_bytes = n_out * k * (1 if quantized else 4)
    sp = encode_rows(w)
    fit = nm_fit(w)
    nm = encode_nm(w, fit) if fit is not None else None
    if conv:
        cost = {"dense": conv_dense_instructions(n_out, k, k_dsp, rows, quantized, dsp),
                "rows": conv_sparse_instructions(sp, k, rows, quantized)}
        if nm is not None:
            cost["nm"] = conv_nm_instructions(nm, k, rows, quantized)
    else:
        cost = {"dense": dense_instructions(n_out, k, rows, quantized, dsp),
                "rows": sparse_instructions(sp, k, rows, quantized)}
        if nm is not None:
            cost["nm"] = nm_instructions(nm, k, rows, quantized)
        if quantized and dsp and fast:
            cost["gather"] = gather_instructions(w, rows)
        if quantized and dsp and blocks_fast:
            cost["block"] = block_instructions(w, rows)
    size = {"dense": dense_bytes, "rows": sp.nbytes, "nm": nm.nbytes if nm is not None else 0,
            "gather": gather_bytes(w) - 48 * ((n_out + 3) // 4),  # less the biases and the output stage
            "block": block_bytes(w) if quantized else 0}
    if mode == "auto" and family is None:  # see DENSE_FAMILIES
        kind = "dense"
    elif mode == "auto":
        allowed = [kd for kd in cost if kd == "dense" or (cost[kd] < SPARSE_MARGIN * cost["dense"] and
                                                           (kd == "nm" or size[kd] <= dense_bytes))]
        kind = min(allowed, key=lambda kd: cost[kd])
    elif mode == "rows":
        kind = "rows"
    elif mode == "gather":
        kind = "gather" if quantized and not conv else "rows"
    elif mode == "nm":
        kind = "nm" if nm is not None else "dense"
    elif mode == "block":  # where the int8 fully connected weights have a zero 4x4 tile
        kind = "block" if quantized and not conv and not block_tiles(w).all() else "dense"
    else:
        kind = "dense"
    density = np.count_nonzero(w) / w.size if w.size else 0.0
    label = {"dense": "dense", "rows": "row-sparse", "nm": f"{fit}:4", "gather": "row-group", "block": "block-sparse"}
    note = (f"density {density:.0%}; predicted instructions " +
            ", ".join(f"{label[kd]} {cost[kd]:,.0f}" for kd in cost) +
            f"; weight bytes {size[kind]:,} ({size[kind] / dense_bytes:.0%} of dense)")
    return Choice(kind, f"{label[kind]}: {note}" if mode == "auto" else f"{label[kind]} (forced): {note}", sp, nm)


def constant_rows(w: np.ndarray, bias: np.ndarray, stage: Struct, q: Stage | None) -> GatherStage:
    """The row-group kernel's output stage: the layer's multipliers, shifts and biases, except that a row without
    nonzero weights (its output is the constant q.finish(0) = c) gets multiplier 2^30, shift -1 and bias 4 (c - out_zp),
    which every requantization (edgec's and TFLM's) maps to c exactly, with a negative shift (the fast output
    stage). Without q (the Stage) the rows are left as they are."""
    f = stage.fields
    mult, shift, bias = f["mult"].data.astype(np.int64), f["shift"].data.astype(np.int64), bias.astype(np.int64)
    zero = ~w.any(axis=1)
    if q is not None and zero.any():
        c = q.finish(np.zeros((1, w.shape[0]), np.int64), 1)[0].astype(np.int64)
        mult, shift, bias = mult.copy(), shift.copy(), bias.copy()
        mult[zero], shift[zero], bias[zero] = 2**30, -1, 4 * (c[zero] - int(f["out_zp"]))
    return GatherStage(mult, shift, bias)


def lower_sparse_fc(name: str, rows: int, w: np.ndarray, stage: Struct, bias: Array, x: Buf, y: Buf, target: Target,
                    macs: int, mode: str = "auto", q: Stage | None = None) -> tuple[Lowered | None, str]:
    """The sparse kernel call for a fully connected layer y = x @ w.T + bias over `rows` input rows (w int8 with
    an ec_quant_s8 stage, or float32 with an ec_act_f32 stage), or None when the dense kernel is cheaper; and the
    cost model's note. q: the int8 layer's Stage (for the row-group kernel's constant rows)."""
    quantized = w.dtype == np.int8
    n, k = w.shape
    if mode == "dense" or (mode == "auto" and np.all(w != 0)):
        return None, ""
    gs = constant_rows(w, bias.data, stage, q) if quantized else None
    fast = gs is not None and gather_fast(w, gs.bias, gs.shift)
    c = choose(w, rows, quantized, target, mode=mode, fast=fast, blocks_fast=gs is not None and block_fast(w, gs))
    suffix = "s8" if quantized else "f32"
    if c.kind == "rows":
        sp = c.rows
        if quantized:
            weights: list[Arg] = [Array(f"w_{name}", sp.blocks_s8(), "uint8_t")]
        else:
            weights = [Array(f"wi_{name}", sp.index, "uint8_t"), Array(f"w_{name}", sp.values, "float")]
        args = [rows, k, n, stage, x, Array(f"wc_{name}", sp.counts, "uint8_t"), *weights, bias, y]
        if quantized:
            args.append(Scratch(sparse_scratch_bytes(rows, k, n)))
        return Lowered([Call(f"ec_fully_connected_sparse_{suffix}", args, node=name, macs=macs)]), c.note
    if c.kind == "gather":
        return lower_gather_fc(name, rows, w, stage, gs, x, y, macs), c.note
    if c.kind == "block":
        return lower_block_fc(name, rows, w, stage, bias, gs, q, x, y, macs), c.note
    if c.kind == "nm":
        nm = c.nm
        args = [rows, k, n, nm.n, stage, x, Array(f"wi_{name}", nm.index, "uint8_t"),
                Array(f"w_{name}", nm.values, "int8_t" if quantized else "float"), bias, y]
        if quantized:
            args.append(Scratch(nm_scratch_bytes(rows, k, n, nm.n)))
        return Lowered([Call(f"ec_fully_connected_nm_{suffix}", args, node=name, macs=macs)]), c.note
    return None, c.note


def block_fast(w: np.ndarray, gs: GatherStage) -> bool:
    """Twin of ec_fast_ok for the block-sparse kernel with the output stage constant_rows gives it."""
    from .ops.packing import fast_output_ok  # ops imports this module

    return fast_output_ok(gs.bias, gs.shift, True, (w.shape[1] + 3) // 4 * 4)


def lower_block_fc(name: str, rows: int, w: np.ndarray, stage: Struct, bias: Array, gs: GatherStage,
                   q: Stage | None, x: Buf, y: Buf, macs: int) -> Lowered:
    """The block-sparse kernel call (ec_fully_connected_block_sparse_s8) for int8 weights w [N][K]; with q (the
    layer's Stage) rows without nonzero weights get constant_rows' exact constant stage, so that a layer whose other
    rows have negative shifts takes the fast output stage."""
    if q is not None:
        stage = replace(q, mult=gs.mult.astype(np.int32), shift=gs.shift.astype(np.int32)).struct(name)
        bias = Array(bias.name, gs.bias.astype(np.int32), "int32_t")
    args: list[Arg] = [rows, w.shape[1], w.shape[0], stage, x, Array(f"w_{name}", encode_blocks(w).stream, "int32_t"),
                       bias, y, Scratch(block_scratch_bytes(w.shape[1])), int(block_fast(w, gs))]
    return Lowered([Call("ec_fully_connected_block_sparse_s8", args, node=name, macs=macs)])


def lower_gather_fc(name: str, rows: int, w: np.ndarray, stage: Struct, gs: GatherStage, x: Buf, y: Buf,
                    macs: int) -> Lowered:
    """The row-group kernel call (ec_fully_connected_sparse_gather_s8) for int8 weights w [N][K], the layer's
    ec_quant_s8 struct (zero points, activation range) and its output stage as constant_rows gives it."""
    f = stage.fields
    fast = gather_fast(w, gs.bias, gs.shift)
    gt = encode_gather(w, gs.bias, int(f["in_zp"]), gs.mult, gs.shift, fast)
    args: list[Arg] = [rows, w.shape[1], w.shape[0], gt.stream.size, int(fast), f["out_zp"],
                       f["act_min"], f["act_max"], x, Array(f"w_{name}", gt.stream, "int32_t"), y]
    return Lowered([Call("ec_fully_connected_sparse_gather_s8", args, node=name, macs=macs)])


def lower_sparse_conv(name: str, params: Struct, w: np.ndarray, stage: Struct, bias: Array, x: Buf, y: Buf,
                      target: Target, macs: int, mode: str = "auto") -> tuple[Lowered | None, str]:
    """The sparse kernel call for a convolution with one group, weights [out_c][k_h][k_w][in_c] (int8 or float32),
    or None when the dense kernel is cheaper; and the cost model's note."""
    quantized = w.dtype == np.int8
    p = params.fields
    pixels = p["batch"] * p["out_h"] * p["out_w"]
    w2 = w.reshape(w.shape[0], -1)
    n, k = w2.shape
    if mode == "dense" or (mode == "auto" and np.all(w2 != 0)):
        return None, ""
    c = choose(w2, pixels, quantized, target, k_dsp=w.shape[1] * ((w.shape[2] * w.shape[3] + 3) // 4 * 4), mode=mode)
    suffix = "s8" if quantized else "f32"
    if c.kind == "rows":
        sp = c.rows
        if quantized:
            weights: list[Arg] = [Array(f"w_{name}", sp.blocks_s8(), "uint8_t")]
            scratch = sparse_scratch_bytes(pixels, k, n)
        else:
            weights = [Array(f"wi_{name}", sp.index, "uint8_t"), Array(f"w_{name}", sp.values, "float")]
            scratch = conv_sparse_f32_scratch_bytes(k)
        args = [params, stage, x, Array(f"wc_{name}", sp.counts, "uint8_t"), *weights, bias, y, Scratch(scratch)]
        return Lowered([Call(f"ec_conv2d_sparse_{suffix}", args, node=name, macs=macs)]), c.note
    if c.kind == "nm":
        nm = c.nm
        scratch = nm_scratch_bytes(pixels, k, n, nm.n) if quantized else conv_nm_f32_scratch_bytes(k, nm.n)
        args = [params, nm.n, stage, x, Array(f"wi_{name}", nm.index, "uint8_t"),
                Array(f"w_{name}", nm.values, "int8_t" if quantized else "float"), bias, y, Scratch(scratch)]
        return Lowered([Call(f"ec_conv2d_nm_{suffix}", args, node=name, macs=macs)]), c.note
    return None, c.note
