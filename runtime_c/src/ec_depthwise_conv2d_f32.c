/*
 * ec_depthwise_conv2d_f32: float depthwise 2-D convolution, NHWC, weights [k_h][k_w][out_c].
 * Output channel oc = ic * multiplier + m reads input channel ic;
 * out = clamp(bias[oc] + sum over the window taps inside the input of x * w, act_min, act_max).
 */
#include "edgec_internal.h"

#define EC_DW_NAME ec_depthwise_conv2d_f32
#define EC_DW_STAGE_T ec_act_f32
#define EC_DW_IN_T float
#define EC_DW_W_T float
#define EC_DW_BIAS_T float
#define EC_DW_OUT_T float
#define EC_DW_ACC_T float
#define EC_DW_STAGE float lo, hi;
#define EC_DW_BEGIN ec_act_bounds(q, &lo, &hi);
#define EC_DW_TAP_SIZE out_c
#define EC_DW_W_ROW(ky) weights + ky * k_w * out_c + oc
#define EC_DW_CHANNEL
#define EC_DW_PRODUCT(x, w) (x) * (w)
#define EC_DW_FINISH(acc, oc) ec_clamp_f32(acc, lo, hi)
#include "edgec_depthwise_direct.h"
