/*
 * ec_avgpool_s8: int8 average pooling, NHWC; input and output share scale and zero point.
 * acc = sum of (x - zp) over the window taps inside the input; divisor = taps inside the input, or with
 * count_include_pad taps inside [-pad, in + pad_end); out = clamp(rdiv(acc, divisor) + zp, act_min, act_max),
 * rdiv rounding to nearest with ties to even (as ONNX QuantizeLinear rounds the float average). A window with
 * divisor 0 yields clamp(zp). With x->mult != 0 the output has its own scale and zero point:
 * out = clamp(ec_requantize(acc, mult, shift) + out_zp, act_min, act_max) (1 / divisor folded into mult).
 * Compiled with EC_TFLM (ec_avgpool_s8_tflm.c), TFLM's AVERAGE_POOL_2D: called with zp = 0 and mult = 0 (the sum of
 * the stored int8 values over the taps inside the input, the output keeping the input's scale), rdiv rounds ties
 * away from zero: (acc + d / 2) / d for acc > 0, else (acc - d / 2) / d, truncating.
 */
#include "edgec_internal.h"

void ec_avgpool_s8(const ec_conv_params *p, const ec_avgpool_extra *x, int32_t zp, int32_t act_min,
                   int32_t act_max, const int8_t *input, int8_t *output)
{
    /* Parameters are copied to locals: stores through int8_t * may alias them otherwise. */
    const int32_t in_h = p->in_h, in_w = p->in_w, ch = p->in_c;
    const int32_t k_h = p->k_h, k_w = p->k_w, dil_h = p->dil_h, dil_w = p->dil_w;
    const int32_t in_row = in_w * ch;
    const int32_t x_step = dil_w * ch;
    const int32_t batch = p->batch, out_h = p->out_h, out_w = p->out_w;
    const int32_t stride_h = p->stride_h, stride_w = p->stride_w, pad_top = p->pad_top, pad_left = p->pad_left;
    const int32_t padded_h = pad_top + in_h + x->pad_bottom, padded_w = pad_left + in_w + x->pad_right;
    const int32_t include_pad = x->count_include_pad;
    const int32_t mult = x->mult, shift = x->shift, out_zp = mult != 0 ? x->out_zp : zp;
    int32_t b, oy, ox, c, ky, kx;

    for (b = 0; b < batch; ++b) {
        const int8_t *in_b = input + b * in_h * in_row;
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
                        const int8_t *x_row = in_b + (iy0 + ky * dil_h) * in_row + c;
                        int32_t xi = (ix0 + kx0 * dil_w) * ch;
                        for (kx = kx0; kx < kx1; ++kx) {
                            acc += x_row[xi] - zp;
                            xi += x_step;
                        }
                    }
                    if (mult != 0) {
                        acc = ec_requantize(acc, mult, shift);
                    } else if (d > 0) {
#if defined(EC_TFLM) /* TFLM: zp == 0 (the sum of the stored values), ties away from zero */
                        acc = acc > 0 ? (acc + d / 2) / d : (acc - d / 2) / d;
#else
                        acc = ec_div_round_even(acc, d);
#endif
                    }
                    *output++ = ec_output_s8(acc, out_zp, act_min, act_max);
                }
            }
        }
    }
}
