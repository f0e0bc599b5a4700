/*
 * ec_maxpool_s16: int16 max pooling, NHWC. out = clamp(max over the window taps inside the input, act_min, act_max);
 * the output keeps the input's scale and zero point. A window with no tap inside the input yields act_min.
 */
#include "edgec_internal.h"

void ec_maxpool_s16(const ec_conv_params *p, int32_t act_min, int32_t act_max, const int16_t *input,
                    int16_t *output)
{
    /* Parameters are copied to locals: stores through int16_t * may alias them otherwise. */
    const int32_t ch = p->in_c, in_size = p->in_h * p->in_w * p->in_c;
    const int32_t batch = p->batch, out_h = p->out_h, out_w = p->out_w;
    int32_t b, oy, ox, c, r, k;

    for (b = 0; b < batch; ++b) {
        for (oy = 0; oy < out_h; ++oy) {
            for (ox = 0; ox < out_w; ++ox) {
                const ec_pool_window w = ec_pool_window_at(p, NULL, oy, ox);
                const int16_t *in = input + b * in_size + w.first;
                for (c = 0; c < ch; ++c) {
                    const int16_t *row = in + c;
                    int32_t m = -32768;
                    for (r = 0; r < w.rows; ++r, row += w.row_step) {
                        for (k = 0; k < w.cols; ++k) {
                            m = row[k * w.col_step] > m ? row[k * w.col_step] : m;
                        }
                    }
                    *output++ = (int16_t)ec_clamp_i32(m, act_min, act_max);
                }
            }
        }
    }
}
