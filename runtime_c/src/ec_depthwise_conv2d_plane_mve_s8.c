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
 * pointer: an inline assembly loop (GCC 12 spills the weights to the stack otherwise: about 60 instructions per 4
 * outputs in intrinsics) keeps the 9 weights in registers and stores the int32 sums of several rows (21 per 4
 * outputs, 0.58 per multiply-accumulate); a second loop requantizes them 4 at a time with the channel's scalar
 * multiplier and shift and scatters them into the NHWC output (9 instructions per 4 outputs).
 * Measured on cortex-m55 (whole kernel, plane copies and per-row costs included): 1.01 instructions/MAC on
 * mobilenet_vww96 conv_2 (48 x 48 x 8, was 3.20 with ec_depthwise_conv2d_mve_s8), 1.15 on conv_6 (24 x 24 x 32),
 * 1.57 on conv_4 (stride 2), 1.40 on dscnn_kws (25 x 5 x 64, transposed; was 1.87). Small images with many channels
 * cost more (300 instructions per channel and 16 per output row besides 32 per 4 outputs): lowering keeps
 * ec_depthwise_conv2d_mve_s8 there.
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
#define EC_DW_SUMS_BYTES 1024 /* int32 sums of as many output rows as fit (at least one) */

/* The problem as the kernel walks it: plane rows and columns (swapped when transposed); strides in bytes. */
typedef struct {
    int32_t ih, iw, oh, ow, sh, sw, pt, pl;
    int32_t in_row, in_col, out_row, out_col; /* input/output bytes between rows and columns */
    int32_t ph;                               /* plane rows */
    int32_t chunk;                            /* output rows summed at once */
    int32_t x0[2], n[2];                      /* per column phase: first plane column of the input, count */
} ec_dw_plane;

static void plane_geometry(const ec_conv_params *p, int32_t transposed, ec_dw_plane *g)
{
    int32_t i;
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
    g->chunk = EC_DW_SUMS_BYTES / (16 * ((g->ow + 3) >> 2));
    g->chunk = g->chunk < 1 ? 1 : g->chunk > g->oh ? g->oh : g->chunk;
    for (i = 0; i < g->sw; ++i) { /* plane columns x0, x0 + sw, ... hold input columns x0 - pl, x0 - pl + sw, ... */
        g->x0[i] = g->pl + ((i - g->pl) % g->sw + g->sw) % g->sw;
        g->n[i] = g->x0[i] < g->pl + g->iw ? (g->pl + g->iw - g->x0[i] + g->sw - 1) / g->sw : 0;
    }
}

/* The plane, then the int32 sums of chunk rows of (out_w rounded up to 4) outputs. Requires (checked at build time)
 * max(pl + iw, (ow4 - 1) * sw + 3) <= EC_DW_ROW, sw 1 or 2, a 3x3 kernel without dilation. */
