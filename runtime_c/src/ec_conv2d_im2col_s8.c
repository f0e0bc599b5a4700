/*
 * ec_conv2d_im2col_s8: int8 2-D convolution (groups == 1, any kernel, stride, padding, dilation), NHWC, as a
 * matrix product. For every pair of output positions the two input windows are copied into the column buffer
 * (scratch, int16, x - in_zp, zero where the window is in the padding; layout in edgec_gemm.h), then the packed
 * weights [out_c][k_h * k_w * in_c] are multiplied with it, two output channels at a time. With the DSP
 * extension (Cortex-M4/M7/M33) the window copy expands 4 bytes per SXTAB16 pair and the product runs on SMLAD,
 * 2 columns x 2 channels per loop; elsewhere the same layouts are walked in plain C. Same results as
 * ec_conv2d_s8 bit for bit.
 */
#include "edgec_gemm.h"

/* Each kernel row's k_w * in_c inputs start a new group of 4 (padded with zero weights), so a row inside the input
 * is copied 4 bytes at a time. */
static int32_t row_len4(const ec_conv_params *p)
{
    return ec_k4(p->k_w * p->in_c);
}

int32_t ec_conv2d_im2col_s8_get_buffer_size(const ec_conv_params *p)
{
    return 2 * 2 * p->k_h * row_len4(p);
}

/* Column c = the input window of output position (b, oy, ox). */
static void im2col(const ec_conv_params *p, const int8_t *input, int32_t b, int32_t oy, int32_t ox, int32_t zp,
                   int16_t *col, int32_t c)
{
    const int32_t in_c = p->in_c, k_w = p->k_w, dil_w = p->dil_w;
    const int32_t len4 = row_len4(p);
    const int32_t image = p->in_h * p->in_w * in_c;
    const int32_t iy0 = oy * p->stride_h - p->pad_top;
    const int32_t ix0 = ox * p->stride_w - p->pad_left;
    const int8_t *in_b = input + b * image;
    int32_t ky0, ky1, kx0, kx1, ky, kx;
    ec_window_range(iy0, p->dil_h, p->k_h, p->in_h, &ky0, &ky1);
    ec_window_range(ix0, dil_w, k_w, p->in_w, &kx0, &kx1);
    for (ky = 0; ky < p->k_h; ++ky) {
        const int32_t pos = ky * len4;
        int32_t start;
        if (ky < ky0 || ky >= ky1) {
            ec_col_zero(col, 8, c, pos, len4);
            continue;
        }
        start = ((iy0 + ky * p->dil_h) * p->in_w + ix0) * in_c; /* tap kx = 0, maybe outside */
        if (dil_w == 1 && kx0 == 0 && kx1 == k_w && start + len4 <= image) {
            /* the whole row, and the few bytes after it (zero weights) */
            ec_col_expand(col, 8, c, pos, in_b + start, len4, zp);
            continue;
        }
        ec_col_zero(col, 8, c, pos, len4);
        if (dil_w == 1) {
            ec_col_expand(col, 8, c, pos + kx0 * in_c, in_b + start + kx0 * in_c, (kx1 - kx0) * in_c, zp);
        } else {
            for (kx = kx0; kx < kx1; ++kx) {
                ec_col_expand(col, 8, c, pos + kx * in_c, in_b + start + kx * dil_w * in_c, in_c, zp);
            }
        }
    }
}

void ec_conv2d_im2col_s8(const ec_conv_params *p, const ec_quant_s8 *q, const int8_t *input,
                         const int8_t *weights, const int32_t *bias, int8_t *output, void *scratch)
{
    const int32_t k4 = p->k_h * row_len4(p);
    const int32_t out_c = p->out_c, out_w = p->out_w, hw = p->out_h * p->out_w;
    const int32_t npix = p->batch * hw;
    const int32_t zp = q->in_zp;
    const int32_t fast = ec_fast_ok(bias, q, out_c, k4);
    int16_t *col = (int16_t *)scratch;
    int32_t pix, c;

    for (pix = 0; pix < npix; pix += 2) {
        const int32_t ncols = npix - pix >= 2 ? 2 : 1;
        for (c = 0; c < ncols; ++c) {
            const int32_t b = (pix + c) / hw, r = (pix + c) % hw;
            im2col(p, input, b, r / out_w, r % out_w, zp, col, c);
        }
        ec_gemm_s8s16(weights, k4, out_c, col, 8, ncols, bias, q, fast, output + pix * out_c,
                      output + (pix + 1) * out_c);
    }
}
