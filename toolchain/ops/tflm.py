"""TensorFlow Lite Micro's integer arithmetic: the numpy twins of runtime_c/include/edgec_tflm.h and of the kernels
compiled with it (runtime_c/src/<kernel>_tflm.c, ec_softmax_tflm_s8).

A graph imported from a quantized .tflite file has ``Graph.arithmetic == "tflm"``: its ops then compute what
TFLM's reference kernels compute, bit for bit. The integer parameters such an op computes at build time carry
``ARITHMETIC_KEY: "tflm"`` (``tag``), and the reference and the kernel choice follow that record (``uses_tflm``,
``retarget``).

The facts below come from TFLM's sources (tensorflow/lite/kernels/internal/common.h, quantization_util.cc,
kernel_util.cc, micro/kernels/*_common.cc, reference/softmax.h, reference/integer_ops/pooling.h), TFLM built with
its default double rounding (TFLITE_SINGLE_ROUNDING unset):
- QuantizeMultiplier(double): frexp, the fraction times 2^31 rounded half away from zero, 2^31 folded into the shift,
  shifts below -31 flushed to zero.
- MultiplyByQuantizedMultiplier(x, m, shift): x * 2^max(shift, 0) (wrapping int32), then gemmlowp's
  SaturatingRoundingDoublingHighMul with m, then RoundingDivideByPOT by max(-shift, 0) (two roundings).
- effective scales: CONV_2D / DEPTHWISE_CONV_2D and per-channel FULLY_CONNECTED: double(s_in) * double(s_w[c]) /
  double(s_out); per-tensor FULLY_CONNECTED: double(float32(s_in * s_w)) / double(s_out); ADD and SUB: in double
  (sub_common.cc keeps 2 * max(s_a, s_b) in float32, which is exact, and divides in double); MUL: double(s_a) *
  double(s_b) / double(s_out); QUANTIZE and MEAN: double(s_in) / double(s_out); RELU and LEAKY_RELU: float32
  quotients, widened; 16x8 CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED as int8, then the 15-bit multiplier of
  MultiplyByQuantizedMultiplier(int64_t, ...) (reduce_multiplier).
- fused activation bounds: zp + round_half_away(float32(f) / s_out) in float32, clamped to the type's range.

How TFLite operators map onto edgec's ops here: CONV_2D and DEPTHWISE_CONV_2D -> Conv, FULLY_CONNECTED -> Gemm
(per-tensor weights when the weight tensor has one scale), ADD/SUB/MUL -> Add/Sub/Mul, AVERAGE_POOL_2D -> AveragePool
(the rounded average of the stored values, the output keeping the input's quantization), MEAN over H and W ->
GlobalAveragePool (the sum requantized with 1 / count folded into the multiplier), MAX_POOL_2D -> MaxPool, SOFTMAX
-> Softmax (attribute "beta", output 1/256 and -128), QUANTIZE/DEQUANTIZE -> Convert,
RELU/RELU6/LOGISTIC/TANH/LEAKY_RELU/HARD_SWISH -> Relu/Clip(0, 6)/Sigmoid/Tanh/LeakyRelu/HardSwish (tables of TFLM's
integer function). Any other integer op stops the build (retarget).
"""

from __future__ import annotations

import math

import numpy as np

from ..calls import Lowered
from ..errors import EdgecError
from ..ir import Graph, Node
from .base import quantize_multiplier as base_quantize_multiplier

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1
ARITHMETIC_KEY = "arithmetic"
TFLM = "tflm"
ADD_LEFT_SHIFT = 20  # int8 ADD/SUB: inputs scaled by 2^20 before their requantization


def is_tflm(g: Graph) -> bool:
    return g.arithmetic == TFLM


def uses_tflm(q: dict | None) -> bool:
    """Whether integer parameters were computed for TFLM's arithmetic."""
    return bool(q) and q.get(ARITHMETIC_KEY) == TFLM


def tag(q: dict) -> dict:
    """Record in q that its parameters use TFLM's arithmetic."""
    q[ARITHMETIC_KEY] = TFLM
    return q


