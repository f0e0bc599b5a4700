/*
 * edgec runtime: sparse fully connected kernels (also 1x1 convolutions over NHWC pixels, which are fully connected
 * layers over rows = batch * height * width). Same conventions as edgec.h; the results equal
 * ec_fully_connected_s8 / ec_fully_connected_f32 on the dense matrix with the zeros put back (s8 bit for bit; f32
 * adds the same nonzero products in the same column order).
 *
 * Row-sparse format (unstructured sparsity). W [N][K] (N = out_c, K = depth); the columns are cut into segments of
 * 256, S = (K + 255) / 256 of them. Entries come in blocks of 4. For every segment s and row n, in that order, the
 * nonzeros of row n in columns 256 s .. 256 s + 255, ascending by column, padded with entries of value 0 and index 0
 * to a whole number of blocks; counts[s * N + n] (uint8) is that number of blocks (at most 64). An entry is an
 * index (column - 256 s, uint8) and a value.
 *   s8: one stream of 8-byte blocks: the 4 indices, then the 4 values (int8).
 *   f32: index (uint8) and values (float) are separate streams in the same order.
 * The padding entries add 0 * x, as the dense kernel does for every zero weight.
 */
#ifndef EDGEC_SPARSE_H
#define EDGEC_SPARSE_H

#include "edgec.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Row-sparse weights. s8: scratch (4-byte aligned) holds depth int16 values x - in_zp and out_c accumulators. */
int32_t ec_fully_connected_sparse_s8_get_buffer_size(int32_t depth, int32_t out_c);
void ec_fully_connected_sparse_s8(int32_t rows, int32_t depth, int32_t out_c, const ec_quant_s8 *q,
                                  const int8_t *input, const uint8_t *counts, const uint8_t *blocks,
                                  const int32_t *bias, int8_t *output, void *scratch);
void ec_fully_connected_sparse_f32(int32_t rows, int32_t depth, int32_t out_c, const ec_act_f32 *act,
                                   const float *input, const uint8_t *counts, const uint8_t *index,
                                   const float *values, const float *bias, float *output);

#ifdef __cplusplus
}
#endif

#endif /* EDGEC_SPARSE_H */
