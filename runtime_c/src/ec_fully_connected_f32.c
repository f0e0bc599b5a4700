/*
 * ec_fully_connected_f32: float fully connected layer. input [rows][depth], weights [out_c][depth].
 * out = clamp(bias[oc] + sum(x * w), act_min, act_max).
 */
#include "edgec_internal.h"

void ec_fully_connected_f32(int32_t rows, int32_t depth, int32_t out_c, const ec_act_f32 *act, const float *input,
                            const float *weights, const float *bias, float *output)
{
    float lo, hi;
    int32_t r, oc, d;

    ec_act_bounds(act, &lo, &hi);
    for (r = 0; r < rows; ++r) {
        const float *x = input + r * depth;
        const float *w = weights;
        for (oc = 0; oc < out_c; ++oc) {
            float acc = bias != NULL ? bias[oc] : 0.0f;
            for (d = 0; d < depth; ++d) {
                acc += x[d] * w[d];
            }
            w += depth;
            *output++ = ec_clamp_f32(acc, lo, hi);
        }
    }
}
