/*
 * ec_depthwise_conv2d_3x3_neon_s8: int8 3x3 depthwise convolution for NEON, channel multiplier 1, dilation 1, any
 * stride and padding, NHWC. Weights [3][3][in_c] int8 (ec_depthwise_conv2d_s8's layout), folded bias
 * (edgec_neon.h). Per output position, 16 channels at a time (then 8): the 9 taps as 4 pairs and one single of
 * VMULL/VMLAL.S8 widened into 4 int32 vectors (VADDW.S16), then the vector output stage. A tap in the padding reads
 * the scratch row of in_zp bytes. Channels beyond a multiple of 8, and other cores, run plain C. Same results as
 * ec_depthwise_conv2d_s8 (with the unfolded bias) bit for bit.
 */
#include "edgec_neon.h"

/* The 9 tap pointers of the window at input (iy0, ix0) that crosses the border: inside the input, or zp_row. */
static void border_taps(const ec_conv_params *p, const int8_t *in_b, int32_t iy0, int32_t ix0, const int32_t *off,
                        const int8_t *zp_row, const int8_t **tp)
{
    const int32_t o = (iy0 * p->in_w + ix0) * p->in_c;
    const int32_t r0 = iy0 >= 0 && iy0 < p->in_h, r1 = iy0 + 1 >= 0 && iy0 + 1 < p->in_h;
    const int32_t r2 = iy0 + 2 >= 0 && iy0 + 2 < p->in_h;
    const int32_t c0 = ix0 >= 0 && ix0 < p->in_w, c1 = ix0 + 1 >= 0 && ix0 + 1 < p->in_w;
    const int32_t c2 = ix0 + 2 >= 0 && ix0 + 2 < p->in_w;
    tp[0] = r0 && c0 ? in_b + (o + off[0]) : zp_row;
    tp[1] = r0 && c1 ? in_b + (o + off[1]) : zp_row;
    tp[2] = r0 && c2 ? in_b + (o + off[2]) : zp_row;
    tp[3] = r1 && c0 ? in_b + (o + off[3]) : zp_row;
    tp[4] = r1 && c1 ? in_b + (o + off[4]) : zp_row;
    tp[5] = r1 && c2 ? in_b + (o + off[5]) : zp_row;
    tp[6] = r2 && c0 ? in_b + (o + off[6]) : zp_row;
    tp[7] = r2 && c1 ? in_b + (o + off[7]) : zp_row;
    tp[8] = r2 && c2 ? in_b + (o + off[8]) : zp_row;
}

int32_t ec_depthwise_conv2d_3x3_neon_s8_get_buffer_size(const ec_conv_params *p)
{
    return (p->in_c + 3) & ~3;
}

void ec_depthwise_conv2d_3x3_neon_s8(const ec_conv_params *p, const ec_quant_s8 *q, const int8_t *input,
                                     const int8_t *weights, const int32_t *bias, int8_t *output, void *scratch)
{
    const int32_t in_h = p->in_h, in_w = p->in_w, in_c = p->in_c;
    const int32_t fast = ec_neon_fast_ok(bias, q, in_c, 9);
    int8_t *zp_row = (int8_t *)scratch;
    int32_t off[9];
    int32_t b, oy, ox, t;

    memset(zp_row, q->in_zp, (size_t)in_c);
    for (t = 0; t < 9; ++t) {
        off[t] = ((t / 3) * in_w + t % 3) * in_c;
    }
    for (b = 0; b < p->batch; ++b) {
        const int8_t *in_b = input + b * in_h * in_w * in_c;
        for (oy = 0; oy < p->out_h; ++oy) {
            const int32_t iy0 = oy * p->stride_h - p->pad_top;
            const int32_t rows_inside = iy0 >= 0 && iy0 + 2 < in_h;
            for (ox = 0; ox < p->out_w; ++ox) {
                const int32_t ix0 = ox * p->stride_w - p->pad_left;
                const int8_t *tp[9];
                int32_t c = 0;
                if (rows_inside && ix0 >= 0 && ix0 + 2 < in_w) {
                    const int8_t *base = in_b + (iy0 * in_w + ix0) * in_c;
                    for (t = 0; t < 9; ++t) {
                        tp[t] = base + off[t];
                    }
                } else {
                    border_taps(p, in_b, iy0, ix0, off, zp_row, tp);
                }
#if defined(__ARM_NEON)
                for (; c + 16 <= in_c; c += 16) {
                    const int8_t *w = weights + c;
                    int32x4_t a0 = vld1q_s32(bias + c), a1 = vld1q_s32(bias + c + 4);
                    int32x4_t a2 = vld1q_s32(bias + c + 8), a3 = vld1q_s32(bias + c + 12);
                    EC_DW16_PAIR(vld1q_s8(tp[0] + c), vld1q_s8(w), vld1q_s8(tp[1] + c), vld1q_s8(w + in_c));
                    EC_DW16_PAIR(vld1q_s8(tp[2] + c), vld1q_s8(w + 2 * in_c), vld1q_s8(tp[3] + c),
                                 vld1q_s8(w + 3 * in_c));
                    EC_DW16_PAIR(vld1q_s8(tp[4] + c), vld1q_s8(w + 4 * in_c), vld1q_s8(tp[5] + c),
                                 vld1q_s8(w + 5 * in_c));
                    EC_DW16_PAIR(vld1q_s8(tp[6] + c), vld1q_s8(w + 6 * in_c), vld1q_s8(tp[7] + c),
                                 vld1q_s8(w + 7 * in_c));
                    EC_DW16_SINGLE(vld1q_s8(tp[8] + c), vld1q_s8(w + 8 * in_c));
                    ec_neon_dw_out16(a0, a1, a2, a3, q, c, in_c, fast, output);
                }
                if (c + 8 <= in_c) {
                    const int8_t *w = weights + c;
                    int32x4_t a0 = vld1q_s32(bias + c), a1 = vld1q_s32(bias + c + 4);
                    EC_DW8_PAIR(vld1_s8(tp[0] + c), vld1_s8(w), vld1_s8(tp[1] + c), vld1_s8(w + in_c));
                    EC_DW8_PAIR(vld1_s8(tp[2] + c), vld1_s8(w + 2 * in_c), vld1_s8(tp[3] + c), vld1_s8(w + 3 * in_c));
                    EC_DW8_PAIR(vld1_s8(tp[4] + c), vld1_s8(w + 4 * in_c), vld1_s8(tp[5] + c), vld1_s8(w + 5 * in_c));
                    EC_DW8_PAIR(vld1_s8(tp[6] + c), vld1_s8(w + 6 * in_c), vld1_s8(tp[7] + c), vld1_s8(w + 7 * in_c));
                    EC_DW8_SINGLE(vld1_s8(tp[8] + c), vld1_s8(w + 8 * in_c));
                    ec_neon_dw_out8(a0, a1, q, c, in_c, fast, output);
                    c += 8;
                }
#else
                (void)fast;
#endif
                ec_neon_dw_tail(tp, 9, weights, in_c, bias, q, c, output);
                output += in_c;
            }
        }
    }
}
