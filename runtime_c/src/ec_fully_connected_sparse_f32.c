/*
 * ec_fully_connected_sparse_f32: float fully connected layer with row-sparse weights (format in edgec_sparse.h):
 * input [rows][depth], output [rows][out_c]. out = clamp(bias[oc] + sum over the entries of row oc of x * w),
 * added in column order like ec_fully_connected_f32 (segment by segment, the output row holding the sums).
 */
#include "edgec_internal.h"
#include "edgec_sparse.h"

void ec_fully_connected_sparse_f32(int32_t rows, int32_t depth, int32_t out_c, const ec_act_f32 *act,
                                   const float *input, const uint8_t *counts, const uint8_t *index,
                                   const float *values, const float *bias, float *output)
{
    float lo, hi;
    int32_t r, oc, s;

    ec_act_bounds(act, &lo, &hi);
    for (r = 0; r < rows; ++r) {
        const uint8_t *cnt = counts;
        const uint8_t *ix = index;
        const float *w = values;
        float *out = output + r * out_c;
        for (oc = 0; oc < out_c; ++oc) {
            out[oc] = bias != NULL ? bias[oc] : 0.0f;
        }
        for (s = 0; s < depth; s += 256) {
            const float *seg = input + r * depth + s;
            for (oc = 0; oc < out_c; ++oc) {
                const uint8_t *end = ix + 4 * *cnt++;
                float acc = out[oc];
                for (; ix != end; ix += 4, w += 4) {
                    acc += seg[ix[0]] * w[0];
                    acc += seg[ix[1]] * w[1];
                    acc += seg[ix[2]] * w[2];
                    acc += seg[ix[3]] * w[3];
                }
                out[oc] = acc;
            }
        }
        for (oc = 0; oc < out_c; ++oc) {
            out[oc] = ec_clamp_f32(out[oc], lo, hi);
        }
    }
}
