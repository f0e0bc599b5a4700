/*
 * ec_conv2d_im2col_s16: 16x8 2-D convolution (groups == 1, any kernel, stride, padding, dilation), NHWC, int16
 * activations, int8 weights, zero points 0, as a matrix product. For every pair of output positions the two input
 * windows are copied into the column buffer (scratch: two int16 columns of K = k_h * k_w * in_c in [kh][kw][ic] order,
 * zero where the window is in the padding, each padded with zeros to a multiple of 4), then the packed weights
 * [out_c][K] (layout in edgec_gemm_s16.h) are multiplied with it, two output channels at a time. DSP extension: SXTB16
 * and SMLAD in int32 blocks added to the int64 accumulator; plain C elsewhere. Same results as ec_conv2d_s16 bit for
 * bit.
 */
#include "edgec_gemm_s16.h"

/* int16 elements between the starts of the two columns: K rounded up to a multiple of 4. The elements past K are
 * zero, so the product runs over whole groups of 4 (the packed weights are zero there too). */
static int32_t col_stride(const ec_conv_params *p)
{
    return ec_s16_k4(p->k_h * p->k_w * p->in_c);
}

int32_t ec_conv2d_im2col_s16_get_buffer_size(const ec_conv_params *p)
{
    return 2 * 2 * col_stride(p);
}

static void copy_s16(int16_t *dst, const int16_t *src, int32_t n)
{
    int32_t i = 0;
#if defined(__ARM_FEATURE_DSP)
    for (; i + 2 <= n; i += 2) {
        const int32_t v = ec_load_s16x2(src + i);
        memcpy(dst + i, &v, 4);
    }
#endif
    for (; i < n; ++i) {
        dst[i] = src[i];
    }
}

static void zero_s16(int16_t *dst, int32_t n)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        dst[i] = 0;
    }
}

/* col = the input window of output position (b, oy, ox). */
static void im2col(const ec_conv_params *p, const int16_t *input, int32_t b, int32_t oy, int32_t ox, int16_t *col)
{
    const int32_t in_c = p->in_c, k_w = p->k_w, dil_w = p->dil_w;
    const int32_t row_len = k_w * in_c;
    const int32_t iy0 = oy * p->stride_h - p->pad_top;
    const int32_t ix0 = ox * p->stride_w - p->pad_left;
    const int16_t *in_b = input + b * p->in_h * p->in_w * in_c;
    int32_t ky0, ky1, kx0, kx1, ky, kx;
    ec_window_range(iy0, p->dil_h, p->k_h, p->in_h, &ky0, &ky1);
    ec_window_range(ix0, dil_w, k_w, p->in_w, &kx0, &kx1);
    for (ky = 0; ky < p->k_h; ++ky) {
        int16_t *dst = col + ky * row_len;
        const int16_t *src;
        if (ky < ky0 || ky >= ky1) {
            zero_s16(dst, row_len);
            continue;
        }
        src = in_b + ((iy0 + ky * p->dil_h) * p->in_w + ix0) * in_c; /* tap kx = 0, maybe outside */
        if (dil_w == 1) {
            zero_s16(dst, kx0 * in_c);
            copy_s16(dst + kx0 * in_c, src + kx0 * in_c, (kx1 - kx0) * in_c);
            zero_s16(dst + kx1 * in_c, (k_w - kx1) * in_c);
        } else {
            for (kx = 0; kx < k_w; ++kx) {
                if (kx < kx0 || kx >= kx1) {
                    zero_s16(dst + kx * in_c, in_c);
                } else {
                    copy_s16(dst + kx * in_c, src + kx * dil_w * in_c, in_c);
                }
            }
        }
    }
}

void ec_conv2d_im2col_s16(const ec_conv_params *p, const ec_quant_s16 *q, const int16_t *input,
                          const int8_t *weights, const int64_t *bias, int16_t *output, void *scratch)
{
    const int32_t depth = p->k_h * p->k_w * p->in_c, stride = col_stride(p);
    const int32_t out_c = p->out_c, out_w = p->out_w, hw = p->out_h * p->out_w;
    const int32_t npix = p->batch * hw;
    const int32_t fast = ec_s16_fast_ok(bias, q, out_c, depth);
    int16_t *col = (int16_t *)scratch;
    int32_t pix, c;

    zero_s16(col + depth, stride - depth);
    zero_s16(col + stride + depth, stride - depth);
    for (pix = 0; pix < npix; pix += 2) {
        const int32_t ncols = npix - pix >= 2 ? 2 : 1;
        for (c = 0; c < ncols; ++c) {
            const int32_t b = (pix + c) / hw, r = (pix + c) % hw;
            im2col(p, input, b, r / out_w, r % out_w, col + c * stride);
        }
        ec_gemm_s16(weights, stride, out_c, col, col + stride, ncols, bias, q, fast, output + pix * out_c,
                    output + (pix + 1) * out_c);
    }
}
