/*
 * ec_depthwise_conv2d_plane_mve_s8: int8 depthwise convolution 3x3 (stride 1 or 2 across, any stride down, any
 * padding and channel multiplier, no dilation), NHWC, one channel at a time with VMLA.S32 by scalar (Helium,
 * Cortex-M55): the lanes are 4 output pixels of one channel, so every weight is a scalar shared by the lanes and a
 * tap costs one VLDRB.S32 and one VMLA per 4 multiply-accumulates. Plain C elsewhere. Same results as
 * ec_depthwise_conv2d_s8 bit for bit.
 *
 * Each input channel is first copied into a padded plane in the scratch buffer: rows of EC_DW_ROW bytes, the border
 * holding in_zp, so every output reads a full window and the loop has no border cases. With stride 2 across, a
 * plane row holds the even columns, then from byte EC_DW_ROW / 2 the odd ones, so that the taps of 4 neighbouring
 * outputs are 4 contiguous bytes again. The 9 taps of a group of 4 outputs are then loads at fixed offsets from one
 * pointer: an inline assembly loop (GCC 12 spills the weights otherwise) keeps the 9 weights in registers and stores
 * the int32 sums of a row (21 instructions per 4 outputs, 0.58 per multiply-accumulate); a second loop requantizes
 * the row 4 outputs at a time with the channel's scalar multiplier and shift and scatters them into the NHWC output.
 *
 * transposed (chosen at build time, toolchain/ops/packing.py depthwise_plane_mve): the planes hold input columns, so
 * the vectors run down the columns (dscnn_kws: 25 x 5 outputs are 5 columns of 7 groups instead of 25 rows of 2); the
 * weights are then [out_c][k_w][k_h] and the roles of the strides, paddings and sizes swap.
 *
 * Layouts: weights [out_c][3][3] int8 (transposed: [out_c][kx][ky]); bias out_c int32 folded with the input zero
 * point (edgec_mve.h); q->mult and q->shift per output channel. Output channel c reads input channel c / multiplier;
 * the plane is refilled when that changes. With multiplier 1, output channel c is written only after input channel
 * c was copied and no other channel is touched, so the output may overwrite the input (toolchain/inplace.py).
 */
#include "edgec_mve.h"

#define EC_DW_ROW 62 /* bytes per plane row: 2 * 62 + 3 taps stay within VLDRB's 7-bit offsets around row 1 */

/* The problem as the kernel walks it: plane rows and columns (swapped when transposed); strides in bytes. */
typedef struct {
    int32_t ih, iw, oh, ow, sh, sw, pt, pl;
    int32_t in_row, in_col, out_row, out_col; /* input/output bytes between rows and columns */
    int32_t ph;                               /* plane rows */
} ec_dw_plane;

static void plane_geometry(const ec_conv_params *p, int32_t transposed, ec_dw_plane *g)
{
    if (transposed) {
        g->ih = p->in_w, g->iw = p->in_h, g->oh = p->out_w, g->ow = p->out_h;
        g->sh = p->stride_w, g->sw = p->stride_h, g->pt = p->pad_left, g->pl = p->pad_top;
        g->in_row = p->in_c, g->in_col = p->in_w * p->in_c, g->out_row = p->out_c, g->out_col = p->out_w * p->out_c;
    } else {
        g->ih = p->in_h, g->iw = p->in_w, g->oh = p->out_h, g->ow = p->out_w;
        g->sh = p->stride_h, g->sw = p->stride_w, g->pt = p->pad_top, g->pl = p->pad_left;
        g->in_row = p->in_w * p->in_c, g->in_col = p->in_c, g->out_row = p->out_w * p->out_c, g->out_col = p->out_c;
    }
    g->ph = (g->oh - 1) * g->sh + 3; /* every row a window reads */
    g->ph = g->ph > g->pt + g->ih ? g->ph : g->pt + g->ih;
}

/* The plane, then the int32 sums of one row of (out_w rounded up to 4) outputs. Requires (checked at build time)
 * max(pl + iw, (ow4 - 1) * sw + 3) <= EC_DW_ROW, sw 1 or 2, a 3x3 kernel without dilation. */
int32_t ec_depthwise_conv2d_plane_mve_s8_get_buffer_size(const ec_conv_params *p, int32_t transposed)
{
    ec_dw_plane g;
    plane_geometry(p, transposed, &g);
    return (g.ph * EC_DW_ROW + 15) / 16 * 16 + 4 * ((g.ow + 3) & ~3);
}

/* Byte of plane column x within its row. */
static inline int32_t plane_col(int32_t x, int32_t sw)
{
    return sw == 1 ? x : (x & 1) * (EC_DW_ROW / 2) + (x >> 1);
}

