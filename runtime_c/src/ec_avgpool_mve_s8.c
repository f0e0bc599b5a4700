/*
 * ec_avgpool_mve_s8: ec_avgpool_s8 (int8 average pooling, NHWC, same results) with Helium: the window sums of 16
 * channels at a time, two widening VLDRB.S16 and two VADD.I16 per tap (exact in 16-bit lanes: at most 256 taps of
 * |x| <= 128), the last channels predicated; sum(x - zp) = sum(x) - taps * zp, and the output stage is
 * ec_avgpool_s8's per channel (ec_avgpool_out). Without Helium: plain C, one channel at a time. Compiled with
 * EC_TFLM (ec_avgpool_mve_s8_tflm.c): TFLM's AVERAGE_POOL_2D and MEAN, as ec_avgpool_s8_tflm.
 */
#if defined(__ARM_FEATURE_MVE)
#include "edgec_mve.h"
#else
#include "edgec_internal.h"
#endif

void ec_avgpool_mve_s8(const ec_conv_params *p, const ec_avgpool_extra *x, int32_t zp, int32_t act_min,
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
#if defined(__ARM_FEATURE_MVE)
                for (c = 0; c < ch; c += 16) {
                    const mve_pred16_t t0 = vctp16q((uint32_t)(ch - c));
                    const mve_pred16_t t1 = vctp16q(ch - c > 8 ? (uint32_t)(ch - c - 8) : 0u);
                    const int8_t *row = in + c;
                    int16x8_t s0 = vdupq_n_s16(0), s1 = vdupq_n_s16(0);
                    int16_t sums[16];
                    int32_t j, n, r, k;
                    for (r = 0; r < w.rows; ++r, row += w.row_step) {
                        const int8_t *q = row;
                        for (k = 0; k < w.cols; ++k, q += w.col_step) {
                            s0 = vaddq_s16(s0, vldrbq_z_s16(q, t0));
                            s1 = vaddq_s16(s1, vldrbq_z_s16(q + 8, t1));
                        }
                    }
                    vst1q_s16(sums, s0);
                    vst1q_s16(sums + 8, s1);
                    n = ch - c < 16 ? ch - c : 16;
                    for (j = 0; j < n; ++j) {
                        *output++ = ec_avgpool_out(sums[j] + base, d, mult, shift, out_zp, act_min, act_max);
                    }
                }
#else
                for (c = 0; c < ch; ++c) {
                    *output++ = ec_avgpool_out(ec_pool_sum_s8(in + c, &w) + base, d, mult, shift, out_zp, act_min,
                                               act_max);
                }
#endif
            }
        }
    }
}
