/*
 * ec_conv2d_1x1_s8: int8 1x1 convolution without padding (any stride), NHWC, as a matrix product: every pair of
 * output positions reads two input pixels, expanded into the column buffer (scratch, int16, x - in_zp; layout
 * in edgec_gemm.h), and multiplies them with the packed weights [out_c][in_c]. DSP extension: SXTAB16 expansion
 * and SMLAD, 2 pixels x 2 channels per loop; plain C elsewhere. Same results as ec_conv2d_s8 bit for bit.
 */
#include "edgec_gemm.h"

int32_t ec_conv2d_1x1_s8_get_buffer_size(const ec_conv_params *p)
{
    return 2 * 2 * ec_k4(p->in_c);
}

void ec_conv2d_1x1_s8(const ec_conv_params *p, const ec_quant_s8 *q, const int8_t *input, const int8_t *weights,
                      const int32_t *bias, int8_t *output, void *scratch)
{
    const int32_t in_c = p->in_c, k4 = ec_k4(p->in_c);
    const int32_t out_c = p->out_c, out_w = p->out_w, hw = p->out_h * p->out_w;
    const int32_t npix = p->batch * hw;
    const int32_t zp = q->in_zp;
    const int32_t dense = p->stride_h == 1 && p->stride_w == 1 && p->out_h == p->in_h && p->out_w == p->in_w;
    const int32_t fast = ec_fast_ok(bias, q, out_c, k4);
    int16_t *col = (int16_t *)scratch;
    int32_t pix, c;

    for (c = 0; c < 2; ++c) {
        ec_col_zero(col, 8, c, in_c, k4 - in_c);
    }
    for (pix = 0; pix < npix; pix += 2) {
        const int32_t ncols = npix - pix >= 2 ? 2 : 1;
        for (c = 0; c < ncols; ++c) {
            int32_t src = pix + c;
            if (!dense) {
                const int32_t b = src / hw, r = src % hw;
                src = (b * p->in_h + (r / out_w) * p->stride_h) * p->in_w + (r % out_w) * p->stride_w;
            }
            ec_col_expand(col, 8, c, 0, input + src * in_c, in_c, zp);
        }
        ec_gemm_s8s16(weights, k4, out_c, col, 8, ncols, bias, q, fast, output + pix * out_c,
                      output + (pix + 1) * out_c);
    }
}
