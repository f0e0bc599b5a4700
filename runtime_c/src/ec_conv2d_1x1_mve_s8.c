/*
 * ec_conv2d_1x1_mve_s8: int8 1x1 convolution without padding (groups == 1, any stride), NHWC, as a matrix product
 * read straight from the input: two output positions x 2 output channels per step, 16 multiply-accumulates per
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
    int32_t b, oy;
    if (dense) {
        ec_mve_gemm_rows_s8(input, in_c, npix, weights, in_c, out_c, bias, q, output, right);
        return;
    }
    /* strided: the inputs of one output row are stride_w pixels apart */
    for (b = 0; b < p->batch; ++b) {
        for (oy = 0; oy < p->out_h; ++oy) {
            const int8_t *x = input + ((b * p->in_h + oy * p->stride_h) * p->in_w) * in_c;
            ec_mve_gemm_rows_s8(x, p->stride_w * in_c, out_w, weights, in_c, out_c, bias, q,
                                output + ((b * p->out_h + oy) * out_w) * out_c, right);
        }
    }
}
