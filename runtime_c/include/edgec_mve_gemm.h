/*
 * edgec runtime: the register-blocked int8 matrix core of the Helium (MVE, Cortex-M55) convolution kernels
 * (ec_conv2d_1x1_mve_s8, ec_conv2d_im2col_mve_s8). Not part of the public API.
 *
 * Three rows (output positions) x 2 output channels per inner loop: 5 loads of 16 bytes feed 6 VMLADAVA.S8 (16
 * multiply-accumulates each), whose accumulators must be even registers (6 of the 7 left beside LR, which the
 * low-overhead loop uses), so 3 x 2 is the largest block: 12 instructions per 96 multiply-accumulates.
 *
 * Output stage arrays (bias, q->mult, q->shift): one int32 per channel, padded to a multiple of 4 channels (mult 0,
 * shift -1, bias 0: the "quad layout", toolchain/ops/output_stage.py mve_quad_stage). Bias folded with the input
 * zero point (edgec_mve.h).
 */
#ifndef EDGEC_MVE_GEMM_H
#define EDGEC_MVE_GEMM_H

#include "edgec_mve.h"

#define EC_MVE_ROWS 3
/* Channels per pass of ec_mve_rows3_s8: its accumulators (3 rows of them, int32) live on the stack. */
#define EC_MVE_CHUNK 64

#if defined(__ARM_FEATURE_MVE)
/* acc[EC_MVE_CHUNK r + j] = bias[j] + x[r] . w_j for rows r < 3 and channels j < 2 npairs. w: [2 npairs][kp] int8,
 * kp = k rounded up to 16, zero past k (toolchain/ops/packing.py pad_rows16). x[r]: k int8 (a last partial block
 * loaded under a lane predicate). Kept out of line: its 6 accumulators, 3 + 1 pointers and the loop counter fill the
 * registers. */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static void ec_mve_dot_pairs(const int8_t *const x[EC_MVE_ROWS], const int8_t *w, int32_t k, int32_t npairs,
                             const int32_t *bias, int32_t *acc)
{
    const int32_t blocks = k >> 4, tail = k & 15, kp = (k + 15) & ~15;
    const mve_pred16_t t = vctp8q((uint32_t)tail);
    if (k <= 16) { /* one block: the inputs stay in registers, 12 instructions per pair */
        const mve_pred16_t all = k == 16 ? 0xffff : t;
        const int8x16_t u = vldrbq_z_s8(x[0], all), v = vldrbq_z_s8(x[1], all), y = vldrbq_z_s8(x[2], all);
        for (; npairs > 0; --npairs) {
            const int8x16_t p = vldrbq_s8(w), r = vldrbq_s8(w + kp);
            const int32_t b0 = bias[0], b1 = bias[1];
            acc[0] = vmladavaq_s8(b0, u, p);
            acc[1] = vmladavaq_s8(b1, u, r);
            acc[EC_MVE_CHUNK] = vmladavaq_s8(b0, v, p);
            acc[EC_MVE_CHUNK + 1] = vmladavaq_s8(b1, v, r);
            acc[2 * EC_MVE_CHUNK] = vmladavaq_s8(b0, y, p);
            acc[2 * EC_MVE_CHUNK + 1] = vmladavaq_s8(b1, y, r);
            w += 2 * kp;
            bias += 2;
            acc += 2;
        }
        return;
    }
    for (; npairs > 0; --npairs) {
        const int8_t *x0 = x[0], *x1 = x[1], *x2 = x[2], *w1 = w + kp; /* w1: the pair's second channel */
        int32_t a00 = bias[0], a01 = bias[1], a10 = a00, a11 = a01, a20 = a00, a21 = a01;
        int32_t i;
        for (i = blocks; i > 0; --i) {
            const int8x16_t p = vldrbq_s8(w), r = vldrbq_s8(w1);
            int8x16_t u = vldrbq_s8(x0);
            a00 = vmladavaq_s8(a00, u, p);
            a01 = vmladavaq_s8(a01, u, r);
            u = vldrbq_s8(x1);
            a10 = vmladavaq_s8(a10, u, p);
            a11 = vmladavaq_s8(a11, u, r);
            u = vldrbq_s8(x2);
            a20 = vmladavaq_s8(a20, u, p);
            a21 = vmladavaq_s8(a21, u, r);
            x0 += 16;
            x1 += 16;
            x2 += 16;
            w += 16;
            w1 += 16;
        }
        if (tail) { /* the weights are zero past k: only the inputs need the predicate */
            const int8x16_t p = vldrbq_s8(w), r = vldrbq_s8(w1);
            int8x16_t u = vldrbq_z_s8(x0, t);
            a00 = vmladavaq_s8(a00, u, p);
            a01 = vmladavaq_s8(a01, u, r);
            u = vldrbq_z_s8(x1, t);
            a10 = vmladavaq_s8(a10, u, p);
            a11 = vmladavaq_s8(a11, u, r);
            u = vldrbq_z_s8(x2, t);
            a20 = vmladavaq_s8(a20, u, p);
            a21 = vmladavaq_s8(a21, u, r);
            w1 += 16;
        }
        w = w1; /* the next pair */
        acc[0] = a00;
        acc[1] = a01;
        acc[EC_MVE_CHUNK] = a10;
        acc[EC_MVE_CHUNK + 1] = a11;
        acc[2 * EC_MVE_CHUNK] = a20;
        acc[2 * EC_MVE_CHUNK + 1] = a21;
        bias += 2;
        acc += 2;
    }
}

