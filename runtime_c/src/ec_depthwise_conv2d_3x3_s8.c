/*
 * ec_depthwise_conv2d_3x3_s8: the 3x3 fast path of ec_depthwise_conv2d_packed_s8 (channel multiplier 1, any
 * stride, padding and dilation; packed int16 weights, layout in edgec_depthwise.h). DSP extension: where the
 * window is inside the input, the 9 taps of 4 channels take 4 paired SMLADs and one SMLAxy per channel with
 * addresses fixed per call; border positions and channels beyond a multiple of 4 go one tap at a time; other
 * cores run plain C. Same results as ec_depthwise_conv2d_s8 bit for bit.
 */
#include "edgec_depthwise.h"

void ec_depthwise_conv2d_3x3_s8(const ec_conv_params *p, const ec_quant_s8 *q, const int8_t *input,
                                const int16_t *weights, const int32_t *bias, int8_t *output)
{
    const int32_t in_h = p->in_h, in_w = p->in_w, in_c = p->in_c;
    const int32_t small = ec_acc_small(bias, in_c, 9);
    int32_t b, oy, ox;
#if defined(__ARM_FEATURE_DSP)
    const int32_t row = in_w * in_c * p->dil_h, col = in_c * p->dil_w;
    const int32_t off = ec_dup16(-q->in_zp);
    const int32_t full_c = in_c & ~3;
#else
    const int32_t full_c = 0;
#endif

    for (b = 0; b < p->batch; ++b) {
        const int8_t *in_b = input + b * in_h * in_w * in_c;
        for (oy = 0; oy < p->out_h; ++oy) {
            const int32_t iy0 = oy * p->stride_h - p->pad_top;
            int32_t ky0, ky1;
            ec_window_range(iy0, p->dil_h, 3, in_h, &ky0, &ky1);
            for (ox = 0; ox < p->out_w; ++ox) {
                const int32_t ix0 = ox * p->stride_w - p->pad_left;
                const int32_t base = (iy0 * in_w + ix0) * in_c;
                int32_t kx0, kx1;
                ec_window_range(ix0, p->dil_w, 3, in_w, &kx0, &kx1);
#if defined(__ARM_FEATURE_DSP)
                if (ky0 == 0 && ky1 == 3 && kx0 == 0 && kx1 == 3) {
                    const int8_t *x = in_b + base;
                    const ec_word *wq = (const ec_word *)(const void *)weights;
                    int32_t c;
                    for (c = 0; c < full_c; c += 4) {
                        int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
                        if (bias != NULL) {
                            a0 = bias[c];
                            a1 = bias[c + 1];
                            a2 = bias[c + 2];
                            a3 = bias[c + 3];
                        }
                        EC_DW_PAIR(x, x + col, wq);
                        EC_DW_PAIR(x + 2 * col, x + row, wq + 4);
                        EC_DW_PAIR(x + row + col, x + row + 2 * col, wq + 8);
                        EC_DW_PAIR(x + 2 * row, x + 2 * row + col, wq + 12);
                        EC_DW_SINGLE(x + 2 * row + 2 * col, wq + 16);
                        output[c] = ec_dw_out(a0, q, c, small);
                        output[c + 1] = ec_dw_out(a1, q, c + 1, small);
                        output[c + 2] = ec_dw_out(a2, q, c + 2, small);
                        output[c + 3] = ec_dw_out(a3, q, c + 3, small);
                        x += 4;
                        wq += 20;
                    }
                } else {
                    int32_t c;
                    for (c = 0; c < full_c; c += 4) {
                        int32_t acc[4] = {0, 0, 0, 0};
                        if (bias != NULL) {
                            acc[0] = bias[c];
                            acc[1] = bias[c + 1];
                            acc[2] = bias[c + 2];
                            acc[3] = bias[c + 3];
                        }
                        ec_dw_group_border(p, q, in_b, base, weights + (c >> 2) * 40, acc, small, c, ky0, ky1, kx0,
                                           kx1, output);
                    }
                }
#endif
                ec_dw_channels(p, q, in_b, base, weights, bias, small, full_c, in_c, ky0, ky1, kx0, kx1, output);
                output += in_c;
            }
        }
    }
}
