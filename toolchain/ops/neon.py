"""The kernels for NEON targets (Cortex-A53, Cortex-A7; runtime_c/include/edgec_neon.h, edgec_neon_f32.h): the
choice among them (their weight layouts, folded biases and scratch twins are in packing.py).

These kernels multiply the stored int8 inputs, not x - in_zp, so the zero point's share of every output,
in_zp * (sum of the channel's weights), is taken out of the bias here; padding reads in_zp, whose products the
folded bias cancels. Two products of an int8 input and a weight must fit int16, so weights lie in [-127, 127]
(edgec's quantizer clips them there); a layer with a -128 weight keeps the portable kernel."""

from __future__ import annotations

import numpy as np

from ..calls import Array, Buf, Call, Lowered, Scratch, Struct
from .packing import (
    fold_input_zp,
    neon_conv_1x1_scratch_bytes,
    neon_conv_im2col_f32_scratch_bytes,
    neon_conv_im2col_scratch_bytes,
    neon_conv_lanes_scratch_bytes,
    neon_depthwise_scratch_bytes,
    neon_fc_scratch_bytes,
    pack_f32,
    pack_lanes_neon,
    pack_matrix_neon,
    pad_bias_f32,
    scratch_arg,
)

MAX_TAPS = 64  # EC_DW_NEON_MAX_TAPS
# ec_conv2d_lanes_neon_s8 takes 1x1 layers with dot products (in_c) up to LANES_MAX_K long. Measured under
# qemu-aarch64 -cpu cortex-a53 (qemu-arm -cpu cortex-a7 in brackets), by-lane against the matrix kernel: 8 -> 16 at
# 48x48 258,647 / 419,287 (322,077 / 580,063); 16 -> 32 at 24x24 160,507 / 215,595; 32 -> 32 at 24x24 254,971 /
# 287,019 (327,117 / 380,895); 64 -> 64 at 25x5 191,677 / 175,683. Larger kernels stay with the matrix kernel:
# dscnn_kws's 10x4 first layer (1 -> 64) 183,141 / 182,688, 3x3 3 -> 16 at 32x32 400,020 / 376,116.
LANES_MAX_K = 32
# On AArch64 (target feature "a64", compiled with -fno-schedule-insns) the matrix kernel got cheaper: by-lane only
# for unstrided layers with K up to 16. Measured under qemu-aarch64 -cpu cortex-a53, by-lane / matrix: 16 -> 32 at
# 24x24 165,052 / 178,759, 32 -> 32 at 24x24 259,516 / 247,879, resnet8's stride-2 16 -> 32 at 16x16 88,177 /
# 82,701 and 32 -> 64 at 8x8 60,729 / 53,989.
LANES_MAX_K_A64 = 16


def fits(w: np.ndarray) -> bool:
    """Whether the NEON kernels can take these int8 weights."""
    return w.size == 0 or int(w.min()) >= -127


def lower_conv(name: str, q: dict, params: Struct, stage: Struct, x: Buf, y: Buf, depthwise: bool,
               padded: bool, macs: int, a64: bool = False) -> Lowered | None:
    """A NEON kernel for an int8 convolution (q: the Conv's integer parameters, weights [O][I/g][k...]), or None
    when none fits (groups other than 1 or in_c, a channel multiplier, a -128 weight, more than MAX_TAPS taps);
    a64: an AArch64 target (its own by-lane crossover)."""
    p, w = params.fields, q["w"]
    if not fits(w):
        return None
    taps = p["k_h"] * p["k_w"]
    if depthwise:
        if p["out_c"] != p["in_c"] or taps > MAX_TAPS:
            return None
        wd = w.reshape(p["out_c"], taps).T  # [taps][C], ec_depthwise_conv2d_s8's layout
        three = (p["k_h"], p["k_w"], p["dil_h"], p["dil_w"]) == (3, 3, 1, 1)
        kernel = "ec_depthwise_conv2d_3x3_neon_s8" if three else "ec_depthwise_conv2d_neon_s8"
        args = [Array(f"w_{name}", np.ascontiguousarray(wd), "int8_t"),
                Array(f"b_{name}", fold_input_zp(q["bias"], wd.T, q["in_zp"]), "int32_t"), y,
                scratch_arg(neon_depthwise_scratch_bytes(p))]
        return Lowered([Call(kernel, [params, stage, x, *args], node=name, macs=macs)])
    if p["groups"] != 1:
        return None
    wm = w.reshape(w.shape[0], w.shape[1], p["k_h"], p["k_w"]).transpose(0, 2, 3, 1).reshape(w.shape[0], -1)
    if lanes := lower_conv_lanes(name, q, params, stage, x, y, wm, macs, a64):
        return lanes
    if taps == 1 and not padded:
        kernel, scratch = "ec_conv2d_1x1_neon_s8", neon_conv_1x1_scratch_bytes(p)
    else:
        kernel, scratch = "ec_conv2d_im2col_neon_s8", neon_conv_im2col_scratch_bytes(p)
    args = [Array(f"w_{name}", pack_matrix_neon(wm), "int8_t"),
            Array(f"b_{name}", fold_input_zp(q["bias"], wm, q["in_zp"]), "int32_t"), y, scratch_arg(scratch)]
    return Lowered([Call(kernel, [params, stage, x, *args], node=name, macs=macs)])