# ---- scalars computed at build time --------------------------------------------------------------------------------


def round_away(v: float) -> float:
    """TfLiteRound (std::round): to nearest, ties away from zero."""
    return math.copysign(math.floor(abs(v) + 0.5), v)


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite's QuantizeMultiplier: real ~= mult * 2^shift / 2^31, mult in [2^30, 2^31), the fraction rounded
    away from zero (std::round) where edgec's own rounds ties to even."""
    return base_quantize_multiplier(real, round_away)


def f32(x: float) -> np.float32:
    return np.float32(x)


def conv_scale(s_in: float, s_w: float, s_out: float) -> float:
    """CONV_2D, DEPTHWISE_CONV_2D and per-channel FULLY_CONNECTED: in double from the float32 scales."""
    return float(np.float64(f32(s_in)) * np.float64(f32(s_w)) / np.float64(f32(s_out)))


def per_tensor_weights(g: Graph, node: Node) -> bool:
    """Whether a layer's weights (input 1) came with one scale (TFLM's per-tensor FULLY_CONNECTED)."""
    t = g.tensors.get(node.inputs[1]) if len(node.inputs) > 1 else None
    return t is not None and t.weight_scales is not None and np.size(t.weight_scales[0]) == 1


def fc_scale(s_in: float, s_w: float, s_out: float) -> float:
    """Per-tensor FULLY_CONNECTED (GetQuantizedConvolutionMultipler): the float32 product, then in double."""
    return float(np.float64(f32(s_in) * f32(s_w)) / np.float64(f32(s_out)))


def add_params(s_a: float, s_b: float, s_out: float) -> dict:
    """ADD and SUB (add_common.cc, sub_common.cc): left shift 20, the inputs' and the output's multipliers, each
    quotient in double from the float32 scales."""
    a, b, o = (float(f32(s)) for s in (s_a, s_b, s_out))
    twice = 2.0 * max(a, b)
    reals = (a / twice, b / twice, twice / ((1 << ADD_LEFT_SHIFT) * o))
    (am, ash), (bm, bsh), (om, osh) = (quantize_multiplier(r) for r in reals)
    return {"left_shift": ADD_LEFT_SHIFT, "a_mult": am, "a_shift": ash, "b_mult": bm, "b_shift": bsh,
            "out_mult": om, "out_shift": osh}


def reduce_multiplier(mult: int) -> int:
    """The 15-bit multiplier of MultiplyByQuantizedMultiplier(int64_t, ...) (common.cc): (mult + 2^15) >> 16, 0x7FFF
    from 0x7FFF0000 up."""
    return (mult + (1 << 15)) >> 16 if mult < 0x7FFF0000 else 0x7FFF


def s16_output_stage(g: Graph, node: Node, bias: np.ndarray | None, ms: list[tuple[int, int]],
                     wq: np.ndarray | None) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """A 16x8 CONV_2D, DEPTHWISE_CONV_2D or FULLY_CONNECTED with an int64 bias: TFLM accumulates in int64 and
    returns int32(acc * m16 + 2^(t - 1)) >> t, t = 15 - shift, with m16 = reduce_multiplier(mult): edgec's
    ec_requantize_s64 (requantize64) with that multiplier, as long as the result fits int32 (TFLM truncates it to
    int32, edgec does not), which is checked here from the weights. Returns the int64 bias and (m16, shift)."""
    where = f"{node.op} (node '{node.name}', 16x8)"
    b = g.tensors.get(node.inputs[2]) if len(node.inputs) > 2 else None
    if bias is None or b is None or b.int_values is None or b.int_values[0].dtype != np.int64:
        raise EdgecError(f"{where}: TFLM accumulates a 16x8 layer without an int64 bias in int32 (conv.cc: "
                         "ConvPerChannel<int32_t> for an int32 or no bias); edgec computes "
                         "16x8 layers with TFLM's arithmetic only when the .tflite file gives them an int64 bias")
    if any(shift >= 8 for _, shift in ms):
        raise EdgecError(f"{where}: its requantization scale is 2^7 or more, which TFLM's 16x8 kernels refuse")
    reduced = [(reduce_multiplier(m), shift) for m, shift in ms]
    if wq is not None:
        n = len(reduced)
        acc = np.abs(wq.reshape(n, -1).astype(np.int64)).sum(axis=1) * 32768 + np.abs(bias.astype(np.int64))
        for a, (m16, shift) in zip(acc.tolist(), reduced):
            t = 15 - shift
            if (a * m16 + (1 << (t - 1))) >> t > INT32_MAX:
                raise EdgecError(f"{where}: its requantized sums can exceed int32, which TFLM truncates; edgec "
                                 "cannot reproduce that")
    return bias.astype(np.int64), reduced


