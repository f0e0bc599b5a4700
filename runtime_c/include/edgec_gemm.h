/*
 * edgec runtime: the int8 x int16 matrix core shared by the packed convolution and fully connected kernels
 * (ec_conv2d_im2col_s8, ec_conv2d_1x1_s8, ec_fully_connected_packed_s8). Not part of the public API.
 *
 * Layouts (both produced at build time or by the kernels; see edgec.h):
 *  - Packed weights: a [N][K] int8 matrix with K padded with zeros to K4 = K rounded up to a multiple of 4 and N
 *    padded with zero rows to an even count. Rows come in pairs; pair p holds, for every group g of 4 columns,
 *    the 4 bytes of row 2p then the 4 bytes of row 2p + 1: byte (n / 2) * 2 * K4 + (k / 4) * 8 + (n % 2) * 4 + k % 4.
 *    A 64-bit load gives one group of both rows.
 *  - Column buffer: 1 or 2 columns of K4 int16 values (x - in_zp), interleaved per group of 4: group g of column
 *    c occupies int16 slots g * gs + c * 4 .. + 3, holding elements (4g, 4g + 2, 4g + 1, 4g + 3); the group stride
 *    gs is 4 times the number of columns the buffer has room for (4 or 8). That is the order
 *    SXTB16 produces from a weight word (bytes 0 and 2, then bytes 1 and 3), so a dual 16-bit multiply-accumulate
 *    (SMLAD) pairs each weight with its input. Integer sums do not depend on the order of their terms.
 */
#ifndef EDGEC_GEMM_H
#define EDGEC_GEMM_H

#include "edgec_dsp.h"

#if defined(__ARM_FEATURE_DSP)
/* Two words loaded at once (LDRD); buffers are 8-byte aligned. */
typedef int64_t ec_dword __attribute__((may_alias));
#endif

/* K rounded up to a multiple of 4. */
static inline int32_t ec_k4(int32_t k)
{
    return (k + 3) & ~3;
}

/* int16 slot of element k of column c in a column buffer with group stride gs. */
static inline int32_t ec_col_slot(int32_t k, int32_t c, int32_t gs)
{
    const int32_t r = k & 3;
    return (k >> 2) * gs + c * 4 + ((r & 1) << 1) + (r >> 1);
}

/* Elements pos .. pos + n - 1 of column c = src[0 .. n - 1] - zp. */
static inline void ec_col_expand(int16_t *col, int32_t gs, int32_t c, int32_t pos, const int8_t *src, int32_t n,
                                 int32_t zp)
{
    int32_t i = 0;
#if defined(__ARM_FEATURE_DSP)
    const int32_t off = ec_dup16(-zp);
    ec_word *dst;
    for (; i < n && ((pos + i) & 3) != 0; ++i) {
        col[ec_col_slot(pos + i, c, gs)] = (int16_t)(src[i] - zp);
    }
    dst = (ec_word *)(void *)(col + ((pos + i) >> 2) * gs + c * 4);
    if (n - i >= 8) {
        /* 8 elements per iteration in inline asm: 2 LDR, 4 SXTAB16, 2 STRD (GCC: 9 instructions per 4 elements
         * with the loop, here 12 per 8) */
        const int8_t *s = src + i;
        const int32_t step = 2 * gs; /* bytes from a group to the next */
        int32_t pairs = (n - i) >> 3, x, y, lo, hi;
        __asm__("1:\n\t"
                "ldr %[x], [%[s]], #4\n\t"
                "ldr %[y], [%[s]], #4\n\t"
                "sxtab16 %[lo], %[off], %[x]\n\t"
                "sxtab16 %[hi], %[off], %[x], ror #8\n\t"
                "strd %[lo], %[hi], [%[d]]\n\t"
                "add %[d], %[d], %[step]\n\t"
                "sxtab16 %[lo], %[off], %[y]\n\t"
                "sxtab16 %[hi], %[off], %[y], ror #8\n\t"
                "strd %[lo], %[hi], [%[d]]\n\t"
                "add %[d], %[d], %[step]\n\t"
                "subs %[pairs], %[pairs], #1\n\t"
                "bne 1b"
                : [s] "+r"(s), [d] "+r"(dst), [pairs] "+r"(pairs), [x] "=&r"(x), [y] "=&r"(y), [lo] "=&r"(lo),
                  [hi] "=&r"(hi)
                : [off] "r"(off), [step] "r"(step)
                : "cc", "memory");
        i += (n - i) & ~7;
    }
    if (i + 4 <= n) {
        const int32_t x = ec_load32(src + i);
        dst[0] = __sxtab16(off, x);
        dst[1] = ec_sxtab16_ror8(off, x);
        i += 4;
    }
#endif
    for (; i < n; ++i) {
        col[ec_col_slot(pos + i, c, gs)] = (int16_t)(src[i] - zp);
    }
}