def lower_conv_lanes(name: str, q: dict, params: Struct, stage: Struct, x: Buf, y: Buf, wm: np.ndarray,
                     macs: int, a64: bool = False) -> Lowered | None:
    """ec_conv2d_lanes_neon_s8 for a 1x1 convolution with one group and a short dot product (wm [O][K], K at most
    LANES_MAX_K; on AArch64 at most LANES_MAX_K_A64 and stride 1), or None. Its int16 weights take twice the bytes
    of the matrix layout's. (The kernel takes any geometry; larger kernels measured no faster than the matrix
    kernel's.)"""
    p = params.fields
    strided = p["stride_h"] * p["stride_w"] != 1
    if p["k_h"] * p["k_w"] != 1 or wm.shape[1] > (LANES_MAX_K_A64 if a64 else LANES_MAX_K) or (a64 and strided):
        return None
    args = [Array(f"w_{name}", pack_lanes_neon(wm), "int16_t"),
            Array(f"b_{name}", fold_input_zp(q["bias"], wm, q["in_zp"]), "int32_t"), y,
            scratch_arg(neon_conv_lanes_scratch_bytes(params.fields))]
    return Lowered([Call("ec_conv2d_lanes_neon_s8", [params, stage, x, *args], node=name, macs=macs)])


def lower_fc(name: str, rows: int, w: np.ndarray, q: dict, stage: Struct, x: Buf, y: Buf, macs: int) -> Lowered | None:
    """ec_fully_connected_neon_s8 for y = x @ w.T + bias over `rows` rows (w [N][K] int8), or None for a -128
    weight."""
    if not fits(w):
        return None
    n, k = w.shape
    call = Call("ec_fully_connected_neon_s8",
                [rows, k, n, stage, x, Array(f"w_{name}", pack_matrix_neon(w), "int8_t"),
                 Array(f"b_{name}", fold_input_zp(q["bias"], w, q["in_zp"]), "int32_t"), y,
                 scratch_arg(neon_fc_scratch_bytes(rows, k))], node=name, macs=macs)
    return Lowered([call])


def lower_conv_f32(name: str, w: np.ndarray, bias: np.ndarray, params: Struct, stage: Struct, x: Buf, y: Buf,
                   padded: bool, depthwise: bool, macs: int) -> Lowered | None:
    """A NEON kernel for a float convolution with one group or depthwise with channel multiplier 1 (w [O][I/g][k...]),
    or None for other grouped ones."""
    p = params.fields
    if depthwise and p["out_c"] == p["in_c"]:
        wd = w.reshape(p["out_c"], p["k_h"], p["k_w"]).transpose(1, 2, 0)  # [kh][kw][C], ec_depthwise_conv2d_f32's
        return Lowered([Call("ec_depthwise_conv2d_neon_f32",
                             [params, stage, x, Array(f"w_{name}", np.ascontiguousarray(wd), "float"),
                              Array(f"b_{name}", bias.astype(np.float32), "float"), y], node=name, macs=macs)])
    if p["groups"] != 1:
        return None
    wm = w.reshape(w.shape[0], w.shape[1], p["k_h"], p["k_w"]).transpose(0, 2, 3, 1).reshape(w.shape[0], -1)
    args = [params, stage, x, Array(f"w_{name}", pack_f32(wm), "float"),
            Array(f"b_{name}", pad_bias_f32(bias), "float"), y]
    if p["k_h"] * p["k_w"] == 1 and not padded:
        return Lowered([Call("ec_conv2d_1x1_neon_f32", args, node=name, macs=macs)])
    return Lowered([Call("ec_conv2d_im2col_neon_f32", args + [Scratch(neon_conv_im2col_f32_scratch_bytes(p))],
                         node=name, macs=macs)])


def lower_fc_f32(name: str, rows: int, w: np.ndarray, bias: np.ndarray, stage: Struct, x: Buf, y: Buf,
                 macs: int) -> Lowered:
    """ec_fully_connected_neon_f32 for y = x @ w.T + bias over `rows` rows (w [N][K] float)."""
    n, k = w.shape
    return Lowered([Call("ec_fully_connected_neon_f32",
                         [rows, k, n, stage, x, Array(f"w_{name}", pack_f32(w), "float"),
                          Array(f"b_{name}", pad_bias_f32(bias), "float"), y], node=name, macs=macs)])
