/*
 * ec_conv2d_s8: int8 (grouped) 2-D convolution, NHWC.
 * acc = bias[oc] + sum over the window taps inside the input of (x - in_zp) * w, then requantize per output
 * channel, add out_zp and clamp to [act_min, act_max].
 */
#include "edgec_internal.h"

#define EC_CONV_NAME ec_conv2d_s8
#define EC_CONV_STAGE_T ec_quant_s8
#define EC_CONV_IN_T int8_t
#define EC_CONV_W_T int8_t
#define EC_CONV_BIAS_T int32_t
#define EC_CONV_OUT_T int8_t
#define EC_CONV_ACC_T int32_t
#define EC_CONV_TAP_SIZE ic_per_g
#define EC_CONV_STAGE                                                                                                  \
    const int32_t in_zp = q->in_zp, out_zp = q->out_zp, act_min = q->act_min, act_max = q->act_max;                    \
    const int32_t *const mult = q->mult;                                                                               \
    const int32_t *const shift = q->shift;                                                                             \
    const int32_t qstep = q->per_channel ? 1 : 0;
#define EC_CONV_BEGIN
#define EC_CONV_DOT(acc, x, w)                                                                                         \
    for (c = 0; c < ic_per_g; ++c) {                                                                                   \
        acc += (x[c] - in_zp) * w[c];                                                                                  \
    }
#define EC_CONV_FINISH(acc, oc)                                                                                        \
    ec_output_s8(ec_requantize(acc, mult[oc * qstep], shift[oc * qstep]), out_zp, act_min, act_max)
#include "edgec_conv2d_direct.h"
