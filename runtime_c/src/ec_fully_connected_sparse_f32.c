/*
 * ec_fully_connected_sparse_f32: float fully connected layer with row-sparse weights (format in edgec_sparse.h):
 * input [rows][depth], output [rows][out_c]. out = clamp(bias[oc] + sum over the entries of row oc of x * w),
 * added in column order like ec_fully_connected_f32 (segment by segment, the output row holding the sums).
 */
#include "edgec_sparse_core.h"

void ec_fully_connected_sparse_f32(int32_t rows, int32_t depth, int32_t out_c, const ec_act_f32 *act,
                                   const float *input, const uint8_t *counts, const uint8_t *index,
                                   const float *values, const float *bias, float *output)
{
    float lo, hi;
    int32_t r, oc;

    ec_act_bounds(act, &lo, &hi);
    for (r = 0; r < rows; ++r) {
        float *out = output + r * out_c;
        ec_sparse_rows_f32(input + r * depth, depth, out_c, counts, index, values, bias, out);
        for (oc = 0; oc < out_c; ++oc) {
            out[oc] = ec_clamp_f32(out[oc], lo, hi);
        }
    }
}
