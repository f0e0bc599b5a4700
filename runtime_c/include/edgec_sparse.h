/*
 * edgec runtime: sparse fully connected and convolution kernels. Same conventions as edgec.h. A fully connected
 * layer has W [N][K] (N = out_c, K = depth); a convolution (one group, NHWC) has W [out_c][k_h][k_w][in_c], i.e. N =
 * out_c rows of K = k_h * k_w * in_c columns in im2col order, and runs as a fully connected layer over the
 * im2col column of every output pixel (built in scratch, padding taps as zeros). A 1x1 convolution with stride 1
 * and no padding is a fully connected layer over rows = batch * height * width pixels.
 * The results equal the dense kernels' (ec_fully_connected_s8/_f32, ec_conv2d_s8/_f32) on the dense matrix with the
 * zeros put back: s8 bit for bit; f32 adds the same nonzero products in the same column order (plus 0 * x terms).
 *
 * Row-sparse format (unstructured sparsity). The columns are cut into segments of 256, S = (K + 255) / 256 of
 * them. Entries come in blocks of 4. For every segment s and row n, in that order, the nonzeros of row n in columns
 * 256 s .. 256 s + 255, ascending by column, padded with entries of value 0 and index 0 to a whole number of blocks;
 * counts[s * N + n] (uint8) is that number of blocks (at most 64). An entry is an index (column - 256 s, uint8) and
 * a value.
 *   s8: one stream of 8-byte blocks: the 4 indices, then the 4 values (int8).
 *   f32: index (uint8) and values (float) are separate streams in the same order.
 *
 * N:4 format (structured sparsity, n = 1 or 2): every aligned group of 4 columns holds at most n nonzeros. A row is
 * stored as blocks of 4 entries covering 4 / n groups, i.e. span = 16 / n columns (n = 2: two groups of 4, n = 1:
 * four groups of 4); B = (K + span - 1) / span blocks per row (columns from K to B * span are zeros). Per group its
 * n entries, ascending by column (a group with fewer nonzeros is padded with value-0 entries): the in-group index
 * (0..3) and the value. Entry j of a block belongs to group j / n of the block, so its column is
 * block * span + 4 (j / n) + index.
 *   index: uint8 [N][B], entry j's index in bits 2j, 2j + 1 (2 bits per entry).
 *   values: [N][B][4] int8 or float, entry order.
 * s8 and f32: 1 + 4 bytes (resp. 1 + 16) per block; 2:4 int8 needs 62.5% of the dense bytes, 1:4 31.25%.
 *
 * Row-group format (unstructured sparsity, s8 fully connected, for speed: 6 bytes per entry). The rows are taken four
 * at a time (a group; the build sorts them by their number of nonzeros, so that a group's rows are about equally
 * long, and repeats the last row to fill the last group), and a group's rows are walked together, one entry of each
 * per step. One stream of int32 words, per group:
 *   head (EC_GATHER_HEAD words): 24 * steps + steps % 4 (the steps' bytes, their number mod 4 in the low bits), then
 *     the 4 lanes' biases with the input zero point folded in, bias[oc] - in_zp * (sum of row oc's weights);
 *   steps (EC_GATHER_WORDS words each): the 4 lanes' column indices, then the weights of lanes 0 and 2 as the low and
 *     high int16 halves of one word, those of lanes 1 and 3 in the next; a lane with fewer nonzeros than the group's
 *     longest row is padded with entries of weight 0 (column 0);
 *   tail (EC_GATHER_TAIL words): the 4 lanes' multipliers, their ~shift (= -shift - 1), their output channels.
 * With fast = 1 the weights and biases are stored doubled (the accumulator is the 2 acc ec_requant_fast computes;
 * |acc| < 2^30). A row without nonzero weights has the constant output c = requantize(bias): the build stores it as
 * multiplier 2^30, shift -1 and bias 4 (c - out_zp), which both arithmetics map to c exactly.
 */
#ifndef EDGEC_SPARSE_H
#define EDGEC_SPARSE_H

#include "edgec.h"

#define EC_GATHER_HEAD 5  /* words before a row group's steps (see above) */
#define EC_GATHER_WORDS 6 /* words per step */
#define EC_GATHER_TAIL 12 /* words after a row group's steps */

