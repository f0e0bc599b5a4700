/*
 * ec_conv2d_s4: (grouped) 2-D convolution, NHWC, with int4 weights (edgec_lowbit.h) and int8 activations.
 * weights [out_c][k_h][k_w] rows of in_c / groups int4 values, each row starting on a byte (edgec_s4.h order).
 * With the DSP extension (Cortex-M4/M7/M33), 8 weights per SMLAD group of 4 (ec_dot_s4).
 * acc = bias[oc] + sum over the window taps inside the input of (x - in_zp) * w, then the int8 output stage.
 */
#include "edgec_s4.h"

void ec_conv2d_s4(const ec_conv_params *p, const ec_quant_s8 *q, const int8_t *input, const uint8_t *weights,
                  const int32_t *bias, int8_t *output)
{
    /* Parameters are copied to locals: stores through int8_t * may alias them otherwise. */
    const int32_t in_h = p->in_h, in_w = p->in_w, in_c = p->in_c;
    const int32_t k_h = p->k_h, k_w = p->k_w, dil_h = p->dil_h, dil_w = p->dil_w;
    const int32_t groups = p->groups > 0 ? p->groups : 1;
    const int32_t ic_per_g = in_c / groups;
    const int32_t oc_per_g = p->out_c / groups;
    const int32_t tap_bytes = (ic_per_g + 1) / 2;
    const int32_t w_oc_bytes = k_h * k_w * tap_bytes;
    const int32_t in_row = in_w * in_c;
    const int32_t in_zp = q->in_zp, out_zp = q->out_zp, act_min = q->act_min, act_max = q->act_max;
    const int32_t *const mult = q->mult;
    const int32_t *const shift = q->shift;
    const int32_t qstep = q->per_channel ? 1 : 0;
    const int32_t batch = p->batch, out_h = p->out_h, out_w = p->out_w;
    const int32_t stride_h = p->stride_h, stride_w = p->stride_w, pad_top = p->pad_top, pad_left = p->pad_left;
    int32_t b, oy, ox, g, j, ky, kx;

    for (b = 0; b < batch; ++b) {
        const int8_t *in_b = input + b * in_h * in_row;
        for (oy = 0; oy < out_h; ++oy) {
            const int32_t iy0 = oy * stride_h - pad_top;
            int32_t ky0, ky1;
            ec_window_range(iy0, dil_h, k_h, in_h, &ky0, &ky1);
            for (ox = 0; ox < out_w; ++ox) {
                const int32_t ix0 = ox * stride_w - pad_left;
                int32_t kx0, kx1;
                int32_t oc = 0;
                ec_window_range(ix0, dil_w, k_w, in_w, &kx0, &kx1);
                for (g = 0; g < groups; ++g) {
                    const int8_t *in_g = in_b + g * ic_per_g;
                    for (j = 0; j < oc_per_g; ++j, ++oc) {
                        const uint8_t *w_oc = weights + oc * w_oc_bytes;
                        int32_t acc = bias != NULL ? bias[oc] : 0;
                        for (ky = ky0; ky < ky1; ++ky) {
                            const int8_t *x_row = in_g + (iy0 + ky * dil_h) * in_row;
                            for (kx = kx0; kx < kx1; ++kx) {
                                const int8_t *x = x_row + (ix0 + kx * dil_w) * in_c;
                                acc += ec_dot_s4(x, w_oc + (ky * k_w + kx) * tap_bytes, ic_per_g, in_zp);
                            }
                        }
                        *output++ = ec_output_s8(ec_requantize(acc, mult[oc * qstep], shift[oc * qstep]), out_zp,
                                                 act_min, act_max);
                    }
                }
            }
        }
    }
}