int32_t ec_depthwise_conv2d_plane_mve_s8_get_buffer_size(const ec_conv_params *p, int32_t transposed)
{
    ec_dw_plane g;
    plane_geometry(p, transposed, &g);
    return (g.ph * EC_DW_ROW + 15) / 16 * 16 + g.chunk * 4 * ((g.ow + 3) & ~3);
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
    for (ph = 0; ph < g->sw; ++ph) {
        const int32_t x0 = g->x0[ph], n = g->n[ph];
        const int32_t step = g->sw * g->in_col;
        const int8_t *s = in + (x0 - g->pl) * g->in_col;
        int8_t *d = plane + g->pt * EC_DW_ROW + plane_col(x0, g->sw);
#if defined(__ARM_FEATURE_MVE)
        if (15 * step <= 255) { /* 16 bytes per gather */
            const uint8x16_t off = vmulq_n_u8(vidupq_n_u8(0, 1), (uint8_t)step);
            for (y = 0; y < g->ih; ++y) {
                for (x = 0; x + 16 <= n; x += 16) {
                    vstrbq_s8(d + x, vldrbq_gather_offset_s8(s + x * step, off));
                }
                if (x < n) { /* the last 16 again, or the first n under a predicate */
                    x = n >= 16 ? n - 16 : 0;
                    vstrbq_p_s8(d + x, vldrbq_gather_offset_s8(s + x * step, off),
                                n >= 16 ? 0xffff : vctp8q((uint32_t)n));
                }
                s += g->in_row;
                d += EC_DW_ROW;
            }
            continue;
        }
        if (7 * step <= 65535) {
            const uint16x8_t off = vmulq_n_u16(vidupq_n_u16(0, 1), (uint16_t)step);
            for (y = 0; y < g->ih; ++y) {
                for (x = 0; x + 8 <= n; x += 8) {
                    vstrbq_s16(d + x, vldrbq_gather_offset_s16(s + x * step, off));
                }
                if (x < n) { /* the last 8 again, or the first n under a predicate */
                    x = n >= 8 ? n - 8 : 0;
                    vstrbq_p_s16(d + x, vldrbq_gather_offset_s16(s + x * step, off),
                                 n >= 8 ? 0xffff : vctp16q((uint32_t)n));
                }
                s += g->in_row;
                d += EC_DW_ROW;
            }
            continue;
        }
#endif
        for (y = 0; y < g->ih; ++y) {
            for (x = 0; x < n; ++x) {
                d[x] = s[x * step];
            }
            s += g->in_row;
            d += EC_DW_ROW;
        }
    }
}

#if defined(__ARM_FEATURE_MVE)
/* Sums of rows x n groups of 4 outputs into o (rows sh plane rows apart): tap (ky, kx) at p + (ky - 1) * EC_DW_ROW + c(kx) (p on row 1 of the
 * windows), c = 0, 1, 2 (stride 1) or 0, EC_DW_ROW / 2, 1 (stride 2, split plane). The first load, tap (1, 0), steps
 * p by 4; O<t> is the offset of tap t = 3 ky + kx after that step. */
#define EC_DW_SUMS(O0, O1, O2, O3, O4, O5, O6, O7, O8)                                                               \
    __asm__ volatile("1:\n\t"                                                                                        \
                     "dls lr, %[n]\n"                                                                                \
                     "2:\n\t"                                                                                        \
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
                     "le lr, 2b\n\t"                                                                                \
                     "ldr %[k], %[jump]\n\t"                                                                         \
                     "add %[p], %[p], %[k]\n\t"                                                                      \
                     "ldr %[k], %[rows]\n\t"                                                                         \
                     "subs %[k], %[k], #1\n\t"                                                                       \
                     "str %[k], %[rows]\n\t"                                                                         \
                     "bne 1b\n"                                                                                      \
                     : [p] "+r"(p), [o] "+r"(o), [a] "=&w"(a), [t] "=&w"(t), [k] "=&r"(k), [rows] "+m"(rows)      \
                     : [n] "r"(n), [jump] "m"(jump), [b] "w"(bv), [w0] "r"((int32_t)w[0]), [w1] "r"((int32_t)w[1]),  \
                       [w2] "r"((int32_t)w[2]), [w3] "r"((int32_t)w[3]), [w4] "r"((int32_t)w[4]),                    \
                       [w5] "r"((int32_t)w[5]), [w6] "r"((int32_t)w[6]), [w7] "r"((int32_t)w[7]),                    \
                       [w8] "r"((int32_t)w[8])                                                                       \
                     : "lr", "memory", "cc")

