/*
 * ec_depthwise_conv2d_3x3_neon_s8: int8 3x3 depthwise convolution for NEON, channel multiplier 1, dilation 1, any
 * stride and padding, NHWC. Weights [3][3][in_c] int8 (ec_depthwise_conv2d_s8's layout), folded bias
 * (edgec_neon.h). A tap in the padding reads the scratch row of in_zp bytes. Channels beyond a multiple of 8, and
 * other cores, run plain C. Same results as ec_depthwise_conv2d_s8 (with the unfolded bias) bit for bit.
 * AArch64, maps of more than 16 positions: one block of 16 channels (then 8) at a time over every output position,
 * its 9 weight vectors and output-stage constants held in registers; per position the 9 taps as 4 pairs and one
 * single of VMULL/VMLAL.S8 widened into int32 (VADDW.S16), then the vector output stage; windows inside the input or
 * with one column in the padding take taps at fixed offsets (Cortex-A53, edgec profile: dscnn_kws's 64-channel
 * 25x5 layers 1.12 -> 0.83 instructions/MAC, mobilenet_vww96's 8-channel 48x48 one 2.87 -> 0.77). ARMv7 (16 vector
 * registers) and small maps: per position, 16 channels (then 8) with the weights loaded each time.
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

#if defined(__aarch64__)
/* The output stage of 4 lanes: u is shift - 1 when fast (the short form of ec_neon_requant), else shift. */
static inline int32x4_t requant(int32x4_t a, int32x4_t m, int32x4_t u, int32_t fast)
{
    return fast ? vrshlq_s32(vqdmulhq_s32(vaddq_s32(a, a), m), u) : ec_neon_requant(a, m, u, 0);
}

/* The first and one past the last output column whose window lies inside the input's columns. */
static void inside_columns(const ec_conv_params *p, int32_t *ox0, int32_t *ox1)
{
    int32_t lo = (p->pad_left + p->stride_w - 1) / p->stride_w;
    int32_t hi = p->in_w + p->pad_left >= 3 ? (p->in_w + p->pad_left - 3) / p->stride_w + 1 : 0;
    hi = hi < p->out_w ? hi : p->out_w;
    *ox0 = lo < hi ? lo : hi;
    *ox1 = hi;
}

/* One output position of 16 channels: taps at X0..X8 (expressions), weights w0..w8, result to out. */
#define EC_DW3X3_16(X0, X1, X2, X3, X4, X5, X6, X7, X8)                                                          \
    do {                                                                                                         \
        int32x4_t a0 = vld1q_s32(bc), a1 = vld1q_s32(bc + 4), a2 = vld1q_s32(bc + 8), a3 = vld1q_s32(bc + 12);   \
        int16x8_t h0_, h1_;                                                                                      \
        EC_DW16_PAIR(vld1q_s8(X0), w0, vld1q_s8(X1), w1);                                                        \
        EC_DW16_PAIR(vld1q_s8(X2), w2, vld1q_s8(X3), w3);                                                        \
        EC_DW16_PAIR(vld1q_s8(X4), w4, vld1q_s8(X5), w5);                                                        \
        EC_DW16_PAIR(vld1q_s8(X6), w6, vld1q_s8(X7), w7);                                                        \
        EC_DW16_SINGLE(vld1q_s8(X8), w8);                                                                        \
        h0_ = vcombine_s16(vqmovn_s32(requant(a0, m0, u0, fast)), vqmovn_s32(requant(a1, m1, u1, fast)));         \
        h1_ = vcombine_s16(vqmovn_s32(requant(a2, m2, u2, fast)), vqmovn_s32(requant(a3, m3, u3, fast)));         \
        h0_ = vqaddq_s16(h0_, zp);                                                                               \
        h1_ = vqaddq_s16(h1_, zp);                                                                               \
        vst1q_s8(out, vminq_s8(vmaxq_s8(vcombine_s8(vqmovn_s16(h0_), vqmovn_s16(h1_)), lo), hi));                \
    } while (0)

