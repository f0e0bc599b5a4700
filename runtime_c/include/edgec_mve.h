/*
 * edgec runtime: helpers shared by the int8 kernels for Helium (MVE, Cortex-M55): the vectorized output stage and
 * the int8 matrix core (VMLADAVA.S8, 16 multiply-accumulates per instruction). Not part of the public API.
 *
 * Offset folding: these kernels multiply the raw int8 inputs x with the weights. The input zero point is folded
 * into the bias at build time (bias - in_zp * sum of the channel's weights), and positions in the padding read
 * in_zp, so every sum equals bias + sum((x - in_zp) * w) as in ec_conv2d_s8. The int32 sums wrap the same way as
 * the reference's whenever the reference's accumulator fits in int32.
 *
 * Output stage, exact with ec_requantize (edgec.h): r = (x * m + 2^(t - 1)) >> t with t = 31 - shift, m >= 0.
 *  - shift < 0 (e = -shift >= 1): with h = floor(x * m / 2^31) (VQDMULH, exact: m >= 0 rules out its
 *    saturation), r = (h + 2^(e - 1)) >> e (VRSHL by -e): the low 31 bits of the product cannot carry the sum
 *    across a multiple of 2^e, so one rounding of h is the rounding of the whole product.
 *  - shift >= 0: r = (x' * m + 2^30) >> 31 = VQRDMULH(x', m) with x' = x * 2^shift. VQSHL saturates x' where it
 *    overflows int32; then |r| >= 2^30 either way with the same sign, so r clamped to int8 (every caller clamps,
 *    m >= 2^30 or m == 0 from quantize_multiplier; the Add uses this on its inputs only for shift <= 0, where nothing saturates) is the same.
 */
#ifndef EDGEC_MVE_H
#define EDGEC_MVE_H

#include "edgec_internal.h"

#if defined(__ARM_FEATURE_MVE)
#include <arm_mve.h>

/* ec_requantize(acc, mult, shift) in each lane (mult >= 0), exact for shifts < 0 and for results that are then
 * clamped to int8 (see above). right: 1 when every shift is negative (two instructions instead of eight), 2 when
 * every shift is 0 (one: VQRDMULH), 0 otherwise. */
static inline int32x4_t ec_mve_requantize(int32x4_t acc, int32x4_t mult, int32x4_t shift, int32_t right)
{
    const int32x4_t zero = vdupq_n_s32(0);
#if defined(EC_TFLM)
    /* TFLM's arithmetic (edgec_tflm.h), exact in every lane: VSHL wraps as TFLM's x * 2^shift does, VQRDMULH is
     * srdhm, and rdbpot is a rounding shift (VRSHL, ties up) of x - 1 for negative x (ties away from zero; the
     * AND with the negative shift count is negative only where both are, and x = INT32_MIN needs no rounding). */
    if (right == 2) {
        return vqrdmulhq_s32(acc, mult);
    }
    {
        const int32x4_t down = vminq_s32(shift, zero);
        const int32x4_t h = vqrdmulhq_s32(right == 1 ? acc : vshlq_s32(acc, vmaxq_s32(shift, zero)), mult);
        return vrshlq_s32(vqaddq_s32(h, vshrq_n_s32(vandq_s32(h, down), 31)), down);
    }
#else
    if (right == 1) {
        return vrshlq_s32(vqdmulhq_s32(acc, mult), shift);
    }
    if (right == 2) {
        return vqrdmulhq_s32(acc, mult);
    }
    {
        const int32x4_t down = vrshlq_s32(vqdmulhq_s32(acc, mult), vminq_s32(shift, zero));
        const int32x4_t up = vqrdmulhq_s32(vqshlq_s32(acc, vmaxq_s32(shift, zero)), mult);
        return vpselq_s32(down, up, vcmpltq_n_s32(shift, 0));
    }
#endif
}

