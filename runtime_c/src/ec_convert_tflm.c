/* ec_convert_tflm: ec_convert computing TensorFlow Lite Micro's arithmetic
 * (runtime_c/include/edgec_tflm.h). */
#define EC_TFLM 1
#include "edgec_tflm.h"
#define ec_convert ec_convert_tflm
#include "ec_convert.c"
