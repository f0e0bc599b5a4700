/*
 * ec_depthwise_conv2d_mve_s8: int8 depthwise convolution (any kernel, stride, padding, dilation and channel
 * multiplier), NHWC, 8 output channels per vector with Helium (Cortex-M55); plain C elsewhere. Same results as
 * ec_depthwise_conv2d_s8 bit for bit.
 *
 * Per tap, VLDRB.S16 loads 8 input bytes and 8 weights as int16 and VMUL.I16 multiplies them (|x * w| <= 128 * 127,
 * so the product and the sum of two taps' products fit in int16); every two taps the int16 sum is widened into two
 * int32 accumulators: VMOVLB/VMOVLT take lanes 0, 2, 4, 6 and 1, 3, 5, 7, so the accumulators hold channels
 * (0, 2, 4, 6) and (1, 3, 5, 7) of the group of 8, and the saturating narrowing moves (VQMOVNB/VQMOVNT) put them
 * back in order. Bias, multipliers and shifts come in that lane order (built in Python), so they load as vectors.
 * Eight channels keep every value in the 8 vector registers (16 would spill).
 *
 * Layouts (C8 = out_c rounded up to a multiple of 8; padded channels hold zeros):
 *  - weights [C8 / 8][k_h * k_w][8] int8 (each group's taps together);
 *  - bias, q->mult, q->shift: C8 int32 each; entry 8 g + 4 v + l holds channel 8 g + 2 l + v;
 *    the bias is folded with the input zero point (edgec_mve.h) and positions in the padding read in_zp;
 *  - in_offsets: NULL for a channel multiplier of 1; otherwise C8 bytes: the input channel of output channel c
 *    minus that of output channel 8 (c / 8) (a gather load per tap);
 *  - zp_row: C8 bytes of in_zp, read by taps in the padding.
 */
#include "edgec_mve.h"

#if !defined(__ARM_FEATURE_MVE)
/* Entry of channel j (0 .. 7) of a group in the lane order above. */
static int32_t lane_slot(int32_t j)
{
    return (j & 1) * 4 + (j >> 1);
}
#else
/* Keeps the compiler from moving loads above this point or the accumulation below it (either way it runs out of
 * vector registers and spills). */
#define EC_DW_BARRIER() __asm__ volatile("" : "+w"(a0), "+w"(a1) : : "memory")

/* acc += int16 products sum s, widened */
#define EC_DW_WIDEN(s)                          \
    do {                                        \
        const int16x8_t s_ = (s);               \
        a0 = vaddq_s32(a0, vmovlbq_s16(s_));    \
        a1 = vaddq_s32(a1, vmovltq_s16(s_));    \
        EC_DW_BARRIER();                        \
    } while (0)

/* The outputs of one group of 8 channels from its accumulators. */
static inline void store8(int32x4_t a0, int32x4_t a1, const ec_quant_s8 *q, int32_t g, int8_t *out,
                          mve_pred16_t t, int32_t right)
{
    const int32x4_t r0 = ec_mve_requantize(a0, vldrwq_s32(q->mult + g), vldrwq_s32(q->shift + g), right);
    const int32x4_t r1 = ec_mve_requantize(a1, vldrwq_s32(q->mult + g + 4), vldrwq_s32(q->shift + g + 4), right);
    int16x8_t r = vqmovntq_s32(vqmovnbq_s32(vdupq_n_s16(0), r0), r1); /* channels 0 .. 7 in order */
    r = vqaddq_n_s16(r, (int16_t)q->out_zp);
    r = vminq_s16(vmaxq_s16(r, vdupq_n_s16((int16_t)q->act_min)), vdupq_n_s16((int16_t)q->act_max));
    vstrbq_p_s16(out + g, r, t);
}

