/*
 * ec_fully_connected_s8: int8 fully connected layer. input [rows][depth], weights [out_c][depth].
 * acc = bias[oc] + sum((x - in_zp) * w), then requantize per output channel, add out_zp and clamp.
 */
#include "edgec_internal.h"

void ec_fully_connected_s8(int32_t rows, int32_t depth, int32_t out_c, const ec_quant_s8 *q, const int8_t *input,
                           const int8_t *weights, const int32_t *bias, int8_t *output)
{
    const int32_t in_zp = q->in_zp;
    const int32_t qstep = q->per_channel ? 1 : 0;
    int32_t r, oc, d;

    for (r = 0; r < rows; ++r) {
        const int8_t *x = input + r * depth;
        const int8_t *w = weights;
        for (oc = 0; oc < out_c; ++oc) {
            int32_t acc = bias != NULL ? bias[oc] : 0;
            for (d = 0; d < depth; ++d) {
                acc += (x[d] - in_zp) * w[d];
            }
            w += depth;
            *output++ = ec_output_s8(ec_requantize(acc, q->mult[oc * qstep], q->shift[oc * qstep]), q->out_zp,
                                     q->act_min, q->act_max);
        }
    }
}
