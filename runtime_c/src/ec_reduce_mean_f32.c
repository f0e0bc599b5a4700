/*
 * ec_reduce_mean_f32: mean over some dimensions of an EC_MAX_DIMS-d float tensor (shape left-padded with 1).
 * The input is read in its own (dense, row-major over in_shape) order; input element i[] adds to output element
 * sum(i[d] * out_strides[d]), where out_strides[d] is 0 for a reduced dimension. The output (out_size elements)
 * is the sum times scale (1 / the number of reduced elements).
 */
#include "edgec.h"

void ec_reduce_mean_f32(const int32_t *in_shape, const int32_t *out_strides, int32_t out_size, float scale,
                        const float *input, float *output)
{
    enum { LAST = EC_MAX_DIMS - 1 };
    int32_t idx[EC_MAX_DIMS], rows = 1, d, r, c, i;
    const int32_t row_len = in_shape[LAST], step = out_strides[LAST];

    for (i = 0; i < out_size; ++i) {
        output[i] = 0.0f;
    }
    for (d = 0; d < LAST; ++d) {
        idx[d] = 0;
        rows *= in_shape[d];
    }
    for (r = 0; r < rows; ++r) {
        float *y = output;
        for (d = 0; d < LAST; ++d) {
            y += idx[d] * out_strides[d];
        }
        for (c = 0; c < row_len; ++c) {
            y[c * step] += input[c];
        }
        input += row_len;
        for (d = LAST - 1; d >= 0 && ++idx[d] == in_shape[d]; --d) {
            idx[d] = 0;
        }
    }
    for (i = 0; i < out_size; ++i) {
        output[i] *= scale;
    }
}
