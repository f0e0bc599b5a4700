/*
 * ec_maxpool_f32: float max pooling, NHWC. out = clamp(max over the window taps inside the input, act_min,
 * act_max). A window with no tap inside the input yields clamp(-INFINITY).
 */
#include <math.h>

#include "edgec_internal.h"

void ec_maxpool_f32(const ec_conv_params *p, const ec_act_f32 *act, const float *input, float *output)
{
    const int32_t ch = p->in_c, in_size = p->in_h * p->in_w * p->in_c;
    const int32_t batch = p->batch, out_h = p->out_h, out_w = p->out_w;
    float lo, hi;
    int32_t b, oy, ox, c, r, k;

    ec_act_bounds(act, &lo, &hi);
    for (b = 0; b < batch; ++b) {
        for (oy = 0; oy < out_h; ++oy) {
            for (ox = 0; ox < out_w; ++ox) {
                const ec_pool_window w = ec_pool_window_at(p, NULL, oy, ox);
                const float *in = input + b * in_size + w.first;
                for (c = 0; c < ch; ++c) {
                    const float *row = in + c;
                    float m = -INFINITY;
                    for (r = 0; r < w.rows; ++r, row += w.row_step) {
                        for (k = 0; k < w.cols; ++k) {
                            m = row[k * w.col_step] > m ? row[k * w.col_step] : m;
                        }
                    }
                    *output++ = ec_clamp_f32(m, lo, hi);
                }
            }
        }
    }
}
