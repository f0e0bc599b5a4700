/*
 * edgec runtime: pieces shared by the int8 kernels written for NEON (Cortex-A53 in AArch64, Cortex-A7 in ARMv7-A):
 * ec_conv2d_1x1_neon_s8, ec_conv2d_im2col_neon_s8, ec_fully_connected_neon_s8 (a matrix core),
 * ec_depthwise_conv2d_3x3_neon_s8 and ec_depthwise_conv2d_neon_s8 (a tap-pointer helper), and the exact output
 * stage on 4 lanes. Each has a NEON path under __ARM_NEON and a plain C path with the same results. Not part of the
 * public API.
 *
 * Arithmetic (edgec.h, "int8 kernels for NEON"): the kernels multiply the stored int8 inputs x, not x - in_zp, with
 * the int8 weights, and take a folded bias bias[oc] - in_zp * (sum of the weights of oc), computed at build time
 * modulo 2^32. A tap in the padding reads in_zp and so contributes in_zp * w, which the folded bias cancels. Sums
 * wrap modulo 2^32, so the accumulator equals bias[oc] + sum((x - in_zp) * w) whenever that fits int32 (the
 * assumption of every int8 kernel). Weights lie in [-127, 127], so two products fit int16: a widening multiply
 * (VMULL.S8) and multiply-accumulate (VMLAL.S8) give 16 products in 8 int16 lanes, which a pairwise
 * add-accumulate (VPADAL.S16) adds into 4 int32 lanes (matrix kernels), or two widening adds (VADDW.S16) into 8
 * (depthwise, one channel per lane).
 *
 * Matrix layout (conv with groups == 1, fully connected): W [N][K] int8, K padded with zeros to K8 (K rounded up
 * to a multiple of 8), N padded with zero rows to a multiple of 4; row n starts at byte n * K8.
 */
#ifndef EDGEC_NEON_H
#define EDGEC_NEON_H

#include <string.h>

#include "edgec_internal.h"

#if defined(__ARM_NEON)
#include <arm_neon.h>
#endif

/* The most taps (k_h * k_w) ec_depthwise_conv2d_neon_s8 takes. */
#define EC_DW_NEON_MAX_TAPS 64

/* K rounded up to a multiple of 8. */
static inline int32_t ec_k8(int32_t k)
{
    return (k + 7) & ~7;
}

/* 1 when every shift is <= 0 and every accumulator (bias[i] folded, plus k products of an int8 input and a weight in
 * [-127, 127]) lies below 2^30 in magnitude, so that the short exact requantization of ec_neon_requant applies.
 * The true accumulator is the folded bias + in_zp * (sum of the weights) + sum((x - in_zp) * w). */
static inline int32_t ec_neon_fast_ok(const int32_t *bias, const ec_quant_s8 *q, int32_t n, int32_t k)
{
    const int64_t limit = (INT64_C(1) << 30) - (int64_t)k * (128 * 127 + 255 * 127);
    const int32_t ns = q->per_channel ? n : 1;
    int32_t i = 0, j = 0, smax = INT32_MIN, bmax = 0;
    if (limit <= 0) {
        return 0;
    }
#if defined(__ARM_NEON)
    {
        int32x4_t s4 = vdupq_n_s32(INT32_MIN), b4 = vdupq_n_s32(0);
        int32x2_t r;
        for (; i + 4 <= ns; i += 4) {
            s4 = vmaxq_s32(s4, vld1q_s32(q->shift + i));
        }
        for (; j + 4 <= n; j += 4) {
            b4 = vmaxq_s32(b4, vqabsq_s32(vld1q_s32(bias + j)));
        }
        r = vpmax_s32(vget_low_s32(s4), vget_high_s32(s4));
        smax = vget_lane_s32(vpmax_s32(r, r), 0);
        r = vpmax_s32(vget_low_s32(b4), vget_high_s32(b4));
        bmax = vget_lane_s32(vpmax_s32(r, r), 0);
    }
#endif
    for (; i < ns; ++i) {
        smax = q->shift[i] > smax ? q->shift[i] : smax;
    }
    for (; j < n; ++j) {
        const int32_t a = bias[j] == INT32_MIN ? INT32_MAX : (bias[j] < 0 ? -bias[j] : bias[j]);
        bmax = a > bmax ? a : bmax;
    }
    return smax <= 0 && bmax < limit;
}

/* Folded-bias accumulation step in plain C: acc + x * w modulo 2^32 (x * w fits int32). */
static inline uint32_t ec_mac_wrap(uint32_t acc, int32_t x, int32_t w)
{
    return acc + (uint32_t)(x * w);
}

