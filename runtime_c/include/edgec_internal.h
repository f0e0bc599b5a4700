/*
 * edgec runtime: small static inline helpers shared by the kernels in runtime_c/src (not part of the public API).
 */
#ifndef EDGEC_INTERNAL_H
#define EDGEC_INTERNAL_H

#include <math.h>

#include "edgec.h"

/* acc / d for d > 0, rounded to nearest, ties to even (the average pools). */
static inline int32_t ec_div_round_even(int32_t acc, int32_t d)
{
    int32_t q = acc / d, r = acc % d; /* C truncates toward zero */
    if (r < 0) {
        q -= 1;
        r += d;
    }
    return q + ((2 * r > d || (2 * r == d && (q & 1))) ? 1 : 0);
}

/* clamp(r + zp, lo, hi) as int8, clamping before adding zp so that r + zp cannot overflow int32. */
static inline int8_t ec_output_s8(int32_t r, int32_t zp, int32_t lo, int32_t hi)
{
    return (int8_t)(ec_clamp_i32(r, lo - zp, hi - zp) + zp);
}

/* clamp(r + zp, lo, hi) as int16, clamping before adding zp (as ec_output_s8). */
static inline int16_t ec_output_i16(int32_t r, int32_t zp, int32_t lo, int32_t hi)
{
    return (int16_t)(ec_clamp_i32(r, lo - zp, hi - zp) + zp);
}

/* clamp(r, lo, hi) as int16 (int16 activations have zero point 0); r is a 64-bit requantized accumulator. */
static inline int16_t ec_output_s16(int64_t r, int32_t lo, int32_t hi)
{
    return (int16_t)(r < lo ? lo : (r > hi ? hi : r));
}

/* clamp(ec_requantize_s64(x, mult, shift), lo, hi) for |x| < 2^47, 0 <= mult <= 2^15, shift <= 14 and
 * -32768 <= lo <= hi <= 32767, in 32-bit pieces. With t = 15 - shift and s = t - 1 >= 0, ec_requantize_s64 is
 * floor((x * mult + 2^s) / 2^t) = floor((v + 1) / 2) with v = floor(x * mult / 2^s). x * mult = H * 2^32 + L with
 * L = the low word of (x mod 2^32) * mult (UMULL) and H = (x >> 32) * mult + its high word (MLA; |H| < 2^31). v is
 * saturated to int32, which changes no result after the clamp (|v| >= 2^31 means |y| >= 2^30). */
static inline int16_t ec_requantize_s64_clamp(int64_t x, int32_t mult, int32_t shift, int32_t lo, int32_t hi)
{
    const int32_t s = 14 - shift;
    const uint64_t pl = (uint64_t)(uint32_t)x * (uint32_t)mult;
    const int32_t h = (int32_t)(x >> 32) * mult + (int32_t)(pl >> 32);
    const uint32_t l = (uint32_t)pl;
    int32_t v, y;
    if (s >= 32) {
        v = h >> (s - 32);
    } else {
        /* v = (h:l) >> s; its high word vh must be the sign of its low word, else saturate */
        const int32_t vh = s > 0 ? h >> s : h;
        v = s > 0 ? (int32_t)((l >> s) | ((uint32_t)h << (32 - s))) : (int32_t)l;
        if (vh != (v >> 31)) {
            v = vh < 0 ? INT32_MIN : INT32_MAX;
        }
    }
    y = (v >> 1) + (v & 1);
    return (int16_t)(y < lo ? lo : (y > hi ? hi : y));
}

/* clamp(ec_requantize_s64(x, mult, shift), lo, hi) for |x| < 2^31, 0 <= mult <= 2^15, 17 <= s = 14 - shift <= 32
 * and -32768 <= lo <= hi <= 32767 (see ec_requantize_s64_clamp): v = floor(x * mult / 2^s) is the high word of
 * x * (mult << (32 - s)) (one SMULL; mult << (32 - s) < 2^31, |v| < 2^30), and the result floor((v + 1) / 2). */
static inline int16_t ec_requantize_s32_clamp(int32_t x, int32_t mult, int32_t shift, int32_t lo, int32_t hi)
{
    const int32_t v = (int32_t)(((int64_t)x * (mult << (shift + 18))) >> 32);
    const int32_t y = (v + 1) >> 1;
    return (int16_t)(y < lo ? lo : (y > hi ? hi : y));
}

/* 1 when ec_requantize_s32_clamp applies to every channel of a 16x8 layer: 17 <= 14 - shift <= 32, and every
 * accumulator bias[i] + (a sum of k products of an int16 and an int8, each at most 2^22 in magnitude) is below
 * 2^31 in magnitude. */
