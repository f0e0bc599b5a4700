/*
 * ec_avgpool_s8: int8 average pooling, NHWC; input and output share scale and zero point.
 * acc = sum of (x - zp) over the window taps inside the input; divisor = taps inside the input, or with
 * count_include_pad taps inside [-pad, in + pad_end); out = clamp(rdiv(acc, divisor) + zp, act_min, act_max),
 * rdiv rounding to nearest with ties to even (as ONNX QuantizeLinear rounds the float average). A window with
 * divisor 0 yields clamp(zp). With x->mult != 0 the output has its own scale and zero point:
 * out = clamp(ec_requantize(acc, mult, shift) + out_zp, act_min, act_max) (1 / divisor folded into mult).
 * Compiled with EC_TFLM (ec_avgpool_s8_tflm.c), TFLM's AVERAGE_POOL_2D: called with zp = 0 and mult = 0 (the sum of
 * the stored int8 values over the taps inside the input, the output keeping the input's scale), rdiv rounds ties
 * away from zero: (acc + d / 2) / d for acc > 0, else (acc - d / 2) / d, truncating.
 */
#include "edgec_internal.h"

void ec_avgpool_s8(const ec_conv_params *p, const ec_avgpool_extra *x, int32_t zp, int32_t act_min,
                   int32_t act_max, const int8_t *input, int8_t *output)
{
    /* Parameters are copied to locals: stores through int8_t * may alias them otherwise. */
    const int32_t ch = p->in_c, in_size = p->in_h * p->in_w * p->in_c;
    const int32_t batch = p->batch, out_h = p->out_h, out_w = p->out_w;
    const int32_t mult = x->mult, shift = x->shift, out_zp = mult != 0 ? x->out_zp : zp;
    int32_t b, oy, ox, c;

    for (b = 0; b < batch; ++b) {
        for (oy = 0; oy < out_h; ++oy) {
            for (ox = 0; ox < out_w; ++ox) {
                const ec_pool_window w = ec_pool_window_at(p, x, oy, ox);
                const int8_t *in = input + b * in_size + w.first;
                const int32_t base = -w.rows * w.cols * zp; /* sum(x - zp) = sum(x) + base */
                for (c = 0; c < ch; ++c) {
                    *output++ = ec_avgpool_out(ec_pool_sum_s8(in + c, &w) + base, w.divisor, mult, shift, out_zp,
                                               act_min, act_max);
                }
            }
        }
    }
}
