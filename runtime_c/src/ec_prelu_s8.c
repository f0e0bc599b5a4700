/*
 * ec_prelu_s8: int8 PRelu, slope broadcast through b_strides (input through a_strides).
 * v = x - in_zp; out = v >= 0 ? requantize(v, pos_mult, pos_shift) + out_zp
 *                             : requantize(v * (slope - slope_zp), neg_mult, neg_shift) + out_zp; clamped to int8.
 */
#include "edgec_internal.h"

void ec_prelu_s8(const ec_broadcast_params *bp, const ec_prelu_s8_params *q, const int8_t *input,
                 const int8_t *slope, int8_t *output)
{
    /* Parameters are copied to locals: stores through int8_t * may alias them otherwise. */
    const int32_t in_zp = q->in_zp, slope_zp = q->slope_zp, out_zp = q->out_zp;
    const int32_t pos_mult = q->pos_mult, pos_shift = q->pos_shift, neg_mult = q->neg_mult, neg_shift = q->neg_shift;
    ec_nd_iter it;
    int32_t r, i;

    ec_nd_init(&it, bp->out_shape, bp->a_strides, bp->b_strides);
    for (r = 0; r < it.rows; ++r) {
        int32_t ia = it.a_off;
        int32_t ib = it.b_off;
        for (i = 0; i < it.row_len; ++i) {
            const int32_t v = input[ia] - in_zp;
            const int32_t y = v >= 0 ? ec_requantize(v, pos_mult, pos_shift)
                                     : ec_requantize(v * (slope[ib] - slope_zp), neg_mult, neg_shift);
            output[i] = ec_output_s8(y, out_zp, -128, 127);
            ia += it.row_a;
            ib += it.row_b;
        }
        output += it.row_len;
        ec_nd_next(&it);
    }
}
