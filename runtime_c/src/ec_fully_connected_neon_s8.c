/*
 * ec_fully_connected_neon_s8: int8 fully connected layer for NEON (edgec_neon.h): input [rows][depth], weights in
 * the NEON matrix layout [out_c][K8 = depth rounded up to 8], folded bias, output [rows][out_c]. Four rows
 * (AArch64; two on ARMv7) at a time are multiplied with 4 output channels per loop (VMULL/VMLAL.S8, VPADAL.S16), read straight from the input
 * when depth is a multiple of 8, otherwise copied into the scratch buffer with zeros after them. Plain C elsewhere.
 * Same results as ec_fully_connected_s8 (with the unfolded bias) bit for bit.
 */
#include "edgec_neon.h"

#define EC_FC_CHUNK 64 /* output channels per pass (a multiple of 4) */

int32_t ec_fully_connected_neon_s8_get_buffer_size(int32_t rows, int32_t depth)
{
    return depth % 8 != 0 ? (rows < 4 ? rows : 4) * ec_k8(depth) : 0;
}

void ec_fully_connected_neon_s8(int32_t rows, int32_t depth, int32_t out_c, const ec_quant_s8 *q,
                                const int8_t *input, const int8_t *weights, const int32_t *bias, int8_t *output,
                                void *scratch)
{
    const int32_t k8 = ec_k8(depth);
    const int32_t fast = ec_neon_fast_ok(bias, q, out_c, k8);
    int8_t *col = (int8_t *)scratch;
    int32_t tb[3 * EC_FC_CHUNK];
    int32_t r, c, o;

    if (k8 != depth) {
        memset(col, 0, (size_t)((rows < EC_NEON_COLS ? rows : EC_NEON_COLS) * k8));
    }
    for (o = 0; o < out_c; o += EC_FC_CHUNK) { /* output channels in chunks: their stage tables on the stack */
        const int32_t n = out_c - o < EC_FC_CHUNK ? out_c - o : EC_FC_CHUNK;
        ec_neon_stage_tables(bias, q, o, n, fast, tb);
        for (r = 0; r < rows; r += EC_NEON_COLS) {
            const int32_t ncols = rows - r >= EC_NEON_COLS ? EC_NEON_COLS : rows - r;
            const int8_t *x[EC_NEON_COLS];
            int8_t *y[EC_NEON_COLS];
            for (c = 0; c < ncols; ++c) {
                x[c] = input + (r + c) * depth;
                y[c] = output + (r + c) * out_c + o;
                if (k8 != depth) {
                    ec_neon_copy(col + c * k8, x[c], depth);
                    x[c] = col + c * k8;
                }
            }
            ec_neon_gemm(weights + o * k8, k8, n, x, ncols, tb, q, fast, y);
        }
    }
}
