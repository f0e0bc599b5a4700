"""Conv: 1-D and 2-D, strides, pads (auto_pad too), dilations, groups (depthwise with any channel multiplier)."""

from __future__ import annotations

import math

import numpy as np

from ..calls import Array, Buf, Call, Lowered, Raw, Scratch, Struct
from ..errors import EdgecError
from ..ir import Graph, Node
from ..sparse import lower_sparse_conv, lower_sparse_fc
from ..target import Target
from . import neon, tflm
from .base import (
    MIN_SCALE,
    Q7_SHIFT_RANGE,
    QRANGE,
    Op,
    act_range,
    apply_act,
    c_float,
    check_act,
    check_io,
    frac_bits,
    is_int,
    nctype,
    pow2_bits,
    qparams,
    quant_bounds,
    quantize_multiplier,
    reduce_multiplier,
    register,
    requantize,
    requantize64,
    shift_round,
)
from .geometry import check_window, conv_nd, conv_params, spatial_attrs, windows

INT4_MAX = 7  # int4 weights are symmetric in [-7, 7]
INT32_MAX = 2**31 - 1
BIAS64_LIMIT = 2**40  # int16 layers: |bias| bound, so that bias + accumulator stays below 2^47 (ec_requantize_s64)


def weight_scales(w: np.ndarray, qmax: int = 127) -> np.ndarray:
    """Symmetric per-output-channel scales for weights in [-qmax, qmax] (int8: 127, int4: 7)."""
    wmax = np.abs(w.reshape(w.shape[0], -1)).max(axis=1).astype(np.float64)
    scales = np.where(wmax > 0, np.maximum(wmax / qmax, MIN_SCALE), 1.0)  # (denormal weights: MIN_SCALE)
    return scales.astype(np.float32).astype(np.float64)  # as ONNX stores them


def pow2_weight_scales(w: np.ndarray) -> np.ndarray:
    """Q-format q7 weight scales per output channel: 2^-n with n = frac_bits(max |w|)."""
    return np.ldexp(1.0, -frac_bits(np.abs(w.reshape(w.shape[0], -1)).max(axis=1)))


def quantize_weights(w: np.ndarray, scales: np.ndarray | None = None,
                     scheme: str = "int8") -> tuple[np.ndarray, np.ndarray]:
    """Integer weights per output channel (axis 0) and their scales, with the given scales (an imported model's,
    or one per tensor) or our own: int8 in [-127, 127]; int4 in [-7, 7] (held in int8); qformat: power-of-two
    scales, [-128, 127]."""
    if scales is not None:
        ws = np.broadcast_to(scales, (w.shape[0],)).astype(np.float64)
    elif scheme == "qformat":
        ws = pow2_weight_scales(w)
    else:
        ws = weight_scales(w, INT4_MAX if scheme == "int4" else 127)
    lo, hi = {"int4": (-INT4_MAX, INT4_MAX), "qformat": (-128, 127)}.get(scheme, (-127, 127))
    shape = (-1,) + (1,) * (w.ndim - 1)
    return np.clip(np.round(w / ws.reshape(shape)), lo, hi).astype(np.int8), ws


def weight_scheme(node: Node) -> str:
    """How a layer's weights are quantized: q15 layers have qformat's power-of-two int8 weights."""
    return "qformat" if node.scheme == "q15" else node.scheme


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


def imported_scales(g: Graph, name: str, channel_axis: int) -> np.ndarray | None:
    """Per-output-channel weight scales that came with the model, if they are per tensor or along channel_axis."""
    t = g.tensors[name]
    if t.weight_scales is None:
        return None
    scales, axis = t.weight_scales
    return scales if scales.size == 1 or axis % t.data.ndim == channel_axis else None


def model_bias_ints(g: Graph, name: str | None, bias: np.ndarray | None, step: np.ndarray,
                    wide: bool = False) -> np.ndarray | None:
    """The int32 bias written in the model (a QDQ model's DequantizeLinear of int32), when its scale is the
    accumulator's step (input scale x weight scale, to float32 precision) and the float bias is still its value.
    wide (an int16 layer's int64 bias): the scale may also be the step times 2^k, k > 0 (bias_shifts), and the
    bias is the integers times 2^k."""
    t = g.tensors.get(name) if name else None
    if t is None or t.int_values is None or bias is None:
        return None
    ints, scales = t.int_values
    if ints.shape != bias.shape:
        return None
    k = np.round(np.log2(scales / step)).astype(np.int64) if wide else np.zeros(1, np.int64)
    if np.any(k < 0) or not np.allclose(scales, step * np.ldexp(1.0, k), rtol=1e-6, atol=0):
        return None
    if not np.array_equal((ints.astype(np.float32) * scales.astype(np.float32)).astype(np.float32),
                          bias.astype(np.float32)):
        return None
    return ints.astype(np.int64) << k if wide else ints.astype(np.int32)


