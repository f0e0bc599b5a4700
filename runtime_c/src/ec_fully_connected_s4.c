/*
 * ec_fully_connected_s4: fully connected layer with int4 weights (edgec_lowbit.h) and int8 activations.
 * input [rows][depth], weights [out_c] rows of depth int4 values, (depth + 1) / 2 bytes each (edgec_s4.h order).
 * With the DSP extension (Cortex-M4/M7/M33), 8 weights per SMLAD group of 4 (ec_dot_s4).
 * acc = bias[oc] + sum((x - in_zp) * w), then the int8 output stage per output channel.
 */
#include "edgec_s4.h"

void ec_fully_connected_s4(int32_t rows, int32_t depth, int32_t out_c, const ec_quant_s8 *q, const int8_t *input,
                           const uint8_t *weights, const int32_t *bias, int8_t *output)
{
    const int32_t in_zp = q->in_zp, out_zp = q->out_zp, act_min = q->act_min, act_max = q->act_max;
    const int32_t qstep = q->per_channel ? 1 : 0;
    const int32_t row_bytes = (depth + 1) / 2;
    int32_t r, oc;

    for (r = 0; r < rows; ++r) {
        const int8_t *x = input + r * depth;
        const uint8_t *w = weights;
        for (oc = 0; oc < out_c; ++oc) {
            const int32_t acc = (bias != NULL ? bias[oc] : 0) + ec_dot_s4(x, w, depth, in_zp);
            w += row_bytes;
            *output++ = ec_output_s8(ec_requantize(acc, q->mult[oc * qstep], q->shift[oc * qstep]), out_zp,
                                     act_min, act_max);
        }
    }
}
