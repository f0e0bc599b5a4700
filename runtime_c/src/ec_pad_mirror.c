/*
 * ec_pad_mirror: reflect or edge padding of an EC_MAX_DIMS-d tensor (shapes left-padded with 1) of elements of
 * elem_size bytes. out_shape = in_shape + pads_begin + pads_end (pads >= 0). Along each dimension of size n, output
 * index o reads input index i = o - pads_begin, mapped inside [0, n): edge (edge != 0) clamps it; reflect mirrors
 * it about the first and last element without repeating them (i < 0: -i; i >= n: 2 (n - 1) - i; ONNX Pad and
 * numpy's "reflect" mode), which needs pads_begin, pads_end <= n - 1 (checked by the toolchain).
 */
#include <string.h>

#include "edgec.h"

static int32_t source_index(int32_t o, int32_t begin, int32_t n, int32_t edge)
{
    int32_t i = o - begin;
    if (edge) {
        return i < 0 ? 0 : (i >= n ? n - 1 : i);
    }
    if (n == 1) {
        return 0;
    }
    if (i < 0) {
        i = -i;
    }
    if (i >= n) {
        i = 2 * (n - 1) - i;
    }
    return i;
}

void ec_pad_mirror(const int32_t *in_shape, const int32_t *pads_begin, const int32_t *pads_end, int32_t elem_size,
                   int32_t edge, const void *input, void *output)
{
    enum { LAST = EC_MAX_DIMS - 1 };
    const size_t es = (size_t)elem_size;
    const unsigned char *in = (const unsigned char *)input;
    unsigned char *out = (unsigned char *)output;
    int32_t out_shape[EC_MAX_DIMS], in_stride[EC_MAX_DIMS], idx[EC_MAX_DIMS];
    int32_t rows = 1, row_len, d, r, c;

    for (d = LAST; d >= 0; --d) {
        out_shape[d] = in_shape[d] + pads_begin[d] + pads_end[d];
        in_stride[d] = d == LAST ? 1 : in_stride[d + 1] * in_shape[d + 1];
        idx[d] = 0;
        if (out_shape[d] <= 0 || in_shape[d] <= 0) {
            return;
        }
        if (d < LAST) {
            rows *= out_shape[d];
        }
    }
    row_len = out_shape[LAST];
    for (r = 0; r < rows; ++r) {
        const unsigned char *row;
        int32_t in_off = 0;
        for (d = 0; d < LAST; ++d) {
            in_off += source_index(idx[d], pads_begin[d], in_shape[d], edge) * in_stride[d];
        }
        row = in + (size_t)in_off * es;
        for (c = 0; c < row_len; ++c) {
            const int32_t i = source_index(c, pads_begin[LAST], in_shape[LAST], edge);
            memcpy(out + (size_t)c * es, row + (size_t)i * es, es);
        }
        out += (size_t)row_len * es;
        for (d = LAST - 1; d >= 0 && ++idx[d] == out_shape[d]; --d) {
            idx[d] = 0;
        }
    }
}