/* dst[0 .. n - 1] = src[0 .. n - 1], inline (runs are short: a library call costs more than the copy). */
static inline void ec_neon_copy(int8_t *dst, const int8_t *src, int32_t n)
{
    int32_t i = 0;
#if defined(__ARM_NEON)
    for (; i + 16 <= n; i += 16) {
        vst1q_s8(dst + i, vld1q_s8(src + i));
    }
    if (n & 8) {
        vst1_s8(dst + i, vld1_s8(src + i));
        i += 8;
    }
#else
    for (; i + 8 <= n; i += 8) {
        memcpy(dst + i, src + i, 8);
    }
#endif
    if (n & 4) {
        memcpy(dst + i, src + i, 4);
        i += 4;
    }
    if (n & 2) {
        memcpy(dst + i, src + i, 2);
        i += 2;
    }
    if (n & 1) {
        dst[i] = src[i];
    }
}

/* dst[0 .. n - 1] = v, inline. */
static inline void ec_neon_fill(int8_t *dst, int32_t v, int32_t n)
{
    const uint32_t v4 = ((uint32_t)v & 0xffu) * 0x01010101u;
    int32_t i = 0;
#if defined(__ARM_NEON)
    const int8x16_t v16 = vdupq_n_s8((int8_t)v);
    for (; i + 16 <= n; i += 16) {
        vst1q_s8(dst + i, v16);
    }
    if (n & 8) {
        vst1_s8(dst + i, vget_low_s8(v16));
        i += 8;
    }
#else
    for (; i + 8 <= n; i += 8) {
        memcpy(dst + i, &v4, 4);
        memcpy(dst + i + 4, &v4, 4);
    }
#endif
    if (n & 4) {
        memcpy(dst + i, &v4, 4);
        i += 4;
    }
    if (n & 2) {
        memcpy(dst + i, &v4, 2);
        i += 2;
    }
    if (n & 1) {
        dst[i] = (int8_t)v;
    }
}

/* The output stage of one accumulator of channel i (plain C, any value). */
static inline int8_t ec_neon_out1(uint32_t acc, const ec_quant_s8 *q, int32_t i)
{
    const int32_t j = q->per_channel ? i : 0;
    return ec_output_s8(ec_requantize((int32_t)acc, q->mult[j], q->shift[j]), q->out_zp, q->act_min, q->act_max);
}

#if defined(__ARM_NEON)
/* v[i .. i + 3]; lanes past n repeat v[n - 1]; per_channel == 0: v[0] in every lane. */
static inline int32x4_t ec_neon_load4(const int32_t *v, int32_t i, int32_t n, int32_t per_channel)
{
    int32_t t[4];
    int32_t j;
    if (!per_channel) {
        return vdupq_n_s32(v[0]);
    }
    if (i + 4 <= n) {
        return vld1q_s32(v + i);
    }
    for (j = 0; j < 4; ++j) {
        t[j] = v[i + j < n ? i + j : n - 1];
    }
    return vld1q_s32(t);
}

/* ec_requantize on 4 lanes: (x * mult + 2^(30 - shift)) >> (31 - shift), rounded once, saturated to int32.
 * In general: the 64-bit products (VMULL.S32), a rounding right shift by 31 - shift (VRSHL.S64 with a negative
 * count rounds ties up, as ec_requantize does), a saturating narrowing (VQMOVN.S64).
 * fast (|x| < 2^30 and shift <= 0, see ec_neon_fast_ok): t = floor(x * mult / 2^30) is one VQDMULH of 2x (no
 * saturation: mult >= 0), and floor((x * mult + 2^(30 - shift)) / 2^(31 - shift)) = (t + 2^-shift) >> (1 - shift),
 * one VRSHL by shift - 1; the result lies below 2^30 in magnitude, so it needs no saturation. */
static inline int32x4_t ec_neon_requant(int32x4_t x, int32x4_t mult, int32x4_t shift, int32_t fast)
{
#if defined(EC_TFLM)
    /* TFLM's arithmetic (edgec_tflm.h), exact in every lane (as TFLite's own NEON kernels do it): VSHL wraps as
     * x * 2^shift does, VQRDMULH is srdhm, and rdbpot is VRSHL (ties up) of x - 1 for negative x when the shift is
     * negative (ties away from zero). */
    const int32x4_t zero = vdupq_n_s32(0);
    const int32x4_t down = vminq_s32(shift, zero);
    const int32x4_t h = vqrdmulhq_s32(vshlq_s32(x, vmaxq_s32(shift, zero)), mult);
    (void)fast;
    return vrshlq_s32(vqaddq_s32(h, vshrq_n_s32(vandq_s32(h, down), 31)), down);
#else
    if (fast) {
        return vrshlq_s32(vqdmulhq_s32(vaddq_s32(x, x), mult), vsubq_s32(shift, vdupq_n_s32(1)));
    } else {
        const int32x4_t count = vsubq_s32(shift, vdupq_n_s32(31));
        const int64x2_t lo = vrshlq_s64(vmull_s32(vget_low_s32(x), vget_low_s32(mult)),
                                        vmovl_s32(vget_low_s32(count)));
        const int64x2_t hi = vrshlq_s64(vmull_s32(vget_high_s32(x), vget_high_s32(mult)),
                                        vmovl_s32(vget_high_s32(count)));
        return vcombine_s32(vqmovn_s64(lo), vqmovn_s64(hi));
    }
#endif
}

