/*
 * ec_conv2d_1x1_mve_s8: int8 1x1 convolution without padding (groups == 1, any stride), NHWC, as a matrix product
 * read straight from the input: 3 output positions x 2 output channels per inner loop (edgec_mve_gemm.h), 16
 * multiply-accumulates per VMLADAVA.S8 with Helium (Cortex-M55); plain C elsewhere. Weights in the pair layout of
 * edgec_mve_gemm.h, bias folded with the input zero point (edgec_mve.h), output stage in the quad layout; no scratch.
 * The input pixels are walked with counters (measured: the divisions per position cost about 25 instructions per
 * 3 positions). Same results as ec_conv2d_s8 bit for bit.
 */
#include "edgec_mve_gemm.h"

void ec_conv2d_1x1_mve_s8(const ec_conv_params *p, const ec_quant_s8 *q, const int8_t *input,
                          const int8_t *weights, const int32_t *bias, int8_t *output)
{
    const int32_t in_c = p->in_c, out_c = p->out_c, npix = p->batch * p->out_h * p->out_w;
    const int32_t step = p->stride_w * in_c, row_skip = (p->stride_h * p->in_w - p->out_w * p->stride_w) * in_c;
    const int32_t batch_skip = (p->in_h - p->out_h * p->stride_h) * p->in_w * in_c;
    const int32_t right = ec_mve_right_shifts(q->shift, (out_c + 3) & ~3);
    const int8_t *next = input; /* input pixel of the next output position (b, oy, ox) */
    int32_t pix, r, oy = 0, ox = 0;
    for (pix = 0; pix < npix; pix += EC_MVE_ROWS) {
        const int32_t rows = npix - pix < EC_MVE_ROWS ? npix - pix : EC_MVE_ROWS;
        const int8_t *x[EC_MVE_ROWS];
        int8_t *out[EC_MVE_ROWS];
        for (r = 0; r < EC_MVE_ROWS; ++r) {
            /* output position (b, oy, ox) reads input pixel (b, oy * stride_h, ox * stride_w); rows past npix
             * repeat the first one */
            x[r] = r < rows ? next : x[0];
            out[r] = r < rows ? output + (pix + r) * out_c : NULL;
            if (r < rows) {
                next += step;
                if (++ox == p->out_w) {
                    ox = 0;
                    next += row_skip;
                    if (++oy == p->out_h) {
                        oy = 0;
                        next += batch_skip;
                    }
                }
            }
        }
        ec_mve_rows3_s8(x, rows, weights, in_c, out_c, bias, q, out, right);
    }
}
