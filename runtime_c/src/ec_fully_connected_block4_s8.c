/*
 * ec_fully_connected_block4_s8: int8 fully connected layer for one input row at a time (input [rows][depth], output
 * [rows][out_c]), weights interleaved in blocks of 4 output rows so that one pointer walks them and every input
 * load serves 4 rows. Layout (toolchain/ops/packing.py pack_fc_block4_s8): K8 = depth rounded up to a multiple of
 * 8 (zero weights); the first out_c / 4 * 4 rows in blocks of 4, block b holding for every group g of 4 columns the
 * 4 bytes of row 4b, then of 4b + 1, 4b + 2 and 4b + 3 (16 bytes per group); then the out_c % 4 remaining rows, one
 * after the other, K8 bytes each. fast: ec_fast_ok(bias, q, out_c, K8) with bias not NULL, decided at build time
 * (toolchain/ops/output_stage.py fast_output_ok), which saves the per-call check of every channel.
 * Each input row is expanded once into the scratch column (int16, x - in_zp, in the order SXTB16 / SXTB16 ROR 8
 * take a weight word apart: edgec_gemm.h, group stride 4). DSP extension (Cortex-M4/M7/M33): per group of 4
 * columns, one LDRD of the input and two of the weights, 8 SXTB16 and 8 SMLAD for 16 MACs (ad01's 640x128 layer
 * on Cortex-M7: 1.27 instructions/MAC with the output stage, against 1.55 for ec_fully_connected_packed_s8's
 * 4-channel path). Plain C elsewhere. Same results as ec_fully_connected_s8 bit for bit.
 */
#include "edgec_gemm.h"

#if defined(__ARM_FEATURE_DSP)
/* One group of 4 columns of 4 rows: the input pair words (x0: elements 0 and 2, x1: 1 and 3), then the weight words
 * of two rows at a time, each taken apart by SXTB16 (bytes 0 and 2) and SXTB16 ROR 8 (bytes 1 and 3). */
#define EC_FC4_ROW(A, W)                                                                                         \
    "sxtb16 %[t], %[" W "]\n\t"                                                                                 \
    "smlad %[" A "], %[t], %[x0], %[" A "]\n\t"                                                                  \
    "sxtb16 %[t], %[" W "], ror #8\n\t"                                                                         \
    "smlad %[" A "], %[t], %[x1], %[" A "]\n\t"
#define EC_FC4_GROUP                                                                                             \
    "ldrd %[x0], %[x1], [%[xp]], #8\n\t"                                                                        \
    "ldrd %[w0], %[w1], [%[wp]], #8\n\t" EC_FC4_ROW("a0", "w0") EC_FC4_ROW("a1", "w1")                    \
    "ldrd %[w0], %[w1], [%[wp]], #8\n\t" EC_FC4_ROW("a2", "w0") EC_FC4_ROW("a3", "w1")
