/*
 * ec_depthwise_conv2d_neon_s8: int8 depthwise 2-D convolution for NEON, channel multiplier 1, any kernel of at most
 * EC_DW_NEON_MAX_TAPS taps, stride, padding and dilation, NHWC. Weights [k_h][k_w][in_c] int8
 * (ec_depthwise_conv2d_s8's layout), folded bias (edgec_neon.h). Per output position, 16 channels at a time (then
 * 8): the taps in pairs of VMULL/VMLAL.S8 widened into int32 lanes (VADDW.S16), then the vector output stage. A tap
 * in the padding reads the scratch row of in_zp bytes. Channels beyond a multiple of 8, and other cores, run plain
 * C. Same results as ec_depthwise_conv2d_s8 (with the unfolded bias) bit for bit. 3x3 layers with dilation 1 take
 * ec_depthwise_conv2d_3x3_neon_s8.
 */
#include "edgec_neon.h"

int32_t ec_depthwise_conv2d_neon_s8_get_buffer_size(const ec_conv_params *p)
{
    return (p->in_c + 3) & ~3;
}

void ec_depthwise_conv2d_neon_s8(const ec_conv_params *p, const ec_quant_s8 *q, const int8_t *input,
                                 const int8_t *weights, const int32_t *bias, int8_t *output, void *scratch)
{
    const int32_t in_h = p->in_h, in_w = p->in_w, in_c = p->in_c, taps = p->k_h * p->k_w;
    const int32_t fast = ec_neon_fast_ok(bias, q, in_c, taps);
    int8_t *zp_row = (int8_t *)scratch;
    int32_t b, oy, ox;

    memset(zp_row, q->in_zp, (size_t)in_c);
    for (b = 0; b < p->batch; ++b) {
        const int8_t *in_b = input + b * in_h * in_w * in_c;
        for (oy = 0; oy < p->out_h; ++oy) {
            const int32_t iy0 = oy * p->stride_h - p->pad_top;
            for (ox = 0; ox < p->out_w; ++ox) {
                const int8_t *tp[EC_DW_NEON_MAX_TAPS];
                int32_t c = 0;
                ec_neon_dw_taps(p, in_b, iy0, ox * p->stride_w - p->pad_left, zp_row, tp);
#if defined(__ARM_NEON)
                for (; c + 16 <= in_c; c += 16) {
                    const int8_t *w = weights + c;
                    int32x4_t a0 = vld1q_s32(bias + c), a1 = vld1q_s32(bias + c + 4);
                    int32x4_t a2 = vld1q_s32(bias + c + 8), a3 = vld1q_s32(bias + c + 12);
                    int32_t t;
                    for (t = 0; t + 2 <= taps; t += 2, w += 2 * in_c) {
                        EC_DW16_PAIR(vld1q_s8(tp[t] + c), vld1q_s8(w), vld1q_s8(tp[t + 1] + c), vld1q_s8(w + in_c));
                    }
                    if (t < taps) {
                        EC_DW16_SINGLE(vld1q_s8(tp[t] + c), vld1q_s8(w));
                    }
                    ec_neon_dw_out16(a0, a1, a2, a3, q, c, in_c, fast, output);
                }
                if (c + 8 <= in_c) {
                    const int8_t *w = weights + c;
                    int32x4_t a0 = vld1q_s32(bias + c), a1 = vld1q_s32(bias + c + 4);
                    int32_t t;
                    for (t = 0; t + 2 <= taps; t += 2, w += 2 * in_c) {
                        EC_DW8_PAIR(vld1_s8(tp[t] + c), vld1_s8(w), vld1_s8(tp[t + 1] + c), vld1_s8(w + in_c));
                    }
                    if (t < taps) {
                        EC_DW8_SINGLE(vld1_s8(tp[t] + c), vld1_s8(w));
                    }
                    ec_neon_dw_out8(a0, a1, q, c, in_c, fast, output);
                    c += 8;
                }
#else
                (void)fast;
#endif
                ec_neon_dw_tail(tp, taps, weights, in_c, bias, q, c, output);
                output += in_c;
            }
        }
    }
}
