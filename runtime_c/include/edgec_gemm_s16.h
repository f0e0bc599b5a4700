/*
 * edgec runtime: the int16 x int8 (16x8) matrix core shared by the packed int16 convolution and fully connected
 * kernels (ec_conv2d_im2col_s16, ec_fully_connected_packed_s16). Not part of the public API.
 *
 * Layouts:
 *  - Packed weights: a [N][K] int8 matrix in the packed layout of the int8 kernels (edgec_gemm.h, edgec.h: K padded
 *    with zeros to K4, N to an even count, rows in pairs interleaved per group of 4 columns), except that the 4 bytes
 *    of each group hold columns (4g, 4g + 2, 4g + 1, 4g + 3): byte (n / 2) * 2 * K4 + (k / 4) * 8 + (n % 2) * 4 +
 *    ec_s16_byte(k % 4) holds W[n][k]. SXTB16 of a group's word then gives the int16 pair (W[n][4g], W[n][4g + 1])
 *    and SXTB16 of the word rotated by 8 bits (W[n][4g + 2], W[n][4g + 3]): the order of the int16 activations in
 *    memory, so a word of two activations meets its weights in one dual multiply-accumulate (SMLAD) without
 *    reordering the activations.
 *  - Columns: plain int16 vectors of K elements (the rows of a fully connected layer's input as they are, or an
 *    im2col buffer), 2-byte aligned.
 *
 * Exactness: the reference sums in int64. A product of an int16 and an int8 is at most 2^22 in magnitude, so 256 of
 * them (EC_S16_BLOCK groups of 4) sum below 2^30: the DSP path sums blocks of at most that many products in int32
 * (SMLAD) and adds each block's sum to the int64 accumulator, which is then the reference's int64 sum exactly.
 * The output stage is ec_requantize_s64 and the clamp, as in ec_conv2d_s16 / ec_fully_connected_s16, computed in
 * 32-bit pieces (ec_requantize_s64_clamp). Where ec_s16_fast_ok holds (every sum with its bias fits int32), the DSP
 * path keeps the sums in int32 and the output stage is one SMULL (ec_requantize_s32_clamp).
 */
#ifndef EDGEC_GEMM_S16_H
#define EDGEC_GEMM_S16_H

#include "edgec_dsp.h"

/* Groups of 4 columns summed in int32 before they are added to the int64 accumulator (256 products). */
#define EC_S16_BLOCK 64

/* Byte of element r (0..3) of a group within the group's 4 bytes: (0, 2, 1, 3). */
static inline int32_t ec_s16_byte(int32_t r)
{
    return ((r & 1) << 1) | (r >> 1);
}

/* K rounded up to a multiple of 4. */
static inline int32_t ec_s16_k4(int32_t k)
{
    return (k + 3) & ~3;
}

#if defined(__ARM_FEATURE_DSP)
/* Two weight words loaded at once (LDRD); packed weights are 8-byte aligned. */
typedef int64_t ec_s16_dword __attribute__((may_alias));

/* Two int16 activations as one word (LDR; any 2-byte alignment is allowed on the Cortex-M DSP targets). */
static inline int32_t ec_load_s16x2(const int16_t *p)
{
    int32_t x;
    memcpy(&x, p, 4);
    return x;
}
#endif

/* out = clamp(ec_requantize_s64(acc, mult[i], shift[i]), act_min, act_max); fast: ec_s16_fast_ok holds. */
static inline int16_t ec_gemm_s16_out(int64_t acc, const ec_quant_s16 *q, int32_t i, int32_t fast)
{
    if (fast) {
        return ec_requantize_s32_clamp((int32_t)acc, q->mult[i], q->shift[i], q->act_min, q->act_max);
    }
    return ec_requantize_s64_clamp(acc, q->mult[i], q->shift[i], q->act_min, q->act_max);
}

/* For every output channel oc < out_c: out0[oc] (column x0) and, when ncols == 2, out1[oc] (column x1) =
 * output stage(bias[oc] + sum over k < depth of W[oc][k] * x[k]). w: packed weights of out_c rows and depth columns.
 * fast: ec_s16_fast_ok(bias, q, out_c, depth). */