def mul_scale(s_a: float, s_b: float, s_out: float) -> float:
    return float(np.float64(f32(s_a)) * np.float64(f32(s_b)) / np.float64(f32(s_out)))


def ratio_scale(s_in: float, s_out: float) -> float:
    """QUANTIZE (int -> int) and MEAN: double(s_in) / double(s_out)."""
    return float(np.float64(f32(s_in)) / np.float64(f32(s_out)))


def mean_params(s_in: float, s_out: float, count: int) -> tuple[int, int]:
    """MEAN (int8, QuantizedMeanOrSum): the multiplier of s_in / s_out with 1 / count folded in: shifted left by
    k = min(floor(log2(count)), 32, 31 + shift), divided by count (truncating), shift - k."""
    mult, shift = quantize_multiplier(ratio_scale(s_in, s_out))
    k = min(count.bit_length() - 1, 32, 31 + shift)
    return (mult << k) // count, shift - k


def quant_bounds(lo: float, hi: float, scale: float, zp: int, qmin: int = -128, qmax: int = 127) -> tuple[int, int]:
    """CalculateActivationRangeQuantized: each finite bound f becomes zp + round_away(float32(f) / scale) in
    float32, clamped to [qmin, qmax]."""
    def q(f: float) -> int:
        return zp + int(round_away(float(f32(f) / f32(scale))))
    return (qmin if math.isinf(lo) else max(qmin, q(lo))), (qmax if math.isinf(hi) else min(qmax, q(hi)))


# ---- elementwise fixed point (int64 arrays holding int32 values) ---------------------------------------------------