/* Elements pos .. pos + n - 1 of column c = 0 (padding). */
static inline void ec_col_zero(int16_t *col, int32_t gs, int32_t c, int32_t pos, int32_t n)
{
    int32_t i = 0;
#if defined(__ARM_FEATURE_DSP)
    if ((pos & 3) == 0) {
        ec_word *dst = (ec_word *)(void *)(col + (pos >> 2) * gs + c * 4);
        for (; i + 4 <= n; i += 4) {
            dst[0] = 0;
            dst[1] = 0;
            dst += gs >> 1;
        }
    }
#endif
    for (; i < n; ++i) {
        col[ec_col_slot(pos + i, c, gs)] = 0;
    }
}

#if defined(__ARM_FEATURE_DSP)
/* 2 columns x 2 channels in inline asm (GCC kept pointers on the stack and split the loads: 38 instructions per 32
 * MACs, against 30 + 2 here): per group of 4, one LDRD of the pair's two weight words, one of each column, 4 SXTB16
 * and 8 SMLAD. */
#define EC_GEMM_2X2_ROW(A0, A1, W)                                                                              \
    "sxtb16 %[t], %[" W "]\n\t"                                                                                \
    "smlad %[" A0 "], %[t], %[x0], %[" A0 "]\n\t"                                                               \
    "smlad %[" A1 "], %[t], %[y0], %[" A1 "]\n\t"                                                               \
    "sxtb16 %[t], %[" W "], ror #8\n\t"                                                                        \
    "smlad %[" A0 "], %[t], %[x1], %[" A0 "]\n\t"                                                               \
    "smlad %[" A1 "], %[t], %[y1], %[" A1 "]\n\t"
#define EC_GEMM_2X2_GROUP                                                                                        \
    "ldrd %[w0], %[w1], [%[wq]], #8\n\t"                                                                       \
    "ldrd %[x0], %[x1], [%[cq]], #8\n\t"                                                                       \
    "ldrd %[y0], %[y1], [%[cq]], #8\n\t" EC_GEMM_2X2_ROW("a00", "a01", "w0") EC_GEMM_2X2_ROW("a10", "a11", "w1")
#define EC_GEMM_2X2_OUTPUTS                                                                                      \
    [a00] "+r"(a00), [a01] "+r"(a01), [a10] "+r"(a10), [a11] "+r"(a11), [wq] "+r"(wq), [cq] "+r"(cq),           \
        [w0] "=&r"(w0), [w1] "=&r"(w1), [x0] "=&r"(x0), [x1] "=&r"(x1), [y0] "=&r"(y0), [y1] "=&r"(y1),         \
        [t] "=&r"(t)
/* The products of two weight rows (the pair at wq) with the two columns at cq (k4 columns), added to a00 (row 0,
 * column 0), a01, a10, a11; wq and cq move past them. */
#define EC_GEMM_2X2_DOT(k4)                                                                                      \
    do {                                                                                                         \
        int32_t w0, w1, x0, x1, y0, y1, t, n = (k4);                                                             \
        /* 16 columns per iteration, then 8 and 4 as the low bits of k4 (which n keeps) say; one asm statement,   \
         * so that its registers stay put */                                                                     \
        __asm__("subs %[n], %[n], #16\n\t"                                                                        \
                "blt 2f\n"                                                                                       \
                "1:\n\t" EC_GEMM_2X2_GROUP EC_GEMM_2X2_GROUP EC_GEMM_2X2_GROUP EC_GEMM_2X2_GROUP                   \
                "subs %[n], %[n], #16\n\t"                                                                        \
                "bge 1b\n"                                                                                       \
                "2:\n\t"                                                                                          \
                "tst %[n], #8\n\t"                                                                                \
                "beq 3f\n\t" EC_GEMM_2X2_GROUP EC_GEMM_2X2_GROUP                                                    \
                "3:\n\t"                                                                                          \
                "tst %[n], #4\n\t"                                                                                \
                "beq 4f\n\t" EC_GEMM_2X2_GROUP                                                                     \
                "4:"                                                                                             \
                : EC_GEMM_2X2_OUTPUTS, [n] "+r"(n)                                                               \
                :                                                                                                \
                : "cc", "memory");                                                                               \
    } while (0)
