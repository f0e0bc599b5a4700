/*
 * edgec runtime: the register-blocked int8 matrix core of the Helium (MVE, Cortex-M55) convolution kernels
 * (ec_conv2d_1x1_mve_s8, ec_conv2d_im2col_mve_s8). Not part of the public API.
 *
 * Three rows (output positions) x 2 output channels per inner loop: 5 loads of 16 bytes feed 6 VMLADAVA.S8 (16
 * multiply-accumulates each), whose accumulators must be even registers (6 of the 7 left beside LR, which the
 * low-overhead loop uses), so 3 x 2 is the largest block: 12 instructions per 96 multiply-accumulates. The weights
 * of a pair of channels are interleaved block by block (ec_mve_dot_pairs), so one pointer walks them.
 *
 * Output stage arrays (bias, q->mult, q->shift): one int32 per channel, padded to a multiple of 4 channels (mult 0,
 * shift -1, bias 0: the "quad layout", toolchain/ops/output_stage.py mve_quad_stage). Bias folded with the input
 * zero point (edgec_mve.h).
 */
#ifndef EDGEC_MVE_GEMM_H
#define EDGEC_MVE_GEMM_H

#include "edgec_mve.h"

#define EC_MVE_ROWS 3
/* Channels per pass of ec_mve_rows3_s8: its accumulators (3 rows of them, int32) live on the stack (the assembly in
 * ec_mve_dot_pairs stores rows 1 and 2 at 4 * EC_MVE_CHUNK and 8 * EC_MVE_CHUNK bytes: 256 and 512). */
#define EC_MVE_CHUNK 64

#if defined(__ARM_FEATURE_MVE)
/* acc[EC_MVE_CHUNK r + j] = x[r] . w_j (the bias is added by ec_mve_finish_rows) for rows r < 3 and channels
 * j < 2 npairs, over kb = ceil(k / 16) blocks of 16 bytes. w in the pair layout (EC_MVE_W, toolchain/ops/packing.py
 * pair_blocks16): per pair of channels its blocks from the last to the first, each 16 bytes of the first channel
 * then 16 of the second, zero past k. x[r]: k int8; the last block's bytes past k are not read (a lane predicate).
 * One inline assembly loop (GCC 12 spilled the pointers to the stack: 26 instructions of overhead per pair of
 * channels in intrinsics, 9 here): the last block first, its VMLADAV setting the 6 accumulators (which must be even
 * registers), then the others downwards with pre-decrement loads, 12 instructions per 96 multiply-accumulates. With
 * a single block (k <= 16) the 3 rows stay in registers: 12 instructions per pair. Kept out of line: it needs every
 * register. */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static void ec_mve_dot_pairs(const int8_t *const x[EC_MVE_ROWS], const int8_t *w, int32_t k, int32_t npairs,
                             int32_t *acc)
{
    const int32_t n = (k - 1) >> 4; /* blocks before the last */
    const int8_t *x0 = x[0] + 16 * n, *x1 = x[1] + 16 * n, *x2 = x[2] + 16 * n;
    register int32_t a00 __asm__("r0") = k - 16 * n; /* the last block's bytes, for VCTP */
    register int32_t a01 __asm__("r2");
    register int32_t a10 __asm__("r4");
    register int32_t a11 __asm__("r6");
    register int32_t a20 __asm__("r8");
    register int32_t a21 __asm__("r10");
    if (n == 0) {
        __asm__ volatile("vctp.8 %[a00]\n\t"
                         "vpsttt\n\t"
                         "vldrbt.8 q2, [%[x0]]\n\t"
                         "vldrbt.8 q3, [%[x1]]\n\t"
                         "vldrbt.8 q4, [%[x2]]\n\t"
                         "dls lr, %[np]\n"
                         "1:\n\t"
                         "vldrb.8 q0, [%[w]], #16\n\t"
                         "vldrb.8 q1, [%[w]], #16\n\t"
                         "vmladav.s8 %[a00], q2, q0\n\t"
                         "vmladav.s8 %[a01], q2, q1\n\t"
                         "vmladav.s8 %[a10], q3, q0\n\t"
                         "vmladav.s8 %[a11], q3, q1\n\t"
                         "vmladav.s8 %[a20], q4, q0\n\t"
                         "vmladav.s8 %[a21], q4, q1\n\t"
                         "strd %[a10], %[a11], [%[acc], #256]\n\t"
                         "strd %[a20], %[a21], [%[acc], #512]\n\t"
                         "strd %[a00], %[a01], [%[acc]], #8\n\t"
                         "le lr, 1b\n"
                         : [a00] "+r"(a00), [a01] "=&r"(a01), [a10] "=&r"(a10), [a11] "=&r"(a11), [a20] "=&r"(a20),
                           [a21] "=&r"(a21), [w] "+r"(w), [acc] "+r"(acc)
                         : [x0] "r"(x0), [x1] "r"(x1), [x2] "r"(x2), [np] "r"(npairs)
                         : "q0", "q1", "q2", "q3", "q4", "lr", "memory");
        return;
    }
    __asm__ volatile("vctp.8 %[a00]\n"
                     "1:\n\t"
                     "vldrb.8 q0, [%[w]], #16\n\t"
                     "vldrb.8 q1, [%[w]], #16\n\t"
                     "vpsttt\n\t"
                     "vldrbt.8 q2, [%[x0]]\n\t"
                     "vldrbt.8 q3, [%[x1]]\n\t"
                     "vldrbt.8 q4, [%[x2]]\n\t"
                     "vmladav.s8 %[a00], q2, q0\n\t"
                     "vmladav.s8 %[a01], q2, q1\n\t"
                     "vmladav.s8 %[a10], q3, q0\n\t"
                     "vmladav.s8 %[a11], q3, q1\n\t"
                     "vmladav.s8 %[a20], q4, q0\n\t"
                     "vmladav.s8 %[a21], q4, q1\n\t"
                     "dls lr, %[n]\n"
                     "2:\n\t"
                     "vldrb.8 q0, [%[w]], #16\n\t"
                     "vldrb.8 q1, [%[w]], #16\n\t"
                     "vldrb.8 q2, [%[x0], #-16]!\n\t"
                     "vmladava.s8 %[a00], q2, q0\n\t"
                     "vmladava.s8 %[a01], q2, q1\n\t"
                     "vldrb.8 q2, [%[x1], #-16]!\n\t"
                     "vmladava.s8 %[a10], q2, q0\n\t"
                     "vmladava.s8 %[a11], q2, q1\n\t"
                     "vldrb.8 q2, [%[x2], #-16]!\n\t"
                     "vmladava.s8 %[a20], q2, q0\n\t"
                     "vmladava.s8 %[a21], q2, q1\n\t"
                     "le lr, 2b\n\t"
                     "add %[x0], %[x0], %[n], lsl #4\n\t"
                     "add %[x1], %[x1], %[n], lsl #4\n\t"
                     "add %[x2], %[x2], %[n], lsl #4\n\t"
                     "strd %[a10], %[a11], [%[acc], #256]\n\t"
                     "strd %[a20], %[a21], [%[acc], #512]\n\t"
                     "strd %[a00], %[a01], [%[acc]], #8\n\t"
                     "subs %[np], %[np], #1\n\t"
                     "bne 1b\n"
                     : [a00] "+r"(a00), [a01] "=&r"(a01), [a10] "=&r"(a10), [a11] "=&r"(a11), [a20] "=&r"(a20),
                       [a21] "=&r"(a21), [w] "+r"(w), [x0] "+r"(x0), [x1] "+r"(x1), [x2] "+r"(x2), [acc] "+r"(acc),
                       [np] "+r"(npairs)
                     : [n] "r"(n)
                     : "q0", "q1", "q2", "q3", "q4", "lr", "memory", "cc");
}