/* The same for 8 channels. */
#define EC_DW3X3_8(X0, X1, X2, X3, X4, X5, X6, X7, X8)                                                           \
    do {                                                                                                         \
        int32x4_t a0 = vld1q_s32(bc), a1 = vld1q_s32(bc + 4);                                                    \
        EC_DW8_PAIR(vld1_s8(X0), w0, vld1_s8(X1), w1);                                                           \
        EC_DW8_PAIR(vld1_s8(X2), w2, vld1_s8(X3), w3);                                                           \
        EC_DW8_PAIR(vld1_s8(X4), w4, vld1_s8(X5), w5);                                                           \
        EC_DW8_PAIR(vld1_s8(X6), w6, vld1_s8(X7), w7);                                                           \
        EC_DW8_SINGLE(vld1_s8(X8), w8);                                                                          \
        vst1_s8(out, ec_neon_out8(requant(a0, m0, u0, fast), requant(a1, m1, u1, fast), zp, lo, hi));            \
    } while (0)

/* The positions of one block of channels c ..: BODY(X0..X8) for each, inside windows with taps r + offsets, the
 * others with each tap selected (inside, or the zero-point row). */
#define EC_DW3X3_POSITIONS(BODY)                                                                                 \
    do {                                                                                                         \
        const int32_t in_h = p->in_h, in_w = p->in_w, row = in_w * in_c, image = in_h * row, c2 = 2 * in_c;       \
        const int32_t out_h = p->out_h, out_w = p->out_w, step = p->stride_w * in_c;                            \
        int32_t b, oy, ox, ox0, ox1;                                                                             \
        inside_columns(p, &ox0, &ox1);                                                                           \
        for (b = 0; b < p->batch; ++b) {                                                                         \
            const int8_t *in_b = input + b * image;                                                              \
            for (oy = 0; oy < out_h; ++oy) {                                                                     \
                const int32_t iy0 = oy * p->stride_h - p->pad_top;                                               \
                const int32_t rows_inside = iy0 >= 0 && iy0 + 2 < in_h;                                          \
                for (ox = 0; ox < out_w; ++ox, out += in_c) {                                                    \
                    const int32_t ix0 = ox * p->stride_w - p->pad_left;                                          \
                    const int8_t *const z_ = zp_row + c;                                                         \
                    if (rows_inside && ox == ox0 && ox0 < ox1) { /* the windows inside the input */             \
                        const int8_t *r0 = in_b + (iy0 * in_w + ix0) * in_c + c;                                 \
                        for (; ox < ox1; ++ox, out += in_c, r0 += step) {                                        \
                            const int8_t *r1 = r0 + row, *r2 = r1 + row;                                         \
                            BODY(r0, r0 + in_c, r0 + c2, r1, r1 + in_c, r1 + c2, r2, r2 + in_c, r2 + c2);        \
                        }                                                                                        \
                        --ox; /* the loop's step takes ox and out to the next position */                      \
                        out -= in_c;                                                                             \
                    } else if (rows_inside && ix0 == -1 && in_w >= 2) { /* one column in the left padding */     \
                        const int8_t *r0 = in_b + iy0 * row + c, *r1 = r0 + row, *r2 = r1 + row;                 \
                        BODY(z_, r0, r0 + in_c, z_, r1, r1 + in_c, z_, r2, r2 + in_c);                            \
                    } else if (rows_inside && ix0 >= 0 && ix0 + 2 == in_w) { /* one in the right padding */     \
                        const int8_t *r0 = in_b + (iy0 * in_w + ix0) * in_c + c, *r1 = r0 + row, *r2 = r1 + row; \
                        BODY(r0, r0 + in_c, z_, r1, r1 + in_c, z_, r2, r2 + in_c, z_);                            \
                    } else {                                                                                     \
                        const int8_t *const q0_ = iy0 >= 0 && iy0 < in_h ? in_b + iy0 * row + c : NULL;          \
                        const int8_t *const q1_ = iy0 + 1 >= 0 && iy0 + 1 < in_h ? in_b + (iy0 + 1) * row + c    \
                                                                                 : NULL;                         \
                        const int8_t *const q2_ = iy0 + 2 >= 0 && iy0 + 2 < in_h ? in_b + (iy0 + 2) * row + c    \
                                                                                 : NULL;                         \
                        const int32_t e0_ = ix0 >= 0 && ix0 < in_w, e1_ = ix0 + 1 >= 0 && ix0 + 1 < in_w;         \
                        const int32_t e2_ = ix0 + 2 >= 0 && ix0 + 2 < in_w;                                      \
                        const int32_t o0_ = ix0 * in_c, o1_ = o0_ + in_c, o2_ = o1_ + in_c;                      \
                        BODY(q0_ && e0_ ? q0_ + o0_ : z_, q0_ && e1_ ? q0_ + o1_ : z_, q0_ && e2_ ? q0_ + o2_ : z_, \
                             q1_ && e0_ ? q1_ + o0_ : z_, q1_ && e1_ ? q1_ + o1_ : z_, q1_ && e2_ ? q1_ + o2_ : z_, \
                             q2_ && e0_ ? q2_ + o0_ : z_, q2_ && e1_ ? q2_ + o1_ : z_, q2_ && e2_ ? q2_ + o2_ : z_); \
                    }                                                                                            \
                }                                                                                                \
            }                                                                                                    \
        }                                                                                                        \
    } while (0)