#endif

/* The output stage of one accumulator (any value). */
static inline int8_t ec_gemm_out(int32_t acc, const ec_quant_s8 *q, int32_t i)
{
    return ec_output_s8(ec_requantize(acc, q->mult[i], q->shift[i]), q->out_zp, q->act_min, q->act_max);
}

/* For every output channel oc < out_c: out0[oc] (column 0) and, when ncols == 2, out1[oc] (column 1) =
 * output stage(bias[oc] + sum over k of w[oc][k] * col[k]). w: packed weights of out_c rows and k4 columns; col:
 * column buffer with group stride gs. fast: ec_fast_ok(bias, q, out_c, k4). */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline void ec_gemm_core(const int8_t *w, int32_t k4, int32_t out_c, const int16_t *col, int32_t gs,
                                int32_t ncols, const int32_t *bias, const ec_quant_s8 *q, int32_t fast, int8_t *out0,
                                int8_t *out1)
{
    /* Parameters are copied to locals: stores through int8_t * may alias them otherwise. */
    const int32_t amin = q->act_min, amax = q->act_max, zp21 = 2 * q->out_zp + 1;
    const int32_t *const mult = q->mult;
    const int32_t *const shift = q->shift;
#if defined(__ARM_FEATURE_DSP)
    const int32_t lo4 = ec_dup8(amin), hi4 = ec_dup8(amax);
#endif
    int32_t oc = 0;
#if defined(__ARM_FEATURE_DSP)
    if (ncols == 1 && gs == 4 && fast) {
        /* A buffer of one column (a one-row fully connected layer; gs is a constant where the core is inlined, so
         * the other kernels do not carry this code): 1 column x 4 channels (two row pairs), each column load
         * serving 4 channels; the fast output stage */
        const ec_dword *cd0 = (const ec_dword *)(const void *)col;
        const int32_t cstep = gs >> 2; /* dwords per group */
        for (; oc + 4 <= out_c; oc += 4) {
            const ec_dword *wa = (const ec_dword *)(const void *)(w + oc * k4); /* pair oc / 2 */
            const ec_dword *wb = (const ec_dword *)(const void *)(w + (oc + 2) * k4);
            const ec_dword *cd = cd0;
            int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, g;
            uint32_t v;
            if (bias != NULL) {
                a0 = bias[oc];
                a1 = bias[oc + 1];
                a2 = bias[oc + 2];
                a3 = bias[oc + 3];
            }
#define EC_GEMM_1X4_GROUP(X, U, T)                                                                              \
    do {                                                                                                         \
        const int32_t x02 = (int32_t)(X), x13 = (int32_t)((X) >> 32);                                           \
        const int32_t w0 = (int32_t)(U), w1 = (int32_t)((U) >> 32), w2 = (int32_t)(T), w3 = (int32_t)((T) >> 32); \
        a0 = __smlad(__sxtb16(w0), x02, a0);                                                                     \
        a0 = __smlad(ec_sxtb16_ror8(w0), x13, a0);                                                               \
        a1 = __smlad(__sxtb16(w1), x02, a1);                                                                     \
        a1 = __smlad(ec_sxtb16_ror8(w1), x13, a1);                                                               \
        a2 = __smlad(__sxtb16(w2), x02, a2);                                                                     \
        a2 = __smlad(ec_sxtb16_ror8(w2), x13, a2);                                                               \
        a3 = __smlad(__sxtb16(w3), x02, a3);                                                                     \
        a3 = __smlad(ec_sxtb16_ror8(w3), x13, a3);                                                               \
    } while (0)
            for (g = k4 >> 3; g > 0; --g) { /* two groups of 4 per iteration */
                const int64_t x0 = cd[0], u0 = wa[0], t0 = wb[0];
                const int64_t x1 = cd[cstep], u1 = wa[1], t1 = wb[1];
                EC_GEMM_1X4_GROUP(x0, u0, t0);
                EC_GEMM_1X4_GROUP(x1, u1, t1);
                wa += 2;
                wb += 2;
                cd += 2 * cstep;
            }
            if (k4 & 4) {
                const int64_t x0 = cd[0], u0 = wa[0], t0 = wb[0];
                EC_GEMM_1X4_GROUP(x0, u0, t0);
            }
#undef EC_GEMM_1X4_GROUP
            v = (uint32_t)ec_clamp4(ec_requant_fast(a0, mult[oc], shift[oc], zp21),
                                    ec_requant_fast(a1, mult[oc + 1], shift[oc + 1], zp21),
                                    ec_requant_fast(a2, mult[oc + 2], shift[oc + 2], zp21),
                                    ec_requant_fast(a3, mult[oc + 3], shift[oc + 3], zp21), lo4, hi4);
            memcpy(out0 + oc, &v, 4);
        }
    }
#endif
    for (; oc < out_c; oc += 2) {
        const int8_t *wp = w + oc * k4; /* pair oc / 2 */
        const int32_t two = oc + 1 < out_c;
        int32_t a00 = bias != NULL ? bias[oc] : 0; /* row oc, column 0 */
        int32_t a10 = bias != NULL && two ? bias[oc + 1] : 0;
        int32_t a01 = a00;
        int32_t a11 = a10;
#if defined(__ARM_FEATURE_DSP)
        int32_t g;
        if (ncols == 2) {
            /* 2 columns x 2 channels (EC_GEMM_2X2_DOT) */
            const int8_t *wq = wp;
            const int16_t *cq = col;
            EC_GEMM_2X2_DOT(k4);
        } else {
            /* 1 column x 2 channels; two groups of 4 per iteration */
#define EC_GEMM_1X2_GROUP(W, X)                                                                                 \
    do {                                                                                                         \
        const int32_t wa = (int32_t)(W), wb = (int32_t)((W) >> 32);                                             \
        const int32_t x02 = (int32_t)(X), x13 = (int32_t)((X) >> 32);                                           \
        a00 = __smlad(__sxtb16(wa), x02, a00);                                                                   \
        a00 = __smlad(ec_sxtb16_ror8(wa), x13, a00);                                                             \
        a10 = __smlad(__sxtb16(wb), x02, a10);                                                                   \
        a10 = __smlad(ec_sxtb16_ror8(wb), x13, a10);                                                             \
    } while (0)
            const ec_dword *wd = (const ec_dword *)(const void *)wp;
            const ec_dword *cd = (const ec_dword *)(const void *)col;
            const int32_t cstep = gs >> 2; /* dwords per group */
            for (g = k4 >> 3; g > 0; --g) {
                const int64_t w0 = wd[0], w1 = wd[1], x0 = cd[0], x1 = cd[cstep];
                EC_GEMM_1X2_GROUP(w0, x0);
                EC_GEMM_1X2_GROUP(w1, x1);
                wd += 2;
                cd += 2 * cstep;
            }
            if (k4 & 4) {
                const int64_t w0 = wd[0], x0 = cd[0];
                EC_GEMM_1X2_GROUP(w0, x0);
            }
#undef EC_GEMM_1X2_GROUP
        }
#else
        {
            int32_t k;
            for (k = 0; k < k4; ++k) {
                const int32_t wi = (k >> 2) * 8 + (k & 3);
                const int32_t s = ec_col_slot(k, 0, gs);
                a00 += wp[wi] * col[s];
                a10 += wp[wi + 4] * col[s];
                if (ncols == 2) {
                    a01 += wp[wi] * col[s + 4];
                    a11 += wp[wi + 4] * col[s + 4];
                }
            }
        }
#endif
        if (fast) {
            const int32_t m0 = mult[oc], s0 = shift[oc];
            const int32_t m1 = two ? mult[oc + 1] : m0, s1 = two ? shift[oc + 1] : s0;
            const int32_t r00 = ec_requant_fast(a00, m0, s0, zp21), r10 = ec_requant_fast(a10, m1, s1, zp21);
#if defined(__ARM_FEATURE_DSP)
            const int32_t r01 = ncols == 2 ? ec_requant_fast(a01, m0, s0, zp21) : 0;
            const int32_t r11 = ncols == 2 ? ec_requant_fast(a11, m1, s1, zp21) : 0;
            const uint32_t v = (uint32_t)ec_clamp4(r00, r10, r01, r11, lo4, hi4);
            if (two) {
                const uint16_t h0 = (uint16_t)v, h1 = (uint16_t)(v >> 16);
                memcpy(out0 + oc, &h0, 2);
                if (ncols == 2) {
                    memcpy(out1 + oc, &h1, 2);
                }
            } else {
                out0[oc] = (int8_t)v;
                if (ncols == 2) {
                    out1[oc] = (int8_t)(v >> 16);
                }
            }
#else
            out0[oc] = (int8_t)(r00 < amin ? amin : (r00 > amax ? amax : r00));
            if (two) {
                out0[oc + 1] = (int8_t)(r10 < amin ? amin : (r10 > amax ? amax : r10));
            }
            if (ncols == 2) {
                out1[oc] = ec_output_fast(a01, m0, s0, zp21, amin, amax);
                if (two) {
                    out1[oc + 1] = ec_output_fast(a11, m1, s1, zp21, amin, amax);
                }
            }
#endif
        } else {
            const int32_t i0 = q->per_channel ? oc : 0;
            const int32_t i1 = q->per_channel && two ? oc + 1 : i0;
            out0[oc] = ec_gemm_out(a00, q, i0);
            if (two) {
                out0[oc + 1] = ec_gemm_out(a10, q, i1);
            }
            if (ncols == 2) {
                out1[oc] = ec_gemm_out(a01, q, i0);
                if (two) {
                    out1[oc + 1] = ec_gemm_out(a11, q, i1);
                }
            }
        }
    }
}

