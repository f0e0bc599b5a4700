/*
 * ec_avgpool_f32: float average pooling, NHWC.
 * out = clamp(sum of x over the window taps inside the input / divisor, act_min, act_max); divisor = taps inside
 * the input, or with count_include_pad taps inside [-pad, in + pad_end). A window with divisor 0 yields clamp(0).
 */
#include "edgec_internal.h"

void ec_avgpool_f32(const ec_conv_params *p, const ec_avgpool_extra *x, const ec_act_f32 *act, const float *input,
                    float *output)
{
    const int32_t in_h = p->in_h, in_w = p->in_w, ch = p->in_c;
    const int32_t k_h = p->k_h, k_w = p->k_w, dil_h = p->dil_h, dil_w = p->dil_w;
    const int32_t in_row = in_w * ch;
    const int32_t x_step = dil_w * ch;
    const int32_t batch = p->batch, out_h = p->out_h, out_w = p->out_w;
    const int32_t stride_h = p->stride_h, stride_w = p->stride_w, pad_top = p->pad_top, pad_left = p->pad_left;
    const int32_t padded_h = pad_top + in_h + x->pad_bottom, padded_w = pad_left + in_w + x->pad_right;
    const int32_t include_pad = x->count_include_pad;
    float lo, hi;
    int32_t b, oy, ox, c, ky, kx;

    ec_act_bounds(act, &lo, &hi);
    for (b = 0; b < batch; ++b) {
        const float *in_b = input + b * in_h * in_row;
        for (oy = 0; oy < out_h; ++oy) {
            const int32_t iy0 = oy * stride_h - pad_top;
            int32_t ky0, ky1, py0, py1;
            ec_window_range(iy0, dil_h, k_h, in_h, &ky0, &ky1);
            ec_window_range(iy0 + pad_top, dil_h, k_h, padded_h, &py0, &py1);
            for (ox = 0; ox < out_w; ++ox) {
                const int32_t ix0 = ox * stride_w - pad_left;
                int32_t kx0, kx1, px0, px1, d;
                ec_window_range(ix0, dil_w, k_w, in_w, &kx0, &kx1);
                ec_window_range(ix0 + pad_left, dil_w, k_w, padded_w, &px0, &px1);
                d = include_pad ? (py1 - py0) * (px1 - px0) : (ky1 - ky0) * (kx1 - kx0);
                for (c = 0; c < ch; ++c) {
                    float acc = 0.0f;
                    for (ky = ky0; ky < ky1; ++ky) {
                        const float *x_row = in_b + (iy0 + ky * dil_h) * in_row + c;
                        int32_t xi = (ix0 + kx0 * dil_w) * ch;
                        for (kx = kx0; kx < kx1; ++kx) {
                            acc += x_row[xi];
                            xi += x_step;
                        }
                    }
                    *output++ = ec_clamp_f32(d > 0 ? acc / (float)d : 0.0f, lo, hi);
                }
            }
        }
    }
}
