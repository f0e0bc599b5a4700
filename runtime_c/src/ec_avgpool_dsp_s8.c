/*
 * ec_avgpool_dsp_s8: ec_avgpool_s8 (int8 average pooling, NHWC, same results) with the window sums of 8 (then 4)
 * channels at a time: per tap, one word load and two SXTAB16 add 4 int8 values into two pairs of 16-bit lanes (exact:
 * at most 256 taps of |x| <= 128), and sum(x - zp) = sum(x) - taps * zp. The output stage is ec_avgpool_s8's per channel
 * (ec_avgpool_out). Channels beyond the last group of 4, and cores without the DSP extension, sum one channel at a
 * time in plain C. Compiled with EC_TFLM (ec_avgpool_dsp_s8_tflm.c): TFLM's AVERAGE_POOL_2D and MEAN, as
 * ec_avgpool_s8_tflm.
 */
#include "edgec_dsp.h"

#if defined(__ARM_FEATURE_DSP)
/* The outputs of 4 channels from their window sums in the 16-bit lanes of s02 (channels 0, 2) and s13 (1, 3). */
static inline int8_t *ec_avgpool_out4(int8_t *out, int32_t s02, int32_t s13, int32_t base, int32_t d, int32_t mult,
                                      int32_t shift, int32_t out_zp, int32_t act_min, int32_t act_max)
{
    out[0] = ec_avgpool_out((int16_t)s02 + base, d, mult, shift, out_zp, act_min, act_max);
    out[1] = ec_avgpool_out((int16_t)s13 + base, d, mult, shift, out_zp, act_min, act_max);
    out[2] = ec_avgpool_out((s02 >> 16) + base, d, mult, shift, out_zp, act_min, act_max);
    out[3] = ec_avgpool_out((s13 >> 16) + base, d, mult, shift, out_zp, act_min, act_max);
    return out + 4;
}
#endif

void ec_avgpool_dsp_s8(const ec_conv_params *p, const ec_avgpool_extra *x, int32_t zp, int32_t act_min,
                       int32_t act_max, const int8_t *input, int8_t *output)
{
    /* Parameters are copied to locals: stores through int8_t * may alias them otherwise. */
    const int32_t ch = p->in_c, in_size = p->in_h * p->in_w * p->in_c;
    const int32_t batch = p->batch, out_h = p->out_h, out_w = p->out_w;
    const int32_t mult = x->mult, shift = x->shift, out_zp = mult != 0 ? x->out_zp : zp;
    int32_t b, oy, ox, c;

    for (b = 0; b < batch; ++b) {
        for (oy = 0; oy < out_h; ++oy) {
            for (ox = 0; ox < out_w; ++ox) {
                const ec_pool_window w = ec_pool_window_at(p, x, oy, ox);
                const int8_t *in = input + b * in_size + w.first;
                const int32_t base = -w.rows * w.cols * zp, d = w.divisor; /* sum(x - zp) = sum(x) + base */
                c = 0;
#if defined(__ARM_FEATURE_DSP)
                for (; c + 8 <= ch; c += 8) {
                    int32_t s02 = 0, s13 = 0, s46 = 0, s57 = 0, r, k;
                    const int8_t *row = in + c;
                    for (r = 0; r < w.rows; ++r, row += w.row_step) {
                        const int8_t *q = row;
                        for (k = 0; k < w.cols; ++k, q += w.col_step) {
                            const int32_t w0 = ec_load32(q), w1 = ec_load32(q + 4);
                            s02 = __sxtab16(s02, w0);
                            s13 = ec_sxtab16_ror8(s13, w0);
                            s46 = __sxtab16(s46, w1);
                            s57 = ec_sxtab16_ror8(s57, w1);
                        }
                    }
                    output = ec_avgpool_out4(output, s02, s13, base, d, mult, shift, out_zp, act_min, act_max);
                    output = ec_avgpool_out4(output, s46, s57, base, d, mult, shift, out_zp, act_min, act_max);
                }
                for (; c + 4 <= ch; c += 4) {
                    int32_t s02 = 0, s13 = 0, r, k;
                    const int8_t *row = in + c;
                    for (r = 0; r < w.rows; ++r, row += w.row_step) {
                        const int8_t *q = row;
                        for (k = 0; k < w.cols; ++k, q += w.col_step) {
                            const int32_t w0 = ec_load32(q);
                            s02 = __sxtab16(s02, w0);
                            s13 = ec_sxtab16_ror8(s13, w0);
                        }
                    }
                    output = ec_avgpool_out4(output, s02, s13, base, d, mult, shift, out_zp, act_min, act_max);
                }
#endif
                for (; c < ch; ++c) {
                    *output++ = ec_avgpool_out(ec_pool_sum_s8(in + c, &w) + base, d, mult, shift, out_zp, act_min,
                                               act_max);
                }
            }
        }
    }
}
