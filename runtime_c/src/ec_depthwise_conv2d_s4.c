/*
 * ec_depthwise_conv2d_s4: depthwise 2-D convolution, NHWC, with int4 weights (edgec_lowbit.h) and int8
 * activations. weights: k_h * k_w tap rows of out_c int4 values, (out_c + 1) / 2 bytes each. Output channel
 * oc = ic * multiplier + m reads input channel ic; acc = bias[oc] + sum over the window taps inside the input of
 * (x - in_zp) * w, then the int8 output stage.
 */
#include "edgec_internal.h"
#include "edgec_lowbit.h"

#define EC_DW_NAME ec_depthwise_conv2d_s4
#define EC_DW_STAGE_T ec_quant_s8
#define EC_DW_IN_T int8_t
#define EC_DW_W_T uint8_t
#define EC_DW_BIAS_T int32_t
#define EC_DW_OUT_T int8_t
#define EC_DW_ACC_T int32_t
#define EC_DW_STAGE                                                                                                    \
    const int32_t tap_bytes = (out_c + 1) / 2;                                                                         \
    const int32_t in_zp = q->in_zp, out_zp = q->out_zp, act_min = q->act_min, act_max = q->act_max;                    \
    const int32_t *const mult = q->mult;                                                                               \
    const int32_t *const shift = q->shift;                                                                             \
    const int32_t qstep = q->per_channel ? 1 : 0;
#define EC_DW_BEGIN
#define EC_DW_TAP_SIZE tap_bytes
#define EC_DW_W_ROW(ky) w_ch + ky * k_w * tap_bytes
/* the nibble of channel oc is the same in every tap row */
#define EC_DW_CHANNEL                                                                                                  \
    const uint8_t *w_ch = weights + (oc >> 1);                                                                         \
    const uint32_t hi = (uint32_t)(oc & 1) * 4u;
#define EC_DW_PRODUCT(x, w) ((x) - in_zp) * ec_s4_lo((uint32_t)(w) >> hi)
#define EC_DW_FINISH(acc, oc)                                                                                          \
    ec_output_s8(ec_requantize(acc, mult[oc * qstep], shift[oc * qstep]), out_zp, act_min, act_max)
#include "edgec_depthwise_direct.h"