/* out[r][j] = clamp(requantize(acc[EC_MVE_CHUNK r + j] + bias[j]) + zp) for rows r < rows, channels j < n
 * (n <= EC_MVE_CHUNK), mult and shift per channel: 4 channels of every row per step, their bias, mult and shift
 * loaded once. */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline void ec_mve_finish_rows(const int32_t *acc, int32_t rows, int32_t n, const int32_t *bias,
                                      const int32_t *mult, const int32_t *shift, const ec_quant_s8 *q,
                                      int8_t *const out[EC_MVE_ROWS], int32_t right)
{
    const int32_t zp = q->out_zp, lo = q->act_min, hi = q->act_max;
    int8_t *o0 = out[0], *o1 = rows > 1 ? out[1] : NULL, *o2 = rows > 2 ? out[2] : NULL;
    int32_t j;
    if (rows == 3 && right == 1 && (n & 3) == 0) {
        /* the usual block: no predicates, no NULL tests, 30 instructions per 4 channels x 3 rows (63 in the loop
         * below). The output stage of right shifts gives |r| <= 2^30: adding zp cannot overflow. */
        const int32x4_t vlo = vdupq_n_s32(lo), vhi = vdupq_n_s32(hi);
        for (j = n >> 2; j > 0; --j) {
            const int32x4_t b = vldrwq_s32(bias), m = vldrwq_s32(mult), s = vldrwq_s32(shift);
            const int32x4_t a0 = ec_mve_requantize(vaddq_s32(vldrwq_s32(acc), b), m, s, 1);
            const int32x4_t a1 = ec_mve_requantize(vaddq_s32(vldrwq_s32(acc + EC_MVE_CHUNK), b), m, s, 1);
            const int32x4_t a2 = ec_mve_requantize(vaddq_s32(vldrwq_s32(acc + 2 * EC_MVE_CHUNK), b), m, s, 1);
            vstrbq_s32(o0, vminq_s32(vmaxq_s32(vaddq_n_s32(a0, zp), vlo), vhi));
            vstrbq_s32(o1, vminq_s32(vmaxq_s32(vaddq_n_s32(a1, zp), vlo), vhi));
            vstrbq_s32(o2, vminq_s32(vmaxq_s32(vaddq_n_s32(a2, zp), vlo), vhi));
            bias += 4;
            mult += 4;
            shift += 4;
            acc += 4;
            o0 += 4;
            o1 += 4;
            o2 += 4;
        }
        return;
    }
    for (j = 0; j < n; j += 4) {
        const mve_pred16_t t = vctp32q((uint32_t)(n - j));
        const int32x4_t b = vldrwq_s32(bias + j), m = vldrwq_s32(mult + j), s = vldrwq_s32(shift + j);
        vstrbq_p_s32(o0 + j, ec_mve_output(vaddq_s32(vldrwq_s32(acc + j), b), m, s, zp, lo, hi, right), t);
        if (o1 != NULL) {
            const int32x4_t a = vaddq_s32(vldrwq_s32(acc + EC_MVE_CHUNK + j), b);
            vstrbq_p_s32(o1 + j, ec_mve_output(a, m, s, zp, lo, hi, right), t);
        }
        if (o2 != NULL) {
            const int32x4_t a = vaddq_s32(vldrwq_s32(acc + 2 * EC_MVE_CHUNK + j), b);
            vstrbq_p_s32(o2 + j, ec_mve_output(a, m, s, zp, lo, hi, right), t);
        }
    }
}
#endif

