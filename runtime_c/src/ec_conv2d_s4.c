/*
 * ec_conv2d_s4: (grouped) 2-D convolution, NHWC, with int4 weights (edgec_lowbit.h) and int8 activations.
 * weights [out_c][k_h][k_w] rows of in_c / groups int4 values, each row starting on a byte (edgec_s4.h order).
 * With the DSP extension (Cortex-M4/M7/M33), 8 weights per SMLAD group of 4 (ec_dot_s4).
 * acc = bias[oc] + sum over the window taps inside the input of (x - in_zp) * w, then the int8 output stage.
 */
#include "edgec_s4.h"

#define EC_CONV_NAME ec_conv2d_s4
#define EC_CONV_STAGE_T ec_quant_s8
#define EC_CONV_IN_T int8_t
#define EC_CONV_W_T uint8_t
#define EC_CONV_BIAS_T int32_t
#define EC_CONV_OUT_T int8_t
#define EC_CONV_ACC_T int32_t
#define EC_CONV_TAP_SIZE ((ic_per_g + 1) / 2) /* bytes */
#define EC_CONV_STAGE                                                                                                  \
    const int32_t in_zp = q->in_zp, out_zp = q->out_zp, act_min = q->act_min, act_max = q->act_max;                    \
    const int32_t *const mult = q->mult;                                                                               \
    const int32_t *const shift = q->shift;                                                                             \
    const int32_t qstep = q->per_channel ? 1 : 0;
#define EC_CONV_BEGIN
#define EC_CONV_DOT(acc, x, w) (void)c, acc += ec_dot_s4(x, w, ic_per_g, in_zp) /* c: unused here */
#define EC_CONV_FINISH(acc, oc)                                                                                        \
    ec_output_s8(ec_requantize(acc, mult[oc * qstep], shift[oc * qstep]), out_zp, act_min, act_max)
#include "edgec_conv2d_direct.h"