/* Channels c .. c + 15 of every output position. */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline void block16(const ec_conv_params *p, const ec_quant_s8 *q, const int8_t *input, const int8_t *weights,
                    const int32_t *bias, int8_t *output, const int8_t *zp_row, int32_t c, int32_t fast)
{
    const int32_t in_c = p->in_c, pc = q->per_channel;
    const int32_t *bc = bias + c;
    const int8_t *w = weights + c;
    const int8x16_t w0 = vld1q_s8(w), w1 = vld1q_s8(w + in_c), w2 = vld1q_s8(w + 2 * in_c);
    const int8x16_t w3 = vld1q_s8(w + 3 * in_c), w4 = vld1q_s8(w + 4 * in_c), w5 = vld1q_s8(w + 5 * in_c);
    const int8x16_t w6 = vld1q_s8(w + 6 * in_c), w7 = vld1q_s8(w + 7 * in_c), w8 = vld1q_s8(w + 8 * in_c);
    const int32x4_t m0 = ec_neon_qload(q->mult, c, pc), m1 = ec_neon_qload(q->mult, c + 4, pc);
    const int32x4_t m2 = ec_neon_qload(q->mult, c + 8, pc), m3 = ec_neon_qload(q->mult, c + 12, pc);
    const int32x4_t f = vdupq_n_s32(fast);
    const int32x4_t u0 = vsubq_s32(ec_neon_qload(q->shift, c, pc), f);
    const int32x4_t u1 = vsubq_s32(ec_neon_qload(q->shift, c + 4, pc), f);
    const int32x4_t u2 = vsubq_s32(ec_neon_qload(q->shift, c + 8, pc), f);
    const int32x4_t u3 = vsubq_s32(ec_neon_qload(q->shift, c + 12, pc), f);
    const int16x8_t zp = vdupq_n_s16((int16_t)q->out_zp);
    const int8x16_t lo = vdupq_n_s8((int8_t)q->act_min), hi = vdupq_n_s8((int8_t)q->act_max);
    int8_t *out = output + c;
    EC_DW3X3_POSITIONS(EC_DW3X3_16);
}

