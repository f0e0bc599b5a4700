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
#if defined(__ARM_FEATURE_MVE)
                for (c = 0; c < ch; c += 16) {
                    const mve_pred16_t t0 = vctp16q((uint32_t)(ch - c));
                    const mve_pred16_t t1 = vctp16q(ch - c > 8 ? (uint32_t)(ch - c - 8) : 0u);
                    int16x8_t s0 = vdupq_n_s16(0), s1 = vdupq_n_s16(0);
                    int16_t sums[16];
                    int32_t j, n;
                    for (ky = ky0; ky < ky1; ++ky) {
                        const int8_t *q = in_b + (iy0 + ky * dil_h) * in_row + (ix0 + kx0 * dil_w) * ch + c;
                        for (kx = kx0; kx < kx1; ++kx) {
                            s0 = vaddq_s16(s0, vldrbq_z_s16(q, t0));
                            s1 = vaddq_s16(s1, vldrbq_z_s16(q + 8, t1));
                            q += x_step;
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
#endif
            }
        }
    }
}
