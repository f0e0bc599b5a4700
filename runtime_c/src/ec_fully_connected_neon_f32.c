/*
 * ec_fully_connected_neon_f32: float fully connected layer for NEON (edgec_neon_f32.h): input [rows][depth],
 * weights in the blocked layout [out_c4 / 4][depth][4], bias padded to out_c4 (zeros when the layer has none).
 * Four rows by 4 output channels per loop (FMLA by element on AArch64, VMLA.F32 by scalar on ARMv7). Plain C
 * elsewhere, which sums in ec_fully_connected_f32's order.
 */
#include "edgec_neon_f32.h"

void ec_fully_connected_neon_f32(int32_t rows, int32_t depth, int32_t out_c, const ec_act_f32 *act,
                                 const float *input, const float *weights, const float *bias, float *output)
{
    float lo, hi;
    int32_t r, i;

    ec_act_bounds(act, &lo, &hi);
    for (r = 0; r < rows; r += EC_NEON_F32_ROWS) {
        const int32_t n = rows - r < EC_NEON_F32_ROWS ? rows - r : EC_NEON_F32_ROWS;
        const float *x[EC_NEON_F32_ROWS];
        for (i = 0; i < EC_NEON_F32_ROWS; ++i) {
            x[i] = input + (r + (i < n ? i : 0)) * depth;
        }
        ec_neon_f32_rows(n, depth, out_c, x, weights, bias, lo, hi, output + r * out_c, out_c);
    }
}
