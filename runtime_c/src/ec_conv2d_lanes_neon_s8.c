/*
 * ec_conv2d_lanes_neon_s8: int8 2-D convolution (groups == 1, any kernel, stride, padding, dilation), NHWC, for
 * layers with a short dot product (K = k_h * k_w * in_c up to a few dozen: first layers with 1 to 3 input
 * channels, narrow 1x1 layers), where the matrix kernels' per-output horizontal sums and stores cost more than the
 * products. One output pixel at a time: its input window (K int8 values, read in place for a 1x1 layer without
 * padding whose in_c is a multiple of 8, else copied into the scratch column with in_zp in the padding) is widened
 * to int16 once, and each input value multiplies a row of 16 (or 8) output channels' int16 weights by lane
 * (VMLAL.S16 by scalar: 4 products per instruction, accumulated in int32 with no horizontal sums), so the output
 * channels come out in lanes for the vector output stage. Plain C elsewhere. Same results as ec_conv2d_s8 (with the
 * unfolded bias) bit for bit; any int8 weight (the products are int16 x int16).
 *
 * Weights (edgec.h): int16, blocks of 16 output channels (a last block of 8 when out_c rounded up to 8 leaves 8),
 * each [K8][block width] (K8 = K rounded up to 8, out_c to 8; zeros in the padding); folded bias.
 * Measured on Cortex-A53 (edgec profile, against ec_conv2d_1x1_neon_s8): mobilenet_vww96's 1x1 8 -> 16 layer at
 * 48x48 466,765 -> 258,648 instructions, 16 -> 32 at 24x24 240,721 -> 160,507; the crossovers are in
 * toolchain/ops/neon.py.
 */
#include "edgec_neon.h"

int32_t ec_conv2d_lanes_neon_s8_get_buffer_size(const ec_conv_params *p)
{
    return 2 * ((ec_k8(p->k_h * p->k_w * p->in_c) + 8 + 15) & ~15) + 12 * ec_k8(p->out_c);
}

#if defined(__ARM_NEON)
/* a0..a3 (16 channels of pixel 0) and c0..c3 (pixel 1) += w[j][0 .. 15] * x[j], lane l of y0 / y1 holding x[j]. */
#define EC_LANE16(y0, y1, l, j)                                                                                  \
    do {                                                                                                         \
        const int16x8_t w0_ = vld1q_s16(wp + 16 * (j)), w1_ = vld1q_s16(wp + 16 * (j) + 8);                       \
        a0 = vmlal_lane_s16(a0, vget_low_s16(w0_), (y0), (l));                                                   \
        a1 = vmlal_lane_s16(a1, vget_high_s16(w0_), (y0), (l));                                                  \
        a2 = vmlal_lane_s16(a2, vget_low_s16(w1_), (y0), (l));                                                   \
        a3 = vmlal_lane_s16(a3, vget_high_s16(w1_), (y0), (l));                                                  \
        c0 = vmlal_lane_s16(c0, vget_low_s16(w0_), (y1), (l));                                                   \
        c1 = vmlal_lane_s16(c1, vget_high_s16(w0_), (y1), (l));                                                  \
        c2 = vmlal_lane_s16(c2, vget_low_s16(w1_), (y1), (l));                                                   \
        c3 = vmlal_lane_s16(c3, vget_high_s16(w1_), (y1), (l));                                                  \
    } while (0)
#define EC_LANE8(y0, y1, l, j)                                                                                   \
    do {                                                                                                         \
        const int16x8_t w0_ = vld1q_s16(wp + 8 * (j));                                                           \
        a0 = vmlal_lane_s16(a0, vget_low_s16(w0_), (y0), (l));                                                   \
        a1 = vmlal_lane_s16(a1, vget_high_s16(w0_), (y0), (l));                                                  \
        c0 = vmlal_lane_s16(c0, vget_low_s16(w0_), (y1), (l));                                                   \
        c1 = vmlal_lane_s16(c1, vget_high_s16(w0_), (y1), (l));                                                  \
    } while (0)
/* All 8 lanes j .. j + 7 of both pixels' input vectors. */
#define EC_LANES8(MAC)                                                                                           \
    do {                                                                                                         \
        const int16x8_t v0_ = vmovl_s8(vld1_s8(x0 + j)), v1_ = vmovl_s8(vld1_s8(x1 + j));                        \
        const int16x4_t l0_ = vget_low_s16(v0_), h0_ = vget_high_s16(v0_);                                      \
        const int16x4_t l1_ = vget_low_s16(v1_), h1_ = vget_high_s16(v1_);                                      \
        MAC(l0_, l1_, 0, 0);                                                                                     \
        MAC(l0_, l1_, 1, 1);                                                                                     \
        MAC(l0_, l1_, 2, 2);                                                                                     \
        MAC(l0_, l1_, 3, 3);                                                                                     \
        MAC(h0_, h1_, 0, 4);                                                                                     \
        MAC(h0_, h1_, 1, 5);                                                                                     \
        MAC(h0_, h1_, 2, 6);                                                                                     \
        MAC(h0_, h1_, 3, 7);                                                                                     \
    } while (0)

