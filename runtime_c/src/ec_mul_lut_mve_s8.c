/*
 * ec_mul_lut_mve_s8: ec_mul_lut_s8 (out = clamp((x * mults[(uint8_t)y] + table[(uint8_t)y]) >> 20, act_min,
 * act_max), the form toolchain/ops/binary.py fit_lut fits to ec_mul_s8's arithmetic) with Helium: rows where both
 * operands are contiguous run 4 elements per vector (two VLDRW gathers, VMUL, VADD; VQSHL by 4 then VSHR by 24 is
 * the shift by 20 saturated to int8), the last block predicated; other rows, and cores without Helium, run the plain
 * C of ec_mul_lut_s8. Each block of 4 is stored after it was loaded, and later blocks are loaded after it (in-place
 * safe, toolchain/inplace.py).
 */
#if defined(__ARM_FEATURE_MVE)
#include "edgec_mve.h"
#else
#include "edgec_internal.h"
#endif

#if defined(__ARM_FEATURE_MVE)
static void mul_row_mve(const int8_t *x, const uint8_t *y, const int32_t *mults, const int32_t *table, int32_t lo,
                        int32_t hi, int8_t *output, int32_t n)
{
    const int32x4_t vlo = vdupq_n_s32(lo), vhi = vdupq_n_s32(hi);
    for (; n > 0; n -= 4) {
        const mve_pred16_t t = vctp32q((uint32_t)n);
        const uint32x4_t u = vldrbq_z_u32(y, t);
        const int32x4_t m = vldrwq_gather_shifted_offset_z_s32(mults, u, t);
        int32x4_t v = vldrwq_gather_shifted_offset_z_s32(table, u, t);
        v = vaddq_s32(v, vmulq_s32(vldrbq_z_s32(x, t), m));
        v = vshrq_n_s32(vqshlq_n_s32(v, 4), 24);
        vstrbq_p_s32(output, vminq_s32(vmaxq_s32(v, vlo), vhi), t);
        x += 4;
        y += 4;
        output += 4;
    }
}
#endif

void ec_mul_lut_mve_s8(const ec_broadcast_params *bp, const ec_mul_lut_params *q, const int8_t *x, const int8_t *y,
                       const int32_t *mults, const int32_t *table, int8_t *output)
{
    /* Parameters are copied to locals: stores through int8_t * may alias them otherwise. */
    const int32_t lo = q->act_min, hi = q->act_max;
    ec_nd_iter it;
    int32_t r, i;

    ec_nd_init(&it, bp->out_shape, bp->a_strides, bp->b_strides);
    for (r = 0; r < it.rows; ++r) {
        const int8_t *xr = x + it.a_off;
        const uint8_t *yr = (const uint8_t *)y + it.b_off;
        const int32_t n = it.row_len, sx = it.row_a, sy = it.row_b;
#if defined(__ARM_FEATURE_MVE)
        if (sx == 1 && sy == 1) {
            mul_row_mve(xr, yr, mults, table, lo, hi, output, n);
            output += n;
            ec_nd_next(&it);
            continue;
        }
#endif
        for (i = 0; i < n; ++i) {
            output[i] = (int8_t)ec_clamp_i32(ec_mul_lut_elem(xr[i * sx], yr[i * sy], mults, table), lo, hi);
        }
        output += n;
        ec_nd_next(&it);
    }
}