#define EC_FC4_OUTPUTS                                                                                           \
    [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [wp] "+r"(wp), [xp] "+r"(xp), [x0] "=&r"(x0),   \
        [x1] "=&r"(x1), [w0] "=&r"(w0), [w1] "=&r"(w1), [t] "=&r"(t)
#endif

/* depth rounded up to a multiple of 8 */
static int32_t k8_of(int32_t depth)
{
    return (depth + 7) & ~7;
}

int32_t ec_fully_connected_block4_s8_get_buffer_size(int32_t depth)
{
    return 2 * k8_of(depth);
}

/* acc[0..3] += the products of the 4 rows of the block at *wp with the expanded column; *wp moves past the block. */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline void dot4(const int8_t **wpp, const int16_t *col, int32_t k8, int32_t *acc)
{
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    const int8_t *wp = *wpp;
#if defined(__ARM_FEATURE_DSP)
    const int16_t *xp = col;
    int32_t x0, x1, w0, w1, t;
    if (k8 >= 16) {
        int32_t n = k8 >> 4;
        __asm__("1:\n\t" EC_FC4_GROUP EC_FC4_GROUP EC_FC4_GROUP EC_FC4_GROUP
                "subs %[n], %[n], #1\n\t"
                "bne 1b"
                : EC_FC4_OUTPUTS, [n] "+r"(n)
                :
                : "cc", "memory");
    }
    if (k8 & 8) {
        __asm__(EC_FC4_GROUP EC_FC4_GROUP : EC_FC4_OUTPUTS : : "memory");
    }
#else
    int32_t k;
    for (k = 0; k < k8; ++k) {
        const int32_t x = col[ec_col_slot(k, 0, 4)];
        const int8_t *wk = wp + (k >> 2) * 16 + (k & 3);
        a0 += wk[0] * x;
        a1 += wk[4] * x;
        a2 += wk[8] * x;
        a3 += wk[12] * x;
    }
    wp += 4 * k8;
#endif
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
    *wpp = wp;
}

void ec_fully_connected_block4_s8(int32_t rows, int32_t depth, int32_t out_c, const ec_quant_s8 *q,
                                  const int8_t *input, const int8_t *weights, const int32_t *bias, int8_t *output,
                                  void *scratch, int32_t fast)
{
    const int32_t k8 = k8_of(depth), n4 = out_c & ~3;
    const int32_t zp21 = 2 * q->out_zp + 1, lo = q->act_min, hi = q->act_max;
    int16_t *col = (int16_t *)scratch;
    int32_t r;

    ec_col_zero(col, 4, 0, depth, k8 - depth);
    for (r = 0; r < rows; ++r) {
        int8_t *out = output + r * out_c;
        const int8_t *wp = weights;
        int32_t oc;
        ec_col_expand(col, 4, 0, 0, input + r * depth, depth, q->in_zp);
        if (fast) { /* the caller checked ec_fast_ok(bias, q, out_c, k8) at build time; bias is not NULL */
            const int32_t *bp = bias, *mp = q->mult, *sp = q->shift;
            for (oc = 0; oc < n4; oc += 4) {
                int32_t a[4];
                a[0] = bp[0];
                a[1] = bp[1];
                a[2] = bp[2];
                a[3] = bp[3];
                dot4(&wp, col, k8, a);
                ec_store4_fast(out + oc, a, mp, sp, zp21, lo, hi);
                bp += 4;
                mp += 4;
                sp += 4;
            }
        } else {
            const int32_t pc = q->per_channel;
            for (oc = 0; oc < n4; oc += 4) {
                int32_t a[4] = {0, 0, 0, 0};
                int32_t j;
                if (bias != NULL) {
                    for (j = 0; j < 4; ++j) {
                        a[j] = bias[oc + j];
                    }
                }
                dot4(&wp, col, k8, a);
                for (j = 0; j < 4; ++j) {
                    out[oc + j] = ec_gemm_out(a[j], q, pc ? oc + j : 0);
                }
            }
        }
        for (oc = n4; oc < out_c; ++oc) { /* the last out_c % 4 rows, one at a time */
            int32_t acc = bias != NULL ? bias[oc] : 0;
#if defined(__ARM_FEATURE_DSP)
            const ec_dword *xd = (const ec_dword *)(const void *)col;
            const ec_word *wd = (const ec_word *)(const void *)wp;
            int32_t g;
            for (g = k8 >> 2; g > 0; --g) {
                const int64_t x = *xd++;
                const int32_t w = *wd++;
                acc = __smlad(__sxtb16(w), (int32_t)x, acc);
                acc = __smlad(ec_sxtb16_ror8(w), (int32_t)(x >> 32), acc);
            }
#else
            int32_t k;
            for (k = 0; k < k8; ++k) {
                acc += wp[k] * col[ec_col_slot(k, 0, 4)];
            }
#endif
            wp += k8;
            if (fast) {
                out[oc] = ec_output_fast(acc, q->mult[oc], q->shift[oc], zp21, lo, hi);
            } else {
                out[oc] = ec_gemm_out(acc, q, q->per_channel ? oc : 0);
            }
        }
    }
}
