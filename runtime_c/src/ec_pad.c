/*
 * ec_pad: constant padding of an EC_MAX_DIMS-d tensor (shapes left-padded with 1) of 1-, 2- or 4-byte elements
 * (other sizes are filled bytewise). out_shape = in_shape + pads_begin + pads_end; output element o[] is
 * input element o[] - pads_begin[] when that lies inside the input, else *pad_value. Negative pads crop.
 */
#include <string.h>

#include "edgec.h"

/* Write n copies of the es-byte element at value to y. */
static void fill(unsigned char *y, int32_t n, size_t es, const void *value)
{
    int32_t i;

    switch (es) {
    case 1:
        memset(y, *(const unsigned char *)value, (size_t)n);
        break;
    case 2: {
        uint16_t v, *y2 = (uint16_t *)(void *)y;
        memcpy(&v, value, sizeof v);
        for (i = 0; i < n; ++i) {
            y2[i] = v;
        }
        break;
    }
    case 4: {
        uint32_t v, *y4 = (uint32_t *)(void *)y;
        memcpy(&v, value, sizeof v);
        for (i = 0; i < n; ++i) {
            y4[i] = v;
        }
        break;
    }
    default:
        for (i = 0; i < n; ++i) {
            memcpy(y + (size_t)i * es, value, es);
        }
        break;
    }
}

void ec_pad(const int32_t *in_shape, const int32_t *pads_begin, const int32_t *pads_end, int32_t elem_size,
            const void *pad_value, const void *input, void *output)
{
    enum { LAST = EC_MAX_DIMS - 1 };
    const size_t es = (size_t)elem_size;
    const unsigned char *in = (const unsigned char *)input;
    unsigned char *out = (unsigned char *)output;
    int32_t out_shape[EC_MAX_DIMS], in_stride[EC_MAX_DIMS], idx[EC_MAX_DIMS];
    int32_t rows = 1, row_len, c0, c1, d, r;

    for (d = LAST; d >= 0; --d) {
        out_shape[d] = in_shape[d] + pads_begin[d] + pads_end[d];
        in_stride[d] = d == LAST ? 1 : in_stride[d + 1] * in_shape[d + 1];
        idx[d] = 0;
        if (out_shape[d] <= 0) {
            return;
        }
        if (d < LAST) {
            rows *= out_shape[d];
        }
    }
    /* Along the last dimension, output [c0, c1) copies input [c0 - begin, c1 - begin); the rest is padding. */
    row_len = out_shape[LAST];
    c0 = pads_begin[LAST] < 0 ? 0 : (pads_begin[LAST] < row_len ? pads_begin[LAST] : row_len);
    c1 = pads_begin[LAST] + in_shape[LAST];
    c1 = c1 < c0 ? c0 : (c1 > row_len ? row_len : c1);

    for (r = 0; r < rows; ++r) {
        int32_t in_off = c0 - pads_begin[LAST];
        int inside = 1;
        for (d = 0; d < LAST; ++d) {
            const int32_t i = idx[d] - pads_begin[d];
            inside = inside && i >= 0 && i < in_shape[d];
            in_off += i * in_stride[d];
        }
        if (inside && c1 > c0) {
            fill(out, c0, es, pad_value);
            memcpy(out + (size_t)c0 * es, in + (size_t)in_off * es, (size_t)(c1 - c0) * es);
            fill(out + (size_t)c1 * es, row_len - c1, es, pad_value);
        } else {
            fill(out, row_len, es, pad_value);
        }
        out += (size_t)row_len * es;
        for (d = LAST - 1; d >= 0 && ++idx[d] == out_shape[d]; --d) {
            idx[d] = 0;
        }
    }
}