/* out[r][j] = clamp(requantize(acc[EC_MVE_CHUNK r + j]) + zp) for rows r < rows, channels j < n (n <= EC_MVE_CHUNK),
 * mult and shift per channel: 4 channels of every row per step, their mult and shift loaded once. */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline void ec_mve_finish_rows(const int32_t *acc, int32_t rows, int32_t n, const int32_t *mult,
                               const int32_t *shift, const ec_quant_s8 *q, int8_t *const out[EC_MVE_ROWS],
                               int32_t right)
{
    const int32_t zp = q->out_zp, lo = q->act_min, hi = q->act_max;
    int8_t *o0 = out[0], *o1 = rows > 1 ? out[1] : NULL, *o2 = rows > 2 ? out[2] : NULL;
    int32_t j;
    for (j = 0; j < n; j += 4) {
        const mve_pred16_t t = vctp32q((uint32_t)(n - j));
        const int32x4_t m = vldrwq_s32(mult + j), s = vldrwq_s32(shift + j);
        vstrbq_p_s32(o0 + j, ec_mve_output(vldrwq_s32(acc + j), m, s, zp, lo, hi, right), t);
        if (o1 != NULL) {
            vstrbq_p_s32(o1 + j, ec_mve_output(vldrwq_s32(acc + EC_MVE_CHUNK + j), m, s, zp, lo, hi, right), t);
        }
        if (o2 != NULL) {
            vstrbq_p_s32(o2 + j, ec_mve_output(vldrwq_s32(acc + 2 * EC_MVE_CHUNK + j), m, s, zp, lo, hi, right), t);
        }
    }
}
#endif

/* out[r][c] = output stage(bias[c] + x[r] . w_c) for rows r < rows (1 to 3) and channels c < n; out[r] may be
 * NULL for rows >= rows, every x[r] is read (point missing rows at readable memory). w: [n rounded up to
 * even][k rounded up to 16], zero-padded (ec_mve_dot_pairs); bias, q->mult, q->shift in the quad layout. right: ec_mve_right_shifts over the padded channel
 * count. Two passes per chunk of up to EC_MVE_CHUNK channels: the dot products (3 x 2 blocks, from the bias) into
 * int32 accumulators on the stack, then the output stage, 4 channels x 3 rows per step. */
static inline void ec_mve_rows3_s8(const int8_t *const x[EC_MVE_ROWS], int32_t rows, const int8_t *w, int32_t k,
                                   int32_t n, const int32_t *bias, const ec_quant_s8 *q,
                                   int8_t *const out[EC_MVE_ROWS], int32_t right)
{
    const int32_t kp = (k + 15) & ~15; /* one channel's weights */
    int32_t c;
#if defined(__ARM_FEATURE_MVE)
    int32_t acc[EC_MVE_ROWS * EC_MVE_CHUNK];
    for (c = 0; c < n; c += EC_MVE_CHUNK) {
        const int32_t nc = n - c < EC_MVE_CHUNK ? n - c : EC_MVE_CHUNK;
        int8_t *o[EC_MVE_ROWS];
        o[0] = out[0] + c;
        o[1] = rows > 1 ? out[1] + c : NULL;
        o[2] = rows > 2 ? out[2] + c : NULL;
        ec_mve_dot_pairs(x, w + c * kp, k, (nc + 1) >> 1, bias + c, acc);
        if (right == 1) { /* the usual case, its output stage two instructions (edgec_mve.h) */
            ec_mve_finish_rows(acc, rows, nc, q->mult + c, q->shift + c, q, o, 1);
        } else {
            ec_mve_finish_rows(acc, rows, nc, q->mult + c, q->shift + c, q, o, right);
        }
    }
#else
    const int32_t zp = q->out_zp, lo = q->act_min, hi = q->act_max;
    int32_t r, i;
    (void)right; /* the plain C output stage is exact for every shift */
    for (r = 0; r < rows; ++r) {
        for (c = 0; c < n; ++c) {
            const int8_t *wc = w + c * kp;
            int32_t s = bias[c];
            for (i = 0; i < k; ++i) {
                s += x[r][i] * wc[i];
            }
            out[r][c] = ec_output_s8(ec_requantize(s, q->mult[c], q->shift[c]), zp, lo, hi);
        }
    }
#endif
}

#endif /* EDGEC_MVE_GEMM_H */