/* clamp(requantize(acc) + zp, lo, hi) in each lane. */
static inline int32x4_t ec_mve_output(int32x4_t acc, int32x4_t mult, int32x4_t shift, int32_t zp, int32_t lo,
                                      int32_t hi, int32_t right)
{
    const int32x4_t r = vqaddq_n_s32(ec_mve_requantize(acc, mult, shift, right), zp); /* saturating: clamps alike */
    return vminq_s32(vmaxq_s32(r, vdupq_n_s32(lo)), vdupq_n_s32(hi));
}

/* Dot products of 16 bytes at a time over k elements, the last partial block loaded under a lane predicate
 * (lanes beyond k read as zero, memory beyond them is not touched): (x0.w0, x0.w1, x1.w0, x1.w1). */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline int32x4_t ec_mve_dot_2x2(const int8_t *x0, const int8_t *x1, const int8_t *w0, const int8_t *w1,
                                       int32_t k)
{
    int32_t a00 = 0, a01 = 0, a10 = 0, a11 = 0;
    int32_t i;
    int32x4_t r = vdupq_n_s32(0);
    for (i = k >> 4; i > 0; --i) {
        const int8x16_t u = vldrbq_s8(x0), v = vldrbq_s8(x1), p = vldrbq_s8(w0), q = vldrbq_s8(w1);
        a00 = vmladavaq_s8(a00, u, p);
        a01 = vmladavaq_s8(a01, u, q);
        a10 = vmladavaq_s8(a10, v, p);
        a11 = vmladavaq_s8(a11, v, q);
        x0 += 16;
        x1 += 16;
        w0 += 16;
        w1 += 16;
    }
    if (k & 15) {
        const mve_pred16_t t = vctp8q((uint32_t)(k & 15));
        const int8x16_t u = vldrbq_z_s8(x0, t), v = vldrbq_z_s8(x1, t), p = vldrbq_z_s8(w0, t);
        const int8x16_t q = vldrbq_z_s8(w1, t);
        a00 = vmladavaq_s8(a00, u, p);
        a01 = vmladavaq_s8(a01, u, q);
        a10 = vmladavaq_s8(a10, v, p);
        a11 = vmladavaq_s8(a11, v, q);
    }
    r = vsetq_lane_s32(a00, r, 0);
    r = vsetq_lane_s32(a01, r, 1);
    r = vsetq_lane_s32(a10, r, 2);
    return vsetq_lane_s32(a11, r, 3);
}

/* (x.w0, x.w1, x.w2, x.w3) */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline int32x4_t ec_mve_dot_1x4(const int8_t *x, const int8_t *w0, int32_t k)
{
    const int8_t *w1 = w0 + k, *w2 = w1 + k, *w3 = w2 + k;
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    int32_t i;
    int32x4_t r = vdupq_n_s32(0);
    for (i = k >> 4; i > 0; --i) {
        const int8x16_t u = vldrbq_s8(x);
        a0 = vmladavaq_s8(a0, u, vldrbq_s8(w0));
        a1 = vmladavaq_s8(a1, u, vldrbq_s8(w1));
        a2 = vmladavaq_s8(a2, u, vldrbq_s8(w2));
        a3 = vmladavaq_s8(a3, u, vldrbq_s8(w3));
        x += 16;
        w0 += 16;
        w1 += 16;
        w2 += 16;
        w3 += 16;
    }
    if (k & 15) {
        const mve_pred16_t t = vctp8q((uint32_t)(k & 15));
        const int8x16_t u = vldrbq_z_s8(x, t);
        a0 = vmladavaq_s8(a0, u, vldrbq_z_s8(w0, t));
        a1 = vmladavaq_s8(a1, u, vldrbq_z_s8(w1, t));
        a2 = vmladavaq_s8(a2, u, vldrbq_z_s8(w2, t));
        a3 = vmladavaq_s8(a3, u, vldrbq_z_s8(w3, t));
    }
    r = vsetq_lane_s32(a0, r, 0);
    r = vsetq_lane_s32(a1, r, 1);
    r = vsetq_lane_s32(a2, r, 2);
    return vsetq_lane_s32(a3, r, 3);
}
#endif