static inline int32_t ec_s16_fast_ok(const int64_t *bias, const ec_quant_s16 *q, int32_t n, int32_t k)
{
    const int64_t limit = (INT64_C(1) << 31) - (int64_t)k * (INT64_C(1) << 22);
    int32_t i;
    if (limit <= 0) {
        return 0;
    }
    for (i = 0; i < n; ++i) {
        const int32_t s = 14 - q->shift[i];
        if ((bias != NULL && (bias[i] >= limit || bias[i] <= -limit)) || s < 17 || s > 32) {
            return 0;
        }
    }
    return 1;
}

/* Linear interpolation between 513 knots at int16 x (ec_lut_s16): u = x + 32768, knot u >> 7, fraction u & 127. */
static inline int32_t ec_interp_s16(const int16_t *table, int32_t x)
{
    const int32_t u = x + 32768;
    const int32_t i = u >> 7;
    const int32_t t0 = table[i];
    return t0 + (((table[i + 1] - t0) * (u & 127) + 64) >> 7);
}

/* The shift of ec_add_lut_s8 / ec_add_lut_mve_s8 (toolchain/ops/binary.py LUT_SHIFT). */
#define EC_ADD_LUT_SHIFT 20

/* One element of ec_add_lut_s8 before the activation clamp, u = (uint8_t)y: (x * mult + table[u]) >> 20
 * saturated to int8 (one SSAT with the DSP extension). */
static inline int32_t ec_add_lut_elem(int32_t x, uint32_t u, const int32_t *table, int32_t mult)
{
    const int32_t v = (x * mult + table[u]) >> EC_ADD_LUT_SHIFT;
#if defined(__ARM_FEATURE_DSP)
    return (int32_t)__builtin_arm_ssat(v, 8);
#else
    return ec_clamp_i32(v, -128, 127);
#endif
}

/* One element of ec_mul_lut_s8 before the activation clamp: (x * mults[u] + table[u]) >> 20 saturated to int8. */
static inline int32_t ec_mul_lut_elem(int32_t x, uint32_t u, const int32_t *mults, const int32_t *table)
{
    return ec_add_lut_elem(x, u, table, mults[u]);
}

/* The output stage of ec_avgpool_s8 for one channel: the window sum acc of (x - zp) over d taps, requantized when
 * mult != 0, else divided by d rounding to nearest (edgec: ties to even; compiled with EC_TFLM: TFLM's
 * AVERAGE_POOL_2D, ties away from zero), plus out_zp, clamped. */
static inline int8_t ec_avgpool_out(int32_t acc, int32_t d, int32_t mult, int32_t shift, int32_t out_zp, int32_t lo,
                                    int32_t hi)
{
    if (mult != 0) {
        acc = ec_requantize(acc, mult, shift);
    } else if (d > 0) {
#if defined(EC_TFLM)
        acc = acc > 0 ? (acc + d / 2) / d : (acc - d / 2) / d;
#else
        acc = ec_div_round_even(acc, d);
#endif
    }
    return ec_output_s8(acc, out_zp, lo, hi);
}

/* Float activation bounds; act == NULL means no clamp. */
static inline void ec_act_bounds(const ec_act_f32 *act, float *lo, float *hi)
{
    *lo = act != NULL ? act->act_min : -INFINITY;
    *hi = act != NULL ? act->act_max : INFINITY;
}

static inline float ec_clamp_f32(float x, float lo, float hi)
{
    return x < lo ? lo : (x > hi ? hi : x);
}

/* Window taps t in [0, k) whose input coordinate base + t * dil lies in [0, size): the range [*t0, *t1).
 * dil >= 1; the range is empty (t0 == t1) when no tap is inside. */
static inline void ec_window_range(int32_t base, int32_t dil, int32_t k, int32_t size, int32_t *t0, int32_t *t1)
{
    int32_t start = base >= 0 ? 0 : (dil - 1 - base) / dil;
    int32_t end = base < size ? (size - 1 - base) / dil + 1 : 0;
    if (end > k) {
        end = k;
    }
    if (start > end) {
        start = end;
    }
    *t0 = start;
    *t1 = end;
}

/* One output position (oy, ox) of a pooling layer (NHWC, the geometry of ec_conv_params): its taps inside the input,
 * rows x cols of them, the first one's element offset (channel 0) within a batch item, the element steps between tap
 * rows and tap columns, and the divisor of an average: the taps inside the input, or with x->count_include_pad those
 * inside the padded input (x == NULL: max pooling, no divisor). Shared by every pooling kernel. */
typedef struct {
    int32_t rows, cols, first, row_step, col_step, divisor;
} ec_pool_window;