/* ec_neon_requant with u = shift - fast (ec_neon_stage_tables): the short form's shift - 1 precomputed. */
static inline int32x4_t ec_neon_requant_t(int32x4_t x, int32x4_t mult, int32x4_t u, int32_t fast)
{
    (void)fast;
#if !defined(EC_TFLM)
    if (fast) {
        return vrshlq_s32(vqdmulhq_s32(vaddq_s32(x, x), mult), u);
    }
#endif
    return ec_neon_requant(x, mult, u, 0);
}

/* clamp(r + zp, lo, hi) for 8 lanes (r0 then r1). Saturating narrowings keep every value outside the int8 range
 * outside it, so the result equals ec_output_s8 lane by lane. */
static inline int8x8_t ec_neon_out8(int32x4_t r0, int32x4_t r1, int16x8_t zp, int8x8_t lo, int8x8_t hi)
{
    const int16x8_t h = vqaddq_s16(vcombine_s16(vqmovn_s32(r0), vqmovn_s32(r1)), zp);
    return vmin_s8(vmax_s8(vqmovn_s16(h), lo), hi);
}

/* acc + the 16 products w[i] * x[i], summed in pairs into 4 lanes. */
static inline int32x4_t ec_neon_mac16(int32x4_t acc, int8x16_t w, int8x16_t x)
{
    int16x8_t p = vmull_s8(vget_low_s8(w), vget_low_s8(x));
#if defined(__aarch64__)
    p = vmlal_high_s8(p, w, x);
#else
    p = vmlal_s8(p, vget_high_s8(w), vget_high_s8(x));
#endif
    return vpadalq_s16(acc, p);
}

/* The 16 products w[i] * x[i], summed in pairs into 4 lanes (the first step of a sum: no accumulator to clear). */
static inline int32x4_t ec_neon_mul16(int8x16_t w, int8x16_t x)
{
    int16x8_t p = vmull_s8(vget_low_s8(w), vget_low_s8(x));
#if defined(__aarch64__)
    p = vmlal_high_s8(p, w, x);
#else
    p = vmlal_s8(p, vget_high_s8(w), vget_high_s8(x));
#endif
    return vpaddlq_s16(p);
}

/* acc + the 8 products w[i] * x[i]. */
static inline int32x4_t ec_neon_mac8(int32x4_t acc, int8x8_t w, int8x8_t x)
{
    return vpadalq_s16(acc, vmull_s8(w, x));
}

/* (sum of a's lanes, of b's, of c's, of d's) */
static inline int32x4_t ec_neon_hsum4(int32x4_t a, int32x4_t b, int32x4_t c, int32x4_t d)
{
#if defined(__aarch64__)
    return vpaddq_s32(vpaddq_s32(a, b), vpaddq_s32(c, d));
#else
    const int32x2_t sa = vadd_s32(vget_low_s32(a), vget_high_s32(a));
    const int32x2_t sb = vadd_s32(vget_low_s32(b), vget_high_s32(b));
    const int32x2_t sc = vadd_s32(vget_low_s32(c), vget_high_s32(c));
    const int32x2_t sd = vadd_s32(vget_low_s32(d), vget_high_s32(d));
    return vcombine_s32(vpadd_s32(sa, sb), vpadd_s32(sc, sd));
#endif
}

/* Bytes 0 .. n - 1 of v to dst (n <= 8). */
static inline void ec_neon_store_n(int8_t *dst, int8x8_t v, int32_t n)
{
    int8_t t[8];
    if (n == 4) {
        const uint32_t w = vget_lane_u32(vreinterpret_u32_s8(v), 0);
        memcpy(dst, &w, 4);
        return;
    }
    vst1_s8(t, v);
    memcpy(dst, t, (size_t)n);
}
#endif

/* Columns the matrix core takes at once: 4 x 4 blocks of accumulators fit AArch64's 32 vector registers; ARMv7's 16
 * take 4 x 2. The kernels' scratch has room for 4 columns on both. */
#if defined(__aarch64__)
#define EC_NEON_COLS 4
#else
#define EC_NEON_COLS 2
#endif

/* 16 products of the weight vectors v0..v3 (rows oc .. oc + 3) with the column vector x into accumulators a0..a3. */
#define EC_NEON_MAC16_COL(x, a0, a1, a2, a3)                                                                    \
    do {                                                                                                         \
        a0 = ec_neon_mac16(a0, v0, (x));                                                                         \
        a1 = ec_neon_mac16(a1, v1, (x));                                                                         \
        a2 = ec_neon_mac16(a2, v2, (x));                                                                         \
        a3 = ec_neon_mac16(a3, v3, (x));                                                                         \
    } while (0)
