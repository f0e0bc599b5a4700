/*
 * ec_maxpool_s16: int16 max pooling, NHWC. out = clamp(max over the window taps inside the input, act_min, act_max);
 * the output keeps the input's scale and zero point. A window with no tap inside the input yields act_min.
 */
#include "edgec_internal.h"

void ec_maxpool_s16(const ec_conv_params *p, int32_t act_min, int32_t act_max, const int16_t *input,
                    int16_t *output)
{
    /* Parameters are copied to locals: stores through int16_t * may alias them otherwise. */
    const int32_t in_h = p->in_h, in_w = p->in_w, ch = p->in_c;
    const int32_t k_h = p->k_h, k_w = p->k_w, dil_h = p->dil_h, dil_w = p->dil_w;
    const int32_t in_row = in_w * ch;
    const int32_t x_step = dil_w * ch;
    const int32_t batch = p->batch, out_h = p->out_h, out_w = p->out_w;
    const int32_t stride_h = p->stride_h, stride_w = p->stride_w, pad_top = p->pad_top, pad_left = p->pad_left;
    int32_t b, oy, ox, c, ky, kx;

    for (b = 0; b < batch; ++b) {
        const int16_t *in_b = input + b * in_h * in_row;
        for (oy = 0; oy < out_h; ++oy) {
            const int32_t iy0 = oy * stride_h - pad_top;
            int32_t ky0, ky1;
            ec_window_range(iy0, dil_h, k_h, in_h, &ky0, &ky1);
            for (ox = 0; ox < out_w; ++ox) {
                const int32_t ix0 = ox * stride_w - pad_left;
                int32_t kx0, kx1;
                ec_window_range(ix0, dil_w, k_w, in_w, &kx0, &kx1);
                for (c = 0; c < ch; ++c) {
                    int32_t m = -32768;
                    for (ky = ky0; ky < ky1; ++ky) {
                        const int16_t *x_row = in_b + (iy0 + ky * dil_h) * in_row + c;
                        int32_t xi = (ix0 + kx0 * dil_w) * ch;
                        for (kx = kx0; kx < kx1; ++kx) {
                            m = x_row[xi] > m ? x_row[xi] : m;
                            xi += x_step;
                        }
                    }
                    *output++ = (int16_t)ec_clamp_i32(m, act_min, act_max);
                }
            }
        }
    }
}
