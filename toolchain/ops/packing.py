"""Weight and activation layouts of the kernels (build-time packing) and the Python twins of the C kernels'
_get_buffer_size functions: the s8/s16 matrix kernels (edgec_gemm.h, edgec_gemm_s16.h), depthwise (edgec_depthwise.h,
edgec.h), int4 (edgec_lowbit.h), Helium (edgec_mve.h) and NEON (edgec_neon.h, edgec_neon_f32.h). The sparse formats
have their own module (toolchain/sparse.py)."""

from __future__ import annotations

import numpy as np

from ..calls import Raw, Scratch


def s4_order(length: int) -> np.ndarray:
    """The element of a row held in each nibble, in nibble order (byte k / 2, low nibble first), for rows in
    groups of 8 (runtime_c/include/edgec_s4.h): byte j of a group holds elements j and j + 4; the tail in pairs."""
    full = length // 8 * 8
    groups = (np.arange(full // 8)[:, None] * 8 + np.array([0, 4, 1, 5, 2, 6, 3, 7])[None, :]).reshape(-1)
    return np.concatenate([groups, np.arange(full, length)]).astype(np.int64)


def pack_s4(w: np.ndarray, grouped: bool = True) -> np.ndarray:
    """[R][L] int values in [-8, 7] -> R rows of (L + 1) / 2 bytes, each row starting on a byte (edgec_lowbit.h):
    nibble order s4_order(L) (grouped, for ec_dot_s4) or element order (element k in byte k / 2, low nibble
    first: depthwise)."""
    r, n = w.shape
    if grouped:
        w = w[:, s4_order(n)]
    rows = np.zeros((r, n + n % 2), np.uint8)
    rows[:, :n] = w.astype(np.int64) & 15
    return (rows[:, 0::2] | (rows[:, 1::2] << 4)).astype(np.uint8).reshape(-1)


def unpack_s4(packed: np.ndarray, rows: int, length: int, grouped: bool = True) -> np.ndarray:
    """The inverse of pack_s4: [rows][length] int8."""
    b = packed.reshape(rows, -1).astype(np.int64)
    nib = np.stack([b & 15, b >> 4], axis=2).reshape(rows, -1)[:, :length]
    vals = (nib - ((nib & 8) << 1)).astype(np.int8)
    if not grouped:
        return vals
    out = np.empty_like(vals)
    out[:, s4_order(length)] = vals
    return out


def ceil4(k: int) -> int:
    return (k + 3) // 4 * 4


def pack_matrix_s8(w: np.ndarray) -> np.ndarray:
    """[N][K] int8 -> the packed layout of runtime_c/include/edgec_gemm.h: K padded with zeros to a multiple of 4,
    N to an even count, rows in pairs interleaved per group of 4 columns."""
    n, k = w.shape
    n2, k4 = n + n % 2, ceil4(k)
    p = np.zeros((n2, k4), np.int8)
    p[:n, :k] = w
    return p.reshape(n2 // 2, 2, k4 // 4, 4).transpose(0, 2, 1, 3).reshape(-1)


def pack_matrix_s16(w: np.ndarray) -> np.ndarray:
    """[N][K] int8 -> the packed layout of the 16x8 kernels (runtime_c/include/edgec_gemm_s16.h): pack_matrix_s8's
    with the columns of every group of 4 in the order (0, 2, 1, 3), so that SXTB16 yields weight pairs in the order
    of the int16 activations."""
    k4 = ceil4(w.shape[1])
    padded = np.zeros((w.shape[0], k4), np.int8)
    padded[:, :w.shape[1]] = w
    return pack_matrix_s8(padded[:, np.arange(k4).reshape(-1, 4)[:, [0, 2, 1, 3]].reshape(-1)])


def conv_im2col_s16_scratch_bytes(p: dict) -> int:
    """Twin of ec_conv2d_im2col_s16_get_buffer_size: two int16 columns of k_h * k_w * in_c rounded up to 4."""
    return 2 * 2 * ceil4(p["k_h"] * p["k_w"] * p["in_c"])


def depthwise_s16_scratch_bytes(p: dict) -> int:
    """Twin of ec_depthwise_conv2d_packed_s16_get_buffer_size: a row of in_c int16 zeros, rounded up to 4 bytes."""
    return (2 * p["in_c"] + 3) // 4 * 4


def conv_im2col_scratch_bytes(p: dict) -> int:
    """Twin of ec_conv2d_im2col_s8_get_buffer_size: two int16 columns of k_h rows of k_w * in_c rounded up to 4."""
    return 2 * 2 * p["k_h"] * ceil4(p["k_w"] * p["in_c"])


def im2col_rows(w: np.ndarray) -> np.ndarray:
    """[O][k_h][k_w][I] -> [O][k_h * L4]: every kernel row padded with zeros to a multiple of 4 (the matrix of
    ec_conv2d_im2col_s8)."""
    o, kh, kw, i = w.shape
    rows = np.zeros((o, kh, ceil4(kw * i)), w.dtype)
    rows[:, :, :kw * i] = w.reshape(o, kh, kw * i)
    return rows.reshape(o, -1)


def fc_packed_scratch_bytes(rows: int, depth: int) -> int:
    """Twin of ec_fully_connected_packed_s8_get_buffer_size: one int16 column (two when rows >= 2) of depth
    rounded up to 4."""
    return (2 if rows >= 2 else 1) * 2 * ceil4(depth)


def pack_fc_block4_s8(w: np.ndarray) -> np.ndarray:
    """[N][K] int8 -> the layout of ec_fully_connected_block4_s8: K padded with zeros to a multiple of 8; the first
    N // 4 * 4 rows in blocks of 4, interleaved per group of 4 columns (the 4 bytes of each row in turn); then the
    N % 4 remaining rows one after the other."""
    n, k = w.shape
    n4, k8 = n // 4 * 4, ceil8(k)
    p = np.zeros((n, k8), np.int8)
    p[:, :k] = w
    blocks = p[:n4].reshape(n4 // 4, 4, k8 // 4, 4).transpose(0, 2, 1, 3).reshape(-1)
    return np.concatenate([blocks, p[n4:].reshape(-1)])


def fast_output_ok(bias: np.ndarray, shift: np.ndarray, per_channel: bool, k: int) -> bool:
    """Twin of ec_fast_ok (edgec_dsp.h) for a bias array: every |bias + k products of (x - zp) and a weight| below
    2^30 and every shift negative, so that the one-SMMUL output stage (ec_requant_fast) is exact."""
    limit = 2**30 - k * 256 * 128
    b = np.asarray(bias, np.int64)
    return bool(limit > 0 and per_channel and (np.asarray(shift) < 0).all() and (np.abs(b) < limit).all())


def fc_block4_scratch_bytes(depth: int) -> int:
    """Twin of ec_fully_connected_block4_s8_get_buffer_size: one int16 column of depth rounded up to 8."""
    return 2 * ceil8(depth)


def conv_1x1_scratch_bytes(p: dict) -> int:
    """Twin of ec_conv2d_1x1_s8_get_buffer_size."""
    return 2 * 2 * ceil4(p["in_c"])


def pack_depthwise_s8(w: np.ndarray) -> np.ndarray:
    """[k_h][k_w][C] int8 -> packed int16 of runtime_c/include/edgec_depthwise.h: taps padded to an even count,
    channels to a multiple of 4; for every group of 4 channels and pair of taps, one (tap 2p, tap 2p + 1) int16 pair
    per channel."""
    kh, kw, c = w.shape
    t = kh * kw
    t2, c4 = t + t % 2, ceil4(c)
    p = np.zeros((t2, c4), np.int16)
    p[:t, :c] = w.reshape(t, c)
    return p.reshape(t2 // 2, 2, c4 // 4, 4).transpose(2, 0, 3, 1).reshape(-1)


def pack_depthwise_3x3_s8(w: np.ndarray) -> np.ndarray:
    """[3][3][C] int8 -> packed int16 of ec_depthwise_conv2d_3x3_s8 (edgec.h): channels padded to a multiple of 4;
    per group of 4 channels and kernel column, the (row 0, row 1) pair of each channel, then row 2 of channels
    (0, 2) and (1, 3)."""
    c4 = ceil4(w.shape[2])
    p = np.zeros((3, 3, c4), np.int16)
    p[:, :, :w.shape[2]] = w
    p = p.reshape(3, 3, c4 // 4, 4).transpose(2, 1, 0, 3)  # [g][kx][ky][j]
    pairs = p[:, :, :2, :].transpose(0, 1, 3, 2).reshape(c4 // 4, 3, 8)  # (r0, r1) per channel
    row2 = p[:, :, 2, :][:, :, [0, 2, 1, 3]]  # (c0, c2), (c1, c3)
    return np.concatenate([pairs, row2], axis=2).reshape(-1)


def depthwise_3x3_scratch_bytes(p: dict) -> int:
    """Twin of ec_depthwise_conv2d_3x3_s8_get_buffer_size: 6 words per group of 4 channels and input column."""
    return (p["in_c"] // 4) * ((p["out_w"] - 1) * p["stride_w"] + 3) * 6 * 4


def pack_depthwise_3x3_planar_s8(w: np.ndarray) -> np.ndarray:
    """[3][3][C] int8 -> packed int16 of ec_depthwise_conv2d_3x3_planar_s8 (edgec.h): per channel and kernel row r,
    (w[r][0], w[r][1]) and (w[r][1], w[r][2]), doubled (the kernel accumulates 2 acc, the operand of its SMMUL)."""
    p = w.astype(np.int16).transpose(2, 0, 1) * 2  # [C][ky][kx]
    return p[:, :, [0, 1, 1, 2]].reshape(-1)


def depthwise_3x3_planar_scratch_bytes(p: dict) -> int:
    """Twin of ec_depthwise_conv2d_3x3_planar_s8_get_buffer_size: 3 rows of in_c int16 planes of
    (out_w - 1) * stride_w + 3 columns (the scratch of ec_depthwise_conv2d_3x3_s8 when in_c is a multiple of 4)."""
    return 6 * p["in_c"] * ((p["out_w"] - 1) * p["stride_w"] + 3)


def fold_input_zp(bias: np.ndarray, w: np.ndarray, in_zp: int) -> np.ndarray:
    """bias - in_zp * (sum of each output channel's weights; w [N][...]): the bias of the Helium and NEON kernels,
    which multiply the raw inputs (runtime_c/include/edgec_mve.h, edgec_neon.h). Wrapped to int32: the kernels'
    int32 sums then equal bias + sum((x - in_zp) * w) modulo 2^32, exactly as every other C kernel's (a bias
    clipped at the int32 limit by quantization stays exact)."""
    b = bias.astype(np.int64) - in_zp * w.astype(np.int64).reshape(w.shape[0], -1).sum(axis=1)
    return ((b + 2**31) % 2**32 - 2**31).astype(np.int32)


def pair_layout(a: np.ndarray, pad: int = 0) -> np.ndarray:
    """Per-channel int32 values -> the pair layout of the Helium matrix kernels (edgec_mve.h): (c, c + 1, c, c + 1)
    for every pair of channels, an odd count padded with `pad`."""
    p = np.full(len(a) + len(a) % 2, pad, np.int32)
    p[:len(a)] = a
    return np.tile(p.reshape(-1, 2), (1, 2)).reshape(-1)


def quad_layout(a: np.ndarray, n: int, pad: int = 0) -> np.ndarray:
    """Per-channel int32 values (or one for all n channels) -> the quad layout of the Helium convolution kernels
    (edgec_mve_gemm.h): one per channel, padded with `pad` to a multiple of 4 channels."""
    p = np.full(-(-n // 4) * 4, pad, np.int32)
    p[:n] = np.broadcast_to(a, (n,))
    return p


def pair_blocks16(w: np.ndarray) -> np.ndarray:
    """[N][K] int8 -> the weights of the Helium convolution kernels (edgec_mve_gemm.h ec_mve_dot_pairs): N rounded up
    to even and K to a multiple of 16 with zeros, then per pair of rows its blocks of 16 from the last to the first,
    each block the pair's two rows of 16 bytes one after the other (one pointer walks them in the kernel's order)."""
    n, k = w.shape
    p = np.pad(w, ((0, n % 2), (0, -k % 16)))
    blocks = p.reshape(p.shape[0] // 2, 2, -1, 16)  # [pair][channel][block][16]
    return np.ascontiguousarray(blocks[:, :, ::-1].transpose(0, 2, 1, 3)).reshape(-1)


def conv_im2col_mve_scratch_bytes(p: dict) -> int:
    """Twin of ec_conv2d_im2col_mve_s8_get_buffer_size: 3 int8 columns of k_h * k_w * in_c rounded up to 16."""
    return 3 * -(-p["k_h"] * p["k_w"] * p["in_c"] // 16) * 16


# ec_conv2d_gather_mve_s8 / ec_conv2d_gather_s8: input channels up to which they replace the im2col kernels. Measured
# (instructions of conv_1, im2col -> gather): cortex-m55 dscnn_kws (1 channel, 10x4) 143,938 -> 106,056, resnet8
# (3 channels, 3x3) 306,573 -> 233,262, mobilenet_vww96 (3 channels, 3x3 stride 2) 507,644 -> 405,659; cortex-m7
# 605,814 -> 510,525, 1,328,862 -> 938,638, 1,991,425 -> 1,278,899.
GATHER_MAX_IN_C = 4


def conv_gather_band(p: dict) -> tuple[int, int]:
    """The band of ec_conv2d_gather_mve_s8: padded input rows a window spans, bytes per row."""
    need = (p["out_w"] - 1) * p["stride_w"] + (p["k_w"] - 1) * p["dil_w"] + 1
    return (p["k_h"] - 1) * p["dil_h"] + 1, max(need, p["pad_left"] + p["in_w"]) * p["in_c"]


def conv_gather_mve_scratch_bytes(p: dict) -> int:
    """Twin of ec_conv2d_gather_mve_s8_get_buffer_size: 3 columns, the offsets (uint16 and uint8) of k_h * k_w * in_c
    rounded up to 16 taps, then the band, rounded up to 16 bytes."""
    rows, row_bytes = conv_gather_band(p)
    return 6 * -(-p["k_h"] * p["k_w"] * p["in_c"] // 16) * 16 + -(-rows * row_bytes // 16) * 16


def conv_gather_scratch_bytes(p: dict) -> int:
    """Twin of ec_conv2d_gather_s8_get_buffer_size: 2 int16 columns of k4 = k_h * k_w * in_c rounded up to 4, the
    int8 row (k4 + 4 bytes), the band and 4 bytes after it."""
    rows, row_bytes = conv_gather_band(p)
    k4 = ceil4(p["k_h"] * p["k_w"] * p["in_c"])
    return 4 * k4 + k4 + 4 + rows * row_bytes + 4


def conv_gather_fits(p: dict) -> bool:
    """Whether the gather kernels (ec_conv2d_gather_mve_s8 on Helium, ec_conv2d_gather_s8 on the DSP extension) take
    the layer: a first layer (at most GATHER_MAX_IN_C input channels, not 1x1) whose window offsets within the band
    fit in 16 bits (the Helium gathers' offsets)."""
    rows, row_bytes = conv_gather_band(p)
    top = (rows - 1) * row_bytes + (p["k_w"] - 1) * p["dil_w"] * p["in_c"] + p["in_c"] - 1
    return p["in_c"] <= GATHER_MAX_IN_C and p["k_h"] * p["k_w"] > 1 and top < 1 << 16


# Channel (within a group of 8) of entry 4 v + l of the Helium depthwise kernel's bias, mult and shift arrays.
MVE_DW_LANES = np.array([2 * lane + v for v in range(2) for lane in range(4)])


def pack_depthwise_mve(w: np.ndarray, bias: np.ndarray, mult: np.ndarray, shift: np.ndarray,
                       mult_ch: int) -> tuple[np.ndarray, ...]:
    """[k_h][k_w][C] int8 weights and per-channel int32 arrays -> the layouts of ec_depthwise_conv2d_mve_s8:
    weights [C8 / 8][taps][8], bias/mult/shift in its lane order, and (multiplier above 1) the input-channel
    offsets."""
    kh, kw, c = w.shape
    c8 = (c + 7) // 8 * 8
    wp = np.zeros((kh * kw, c8), np.int8)
    wp[:, :c] = w.reshape(kh * kw, c)
    wp = wp.reshape(kh * kw, c8 // 8, 8).transpose(1, 0, 2)
    order = (np.arange(c8) // 8 * 8).reshape(-1, 8)[:, :1] + MVE_DW_LANES  # channel of each entry

    def lanes(a: np.ndarray, pad: int = 0) -> np.ndarray:
        full = np.full(c8, pad, np.int32)
        full[:c] = a
        return full[order.reshape(-1)]

    oc = np.arange(c8)
    offsets = np.where(oc < c, oc // mult_ch - (oc // 8 * 8) // mult_ch, 0).astype(np.uint8)
    # padded channels: shift -1, so that "every shift is negative" (the fast output stage) still holds
    return wp, lanes(bias), lanes(mult), lanes(shift, -1), offsets


DW_PLANE_ROW = 62  # EC_DW_ROW of ec_depthwise_conv2d_plane_mve_s8: bytes per row of its input plane
DW_PLANE_SUMS = 1024  # EC_DW_SUMS_BYTES: its int32 sums of several output rows


def depthwise_plane_mve_cost(p: dict, transposed: bool) -> int | None:
    """Instructions ec_depthwise_conv2d_plane_mve_s8 is expected to take (fitted on cortex-m55 to its measured cost
    on the depthwise layers of dscnn_kws and mobilenet_vww96, within 1.3%: per output channel 300, 32 per group of 4
    outputs, 16 per output row, 32 per input row copied into the plane per column phase), or None when the layer does
    not fit it: 3x3 without dilation, stride 1 or 2 along the vectors, plane rows of at most DW_PLANE_ROW bytes."""
    if (p["k_h"], p["k_w"], p["dil_h"], p["dil_w"]) != (3, 3, 1, 1):
        return None
    t, x = ("w", "h") if transposed else ("h", "w")
    oh, ow, ih, iw = p[f"out_{t}"], p[f"out_{x}"], p[f"in_{t}"], p[f"in_{x}"]
    sw, pl = p[f"stride_{x}"], p["pad_top" if transposed else "pad_left"]
    groups = (ow + 3) // 4
    if sw not in (1, 2) or max(pl + iw, (4 * groups - 1) * sw + 3) > DW_PLANE_ROW:
        return None
    return p["batch"] * p["out_c"] * (300 + oh * (32 * groups + 16) + 32 * ih * sw)


def depthwise_mve_cost(p: dict) -> int:
    """Instructions ec_depthwise_conv2d_mve_s8 (channel-vectorized, 8 channels per vector) takes on cortex-m55, 3x3:
    its measured 1.66-3.20 instructions/MAC follow 1.65 + 12 / out_c within 0.1 (the 8-channel layers half fill
    its vectors)."""
    macs = p["batch"] * p["out_h"] * p["out_w"] * p["out_c"] * p["k_h"] * p["k_w"]
    return int(macs * (1.65 + 12 / p["out_c"]))


def depthwise_plane_mve_scratch_bytes(p: dict, transposed: bool) -> int:
    """Twin of ec_depthwise_conv2d_plane_mve_s8_get_buffer_size: the padded plane, 16-byte aligned, then the int32
    sums of as many output rows (rounded up to 4 outputs) as fit in DW_PLANE_SUMS bytes, at least one."""
    t, x = ("w", "h") if transposed else ("h", "w")
    rows = max((p[f"out_{t}"] - 1) * p[f"stride_{t}"] + 3, p["pad_left" if transposed else "pad_top"] + p[f"in_{t}"])
    groups = (p[f"out_{x}"] + 3) // 4
    chunk = min(max(DW_PLANE_SUMS // (16 * groups), 1), p[f"out_{t}"])
    return (rows * DW_PLANE_ROW + 15) // 16 * 16 + chunk * 16 * groups


def scratch_arg(nbytes: int) -> Scratch | Raw:
    """A kernel's scratch buffer; NULL when it needs none."""
    return Scratch(nbytes) if nbytes else Raw("NULL")


# ---- NEON (runtime_c/include/edgec_neon.h, edgec_neon_f32.h) ------------------------------------------------------
NEON_COLS = 4  # columns of the int8 matrix kernels' scratch (EC_NEON_COLS on AArch64; ARMv7 uses 2 of them)
NEON_F32_ROWS = 4  # EC_NEON_F32_ROWS


def ceil8(k: int) -> int:
    return (k + 7) // 8 * 8


def pack_matrix_neon(w: np.ndarray) -> np.ndarray:
    """[N][K] int8 -> the NEON matrix layout: K padded with zeros to a multiple of 8, N with zero rows to a multiple
    of 4, row-major."""
    n, k = w.shape
    p = np.zeros(((n + 3) // 4 * 4, ceil8(k)), np.int8)
    p[:n, :k] = w
    return p.reshape(-1)


def neon_tables_bytes(out_c: int) -> int:
    """Twin of ec_neon_tables_bytes: the output-stage tables (bias, multiplier, shift; out_c rounded up to 4)."""
    return 12 * ceil4(out_c)


def neon_conv_1x1_scratch_bytes(p: dict) -> int:
    """Twin of ec_conv2d_1x1_neon_s8_get_buffer_size: NEON_COLS columns when in_c is no multiple of 8, then the
    output-stage tables."""
    return (NEON_COLS * ceil8(p["in_c"]) if p["in_c"] % 8 else 0) + neon_tables_bytes(p["out_c"])


def neon_conv_im2col_scratch_bytes(p: dict) -> int:
    """Twin of ec_conv2d_im2col_neon_s8_get_buffer_size: NEON_COLS columns and 16 spare bytes for whole-vector
    copies, then the output-stage tables."""
    return NEON_COLS * ceil8(p["k_h"] * p["k_w"] * p["in_c"]) + 16 + neon_tables_bytes(p["out_c"])


def neon_fc_scratch_bytes(rows: int, depth: int) -> int:
    """Twin of ec_fully_connected_neon_s8_get_buffer_size."""
    return min(rows, NEON_COLS) * ceil8(depth) if depth % 8 else 0


def neon_depthwise_scratch_bytes(p: dict) -> int:
    """Twin of ec_depthwise_conv2d_3x3_neon_s8_get_buffer_size and ec_depthwise_conv2d_neon_s8_get_buffer_size:
    a row of in_c zero-point bytes, rounded up to 4."""
    return ceil4(p["in_c"])


def pack_lanes_neon(w: np.ndarray) -> np.ndarray:
    """[N][K] int8 -> ec_conv2d_lanes_neon_s8's int16 layout: N padded to N8 (a multiple of 8) and K to K8 with zeros,
    blocks of 16 output channels (a last one of 8 when N8 leaves 8), each [K8][width]."""
    n, k = w.shape
    n8, k8 = ceil8(n), ceil8(k)
    full = np.zeros((n8, k8), np.int16)
    full[:n, :k] = w
    return np.concatenate([full[o:o + 16].T.reshape(-1) for o in range(0, n8, 16)])


def neon_conv_lanes_scratch_bytes(p: dict) -> int:
    """Twin of ec_conv2d_lanes_neon_s8_get_buffer_size: two columns of K8 and 8 spare bytes, each rounded up to 16,
    then the bias, multiplier and shift of every output channel (out_c rounded up to 8) as int32."""
    return 2 * ((ceil8(p["k_h"] * p["k_w"] * p["in_c"]) + 8 + 15) // 16 * 16) + 12 * ceil8(p["out_c"])


def pack_f32(w: np.ndarray) -> np.ndarray:
    """[N][K] float -> blocks of 4 output channels, [N4 / 4][K][4] (N4 = N rounded up to 4, extra channels zero)."""
    n, k = w.shape
    n4 = ceil4(n)
    p = np.zeros((n4, k), np.float32)
    p[:n] = w
    return np.ascontiguousarray(p.reshape(n4 // 4, 4, k).transpose(0, 2, 1)).reshape(-1)


def pad_bias_f32(bias: np.ndarray) -> np.ndarray:
    """The bias padded with zeros to a multiple of 4 channels."""
    b = np.zeros(ceil4(len(bias)), np.float32)
    b[:len(bias)] = bias
    return b


def neon_conv_im2col_f32_scratch_bytes(p: dict) -> int:
    """Twin of ec_conv2d_im2col_neon_f32_get_buffer_size: NEON_F32_ROWS columns of k_h * k_w * in_c floats."""
    return NEON_F32_ROWS * p["k_h"] * p["k_w"] * p["in_c"] * 4