#if defined(__ARM_FEATURE_DSP)
/* One group of 4 columns: weights (wa: row 2p, wb: row 2p + 1) and two words of each column (xa, xb; ya, yb). */
#define EC_S16_GROUP_2X2(wa, wb, xa, xb, ya, yb)                                                                \
    do {                                                                                                         \
        int32_t lo_ = __sxtb16(wa), hi_ = ec_sxtb16_ror8(wa);                                                    \
        a[0] = __smlad(lo_, xa, a[0]);                                                                           \
        a[2] = __smlad(lo_, ya, a[2]);                                                                           \
        a[0] = __smlad(hi_, xb, a[0]);                                                                           \
        a[2] = __smlad(hi_, yb, a[2]);                                                                           \
        lo_ = __sxtb16(wb);                                                                                      \
        hi_ = ec_sxtb16_ror8(wb);                                                                                \
        a[1] = __smlad(lo_, xa, a[1]);                                                                           \
        a[3] = __smlad(lo_, ya, a[3]);                                                                           \
        a[1] = __smlad(hi_, xb, a[1]);                                                                           \
        a[3] = __smlad(hi_, yb, a[3]);                                                                           \
    } while (0)

#define EC_S16_GROUP_1X2(wa, wb, xa, xb)                                                                        \
    do {                                                                                                         \
        a[0] = __smlad(__sxtb16(wa), xa, a[0]);                                                                  \
        a[1] = __smlad(__sxtb16(wb), xa, a[1]);                                                                  \
        a[0] = __smlad(ec_sxtb16_ror8(wa), xb, a[0]);                                                            \
        a[1] = __smlad(ec_sxtb16_ror8(wb), xb, a[1]);                                                            \
    } while (0)

/* a = the int32 sums of n <= EC_S16_BLOCK groups from *wd, *xp (and *yp when ncols == 2), which move past them:
 * a[0] row 0 x column 0, a[1] row 1 x column 0, a[2] row 0 x column 1, a[3] row 1 x column 1. */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline void ec_s16_sums(const ec_s16_dword **wdp, const int16_t **xpp, const int16_t **ypp, int32_t n,
                               int32_t ncols, int32_t *a)
{
    const ec_s16_dword *wd = *wdp;
    const int16_t *xp = *xpp;
    const int16_t *yp = *ypp;
    a[0] = a[1] = a[2] = a[3] = 0;
    if (ncols == 2) {
        for (; n >= 2; n -= 2) {
            const int64_t w0 = wd[0], w1 = wd[1];
            EC_S16_GROUP_2X2((int32_t)w0, (int32_t)(w0 >> 32), ec_load_s16x2(xp), ec_load_s16x2(xp + 2),
                             ec_load_s16x2(yp), ec_load_s16x2(yp + 2));
            EC_S16_GROUP_2X2((int32_t)w1, (int32_t)(w1 >> 32), ec_load_s16x2(xp + 4), ec_load_s16x2(xp + 6),
                             ec_load_s16x2(yp + 4), ec_load_s16x2(yp + 6));
            wd += 2;
            xp += 8;
            yp += 8;
        }
        if (n > 0) {
            const int64_t w0 = wd[0];
            EC_S16_GROUP_2X2((int32_t)w0, (int32_t)(w0 >> 32), ec_load_s16x2(xp), ec_load_s16x2(xp + 2),
                             ec_load_s16x2(yp), ec_load_s16x2(yp + 2));
            wd += 1;
            xp += 4;
            yp += 4;
        }
    } else {
        for (; n >= 2; n -= 2) {
            const int64_t w0 = wd[0], w1 = wd[1];
            EC_S16_GROUP_1X2((int32_t)w0, (int32_t)(w0 >> 32), ec_load_s16x2(xp), ec_load_s16x2(xp + 2));
            EC_S16_GROUP_1X2((int32_t)w1, (int32_t)(w1 >> 32), ec_load_s16x2(xp + 4), ec_load_s16x2(xp + 6));
            wd += 2;
            xp += 8;
        }
        if (n > 0) {
            const int64_t w0 = wd[0];
            EC_S16_GROUP_1X2((int32_t)w0, (int32_t)(w0 >> 32), ec_load_s16x2(xp), ec_load_s16x2(xp + 2));
            wd += 1;
            xp += 4;
        }
    }
    *wdp = wd;
    *xpp = xp;
    *ypp = yp;
}
#undef EC_S16_GROUP_2X2
#undef EC_S16_GROUP_1X2
#endif

