/*
 * ec_unary_f32: float elementwise unary op, then clamp to [act_min, act_max] (act == NULL means no clamp).
 * RELU max(x, 0); CLIP x (the clamp does the work); LEAKY_RELU x >= 0 ? x : alpha * x; SIGMOID 1 / (1 + e^-x);
 * TANH tanh(x); HARD_SIGMOID max(0, min(1, alpha * x + beta)); HARD_SWISH x * max(0, min(1, x / 6 + 1/2)).
 */
#include <math.h>

#include "edgec_internal.h"

void ec_unary_f32(int32_t size, ec_unary_op op, float alpha, float beta, const ec_act_f32 *act, const float *input,
                  float *output)
{
    float lo, hi;
    int32_t i;

    ec_act_bounds(act, &lo, &hi);
    switch (op) {
    case EC_RELU:
        for (i = 0; i < size; ++i) {
            output[i] = ec_clamp_f32(input[i] > 0.0f ? input[i] : 0.0f, lo, hi);
        }
        break;
    case EC_CLIP:
        for (i = 0; i < size; ++i) {
            output[i] = ec_clamp_f32(input[i], lo, hi);
        }
        break;
    case EC_LEAKY_RELU:
        for (i = 0; i < size; ++i) {
            output[i] = ec_clamp_f32(input[i] >= 0.0f ? input[i] : alpha * input[i], lo, hi);
        }
        break;
    case EC_SIGMOID:
        for (i = 0; i < size; ++i) {
            output[i] = ec_clamp_f32(1.0f / (1.0f + expf(-input[i])), lo, hi);
        }
        break;
    case EC_TANH:
        for (i = 0; i < size; ++i) {
            output[i] = ec_clamp_f32(tanhf(input[i]), lo, hi);
        }
        break;
    case EC_HARD_SIGMOID:
        for (i = 0; i < size; ++i) {
            output[i] = ec_clamp_f32(ec_clamp_f32(alpha * input[i] + beta, 0.0f, 1.0f), lo, hi);
        }
        break;
    case EC_HARD_SWISH:
        for (i = 0; i < size; ++i) {
            const float x = input[i];
            output[i] = ec_clamp_f32(x * ec_clamp_f32(x / 6.0f + 0.5f, 0.0f, 1.0f), lo, hi);
        }
        break;
    }
}
