/*
 * ec_conv2d_sparse_f32: float convolution (NHWC, one group, any kernel size, stride, padding and dilation) with
 * row-sparse weights over the im2col columns (format in edgec_sparse.h). For every output pixel the window is copied
 * into scratch (0 for taps outside the input); out = clamp(bias[oc] + the entries of row oc times the column),
 * added in the dense kernel's tap order.
 */
#include "edgec_sparse_core.h"

int32_t ec_conv2d_sparse_f32_get_buffer_size(const ec_conv_params *p)
{
    return 4 * p->k_h * p->k_w * p->in_c;
}

void ec_conv2d_sparse_f32(const ec_conv_params *p, const ec_act_f32 *act, const float *input, const uint8_t *counts,
                          const uint8_t *index, const float *values, const float *bias, float *output,
                          void *scratch)
{
    const int32_t depth = p->k_h * p->k_w * p->in_c, out_c = p->out_c;
    float *col = (float *)scratch;
    float lo, hi;
    int32_t b, oy, ox, oc;

    ec_act_bounds(act, &lo, &hi);
    for (b = 0; b < p->batch; ++b) {
        const float *in_b = input + b * p->in_h * p->in_w * p->in_c;
        for (oy = 0; oy < p->out_h; ++oy) {
            for (ox = 0; ox < p->out_w; ++ox, output += out_c) {
                ec_im2col_pixel_f32(p, in_b, oy, ox, col);
                ec_sparse_rows_f32(col, depth, out_c, counts, index, values, bias, output);
                for (oc = 0; oc < out_c; ++oc) {
                    output[oc] = ec_clamp_f32(output[oc], lo, hi);
                }
            }
        }
    }
}
