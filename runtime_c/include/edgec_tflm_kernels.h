/*
 * edgec runtime: the kernels built with TensorFlow Lite Micro's arithmetic (runtime_c/include/edgec_tflm.h):
 * <kernel>_tflm takes the arguments of <kernel> (edgec.h, edgec_sparse.h) and computes TFLM's requantization (and,
 * for the average pool, TFLM's rounded average). Included by edgec_sparse.h.
 */
#ifndef EDGEC_TFLM_KERNELS_H
#define EDGEC_TFLM_KERNELS_H

#include "edgec.h"
#include "edgec_sparse.h"

#ifdef __cplusplus
extern "C" {
#endif

void ec_add_s8_tflm(const ec_broadcast_params *bp, ec_binary_op op, const ec_add_s8_params *q, const int8_t *a,
                    const int8_t *b, int8_t *output);
void ec_avgpool_s8_tflm(const ec_conv_params *p, const ec_avgpool_extra *x, int32_t zp, int32_t act_min,
                        int32_t act_max, const int8_t *input, int8_t *output);
void ec_avgpool_neon_s8_tflm(const ec_conv_params *p, const ec_avgpool_extra *x, int32_t zp, int32_t act_min,
                             int32_t act_max, const int8_t *input, int8_t *output);
void ec_avgpool_dsp_s8_tflm(const ec_conv_params *p, const ec_avgpool_extra *x, int32_t zp, int32_t act_min,
                            int32_t act_max, const int8_t *input, int8_t *output);
void ec_avgpool_mve_s8_tflm(const ec_conv_params *p, const ec_avgpool_extra *x, int32_t zp, int32_t act_min,
                            int32_t act_max, const int8_t *input, int8_t *output);
void ec_conv2d_1x1_mve_s8_tflm(const ec_conv_params *p, const ec_quant_s8 *q, const int8_t *input,
                               const int8_t *weights, const int32_t *bias, int8_t *output);
int32_t ec_conv2d_1x1_neon_s8_tflm_get_buffer_size(const ec_conv_params *p);
void ec_conv2d_1x1_neon_s8_tflm(const ec_conv_params *p, const ec_quant_s8 *q, const int8_t *input,
                                const int8_t *weights, const int32_t *bias, int8_t *output, void *scratch);
int32_t ec_conv2d_1x1_s8_tflm_get_buffer_size(const ec_conv_params *p);
void ec_conv2d_1x1_s8_tflm(const ec_conv_params *p, const ec_quant_s8 *q, const int8_t *input, const int8_t *weights,
                           const int32_t *bias, int8_t *output, void *scratch);
int32_t ec_conv2d_im2col_mve_s8_tflm_get_buffer_size(const ec_conv_params *p);
void ec_conv2d_im2col_mve_s8_tflm(const ec_conv_params *p, const ec_quant_s8 *q, const int8_t *input,
                                  const int8_t *weights, const int32_t *bias, int8_t *output, void *scratch);
int32_t ec_conv2d_gather_s8_tflm_get_buffer_size(const ec_conv_params *p);
void ec_conv2d_gather_s8_tflm(const ec_conv_params *p, const ec_quant_s8 *q, const int8_t *input,
                              const int8_t *weights, const int32_t *bias, int8_t *output, void *scratch);
int32_t ec_conv2d_gather_mve_s8_tflm_get_buffer_size(const ec_conv_params *p);
void ec_conv2d_gather_mve_s8_tflm(const ec_conv_params *p, const ec_quant_s8 *q, const int8_t *input,
                                  const int8_t *weights, const int32_t *bias, int8_t *output, void *scratch);
int32_t ec_conv2d_im2col_neon_s8_tflm_get_buffer_size(const ec_conv_params *p);
void ec_conv2d_im2col_neon_s8_tflm(const ec_conv_params *p, const ec_quant_s8 *q, const int8_t *input,
                                   const int8_t *weights, const int32_t *bias, int8_t *output, void *scratch);
int32_t ec_conv2d_im2col_s8_tflm_get_buffer_size(const ec_conv_params *p);
void ec_conv2d_im2col_s8_tflm(const ec_conv_params *p, const ec_quant_s8 *q, const int8_t *input, const int8_t *weights,
                              const int32_t *bias, int8_t *output, void *scratch);
int32_t ec_conv2d_lanes_neon_s8_tflm_get_buffer_size(const ec_conv_params *p);
void ec_conv2d_lanes_neon_s8_tflm(const ec_conv_params *p, const ec_quant_s8 *q, const int8_t *input,
                                  const int16_t *weights, const int32_t *bias, int8_t *output, void *scratch);
int32_t ec_conv2d_nm_s8_tflm_get_buffer_size(const ec_conv_params *p, int32_t n);
void ec_conv2d_nm_s8_tflm(const ec_conv_params *p, int32_t n, const ec_quant_s8 *q, const int8_t *input,
                          const uint8_t *index, const int8_t *values, const int32_t *bias, int8_t *output,
                          void *scratch);
void ec_conv2d_s8_tflm(const ec_conv_params *p, const ec_quant_s8 *q, const int8_t *input, const int8_t *weights,
                       const int32_t *bias, int8_t *output);
int32_t ec_conv2d_sparse_s8_tflm_get_buffer_size(const ec_conv_params *p);
void ec_conv2d_sparse_s8_tflm(const ec_conv_params *p, const ec_quant_s8 *q, const int8_t *input, const uint8_t *counts,
                              const uint8_t *blocks, const int32_t *bias, int8_t *output, void *scratch);
void ec_convert_tflm(int32_t size, const ec_convert_params *p, const void *input, void *output);
int32_t ec_depthwise_conv2d_3x3_neon_s8_tflm_get_buffer_size(const ec_conv_params *p);
void ec_depthwise_conv2d_3x3_neon_s8_tflm(const ec_conv_params *p, const ec_quant_s8 *q, const int8_t *input,
                                          const int8_t *weights, const int32_t *bias, int8_t *output, void *scratch);
int32_t ec_depthwise_conv2d_3x3_s8_tflm_get_buffer_size(const ec_conv_params *p);
void ec_depthwise_conv2d_3x3_s8_tflm(const ec_conv_params *p, const ec_quant_s8 *q, const int8_t *input,
                                     const int16_t *weights, const int32_t *bias, int8_t *output, void *scratch);
int32_t ec_depthwise_conv2d_3x3_planar_s8_tflm_get_buffer_size(const ec_conv_params *p);
void ec_depthwise_conv2d_3x3_planar_s8_tflm(const ec_conv_params *p, const ec_quant_s8 *q, const int8_t *input,
                                            const int16_t *weights, const int32_t *bias, int8_t *output,
                                            void *scratch);
void ec_depthwise_conv2d_mve_s8_tflm(const ec_conv_params *p, const ec_quant_s8 *q, const int8_t *input,
                                     const int8_t *weights, const int32_t *bias, const uint8_t *in_offsets,
                                     const int8_t *zp_row, int8_t *output);
int32_t ec_depthwise_conv2d_plane_mve_s8_tflm_get_buffer_size(const ec_conv_params *p, int32_t transposed);
void ec_depthwise_conv2d_plane_mve_s8_tflm(const ec_conv_params *p, const ec_quant_s8 *q, const int8_t *input,
                                           const int8_t *weights, const int32_t *bias, int32_t transposed,
                                           int8_t *output, void *scratch);
int32_t ec_depthwise_conv2d_neon_s8_tflm_get_buffer_size(const ec_conv_params *p);
void ec_depthwise_conv2d_neon_s8_tflm(const ec_conv_params *p, const ec_quant_s8 *q, const int8_t *input,
                                      const int8_t *weights, const int32_t *bias, int8_t *output, void *scratch);
void ec_depthwise_conv2d_packed_s8_tflm(const ec_conv_params *p, const ec_quant_s8 *q, const int8_t *input,
                                        const int16_t *weights, const int32_t *bias, int8_t *output);
void ec_depthwise_conv2d_s8_tflm(const ec_conv_params *p, const ec_quant_s8 *q, const int8_t *input,
                                 const int8_t *weights, const int32_t *bias, int8_t *output);
void ec_fully_connected_mve_s8_tflm(int32_t rows, int32_t depth, int32_t out_c, const ec_quant_s8 *q,
                                    const int8_t *input, const int8_t *weights, const int32_t *bias, int8_t *output);
int32_t ec_fully_connected_neon_s8_tflm_get_buffer_size(int32_t rows, int32_t depth);
void ec_fully_connected_neon_s8_tflm(int32_t rows, int32_t depth, int32_t out_c, const ec_quant_s8 *q,
                                     const int8_t *input, const int8_t *weights, const int32_t *bias, int8_t *output,
                                     void *scratch);
int32_t ec_fully_connected_nm_s8_tflm_get_buffer_size(int32_t rows, int32_t depth, int32_t out_c, int32_t n);
void ec_fully_connected_nm_s8_tflm(int32_t rows, int32_t depth, int32_t out_c, int32_t n, const ec_quant_s8 *q,
                                   const int8_t *input, const uint8_t *index, const int8_t *values, const int32_t *bias,
                                   int8_t *output, void *scratch);
int32_t ec_fully_connected_block4_s8_tflm_get_buffer_size(int32_t depth);
void ec_fully_connected_block4_s8_tflm(int32_t rows, int32_t depth, int32_t out_c, const ec_quant_s8 *q,
                                       const int8_t *input, const int8_t *weights, const int32_t *bias, int8_t *output,
                                       void *scratch, int32_t fast);
int32_t ec_fully_connected_packed_s8_tflm_get_buffer_size(int32_t rows, int32_t depth);
void ec_fully_connected_packed_s8_tflm(int32_t rows, int32_t depth, int32_t out_c, const ec_quant_s8 *q,
                                       const int8_t *input, const int8_t *weights, const int32_t *bias, int8_t *output,
                                       void *scratch);
void ec_fully_connected_s8_tflm(int32_t rows, int32_t depth, int32_t out_c, const ec_quant_s8 *q, const int8_t *input,
                                const int8_t *weights, const int32_t *bias, int8_t *output);
int32_t ec_fully_connected_sparse_s8_tflm_get_buffer_size(int32_t rows, int32_t depth, int32_t out_c);
void ec_fully_connected_sparse_s8_tflm(int32_t rows, int32_t depth, int32_t out_c, const ec_quant_s8 *q,
                                       const int8_t *input, const uint8_t *counts, const uint8_t *blocks,
                                       const int32_t *bias, int8_t *output, void *scratch);
void ec_fully_connected_sparse_gather_s8_tflm(int32_t rows, int32_t depth, int32_t out_c, int32_t words, int32_t fast,
                                              int32_t out_zp, int32_t act_min, int32_t act_max, const int8_t *input,
                                              const int32_t *stream, int8_t *output);
int32_t ec_fully_connected_block_sparse_s8_tflm_get_buffer_size(int32_t depth);
void ec_fully_connected_block_sparse_s8_tflm(int32_t rows, int32_t depth, int32_t out_c, const ec_quant_s8 *q,
                                             const int8_t *input, const int32_t *stream, const int32_t *bias,
                                             int8_t *output, void *scratch, int32_t fast);
void ec_mul_s8_tflm(const ec_broadcast_params *bp, const ec_mul_s8_params *q, const int8_t *a, const int8_t *b,
                    int8_t *output);

#ifdef __cplusplus
}
#endif

#endif /* EDGEC_TFLM_KERNELS_H */
