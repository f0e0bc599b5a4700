/*
 * ec_conv2d_f32: float (grouped) 2-D convolution, NHWC.
 * out = clamp(bias[oc] + sum over the window taps inside the input of x * w, act_min, act_max).
 */
#include "edgec_internal.h"

void ec_conv2d_f32(const ec_conv_params *p, const ec_act_f32 *act, const float *input, const float *weights,
                   const float *bias, float *output)
{
    const int32_t in_h = p->in_h, in_w = p->in_w, in_c = p->in_c;
    const int32_t k_h = p->k_h, k_w = p->k_w, dil_h = p->dil_h, dil_w = p->dil_w;
    const int32_t groups = p->groups > 0 ? p->groups : 1;
    const int32_t ic_per_g = in_c / groups;
    const int32_t oc_per_g = p->out_c / groups;
    const int32_t w_oc_size = k_h * k_w * ic_per_g;
    const int32_t in_row = in_w * in_c;
    const int32_t batch = p->batch, out_h = p->out_h, out_w = p->out_w;
    const int32_t stride_h = p->stride_h, stride_w = p->stride_w, pad_top = p->pad_top, pad_left = p->pad_left;
    float lo, hi;
    int32_t b, oy, ox, g, j, ky, kx, c;

    ec_act_bounds(act, &lo, &hi);
    for (b = 0; b < batch; ++b) {
        const float *in_b = input + b * in_h * in_row;
        for (oy = 0; oy < out_h; ++oy) {
            const int32_t iy0 = oy * stride_h - pad_top;
            int32_t ky0, ky1;
            ec_window_range(iy0, dil_h, k_h, in_h, &ky0, &ky1);
            for (ox = 0; ox < out_w; ++ox) {
                const int32_t ix0 = ox * stride_w - pad_left;
                int32_t kx0, kx1;
                int32_t oc = 0;
                ec_window_range(ix0, dil_w, k_w, in_w, &kx0, &kx1);
                for (g = 0; g < groups; ++g) {
                    const float *in_g = in_b + g * ic_per_g;
                    for (j = 0; j < oc_per_g; ++j, ++oc) {
                        const float *w_oc = weights + oc * w_oc_size;
                        float acc = bias != NULL ? bias[oc] : 0.0f;
                        for (ky = ky0; ky < ky1; ++ky) {
                            const float *x_row = in_g + (iy0 + ky * dil_h) * in_row;
                            const float *w_row = w_oc + ky * k_w * ic_per_g;
                            for (kx = kx0; kx < kx1; ++kx) {
                                const float *x = x_row + (ix0 + kx * dil_w) * in_c;
                                const float *w = w_row + kx * ic_per_g;
                                for (c = 0; c < ic_per_g; ++c) {
                                    acc += x[c] * w[c];
                                }
                            }
                        }
                        *output++ = ec_clamp_f32(acc, lo, hi);
                    }
                }
            }
        }
    }
}
