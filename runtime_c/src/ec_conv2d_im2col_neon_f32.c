/*
 * ec_conv2d_im2col_neon_f32: float 2-D convolution (groups == 1, any kernel, stride, padding, dilation), NHWC, for
 * NEON (edgec_neon_f32.h): the windows of 4 output pixels are copied into the scratch buffer as columns of
 * K = k_h * k_w * in_c floats in [kh][kw][ic] order (taps in the padding as zeros, whose products add nothing), then
 * multiplied with the weights in the blocked layout [out_c4 / 4][K][4] (bias padded to out_c4), 4 pixels by 4
 * output channels per loop. Plain C elsewhere, which sums the taps inside the input in ec_conv2d_f32's order.
 */
#include "edgec_neon_f32.h"

int32_t ec_conv2d_im2col_neon_f32_get_buffer_size(const ec_conv_params *p)
{
    return EC_NEON_F32_ROWS * p->k_h * p->k_w * p->in_c * (int32_t)sizeof(float);
}

/* Copy the window of output pixel (b, oy, ox) into col. */
static void im2col(const ec_conv_params *p, const float *input, int32_t b, int32_t oy, int32_t ox, float *col)
{
    const int32_t in_c = p->in_c, iy0 = oy * p->stride_h - p->pad_top, ix0 = ox * p->stride_w - p->pad_left;
    int32_t ky, kx;
    for (ky = 0; ky < p->k_h; ++ky) {
        const int32_t iy = iy0 + ky * p->dil_h;
        for (kx = 0; kx < p->k_w; ++kx) {
            const int32_t ix = ix0 + kx * p->dil_w;
            if (iy >= 0 && iy < p->in_h && ix >= 0 && ix < p->in_w) {
                memcpy(col, input + ((b * p->in_h + iy) * p->in_w + ix) * in_c, (size_t)in_c * sizeof(float));
            } else {
                memset(col, 0, (size_t)in_c * sizeof(float));
            }
            col += in_c;
        }
    }
}

void ec_conv2d_im2col_neon_f32(const ec_conv_params *p, const ec_act_f32 *act, const float *input,
                               const float *weights, const float *bias, float *output, void *scratch)
{
    const int32_t out_w = p->out_w, hw = p->out_h * p->out_w, npix = p->batch * hw;
    const int32_t k = p->k_h * p->k_w * p->in_c, out_c = p->out_c;
    float *cols = (float *)scratch;
    float lo, hi;
    int32_t pix, i;

    ec_act_bounds(act, &lo, &hi);
    for (pix = 0; pix < npix; pix += EC_NEON_F32_ROWS) {
        const int32_t n = npix - pix < EC_NEON_F32_ROWS ? npix - pix : EC_NEON_F32_ROWS;
        const float *x[EC_NEON_F32_ROWS];
        for (i = 0; i < EC_NEON_F32_ROWS; ++i) {
            const int32_t q = pix + (i < n ? i : 0);
            if (i < n) {
                im2col(p, input, q / hw, (q % hw) / out_w, q % out_w, cols + i * k);
            }
            x[i] = cols + (i < n ? i : 0) * k;
        }
        ec_neon_f32_rows(n, k, out_c, x, weights, bias, lo, hi, output + pix * out_c, out_c);
    }
}