/* The output stage of 4 lanes from the per-channel tables (mult, shift - fast): the short form of ec_neon_requant
 * when fast. */
static inline int32x4_t stage4(int32x4_t a, const int32_t *mv, const int32_t *uv, int32_t i, int32_t fast)
{
    const int32x4_t m = vld1q_s32(mv + i), u = vld1q_s32(uv + i);
    return fast ? vrshlq_s32(vqdmulhq_s32(vaddq_s32(a, a), m), u) : ec_neon_requant(a, m, u, 0);
}

/* 8 outputs of channels i .. i + 7 from accumulators (bias added). */
static inline int8x8_t out8(int32x4_t a, int32x4_t b, const int32_t *mv, const int32_t *uv, int32_t i, int32_t fast,
                            int16x8_t zp, int8x8_t lo, int8x8_t hi)
{
    return ec_neon_out8(stage4(a, mv, uv, i, fast), stage4(b, mv, uv, i + 4, fast), zp, lo, hi);
}
#endif

/* The input window of output pixel pix: in place (a 1x1 layer whose in_c is a multiple of 8, the pixel inside the
 * input) or copied to col (K8 bytes and 8 spare; zeros after K, or any input bytes, which meet zero weights).
 * limit: the input's bytes (a window inside the input copies its rows 8 bytes at a time when that reads no further). */
static inline const int8_t *window(const ec_conv_params *p, const int8_t *input, int32_t limit, int32_t pix,
                                   int32_t zp, int8_t *col)
{
    const int32_t hw = p->out_h * p->out_w, b = pix / hw, r = pix % hw, in_c = p->in_c, in_w = p->in_w;
    const int32_t iy0 = (r / p->out_w) * p->stride_h - p->pad_top, ix0 = (r % p->out_w) * p->stride_w - p->pad_left;
    const int32_t k_h = p->k_h, k_w = p->k_w, len = k_w * in_c, row_step = p->dil_h * in_w * in_c;
    const int32_t last_row = (k_h - 1) * p->dil_h, at = b * p->in_h * in_w * in_c + (iy0 * in_w + ix0) * in_c;
    if (k_h == 1 && k_w == 1 && in_c % 8 == 0 && iy0 >= 0 && ix0 >= 0 && iy0 < p->in_h && ix0 < in_w) {
        return input + at;
    }
    if (p->dil_w == 1 && iy0 >= 0 && iy0 + last_row < p->in_h && ix0 >= 0 && ix0 + k_w <= in_w &&
        at + last_row * in_w * in_c + ((len + 7) & ~7) <= limit) {
        const int8_t *src = input + at;
        int8_t *dst = col;
        int32_t ky, i;
        for (ky = 0; ky < k_h; ++ky, dst += len, src += row_step) {
            for (i = 0; i < len; i += 8) {
#if defined(__ARM_NEON)
                vst1_s8(dst + i, vld1_s8(src + i));
#else
                memcpy(dst + i, src + i, 8);
#endif
            }
        }
        return col;
    }
    ec_neon_im2col(p, input + b * p->in_h * in_w * in_c, iy0, ix0, zp, col);
    return col;
}

