/*
 * ec_avgpool_s16: int16 average pooling, NHWC; input and output share scale and zero point.
 * acc = sum of (x - zp) over the window taps inside the input; divisor = taps inside the input, or with
 * count_include_pad taps inside [-pad, in + pad_end); out = clamp(rdiv(acc, divisor) + zp, act_min, act_max),
 * rdiv rounding to nearest with ties to even (as ONNX QuantizeLinear rounds the float average). A window with
 * divisor 0 yields clamp(zp).
 */
#include "edgec_internal.h"

void ec_avgpool_s16(const ec_conv_params *p, const ec_avgpool_extra *x, int32_t zp, int32_t act_min,
                    int32_t act_max, const int16_t *input, int16_t *output)
{
    /* Parameters are copied to locals: stores through int16_t * may alias them otherwise. */
    const int32_t in_h = p->in_h, in_w = p->in_w, ch = p->in_c;
    const int32_t k_h = p->k_h, k_w = p->k_w, dil_h = p->dil_h, dil_w = p->dil_w;
    const int32_t in_row = in_w * ch;
    const int32_t x_step = dil_w * ch;
    const int32_t batch = p->batch, out_h = p->out_h, out_w = p->out_w;
    const int32_t stride_h = p->stride_h, stride_w = p->stride_w, pad_top = p->pad_top, pad_left = p->pad_left;
    const int32_t padded_h = pad_top + in_h + x->pad_bottom, padded_w = pad_left + in_w + x->pad_right;
    const int32_t include_pad = x->count_include_pad;
    int32_t b, oy, ox, c, ky, kx;

    for (b = 0; b < batch; ++b) {
        const int16_t *in_b = input + b * in_h * in_row;
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
                    int32_t acc = 0;
                    for (ky = ky0; ky < ky1; ++ky) {
                        const int16_t *x_row = in_b + (iy0 + ky * dil_h) * in_row + c;
                        int32_t xi = (ix0 + kx0 * dil_w) * ch;
                        for (kx = kx0; kx < kx1; ++kx) {
                            acc += x_row[xi] - zp;
                            xi += x_step;
                        }
                    }
                    if (d > 0) {
                        acc = ec_div_round_even(acc, d);
                    }
                    *output++ = ec_output_i16(acc, zp, act_min, act_max);
                }
            }
        }
    }
}
