/*
 * ec_depthwise_conv2d_q7: Q-format q7 depthwise 2-D convolution, NHWC, weights [k_h][k_w][out_c], zero points 0.
 * Output channel oc = ic * multiplier + m reads input channel ic; acc = bias[oc] + sum over the window taps inside
 * the input of x * w, then a rounding shift per output channel (ec_shift_round) and a clamp.
 */
#include "edgec_internal.h"
#include "edgec_lowbit.h"

#define EC_DW_NAME ec_depthwise_conv2d_q7
#define EC_DW_STAGE_T ec_quant_q7
#define EC_DW_IN_T int8_t
#define EC_DW_W_T int8_t
#define EC_DW_BIAS_T int32_t
#define EC_DW_OUT_T int8_t
#define EC_DW_ACC_T int32_t
#define EC_DW_STAGE                                                                                                    \
    const int32_t act_min = q->act_min, act_max = q->act_max;                                                          \
    const int8_t *const shift = q->shift;                                                                              \
    const int32_t qstep = q->per_channel ? 1 : 0;
#define EC_DW_BEGIN
#define EC_DW_TAP_SIZE out_c
#define EC_DW_W_ROW(ky) weights + ky * k_w * out_c + oc
#define EC_DW_CHANNEL
#define EC_DW_PRODUCT(x, w) (x) * (w)
#define EC_DW_FINISH(acc, oc) (int8_t)ec_clamp_i32(ec_shift_round(acc, shift[oc * qstep]), act_min, act_max)
#include "edgec_depthwise_direct.h"
