/*
 * ec_fully_connected_packed_s8: int8 fully connected layer with packed weights (layout in edgec_gemm.h):
 * input [rows][depth], output [rows][out_c]. Every pair of input rows is expanded into the column buffer
 * (scratch, int16, x - in_zp; room for one row when rows == 1) and multiplied with the packed weights. DSP extension: SXTAB16 expansion and
 * SMLAD, 2 rows x 2 channels per loop; plain C elsewhere. Same results as ec_fully_connected_s8 bit for bit.
 */
#include "edgec_gemm.h"

int32_t ec_fully_connected_packed_s8_get_buffer_size(int32_t rows, int32_t depth)
{
    return (rows >= 2 ? 2 : 1) * 2 * ec_k4(depth);
}

void ec_fully_connected_packed_s8(int32_t rows, int32_t depth, int32_t out_c, const ec_quant_s8 *q,
                                  const int8_t *input, const int8_t *weights, const int32_t *bias, int8_t *output,
                                  void *scratch)
{
    const int32_t k4 = ec_k4(depth);
    const int32_t ncols_max = rows >= 2 ? 2 : 1, gs = 4 * ncols_max;
    const int32_t fast = ec_fast_ok(bias, q, out_c, k4);
    int16_t *col = (int16_t *)scratch;
    int32_t r, c;

    for (c = 0; c < ncols_max; ++c) {
        ec_col_zero(col, gs, c, depth, k4 - depth);
    }
    for (r = 0; r < rows; r += 2) {
        const int32_t ncols = rows - r >= 2 ? 2 : 1;
        for (c = 0; c < ncols; ++c) {
            ec_col_expand(col, gs, c, 0, input + (r + c) * depth, depth, q->in_zp);
        }
        if (ncols_max == 1) { /* one row: the group stride is a constant 4 in this copy */
            ec_gemm_core(weights, k4, out_c, col, 4, 1, bias, q, fast, output, NULL);
        } else {
            ec_gemm_s8s16(weights, k4, out_c, col, 8, ncols, bias, q, fast, output + r * out_c,
                          output + (r + 1) * out_c);
        }
    }
}