def bias_shifts(bias: np.ndarray) -> np.ndarray:
    """Per channel, the k for which an int16 layer's int64 bias is a multiple of 2^k whose quotient fits int32
    (0 where the bias fits int32): a QDQ model holds it as int32 at 2^k times the accumulator's step."""
    mag = np.abs(bias.astype(np.float64))
    return np.where(mag > INT32_MAX, np.ceil(np.log2(np.maximum(mag, 1.0) / INT32_MAX)), 0).astype(np.int64)


Q7_MAX_SHIFT = 24  # Q-format: n_in + n_w - n_out at most


def layer_weights(node: Node, g: Graph, w: np.ndarray, bias: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """A Conv/Gemm's integer weights and scales (quantize_weights with the model's or our scales). Q-format caps each
    channel's fractional bits n_w so that the output shift stays at most Q7_MAX_SHIFT (the weights of a channel far
    below one output step lose bits they could not show) and the int32 bias at 2^-(n_in + n_w) stays below 2^30."""
    scales = imported_scales(g, node.inputs[1], 0)
    if node.scheme == "qformat":
        amax = np.abs(w.reshape(w.shape[0], -1)).max(axis=1)
        n_w = np.broadcast_to(pow2_bits(scales) if scales is not None else frac_bits(amax), (w.shape[0],))
        n_in, n_out = pow2_bits(qparams(g, node.inputs[0])[0]), pow2_bits(qparams(g, node.outputs[0])[0])
        cap = np.full(w.shape[0], n_out - n_in + Q7_MAX_SHIFT)
        if bias is not None:
            b = np.abs(np.broadcast_to(bias, (w.shape[0],)).astype(np.float64))
            with np.errstate(divide="ignore"):
                cap = np.where(b > 0, np.minimum(cap, np.floor(30 - np.log2(np.where(b > 0, b, 1.0))) - n_in), cap)
        scales = np.ldexp(1.0, -np.minimum(n_w, cap).astype(np.int64))
    return quantize_weights(w, scales, weight_scheme(node))


def output_stage(node: Node, g: Graph, ws: np.ndarray, bias: np.ndarray | None, n_out: int,
                 wq: np.ndarray | None = None) -> dict:
    """Integer bias (the model's own int32 when it has one), per-channel multipliers (Q-format: shifts) and clamp
    bounds shared by Conv and Gemm.

    int8, int4: int32 bias and 32-bit multipliers. int16 (16x8): int64 bias and 15-bit multipliers for the 64-bit
    accumulator (reduce_multiplier). wq: the integer weights (TFLM's 16x8 layers check their result range)."""
    s_in, zp_in = qparams(g, node.inputs[0])
    s_out, zp_out = qparams(g, node.outputs[0])
    b = np.zeros(n_out) if bias is None else bias.astype(np.float64)
    model_bq = model_bias_ints(g, node.inputs[2] if len(node.inputs) > 2 else None, bias, s_in * ws,
                               wide=node.dtype == "int16")
    bq = model_bq if model_bq is not None else np.clip(np.round(b / (s_in * ws)), -(2**31), 2**31 - 1).astype(np.int32)
    if node.scheme == "qformat":
        if zp_in or zp_out:
            raise EdgecError(f"node '{node.name}': Q-format needs zero points 0 around it (input {zp_in}, output "
                             f"{zp_out}); use --quantize int8 for this model")
        shift = np.clip(pow2_bits(s_in) + pow2_bits(ws) - pow2_bits(s_out), *Q7_SHIFT_RANGE)
        act_min, act_max = quant_bounds(*act_range(node), s_out, 0)
        return {"bias": bq, "shift": shift.astype(np.int8), "in_zp": 0, "out_zp": 0, "act_min": act_min,
                "act_max": act_max, "w_scale": ws}
    if tflm.is_tflm(g) and node.dtype in ("int8", "int16"):  # a TFLite model: TFLM's multipliers and bounds
        scale = tflm.fc_scale if node.op != "Conv" and tflm.per_tensor_weights(g, node) else tflm.conv_scale
        ms = [tflm.quantize_multiplier(scale(s_in, float(s), s_out)) for s in ws]
        if node.dtype == "int16":  # 16x8: TFLM's int64 requantization is ec_requantize_s64 with its 15-bit multiplier
            bq, ms = tflm.s16_output_stage(g, node, model_bq, ms, wq)
        act_min, act_max = tflm.quant_bounds(*act_range(node), s_out, zp_out, *QRANGE[node.dtype])
        return tflm.tag({"bias": bq, "mult": np.array([m for m, _ in ms], np.int32),
                         "shift": np.array([s for _, s in ms], np.int32), "in_zp": zp_in, "out_zp": zp_out,
                         "act_min": act_min, "act_max": act_max, "w_scale": ws, "dtype": node.dtype})
    ms = [quantize_multiplier(s_in * float(s) / s_out) for s in ws]
    if node.dtype == "int16":
        if model_bq is None:
            bq = np.clip(np.round(b / (s_in * ws)), -BIAS64_LIMIT, BIAS64_LIMIT)
            k = np.ldexp(1.0, bias_shifts(bq))  # beyond int32: a multiple of 2^k (a step of 2^-31 of the bias)
            model_bq = (np.round(bq / k) * k).astype(np.int64)
        bq = model_bq.astype(np.int64)
        if max(s for _, s in ms) > 14:
            raise EdgecError(f"{node.op} (node '{node.name}'): its int16 requantization scale is above 2^14 (an "
                             "almost constant output?); keep this layer int8 with --qconfig")
        ms = [reduce_multiplier(m, s) for m, s in ms]
    act_min, act_max = quant_bounds(*act_range(node), s_out, zp_out, node.dtype)
    return {"bias": bq, "mult": np.array([m for m, _ in ms], np.int32), "shift": np.array([s for _, s in ms], np.int32),
            "in_zp": zp_in, "out_zp": zp_out, "act_min": act_min, "act_max": act_max, "w_scale": ws,
            "dtype": node.dtype}


def finish_s8(acc: np.ndarray, q: dict, channel_axis: int) -> np.ndarray:
    """The output stage: requantization with multipliers (int16: 64-bit, ec_requantize_s64), or (Q-format, no
    "mult") a rounding shift."""
    shape = [1] * acc.ndim
    shape[channel_axis] = -1
    acc = acc + q["bias"].reshape(shape)
    if "mult" not in q:
        return np.clip(shift_round(acc, q["shift"].reshape(shape)), q["act_min"], q["act_max"]).astype(np.int8)
    if q.get("dtype") == "int16":
        y = requantize64(acc, q["mult"].reshape(shape), q["shift"].reshape(shape))
        return np.clip(y, q["act_min"], q["act_max"]).astype(np.int16)
    rq = tflm.requantize if tflm.uses_tflm(q) else requantize
    y = rq(acc, q["mult"].reshape(shape), q["shift"].reshape(shape)) + q["out_zp"]
    return np.clip(y, q["act_min"], q["act_max"]).astype(np.int8)


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


def fold_input_zp(bias: np.ndarray, w: np.ndarray, in_zp: int) -> np.ndarray:
    """bias - in_zp * (sum of each output channel's weights; w [N][K]): the bias of the Helium kernels, which
    multiply the raw inputs (runtime_c/include/edgec_mve.h). Wrapped to int32: the kernels' int32 sums then equal
    bias + sum((x - in_zp) * w) modulo 2^32, exactly as every other C kernel's (a bias clipped at the int32 limit
    by quantization stays exact)."""
    b = bias.astype(np.int64) - in_zp * w.astype(np.int64).sum(axis=1)
    return ((b + 2**31) % 2**32 - 2**31).astype(np.int32)


def pair_layout(a: np.ndarray, pad: int = 0) -> np.ndarray:
    """Per-channel int32 values -> the pair layout of the Helium matrix kernels (edgec_mve.h): (c, c + 1, c, c + 1)
    for every pair of channels, an odd count padded with `pad`."""
    p = np.full(len(a) + len(a) % 2, pad, np.int32)
    p[:len(a)] = a
    return np.tile(p.reshape(-1, 2), (1, 2)).reshape(-1)


def mve_matrix_stage(name: str, q: dict, bias: np.ndarray) -> tuple[Struct, Array]:
    """The output stage struct and bias array of a Helium matrix kernel, in the pair layout."""
    # a padded channel's shift is -1, so that "every shift is negative" (the fast output stage) still holds
    return (quant_struct(name, {**q, "mult": pair_layout(q["mult"]), "shift": pair_layout(q["shift"], -1)}),
            Array(f"b_{name}", pair_layout(bias), "int32_t"))


def conv_im2col_mve_scratch_bytes(p: dict) -> int:
    """Twin of ec_conv2d_im2col_mve_s8_get_buffer_size: two int8 columns of k_h * k_w * in_c."""
    return 2 * p["k_h"] * p["k_w"] * p["in_c"]


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


def scratch_arg(nbytes: int) -> Scratch | Raw:
    """A kernel's scratch buffer; NULL when it needs none."""
    return Scratch(nbytes) if nbytes else Raw("NULL")


def quant_struct(name: str, q: dict) -> Struct:
    if "mult" not in q:  # Q-format: shifts only
        return Struct(f"q_{name}", "ec_quant_q7", {
            "act_min": q["act_min"], "act_max": q["act_max"], "shift": Array(f"shift_{name}", q["shift"], "int8_t"),
            "per_channel": 1})
    return Struct(f"q_{name}", "ec_quant_s8", {
        "in_zp": q["in_zp"], "out_zp": q["out_zp"], "act_min": q["act_min"], "act_max": q["act_max"],
        "mult": Array(f"mult_{name}", q["mult"], "int32_t"), "shift": Array(f"shift_{name}", q["shift"], "int32_t"),
        "per_channel": 1,
    })


def quant_struct_s16(name: str, q: dict) -> Struct:
    return Struct(f"q_{name}", "ec_quant_s16", {
        "act_min": q["act_min"], "act_max": q["act_max"],
        "mult": Array(f"mult_{name}", q["mult"], "int32_t"), "shift": Array(f"shift_{name}", q["shift"], "int32_t"),
    })


def act_struct(name: str, node: Node) -> Struct:
    lo, hi = act_range(node)
    return Struct(f"act_{name}", "ec_act_f32", {"act_min": c_float(lo), "act_max": c_float(hi)})


class Conv(Op):
    types = ("Conv",)
    fuses_activation = True

    def _geometry(self, node: Node, g: Graph):
        w = g.const(node.inputs[1])
        kernel = tuple(w.shape[2:])
        strides, pads, dil = spatial_attrs(node, g, kernel)
        return w, kernel, strides, pads, dil, node.attrs.get("group", 1)

    def check(self, node: Node, g: Graph) -> str | None:
        reason = check_io(node, g, (2, 3))
        if reason:
            return reason
        w = g.const(node.inputs[1])
        if w is None:
            return "weights must be a constant"
        if len(node.inputs) > 2 and node.inputs[2] and g.const(node.inputs[2]) is None:
            return "bias must be a constant"
        x = g.shape(node.inputs[0])
        if len(x) not in (3, 4):
            return "only 1-D and 2-D convolutions are supported"
        if w.ndim != len(x):
            return f"weights of shape {list(w.shape)} for a rank-{len(x)} input (want [M, C/group, *kernel])"
        group = node.attrs.get("group", 1)
        if not isinstance(group, int) or group < 1:
            return f"group={group!r} must be a positive integer"
        if x[1] % group or w.shape[0] % group:
            return f"group={group} does not divide the {x[1]} input channels and {w.shape[0]} output channels"
        if w.shape[1] * group != x[1]:
            return (f"weights of shape {list(w.shape)} are for {w.shape[1] * group} input channels (group {group}), "
                    f"the input {list(x)} has {x[1]}")
        if "kernel_shape" in node.attrs and tuple(node.attrs["kernel_shape"]) != tuple(w.shape[2:]):
            return f"kernel_shape={list(node.attrs['kernel_shape'])} differs from the weights' {list(w.shape[2:])}"
        b = self._bias(node, g)
        if b is not None and b.shape != (w.shape[0],):
            return f"bias of shape {list(b.shape)} for {w.shape[0]} output channels (want [{w.shape[0]}])"
        y = g.shape(node.outputs[0])
        if y[:2] != (x[0], w.shape[0]):
            return f"output shape {list(y)} does not match batch {x[0]} and {w.shape[0]} output channels"
        return check_window(node, g, tuple(w.shape[2:])) or check_act(node)

    def _bias(self, node: Node, g: Graph) -> np.ndarray | None:
        return g.const(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] else None

    def ref(self, node: Node, g: Graph, xs: list[np.ndarray]) -> np.ndarray:
        w, kernel, strides, pads, dil, group = self._geometry(node, g)
        out_sp = g.shape(node.outputs[0])[2:]
        y = conv_nd(xs[0], w, strides, pads, dil, group, out_sp)
        b = self._bias(node, g)
        if b is not None:
            y = y + b.reshape((1, -1) + (1,) * len(kernel))
        return apply_act(y, node)

    def ref_f32(self, node: Node, g: Graph, xs: list[np.ndarray]) -> np.ndarray:
        """float32 in ec_conv2d_f32's order: per output, the bias, then tap by tap (ky, kx, input channel), one
        rounded product and one rounded sum each (taps in the padding add zero)."""
        w, kernel, strides, pads, dil, group = self._geometry(node, g)
        out_sp = tuple(g.shape(node.outputs[0])[2:])
        x = xs[0].astype(np.float32)
        n, c, o = x.shape[0], x.shape[1], w.shape[0]
        cg, og = c // group, o // group
        b = self._bias(node, g)
        bias = np.zeros(o, np.float32) if b is None else b.astype(np.float32)
        acc = np.empty((n, group, og) + out_sp, np.float32)
        acc[...] = bias.reshape((1, group, og) + (1,) * len(out_sp))
        wg = w.astype(np.float32).reshape((group, og, cg) + tuple(kernel))
        for idx, xw in windows(x, kernel, strides, pads, dil, out_sp, np.float32(0)):
            xg = xw.reshape((n, group, cg) + out_sp)
            for ci in range(cg):
                acc += xg[:, :, None, ci] * wg[(slice(None), slice(None), ci) + idx].reshape(
                    (1, group, og) + (1,) * len(out_sp))
        lo, hi = act_range(node)
        return np.clip(acc.reshape((n, o) + out_sp), np.float32(lo), np.float32(hi))

    def quantize(self, node: Node, g: Graph) -> dict:
        w, *_ = self._geometry(node, g)
        wq, ws = layer_weights(node, g, w, self._bias(node, g))
        return {"w": wq, **output_stage(node, g, ws, self._bias(node, g), w.shape[0], wq)}

    def ref_s8(self, node: Node, g: Graph, xs: list[np.ndarray]) -> np.ndarray:
        q = node.q
        _, kernel, strides, pads, dil, group = self._geometry(node, g)
        x = xs[0].astype(np.int64) - q["in_zp"]
        acc = conv_nd(x, q["w"], strides, pads, dil, group, g.shape(node.outputs[0])[2:])
        return finish_s8(acc, q, 1)

    def is_depthwise(self, node: Node, g: Graph) -> bool:
        group = node.attrs.get("group", 1)
        return group > 1 and group == g.shape(node.inputs[0])[1]

    def blocked(self, node: Node, g: Graph, target: Target, kernel: list[int], pads: list[int]) -> bool:
        """Whether lower_dsp's kernels run this int8 layer. They block 2 pixels x 2 channels per loop, with SXTB16
        and SMLAD on cores with the DSP extension and in plain C elsewhere. On Cortex-M cores without the DSP
        extension their plain C was measured per layer against the portable kernels (int8, instructions):
        - with Thumb-2 (Cortex-M3), it wins on every convolution but depthwise ones: dscnn_kws conv_1 (10x4, 1
          input channel) 6,116,417 -> 2,002,029, conv_3 (1x1) 3,804,972 -> 2,916,894, depthwise conv_2 1,534,618
          -> 1,824,617;
        - on the Cortex-M0+ (ARMv6-M: 8 low registers, no multiply-accumulate) only where the portable kernel's
          channel loop is too short to pay its per-tap overhead: dscnn_kws conv_1 8,867,613 -> 4,080,607 and
          resnet8 conv_1 (3 input channels) 8,852,231 -> 8,629,670, against resnet8 conv_2 (16 channels)
          23,548,565 -> 28,662,713 and dscnn_kws conv_3 5,445,512 -> 6,250,134."""
        if "dsp" in target.features:
            return True
        if target.kind != "qemu-system" or self.is_depthwise(node, g):
            return False
        if "thumb2" in target.features:
            return True
        pointwise = all(k == 1 for k in kernel) and not any(pads)
        channels = g.shape(node.inputs[0])[1] // node.attrs.get("group", 1)
        return not pointwise and channels < 4

    def lower_dsp(self, node: Node, g: Graph, params: Struct, pads: list[int]) -> Lowered | None:
        """An SXTB16/SMLAD kernel (DSP extension) for the layer's shape, or None for the portable kernel."""
        q, name, p = node.q, node.name, params.fields
        args = [params, quant_struct(name, q), Buf(node.inputs[0], "int8_t")]
        tail = [Array(f"b_{name}", q["bias"], "int32_t"), Buf(node.outputs[0], "int8_t", const=False)]
        if self.is_depthwise(node, g) and p["out_c"] == p["in_c"]:
            w = q["w"][:, 0].reshape(p["out_c"], p["k_h"], p["k_w"]).transpose(1, 2, 0)
            if w.shape[:2] == (3, 3) and p["dil_h"] == p["dil_w"] == 1:
                call = Call("ec_depthwise_conv2d_3x3_s8",
                            args + [Array(f"w_{name}", pack_depthwise_3x3_s8(w), "int16_t")] + tail
                            + [scratch_arg(depthwise_3x3_scratch_bytes(p))], node=name, macs=self.macs(node, g))
            else:
                call = Call("ec_depthwise_conv2d_packed_s8",
                            args + [Array(f"w_{name}", pack_depthwise_s8(w), "int16_t")] + tail,
                            node=name, macs=self.macs(node, g))
            return Lowered([call])
        if p["groups"] != 1:
            return None
        w = q["w"].reshape(q["w"].shape[0], q["w"].shape[1], p["k_h"], p["k_w"]).transpose(0, 2, 3, 1)
        packed = Array(f"w_{name}", pack_matrix_s8(im2col_rows(w)), "int8_t")
        if p["k_h"] == 1 and p["k_w"] == 1 and not any(pads):
            kernel, scratch = "ec_conv2d_1x1_s8", conv_1x1_scratch_bytes(p)
        else:
            kernel, scratch = "ec_conv2d_im2col_s8", conv_im2col_scratch_bytes(p)
        return Lowered([Call(kernel, args + [packed] + tail + [Scratch(scratch)], node=name, macs=self.macs(node, g))])

    def lower_dsp_s16(self, node: Node, g: Graph, params: Struct, pads: list[int]) -> Lowered | None:
        """A 16x8 SMLAD kernel (DSP extension) for a convolution with one group or a depthwise one with channel
        multiplier 1 and at most 64 taps, or None for the portable kernel. A 1x1 convolution with stride 1 and no
        padding is a fully connected layer over the NHWC pixels."""
        q, name, p = node.q, node.name, params.fields
        if self.is_depthwise(node, g) and p["out_c"] == p["in_c"] and p["k_h"] * p["k_w"] <= 64:
            w = q["w"][:, 0].reshape(p["out_c"], p["k_h"], p["k_w"]).transpose(1, 2, 0)
            return Lowered([Call("ec_depthwise_conv2d_packed_s16",
                                 [params, quant_struct_s16(name, q), Buf(node.inputs[0], "int16_t"),
                                  Array(f"w_{name}", pack_depthwise_s8(w), "int16_t"),
                                  Array(f"b_{name}", q["bias"], "int64_t"),
                                  Buf(node.outputs[0], "int16_t", const=False),
                                  Scratch(depthwise_s16_scratch_bytes(p))],
                                 node=name, macs=self.macs(node, g))])
        if p["groups"] != 1:
            return None
        w = q["w"].reshape(q["w"].shape[0], q["w"].shape[1], p["k_h"], p["k_w"]).transpose(0, 2, 3, 1)
        packed = pack_matrix_s16(w.reshape(w.shape[0], -1))  # [out_c][K], K in [kh][kw][ic] order
        tail = [Buf(node.inputs[0], "int16_t"), Array(f"w_{name}", packed, "int8_t"),
                Array(f"b_{name}", q["bias"], "int64_t"), Buf(node.outputs[0], "int16_t", const=False)]
        stage, macs = quant_struct_s16(name, q), self.macs(node, g)
        if p["k_h"] == p["k_w"] == p["stride_h"] == p["stride_w"] == 1 and not any(pads):
            rows = p["batch"] * p["out_h"] * p["out_w"]
            return Lowered([Call("ec_fully_connected_packed_s16", [rows, p["in_c"], p["out_c"], stage] + tail,
                                 node=name, macs=macs)])
        return Lowered([Call("ec_conv2d_im2col_s16", [params, stage] + tail
                             + [Scratch(conv_im2col_s16_scratch_bytes(p))], node=name, macs=macs)])

    def lower_mve(self, node: Node, g: Graph, params: Struct, pads: list[int]) -> Lowered | None:
        """A Helium (MVE) kernel for the layer's shape, or None (then the DSP or portable kernel)."""
        q, name, p = node.q, node.name, params.fields
        zp = q["in_zp"]
        head, out = [params], Buf(node.outputs[0], "int8_t", const=False)
        macs = self.macs(node, g)
        if self.is_depthwise(node, g):
            if q["w"].min(initial=0) < -127:  # two taps' products must fit in int16 (edgec_mve.h)
                return None
            w = q["w"][:, 0].reshape(p["out_c"], p["k_h"], p["k_w"]).transpose(1, 2, 0)
            bias = fold_input_zp(q["bias"], w.reshape(-1, p["out_c"]).T, zp)
            mult_ch = p["out_c"] // p["in_c"]
            wp, b, m, s, offsets = pack_depthwise_mve(w, bias, q["mult"], q["shift"], mult_ch)
            stage = quant_struct(name, {**q, "mult": m, "shift": s})
            offs = Array(f"off_{name}", offsets, "uint8_t") if mult_ch > 1 else Raw("NULL")
            zp_row = Array(f"zp_{name}", np.full(len(b), zp, np.int8), "int8_t")
            return Lowered([Call("ec_depthwise_conv2d_mve_s8",
                                 head + [stage, Buf(node.inputs[0], "int8_t"), Array(f"w_{name}", wp, "int8_t"),
                                         Array(f"b_{name}", b, "int32_t"), offs, zp_row, out], node=name,
                                 macs=macs)])
        if p["groups"] != 1:
            return None
        w = q["w"].reshape(q["w"].shape[0], q["w"].shape[1], p["k_h"], p["k_w"]).transpose(0, 2, 3, 1)
        w = w.reshape(w.shape[0], -1)
        stage, bias = mve_matrix_stage(name, q, fold_input_zp(q["bias"], w, zp))
        args = head + [stage, Buf(node.inputs[0], "int8_t"), Array(f"w_{name}", w, "int8_t"), bias, out]
        if p["k_h"] == 1 and p["k_w"] == 1 and not any(pads):
            return Lowered([Call("ec_conv2d_1x1_mve_s8", args, node=name, macs=macs)])
        return Lowered([Call("ec_conv2d_im2col_mve_s8", args + [Scratch(conv_im2col_mve_scratch_bytes(p))],
                             node=name, macs=macs)])

    def lower_sparse(self, node: Node, g: Graph, target: Target, params: Struct, kernel: tuple,
                     strides: list[int], pads: list[int], group: int) -> tuple[Lowered | None, str]:
        """A sparse kernel when the cost model prefers it for these weights (toolchain/sparse.py), and its note. A 1x1
        convolution with stride 1, no padding and one group is a fully connected layer over the NHWC pixels; other
        convolutions with one group use the sparse convolution kernels. Grouped, depthwise and int16 ones stay
        dense."""
        if group != 1 or node.dtype == "int16":
            return None, ""
        name, t = node.name, nctype(node)
        if is_int(node):
            w, bias, stage, bias_t = node.q["w"], node.q["bias"], quant_struct(name, node.q), "int32_t"
        else:
            w, b = g.const(node.inputs[1]).astype(np.float32), self._bias(node, g)
            bias = np.zeros(w.shape[0], np.float32) if b is None else b.astype(np.float32)
            stage, bias_t = act_struct(name, node), "float"
        args = (stage, Array(f"b_{name}", bias, bias_t), Buf(node.inputs[0], t), Buf(node.outputs[0], t, const=False),
                target, self.macs(node, g))
        if all(k == 1 for k in kernel) and all(s == 1 for s in strides) and not any(pads):
            w = w.reshape(w.shape[0], -1)
            return lower_sparse_fc(name, int(np.prod(g.shape(node.outputs[0]))) // w.shape[0], w, *args)
        if len(kernel) == 1:
            w = w[:, :, None, :]
        return lower_sparse_conv(name, params, w.transpose(0, 2, 3, 1), *args)

    def lower(self, node: Node, g: Graph, target: Target) -> Lowered:
        w, kernel, strides, pads, dil, group = self._geometry(node, g)
        name = node.name
        params = conv_params(name, g, node.inputs[0], node.outputs[0], kernel, strides, pads, dil, group)
        depthwise = self.is_depthwise(node, g)
        t = nctype(node)
        if is_int(node) and node.scheme in ("qformat", "int4"):
            return self.lower_lowbit(node, g, params, depthwise, len(kernel))
        sparse, note = self.lower_sparse(node, g, target, params, kernel, strides, pads, group)
        if sparse is not None:
            sparse.note = note
            return sparse
        if node.dtype == "int8" and "mve" in target.features:
            low = self.lower_mve(node, g, params, pads)
            if low is not None:
                low.note = note
                return low
        if node.dtype == "int8" and self.blocked(node, g, target, kernel, pads):
            low = self.lower_dsp(node, g, params, pads)
            if low is not None:
                low.note = note
                return low
        if node.dtype == "int16" and "dsp" in target.features:
            low = self.lower_dsp_s16(node, g, params, pads)
            if low is not None:
                low.note = note
                return low
        if node.dtype == "int8" and "neon" in target.features:
            low = neon.lower_conv(name, node.q, params, quant_struct(name, node.q), Buf(node.inputs[0], t),
                                  Buf(node.outputs[0], t, const=False), depthwise, any(pads), self.macs(node, g))
            if low is not None:
                low.note = note
                return low
        if node.dtype == "float32" and "neon" in target.features:
            b = self._bias(node, g)
            low = neon.lower_conv_f32(name, w.astype(np.float32),
                                      np.zeros(w.shape[0], np.float32) if b is None else b.astype(np.float32),
                                      params, act_struct(name, node), Buf(node.inputs[0], t),
                                      Buf(node.outputs[0], t, const=False), any(pads), depthwise,
                                      self.macs(node, g))
            if low is not None:
                low.note = note
                return low
        wt = t
        if node.dtype == "int16":  # 16x8: int16 activations, int8 weights, int64 bias
            wdata, bias = node.q["w"], node.q["bias"]
            stage = quant_struct_s16(name, node.q)
            suffix, bias_t, wt = "s16", "int64_t", "int8_t"
        elif is_int(node):
            wdata, bias = node.q["w"], node.q["bias"]
            stage = quant_struct(name, node.q)
            suffix, bias_t = "s8", "int32_t"
        else:
            wdata = w.astype(np.float32)
            b = self._bias(node, g)
            bias = np.zeros(w.shape[0], np.float32) if b is None else b.astype(np.float32)
            stage = act_struct(name, node)
            suffix, bias_t = "f32", "float"
        if len(kernel) == 1:
            wdata = wdata[:, :, None, :]
        # ONNX [O][I/g][kh][kw] -> depthwise [kh][kw][O] or general [O][kh][kw][I/g]
        wdata = wdata[:, 0].transpose(1, 2, 0) if depthwise else wdata.transpose(0, 2, 3, 1)
        kernel_fn = f"ec_{'depthwise_' if depthwise else ''}conv2d_{suffix}"
        call = Call(kernel_fn, [params, stage, Buf(node.inputs[0], t), Array(f"w_{name}", wdata, wt),
                                Array(f"b_{name}", bias, bias_t), Buf(node.outputs[0], t, const=False)],
                    node=name, macs=self.macs(node, g))
        return Lowered([call], note=note)

    def lower_lowbit(self, node: Node, g: Graph, params: Struct, depthwise: bool, dims: int) -> Lowered:
        """Q-format (ec_*conv2d_q7, shift-only output stage) or int4 weights (ec_*conv2d_s4, packed), portable C on
        every target."""
        q, name = node.q, node.name
        w = q["w"][:, :, None, :] if dims == 1 else q["w"]
        w = w[:, 0].transpose(1, 2, 0) if depthwise else w.transpose(0, 2, 3, 1)
        if node.scheme == "int4":
            # rows on bytes: depthwise [kh][kw] rows of out_c, otherwise [out_c][kh][kw] rows of in_c / groups
            warr = Array(f"w_{name}", pack_s4(w.reshape(-1, w.shape[-1]), grouped=not depthwise), "uint8_t")
        else:
            warr = Array(f"w_{name}", w, "int8_t")
        suffix = "s4" if node.scheme == "int4" else "q7"
        kernel = f"ec_{'depthwise_' if depthwise else ''}conv2d_{suffix}"
        return Lowered([Call(kernel, [params, quant_struct(name, q), Buf(node.inputs[0], "int8_t"), warr,
                                      Array(f"b_{name}", q["bias"], "int32_t"),
                                      Buf(node.outputs[0], "int8_t", const=False)],
                             node=name, macs=self.macs(node, g))])

    def macs(self, node: Node, g: Graph) -> int:
        w = g.const(node.inputs[1])
        return int(np.prod(g.shape(node.outputs[0]))) * int(math.prod(w.shape[1:]))


register(Conv())