/* The kernel's loops; fast a constant in each inlined copy. tables: bias, mult, shift - fast per channel (n8). */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline void lanes(const ec_conv_params *p, const ec_quant_s8 *q, const int8_t *input, const int16_t *weights,
                         const int32_t *bias, int8_t *output, int8_t *col, int32_t col_step, const int32_t *tables,
                         int32_t fast)
{
    const int32_t k = p->k_h * p->k_w * p->in_c, k8 = ec_k8(k), out_c = p->out_c, n8 = ec_k8(out_c);
    const int32_t npix = p->batch * p->out_h * p->out_w, in_zp = q->in_zp;
    const int32_t limit = p->batch * p->in_h * p->in_w * p->in_c;
    const int32_t dense = p->k_h == 1 && p->k_w == 1 && p->in_c % 8 == 0 && p->stride_h == 1 && p->stride_w == 1 &&
                          p->pad_top == 0 && p->pad_left == 0 && p->out_h == p->in_h && p->out_w == p->in_w;
    const int32_t *bv = tables, *mv = tables + n8, *uv = tables + 2 * n8;
#if defined(__ARM_NEON)
    const int16x8_t zp = vdupq_n_s16((int16_t)q->out_zp);
    const int8x8_t lo = vdup_n_s8((int8_t)q->act_min), hi = vdup_n_s8((int8_t)q->act_max);
#endif
    int32_t pix;
    (void)bias;
    for (pix = 0; pix < npix; pix += 2, output += 2 * out_c) {
        const int32_t two = pix + 1 < npix; /* a second pixel; else pixel 0 twice, stored once */
        const int8_t *x0 = dense ? input + pix * k8 : window(p, input, limit, pix, in_zp, col);
        const int8_t *x1 = !two ? x0 : (dense ? x0 + k8 : window(p, input, limit, pix + 1, in_zp, col + col_step));
        const int16_t *wp = weights;
        int32_t oc = 0;
#if defined(__ARM_NEON)
        for (; oc + 16 <= n8; oc += 16) {
            int32x4_t a0 = vld1q_s32(bv + oc), a1 = vld1q_s32(bv + oc + 4);
            int32x4_t a2 = vld1q_s32(bv + oc + 8), a3 = vld1q_s32(bv + oc + 12);
            int32x4_t c0 = a0, c1 = a1, c2 = a2, c3 = a3;
            int8x8_t v0, v1;
            int32_t j;
            for (j = 0; j < k8; j += 8, wp += 128) {
                EC_LANES8(EC_LANE16);
            }
            v0 = out8(a0, a1, mv, uv, oc, fast, zp, lo, hi);
            v1 = out8(a2, a3, mv, uv, oc + 8, fast, zp, lo, hi);
            if (oc + 16 <= out_c) {
                vst1q_s8(output + oc, vcombine_s8(v0, v1));
            } else {
                vst1_s8(output + oc, v0);
                ec_neon_store_n(output + oc + 8, v1, out_c - oc - 8);
            }
            if (two) {
                v0 = out8(c0, c1, mv, uv, oc, fast, zp, lo, hi);
                v1 = out8(c2, c3, mv, uv, oc + 8, fast, zp, lo, hi);
                if (oc + 16 <= out_c) {
                    vst1q_s8(output + out_c + oc, vcombine_s8(v0, v1));
                } else {
                    vst1_s8(output + out_c + oc, v0);
                    ec_neon_store_n(output + out_c + oc + 8, v1, out_c - oc - 8);
                }
            }
        }
        if (oc < n8) { /* a last block of 8 */
            int32x4_t a0 = vld1q_s32(bv + oc), a1 = vld1q_s32(bv + oc + 4), c0 = a0, c1 = a1;
            int8x8_t v0, v1;
            int32_t j;
            for (j = 0; j < k8; j += 8, wp += 64) {
                EC_LANES8(EC_LANE8);
            }
            v0 = out8(a0, a1, mv, uv, oc, fast, zp, lo, hi);
            v1 = out8(c0, c1, mv, uv, oc, fast, zp, lo, hi);
            if (oc + 8 == out_c) {
                vst1_s8(output + oc, v0);
                if (two) {
                    vst1_s8(output + out_c + oc, v1);
                }
            } else {
                ec_neon_store_n(output + oc, v0, out_c - oc);
                if (two) {
                    ec_neon_store_n(output + out_c + oc, v1, out_c - oc);
                }
            }
        }
#else
        (void)fast;
        (void)wp;
        (void)bv;
        (void)mv;
        (void)uv;
        for (; oc < (1 + two) * out_c; ++oc) {
            const int32_t o = oc % out_c, oc0 = o & ~15, width = n8 - oc0 >= 16 ? 16 : 8;
            const int16_t *wr = weights + oc0 * k8 + (o - oc0);
            const int8_t *x = oc < out_c ? x0 : x1;
            uint32_t acc = (uint32_t)bias[o];
            int32_t j;
            for (j = 0; j < k; ++j) {
                acc = ec_mac_wrap(acc, x[j], wr[j * width]);
            }
            output[oc] = ec_neon_out1(acc, q, o);
        }
#endif
    }
}

void ec_conv2d_lanes_neon_s8(const ec_conv_params *p, const ec_quant_s8 *q, const int8_t *input,
                             const int16_t *weights, const int32_t *bias, int8_t *output, void *scratch)
{
    const int32_t k = p->k_h * p->k_w * p->in_c, k8 = ec_k8(k), col_step = (k8 + 8 + 15) & ~15;
    const int32_t out_c = p->out_c, n8 = ec_k8(out_c);
    int8_t *col = (int8_t *)scratch;
    int32_t *tables = (int32_t *)(void *)(col + 2 * col_step); /* bias, mult, shift - fast; n8 each */
#if defined(EC_TFLM)
    const int32_t fast = 0; /* ec_neon_requant computes TFLM's arithmetic from the shift itself */
#else
    const int32_t fast = ec_neon_fast_ok(bias, q, out_c, k8);
#endif
    int32_t i;
    memset(col + k, 0, (size_t)(k8 - k));
    memset(col + col_step + k, 0, (size_t)(k8 - k));
    for (i = 0; i < n8; ++i) {
        const int32_t c = i < out_c ? i : out_c - 1, j = q->per_channel ? c : 0;
        tables[i] = bias[c];
        tables[n8 + i] = q->mult[j];
        tables[2 * n8 + i] = q->shift[j] - fast;
    }
    if (fast) {
        lanes(p, q, input, weights, bias, output, col, col_step, tables, 1);
    } else {
        lanes(p, q, input, weights, bias, output, col, col_step, tables, 0);
    }
}
