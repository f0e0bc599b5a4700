/*
 * ec_add_affine_neon_s8: int8 add/sub with broadcasting in the affine form toolchain/ops/binary.py fit_affine fits
 * to ec_add_s8's arithmetic (edgec's or TFLM's) and checks on every pair of operand values:
 *   out = clamp((x' * x_mul8 * x_mul16 + y' * y_mul8 * y_mul16 + bias) >> 21, act_min, act_max)
 * with x' = x + 128 and y' = (uint8_t)y ^ y_flip: y + 128 (y_flip 0x80) or, for a Sub, 127 - y (0x7f), the sum
 * taken modulo 2^32 as int32.
 * With NEON, rows where both operands are contiguous run 16 elements at a time, each product in two widening
 * multiplies (VMULL.U8 by x_mul8 into 16 bits, VMULL.U16 / VMLAL.U16 by x_mul16 into 32), the bias added and the
 * high half kept in one VADDHN (>> 16), then one saturating VQSHRN (>> 5) to int8 (measured on Cortex-A53,
 * resnet8's three residual adds: 47,225 instructions, 115,513 with ec_add_s8's exact vector requantization).
 * Plain C elsewhere, with the same results. Each block of elements is stored after both operands' elements of the
 * block were read, and later elements are read after it (in-place safe, toolchain/inplace.py).
 */
#include "edgec_internal.h"

#if defined(__ARM_NEON)
#include <arm_neon.h>
#endif

/* The right shift of the form (toolchain/ops/binary.py AFFINE_SHIFT): 16 in VADDHN, the rest in VQSHRN. */
#define AFFINE_SHIFT 21

/* One element before the activation clamp, saturated to int8; xu, yu: x' and y'. */
static inline int32_t affine_elem(const ec_add_affine_params *q, uint32_t xu, uint32_t yu)
{
    const uint32_t acc = xu * (uint32_t)q->x_mul8 * (uint32_t)q->x_mul16 +
                         yu * (uint32_t)q->y_mul8 * (uint32_t)q->y_mul16 + (uint32_t)q->bias;
    return ec_clamp_i32((int32_t)acc >> AFFINE_SHIFT, -128, 127);
}

#if defined(__ARM_NEON)
/* Sixteen elements, not clamped, from x' and y'; m: x_mul16 and y_mul16 in lanes 0 and 1; c: the bias in every
 * lane. AArch64 takes the upper halves in the second-half forms (UMULL2, UMLAL2, ADDHN2, SQSHRN2; measured on
 * Cortex-A53: 27 instructions per 16 elements, 33 with vget_high_* operands, which GCC moves to a register
 * first). */
static inline int8x16_t affine16(uint8x16_t x, uint8x16_t y, uint8x8_t xa, uint8x8_t ya, uint16x4_t m, int32x4_t c)
{
    const uint16x8_t x0 = vmull_u8(vget_low_u8(x), xa), y0 = vmull_u8(vget_low_u8(y), ya);
#if defined(__aarch64__)
    const uint16x8_t x1 = vmull_high_u8(x, vcombine_u8(xa, xa)), y1 = vmull_high_u8(y, vcombine_u8(ya, ya));
    const uint32x4_t s0 = vmlal_lane_u16(vmull_lane_u16(vget_low_u16(x0), m, 0), vget_low_u16(y0), m, 1);
    const uint32x4_t s1 = vmlal_high_lane_u16(vmull_high_lane_u16(x0, m, 0), y0, m, 1);
    const uint32x4_t s2 = vmlal_lane_u16(vmull_lane_u16(vget_low_u16(x1), m, 0), vget_low_u16(y1), m, 1);
    const uint32x4_t s3 = vmlal_high_lane_u16(vmull_high_lane_u16(x1, m, 0), y1, m, 1);
    const int16x8_t h0 = vaddhn_high_s32(vaddhn_s32(vreinterpretq_s32_u32(s0), c), vreinterpretq_s32_u32(s1), c);
    const int16x8_t h1 = vaddhn_high_s32(vaddhn_s32(vreinterpretq_s32_u32(s2), c), vreinterpretq_s32_u32(s3), c);
    return vqshrn_high_n_s16(vqshrn_n_s16(h0, AFFINE_SHIFT - 16), h1, AFFINE_SHIFT - 16);
#else
    const uint16x8_t x1 = vmull_u8(vget_high_u8(x), xa), y1 = vmull_u8(vget_high_u8(y), ya);
    const uint32x4_t s0 = vmlal_lane_u16(vmull_lane_u16(vget_low_u16(x0), m, 0), vget_low_u16(y0), m, 1);
    const uint32x4_t s1 = vmlal_lane_u16(vmull_lane_u16(vget_high_u16(x0), m, 0), vget_high_u16(y0), m, 1);
    const uint32x4_t s2 = vmlal_lane_u16(vmull_lane_u16(vget_low_u16(x1), m, 0), vget_low_u16(y1), m, 1);
    const uint32x4_t s3 = vmlal_lane_u16(vmull_lane_u16(vget_high_u16(x1), m, 0), vget_high_u16(y1), m, 1);
    const int16x8_t h0 = vcombine_s16(vaddhn_s32(vreinterpretq_s32_u32(s0), c),
                                      vaddhn_s32(vreinterpretq_s32_u32(s1), c));
    const int16x8_t h1 = vcombine_s16(vaddhn_s32(vreinterpretq_s32_u32(s2), c),
                                      vaddhn_s32(vreinterpretq_s32_u32(s3), c));
    return vcombine_s8(vqshrn_n_s16(h0, AFFINE_SHIFT - 16), vqshrn_n_s16(h1, AFFINE_SHIFT - 16));
#endif
}

