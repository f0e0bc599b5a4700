/*
 * ec_add_s16: int16 add/sub with broadcasting (the s8 formulas; left_shift 15, zero points 0).
 * a = requantize((xa - a_zp) << left_shift, a_mult, a_shift); b likewise; r = a + b (EC_ADD) or a - b;
 * out = clamp(requantize(r, out_mult, out_shift) + out_zp, act_min, act_max).
 */
#include "edgec_internal.h"

void ec_add_s16(const ec_broadcast_params *bp, ec_binary_op op, const ec_add_s8_params *q, const int16_t *a,
                const int16_t *b, int16_t *output)
{
    /* Parameters are copied to locals: stores through int16_t * may alias them otherwise. The left shift is a
     * multiplication because shifting a negative value left is undefined in C. */
    const int32_t scale = (int32_t)1 << q->left_shift;
    const int32_t a_zp = q->a_zp, a_mult = q->a_mult, a_shift = q->a_shift;
    const int32_t b_zp = q->b_zp, b_mult = q->b_mult, b_shift = q->b_shift;
    const int32_t out_zp = q->out_zp, out_mult = q->out_mult, out_shift = q->out_shift;
    const int32_t act_min = q->act_min, act_max = q->act_max;
    const int subtract = op != EC_ADD;
    ec_nd_iter it;
    int32_t r, i;

    ec_nd_init(&it, bp->out_shape, bp->a_strides, bp->b_strides);
    for (r = 0; r < it.rows; ++r) {
        int32_t ia = it.a_off;
        int32_t ib = it.b_off;
        for (i = 0; i < it.row_len; ++i) {
            const int32_t va = ec_requantize((a[ia] - a_zp) * scale, a_mult, a_shift);
            const int32_t vb = ec_requantize((b[ib] - b_zp) * scale, b_mult, b_shift);
            const int32_t sum = subtract ? va - vb : va + vb;
            output[i] = ec_output_i16(ec_requantize(sum, out_mult, out_shift), out_zp, act_min, act_max);
            ia += it.row_a;
            ib += it.row_b;
        }
        output += it.row_len;
        ec_nd_next(&it);
    }
}
