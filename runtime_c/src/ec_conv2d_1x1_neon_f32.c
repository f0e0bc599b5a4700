/*
 * ec_conv2d_1x1_neon_f32: float 1x1 convolution without padding (groups == 1, any stride), NHWC, as a matrix
 * product for NEON (edgec_neon_f32.h): weights in the blocked layout [out_c4 / 4][in_c][4], bias padded to out_c4.
 * Four pixels by 4 output channels per loop, each pixel's channels read straight from the input. Plain C elsewhere,
 * which sums in ec_conv2d_f32's order.
 */
#include "edgec_neon_f32.h"

void ec_conv2d_1x1_neon_f32(const ec_conv_params *p, const ec_act_f32 *act, const float *input, const float *weights,
                            const float *bias, float *output)
{
    const int32_t out_w = p->out_w, hw = p->out_h * p->out_w, npix = p->batch * hw;
    const int32_t in_c = p->in_c, out_c = p->out_c;
    float lo, hi;
    int32_t pix, i;

    ec_act_bounds(act, &lo, &hi);
    for (pix = 0; pix < npix; pix += EC_NEON_F32_ROWS) {
        const int32_t n = npix - pix < EC_NEON_F32_ROWS ? npix - pix : EC_NEON_F32_ROWS;
        const float *x[EC_NEON_F32_ROWS];
        for (i = 0; i < EC_NEON_F32_ROWS; ++i) {
            const int32_t q = pix + (i < n ? i : 0), b = q / hw, oy = (q % hw) / out_w, ox = q % out_w;
            x[i] = input + ((b * p->in_h + oy * p->stride_h) * p->in_w + ox * p->stride_w) * in_c;
        }
        ec_neon_f32_rows(n, in_c, out_c, x, weights, bias, lo, hi, output + pix * out_c, out_c);
    }
}