def wrap32(x: np.ndarray) -> np.ndarray:
    """x modulo 2^32 as a signed int32 value (int64 array)."""
    return ((np.asarray(x, dtype=np.int64) + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def srdhm(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """gemmlowp's SaturatingRoundingDoublingHighMul: round(a * b / 2^31) with ties toward +infinity (TFLM's nudge
    and truncating division give that integer), INT32_MIN * INT32_MIN saturated to INT32_MAX."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    r = (a * b + (1 << 30)) >> 31
    return np.where((a == INT32_MIN) & (b == INT32_MIN), INT32_MAX, r)


def rdbpot(x: np.ndarray, e: np.ndarray | int) -> np.ndarray:
    """gemmlowp's RoundingDivideByPOT: x / 2^e rounded to nearest, ties away from zero (0 <= e <= 31)."""
    x = np.asarray(x, dtype=np.int64)
    e = np.asarray(e, dtype=np.int64)
    mask = (np.int64(1) << e) - 1
    threshold = (mask >> 1) + (x < 0)
    return (x >> e) + ((x & mask) > threshold)


def sat_shl(x: np.ndarray, n: int) -> np.ndarray:
    """x * 2^n saturated to int32 (SaturatingRoundingMultiplyByPOT, n > 0)."""
    return np.clip(np.asarray(x, dtype=np.int64) << n, INT32_MIN, INT32_MAX)


def requantize(x: np.ndarray, mult: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """MultiplyByQuantizedMultiplier elementwise (twin of ec_tflm_requantize); x in int32, mult and shift broadcast
    against it. Returns int64 holding int32 values."""
    shift = np.asarray(shift, dtype=np.int64)
    h = srdhm(wrap32(np.asarray(x, dtype=np.int64) << np.maximum(shift, 0)), mult)
    return rdbpot(h, np.maximum(-shift, 0))


def avgpool_divide(acc: np.ndarray, count: np.ndarray) -> np.ndarray:
    """AVERAGE_POOL_2D's average of a sum of stored int8 values over `count` taps: (acc + count / 2) / count for
    acc > 0, else (acc - count / 2) / count, C division (truncating)."""
    acc = np.asarray(acc, dtype=np.int64)
    count = np.asarray(count, dtype=np.int64)
    num = np.where(acc > 0, acc + count // 2, acc - count // 2)
    return np.sign(num) * (np.abs(num) // count)


def quantize_float(x: np.ndarray, scale: float, zp: int, qmin: int = -128, qmax: int = 127) -> np.ndarray:
    """QUANTIZE float -> int (AffineQuantize): round_away(x / float32(scale)) in float32, plus zp, clamped."""
    v = np.asarray(x, dtype=np.float32) / f32(scale)
    r = np.sign(v) * np.floor(np.abs(v).astype(np.float64) + 0.5)  # |v| + 0.5 is exact in double
    return np.clip(r + zp, qmin, qmax).astype(np.int64)


# ---- SOFTMAX int8 ---------------------------------------------------------------------------------------------------

SOFTMAX_DIFF_BITS = 5  # input differences in Q5.26
SOFTMAX_ACCUM_BITS = 12  # the sum of exponentials in Q12.19


def softmax_params(beta: float, s_in: float) -> tuple[int, int, int]:
    """PreprocessSoftmaxScaling and CalculateInputRadius: (mult, left_shift, diff_min)."""
    real = min(float(beta) * float(f32(s_in)) * (1 << (31 - SOFTMAX_DIFF_BITS)), (1 << 31) - 1.0)
    mult, shift = quantize_multiplier(real)
    if shift < 0:
        raise ValueError(f"softmax input scale {s_in} times beta {beta} is too small for TFLM's int8 softmax")
    radius = math.floor(((1 << SOFTMAX_DIFF_BITS) - 1) * float(1 << (31 - SOFTMAX_DIFF_BITS)) / float(1 << shift))
    return mult, shift, -radius


def _exp_quarter(a: np.ndarray) -> np.ndarray:
    """exp(a), a in [-1/4, 0) in Q0.31, result Q0.31: exp(-1/8) * exp(t), t = a + 1/8, by a degree-4 polynomial."""
    exp_minus_eighth, one_third = 1895147668, 715827883
    t = wrap32(a + (1 << 28))
    t2 = srdhm(t, t)
    t3 = srdhm(t2, t)
    t4 = srdhm(t2, t2)
    poly = rdbpot(wrap32(srdhm(wrap32(rdbpot(t4, 2) + t3), one_third) + t2), 1)
    return wrap32(exp_minus_eighth + srdhm(exp_minus_eighth, wrap32(t + poly)))


EXP_FACTORS = (1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242)  # exp(-2^k), k = -2..4, Q0.31


def exp_negative(a: np.ndarray, integer_bits: int = 5) -> np.ndarray:
    """gemmlowp's exp_on_negative_values: a <= 0 with integer_bits (at most 5) integer bits, result Q0.31. The
    remainder modulo 1/4 goes through the polynomial, every whole quarter bit below 2^integer_bits multiplies by
    exp(-2^k)."""
    a = np.asarray(a, dtype=np.int64)
    frac_bits = 31 - integer_bits
    quarter = 1 << (frac_bits - 2)
    rem = (a & (quarter - 1)) - quarter
    whole = rem - a
    r = _exp_quarter(sat_shl(rem, integer_bits))
    for k, factor in enumerate(EXP_FACTORS):
        if k - 2 < integer_bits:
            r = np.where(whole & (1 << (frac_bits - 2 + k)), srdhm(r, factor), r)
    return np.where(a == 0, INT32_MAX, r)


def reciprocal(x: np.ndarray) -> np.ndarray:
    """gemmlowp's one_over_one_plus_x_for_x_in_0_1: x in [0, 1) Q0.31, result 1 / (1 + x) in Q0.31. Newton-Raphson
    on h = (1 + x) / 2 (the rounding half sum), from 48/17 - 32/17 h in Q2.29, three steps."""
    v = np.asarray(x, dtype=np.int64) + INT32_MAX
    v = v + np.where(v >= 0, 1, -1)
    half = np.sign(v) * (np.abs(v) // 2)  # (x + one + sign) / 2, truncating
    r = wrap32(1515870810 + srdhm(half, -1010580540))
    for _ in range(3):
        err = wrap32((1 << 29) - srdhm(half, r))
        r = wrap32(r + sat_shl(srdhm(r, err), 2))
    return sat_shl(r, 1)


def softmax_s8(x: np.ndarray, axis: int, mult: int, left_shift: int, diff_min: int) -> np.ndarray:
    """TFLM's int8 SOFTMAX along axis (twin of ec_softmax_tflm_s8), output scale 1/256, zero point -128."""
    x = np.asarray(x, dtype=np.int64)
    d = x - x.max(axis=axis, keepdims=True)
    live = d >= diff_min
    e = exp_negative(srdhm(wrap32(d << left_shift), mult))
    total = wrap32(np.where(live, rdbpot(e, SOFTMAX_ACCUM_BITS), 0).sum(axis=axis, keepdims=True))
    clz = 32 - np.frexp(total.astype(np.float64))[1]  # total > 0: exp(0) alone contributes 2^19
    bits = SOFTMAX_ACCUM_BITS - clz
    recip = reciprocal(wrap32((total << clz) - (1 << 31)))
    out = rdbpot(srdhm(recip, e), bits + 31 - 8) - 128
    return np.where(live, np.clip(out, -128, 127), -128).astype(np.int8)


# ---- kernels ---------------------------------------------------------------------------------------------------------

# Kernels that also exist as <kernel>_tflm (runtime_c/src/<kernel>_tflm.c): the same code compiled with EC_TFLM, whose
# requantizations (and average) are TFLM's.
TFLM_KERNELS = frozenset({
    "ec_add_s8", "ec_avgpool_dsp_s8", "ec_avgpool_mve_s8", "ec_avgpool_neon_s8", "ec_avgpool_s8",
    "ec_conv2d_1x1_mve_s8", "ec_conv2d_1x1_neon_s8", "ec_conv2d_1x1_s8", "ec_conv2d_im2col_mve_s8",
    "ec_conv2d_im2col_neon_s8", "ec_conv2d_im2col_s8", "ec_conv2d_lanes_neon_s8", "ec_conv2d_nm_s8", "ec_conv2d_s8",
    "ec_conv2d_sparse_s8", "ec_convert", "ec_depthwise_conv2d_3x3_neon_s8", "ec_depthwise_conv2d_3x3_planar_s8",
    "ec_depthwise_conv2d_3x3_s8", "ec_depthwise_conv2d_mve_s8", "ec_depthwise_conv2d_neon_s8",
    "ec_depthwise_conv2d_packed_s8", "ec_depthwise_conv2d_plane_mve_s8", "ec_depthwise_conv2d_s8",
    "ec_fully_connected_block4_s8", "ec_fully_connected_mve_s8", "ec_fully_connected_neon_s8",
    "ec_fully_connected_nm_s8", "ec_fully_connected_packed_s8", "ec_fully_connected_s8",
    "ec_fully_connected_sparse_gather_s8", "ec_fully_connected_sparse_s8", "ec_mul_s8",
    "ec_conv2d_gather_mve_s8", "ec_conv2d_gather_s8",
})
# Kernels that move data only: an integer node may use them without parameters computed for TFLM.
DATA_KERNELS = frozenset({"ec_transpose", "ec_pad"})


def tflm_kernel(kernel: str) -> str:
    return f"{kernel}_tflm" if kernel in TFLM_KERNELS else kernel


def retarget(node: Node, low: Lowered) -> Lowered:
    """In a graph with TFLM's arithmetic: the calls of a node whose parameters were computed for it (uses_tflm),
    each kernel that has a TFLM build replaced by it (the others, e.g. ec_maxpool_s8, ec_lut_s8 with TFLM's table and
    ec_softmax_tflm_s8, compute TFLM's results as they are). Raises EdgecError for an integer node that would
    compute edgec's own arithmetic."""
    if node.dtype == "float32":
        return low
    tagged = uses_tflm(node.q)
    for call in low.calls:
        if tagged:
            call.kernel = tflm_kernel(call.kernel)
        elif call.kernel not in DATA_KERNELS and not (call.kernel == "ec_concat" and _plain_concat(node)):
            raise EdgecError(f"{node.op} (node '{node.name}', {node.dtype}): edgec cannot compute it with TFLM's "
                             f"arithmetic yet (kernel {call.kernel}); this .tflite model cannot be built bit-exact")
    return low


def _plain_concat(node: Node) -> bool:
    """An int8 Concat that only copies (every input has the output's scale and zero point, as TFLM requires)."""
    q = node.q or {}
    return node.dtype == "int8" and all(t is None for t in q.get("tables", [None]))


# ---- elementwise int8 activations: tables of TFLM's integer functions over the 256 inputs ---------------------------

Q_ALL = np.arange(-128, 128, dtype=np.int64)


def _frexp_multiplier(real: float) -> tuple[int, int]:
    """LOGISTIC's and TANH's own QuantizeMultiplier: frexp and a rounded fraction, without folding 2^31."""
    frac, shift = math.frexp(real)
    return int(wrap32(int(round_away(frac * (1 << 31))))), shift


def _logistic_q4(a: np.ndarray) -> np.ndarray:
    """gemmlowp's logistic of Q4.27 values, Q0.31."""
    pos = np.where(a > 0, a, -a)
    r_pos = reciprocal(exp_negative(-pos, 4))
    r = np.where(a > 0, r_pos, wrap32(INT32_MAX - r_pos))
    return np.where(a == 0, 1 << 30, r)


def _one_minus_x_over_one_plus_x(a: np.ndarray) -> np.ndarray:
    """gemmlowp's one_minus_x_over_one_plus_x_for_x_in_0_1: reciprocal's iteration, then (x - one) in Q0.31."""
    v = np.asarray(a, dtype=np.int64) + INT32_MAX
    v = v + np.where(v >= 0, 1, -1)
    half = np.sign(v) * (np.abs(v) // 2)
    r = wrap32(1515870810 + srdhm(half, -1010580540))
    for _ in range(3):
        err = wrap32((1 << 29) - srdhm(half, r))
        r = wrap32(r + sat_shl(srdhm(r, err), 2))
    return sat_shl(wrap32(r - (1 << 29)), 2)


def _tanh_q4(a: np.ndarray) -> np.ndarray:
    """gemmlowp's tanh of Q4.27 values, Q0.31."""
    neg = np.where(a < 0, a, -a)
    t = _one_minus_x_over_one_plus_x(exp_negative(neg, 5))  # ExactMulByPot<1>: the raw read as Q5.26
    return np.where(a == 0, 0, np.where(a < 0, -t, t))


def _radius_q4(shift: int) -> int:
    return math.floor(15.0 * float(1 << 27) / float(2.0**shift))


def _srdhm16(a: np.ndarray, b: int) -> np.ndarray:
    """gemmlowp's SaturatingRoundingDoublingHighMul on int16: round(a * b / 2^15), ties up; -2^15 * -2^15
    saturates."""
    a = np.asarray(a, dtype=np.int64)
    return np.where((a == -32768) & (b == -32768), 32767, (a * b + (1 << 14)) >> 15)


def _sdhm16(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """HARD_SWISH's SaturatingDoublingHighMul on int16: a * b / 2^15 truncated toward zero (C division)."""
    ab = np.asarray(a, dtype=np.int64) * np.asarray(b, dtype=np.int64)
    r = np.sign(ab) * (np.abs(ab) >> 15)
    return np.where((np.asarray(a) == -32768) & (np.asarray(b) == -32768), 32767, r)


def _int16_multiplier(real: float) -> tuple[int, int]:
    """QuantizeMultiplier, then DownScaleInt32ToInt16Multiplier: the top 16 bits rounded (32767 at the top)."""
    mult, shift = quantize_multiplier(real)
    return (32767 if mult >= INT32_MAX - (1 << 15) else (mult + (1 << 15)) >> 16), shift


def _hard_swish(x: np.ndarray, s_in: float, s_out: float, zp_out: int) -> np.ndarray:
    """TFLM's int8 HARD_SWISH (reference_ops::HardSwish): int16 fixed point, x = input - input zero point."""
    hires = f32(1.0 / 128.0) * f32(s_in)
    out_m, out_e = _int16_multiplier(float(hires / f32(s_out)))
    rel_m, rel_e = _int16_multiplier(float(hires / (f32(3.0) / f32(32768.0))))
    if out_e > 0 or -out_e > 15 or rel_e < -15:
        raise ValueError(f"the scales give HARD_SWISH shifts ({out_e}, {rel_e}) TFLM does not take")
    hi = x * 128
    pre_out = _srdhm16(hi, out_m)
    rel = hi
    if rel_e > 0:
        rel = np.clip(rel << (rel_e - 1), -32768, 32767)
    rel = _srdhm16(rel, rel_m)
    if rel_e > 0:
        rel = np.clip(rel << 1, -32768, 32767)
    if rel_e < 0:
        rel = rdbpot(rel, -rel_e)
    rel = (rel + (1 << 15)) >> 1
    y = rdbpot(_sdhm16(rel, pre_out), -out_e) + zp_out
    return np.clip(y, -128, 127)


def unary_table(op: str, attrs: dict, s_in: float, zp_in: int, s_out: float, zp_out: int) -> np.ndarray:
    """The int8 output TFLM computes for every int8 input (table[q + 128]) of RELU (Relu), RELU6 (Clip to [0, 6]),
    LOGISTIC (Sigmoid), TANH, LEAKY_RELU and HARD_SWISH. Raises ValueError for what TFLM does not compute this
    way."""
    x = Q_ALL - zp_in
    if op == "Relu":
        mult, shift = quantize_multiplier(float(f32(s_in) / f32(s_out)))
        y = requantize(x, mult, shift) + zp_out
        return np.clip(y, max(-128, zp_out), 127).astype(np.int8)
    if op == "Clip" and (attrs.get("min"), attrs.get("max")) == (0.0, 6.0):
        six = int(np.clip(round_away(float(f32(6.0) / f32(s_in))) + zp_in, -128, 127))
        return np.clip(Q_ALL, zp_in, six).astype(np.int8)  # RELU6 keeps the input's quantization
    if op in ("Sigmoid", "Tanh"):
        want = (1.0 / 256.0, -128) if op == "Sigmoid" else (1.0 / 128.0, 0)
        if (float(f32(s_out)), zp_out) != want:
            raise ValueError(f"TFLM's int8 {op} needs the output scale {want[0]} and zero point {want[1]}, the model "
                             f"has {s_out:.6g} and {zp_out}")
        mult, shift = _frexp_multiplier(float(f32(s_in)) * float(1 << 27))
        radius = _radius_q4(shift)
        v = requantize(np.clip(x, -radius, radius), mult, shift)
        if op == "Sigmoid":
            y = np.clip(rdbpot(_logistic_q4(v), 23) - 128, -128, 127)
        else:
            y = np.clip(rdbpot(_tanh_q4(v), 24), -128, 127)
        return np.where(x <= -radius, -128, np.where(x >= radius, 127, y)).astype(np.int8)
    if op == "LeakyRelu":
        am, ash = quantize_multiplier(float(f32(s_in) * f32(attrs.get("alpha", 0.01)) / f32(s_out)))
        im, ish = quantize_multiplier(float(f32(s_in) / f32(s_out)))
        neg = requantize(x, abs(am), ash) * (-1 if am < 0 else 1)
        y = zp_out + np.where(x >= 0, requantize(x, im, ish), neg)
        return np.clip(y, -128, 127).astype(np.int8)
    if op == "HardSwish":
        return _hard_swish(x, s_in, s_out, zp_out).astype(np.int8)
    raise ValueError(f"{op} has no TFLM int8 table here")