#if defined(__GNUC__)
__attribute__((noinline)) /* its own registers: the asm needs 12 besides lr */
#endif
static void row_sums(const int8_t *p, int32_t *o, int32_t n, int32_t rows, int32_t sh, const int8_t *w,
                     int32_t bias, int32_t sw)
{
    const int32x4_t bv = vdupq_n_s32(bias);
    const int32_t jump = sh * EC_DW_ROW - 4 * n; /* from after a row's last group to the next row's first */
    int32x4_t a, t;
    int32_t k;
    p += EC_DW_ROW;
    if (sw == 1) {
        EC_DW_SUMS(-66, -65, -64, -4, -3, -2, 58, 59, 60);
    } else {
        EC_DW_SUMS(-66, -35, -65, -4, 27, -3, 58, 89, 59);
    }
    (void)a;
    (void)t;
    (void)k;
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

/* The outputs of rows x ng groups of one channel from their sums. */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline void rows_out(const ec_dw_plane *g, const ec_quant_s8 *q, const int32_t *sums, int32_t rows,
                            int32_t m, int32_t s, int32_t neg, int8_t *out)
{
    const uint32x4_t ooff = vmulq_n_u32(vidupq_n_u32(0, 1), (uint32_t)g->out_col);
    const int32x4_t lo = vdupq_n_s32(q->act_min), hi = vdupq_n_s32(q->act_max);
    const int32_t zp = q->out_zp, step = 4 * g->out_col, full = g->ow >> 2;
    const mve_pred16_t tail = vctp32q((uint32_t)(g->ow & 3));
    int32_t r, i;
    for (r = 0; r < rows; ++r) {
        int8_t *o = out + r * g->out_row;
        for (i = 0; i < full; ++i) {
            const int32x4_t v = vqaddq_n_s32(requant4(vldrwq_s32(sums), m, s, neg), zp);
            vstrbq_scatter_offset_s32(o, ooff, vminq_s32(vmaxq_s32(v, lo), hi));
            sums += 4;
            o += step;
        }
        if (g->ow & 3) {
            const int32x4_t v = vqaddq_n_s32(requant4(vldrwq_s32(sums), m, s, neg), zp);
            vstrbq_scatter_offset_p_s32(o, ooff, vminq_s32(vmaxq_s32(v, lo), hi), tail);
            sums += 4;
        }
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
    i = 0;
#if defined(__ARM_FEATURE_MVE)
    for (; i + 16 <= g.ph * EC_DW_ROW; i += 16) {
        vstrbq_s8(plane + i, vdupq_n_s8((int8_t)q->in_zp));
    }
#endif
    for (; i < g.ph * EC_DW_ROW; ++i) {
        plane[i] = (int8_t)q->in_zp;
    }
    for (b = 0; b < p->batch; ++b) {
        const int8_t *in_b = input + b * p->in_h * p->in_w * p->in_c;
        int8_t *out_b = output + b * p->out_h * p->out_w * p->out_c;
        for (c = 0; c < p->out_c; ++c) {
            const int8_t *w = weights + c * 9;
            const int32_t m = q->mult[c], s = q->shift[c];
            int32_t oy;
            if (c % mult == 0) {
                fill_plane(&g, in_b + c / mult, plane);
            }
#if defined(__ARM_FEATURE_MVE)
            for (oy = 0; oy < g.oh; oy += g.chunk) {
                int32_t *sums = (int32_t *)(void *)(plane + (g.ph * EC_DW_ROW + 15) / 16 * 16);
                const int32_t rows = g.oh - oy < g.chunk ? g.oh - oy : g.chunk, ng = (g.ow + 3) >> 2;
                int8_t *out = out_b + oy * g.out_row + c;
                row_sums(plane + oy * g.sh * EC_DW_ROW, sums, ng, rows, g.sh, w, bias[c], g.sw);
                if (s < 0) {
                    rows_out(&g, q, sums, rows, m, s, 1, out);
                } else {
                    rows_out(&g, q, sums, rows, m, s, 0, out);
                }
            }
#else
            for (oy = 0; oy < g.oh; ++oy) {
                const int8_t *r0 = plane + oy * g.sh * EC_DW_ROW;
                int8_t *out = out_b + oy * g.out_row + c;
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
            }
#endif
        }
    }
}
