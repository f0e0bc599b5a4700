/*
 * ec_depthwise_conv2d_packed_s8: int8 depthwise 2-D convolution with channel multiplier 1 (any kernel, stride,
 * padding, dilation), NHWC, packed int16 weights (layout in edgec_depthwise.h). DSP extension: 4 channels at a
 * time; where the whole window is inside the input, two taps per SMLAD (inputs expanded with SXTAB16, paired with
 * PKHBT/PKHTB), elsewhere one tap at a time (SMLAxy); channels beyond a multiple of 4 and other cores run plain C.
 * Same results as ec_depthwise_conv2d_s8 bit for bit. Chosen for depthwise layers that are not 3x3 with dilation 1
 * (those take ec_depthwise_conv2d_3x3_s8).
 */
#include "edgec_depthwise.h"

void ec_depthwise_conv2d_packed_s8(const ec_conv_params *p, const ec_quant_s8 *q, const int8_t *input,
                                   const int16_t *weights, const int32_t *bias, int8_t *output)
{
    const int32_t in_h = p->in_h, in_w = p->in_w, in_c = p->in_c, k_h = p->k_h, k_w = p->k_w;
    const int32_t taps = k_h * k_w;
    const int32_t fast = ec_fast_ok(bias, q, in_c, taps);
    int32_t b, oy, ox;
#if defined(__ARM_FEATURE_DSP)
    const int32_t row = in_w * in_c * p->dil_h, col = in_c * p->dil_w;
    const int32_t off = ec_dup16(-q->in_zp);
    const int32_t full_c = in_c & ~3, npairs = (taps + 1) >> 1;
#else
    const int32_t full_c = 0;
#endif

    for (b = 0; b < p->batch; ++b) {
        const int8_t *in_b = input + b * in_h * in_w * in_c;
        for (oy = 0; oy < p->out_h; ++oy) {
            const int32_t iy0 = oy * p->stride_h - p->pad_top;
            int32_t ky0, ky1;
            ec_window_range(iy0, p->dil_h, k_h, in_h, &ky0, &ky1);
            for (ox = 0; ox < p->out_w; ++ox) {
                const int32_t ix0 = ox * p->stride_w - p->pad_left;
                const int32_t base = (iy0 * in_w + ix0) * in_c;
                int32_t kx0, kx1;
                ec_window_range(ix0, p->dil_w, k_w, in_w, &kx0, &kx1);
#if defined(__ARM_FEATURE_DSP)
                {
                    const int32_t full = ky0 == 0 && ky1 == k_h && kx0 == 0 && kx1 == k_w;
                    int32_t c;
                    for (c = 0; c < full_c; c += 4) {
                        const int16_t *wg = weights + (c >> 2) * npairs * 8;
                        int32_t acc[4] = {0, 0, 0, 0};
                        if (bias != NULL) {
                            acc[0] = bias[c];
                            acc[1] = bias[c + 1];
                            acc[2] = bias[c + 2];
                            acc[3] = bias[c + 3];
                        }
                        if (full) {
                            const int8_t *x = in_b + base + c;
                            const ec_word *wq = (const ec_word *)(const void *)wg;
                            int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
                            int32_t t, ky = 0, kx = 0;
                            for (t = 0; t + 2 <= taps; t += 2) {
                                const int8_t *x0 = x + ky * row + kx * col;
                                const int8_t *x1;
                                if (++kx == k_w) {
                                    kx = 0;
                                    ++ky;
                                }
                                x1 = x + ky * row + kx * col;
                                if (++kx == k_w) {
                                    kx = 0;
                                    ++ky;
                                }
                                EC_DW_PAIR(x0, x1, wq);
                                wq += 4;
                            }
                            if (t < taps) {
                                EC_DW_SINGLE(x + ky * row + kx * col, wq);
                            }
                            output[c] = ec_dw_out(a0, q, c, fast);
                            output[c + 1] = ec_dw_out(a1, q, c + 1, fast);
                            output[c + 2] = ec_dw_out(a2, q, c + 2, fast);
                            output[c + 3] = ec_dw_out(a3, q, c + 3, fast);
                        } else {
                            ec_dw_group_border(p, q, in_b, base, wg, acc, fast, c, ky0, ky1, kx0, kx1, output);
                        }
                    }
                }
#endif
                ec_dw_channels(p, q, in_b, base, weights, bias, fast, full_c, in_c, ky0, ky1, kx0, kx1, output);
                output += in_c;
            }
        }
    }
}