static inline ec_pool_window ec_pool_window_at(const ec_conv_params *p, const ec_avgpool_extra *x, int32_t oy,
                                               int32_t ox)
{
    const int32_t iy0 = oy * p->stride_h - p->pad_top, ix0 = ox * p->stride_w - p->pad_left;
    int32_t ky0, ky1, kx0, kx1;
    ec_pool_window w;
    ec_window_range(iy0, p->dil_h, p->k_h, p->in_h, &ky0, &ky1);
    ec_window_range(ix0, p->dil_w, p->k_w, p->in_w, &kx0, &kx1);
    w.rows = ky1 - ky0;
    w.cols = kx1 - kx0;
    w.first = ((iy0 + ky0 * p->dil_h) * p->in_w + ix0 + kx0 * p->dil_w) * p->in_c;
    w.row_step = p->dil_h * p->in_w * p->in_c;
    w.col_step = p->dil_w * p->in_c;
    w.divisor = w.rows * w.cols;
    if (x != NULL && x->count_include_pad) {
        int32_t py0, py1, px0, px1;
        ec_window_range(iy0 + p->pad_top, p->dil_h, p->k_h, p->pad_top + p->in_h + x->pad_bottom, &py0, &py1);
        ec_window_range(ix0 + p->pad_left, p->dil_w, p->k_w, p->pad_left + p->in_w + x->pad_right, &px0, &px1);
        w.divisor = (py1 - py0) * (px1 - px0);
    }
    return w;
}

/* The sum of one channel's values over a pooling window's taps; x points at the first tap's value. */
static inline int32_t ec_pool_sum_s8(const int8_t *x, const ec_pool_window *w)
{
    int32_t acc = 0, r, k;
    for (r = 0; r < w->rows; ++r, x += w->row_step) {
        const int8_t *q = x;
        for (k = 0; k < w->cols; ++k, q += w->col_step) {
            acc += *q;
        }
    }
    return acc;
}

/* Strided N-d iteration (ec_broadcast_params): the dense output is walked as rows of `row_len` elements; operand
 * a (b) of row r starts at element a_off (b_off) and steps row_a (row_b) along the row. Dimensions of size 1 are
 * dropped and neighbouring dimensions that are contiguous for both operands are merged, so rows are as long as
 * possible. */
typedef struct {
    int32_t ndim; /* outer dimensions left after merging (the row dimension excluded) */
    int32_t shape[EC_MAX_DIMS];
    int32_t a_stride[EC_MAX_DIMS];
    int32_t b_stride[EC_MAX_DIMS];
    int32_t idx[EC_MAX_DIMS];
    int32_t rows, row_len, row_a, row_b;
    int32_t a_off, b_off;
} ec_nd_iter;

/* b_strides may be NULL for a single operand (b offsets then stay 0). */
static inline void ec_nd_init(ec_nd_iter *it, const int32_t *shape, const int32_t *a_strides,
                              const int32_t *b_strides)
{
    int32_t n = 0;
    int32_t d;
    it->rows = 1;
    for (d = 0; d < EC_MAX_DIMS; ++d) {
        const int32_t bs = b_strides != NULL ? b_strides[d] : 0;
        if (shape[d] == 1) {
            continue;
        }
        if (shape[d] <= 0) {
            it->rows = 0;
        }
        if (n > 0 && it->a_stride[n - 1] == a_strides[d] * shape[d] && it->b_stride[n - 1] == bs * shape[d]) {
            it->shape[n - 1] *= shape[d];
            it->a_stride[n - 1] = a_strides[d];
            it->b_stride[n - 1] = bs;
        } else {
            it->shape[n] = shape[d];
            it->a_stride[n] = a_strides[d];
            it->b_stride[n] = bs;
            it->idx[n] = 0;
            ++n;
        }
    }
    if (n == 0) { /* a scalar: one row of one element */
        it->row_len = 1;
        it->row_a = 0;
        it->row_b = 0;
    } else {
        --n;
        it->row_len = it->shape[n];
        it->row_a = it->a_stride[n];
        it->row_b = it->b_stride[n];
    }
    it->ndim = n;
    for (d = 0; d < n; ++d) {
        it->rows *= it->shape[d];
    }
    it->a_off = 0;
    it->b_off = 0;
}

/* Advance to the next row (odometer over the outer dimensions, innermost fastest). */
static inline void ec_nd_next(ec_nd_iter *it)
{
    int32_t d;
    for (d = it->ndim - 1; d >= 0; --d) {
        it->a_off += it->a_stride[d];
        it->b_off += it->b_stride[d];
        if (++it->idx[d] < it->shape[d]) {
            return;
        }
        it->idx[d] = 0;
        it->a_off -= it->a_stride[d] * it->shape[d];
        it->b_off -= it->b_stride[d] * it->shape[d];
    }
}

#endif /* EDGEC_INTERNAL_H */