#define EC_NEON_MUL16_COL(x, a0, a1, a2, a3)                                                                    \
    do {                                                                                                         \
        a0 = ec_neon_mul16(v0, (x));                                                                             \
        a1 = ec_neon_mul16(v1, (x));                                                                             \
        a2 = ec_neon_mul16(v2, (x));                                                                             \
        a3 = ec_neon_mul16(v3, (x));                                                                             \
    } while (0)
#define EC_NEON_MAC8_COL(x, a0, a1, a2, a3)                                                                     \
    do {                                                                                                         \
        a0 = ec_neon_mac8(a0, u0, (x));                                                                          \
        a1 = ec_neon_mac8(a1, u1, (x));                                                                          \
        a2 = ec_neon_mac8(a2, u2, (x));                                                                          \
        a3 = ec_neon_mac8(a3, u3, (x));                                                                          \
    } while (0)

/* What the output-stage tables subtract from each shift: fast (the short form of ec_neon_requant takes shift - 1), but
 * 0 in a TFLM build (whose ec_neon_requant computes TFLM's arithmetic from the shift itself). */
#if defined(EC_TFLM)
#define EC_NEON_SUB(fast) 0
#else
#define EC_NEON_SUB(fast) (fast)
#endif

/* Where ec_neon_stage_tables keeps table k (0 bias, 1 multiplier, 2 shift) of channel i: per group of 4 channels the
 * three tables' 4 entries side by side, so the core loads a group's 12 values at once (measured on Cortex-A53:
 * resnet8 conv_2 734,879 -> 731,555 instructions against three separate tables). */
#define EC_NEON_TB(i, k) (12 * ((i) >> 2) + 4 * (k) + ((i) & 3))

/* The matrix kernels' output-stage tables in t for output channels first .. first + n - 1 (3 * n4 int32, n4 = n
 * rounded up to 4; the last channel repeated; laid out as EC_NEON_TB): the folded bias, the multiplier and the shift
 * less EC_NEON_SUB(fast). */
static inline void ec_neon_stage_tables(const int32_t *bias, const ec_quant_s8 *q, int32_t first, int32_t n,
                                        int32_t fast, int32_t *t)
{
    const int32_t n4 = (n + 3) & ~3, sub = EC_NEON_SUB(fast);
    int32_t i = 0;
    (void)fast;
#if defined(__ARM_NEON)
    if (q->per_channel) {
        const int32x4_t d = vdupq_n_s32(sub);
        for (; i + 4 <= n; i += 4) {
            vst1q_s32(t + 3 * i, vld1q_s32(bias + first + i));
            vst1q_s32(t + 3 * i + 4, vld1q_s32(q->mult + first + i));
            vst1q_s32(t + 3 * i + 8, vsubq_s32(vld1q_s32(q->shift + first + i), d));
        }
    } else {
        const int32x4_t m = vdupq_n_s32(q->mult[0]), s = vdupq_n_s32(q->shift[0] - sub);
        for (; i + 4 <= n; i += 4) {
            vst1q_s32(t + 3 * i, vld1q_s32(bias + first + i));
            vst1q_s32(t + 3 * i + 4, m);
            vst1q_s32(t + 3 * i + 8, s);
        }
    }
#endif
    for (; i < n4; ++i) {
        const int32_t c = first + (i < n ? i : n - 1), j = q->per_channel ? c : 0;
        t[EC_NEON_TB(i, 0)] = bias[c];
        t[EC_NEON_TB(i, 1)] = q->mult[j];
        t[EC_NEON_TB(i, 2)] = q->shift[j] - sub;
    }
}

/* Bytes of ec_neon_stage_tables for n output channels. */
static inline int32_t ec_neon_tables_bytes(int32_t n)
{
    return 12 * ((n + 3) & ~3);
}

