/*
 * ec_depthwise_conv2d_s16: 16x8 depthwise 2-D convolution, NHWC, weights [k_h][k_w][out_c], zero points 0.
 * Output channel oc = ic * multiplier + m reads input channel ic; acc (int64) = bias[oc] + sum over the window taps
 * inside the input of x * w, then out = clamp(ec_requantize_s64(acc, mult[oc], shift[oc]), act_min, act_max).
 */
#include "edgec_internal.h"

void ec_depthwise_conv2d_s16(const ec_conv_params *p, const ec_quant_s16 *q, const int16_t *input,
                             const int8_t *weights, const int64_t *bias, int16_t *output)
{
    /* Parameters are copied to locals: stores through int16_t * may alias them otherwise. */
    const int32_t in_h = p->in_h, in_w = p->in_w, in_c = p->in_c, out_c = p->out_c;
    const int32_t k_h = p->k_h, k_w = p->k_w, dil_h = p->dil_h, dil_w = p->dil_w;
    const int32_t ch_mult = out_c / in_c;
    const int32_t in_row = in_w * in_c;
    const int32_t x_step = dil_w * in_c;
    const int32_t act_min = q->act_min, act_max = q->act_max;
    const int32_t *const mult = q->mult;
    const int32_t *const shift = q->shift;
    const int32_t batch = p->batch, out_h = p->out_h, out_w = p->out_w;
    const int32_t stride_h = p->stride_h, stride_w = p->stride_w, pad_top = p->pad_top, pad_left = p->pad_left;
    int32_t b, oy, ox, ic, m, ky, kx;

    for (b = 0; b < batch; ++b) {
        const int16_t *in_b = input + b * in_h * in_row;
        for (oy = 0; oy < out_h; ++oy) {
            const int32_t iy0 = oy * stride_h - pad_top;
            int32_t ky0, ky1;
            ec_window_range(iy0, dil_h, k_h, in_h, &ky0, &ky1);
            for (ox = 0; ox < out_w; ++ox) {
                const int32_t ix0 = ox * stride_w - pad_left;
                int32_t kx0, kx1;
                int32_t oc = 0;
                ec_window_range(ix0, dil_w, k_w, in_w, &kx0, &kx1);
                for (ic = 0; ic < in_c; ++ic) {
                    for (m = 0; m < ch_mult; ++m, ++oc) {
                        int64_t acc = bias != NULL ? bias[oc] : 0;
                        for (ky = ky0; ky < ky1; ++ky) {
                            const int16_t *x_row = in_b + (iy0 + ky * dil_h) * in_row + ic;
                            const int8_t *w_row = weights + ky * k_w * out_c + oc;
                            int32_t xi = (ix0 + kx0 * dil_w) * in_c;
                            int32_t wi = kx0 * out_c;
                            for (kx = kx0; kx < kx1; ++kx) {
                                acc += x_row[xi] * w_row[wi];
                                xi += x_step;
                                wi += out_c;
                            }
                        }
                        *output++ = ec_output_s16(ec_requantize_s64(acc, mult[oc], shift[oc]), act_min, act_max);
                    }
                }
            }
        }
    }
}
