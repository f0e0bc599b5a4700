/*
 * ec_add_s8: int8 add/sub with broadcasting (TFLite's scheme).
 * a = requantize((xa - a_zp) << left_shift, a_mult, a_shift); b likewise; r = a + b (EC_ADD) or a - b;
 * out = clamp(requantize(r, out_mult, out_shift) + out_zp, act_min, act_max).
 * With Helium (Cortex-M55), rows where both operands are contiguous (no broadcasting: residual connections) run 4
 * elements per vector with the exact vectorized requantization of edgec_mve.h (inputs scaled down, as always in
 * TFLite's scheme: input shifts <= 0, so no left shift saturates).
 * With NEON (Cortex-A), such rows run 8 elements at a time with the exact vector requantization of edgec_neon.h;
 * the rest, and other cores, run plain C.
 */
#if defined(__ARM_FEATURE_MVE)
#include "edgec_mve.h"
#else
#include "edgec_neon.h"
#endif

#if defined(__ARM_FEATURE_MVE)
/* The output stage form of a shift (ec_mve_requantize): 1 negative, 2 zero, 0 positive. */
static int32_t shift_form(int32_t shift)
{
    return shift < 0 ? 1 : (shift == 0 ? 2 : 0);
}

/* output[0 .. n - 1] for contiguous a and b; fa, fb, fo: the shift forms of a, b and the output. */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline void add_row(const ec_add_s8_params *q, int subtract, const int8_t *a, const int8_t *b,
                           int8_t *output, int32_t n, int32_t fa, int32_t fb, int32_t fo)
{
    const int32x4_t a_mult = vdupq_n_s32(q->a_mult), a_shift = vdupq_n_s32(q->a_shift);
    const int32x4_t b_mult = vdupq_n_s32(q->b_mult), b_shift = vdupq_n_s32(q->b_shift);
    const int32x4_t out_mult = vdupq_n_s32(q->out_mult), out_shift = vdupq_n_s32(q->out_shift);
    const int32_t left = q->left_shift, a_zp = q->a_zp, b_zp = q->b_zp;
    for (; n > 0; n -= 4) {
        const mve_pred16_t t = vctp32q((uint32_t)n);
        /* (x - zp) << left fits in int32 (|x - zp| <= 255, left <= 22) */
        const int32x4_t va = ec_mve_requantize(vshlq_r_s32(vsubq_n_s32(vldrbq_z_s32(a, t), a_zp), left), a_mult,
                                               a_shift, fa);
        const int32x4_t vb = ec_mve_requantize(vshlq_r_s32(vsubq_n_s32(vldrbq_z_s32(b, t), b_zp), left), b_mult,
                                               b_shift, fb);
        const int32x4_t sum = subtract ? vsubq_s32(va, vb) : vaddq_s32(va, vb);
        vstrbq_p_s32(output, ec_mve_output(sum, out_mult, out_shift, q->out_zp, q->act_min, q->act_max, fo), t);
        a += 4;
        b += 4;
        output += 4;
    }
}

/* add_row with the shift forms as constants for the usual cases (TFLite's scheme: one input at shift 0, the other
 * and the output shifted right). */
static void add_row_mve(const ec_add_s8_params *q, int subtract, const int8_t *a, const int8_t *b, int8_t *output,
                        int32_t n)
{
    const int32_t fa = shift_form(q->a_shift), fb = shift_form(q->b_shift), fo = shift_form(q->out_shift);
    if (fa == 1 && fb == 2 && fo == 1) {
        add_row(q, subtract, a, b, output, n, 1, 2, 1);
    } else if (fa == 2 && fb == 1 && fo == 1) {
        add_row(q, subtract, a, b, output, n, 2, 1, 1);
    } else {
        add_row(q, subtract, a, b, output, n, fa, fb, fo);
    }
}
#endif

#if defined(__ARM_NEON) && !defined(EC_TFLM)
/* add_row_neon for an Add with left_shift 20 whose operand e is requantized exactly (multiplier 2^30, shift 0:
 * (e - e_zp) << 19) and the other, g, and the output in the fast form (shifts <= 0): 2 * (g' + e') =
 * 2 * g' + ((e - e_zp) << 20) is what the output's fast requantization takes (it doubles its input), |g'|, |e'| <
 * 2^28 (measured on Cortex-A53, resnet8's add_1: 94,454 -> 65,765 instructions). Same results as add_row_neon. */