/* For every output channel oc < n and column j < ncols (1 .. EC_NEON_COLS): out[j][oc] = output stage(bias[oc] +
 * sum over k < k8 of w[oc][k] * col[j][k]), w in the matrix layout above (n rows padded to a multiple of 4), col[j]
 * k8 int8 values; tb: ec_neon_stage_tables (folded bias, multiplier, shift - fast); fast: ec_neon_fast_ok(bias, q,
 * n, k8) (0 in a TFLM build). */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline void ec_neon_gemm_core(const int8_t *w, int32_t k8, int32_t n, const int8_t *const *col,
                                     int32_t ncols, const int32_t *tb, const ec_quant_s8 *q, int32_t fast,
                                     int8_t *const *out)
{
    int32_t oc;
#if defined(__ARM_NEON)
    const int16x8_t zp = vdupq_n_s16((int16_t)q->out_zp);
    const int8x8_t lo = vdup_n_s8((int8_t)q->act_min), hi = vdup_n_s8((int8_t)q->act_max);
    const int8_t *const c0 = col[0];
    const int8_t *const c1 = col[ncols > 1 ? 1 : 0];
    const int8_t *const c2 = col[ncols > 2 ? 2 : 0];
    const int8_t *const c3 = col[ncols > 3 ? 3 : 0];
    for (oc = 0; oc < n; oc += 4) {
        const int8_t *w0 = w + oc * k8;
        const int8_t *w1 = w0 + k8, *w2 = w1 + k8, *w3 = w2 + k8;
        const int32_t valid = n - oc < 4 ? n - oc : 4;
        int32x4_t a00 = vdupq_n_s32(0), a10 = a00, a20 = a00, a30 = a00; /* row r, column 0 */
        int32x4_t a01 = a00, a11 = a00, a21 = a00, a31 = a00;
        int32x4_t a02 = a00, a12 = a00, a22 = a00, a32 = a00;
        int32x4_t a03 = a00, a13 = a00, a23 = a00, a33 = a00;
        int32x4_t m, s, b, r0, r1, r2, r3;
        int32_t k = 0;
        if (k8 >= 16) { /* the first 16 products set the accumulators (the zeros above are dropped) */
            const int8x16_t v0 = vld1q_s8(w0), v1 = vld1q_s8(w1), v2 = vld1q_s8(w2), v3 = vld1q_s8(w3);
            EC_NEON_MUL16_COL(vld1q_s8(c0), a00, a10, a20, a30);
            if (ncols > 1) {
                EC_NEON_MUL16_COL(vld1q_s8(c1), a01, a11, a21, a31);
            }
            if (ncols > 2) {
                EC_NEON_MUL16_COL(vld1q_s8(c2), a02, a12, a22, a32);
            }
            if (ncols > 3) {
                EC_NEON_MUL16_COL(vld1q_s8(c3), a03, a13, a23, a33);
            }
            k = 16;
        }
        for (; k + 16 <= k8; k += 16) {
            const int8x16_t v0 = vld1q_s8(w0 + k), v1 = vld1q_s8(w1 + k);
            const int8x16_t v2 = vld1q_s8(w2 + k), v3 = vld1q_s8(w3 + k);
            EC_NEON_MAC16_COL(vld1q_s8(c0 + k), a00, a10, a20, a30);
            if (ncols > 1) {
                EC_NEON_MAC16_COL(vld1q_s8(c1 + k), a01, a11, a21, a31);
            }
            if (ncols > 2) {
                EC_NEON_MAC16_COL(vld1q_s8(c2 + k), a02, a12, a22, a32);
            }
            if (ncols > 3) {
                EC_NEON_MAC16_COL(vld1q_s8(c3 + k), a03, a13, a23, a33);
            }
        }
        if (k < k8) {
            const int8x8_t u0 = vld1_s8(w0 + k), u1 = vld1_s8(w1 + k), u2 = vld1_s8(w2 + k), u3 = vld1_s8(w3 + k);
            EC_NEON_MAC8_COL(vld1_s8(c0 + k), a00, a10, a20, a30);
            if (ncols > 1) {
                EC_NEON_MAC8_COL(vld1_s8(c1 + k), a01, a11, a21, a31);
            }
            if (ncols > 2) {
                EC_NEON_MAC8_COL(vld1_s8(c2 + k), a02, a12, a22, a32);
            }
            if (ncols > 3) {
                EC_NEON_MAC8_COL(vld1_s8(c3 + k), a03, a13, a23, a33);
            }
        }
#if defined(__aarch64__)
        {
            const int32x4x3_t t = vld1q_s32_x3(tb + 3 * oc);
            b = t.val[0];
            m = t.val[1];
            s = t.val[2];
        }
#else
        b = vld1q_s32(tb + 3 * oc);
        m = vld1q_s32(tb + 3 * oc + 4);
        s = vld1q_s32(tb + 3 * oc + 8);
#endif
        r0 = ec_neon_requant_t(vaddq_s32(ec_neon_hsum4(a00, a10, a20, a30), b), m, s, fast);
        r1 = ncols > 1 ? ec_neon_requant_t(vaddq_s32(ec_neon_hsum4(a01, a11, a21, a31), b), m, s, fast) : r0;
        {
            const int8x8_t v = ec_neon_out8(r0, r1, zp, lo, hi);
            if (valid == 4) {
                vst1_lane_u32((uint32_t *)(void *)(out[0] + oc), vreinterpret_u32_s8(v), 0);
                if (ncols > 1) {
                    vst1_lane_u32((uint32_t *)(void *)(out[1] + oc), vreinterpret_u32_s8(v), 1);
                }
            } else {
                ec_neon_store_n(out[0] + oc, v, valid);
                if (ncols > 1) {
                    ec_neon_store_n(out[1] + oc, vext_s8(v, v, 4), valid);
                }
            }
        }
        if (ncols > 2) {
            int8x8_t v;
            r2 = ec_neon_requant_t(vaddq_s32(ec_neon_hsum4(a02, a12, a22, a32), b), m, s, fast);
            r3 = ncols > 3 ? ec_neon_requant_t(vaddq_s32(ec_neon_hsum4(a03, a13, a23, a33), b), m, s, fast) : r2;
            v = ec_neon_out8(r2, r3, zp, lo, hi);
            if (valid == 4) {
                vst1_lane_u32((uint32_t *)(void *)(out[2] + oc), vreinterpret_u32_s8(v), 0);
                if (ncols > 3) {
                    vst1_lane_u32((uint32_t *)(void *)(out[3] + oc), vreinterpret_u32_s8(v), 1);
                }
            } else {
                ec_neon_store_n(out[2] + oc, v, valid);
                if (ncols > 3) {
                    ec_neon_store_n(out[3] + oc, vext_s8(v, v, 4), valid);
                }
            }
        }
    }
#else
    int32_t j;
    (void)fast;
    for (j = 0; j < ncols; ++j) {
        for (oc = 0; oc < n; ++oc) {
            const int8_t *wr = w + oc * k8;
            uint32_t acc = (uint32_t)tb[EC_NEON_TB(oc, 0)];
            int32_t k;
            for (k = 0; k < k8; ++k) {
                acc = ec_mac_wrap(acc, col[j][k], wr[k]);
            }
            out[j][oc] = ec_output_s8(ec_requantize((int32_t)acc, tb[EC_NEON_TB(oc, 1)],
                                                    tb[EC_NEON_TB(oc, 2)] + EC_NEON_SUB(fast)),
                                      q->out_zp, q->act_min, q->act_max);
        }
    }
#endif
}

