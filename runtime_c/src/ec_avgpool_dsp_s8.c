/*
 * ec_avgpool_dsp_s8: ec_avgpool_s8 (int8 average pooling, NHWC, same results) with the window sums of 8 (then 4)
 * channels at a time: per tap, one word load and two SXTAB16 add 4 int8 values into two pairs of 16-bit lanes (exact:
 * at most 256 taps of |x| <= 128), and sum(x - zp) = sum(x) - taps * zp. The output stage is ec_avgpool_s8's per channel
 * (ec_avgpool_out). Channels beyond the last group of 4, and cores without the DSP extension, sum one channel at a
 * time in plain C. Compiled with EC_TFLM (ec_avgpool_dsp_s8_tflm.c): TFLM's AVERAGE_POOL_2D and MEAN, as
 * ec_avgpool_s8_tflm.
 */
#include "edgec_dsp.h"

void ec_avgpool_dsp_s8(const ec_conv_params *p, const ec_avgpool_extra *x, int32_t zp, int32_t act_min,
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
                int32_t kx0, kx1, px0, px1, d, base;
                ec_window_range(ix0, dil_w, k_w, in_w, &kx0, &kx1);
                ec_window_range(ix0 + pad_left, dil_w, k_w, padded_w, &px0, &px1);
                d = include_pad ? (py1 - py0) * (px1 - px0) : (ky1 - ky0) * (kx1 - kx0);
                base = -(ky1 - ky0) * (kx1 - kx0) * zp; /* sum(x - zp) = sum(x) + base */
                c = 0;
#if defined(__ARM_FEATURE_DSP)
                for (; c + 8 <= ch; c += 8) {
                    int32_t s02 = 0, s13 = 0, s46 = 0, s57 = 0;
                    for (ky = ky0; ky < ky1; ++ky) {
                        const int8_t *q = in_b + (iy0 + ky * dil_h) * in_row + (ix0 + kx0 * dil_w) * ch + c;
                        for (kx = kx0; kx < kx1; ++kx) {
                            const int32_t w0 = ec_load32(q), w1 = ec_load32(q + 4);
                            s02 = __sxtab16(s02, w0);
                            s13 = ec_sxtab16_ror8(s13, w0);
                            s46 = __sxtab16(s46, w1);
                            s57 = ec_sxtab16_ror8(s57, w1);
                            q += x_step;
                        }
                    }
                    output[0] = ec_avgpool_out((int16_t)s02 + base, d, mult, shift, out_zp, act_min, act_max);
                    output[1] = ec_avgpool_out((int16_t)s13 + base, d, mult, shift, out_zp, act_min, act_max);
                    output[2] = ec_avgpool_out((s02 >> 16) + base, d, mult, shift, out_zp, act_min, act_max);
                    output[3] = ec_avgpool_out((s13 >> 16) + base, d, mult, shift, out_zp, act_min, act_max);
                    output[4] = ec_avgpool_out((int16_t)s46 + base, d, mult, shift, out_zp, act_min, act_max);
                    output[5] = ec_avgpool_out((int16_t)s57 + base, d, mult, shift, out_zp, act_min, act_max);
                    output[6] = ec_avgpool_out((s46 >> 16) + base, d, mult, shift, out_zp, act_min, act_max);
                    output[7] = ec_avgpool_out((s57 >> 16) + base, d, mult, shift, out_zp, act_min, act_max);
                    output += 8;
                }
                for (; c + 4 <= ch; c += 4) {
                    int32_t s02 = 0, s13 = 0;
                    for (ky = ky0; ky < ky1; ++ky) {
                        const int8_t *q = in_b + (iy0 + ky * dil_h) * in_row + (ix0 + kx0 * dil_w) * ch + c;
                        for (kx = kx0; kx < kx1; ++kx) {
                            const int32_t w = ec_load32(q);
                            s02 = __sxtab16(s02, w);
                            s13 = ec_sxtab16_ror8(s13, w);
                            q += x_step;
                        }
                    }
                    output[0] = ec_avgpool_out((int16_t)s02 + base, d, mult, shift, out_zp, act_min, act_max);
                    output[1] = ec_avgpool_out((int16_t)s13 + base, d, mult, shift, out_zp, act_min, act_max);
                    output[2] = ec_avgpool_out((s02 >> 16) + base, d, mult, shift, out_zp, act_min, act_max);
                    output[3] = ec_avgpool_out((s13 >> 16) + base, d, mult, shift, out_zp, act_min, act_max);
                    output += 4;
                }
#endif
                for (; c < ch; ++c) {
                    int32_t acc = base;
                    for (ky = ky0; ky < ky1; ++ky) {
                        const int8_t *q = in_b + (iy0 + ky * dil_h) * in_row + (ix0 + kx0 * dil_w) * ch + c;
                        for (kx = kx0; kx < kx1; ++kx) {
                            acc += *q;
                            q += x_step;
                        }
                    }
                    *output++ = ec_avgpool_out(acc, d, mult, shift, out_zp, act_min, act_max);
                }
            }
        }
    }
}
