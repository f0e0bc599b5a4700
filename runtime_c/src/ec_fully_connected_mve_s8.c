/*
 * ec_fully_connected_mve_s8: int8 fully connected layer, two input rows x 4 output channels per step (one row x 4
 * channels for a single row), 16 multiply-accumulates per VMLADAVA.S8 with Helium (Cortex-M55); plain C
 * elsewhere. Weights [out_c][depth] int8, bias folded with the input zero point (edgec_mve.h); no scratch. Same
 * results as ec_fully_connected_s8 bit for bit.
 */
#include "edgec_mve.h"

void ec_fully_connected_mve_s8(int32_t rows, int32_t depth, int32_t out_c, const ec_quant_s8 *q,
                               const int8_t *input, const int8_t *weights, const int32_t *bias, int8_t *output)
{
    const int32_t right = ec_mve_right_shifts(q->shift, 2 * out_c);
    int32_t r;
    if (rows > 1) {
        ec_mve_gemm_rows_s8(input, depth, rows, weights, depth, out_c, bias, q, output, right);
        return;
    }
    for (r = 0; r < rows; r += 2) {
        const int8_t *x1 = r + 1 < rows ? input + (r + 1) * depth : NULL;
        ec_mve_gemm_s8(input + r * depth, x1, weights, depth, out_c, bias, q, output + r * out_c,
                       output + (r + 1) * out_c, right);
    }
}
