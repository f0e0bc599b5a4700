/* ec_avgpool_dsp_s8_tflm: ec_avgpool_dsp_s8 computing TensorFlow Lite Micro's arithmetic
 * (runtime_c/include/edgec_tflm.h). */
#define EC_TFLM 1
#include "edgec_tflm.h"
#define ec_avgpool_dsp_s8 ec_avgpool_dsp_s8_tflm
#include "ec_avgpool_dsp_s8.c"