/* ec_neon_gemm_core specialized for 4 (AArch64), 2 and 1 columns (a constant in each); 3 columns run as 2 + 1. */
static inline void ec_neon_gemm(const int8_t *w, int32_t k8, int32_t n, const int8_t *const *col, int32_t ncols,
                                const int32_t *tb, const ec_quant_s8 *q, int32_t fast, int8_t *const *out)
{
#if EC_NEON_COLS > 2
    if (ncols == 4) {
#if !defined(EC_TFLM)
        /* fast a constant in the usual case: its test leaves the output stage (measured on Cortex-A53: resnet8
         * conv_2 764,790 -> 758,652 instructions, dscnn_kws conv_3 165,716 -> 163,169) */
        if (fast) {
            ec_neon_gemm_core(w, k8, n, col, 4, tb, q, 1, out);
            return;
        }
#endif
        ec_neon_gemm_core(w, k8, n, col, 4, tb, q, fast, out);
        return;
    }
#endif
    if (ncols >= 2) {
        ec_neon_gemm_core(w, k8, n, col, 2, tb, q, fast, out);
        col += 2;
        out += 2;
        ncols -= 2;
    }
    if (ncols == 1) {
        ec_neon_gemm_core(w, k8, n, col, 1, tb, q, fast, out);
    }
}

/* (ec_conv2d_im2col_neon_s8, ec_conv2d_lanes_neon_s8) col = the input window whose tap (0, 0) is at input (iy0, ix0), in_zp where it lies in the padding. Not inlined:
 * the matrix product beside it needs the registers. */
#if defined(__GNUC__)
__attribute__((noinline, unused))
#endif
static void ec_neon_im2col(const ec_conv_params *p, const int8_t *in_b, int32_t iy0, int32_t ix0, int32_t zp,
                                  int8_t *col)
{
    const int32_t in_c = p->in_c, k_w = p->k_w, dil_w = p->dil_w, len = k_w * in_c;
    const int32_t row_step = p->dil_h * p->in_w * in_c;
    const int8_t *src;
    int32_t ky0, ky1, kx0, kx1, ky, kx;
    ec_window_range(iy0, p->dil_h, p->k_h, p->in_h, &ky0, &ky1);
    ec_window_range(ix0, dil_w, k_w, p->in_w, &kx0, &kx1);
    ec_neon_fill(col, zp, ky0 * len);
    ec_neon_fill(col + ky1 * len, zp, (p->k_h - ky1) * len);
    if (ky0 == ky1) {
        return;
    }
    col += ky0 * len;
    src = in_b + ((iy0 + ky0 * p->dil_h) * p->in_w + ix0 + kx0 * dil_w) * in_c;
    if (dil_w == 1 && kx0 == 0 && kx1 == k_w) { /* whole kernel rows */
        for (ky = ky0; ky < ky1; ++ky, col += len, src += row_step) {
            ec_neon_copy(col, src, len);
        }
        return;
    }
    for (ky = ky0; ky < ky1; ++ky, col += len, src += row_step) {
        ec_neon_fill(col, zp, kx0 * in_c);
        ec_neon_fill(col + kx1 * in_c, zp, (k_w - kx1) * in_c);
        if (dil_w == 1) {
            ec_neon_copy(col + kx0 * in_c, src, (kx1 - kx0) * in_c);
        } else {
            for (kx = kx0; kx < kx1; ++kx) {
                ec_neon_copy(col + kx * in_c, src + (kx - kx0) * dil_w * in_c, in_c);
            }
        }
    }
}

