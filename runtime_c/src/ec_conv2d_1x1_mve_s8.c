/*
 * ec_conv2d_1x1_mve_s8: int8 1x1 convolution without padding (groups == 1, any stride), NHWC, as a matrix product
 * read straight from the input: 3 output positions x 2 output channels per inner loop (edgec_mve_gemm.h), 16
 * multiply-accumulates per VMLADAVA.S8 with Helium (Cortex-M55); plain C elsewhere. Weights [out_c rounded up to even][k
 * rounded up to 16] zero-padded, bias folded with the input zero point (edgec_mve.h), output stage in the quad layout (edgec_mve_gemm.h);
 * no scratch. Same results as ec_conv2d_s8 bit for bit.
 */
#include "edgec_mve_gemm.h"

void ec_conv2d_1x1_mve_s8(const ec_conv_params *p, const ec_quant_s8 *q, const int8_t *input,
                          const int8_t *weights, const int32_t *bias, int8_t *output)
{
    const int32_t in_c = p->in_c, out_c = p->out_c, out_w = p->out_w, hw = p->out_h * p->out_w;
    const int32_t npix = p->batch * hw;
    const int32_t right = ec_mve_right_shifts(q->shift, (out_c + 3) & ~3);
    int32_t pix, r;
    for (pix = 0; pix < npix; pix += EC_MVE_ROWS) {
        const int32_t rows = npix - pix < EC_MVE_ROWS ? npix - pix : EC_MVE_ROWS;
        const int8_t *x[EC_MVE_ROWS];
        int8_t *out[EC_MVE_ROWS];
        for (r = 0; r < EC_MVE_ROWS; ++r) {
            /* output position (b, oy, ox) reads input pixel (b, oy * stride_h, ox * stride_w) */
            const int32_t i = r < rows ? pix + r : pix, b = i / hw, oy = i % hw / out_w, ox = i % out_w;
            x[r] = input + ((b * p->in_h + oy * p->stride_h) * p->in_w + ox * p->stride_w) * in_c;
            out[r] = r < rows ? output + (pix + r) * out_c : NULL;
        }
        ec_mve_rows3_s8(x, rows, weights, in_c, out_c, bias, q, out, right);
    }
}