/* 1 when shift[0 .. n - 1] are all negative (the usual case: the fast output stage applies). */
static inline int32_t ec_mve_right_shifts(const int32_t *shift, int32_t n)
{
    int32_t i = 0, top = INT32_MIN;
#if defined(__ARM_FEATURE_MVE)
    int32x4_t m = vdupq_n_s32(INT32_MIN);
    for (; i + 4 <= n; i += 4) {
        m = vmaxq_s32(m, vldrwq_s32(shift + i));
    }
    top = vmaxvq_s32(INT32_MIN, m);
#endif
    for (; i < n; ++i) {
        top = shift[i] > top ? shift[i] : top;
    }
    return top < 0;
}

/* The output stage arrays of the matrix kernels (bias, q->mult, q->shift) hold 4 int32 per pair of channels
 * (2j, 2j + 1): (c, c + 1, c, c + 1), the lanes of a 2 positions x 2 channels block; an odd channel count is padded
 * with a zero channel. Entry of channel c for position r (0 or 1): */
static inline int32_t ec_mve_pair_slot(int32_t c, int32_t r)
{
    return (c >> 1) * 4 + r * 2 + (c & 1);
}

/* For every channel c < n: out0[c] = output stage(bias[c] + x0 . w[c]) and, when x1 != NULL, out1[c] likewise
 * for x1. w: [n][k] int8 row-major; x0, x1: k int8 each; bias, q->mult, q->shift in the pair layout above. */
static inline void ec_mve_gemm_s8(const int8_t *x0, const int8_t *x1, const int8_t *w, int32_t k, int32_t n,
                                  const int32_t *bias, const ec_quant_s8 *q, int8_t *out0, int8_t *out1,
                                  int32_t right)
{
    const int32_t zp = q->out_zp, lo = q->act_min, hi = q->act_max;
    const int32_t *const mult = q->mult, *const shift = q->shift;
    int32_t c = 0;
#if !defined(__ARM_FEATURE_MVE)
    (void)right; /* the plain C output stage is exact for every shift */
#else
    if (x1 != NULL) {
        /* 2 positions x 2 channels per block, stored by one scatter: lanes (out0[c], out0[c + 1], out1[c],
         * out1[c + 1]) */
        const uint32_t d = (uint32_t)(out1 - out0);
        uint32x4_t off = vdupq_n_u32(0);
        off = vsetq_lane_u32(1, off, 1);
        off = vsetq_lane_u32(d, off, 2);
        off = vsetq_lane_u32(d + 1, off, 3);
        for (; c < n; c += 2) {
            const int8_t *w0 = w + c * k;
            const int32_t two = c + 1 < n;
            const int32_t *e = bias + 2 * c;
            const int32x4_t acc = vaddq_s32(ec_mve_dot_2x2(x0, x1, w0, two ? w0 + k : w0, k), vldrwq_s32(e));
            const int32x4_t r =
                ec_mve_output(acc, vldrwq_s32(mult + 2 * c), vldrwq_s32(shift + 2 * c), zp, lo, hi, right);
            vstrbq_scatter_offset_p_s32(out0 + c, off, r, two ? 0xffff : 0x0f0f);
        }
        return;
    }
    {
        /* one position x 4 channels; the output stage gathers entries (0, 1, 4, 5) of two pairs */
        uint32x4_t off = vdupq_n_u32(0);
        off = vsetq_lane_u32(1, off, 1);
        off = vsetq_lane_u32(4, off, 2);
        off = vsetq_lane_u32(5, off, 3);
        for (; c + 4 <= n; c += 4) {
            const int32x4_t acc = vaddq_s32(ec_mve_dot_1x4(x0, w + c * k, k),
                                            vldrwq_gather_shifted_offset_s32(bias + 2 * c, off));
            const int32x4_t r = ec_mve_output(acc, vldrwq_gather_shifted_offset_s32(mult + 2 * c, off),
                                              vldrwq_gather_shifted_offset_s32(shift + 2 * c, off), zp, lo, hi, right);
            vstrbq_s32(out0 + c, r);
        }
    }
#endif
    for (; c < n; ++c) {
        const int8_t *wc = w + c * k;
        const int32_t s = ec_mve_pair_slot(c, 0);
        int32_t a0 = bias[s], a1 = a0, i;
        for (i = 0; i < k; ++i) {
            a0 += x0[i] * wc[i];
            if (x1 != NULL) {
                a1 += x1[i] * wc[i];
            }
        }
        out0[c] = ec_output_s8(ec_requantize(a0, mult[s], shift[s]), zp, lo, hi);
        if (x1 != NULL) {
            out1[c] = ec_output_s8(ec_requantize(a1, mult[s], shift[s]), zp, lo, hi);
        }
    }
}

