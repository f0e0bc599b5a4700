/*
 * ec_fully_connected_sparse_s8: int8 fully connected layer with row-sparse weights (format in edgec_sparse.h):
 * input [rows][depth], output [rows][out_c]. Input rows are expanded into scratch as int16 x - in_zp, two at a time;
 * then acc = bias[oc] + sum over the entries of row oc of (x - in_zp) * w, segment by segment, and the output stage
 * of ec_fully_connected_s8. The zeros left out contribute nothing there either, so the results are the same bit for
 * bit. DSP extension: two entries per SMLAD (the gathered inputs paired by PKHBT, the weights by SXTB16).
 */
#include "edgec_sparse_core.h"

int32_t ec_fully_connected_sparse_s8_get_buffer_size(int32_t rows, int32_t depth, int32_t out_c)
{
    return ec_sparse_cols(rows) * (4 * ((depth + 1) / 2) + 4 * out_c);
}

void ec_fully_connected_sparse_s8(int32_t rows, int32_t depth, int32_t out_c, const ec_quant_s8 *q,
                                  const int8_t *input, const uint8_t *counts, const uint8_t *blocks,
                                  const int32_t *bias, int8_t *output, void *scratch)
{
    const int32_t words = (depth + 1) / 2, cols = ec_sparse_cols(rows);
    int16_t *col0 = (int16_t *)scratch, *col1 = col0 + 2 * words;
    int32_t *accs0 = (int32_t *)scratch + cols * words, *accs1 = accs0 + out_c;
    int32_t r = 0;

    for (; r + 2 <= rows; r += 2) {
        ec_sparse_expand(col0, input + r * depth, depth, q->in_zp);
        ec_sparse_expand(col1, input + (r + 1) * depth, depth, q->in_zp);
        ec_sparse_rows2_s8(col0, col1, depth, out_c, counts, blocks, bias, accs0, accs1);
        ec_sparse_outputs(accs0, out_c, q, output + r * out_c);
        ec_sparse_outputs(accs1, out_c, q, output + (r + 1) * out_c);
    }
    if (r < rows) {
        ec_sparse_expand(col0, input + r * depth, depth, q->in_zp);
        ec_sparse_rows_s8(col0, depth, out_c, counts, blocks, bias, accs0);
        ec_sparse_outputs(accs0, out_c, q, output + r * out_c);
    }
}
