/*
 * ec_add_lut_mve_s8: ec_add_lut_s8 (out = clamp((x * mult + table[(uint8_t)y]) >> 20, act_min, act_max), the form
 * toolchain/ops/binary.py fit_lut fits to ec_add_s8's arithmetic) with Helium: rows where both operands are
 * contiguous run 4 elements per vector (VLDRB widening loads, a VLDRW gather from the table, VMLA; VQSHL by 4 then
 * VSHR by 24 is the shift by 20 saturated to int8), 16 per loop iteration (all 16 loaded before any is stored),
 * the tail 4 at a time, predicated (each block stored after it was loaded); other rows, and cores without Helium,
 * run the plain C of ec_add_lut_s8. Element i is thus written after element i of both operands was read and
 * before any later element is read (in-place safe, toolchain/inplace.py).
 */
#if defined(__ARM_FEATURE_MVE)
#include "edgec_mve.h"
#else
#include "edgec_internal.h"
#endif

#if defined(__ARM_FEATURE_MVE)
/* The block of 4 elements at x, y, output: the values before the clamp. */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline int32x4_t lut_full(const int8_t *x, const uint8_t *y, const int32_t *table, int32_t mult)
{
    const int32x4_t acc = vldrwq_gather_shifted_offset_s32(table, vldrbq_u32(y));
    return vshrq_n_s32(vqshlq_n_s32(vmlaq_n_s32(acc, vldrbq_s32(x), mult), 4), 24);
}

/* A contiguous row of n elements; clamp: a constant after inlining (0: the activation bounds are -128, 127). */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline void lut_row(const int8_t *x, const uint8_t *y, const int32_t *table, int32_t mult, int32_t lo,
                           int32_t hi, int8_t *output, int32_t n, int32_t clamp)
{
    const int32x4_t vlo = vdupq_n_s32(lo), vhi = vdupq_n_s32(hi);
    for (; n >= 16; n -= 16) {
        int32x4_t v0 = lut_full(x, y, table, mult), v1 = lut_full(x + 4, y + 4, table, mult);
        int32x4_t v2 = lut_full(x + 8, y + 8, table, mult), v3 = lut_full(x + 12, y + 12, table, mult);
        if (clamp) {
            v0 = vminq_s32(vmaxq_s32(v0, vlo), vhi);
            v1 = vminq_s32(vmaxq_s32(v1, vlo), vhi);
            v2 = vminq_s32(vmaxq_s32(v2, vlo), vhi);
            v3 = vminq_s32(vmaxq_s32(v3, vlo), vhi);
        }
        vstrbq_s32(output, v0);
        vstrbq_s32(output + 4, v1);
        vstrbq_s32(output + 8, v2);
        vstrbq_s32(output + 12, v3);
        x += 16;
        y += 16;
        output += 16;
    }
    for (; n > 0; n -= 4) {
        const mve_pred16_t t = vctp32q((uint32_t)n);
        int32x4_t v = vldrwq_gather_shifted_offset_z_s32(table, vldrbq_z_u32(y, t), t);
        v = vshrq_n_s32(vqshlq_n_s32(vmlaq_n_s32(v, vldrbq_z_s32(x, t), mult), 4), 24);
        vstrbq_p_s32(output, vminq_s32(vmaxq_s32(v, vlo), vhi), t);
        x += 4;
        y += 4;
        output += 4;
    }
}

static void lut_row_mve(const int8_t *x, const uint8_t *y, const int32_t *table, int32_t mult, int32_t lo,
                        int32_t hi, int8_t *output, int32_t n)
{
    if (lo > -128 || hi < 127) {
        lut_row(x, y, table, mult, lo, hi, output, n, 1);
    } else {
        lut_row(x, y, table, mult, lo, hi, output, n, 0);
    }
}
#endif

void ec_add_lut_mve_s8(const ec_broadcast_params *bp, const ec_add_lut_params *q, const int8_t *x, const int8_t *y,
                       const int32_t *table, int8_t *output)
{
    /* Parameters are copied to locals: stores through int8_t * may alias them otherwise. */
    const int32_t mult = q->mult, lo = q->act_min, hi = q->act_max;
    ec_nd_iter it;
    int32_t r, i;

    ec_nd_init(&it, bp->out_shape, bp->a_strides, bp->b_strides);
    for (r = 0; r < it.rows; ++r) {
        const int8_t *xr = x + it.a_off;
        const uint8_t *yr = (const uint8_t *)y + it.b_off;
        const int32_t n = it.row_len, sx = it.row_a, sy = it.row_b;
#if defined(__ARM_FEATURE_MVE)
        if (sx == 1 && sy == 1) {
            lut_row_mve(xr, yr, table, mult, lo, hi, output, n);
            output += n;
            ec_nd_next(&it);
            continue;
        }
#endif
        for (i = 0; i < n; ++i) {
            output[i] = (int8_t)ec_clamp_i32(ec_add_lut_elem(xr[i * sx], yr[i * sy], table, mult), lo, hi);
        }
        output += n;
        ec_nd_next(&it);
    }
}
