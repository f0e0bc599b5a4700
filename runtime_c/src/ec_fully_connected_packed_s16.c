/*
 * ec_fully_connected_packed_s16: 16x8 fully connected layer with packed weights (layout in edgec_gemm_s16.h):
 * input [rows][depth] int16, output [rows][out_c] int16, zero points 0. The input rows are read as they are (no
 * scratch), two rows x two output channels at a time. DSP extension: SXTB16 and SMLAD in int32 blocks added to the
 * int64 accumulator; plain C elsewhere. Same results as ec_fully_connected_s16 bit for bit.
 */
#include "edgec_gemm_s16.h"

void ec_fully_connected_packed_s16(int32_t rows, int32_t depth, int32_t out_c, const ec_quant_s16 *q,
                                   const int16_t *input, const int8_t *weights, const int64_t *bias,
                                   int16_t *output)
{
    const int32_t fast = ec_s16_fast_ok(bias, q, out_c, depth);
    int32_t r;
    for (r = 0; r < rows; r += 2) {
        const int32_t ncols = rows - r >= 2 ? 2 : 1;
        const int16_t *x0 = input + r * depth;
        ec_gemm_s16(weights, depth, out_c, x0, x0 + depth, ncols, bias, q, fast, output + r * out_c,
                    output + (r + 1) * out_c);
    }
}
