/*
 * ec_add_lut_s8: int8 add/sub with broadcasting as out = clamp((x * mult + table[(uint8_t)y]) >> 20, act_min,
 * act_max), the form toolchain/ops/binary.py fit_lut fits to ec_add_s8's arithmetic (edgec's or TFLM's) and checks
 * on every pair of operand values. Per element: two byte loads, a table load, MLA, SSAT (with the DSP extension: the
 * shift is folded into it) and a byte store, where ec_add_s8 computes three 64-bit requantizations (75 instructions
 * per element on Cortex-M7 for resnet8's residual adds). Element i is stored after element i of both operands was
 * read, and later elements are read after it (in-place safe, toolchain/inplace.py).
 */
#include "edgec_internal.h"

void ec_add_lut_s8(const ec_broadcast_params *bp, const ec_add_lut_params *q, const int8_t *x, const int8_t *y,
                   const int32_t *table, int8_t *output)
{
    /* Parameters are copied to locals: stores through int8_t * may alias them otherwise. */
    const int32_t mult = q->mult, lo = q->act_min, hi = q->act_max;
    const int32_t clamp = lo > -128 || hi < 127;
    ec_nd_iter it;
    int32_t r, i;

    ec_nd_init(&it, bp->out_shape, bp->a_strides, bp->b_strides);
    for (r = 0; r < it.rows; ++r) {
        const int8_t *xr = x + it.a_off;
        const uint8_t *yr = (const uint8_t *)y + it.b_off;
        const int32_t n = it.row_len;
        if (it.row_a == 1 && it.row_b == 1 && !clamp) {
            for (i = 0; i + 4 <= n; i += 4) {
                output[i] = (int8_t)ec_add_lut_elem(xr[i], yr[i], table, mult);
                output[i + 1] = (int8_t)ec_add_lut_elem(xr[i + 1], yr[i + 1], table, mult);
                output[i + 2] = (int8_t)ec_add_lut_elem(xr[i + 2], yr[i + 2], table, mult);
                output[i + 3] = (int8_t)ec_add_lut_elem(xr[i + 3], yr[i + 3], table, mult);
            }
            for (; i < n; ++i) {
                output[i] = (int8_t)ec_add_lut_elem(xr[i], yr[i], table, mult);
            }
        } else {
            const int32_t sx = it.row_a, sy = it.row_b;
            for (i = 0; i < n; ++i) {
                output[i] = (int8_t)ec_clamp_i32(ec_add_lut_elem(xr[i * sx], yr[i * sy], table, mult), lo, hi);
            }
        }
        output += n;
        ec_nd_next(&it);
    }
}
