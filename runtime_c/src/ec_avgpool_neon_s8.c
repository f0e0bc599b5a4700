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

void ec_avgpool_neon_s8(const ec_conv_params *p, const ec_avgpool_extra *x, int32_t zp, int32_t act_min,
                        int32_t act_max, const int8_t *input, int8_t *output)
{
    /* Parameters are copied to locals: stores through int8_t * may alias them otherwise. */
    const int32_t ch = p->in_c, in_size = p->in_h * p->in_w * p->in_c;
    const int32_t batch = p->batch, out_h = p->out_h, out_w = p->out_w;
    const int32_t mult = x->mult, shift = x->shift, out_zp = mult != 0 ? x->out_zp : zp;
    int32_t b, oy, ox, c;

    for (b = 0; b < batch; ++b) {
        for (oy = 0; oy < out_h; ++oy) {
            for (ox = 0; ox < out_w; ++ox, output += ch) {
                const ec_pool_window w = ec_pool_window_at(p, x, oy, ox);
                const int8_t *in = input + b * in_size + w.first;
                const int32_t zsum = zp * w.rows * w.cols, d = w.divisor;
                c = 0;
#if defined(__ARM_NEON)
                for (; c + 8 <= ch; c += c + 16 <= ch ? 16 : 8) {
                    const int32_t wide = c + 16 <= ch;
                    int32x4_t s0 = vdupq_n_s32(0), s1 = s0, s2 = s0, s3 = s0;
                    int16x8_t h0 = vdupq_n_s16(0), h1 = h0;
                    int32_t n = 0, i, r, k;
                    int32_t t[16];
                    const int8_t *row = in + c;
                    for (r = 0; r < w.rows; ++r, row += w.row_step) {
                        const int8_t *px = row;
                        for (k = 0; k < w.cols; ++k, px += w.col_step) {
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
                        output[c + i] = ec_avgpool_out(t[i] - zsum, d, mult, shift, out_zp, act_min, act_max);
                    }
                }
#endif
                for (; c < ch; ++c) {
                    output[c] = ec_avgpool_out(ec_pool_sum_s8(in + c, &w) - zsum, d, mult, shift, out_zp, act_min,
                                               act_max);
                }
            }
        }
    }
}
