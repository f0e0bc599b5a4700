/*
 * ec_fully_connected_s16: 16x8 fully connected layer, zero points 0. input [rows][depth] int16, weights
 * [out_c][depth] int8. acc (int64) = bias[oc] + sum(x * w), then
 * out = clamp(ec_requantize_s64(acc, mult[oc], shift[oc]), act_min, act_max).
 */
#include "edgec_internal.h"

void ec_fully_connected_s16(int32_t rows, int32_t depth, int32_t out_c, const ec_quant_s16 *q,
                            const int16_t *input, const int8_t *weights, const int64_t *bias, int16_t *output)
{
    const int32_t act_min = q->act_min, act_max = q->act_max;
    const int32_t *const mult = q->mult;
    const int32_t *const shift = q->shift;
    int32_t r, oc, d;

    for (r = 0; r < rows; ++r) {
        const int16_t *x = input + r * depth;
        const int8_t *w = weights;
        for (oc = 0; oc < out_c; ++oc) {
            int64_t acc = bias != NULL ? bias[oc] : 0;
            for (d = 0; d < depth; ++d) {
                acc += x[d] * w[d];
            }
            w += depth;
            *output++ = ec_output_s16(ec_requantize_s64(acc, mult[oc], shift[oc]), act_min, act_max);
        }
    }
}
