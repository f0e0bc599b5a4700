/*
 * ec_prelu_f32: float PRelu, out = x >= 0 ? x : x * slope; slope broadcast through b_strides (input through
 * a_strides).
 */
#include "edgec_internal.h"

void ec_prelu_f32(const ec_broadcast_params *bp, const float *input, const float *slope, float *output)
{
    ec_nd_iter it;
    int32_t r, i;

    ec_nd_init(&it, bp->out_shape, bp->a_strides, bp->b_strides);
    for (r = 0; r < it.rows; ++r) {
        int32_t ia = it.a_off;
        int32_t ib = it.b_off;
        for (i = 0; i < it.row_len; ++i) {
            output[i] = input[ia] >= 0.0f ? input[ia] : input[ia] * slope[ib];
            ia += it.row_a;
            ib += it.row_b;
        }
        output += it.row_len;
        ec_nd_next(&it);
    }
}