/* Byte of element i of channel c in the pair layout of ec_mve_dot_pairs (kb blocks of 16 per channel). */
static inline int32_t ec_mve_pair_byte(int32_t c, int32_t i, int32_t kb)
{
    return ((c >> 1) * kb + kb - 1 - (i >> 4)) * 32 + (c & 1) * 16 + (i & 15);
}

/* out[r][c] = output stage(bias[c] + x[r] . w_c) for rows r < rows (1 to 3) and channels c < n; out[r] may be
 * NULL for rows >= rows, every x[r] is read (point missing rows at readable memory). w: the pair layout of
 * ec_mve_dot_pairs over n rounded up to even channels; bias, q->mult, q->shift in the quad layout. right:
 * ec_mve_right_shifts over the padded channel count. Two passes per chunk of up to EC_MVE_CHUNK channels: the dot
 * products (3 x 2 blocks) into int32 accumulators on the stack, then the bias and the output stage, 4 channels x 3
 * rows per step. */
#if defined(__GNUC__)
__attribute__((always_inline)) /* measured: the call and its prologue cost about 50 instructions per 3 positions */
#endif
static inline void ec_mve_rows3_s8(const int8_t *const x[EC_MVE_ROWS], int32_t rows, const int8_t *w, int32_t k,
                                   int32_t n, const int32_t *bias, const ec_quant_s8 *q,
                                   int8_t *const out[EC_MVE_ROWS], int32_t right)
{
    const int32_t kb = (k + 15) >> 4; /* blocks of 16 per channel */
    int32_t c;
#if defined(__ARM_FEATURE_MVE)
    int32_t acc[EC_MVE_ROWS * EC_MVE_CHUNK];
    for (c = 0; c < n; c += EC_MVE_CHUNK) {
        const int32_t nc = n - c < EC_MVE_CHUNK ? n - c : EC_MVE_CHUNK;
        int8_t *o[EC_MVE_ROWS];
        o[0] = out[0] + c;
        o[1] = rows > 1 ? out[1] + c : NULL;
        o[2] = rows > 2 ? out[2] + c : NULL;
        ec_mve_dot_pairs(x, w + c * kb * 16, k, (nc + 1) >> 1, acc);
        if (right == 1) { /* the usual case, its output stage two instructions (edgec_mve.h) */
            ec_mve_finish_rows(acc, rows, nc, bias + c, q->mult + c, q->shift + c, q, o, 1);
        } else {
            ec_mve_finish_rows(acc, rows, nc, bias + c, q->mult + c, q->shift + c, q, o, right);
        }
    }
#else
    const int32_t zp = q->out_zp, lo = q->act_min, hi = q->act_max;
    int32_t r, i;
    (void)right; /* the plain C output stage is exact for every shift */
    for (r = 0; r < rows; ++r) {
        for (c = 0; c < n; ++c) {
            int32_t s = bias[c];
            for (i = 0; i < k; ++i) {
                s += x[r][i] * w[ec_mve_pair_byte(c, i, kb)];
            }
            out[r][c] = ec_output_s8(ec_requantize(s, q->mult[c], q->shift[c]), zp, lo, hi);
        }
    }
#endif
}

#endif /* EDGEC_MVE_GEMM_H */
