/*
 * ec_conv2d_f32: float (grouped) 2-D convolution, NHWC.
 * out = clamp(bias[oc] + sum over the window taps inside the input of x * w, act_min, act_max).
 */
#include "edgec_internal.h"

#define EC_CONV_NAME ec_conv2d_f32
#define EC_CONV_STAGE_T ec_act_f32
#define EC_CONV_IN_T float
#define EC_CONV_W_T float
#define EC_CONV_BIAS_T float
#define EC_CONV_OUT_T float
#define EC_CONV_ACC_T float
#define EC_CONV_TAP_SIZE ic_per_g
#define EC_CONV_STAGE float lo, hi;
#define EC_CONV_BEGIN ec_act_bounds(q, &lo, &hi);
#define EC_CONV_DOT(acc, x, w)                                                                                         \
    for (c = 0; c < ic_per_g; ++c) {                                                                                   \
        acc += x[c] * w[c];                                                                                            \
    }
#define EC_CONV_FINISH(acc, oc) ec_clamp_f32(acc, lo, hi)
#include "edgec_conv2d_direct.h"