/* plane interior = one input channel (rows of g->iw bytes g->in_col apart); the border keeps in_zp. */
static void fill_plane(const ec_dw_plane *g, const int8_t *in, int8_t *plane)
{
    int32_t y, x, ph;
    for (y = 0; y < g->ih; ++y) {
        const int8_t *src = in + y * g->in_row;
        int8_t *dst = plane + (y + g->pt) * EC_DW_ROW;
        for (ph = 0; ph < g->sw; ++ph) {
            /* plane columns x = x0, x0 + sw, ... holding input columns x - pl */
            const int32_t x0 = g->pl + ((ph - g->pl) % g->sw + g->sw) % g->sw;
            const int32_t n = x0 < g->pl + g->iw ? (g->pl + g->iw - x0 + g->sw - 1) / g->sw : 0;
            const int32_t step = g->sw * g->in_col;
            const int8_t *s = src + (x0 - g->pl) * g->in_col;
            int8_t *d = dst + plane_col(x0, g->sw);
#if defined(__ARM_FEATURE_MVE)
            if (7 * step <= 65535) {
                const uint16x8_t off = vmulq_n_u16(vidupq_n_u16(0, 1), (uint16_t)step);
                for (x = 0; x < n; x += 8) {
                    vstrbq_p_s16(d + x, vldrbq_gather_offset_s16(s + x * step, off), vctp16q((uint32_t)(n - x)));
                }
                continue;
            }
#endif
            for (x = 0; x < n; ++x) {
                d[x] = s[x * step];
            }
        }
    }
}

#if defined(__ARM_FEATURE_MVE)
/* Sums of n groups of 4 outputs into o: tap (ky, kx) at p + (ky - 1) * EC_DW_ROW + c(kx) (p on row 1 of the
 * windows), c = 0, 1, 2 (stride 1) or 0, EC_DW_ROW / 2, 1 (stride 2, split plane). The first load, tap (1, 0), steps
 * p by 4; O<t> is the offset of tap t = 3 ky + kx after that step. */
#define EC_DW_SUMS(O0, O1, O2, O3, O4, O5, O6, O7, O8)                                                               \
    __asm__ volatile("dls lr, %[n]\n"                                                                                \
                     "1:\n\t"                                                                                        \
                     "vldrb.s32 %q[t], [%[p]], #4\n\t"                                                               \
                     "vmov %q[a], %q[b]\n\t"                                                                         \
                     "vmla.s32 %q[a], %q[t], %[w3]\n\t"                                                              \
                     "vldrb.s32 %q[t], [%[p], #" #O0 "]\n\t"                                                          \
                     "vmla.s32 %q[a], %q[t], %[w0]\n\t"                                                               \
                     "vldrb.s32 %q[t], [%[p], #" #O1 "]\n\t"                                                          \
                     "vmla.s32 %q[a], %q[t], %[w1]\n\t"                                                               \
                     "vldrb.s32 %q[t], [%[p], #" #O2 "]\n\t"                                                          \
                     "vmla.s32 %q[a], %q[t], %[w2]\n\t"                                                               \
                     "vldrb.s32 %q[t], [%[p], #" #O4 "]\n\t"                                                          \
                     "vmla.s32 %q[a], %q[t], %[w4]\n\t"                                                               \
                     "vldrb.s32 %q[t], [%[p], #" #O5 "]\n\t"                                                          \
                     "vmla.s32 %q[a], %q[t], %[w5]\n\t"                                                               \
                     "vldrb.s32 %q[t], [%[p], #" #O6 "]\n\t"                                                          \
                     "vmla.s32 %q[a], %q[t], %[w6]\n\t"                                                               \
                     "vldrb.s32 %q[t], [%[p], #" #O7 "]\n\t"                                                          \
                     "vmla.s32 %q[a], %q[t], %[w7]\n\t"                                                               \
                     "vldrb.s32 %q[t], [%[p], #" #O8 "]\n\t"                                                          \
                     "vmla.s32 %q[a], %q[t], %[w8]\n\t"                                                               \
                     "vstrw.32 %q[a], [%[o]], #16\n\t"                                                               \
                     "le lr, 1b\n"                                                                                   \
                     : [p] "+r"(p), [o] "+r"(o), [a] "=&w"(a), [t] "=&w"(t)                                          \
                     : [n] "r"(n), [b] "w"(bv), [w0] "r"(w[0]), [w1] "r"(w[1]), [w2] "r"(w[2]), [w3] "r"(w[3]),     \
                       [w4] "r"(w[4]), [w5] "r"(w[5]), [w6] "r"(w[6]), [w7] "r"(w[7]), [w8] "r"(w[8])                \
                     : "lr", "memory")

#if defined(__GNUC__)
__attribute__((noinline)) /* its own registers: the asm needs 12 besides lr */
#endif
static void row_sums(const int8_t *p, int32_t *o, int32_t n, const int32_t *w, int32_t bias, int32_t sw)
{
    const int32x4_t bv = vdupq_n_s32(bias);
    int32x4_t a, t;
    p += EC_DW_ROW;
    if (sw == 1) {
        EC_DW_SUMS(-66, -65, -64, -4, -3, -2, 58, 59, 60);
    } else {
        EC_DW_SUMS(-66, -35, -65, -4, 27, -3, 58, 89, 59);
    }
    (void)a;
    (void)t;
}

