/*
 * ec_transpose: strided N-d copy (transpose, broadcast copy) of 1-, 2- or 4-byte elements (other sizes are copied
 * bytewise). The output is dense over bp->out_shape; its element i[] comes from input element
 * sum(i[d] * a_strides[d]). b_strides is unused.
 */
#include <string.h>

#include "edgec_internal.h"

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
    for (r = 0; r < it.rows; ++r) {
        copy_row(in + (size_t)it.a_off * es, it.row_a, it.row_len, es, out);
        out += (size_t)it.row_len * es;
        ec_nd_next(&it);
    }
}
