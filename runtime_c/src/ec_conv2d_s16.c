/*
 * ec_conv2d_s16: 16x8 (grouped) 2-D convolution, NHWC: int16 activations (zero point 0), int8 weights.
 * acc (int64) = bias[oc] + sum over the window taps inside the input of x * w, then
 * out = clamp(ec_requantize_s64(acc, mult[oc], shift[oc]), act_min, act_max).
 */
#include "edgec_internal.h"

#define EC_CONV_NAME ec_conv2d_s16
#define EC_CONV_STAGE_T ec_quant_s16
#define EC_CONV_IN_T int16_t
#define EC_CONV_W_T int8_t
#define EC_CONV_BIAS_T int64_t
#define EC_CONV_OUT_T int16_t
#define EC_CONV_ACC_T int64_t
#define EC_CONV_TAP_SIZE ic_per_g
#define EC_CONV_STAGE                                                                                                  \
    const int32_t act_min = q->act_min, act_max = q->act_max;                                                          \
    const int32_t *const mult = q->mult;                                                                               \
    const int32_t *const shift = q->shift;
#define EC_CONV_BEGIN
#define EC_CONV_DOT(acc, x, w)                                                                                         \
    for (c = 0; c < ic_per_g; ++c) {                                                                                   \
        acc += x[c] * w[c];                                                                                            \
    }
#define EC_CONV_FINISH(acc, oc) ec_output_s16(ec_requantize_s64(acc, mult[oc], shift[oc]), act_min, act_max)
#include "edgec_conv2d_direct.h"