/* 3x3, channel multiplier 1: tap i of group g reads tp[i] + g; weights wp: the group's 9 x 8 bytes. */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline void group8_3x3(const int8_t *const *tp, const int8_t *wp, const int32_t *bias,
                              const ec_quant_s8 *q, int32_t g, int8_t *out, mve_pred16_t t, int32_t full,
                              int32_t right)
{
    int32x4_t a0 = vldrwq_s32(bias + g), a1 = vldrwq_s32(bias + g + 4);
#define EC_DW_X(i) (full ? vldrbq_s16(tp[i] + g) : vldrbq_z_s16(tp[i] + g, t))
#define EC_DW_W(i) vldrbq_s16(wp + 8 * (i))
    EC_DW_WIDEN(vaddq_s16(vmulq_s16(EC_DW_X(0), EC_DW_W(0)), vmulq_s16(EC_DW_X(1), EC_DW_W(1))));
    EC_DW_WIDEN(vaddq_s16(vmulq_s16(EC_DW_X(2), EC_DW_W(2)), vmulq_s16(EC_DW_X(3), EC_DW_W(3))));
    EC_DW_WIDEN(vaddq_s16(vmulq_s16(EC_DW_X(4), EC_DW_W(4)), vmulq_s16(EC_DW_X(5), EC_DW_W(5))));
    EC_DW_WIDEN(vaddq_s16(vmulq_s16(EC_DW_X(6), EC_DW_W(6)), vmulq_s16(EC_DW_X(7), EC_DW_W(7))));
    EC_DW_WIDEN(vmulq_s16(EC_DW_X(8), EC_DW_W(8)));
#undef EC_DW_X
#undef EC_DW_W
    store8(a0, a1, q, g, out, t, right);
}

/* Any kernel and multiplier: tap (ky, kx) of group g reads in_b + base + ky * row_step + kx * tap_step when inside
 * [ky0, ky1) x [kx0, kx1), else the in_zp row; gather: input channels through in_offsets. */
static void group8_any(const ec_conv_params *p, const ec_quant_s8 *q, const int8_t *in_b, int32_t base,
                       int32_t ky0, int32_t ky1, int32_t kx0, int32_t kx1, const int8_t *wp, const int32_t *bias,
                       const uint8_t *in_offsets, const int8_t *zp_row, int32_t g, int8_t *out, int32_t right)
{
    const int32_t row_step = p->dil_h * p->in_w * p->in_c, tap_step = p->dil_w * p->in_c;
    const mve_pred16_t t = vctp16q((uint32_t)(p->out_c - g));
    const uint16x8_t off = in_offsets != NULL ? vldrbq_u16(in_offsets + g) : vidupq_n_u16(0, 1);
    int32x4_t a0 = vldrwq_s32(bias + g), a1 = vldrwq_s32(bias + g + 4);
    int16x8_t pending = vdupq_n_s16(0);
    int32_t have = 0, ky, kx;
    for (ky = 0; ky < p->k_h; ++ky) {
        const int32_t row_in = ky >= ky0 && ky < ky1;
        for (kx = 0; kx < p->k_w; ++kx) {
            const int8_t *src = row_in && kx >= kx0 && kx < kx1 ? in_b + base + ky * row_step + kx * tap_step
                                                                : zp_row;
            const int16x8_t m = vmulq_s16(vldrbq_gather_offset_z_s16(src, off, t), vldrbq_s16(wp));
            wp += 8;
            if (have) {
                EC_DW_WIDEN(vaddq_s16(pending, m));
            } else {
                pending = m;
            }
            have = !have;
        }
    }
    if (have) {
        EC_DW_WIDEN(pending);
    }
    store8(a0, a1, q, g, out, t, right);
}
#endif

