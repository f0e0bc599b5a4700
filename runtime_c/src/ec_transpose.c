/*
 * ec_transpose: strided N-d copy (transpose, broadcast copy) of 1-, 2- or 4-byte elements (other sizes are copied
 * bytewise). The output is dense over bp->out_shape; its element i[] comes from input element
 * sum(i[d] * a_strides[d]). b_strides is unused.
 * Interleaving 2, 3 or 4 byte planes (NCHW to NHWC with 2 to 4 channels, e.g. a model's image input) has its own
 * loop, one pixel per iteration; with NEON (Cortex-A) 16 pixels per VLD1/VST2-4.
 */
#include <string.h>

#include "edgec_internal.h"

#if defined(__ARM_NEON)
#include <arm_neon.h>
#endif

/* Rows of n (2 to 4) bytes, element e of row j at x[j + e * plane]. */
static void interleave(const uint8_t *x, int32_t plane, int32_t n, int32_t rows, uint8_t *y)
{
    const uint8_t *x1 = x + plane, *x2 = x + 2 * plane, *x3 = x + 3 * plane;
    int32_t j = 0;
#if defined(__ARM_NEON)
    for (; j + 16 <= rows; j += 16, y += 16 * n) {
        if (n == 2) {
            uint8x16x2_t v;
            v.val[0] = vld1q_u8(x + j);
            v.val[1] = vld1q_u8(x1 + j);
            vst2q_u8(y, v);
        } else if (n == 3) {
            uint8x16x3_t v;
            v.val[0] = vld1q_u8(x + j);
            v.val[1] = vld1q_u8(x1 + j);
            v.val[2] = vld1q_u8(x2 + j);
            vst3q_u8(y, v);
        } else {
            uint8x16x4_t v;
            v.val[0] = vld1q_u8(x + j);
            v.val[1] = vld1q_u8(x1 + j);
            v.val[2] = vld1q_u8(x2 + j);
            v.val[3] = vld1q_u8(x3 + j);
            vst4q_u8(y, v);
        }
    }
#endif
    if (n == 2) {
        for (; j < rows; ++j, y += 2) {
            y[0] = x[j];
            y[1] = x1[j];
        }
    } else if (n == 3) {
        for (; j < rows; ++j, y += 3) {
            y[0] = x[j];
            y[1] = x1[j];
            y[2] = x2[j];
        }
    } else {
        for (; j < rows; ++j, y += 4) {
            y[0] = x[j];
            y[1] = x1[j];
            y[2] = x2[j];
            y[3] = x3[j];
        }
    }
}

/* Copy n elements of es bytes to y (dense) from x, stepping s elements. */
static void copy_row(const unsigned char *x, int32_t s, int32_t n, size_t es, unsigned char *y)
{
    int32_t i, ia;

    if (s == 1) {
        memcpy(y, x, (size_t)n * es);
        return;
    }
    switch (es) {
    case 1:
        for (i = 0, ia = 0; i < n; ++i, ia += s) {
            y[i] = x[ia];
        }
        break;
    case 2: {
        const uint16_t *x2 = (const uint16_t *)(const void *)x;
        uint16_t *y2 = (uint16_t *)(void *)y;
        for (i = 0, ia = 0; i < n; ++i, ia += s) {
            y2[i] = x2[ia];
        }
        break;
    }
    case 4: {
        const uint32_t *x4 = (const uint32_t *)(const void *)x;
        uint32_t *y4 = (uint32_t *)(void *)y;
        for (i = 0, ia = 0; i < n; ++i, ia += s) {
            y4[i] = x4[ia];
        }
        break;
    }
    default:
        for (i = 0, ia = 0; i < n; ++i, ia += s) {
            memcpy(y + (size_t)i * es, x + (size_t)ia * es, es);
        }
        break;
    }
}

void ec_transpose(const ec_broadcast_params *bp, int32_t elem_size, const void *input, void *output)
{
    const size_t es = (size_t)elem_size;
    const unsigned char *in = (const unsigned char *)input;
    unsigned char *out = (unsigned char *)output;
    ec_nd_iter it;
    int32_t r;

    ec_nd_init(&it, bp->out_shape, bp->a_strides, NULL);
    if (es == 1 && it.ndim > 0 && it.row_len >= 2 && it.row_len <= 4 && it.a_stride[it.ndim - 1] == 1) {
        /* consecutive rows start at consecutive input bytes: whole runs of the innermost outer dimension */
        const int32_t d = it.ndim - 1, run = it.shape[d];
        for (r = 0; r < it.rows; r += run) {
            interleave(in + it.a_off, it.row_a, it.row_len, run, out);
            out += (size_t)run * (size_t)it.row_len;
            it.idx[d] = run - 1; /* the run's last row, then the next */
            it.a_off += run - 1;
            ec_nd_next(&it);
        }
        return;
    }
    for (r = 0; r < it.rows; ++r) {
        copy_row(in + (size_t)it.a_off * es, it.row_a, it.row_len, es, out);
        out += (size_t)it.row_len * es;
        ec_nd_next(&it);
    }
}
