/*
 * ec_avgpool_s16: int16 average pooling, NHWC; input and output share scale and zero point.
 * acc = sum of (x - zp) over the window taps inside the input; divisor = taps inside the input, or with
 * count_include_pad taps inside [-pad, in + pad_end); out = clamp(rdiv(acc, divisor) + zp, act_min, act_max),
 * rdiv rounding to nearest with ties to even (as ONNX QuantizeLinear rounds the float average). A window with
 * divisor 0 yields clamp(zp).
 */
#include "edgec_internal.h"

void ec_avgpool_s16(const ec_conv_params *p, const ec_avgpool_extra *x, int32_t zp, int32_t act_min,
                    int32_t act_max, const int16_t *input, int16_t *output)
{
    /* Parameters are copied to locals: stores through int16_t * may alias them otherwise. */
    const int32_t ch = p->in_c, in_size = p->in_h * p->in_w * p->in_c;
    const int32_t batch = p->batch, out_h = p->out_h, out_w = p->out_w;
    int32_t b, oy, ox, c, r, k;

    for (b = 0; b < batch; ++b) {
        for (oy = 0; oy < out_h; ++oy) {
            for (ox = 0; ox < out_w; ++ox) {
                const ec_pool_window w = ec_pool_window_at(p, x, oy, ox);
                const int16_t *in = input + b * in_size + w.first;
                for (c = 0; c < ch; ++c) {
                    const int16_t *row = in + c;
                    int32_t acc = -w.rows * w.cols * zp;
                    for (r = 0; r < w.rows; ++r, row += w.row_step) {
                        for (k = 0; k < w.cols; ++k) {
                            acc += row[k * w.col_step];
                        }
                    }
                    if (w.divisor > 0) {
                        acc = ec_div_round_even(acc, w.divisor);
                    }
                    *output++ = ec_output_i16(acc, zp, act_min, act_max);
                }
            }
        }
    }
}
