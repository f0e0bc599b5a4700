/*
 * ec_depthwise_conv2d_s16: 16x8 depthwise 2-D convolution, NHWC, weights [k_h][k_w][out_c], zero points 0.
 * Output channel oc = ic * multiplier + m reads input channel ic; acc (int64) = bias[oc] + sum over the window taps
 * inside the input of x * w, then out = clamp(ec_requantize_s64(acc, mult[oc], shift[oc]), act_min, act_max).
 */
#include "edgec_internal.h"

#define EC_DW_NAME ec_depthwise_conv2d_s16
#define EC_DW_STAGE_T ec_quant_s16
#define EC_DW_IN_T int16_t
#define EC_DW_W_T int8_t
#define EC_DW_BIAS_T int64_t
#define EC_DW_OUT_T int16_t
#define EC_DW_ACC_T int64_t
#define EC_DW_STAGE                                                                                                    \
    const int32_t act_min = q->act_min, act_max = q->act_max;                                                          \
    const int32_t *const mult = q->mult;                                                                               \
    const int32_t *const shift = q->shift;
#define EC_DW_BEGIN
#define EC_DW_TAP_SIZE out_c
#define EC_DW_W_ROW(ky) weights + ky * k_w * out_c + oc
#define EC_DW_CHANNEL
#define EC_DW_PRODUCT(x, w) (x) * (w)
#define EC_DW_FINISH(acc, oc) ec_output_s16(ec_requantize_s64(acc, mult[oc], shift[oc]), act_min, act_max)
#include "edgec_depthwise_direct.h"
