/*
 * ec_fully_connected_block_sparse_s8: int8 fully connected layer with block-sparse weights (format in
 * edgec_sparse.h, built by toolchain/sparse.py encode_blocks): input [rows][depth], output [rows][out_c]. The weight
 * matrix is cut into tiles of 4 rows x 4 columns; only tiles with a nonzero weight are stored. Per group of 4 output
 * rows (the last one filled up with zero rows): the number of its tiles, then per tile the byte offset 8 g of its
 * columns 4g .. 4g + 3 in the expanded input column and its 16 weights sign-extended at build time to the two int16
 * pair words SMLAD takes per row (columns 0 and 2, then 1 and 3: the order of the expanded column), 9 words.
 * Each input row is expanded once into the scratch column (int16, x - in_zp, edgec_gemm.h, group stride 4), so the
 * output stage is the dense kernel's and the results are ec_fully_connected_s8's bit for bit.
 * DSP extension (Cortex-M4/M7/M33): per tile one load of the offset, an ADD, one LDRD of the 4 inputs, 4 LDRD of the
 * weight pairs and 8 SMLAD for 16 MACs (15 instructions, two tiles per loop: measured 16.0 per tile on Cortex-M7,
 * 1.0 per MAC, where the dense ec_fully_connected_block4_s8 needs 1.2 with its 8 SXTB16 per 16 MACs; the int16
 * weights take 36 bytes per tile against 16 dense). fast: ec_fast_ok(bias, q, out_c, K4), decided at build time.
 * Plain C elsewhere.
 */
#include "edgec_gemm.h"
#include "edgec_sparse.h"

#define EC_TILE_WORDS 9 /* offset + 4 rows x 2 pair words */

#if defined(__ARM_FEATURE_DSP)
/* One row of a tile: its pair words (columns 0 and 2, 1 and 3) against the input pairs x0 and x1. */
#define EC_BS_ROW(A)                                                                                             \
    "ldrd %[w0], %[w1], [%[p]], #8\n\t"                                                                          \
    "smlad %[" A "], %[w0], %[x0], %[" A "]\n\t"                                                                 \
    "smlad %[" A "], %[w1], %[x1], %[" A "]\n\t"
#define EC_BS_TILE                                                                                               \
    "ldr %[t], [%[p]], #4\n\t"                                                                                  \
    "add %[t], %[col], %[t]\n\t"                                                                                \
    "ldrd %[x0], %[x1], [%[t]]\n\t" EC_BS_ROW("a0") EC_BS_ROW("a1") EC_BS_ROW("a2") EC_BS_ROW("a3")
#define EC_BS_OUTPUTS                                                                                            \
    [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [p] "+r"(p), [x0] "=&r"(x0), [x1] "=&r"(x1),    \
        [w0] "=&r"(w0), [w1] "=&r"(w1), [t] "=&r"(t)
#endif

int32_t ec_fully_connected_block_sparse_s8_get_buffer_size(int32_t depth)
{
    return 2 * ec_k4(depth);
}

/* acc[0..3] += the tiles of one group (n tiles at p) applied to the expanded column; returns the end of the tiles. */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline const int32_t *tiles4(const int32_t *p, int32_t n, const int16_t *col, int32_t *acc)
{
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
#if defined(__ARM_FEATURE_DSP)
    int32_t x0, x1, w0, w1, t;
    if (n & 1) {
        __asm__(EC_BS_TILE : EC_BS_OUTPUTS : [col] "r"(col) : "memory");
    }
    n >>= 1;
    if (n > 0) {
        __asm__("1:\n\t" EC_BS_TILE EC_BS_TILE
                "subs %[n], %[n], #1\n\t"
                "bne 1b"
                : EC_BS_OUTPUTS, [n] "+r"(n)
                : [col] "r"(col)
                : "cc", "memory");
    }
#else
    for (; n > 0; --n, p += EC_TILE_WORDS) {
        const int16_t *x = col + (p[0] >> 1); /* the byte offset 8 g: slot 4 g */
        int32_t j;
        for (j = 0; j < 4; ++j) { /* slot j of the group and half j % 2 of pair word j / 2 of each row */
            const int32_t sh = 16 * (j & 1), v = x[j];
            a0 += (int16_t)(p[1 + (j >> 1)] >> sh) * v;
            a1 += (int16_t)(p[3 + (j >> 1)] >> sh) * v;
            a2 += (int16_t)(p[5 + (j >> 1)] >> sh) * v;
            a3 += (int16_t)(p[7 + (j >> 1)] >> sh) * v;
        }
    }
#endif
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
    return p;
}

/* The output stage of one group of lanes (< 4: the last group) rows oc .. oc + lanes - 1, any output stage. */
static void out_lanes(const int32_t *a, int32_t oc, int32_t lanes, const ec_quant_s8 *q, int32_t fast, int8_t *out)
{
    const int32_t zp21 = 2 * q->out_zp + 1;
    int32_t j;
    for (j = 0; j < lanes; ++j) {
        out[oc + j] = fast ? ec_output_fast(a[j], q->mult[oc + j], q->shift[oc + j], zp21, q->act_min, q->act_max)
                           : ec_gemm_out(a[j], q, q->per_channel ? oc + j : 0);
    }
}

void ec_fully_connected_block_sparse_s8(int32_t rows, int32_t depth, int32_t out_c, const ec_quant_s8 *q,
                                        const int8_t *input, const int32_t *stream, const int32_t *bias,
                                        int8_t *output, void *scratch, int32_t fast)
{
    const int32_t k4 = ec_k4(depth), n4 = out_c & ~3;
    const int32_t zp21 = 2 * q->out_zp + 1, lo = q->act_min, hi = q->act_max;
    int16_t *col = (int16_t *)scratch;
    int32_t r;

    ec_col_zero(col, 4, 0, depth, k4 - depth);
    for (r = 0; r < rows; ++r) {
        int8_t *out = output + r * out_c;
        const int32_t *p = stream;
        int32_t oc, j;
        ec_col_expand(col, 4, 0, 0, input + r * depth, depth, q->in_zp);
        if (fast) { /* the caller checked ec_fast_ok at build time; bias is not NULL */
            const int32_t *bp = bias, *mp = q->mult, *sp = q->shift;
            for (oc = 0; oc < n4; oc += 4) {
                int32_t a[4];
                a[0] = bp[0];
                a[1] = bp[1];
                a[2] = bp[2];
                a[3] = bp[3];
                p = tiles4(p + 1, p[0], col, a);
                ec_store4_fast(out + oc, a, mp, sp, zp21, lo, hi);
                bp += 4;
                mp += 4;
                sp += 4;
            }
        } else {
            for (oc = 0; oc < n4; oc += 4) {
                int32_t a[4] = {0, 0, 0, 0};
                for (j = 0; j < 4 && bias != NULL; ++j) {
                    a[j] = bias[oc + j];
                }
                p = tiles4(p + 1, p[0], col, a);
                out_lanes(a, oc, 4, q, 0, out);
            }
        }
        if (n4 < out_c) { /* the last out_c % 4 rows: a group with zero rows */
            int32_t a[4] = {0, 0, 0, 0};
            for (j = 0; j < out_c - n4 && bias != NULL; ++j) {
                a[j] = bias[n4 + j];
            }
            (void)tiles4(p + 1, p[0], col, a);
            out_lanes(a, n4, out_c - n4, q, fast, out);
        }
    }
}
