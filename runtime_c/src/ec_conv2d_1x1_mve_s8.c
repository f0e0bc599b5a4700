/*
 * ec_conv2d_1x1_mve_s8: int8 1x1 convolution without padding (groups == 1, any stride), NHWC, as a matrix product
 * read straight from the input: two output positions x 4 output channels per step, 16 multiply-accumulates per
 * VMLADAVA.S8 with Helium (Cortex-M55); plain C elsewhere. Weights [out_c][in_c] int8, bias folded with the input
 * zero point (edgec_mve.h); no scratch. Same results as ec_conv2d_s8 bit for bit.
 */
#include "edgec_mve.h"

void ec_conv2d_1x1_mve_s8(const ec_conv_params *p, const ec_quant_s8 *q, const int8_t *input,
                          const int8_t *weights, const int32_t *bias, int8_t *output)
{
    const int32_t in_c = p->in_c, out_c = p->out_c, out_w = p->out_w, hw = p->out_h * p->out_w;
    const int32_t npix = p->batch * hw;
    const int32_t dense = p->stride_h == 1 && p->stride_w == 1 && p->out_h == p->in_h && p->out_w == p->in_w;
    const int32_t right = ec_mve_right_shifts(q->shift, 2 * out_c);
    int32_t pix;
    if (dense) {
        ec_mve_gemm_rows_s8(input, in_c, npix, weights, in_c, out_c, bias, q, output, right);
        return;
    }
    for (pix = 0; pix < npix; pix += 2) {
        const int8_t *x[2] = {NULL, NULL};
        int32_t c;
        for (c = 0; c < 2 && pix + c < npix; ++c) {
            int32_t src = pix + c;
            if (!dense) {
                const int32_t b = src / hw, r = src % hw;
                src = (b * p->in_h + (r / out_w) * p->stride_h) * p->in_w + (r % out_w) * p->stride_w;
            }
            x[c] = input + src * in_c;
        }
        ec_mve_gemm_s8(x[0], x[1], weights, in_c, out_c, bias, q, output + pix * out_c,
                       output + (pix + 1) * out_c, right);
    }
}
