/*
 * ec_depthwise_conv2d_s8: int8 depthwise 2-D convolution, NHWC, weights [k_h][k_w][out_c].
 * Output channel oc = ic * multiplier + m reads input channel ic; acc = bias[oc] + sum over the window taps
 * inside the input of (x - in_zp) * w, then requantize per output channel, add out_zp and clamp.
 */
#include "edgec_internal.h"

#define EC_DW_NAME ec_depthwise_conv2d_s8
#define EC_DW_STAGE_T ec_quant_s8
#define EC_DW_IN_T int8_t
#define EC_DW_W_T int8_t
#define EC_DW_BIAS_T int32_t
#define EC_DW_OUT_T int8_t
#define EC_DW_ACC_T int32_t
#define EC_DW_STAGE                                                                                                    \
    const int32_t in_zp = q->in_zp, out_zp = q->out_zp, act_min = q->act_min, act_max = q->act_max;                    \
    const int32_t *const mult = q->mult;                                                                               \
    const int32_t *const shift = q->shift;                                                                             \
    const int32_t qstep = q->per_channel ? 1 : 0;
#define EC_DW_BEGIN
#define EC_DW_TAP_SIZE out_c
#define EC_DW_W_ROW(ky) weights + ky * k_w * out_c + oc
#define EC_DW_CHANNEL
#define EC_DW_PRODUCT(x, w) ((x) - in_zp) * (w)
#define EC_DW_FINISH(acc, oc)                                                                                          \
    ec_output_s8(ec_requantize(acc, mult[oc * qstep], shift[oc * qstep]), out_zp, act_min, act_max)
#include "edgec_depthwise_direct.h"