/* Depthwise taps: tp[t] (t = ky * k_w + kx) points to channel 0 of the input pixel under tap t of the window whose
 * tap (0, 0) is at input (iy0, ix0), or to zp_row (in_c bytes of in_zp) for a tap in the padding. */
static inline void ec_neon_dw_taps(const ec_conv_params *p, const int8_t *in_b, int32_t iy0, int32_t ix0,
                                   const int8_t *zp_row, const int8_t **tp)
{
    const int32_t k_h = p->k_h, k_w = p->k_w, in_c = p->in_c;
    int32_t ky0, ky1, kx0, kx1, ky, kx;
    ec_window_range(iy0, p->dil_h, k_h, p->in_h, &ky0, &ky1);
    ec_window_range(ix0, p->dil_w, k_w, p->in_w, &kx0, &kx1);
    for (ky = 0; ky < k_h; ++ky) {
        const int32_t inside_y = ky >= ky0 && ky < ky1;
        const int32_t row = (iy0 + ky * p->dil_h) * p->in_w;
        for (kx = 0; kx < k_w; ++kx) {
            const int32_t inside = inside_y && kx >= kx0 && kx < kx1;
            tp[ky * k_w + kx] = inside ? in_b + (row + ix0 + kx * p->dil_w) * in_c : zp_row;
        }
    }
}

#if defined(__ARM_NEON)
/* Depthwise, one channel per lane: a0..a3 (channels c .. c + 15) += x0 * w0 + x1 * w1 (16 channels each; the two
 * products of a lane fit int16). */
#if defined(__aarch64__)
#define EC_DW16_PAIR(x0, w0, x1, w1)                                                                            \
    do {                                                                                                         \
        int16x8_t lo_ = vmull_s8(vget_low_s8(x0), vget_low_s8(w0));                                             \
        int16x8_t hi_ = vmull_high_s8((x0), (w0));                                                               \
        lo_ = vmlal_s8(lo_, vget_low_s8(x1), vget_low_s8(w1));                                                   \
        hi_ = vmlal_high_s8(hi_, (x1), (w1));                                                                    \
        a0 = vaddw_s16(a0, vget_low_s16(lo_));                                                                   \
        a1 = vaddw_high_s16(a1, lo_);                                                                            \
        a2 = vaddw_s16(a2, vget_low_s16(hi_));                                                                   \
        a3 = vaddw_high_s16(a3, hi_);                                                                            \
    } while (0)
#define EC_DW16_SINGLE(x0, w0)                                                                                  \
    do {                                                                                                         \
        const int16x8_t lo_ = vmull_s8(vget_low_s8(x0), vget_low_s8(w0));                                       \
        const int16x8_t hi_ = vmull_high_s8((x0), (w0));                                                         \
        a0 = vaddw_s16(a0, vget_low_s16(lo_));                                                                   \
        a1 = vaddw_high_s16(a1, lo_);                                                                            \
        a2 = vaddw_s16(a2, vget_low_s16(hi_));                                                                   \
        a3 = vaddw_high_s16(a3, hi_);                                                                            \
    } while (0)
#else
#define EC_DW16_PAIR(x0, w0, x1, w1)                                                                            \
    do {                                                                                                         \
        int16x8_t lo_ = vmull_s8(vget_low_s8(x0), vget_low_s8(w0));                                             \
        int16x8_t hi_ = vmull_s8(vget_high_s8(x0), vget_high_s8(w0));                                           \
        lo_ = vmlal_s8(lo_, vget_low_s8(x1), vget_low_s8(w1));                                                   \
        hi_ = vmlal_s8(hi_, vget_high_s8(x1), vget_high_s8(w1));                                                 \
        a0 = vaddw_s16(a0, vget_low_s16(lo_));                                                                   \
        a1 = vaddw_s16(a1, vget_high_s16(lo_));                                                                  \
        a2 = vaddw_s16(a2, vget_low_s16(hi_));                                                                   \
        a3 = vaddw_s16(a3, vget_high_s16(hi_));                                                                  \
    } while (0)