#if defined(__ARM_FEATURE_DSP)
/* ec_gemm_core for 2 columns and an even number of channels with a bias, in the fast case (the weight pairs in turn
 * from one pointer, the parameters from pointers that move along, the output stage of 4 accumulators in one word):
 * dscnn_kws's 1x1 layers (64 channels) on Cortex-M7 1.59 -> 1.32 instructions/MAC with the asm core above. */
static void ec_gemm_2col_fast(const int8_t *w, int32_t k4, int32_t out_c, const int16_t *col, const int32_t *bias,
                              const ec_quant_s8 *q, int8_t *out0, int8_t *out1)
{
    const int32_t zp21 = 2 * q->out_zp + 1, lo4 = ec_dup8(q->act_min), hi4 = ec_dup8(q->act_max);
    const int32_t *mp = q->mult, *sp = q->shift, *bp = bias;
    const int8_t *wq = w;
    int32_t pairs;
    for (pairs = out_c >> 1; pairs > 0; --pairs) {
        const int16_t *cq = col;
        int32_t a00 = bp[0], a10 = bp[1], a01 = a00, a11 = a10;
        uint32_t v;
        uint16_t h;
        EC_GEMM_2X2_DOT(k4);
        v = (uint32_t)ec_clamp4(ec_requant_fast(a00, mp[0], sp[0], zp21), ec_requant_fast(a10, mp[1], sp[1], zp21),
                                ec_requant_fast(a01, mp[0], sp[0], zp21), ec_requant_fast(a11, mp[1], sp[1], zp21),
                                lo4, hi4);
        h = (uint16_t)v;
        memcpy(out0, &h, 2);
        h = (uint16_t)(v >> 16);
        memcpy(out1, &h, 2);
        out0 += 2;
        out1 += 2;
        bp += 2;
        mp += 2;
        sp += 2;
    }
}
#endif

