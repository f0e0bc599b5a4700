/* ec_conv2d_gather_mve_s8_tflm: ec_conv2d_gather_mve_s8 computing TensorFlow Lite Micro's arithmetic
 * (runtime_c/include/edgec_tflm.h). */
#define EC_TFLM 1
#include "edgec_tflm.h"
#define ec_conv2d_gather_mve_s8_get_buffer_size ec_conv2d_gather_mve_s8_tflm_get_buffer_size
#define ec_conv2d_gather_mve_s8 ec_conv2d_gather_mve_s8_tflm
#include "ec_conv2d_gather_mve_s8.c"