void ec_depthwise_conv2d_mve_s8(const ec_conv_params *p, const ec_quant_s8 *q, const int8_t *input,
                                const int8_t *weights, const int32_t *bias, const uint8_t *in_offsets,
                                const int8_t *zp_row, int8_t *output)
{
    const int32_t in_c = p->in_c, out_c = p->out_c, mult = out_c / in_c;
    const int32_t c8 = (out_c + 7) & ~7;
    const int32_t row_step = p->dil_h * p->in_w * in_c, tap_step = p->dil_w * in_c;
    const int32_t fast3x3 = p->k_h == 3 && p->k_w == 3 && in_offsets == NULL;
    const int32_t right = ec_mve_right_shifts(q->shift, c8);
    int32_t b, oy, ox;
#if !defined(__ARM_FEATURE_MVE)
    (void)row_step;
    (void)tap_step;
    (void)fast3x3;
    (void)right;
    (void)zp_row; /* the plain C path reads q->in_zp */
#endif
    for (b = 0; b < p->batch; ++b) {
        const int8_t *in_b = input + b * p->in_h * p->in_w * in_c;
        for (oy = 0; oy < p->out_h; ++oy) {
            const int32_t iy0 = oy * p->stride_h - p->pad_top;
            int32_t ky0, ky1;
            ec_window_range(iy0, p->dil_h, p->k_h, p->in_h, &ky0, &ky1);
            for (ox = 0; ox < p->out_w; ++ox) {
                const int32_t ix0 = ox * p->stride_w - p->pad_left;
                int8_t *out = output + ((b * p->out_h + oy) * p->out_w + ox) * out_c;
                const int32_t pos = (iy0 * p->in_w + ix0) * in_c; /* tap (0, 0), maybe outside the input */
                int32_t kx0, kx1, g;
                ec_window_range(ix0, p->dil_w, p->k_w, p->in_w, &kx0, &kx1);
#if defined(__ARM_FEATURE_MVE)
                if (fast3x3) {
                    const int8_t *tp[9];
                    if (ky0 == 0 && ky1 == 3 && kx0 == 0 && kx1 == 3) {
                        const int8_t *r0 = in_b + pos, *r1 = r0 + row_step, *r2 = r1 + row_step;
                        tp[0] = r0;
                        tp[1] = r0 + tap_step;
                        tp[2] = r0 + 2 * tap_step;
                        tp[3] = r1;
                        tp[4] = r1 + tap_step;
                        tp[5] = r1 + 2 * tap_step;
                        tp[6] = r2;
                        tp[7] = r2 + tap_step;
                        tp[8] = r2 + 2 * tap_step;
                    } else {
                        int32_t ky, kx;
                        for (ky = 0; ky < 3; ++ky) {
                            for (kx = 0; kx < 3; ++kx) {
                                tp[ky * 3 + kx] = ky >= ky0 && ky < ky1 && kx >= kx0 && kx < kx1
                                                      ? in_b + pos + ky * row_step + kx * tap_step
                                                      : zp_row;
                            }
                        }
                    }
                    for (g = 0; g + 8 <= out_c; g += 8) {
                        group8_3x3(tp, weights + g * 9, bias, q, g, out, vctp16q(8), 1, right);
                    }
                    if (g < out_c) {
                        group8_3x3(tp, weights + g * 9, bias, q, g, out, vctp16q((uint32_t)(out_c - g)), 0, right);
                    }
                    continue;
                }
#endif
                for (g = 0; g < c8; g += 8) {
                    const int32_t base = pos + g / mult; /* input channel of output channel g */
#if defined(__ARM_FEATURE_MVE)
                    group8_any(p, q, in_b, base, ky0, ky1, kx0, kx1, weights + g * p->k_h * p->k_w, bias,
                               in_offsets, zp_row, g, out, right);
#else
                    int32_t j;
                    for (j = 0; j < 8 && g + j < out_c; ++j) {
                        const int32_t e = g + lane_slot(j);
                        const int32_t ic = in_offsets != NULL ? in_offsets[g + j] : j;
                        int32_t acc = bias[e], ky, kx;
                        for (ky = 0; ky < p->k_h; ++ky) {
                            for (kx = 0; kx < p->k_w; ++kx) {
                                const int32_t inside = ky >= ky0 && ky < ky1 && kx >= kx0 && kx < kx1;
                                const int32_t x = inside
                                    ? in_b[base + (ky * p->dil_h * p->in_w + kx * p->dil_w) * in_c + ic]
                                    : q->in_zp;
                                acc += x * weights[g * p->k_h * p->k_w + (ky * p->k_w + kx) * 8 + j];
                            }
                        }
                        out[g + j] = ec_output_s8(ec_requantize(acc, q->mult[e], q->shift[e]), q->out_zp,
                                                  q->act_min, q->act_max);
                    }
#endif
                }
            }
        }
    }
}
