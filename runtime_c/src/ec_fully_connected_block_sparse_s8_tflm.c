/* ec_fully_connected_block_sparse_s8_tflm: ec_fully_connected_block_sparse_s8 computing TensorFlow Lite Micro's
 * arithmetic (runtime_c/include/edgec_tflm.h). */
#define EC_TFLM 1
#include "edgec_tflm.h"
#define ec_fully_connected_block_sparse_s8_get_buffer_size ec_fully_connected_block_sparse_s8_tflm_get_buffer_size
#define ec_fully_connected_block_sparse_s8 ec_fully_connected_block_sparse_s8_tflm
#include "ec_fully_connected_block_sparse_s8.c"