/* ec_gemm_core specialized for 2 columns and for 1 (the number of columns is a constant in each). */
#if defined(__GNUC__)
__attribute__((unused)) /* in the kernels that include this header for its column helpers only */
#endif
static void ec_gemm_s8s16(const int8_t *w, int32_t k4, int32_t out_c, const int16_t *col, int32_t gs, int32_t ncols,
                          const int32_t *bias, const ec_quant_s8 *q, int32_t fast, int8_t *out0, int8_t *out1)
{
    if (ncols == 2) {
#if defined(__ARM_FEATURE_DSP)
        if (fast && bias != NULL) {
            const int32_t even = out_c & ~1;
            ec_gemm_2col_fast(w, k4, even, col, bias, q, out0, out1);
            if (even < out_c) { /* the last channel: the first row of the last pair */
                ec_quant_s8 last = *q;
                last.mult += even;
                last.shift += even;
                ec_gemm_core(w + even * k4, k4, 1, col, gs, 2, bias + even, &last, fast, out0 + even, out1 + even);
            }
            return;
        }
#endif
        ec_gemm_core(w, k4, out_c, col, gs, 2, bias, q, fast, out0, out1);
    } else {
        ec_gemm_core(w, k4, out_c, col, gs, 1, bias, q, fast, out0, out1);
    }
}

#endif /* EDGEC_GEMM_H */
