/*
 * ec_conv2d_q7: Q-format q7 (grouped) 2-D convolution, NHWC, zero points 0.
 * acc = bias[oc] + sum over the window taps inside the input of x * w, then a rounding shift per output channel
 * (ec_shift_round) and a clamp to [act_min, act_max]. No multiplier in the output stage.
 */
#include "edgec_internal.h"
#include "edgec_lowbit.h"

#define EC_CONV_NAME ec_conv2d_q7
#define EC_CONV_STAGE_T ec_quant_q7
#define EC_CONV_IN_T int8_t
#define EC_CONV_W_T int8_t
#define EC_CONV_BIAS_T int32_t
#define EC_CONV_OUT_T int8_t
#define EC_CONV_ACC_T int32_t
#define EC_CONV_TAP_SIZE ic_per_g
#define EC_CONV_STAGE                                                                                                  \
    const int32_t act_min = q->act_min, act_max = q->act_max;                                                          \
    const int8_t *const shift = q->shift;                                                                              \
    const int32_t qstep = q->per_channel ? 1 : 0;
#define EC_CONV_BEGIN
#define EC_CONV_DOT(acc, x, w)                                                                                         \
    for (c = 0; c < ic_per_g; ++c) {                                                                                   \
        acc += x[c] * w[c];                                                                                            \
    }
#define EC_CONV_FINISH(acc, oc) (int8_t)ec_clamp_i32(ec_shift_round(acc, shift[oc * qstep]), act_min, act_max)
#include "edgec_conv2d_direct.h"
