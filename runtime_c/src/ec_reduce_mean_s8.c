/*
 * ec_reduce_mean_s8: mean over some dimensions of an int8 tensor whose output keeps the input's scale and zero
 * point. Shapes and strides as ec_reduce_mean_f32; acc (scratch, out_size int32) holds the sums of x - zp, and
 * output = clamp(acc / count rounded to nearest, ties to even, + zp).
 */
#include "edgec_internal.h"

void ec_reduce_mean_s8(const int32_t *in_shape, const int32_t *out_strides, int32_t out_size, int32_t count,
                       int32_t zp, const int8_t *input, int8_t *output, void *scratch)
{
    enum { LAST = EC_MAX_DIMS - 1 };
    int32_t *acc = (int32_t *)scratch;
    int32_t idx[EC_MAX_DIMS], rows = 1, d, r, c, i;
    const int32_t row_len = in_shape[LAST], step = out_strides[LAST];

    for (i = 0; i < out_size; ++i) {
        acc[i] = 0;
    }
    for (d = 0; d < LAST; ++d) {
        idx[d] = 0;
        rows *= in_shape[d];
    }
    for (r = 0; r < rows; ++r) {
        int32_t *a = acc;
        for (d = 0; d < LAST; ++d) {
            a += idx[d] * out_strides[d];
        }
        for (c = 0; c < row_len; ++c) {
            a[c * step] += input[c] - zp;
        }
        input += row_len;
        for (d = LAST - 1; d >= 0 && ++idx[d] == in_shape[d]; --d) {
            idx[d] = 0;
        }
    }
    for (i = 0; i < out_size; ++i) {
        output[i] = ec_output_s8(ec_div_round_even(acc[i], count), zp, -128, 127);
    }
}
