/*
 * ec_avgpool_f32: float average pooling, NHWC.
 * out = clamp(sum of x over the window taps inside the input / divisor, act_min, act_max); divisor = taps inside
 * the input, or with count_include_pad taps inside [-pad, in + pad_end). A window with divisor 0 yields clamp(0).
 */
#include "edgec_internal.h"

void ec_avgpool_f32(const ec_conv_params *p, const ec_avgpool_extra *x, const ec_act_f32 *act, const float *input,
                    float *output)
{
    const int32_t ch = p->in_c, in_size = p->in_h * p->in_w * p->in_c;
    const int32_t batch = p->batch, out_h = p->out_h, out_w = p->out_w;
    float lo, hi;
    int32_t b, oy, ox, c, r, k;

    ec_act_bounds(act, &lo, &hi);
    for (b = 0; b < batch; ++b) {
        for (oy = 0; oy < out_h; ++oy) {
            for (ox = 0; ox < out_w; ++ox) {
                const ec_pool_window w = ec_pool_window_at(p, x, oy, ox);
                const float *in = input + b * in_size + w.first;
                for (c = 0; c < ch; ++c) {
                    const float *row = in + c;
                    float acc = 0.0f;
                    for (r = 0; r < w.rows; ++r, row += w.row_step) {
                        for (k = 0; k < w.cols; ++k) {
                            acc += row[k * w.col_step];
                        }
                    }
                    *output++ = ec_clamp_f32(w.divisor > 0 ? acc / (float)w.divisor : 0.0f, lo, hi);
                }
            }
        }
    }
}