/* For every output channel oc < out_c: out0[oc] (column x0) and, when ncols == 2, out1[oc] (column x1) =
 * output stage(bias[oc] + sum over k < depth of W[oc][k] * x[k]). w: packed weights of out_c rows and depth columns.
 * fast: ec_s16_fast_ok(bias, q, out_c, depth). */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline void ec_gemm_s16_core(const int8_t *w, int32_t depth, int32_t out_c, const int16_t *x0,
                                    const int16_t *x1, int32_t ncols, const int64_t *bias, const ec_quant_s16 *q,
                                    int32_t fast, int16_t *out0, int16_t *out1)
{
    const int32_t k4 = ec_s16_k4(depth);
    int32_t oc;
    for (oc = 0; oc < out_c; oc += 2) {
        const int8_t *wp = w + oc * k4; /* pair oc / 2 */
        const int32_t two = oc + 1 < out_c;
        int64_t s00, s10, s01, s11; /* row oc, column 0; row oc + 1, column 0; ... column 1 */
        int32_t k = 0;
#if defined(__ARM_FEATURE_DSP)
        const ec_s16_dword *wd = (const ec_s16_dword *)(const void *)wp;
        const int16_t *xp = x0;
        const int16_t *yp = x1;
        const int32_t groups = depth >> 2;
        int32_t n = groups < EC_S16_BLOCK ? groups : EC_S16_BLOCK;
        int32_t left = groups - n;
        int32_t a[4];
        ec_s16_sums(&wd, &xp, &yp, n, ncols, a); /* the bias is loaded after the loop: fewer live registers */
        if (fast && (depth & 3) == 0) { /* every sum with its bias fits int32 */
            const int32_t lo = q->act_min, hi = q->act_max;
            int32_t f00 = a[0], f10 = a[1], f01 = a[2], f11 = a[3];
            while (left > 0) {
                n = left < EC_S16_BLOCK ? left : EC_S16_BLOCK;
                left -= n;
                ec_s16_sums(&wd, &xp, &yp, n, ncols, a);
                f00 += a[0];
                f10 += a[1];
                f01 += a[2];
                f11 += a[3];
            }
            if (bias != NULL) {
                const int32_t b0 = (int32_t)bias[oc], b1 = two ? (int32_t)bias[oc + 1] : 0;
                f00 += b0;
                f01 += b0;
                f10 += b1;
                f11 += b1;
            }
            out0[oc] = ec_requantize_s32_clamp(f00, q->mult[oc], q->shift[oc], lo, hi);
            if (ncols == 2) {
                out1[oc] = ec_requantize_s32_clamp(f01, q->mult[oc], q->shift[oc], lo, hi);
            }
            if (two) {
                out0[oc + 1] = ec_requantize_s32_clamp(f10, q->mult[oc + 1], q->shift[oc + 1], lo, hi);
                if (ncols == 2) {
                    out1[oc + 1] = ec_requantize_s32_clamp(f11, q->mult[oc + 1], q->shift[oc + 1], lo, hi);
                }
            }
            continue;
        }
        s00 = bias != NULL ? bias[oc] : 0;
        s10 = bias != NULL && two ? bias[oc + 1] : 0;
        s01 = s00 + a[2];
        s11 = s10 + a[3];
        s00 += a[0];
        s10 += a[1];
        while (left > 0) { /* more than 256 columns */
            n = left < EC_S16_BLOCK ? left : EC_S16_BLOCK;
            left -= n;
            ec_s16_sums(&wd, &xp, &yp, n, ncols, a);
            s00 += a[0];
            s10 += a[1];
            s01 += a[2];
            s11 += a[3];
        }
        k = groups * 4;
#else
        s00 = bias != NULL ? bias[oc] : 0;
        s10 = bias != NULL && two ? bias[oc + 1] : 0;
        s01 = s00;
        s11 = s10;
#endif
        /* plain C: every column; DSP: the last depth % 4 */
        for (; k < depth; ++k) {
            const int32_t wi = (k >> 2) * 8 + ec_s16_byte(k & 3);
            s00 += x0[k] * wp[wi];
            s10 += x0[k] * wp[wi + 4];
            if (ncols == 2) {
                s01 += x1[k] * wp[wi];
                s11 += x1[k] * wp[wi + 4];
            }
        }
        out0[oc] = ec_gemm_s16_out(s00, q, oc, fast);
        if (two) {
            out0[oc + 1] = ec_gemm_s16_out(s10, q, oc + 1, fast);
        }
        if (ncols == 2) {
            out1[oc] = ec_gemm_s16_out(s01, q, oc, fast);
            if (two) {
                out1[oc + 1] = ec_gemm_s16_out(s11, q, oc + 1, fast);
            }
        }
    }
}

/* ec_gemm_s16_core specialized for 2 columns and for 1 (the number of columns is a constant in each). */
static void ec_gemm_s16(const int8_t *w, int32_t depth, int32_t out_c, const int16_t *x0, const int16_t *x1,
                        int32_t ncols, const int64_t *bias, const ec_quant_s16 *q, int32_t fast, int16_t *out0,
                        int16_t *out1)
{
    if (ncols == 2) {
        ec_gemm_s16_core(w, depth, out_c, x0, x1, 2, bias, q, fast, out0, out1);
    } else {
        ec_gemm_s16_core(w, depth, out_c, x0, x1, 1, bias, q, fast, out0, out1);
    }
}

#endif /* EDGEC_GEMM_S16_H */
