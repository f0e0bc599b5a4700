/*
 * ec_fully_connected_q7: Q-format q7 fully connected layer, zero points 0. input [rows][depth], weights
 * [out_c][depth]. acc = bias[oc] + sum(x * w), then a rounding shift per output channel (ec_shift_round) and a clamp.
 */
#include "edgec_internal.h"
#include "edgec_lowbit.h"

void ec_fully_connected_q7(int32_t rows, int32_t depth, int32_t out_c, const ec_quant_q7 *q, const int8_t *input,
                           const int8_t *weights, const int32_t *bias, int8_t *output)
{
    const int32_t act_min = q->act_min, act_max = q->act_max;
    const int8_t *const shift = q->shift;
    const int32_t qstep = q->per_channel ? 1 : 0;
    int32_t r, oc, d;

    for (r = 0; r < rows; ++r) {
        const int8_t *x = input + r * depth;
        const int8_t *w = weights;
        for (oc = 0; oc < out_c; ++oc) {
            int32_t acc = bias != NULL ? bias[oc] : 0;
            for (d = 0; d < depth; ++d) {
                acc += x[d] * w[d];
            }
            w += depth;
            *output++ = (int8_t)ec_clamp_i32(ec_shift_round(acc, shift[oc * qstep]), act_min, act_max);
        }
    }
}
