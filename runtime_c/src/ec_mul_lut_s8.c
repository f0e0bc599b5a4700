/*
 * ec_mul_lut_s8: int8 multiply with broadcasting as out = clamp((x * mults[(uint8_t)y] + table[(uint8_t)y]) >> 20,
 * act_min, act_max), the form toolchain/ops/binary.py fit_lut fits to ec_mul_s8's arithmetic (edgec's or TFLM's)
 * and checks on every pair of operand values: two byte loads, two table loads, MLA, SSAT (with the DSP extension)
 * and a byte store per element. Element i is stored after element i of both operands was read, and later elements
 * are read after it (in-place safe, toolchain/inplace.py).
 */
#include "edgec_internal.h"

void ec_mul_lut_s8(const ec_broadcast_params *bp, const ec_mul_lut_params *q, const int8_t *x, const int8_t *y,
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
        for (i = 0; i < n; ++i) {
            output[i] = (int8_t)ec_clamp_i32(ec_mul_lut_elem(xr[i * sx], yr[i * sy], mults, table), lo, hi);
        }
        output += n;
        ec_nd_next(&it);
    }
}