#ifdef __cplusplus
extern "C" {
#endif

/* Row-sparse weights. s8: scratch (4-byte aligned) holds depth int16 values x - in_zp (rounded up to 4 bytes) and
 * out_c accumulators, twice when rows >= 2 (two rows go through the weights at once). */
int32_t ec_fully_connected_sparse_s8_get_buffer_size(int32_t rows, int32_t depth, int32_t out_c);
void ec_fully_connected_sparse_s8(int32_t rows, int32_t depth, int32_t out_c, const ec_quant_s8 *q,
                                  const int8_t *input, const uint8_t *counts, const uint8_t *blocks,
                                  const int32_t *bias, int8_t *output, void *scratch);
/* Row-group weights: a stream of `words` int32 words; fast = 1 when the build checked that ec_requant_fast applies
 * to every lane (a negative shift, accumulators below 2^30 in magnitude) and doubled the weights and biases. No
 * scratch. */
void ec_fully_connected_sparse_gather_s8(int32_t rows, int32_t depth, int32_t out_c, int32_t words, int32_t fast,
                                         int32_t out_zp, int32_t act_min, int32_t act_max, const int8_t *input,
                                         const int32_t *stream, int8_t *output);
/* Block-sparse weights: tiles of 4 rows x 4 columns with a nonzero weight, per group of 4 rows the tile count, then
 * per tile the byte offset 8 g of its columns 4g .. 4g + 3 and per row two words of int16 weight pairs (columns 0
 * and 2, then 1 and 3; low half first); fast = 1 when the build checked ec_fast_ok(bias, q, out_c, K4). Scratch: one
 * int16 column of depth rounded up to 4. */
int32_t ec_fully_connected_block_sparse_s8_get_buffer_size(int32_t depth);
void ec_fully_connected_block_sparse_s8(int32_t rows, int32_t depth, int32_t out_c, const ec_quant_s8 *q,
                                        const int8_t *input, const int32_t *stream, const int32_t *bias,
                                        int8_t *output, void *scratch, int32_t fast);
void ec_fully_connected_sparse_f32(int32_t rows, int32_t depth, int32_t out_c, const ec_act_f32 *act,
                                   const float *input, const uint8_t *counts, const uint8_t *index,
                                   const float *values, const float *bias, float *output);

/* N:4 weights (n = 1 or 2). s8: scratch holds B * span int16 values x - in_zp (zeros past depth) and out_c
 * accumulators, twice when rows >= 2; f32 needs none. */
int32_t ec_fully_connected_nm_s8_get_buffer_size(int32_t rows, int32_t depth, int32_t out_c, int32_t n);
void ec_fully_connected_nm_s8(int32_t rows, int32_t depth, int32_t out_c, int32_t n, const ec_quant_s8 *q,
                              const int8_t *input, const uint8_t *index, const int8_t *values, const int32_t *bias,
                              int8_t *output, void *scratch);
void ec_fully_connected_nm_f32(int32_t rows, int32_t depth, int32_t out_c, int32_t n, const ec_act_f32 *act,
                               const float *input, const uint8_t *index, const float *values, const float *bias,
                               float *output);

/* Convolutions (groups == 1, any kernel size, stride, padding, dilation) with row-sparse weights. Scratch: the
 * im2col column of one output pixel (s8: int16 x - in_zp, then out_c accumulators, twice when there are two pixels
 * or more: s8 kernels take two pixels at a time; f32: floats). */
int32_t ec_conv2d_sparse_s8_get_buffer_size(const ec_conv_params *p);
void ec_conv2d_sparse_s8(const ec_conv_params *p, const ec_quant_s8 *q, const int8_t *input, const uint8_t *counts,
                         const uint8_t *blocks, const int32_t *bias, int8_t *output, void *scratch);
int32_t ec_conv2d_sparse_f32_get_buffer_size(const ec_conv_params *p);
void ec_conv2d_sparse_f32(const ec_conv_params *p, const ec_act_f32 *act, const float *input, const uint8_t *counts,
                          const uint8_t *index, const float *values, const float *bias, float *output,
                          void *scratch);

/* Convolutions with N:4 weights; scratch as above, the column padded with zeros to B * span values. */
int32_t ec_conv2d_nm_s8_get_buffer_size(const ec_conv_params *p, int32_t n);
void ec_conv2d_nm_s8(const ec_conv_params *p, int32_t n, const ec_quant_s8 *q, const int8_t *input,
                     const uint8_t *index, const int8_t *values, const int32_t *bias, int8_t *output, void *scratch);
int32_t ec_conv2d_nm_f32_get_buffer_size(const ec_conv_params *p, int32_t n);
void ec_conv2d_nm_f32(const ec_conv_params *p, int32_t n, const ec_act_f32 *act, const float *input,
                      const uint8_t *index, const float *values, const float *bias, float *output, void *scratch);

#ifdef __cplusplus
}
#endif

#include "edgec_tflm_kernels.h" /* the TFLM builds of these and of the dense kernels */

#endif /* EDGEC_SPARSE_H */
