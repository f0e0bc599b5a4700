/*
 * ec_fully_connected_nm_s8: int8 fully connected layer with N:4 weights (n = 1 or 2; format in edgec_sparse.h):
 * input [rows][depth], output [rows][out_c]. Input rows are expanded into scratch as int16 x - in_zp (zeros up to
 * whole blocks), two at a time; acc = bias[oc] + the entries of row oc times the values at their columns, then the
 * output stage of ec_fully_connected_s8: the same results bit for bit. DSP extension: two entries per SMLAD.
 */
#include "edgec_sparse_core.h"

int32_t ec_fully_connected_nm_s8_get_buffer_size(int32_t rows, int32_t depth, int32_t out_c, int32_t n)
{
    return ec_sparse_cols(rows) * (2 * ec_nm_depth(depth, n) + 4 * out_c);
}

void ec_fully_connected_nm_s8(int32_t rows, int32_t depth, int32_t out_c, int32_t n, const ec_quant_s8 *q,
                              const int8_t *input, const uint8_t *index, const int8_t *values, const int32_t *bias,
                              int8_t *output, void *scratch)
{
    const int32_t padded = ec_nm_depth(depth, n), cols = ec_sparse_cols(rows); /* padded: a multiple of 8 */
    int16_t *col0 = (int16_t *)scratch, *col1 = col0 + padded;
    int32_t *accs0 = (int32_t *)(void *)(col0 + cols * padded), *accs1 = accs0 + out_c;
    int32_t r = 0;

    memset(col0 + depth, 0, (size_t)(padded - depth) * sizeof(int16_t));
    memset(col1 + depth, 0, (size_t)(cols - 1) * (size_t)(padded - depth) * sizeof(int16_t));
    for (; r + 2 <= rows; r += 2) {
        ec_sparse_expand(col0, input + r * depth, depth, q->in_zp);
        ec_sparse_expand(col1, input + (r + 1) * depth, depth, q->in_zp);
        ec_nm_rows2_s8(col0, col1, depth, out_c, n, index, values, bias, accs0, accs1);
        ec_sparse_outputs(accs0, out_c, q, output + r * out_c);
        ec_sparse_outputs(accs1, out_c, q, output + (r + 1) * out_c);
    }
    if (r < rows) {
        ec_sparse_expand(col0, input + r * depth, depth, q->in_zp);
        ec_nm_rows_s8(col0, depth, out_c, n, index, values, bias, accs0);
        ec_sparse_outputs(accs0, out_c, q, output + r * out_c);
    }
}