/* ec_mve_gemm_s8 for all rows at once: row r (r < rows) at x + r * stride, its outputs at out + r * n. Channel
 * pairs outside, rows inside, so each pair's weights and output stage are read once; when k <= 16 the pair's
 * weights stay in registers. */
static inline void ec_mve_gemm_rows_s8(const int8_t *x, int32_t stride, int32_t rows, const int8_t *w, int32_t k,
                                       int32_t n, const int32_t *bias, const ec_quant_s8 *q, int8_t *out,
                                       int32_t right)
{
#if defined(__ARM_FEATURE_MVE)
    const int32_t zp = q->out_zp, lo = q->act_min, hi = q->act_max;
    uint32x4_t off = vdupq_n_u32(0);
    int32_t c, r;
    off = vsetq_lane_u32(1, off, 1);
    off = vsetq_lane_u32((uint32_t)n, off, 2);
    off = vsetq_lane_u32((uint32_t)n + 1, off, 3);
    for (c = 0; c < n; c += 2) {
        const int8_t *w0 = w + c * k, *w1 = c + 1 < n ? w0 + k : w0;
        const mve_pred16_t pc = c + 1 < n ? 0xffff : 0x0f0f;
        const int32x4_t b = vldrwq_s32(bias + 2 * c), m = vldrwq_s32(q->mult + 2 * c);
        const int32x4_t s = vldrwq_s32(q->shift + 2 * c);
        if (k <= 16) {
            const mve_pred16_t t = vctp8q((uint32_t)k);
            const int8x16_t p0 = vldrbq_z_s8(w0, t), p1 = vldrbq_z_s8(w1, t);
            for (r = 0; r < rows; r += 2) {
                const int8_t *x0 = x + r * stride, *x1 = r + 1 < rows ? x0 + stride : x0;
                const int8x16_t u = vldrbq_z_s8(x0, t), v = vldrbq_z_s8(x1, t);
                int32x4_t acc = vdupq_n_s32(0);
                acc = vsetq_lane_s32(vmladavq_s8(u, p0), acc, 0);
                acc = vsetq_lane_s32(vmladavq_s8(u, p1), acc, 1);
                acc = vsetq_lane_s32(vmladavq_s8(v, p0), acc, 2);
                acc = vsetq_lane_s32(vmladavq_s8(v, p1), acc, 3);
                vstrbq_scatter_offset_p_s32(out + r * n + c, off,
                                            ec_mve_output(vaddq_s32(acc, b), m, s, zp, lo, hi, right),
                                            (mve_pred16_t)(pc & (r + 1 < rows ? 0xffff : 0x00ff)));
            }
        } else {
            for (r = 0; r < rows; r += 2) {
                const int8_t *x0 = x + r * stride, *x1 = r + 1 < rows ? x0 + stride : x0;
                const int32x4_t acc = vaddq_s32(ec_mve_dot_2x2(x0, x1, w0, w1, k), b);
                vstrbq_scatter_offset_p_s32(out + r * n + c, off, ec_mve_output(acc, m, s, zp, lo, hi, right),
                                            (mve_pred16_t)(pc & (r + 1 < rows ? 0xffff : 0x00ff)));
            }
        }
    }
#else
    int32_t r;
    for (r = 0; r < rows; r += 2) {
        const int8_t *x1 = r + 1 < rows ? x + (r + 1) * stride : NULL;
        ec_mve_gemm_s8(x + r * stride, x1, w, k, n, bias, q, out + r * n, out + (r + 1) * n, right);
    }
#endif
}

#endif /* EDGEC_MVE_H */