/* Elements 0 .. n - (n % 16) - 1 of a row where both operands are contiguous; returns how many were done. clamp:
 * the activation bounds are narrower than int8's (a constant in each loop; measured on Cortex-A53: resnet8's adds,
 * whose bounds are -128 and 127, 50,797 -> 47,225 instructions without the VMAX/VMIN). */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline int32_t affine_row(const ec_add_affine_params *q, int32_t clamp, const uint8_t *x, const uint8_t *y,
                                 int8_t *output, int32_t n)
{
    const uint8x16_t x_flip = vdupq_n_u8(0x80), y_flip = vdupq_n_u8((uint8_t)q->y_flip);
    const uint8x8_t xa = vdup_n_u8((uint8_t)q->x_mul8), ya = vdup_n_u8((uint8_t)q->y_mul8);
    const uint16x4_t m = vset_lane_u16((uint16_t)q->y_mul16, vdup_n_u16((uint16_t)q->x_mul16), 1);
    const int32x4_t c = vdupq_n_s32(q->bias);
    const int8x16_t lo = vdupq_n_s8((int8_t)q->act_min), hi = vdupq_n_s8((int8_t)q->act_max);
    int32_t i;
    for (i = 0; i + 16 <= n; i += 16) {
        const uint8x16_t xv = veorq_u8(vld1q_u8(x + i), x_flip), yv = veorq_u8(vld1q_u8(y + i), y_flip);
        const int8x16_t v = affine16(xv, yv, xa, ya, m, c);
        vst1q_s8(output + i, clamp ? vminq_s8(vmaxq_s8(v, lo), hi) : v);
    }
    return i;
}
#endif

void ec_add_affine_neon_s8(const ec_broadcast_params *bp, const ec_add_affine_params *q, const int8_t *x,
                           const int8_t *y, int8_t *output)
{
    /* Parameters are copied to locals: stores through int8_t * may alias them otherwise. */
    const ec_add_affine_params k = *q;
    ec_nd_iter it;
    int32_t r, i;

    ec_nd_init(&it, bp->out_shape, bp->a_strides, bp->b_strides);
    for (r = 0; r < it.rows; ++r) {
        const uint8_t *xr = (const uint8_t *)x + it.a_off;
        const uint8_t *yr = (const uint8_t *)y + it.b_off;
        const int32_t n = it.row_len, sx = it.row_a, sy = it.row_b;
        i = 0;
#if defined(__ARM_NEON)
        if (sx == 1 && sy == 1) {
            i = k.act_min > -128 || k.act_max < 127 ? affine_row(&k, 1, xr, yr, output, n)
                                                    : affine_row(&k, 0, xr, yr, output, n);
        }
#endif
        for (; i < n; ++i) {
            const int32_t v = affine_elem(&k, xr[i * sx] ^ 0x80u, yr[i * sy] ^ (uint32_t)k.y_flip);
            output[i] = (int8_t)ec_clamp_i32(v, k.act_min, k.act_max);
        }
        output += n;
        ec_nd_next(&it);
    }
}