/* ec_requantize(acc, m, s) in each lane with the channel's scalars (edgec_mve.h's output stage; neg: s < 0). */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline int32x4_t requant4(int32x4_t acc, int32_t m, int32_t s, int32_t neg)
{
#if defined(EC_TFLM)
    if (neg) {
        const int32x4_t h = vqrdmulhq_n_s32(acc, m);
        return vrshlq_n_s32(vqaddq_s32(h, vshrq_n_s32(h, 31)), s); /* ties away from zero (edgec_mve.h) */
    }
    return vqrdmulhq_n_s32(vshlq_r_s32(acc, s), m);
#else
    if (neg) {
        return vrshlq_n_s32(vqdmulhq_n_s32(acc, m), s);
    }
    return vqrdmulhq_n_s32(vqshlq_r_s32(acc, s), m);
#endif
}

/* The row's outputs of one channel from its sums. */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline void row_out(const ec_dw_plane *g, const ec_quant_s8 *q, const int32_t *sums, int32_t m, int32_t s,
                           int32_t neg, int8_t *out)
{
    const uint32x4_t ooff = vmulq_n_u32(vidupq_n_u32(0, 1), (uint32_t)g->out_col);
    const int32x4_t lo = vdupq_n_s32(q->act_min), hi = vdupq_n_s32(q->act_max);
    const int32_t zp = q->out_zp, step = 4 * g->out_col;
    int32_t ox;
    for (ox = 0; ox + 4 <= g->ow; ox += 4) {
        const int32x4_t r = vqaddq_n_s32(requant4(vldrwq_s32(sums), m, s, neg), zp);
        vstrbq_scatter_offset_s32(out, ooff, vminq_s32(vmaxq_s32(r, lo), hi));
        sums += 4;
        out += step;
    }
    if (ox < g->ow) {
        const int32x4_t r = vqaddq_n_s32(requant4(vldrwq_s32(sums), m, s, neg), zp);
        vstrbq_scatter_offset_p_s32(out, ooff, vminq_s32(vmaxq_s32(r, lo), hi), vctp32q((uint32_t)(g->ow - ox)));
    }
}
#endif

void ec_depthwise_conv2d_plane_mve_s8(const ec_conv_params *p, const ec_quant_s8 *q, const int8_t *input,
                                      const int8_t *weights, const int32_t *bias, int32_t transposed,
                                      int8_t *output, void *scratch)
{
    const int32_t mult = p->out_c / p->in_c;
    int8_t *plane = (int8_t *)scratch;
    ec_dw_plane g;
    int32_t b, c, i;
    plane_geometry(p, transposed, &g);
    for (i = 0; i < g.ph * EC_DW_ROW; ++i) {
        plane[i] = (int8_t)q->in_zp;
    }
    for (b = 0; b < p->batch; ++b) {
        const int8_t *in_b = input + b * p->in_h * p->in_w * p->in_c;
        int8_t *out_b = output + b * p->out_h * p->out_w * p->out_c;
        for (c = 0; c < p->out_c; ++c) {
            const int8_t *wc = weights + c * 9;
            const int32_t m = q->mult[c], s = q->shift[c];
            int32_t oy, w[9];
            if (c % mult == 0) {
                fill_plane(&g, in_b + c / mult, plane);
            }
            for (i = 0; i < 9; ++i) {
                w[i] = wc[i];
            }
            for (oy = 0; oy < g.oh; ++oy) {
                const int8_t *r0 = plane + oy * g.sh * EC_DW_ROW;
                int8_t *out = out_b + oy * g.out_row + c;
#if defined(__ARM_FEATURE_MVE)
                int32_t *sums = (int32_t *)(void *)(plane + (g.ph * EC_DW_ROW + 15) / 16 * 16);
                row_sums(r0, sums, (g.ow + 3) >> 2, w, bias[c], g.sw);
                if (s < 0) {
                    row_out(&g, q, sums, m, s, 1, out);
                } else {
                    row_out(&g, q, sums, m, s, 0, out);
                }
#else
                int32_t ox;
                for (ox = 0; ox < g.ow; ++ox) {
                    int32_t acc = bias[c], ky, kx;
                    for (ky = 0; ky < 3; ++ky) {
                        for (kx = 0; kx < 3; ++kx) {
                            acc += r0[ky * EC_DW_ROW + plane_col(ox * g.sw + kx, g.sw)] * w[ky * 3 + kx];
                        }
                    }
                    out[ox * g.out_col] = ec_output_s8(ec_requantize(acc, m, s), q->out_zp, q->act_min, q->act_max);
                }
#endif
            }
        }
    }
}