static int32_t add_row_exact_neon(const ec_add_s8_params *q, const int8_t *g, int32_t g_zp, int32_t g_mult,
                                  int32_t g_shift, const int8_t *e, int32_t e_zp, int8_t *output, int32_t n)
{
    const int8x8_t gz = vdup_n_s8((int8_t)g_zp), ez = vdup_n_s8((int8_t)e_zp);
    const int32x4_t gm = vdupq_n_s32(g_mult), gu = vdupq_n_s32(g_shift - 1);
    const int32x4_t om = vdupq_n_s32(q->out_mult), ou = vdupq_n_s32(q->out_shift - 1);
    const int16x8_t zp = vdupq_n_s16((int16_t)q->out_zp);
    const int8x8_t lo = vdup_n_s8((int8_t)q->act_min), hi = vdup_n_s8((int8_t)q->act_max);
    int32_t i;
    for (i = 0; i + 8 <= n; i += 8) {
        const int16x8_t xg = vsubl_s8(vld1_s8(g + i), gz), xe = vsubl_s8(vld1_s8(e + i), ez);
        /* g' = requantize(xg << 20): the fast form doubles its input, xg << 21 */
        const int32x4_t g0 = vrshlq_s32(vqdmulhq_s32(vshlq_n_s32(vshll_n_s16(vget_low_s16(xg), 15), 6), gm), gu);
        const int32x4_t g1 = vrshlq_s32(vqdmulhq_s32(vshlq_n_s32(vshll_n_s16(vget_high_s16(xg), 15), 6), gm), gu);
        const int32x4_t s0 = vmlaq_n_s32(vshlq_n_s32(vshll_n_s16(vget_low_s16(xe), 15), 5), g0, 2);
        const int32x4_t s1 = vmlaq_n_s32(vshlq_n_s32(vshll_n_s16(vget_high_s16(xe), 15), 5), g1, 2);
        vst1_s8(output + i, ec_neon_out8(vrshlq_s32(vqdmulhq_s32(s0, om), ou), vrshlq_s32(vqdmulhq_s32(s1, om), ou),
                                         zp, lo, hi));
    }
    return i;
}
#endif

#if defined(__ARM_NEON)
/* Elements 0 .. n - (n % 8) - 1 of a row where both operands are contiguous; returns how many were done. */
static int32_t add_row_neon(const ec_add_s8_params *q, int32_t subtract, const int8_t *a, const int8_t *b,
                            int8_t *output, int32_t n)
{
    const int8x8_t a_zp = vdup_n_s8((int8_t)q->a_zp), b_zp = vdup_n_s8((int8_t)q->b_zp);
    const int32x4_t left = vdupq_n_s32(q->left_shift);
    const int32x4_t a_mult = vdupq_n_s32(q->a_mult), a_shift = vdupq_n_s32(q->a_shift);
    const int32x4_t b_mult = vdupq_n_s32(q->b_mult), b_shift = vdupq_n_s32(q->b_shift);
    const int32x4_t o_mult = vdupq_n_s32(q->out_mult), o_shift = vdupq_n_s32(q->out_shift);
    /* fast requantization (|input| < 2^30, shift <= 0): |x - zp| <= 255, so (x - zp) << 20 and the sum of two
     * values requantized with shifts <= 0 stay below 2^29 */
    const int32_t fast = q->left_shift <= 20 && q->a_shift <= 0 && q->b_shift <= 0 && q->out_shift <= 0;
    const int16x8_t zp = vdupq_n_s16((int16_t)q->out_zp);
    const int8x8_t lo = vdup_n_s8((int8_t)q->act_min), hi = vdup_n_s8((int8_t)q->act_max);
    int32_t i;
    for (i = 0; i + 8 <= n; i += 8) {
        const int16x8_t xa = vsubl_s8(vld1_s8(a + i), a_zp), xb = vsubl_s8(vld1_s8(b + i), b_zp);
        const int32x4_t a0 = ec_neon_requant(vshlq_s32(vmovl_s16(vget_low_s16(xa)), left), a_mult, a_shift, fast);
        const int32x4_t a1 = ec_neon_requant(vshlq_s32(vmovl_s16(vget_high_s16(xa)), left), a_mult, a_shift,
                                             fast);
        const int32x4_t b0 = ec_neon_requant(vshlq_s32(vmovl_s16(vget_low_s16(xb)), left), b_mult, b_shift, fast);
        const int32x4_t b1 = ec_neon_requant(vshlq_s32(vmovl_s16(vget_high_s16(xb)), left), b_mult, b_shift,
                                             fast);
        const int32x4_t r0 = subtract ? vsubq_s32(a0, b0) : vaddq_s32(a0, b0);
        const int32x4_t r1 = subtract ? vsubq_s32(a1, b1) : vaddq_s32(a1, b1);
        vst1_s8(output + i, ec_neon_out8(ec_neon_requant(r0, o_mult, o_shift, fast),
                                         ec_neon_requant(r1, o_mult, o_shift, fast), zp, lo, hi));
    }
    return i;
}
#endif

