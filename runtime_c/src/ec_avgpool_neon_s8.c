/*
 * ec_avgpool_neon_s8: ec_avgpool_s8 (int8 average pooling, NHWC, the same arguments and results bit for bit) for
 * NEON. Per output position the window's int8 values are summed 16 channels at a time (then 8) into int16 lanes
 * (VADDW.S8; at most 128 taps before they are widened into int32, so no lane overflows); the sum less zp times the
 * taps inside the input is then finished per channel as ec_avgpool_s8 does (rounding division or requantization).
 * Channels beyond a multiple of 8, and other cores, run plain C. Measured on Cortex-A53 (edgec profile): dscnn_kws's
 * global pooling (125 taps, 64 channels) 71,117 -> 8,989 instructions, resnet8's (64 taps, 64 channels) 35,085 ->
 * 5,449.
 * Compiled with EC_TFLM (ec_avgpool_neon_s8_tflm.c): TFLM's AVERAGE_POOL_2D, as ec_avgpool_s8_tflm.
 */
#include "edgec_neon.h"

/* The output of one channel from acc = sum of (x - zp) over the taps inside the input; d: the divisor. */
static inline int8_t finish(int32_t acc, int32_t d, int32_t mult, int32_t shift, int32_t out_zp, int32_t act_min,
                            int32_t act_max)
{
    if (mult != 0) {
        acc = ec_requantize(acc, mult, shift);
    } else if (d > 0) {
#if defined(EC_TFLM) /* TFLM: zp == 0 (the sum of the stored values), ties away from zero */
        acc = acc > 0 ? (acc + d / 2) / d : (acc - d / 2) / d;
#else
        acc = ec_div_round_even(acc, d);
#endif
    }
    return ec_output_s8(acc, out_zp, act_min, act_max);
}

void ec_avgpool_neon_s8(const ec_conv_params *p, const ec_avgpool_extra *x, int32_t zp, int32_t act_min,
                        int32_t act_max, const int8_t *input, int8_t *output)
{
    /* Parameters are copied to locals: stores through int8_t * may alias them otherwise. */
    const int32_t in_h = p->in_h, in_w = p->in_w, ch = p->in_c;
    const int32_t k_h = p->k_h, k_w = p->k_w, dil_h = p->dil_h, dil_w = p->dil_w;
    const int32_t in_row = in_w * ch, x_step = dil_w * ch;
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
            for (ox = 0; ox < out_w; ++ox, output += ch) {
                const int32_t ix0 = ox * stride_w - pad_left;
                int32_t kx0, kx1, px0, px1, d, zsum;
                ec_window_range(ix0, dil_w, k_w, in_w, &kx0, &kx1);
                ec_window_range(ix0 + pad_left, dil_w, k_w, padded_w, &px0, &px1);
                d = include_pad ? (py1 - py0) * (px1 - px0) : (ky1 - ky0) * (kx1 - kx0);
                zsum = zp * (ky1 - ky0) * (kx1 - kx0);
                c = 0;
#if defined(__ARM_NEON)
                for (; c + 8 <= ch; c += c + 16 <= ch ? 16 : 8) {
                    const int32_t wide = c + 16 <= ch;
                    int32x4_t s0 = vdupq_n_s32(0), s1 = s0, s2 = s0, s3 = s0;
                    int16x8_t h0 = vdupq_n_s16(0), h1 = h0;
                    int32_t n = 0, i;
                    int32_t t[16];
                    for (ky = ky0; ky < ky1; ++ky) {
                        const int8_t *px = in_b + (iy0 + ky * dil_h) * in_row + (ix0 + kx0 * dil_w) * ch + c;
                        for (kx = kx0; kx < kx1; ++kx, px += x_step) {
                            if (wide) {
                                const int8x16_t v = vld1q_s8(px);
                                h0 = vaddw_s8(h0, vget_low_s8(v));
                                h1 = vaddw_s8(h1, vget_high_s8(v));
                            } else {
                                h0 = vaddw_s8(h0, vld1_s8(px));
                            }
                            if (++n == 128) { /* 128 * 128 fits int16 */
                                s0 = vaddw_s16(s0, vget_low_s16(h0));
                                s1 = vaddw_s16(s1, vget_high_s16(h0));
                                s2 = vaddw_s16(s2, vget_low_s16(h1));
                                s3 = vaddw_s16(s3, vget_high_s16(h1));
                                h0 = vdupq_n_s16(0);
                                h1 = h0;
                                n = 0;
                            }
                        }
                    }
                    vst1q_s32(t, vaddw_s16(s0, vget_low_s16(h0)));
                    vst1q_s32(t + 4, vaddw_s16(s1, vget_high_s16(h0)));
                    vst1q_s32(t + 8, vaddw_s16(s2, vget_low_s16(h1)));
                    vst1q_s32(t + 12, vaddw_s16(s3, vget_high_s16(h1)));
                    for (i = 0; i < (wide ? 16 : 8); ++i) {
                        output[c + i] = finish(t[i] - zsum, d, mult, shift, out_zp, act_min, act_max);
                    }
                }
#endif
                for (; c < ch; ++c) {
                    int32_t acc = 0;
                    for (ky = ky0; ky < ky1; ++ky) {
                        const int8_t *x_row = in_b + (iy0 + ky * dil_h) * in_row + c;
                        int32_t xi = (ix0 + kx0 * dil_w) * ch;
                        for (kx = kx0; kx < kx1; ++kx) {
                            acc += x_row[xi];
                            xi += x_step;
                        }
                    }
                    output[c] = finish(acc - zsum, d, mult, shift, out_zp, act_min, act_max);
                }
            }
        }
    }
}
