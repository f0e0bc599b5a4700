/*
 * ec_mul_s16: int16 multiply with broadcasting (zero points 0 in practice; the s8 formula):
 * out = clamp(requantize((xa - a_zp) * (xb - b_zp), out_mult, out_shift) + out_zp, act_min, act_max).
 */
#include "edgec_internal.h"

void ec_mul_s16(const ec_broadcast_params *bp, const ec_mul_s8_params *q, const int16_t *a, const int16_t *b,
                int16_t *output)
{
    /* Parameters are copied to locals: stores through int16_t * may alias them otherwise. */
    const int32_t a_zp = q->a_zp, b_zp = q->b_zp;
    const int32_t out_zp = q->out_zp, out_mult = q->out_mult, out_shift = q->out_shift;
    const int32_t act_min = q->act_min, act_max = q->act_max;
    ec_nd_iter it;
    int32_t r, i;

    ec_nd_init(&it, bp->out_shape, bp->a_strides, bp->b_strides);
    for (r = 0; r < it.rows; ++r) {
        int32_t ia = it.a_off;
        int32_t ib = it.b_off;
        for (i = 0; i < it.row_len; ++i) {
            const int32_t prod = (a[ia] - a_zp) * (b[ib] - b_zp); /* |prod| <= 2^30 */
            output[i] = ec_output_i16(ec_requantize(prod, out_mult, out_shift), out_zp, act_min, act_max);
            ia += it.row_a;
            ib += it.row_b;
        }
        output += it.row_len;
        ec_nd_next(&it);
    }
}