void ec_add_s8(const ec_broadcast_params *bp, ec_binary_op op, const ec_add_s8_params *q, const int8_t *a,
               const int8_t *b, int8_t *output)
{
    /* Parameters are copied to locals: stores through int8_t * may alias them otherwise. The left shift is a
     * multiplication because shifting a negative value left is undefined in C. */
    const int32_t scale = (int32_t)1 << q->left_shift;
    const int32_t a_zp = q->a_zp, a_mult = q->a_mult, a_shift = q->a_shift;
    const int32_t b_zp = q->b_zp, b_mult = q->b_mult, b_shift = q->b_shift;
    const int32_t out_zp = q->out_zp, out_mult = q->out_mult, out_shift = q->out_shift;
    const int32_t act_min = q->act_min, act_max = q->act_max;
    const int subtract = op != EC_ADD;
    ec_nd_iter it;
    int32_t r, i;
#if defined(__ARM_NEON) && !defined(EC_TFLM)
    /* add_row_exact_neon: an Add, left shift 20, fast output stage, one operand exact, the other fast */
    const int32_t plain = !subtract && q->left_shift == 20 && out_shift <= 0;
    const int32_t exact_b = plain && b_mult == (1 << 30) && b_shift == 0 && a_shift <= 0;
    const int32_t exact_a = plain && a_mult == (1 << 30) && a_shift == 0 && b_shift <= 0;
#endif

    ec_nd_init(&it, bp->out_shape, bp->a_strides, bp->b_strides);
    for (r = 0; r < it.rows; ++r) {
        int32_t ia = it.a_off;
        int32_t ib = it.b_off;
#if defined(__ARM_FEATURE_MVE)
        if (it.row_a == 1 && it.row_b == 1 && q->left_shift <= 22 && q->a_shift <= 0 && q->b_shift <= 0) {
            add_row_mve(q, subtract, a + ia, b + ib, output, it.row_len);
            output += it.row_len;
            ec_nd_next(&it);
            continue;
        }
#endif
        i = 0;
#if defined(__ARM_NEON)
#if !defined(EC_TFLM)
        if (it.row_a == 1 && it.row_b == 1 && exact_b) {
            i = add_row_exact_neon(q, a + ia, a_zp, a_mult, a_shift, b + ib, b_zp, output, it.row_len);
            ia += i;
            ib += i;
        } else if (it.row_a == 1 && it.row_b == 1 && exact_a) {
            i = add_row_exact_neon(q, b + ib, b_zp, b_mult, b_shift, a + ia, a_zp, output, it.row_len);
            ia += i;
            ib += i;
        } else
#endif
        if (it.row_a == 1 && it.row_b == 1) {
            i = add_row_neon(q, subtract, a + ia, b + ib, output, it.row_len);
            ia += i;
            ib += i;
        }
#endif
        for (; i < it.row_len; ++i) {
            const int32_t va = ec_requantize((a[ia] - a_zp) * scale, a_mult, a_shift);
            const int32_t vb = ec_requantize((b[ib] - b_zp) * scale, b_mult, b_shift);
            const int32_t sum = subtract ? va - vb : va + vb;
            output[i] = ec_output_s8(ec_requantize(sum, out_mult, out_shift), out_zp, act_min, act_max);
            ia += it.row_a;
            ib += it.row_b;
        }
        output += it.row_len;
        ec_nd_next(&it);
    }
}