#define EC_DW16_SINGLE(x0, w0)                                                                                  \
    do {                                                                                                         \
        const int16x8_t lo_ = vmull_s8(vget_low_s8(x0), vget_low_s8(w0));                                       \
        const int16x8_t hi_ = vmull_s8(vget_high_s8(x0), vget_high_s8(w0));                                     \
        a0 = vaddw_s16(a0, vget_low_s16(lo_));                                                                   \
        a1 = vaddw_s16(a1, vget_high_s16(lo_));                                                                  \
        a2 = vaddw_s16(a2, vget_low_s16(hi_));                                                                   \
        a3 = vaddw_s16(a3, vget_high_s16(hi_));                                                                  \
    } while (0)
#endif

/* The same for 8 channels (a0, a1), int8x8_t operands. */
#define EC_DW8_PAIR(x0, w0, x1, w1)                                                                             \
    do {                                                                                                         \
        const int16x8_t p_ = vmlal_s8(vmull_s8((x0), (w0)), (x1), (w1));                                         \
        a0 = vaddw_s16(a0, vget_low_s16(p_));                                                                    \
        a1 = vaddw_s16(a1, vget_high_s16(p_));                                                                   \
    } while (0)
#define EC_DW8_SINGLE(x0, w0)                                                                                   \
    do {                                                                                                         \
        const int16x8_t p_ = vmull_s8((x0), (w0));                                                               \
        a0 = vaddw_s16(a0, vget_low_s16(p_));                                                                    \
        a1 = vaddw_s16(a1, vget_high_s16(p_));                                                                   \
    } while (0)

/* v[c .. c + 3] (per_channel) or v[0] in every lane; c + 4 <= the channel count. */
static inline int32x4_t ec_neon_qload(const int32_t *v, int32_t c, int32_t per_channel)
{
    return per_channel ? vld1q_s32(v + c) : vld1q_dup_s32(v);
}

/* Output stage of channels c .. c + 15 (accumulators a0..a3, bias already added) to out[c ..]. */
static inline void ec_neon_dw_out16(int32x4_t a0, int32x4_t a1, int32x4_t a2, int32x4_t a3, const ec_quant_s8 *q,
                                    int32_t c, int32_t n, int32_t fast, int8_t *out)
{
    const int16x8_t zp = vdupq_n_s16((int16_t)q->out_zp);
    const int8x8_t lo = vdup_n_s8((int8_t)q->act_min), hi = vdup_n_s8((int8_t)q->act_max);
    const int32_t pc = q->per_channel;
    (void)n;
    a0 = ec_neon_requant(a0, ec_neon_qload(q->mult, c, pc), ec_neon_qload(q->shift, c, pc), fast);
    a1 = ec_neon_requant(a1, ec_neon_qload(q->mult, c + 4, pc), ec_neon_qload(q->shift, c + 4, pc), fast);
    a2 = ec_neon_requant(a2, ec_neon_qload(q->mult, c + 8, pc), ec_neon_qload(q->shift, c + 8, pc), fast);
    a3 = ec_neon_requant(a3, ec_neon_qload(q->mult, c + 12, pc), ec_neon_qload(q->shift, c + 12, pc), fast);
    vst1q_s8(out + c, vcombine_s8(ec_neon_out8(a0, a1, zp, lo, hi), ec_neon_out8(a2, a3, zp, lo, hi)));
}

/* Output stage of channels c .. c + 7. */
static inline void ec_neon_dw_out8(int32x4_t a0, int32x4_t a1, const ec_quant_s8 *q, int32_t c, int32_t n,
                                   int32_t fast, int8_t *out)
{
    const int16x8_t zp = vdupq_n_s16((int16_t)q->out_zp);
    const int8x8_t lo = vdup_n_s8((int8_t)q->act_min), hi = vdup_n_s8((int8_t)q->act_max);
    const int32_t pc = q->per_channel;
    (void)n;
    a0 = ec_neon_requant(a0, ec_neon_qload(q->mult, c, pc), ec_neon_qload(q->shift, c, pc), fast);
    a1 = ec_neon_requant(a1, ec_neon_qload(q->mult, c + 4, pc), ec_neon_qload(q->shift, c + 4, pc), fast);
    vst1_s8(out + c, ec_neon_out8(a0, a1, zp, lo, hi));
}
#endif

/* Channels c0 .. in_c - 1 of one depthwise output position in plain C: taps tp[0 .. taps - 1] (edgec_neon.h),
 * weights [taps][in_c], folded bias. */
static inline void ec_neon_dw_tail(const int8_t *const *tp, int32_t taps, const int8_t *w, int32_t in_c,
                                   const int32_t *bias, const ec_quant_s8 *q, int32_t c0, int8_t *out)
{
    int32_t c, t;
    for (c = c0; c < in_c; ++c) {
        uint32_t acc = (uint32_t)bias[c];
        for (t = 0; t < taps; ++t) {
            acc = ec_mac_wrap(acc, tp[t][c], w[t * in_c + c]);
        }
        out[c] = ec_neon_out1(acc, q, c);
    }
}

#endif /* EDGEC_NEON_H */
