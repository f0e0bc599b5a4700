/*
 * ec_fully_connected_nm_f32: float fully connected layer with N:4 weights (n = 1 or 2; format in edgec_sparse.h):
 * input [rows][depth], output [rows][out_c]. out = clamp(bias[oc] + the entries of row oc times x), added in column
 * order like ec_fully_connected_f32. A last partial block reads a zero-padded copy of the row's tail.
 */
#include "edgec_sparse_core.h"

void ec_fully_connected_nm_f32(int32_t rows, int32_t depth, int32_t out_c, int32_t n, const ec_act_f32 *act,
                               const float *input, const uint8_t *index, const float *values, const float *bias,
                               float *output)
{
    const int32_t span = ec_nm_span(n), full = depth / span * span;
    float tail[16] = {0.0f};
    float lo, hi;
    int32_t r, oc;

    ec_act_bounds(act, &lo, &hi);
    for (r = 0; r < rows; ++r) {
        const float *x = input + r * depth;
        float *out = output + r * out_c;
        memcpy(tail, x + full, (size_t)(depth - full) * sizeof(float));
        ec_nm_rows_f32(x, tail, depth, out_c, n, index, values, bias, out);
        for (oc = 0; oc < out_c; ++oc) {
            out[oc] = ec_clamp_f32(out[oc], lo, hi);
        }
    }
}