/* Channels c .. c + 7 of every output position. */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline void block8(const ec_conv_params *p, const ec_quant_s8 *q, const int8_t *input, const int8_t *weights,
                   const int32_t *bias, int8_t *output, const int8_t *zp_row, int32_t c, int32_t fast)
{
    const int32_t in_c = p->in_c, pc = q->per_channel;
    const int32_t *bc = bias + c;
    const int8_t *w = weights + c;
    const int8x8_t w0 = vld1_s8(w), w1 = vld1_s8(w + in_c), w2 = vld1_s8(w + 2 * in_c);
    const int8x8_t w3 = vld1_s8(w + 3 * in_c), w4 = vld1_s8(w + 4 * in_c), w5 = vld1_s8(w + 5 * in_c);
    const int8x8_t w6 = vld1_s8(w + 6 * in_c), w7 = vld1_s8(w + 7 * in_c), w8 = vld1_s8(w + 8 * in_c);
    const int32x4_t m0 = ec_neon_qload(q->mult, c, pc), m1 = ec_neon_qload(q->mult, c + 4, pc);
    const int32x4_t f = vdupq_n_s32(fast);
    const int32x4_t u0 = vsubq_s32(ec_neon_qload(q->shift, c, pc), f);
    const int32x4_t u1 = vsubq_s32(ec_neon_qload(q->shift, c + 4, pc), f);
    const int16x8_t zp = vdupq_n_s16((int16_t)q->out_zp);
    const int8x8_t lo = vdup_n_s8((int8_t)q->act_min), hi = vdup_n_s8((int8_t)q->act_max);
    int8_t *out = output + c;
    EC_DW3X3_POSITIONS(EC_DW3X3_8);
}
#endif

void ec_depthwise_conv2d_3x3_neon_s8(const ec_conv_params *p, const ec_quant_s8 *q, const int8_t *input,
                                     const int8_t *weights, const int32_t *bias, int8_t *output, void *scratch)
{
    const int32_t in_h = p->in_h, in_w = p->in_w, in_c = p->in_c;
#if defined(EC_TFLM)
    const int32_t fast = 0; /* ec_neon_requant computes TFLM's arithmetic from the shift itself */
#else
    const int32_t fast = ec_neon_fast_ok(bias, q, in_c, 9);
#endif
    int8_t *zp_row = (int8_t *)scratch;
    int32_t off[9];
    int32_t b, oy, ox, t, c0 = 0;

    memset(zp_row, q->in_zp, (size_t)in_c);
#if defined(__aarch64__)
    /* blocks over the positions where there are enough of them; on small maps (nearly every window at a border)
     * the per-position loop below is shorter (Cortex-A53, a 3x3 map of 256 channels with padding 1: 20,391
     * instructions per position, 27,325 in blocks) */
    for (; c0 + 16 <= in_c && p->out_h * p->out_w > 16; c0 += 16) {
        if (fast) {
            block16(p, q, input, weights, bias, output, zp_row, c0, 1);
        } else {
            block16(p, q, input, weights, bias, output, zp_row, c0, 0);
        }
    }
    if (c0 + 8 <= in_c && p->out_h * p->out_w > 16) {
        if (fast) {
            block8(p, q, input, weights, bias, output, zp_row, c0, 1);
        } else {
            block8(p, q, input, weights, bias, output, zp_row, c0, 0);
        }
        c0 += 8;
    }
    if (c0 == in_c) {
        return;
    }
#endif
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
                int32_t c = c0;
                if (rows_inside && ix0 >= 0 && ix0 + 2 < in_w) {
                    const int8_t *r0 = in_b + (iy0 * in_w + ix0) * in_c, *r1 = r0 + in_w * in_c;
                    const int8_t *r2 = r1 + in_w * in_c;
                    tp[0] = r0;
                    tp[1] = r0 + in_c;
                    tp[2] = r0 + 2 * in_c;
                    tp[3] = r1;
                    tp[4] = r1 + in_c;
                    tp[5] = r1 + 2 * in_c;
                    tp[6] = r2;
                    tp[7] = r2 + in_c;
                    tp[8] = r2 + 2 * in_c;
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
