/*
 * ec_conv2d_1x1_neon_s8: int8 1x1 convolution without padding (groups == 1, any stride), NHWC, as a matrix product
 * for NEON (edgec_neon.h): weights in the NEON matrix layout [out_c][K8 = in_c rounded up to 8], folded bias.
 * Four pixels (AArch64; two on ARMv7) at a time are multiplied with 4 output channels per loop (VMULL/VMLAL.S8, VPADAL.S16), read straight
 * from the input when in_c is a multiple of 8, otherwise copied into the scratch buffer with zeros after them.
 * Plain C elsewhere. Same results as ec_conv2d_s8 (with the unfolded bias) bit for bit.
 */
#include "edgec_neon.h"

int32_t ec_conv2d_1x1_neon_s8_get_buffer_size(const ec_conv_params *p)
{
    return (p->in_c % 8 != 0 ? 4 * ec_k8(p->in_c) : 0) + ec_neon_tables_bytes(p->out_c);
}

void ec_conv2d_1x1_neon_s8(const ec_conv_params *p, const ec_quant_s8 *q, const int8_t *input,
                           const int8_t *weights, const int32_t *bias, int8_t *output, void *scratch)
{
    const int32_t in_c = p->in_c, k8 = ec_k8(p->in_c);
    const int32_t out_c = p->out_c, out_w = p->out_w, hw = p->out_h * p->out_w;
    const int32_t npix = p->batch * hw;
    const int32_t dense = p->stride_h == 1 && p->stride_w == 1 && p->out_h == p->in_h && p->out_w == p->in_w;
    const int32_t fast = ec_neon_fast_ok(bias, q, out_c, k8);
    int8_t *col = (int8_t *)scratch;
    int32_t *tb = (int32_t *)(void *)(col + (k8 != in_c ? 4 * k8 : 0)); /* ec_neon_stage_tables */
    int32_t pix, c;

    ec_neon_stage_tables(bias, q, 0, out_c, fast, tb);
    if (k8 != in_c) {
        memset(col, 0, (size_t)(EC_NEON_COLS * k8));
    }
    /* strided: the next pixel's output column ox and the input pixel under its row's first column, advanced without
     * divisions (measured on Cortex-A53: resnet8 conv_6 81,303 -> 79,797 instructions, conv_9 53,527 -> 52,941) */
    const int32_t sw = p->stride_w, row_step = p->stride_h * p->in_w, image = p->in_h * p->in_w;
    int32_t ox = 0, oy = 0, row = 0, img = 0;
    for (pix = 0; pix < npix; pix += EC_NEON_COLS) {
        const int32_t ncols = npix - pix >= EC_NEON_COLS ? EC_NEON_COLS : npix - pix;
        const int8_t *x[EC_NEON_COLS];
        int8_t *y[EC_NEON_COLS];
        for (c = 0; c < ncols; ++c) {
            int32_t src = pix + c;
            if (!dense) {
                src = row + ox * sw;
                if (++ox == out_w) {
                    ox = 0;
                    row += row_step;
                    if (++oy == p->out_h) {
                        oy = 0;
                        img += image;
                        row = img;
                    }
                }
            }
            x[c] = input + src * in_c;
            y[c] = output + (pix + c) * out_c;
            if (k8 != in_c) {
                ec_neon_copy(col + c * k8, x[c], in_c);
                x[c] = col + c * k8;
            }
        }
        ec_neon_gemm(weights, k8, out_c, x, ncols, tb, q, fast, y);
    }
}
