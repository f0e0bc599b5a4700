/*
 * ec_conv2d_im2col_neon_s8: int8 2-D convolution (groups == 1, any kernel, stride, padding, dilation), NHWC, as a
 * matrix product for NEON (edgec_neon.h): weights in the NEON matrix layout [out_c][K8], K = k_h * k_w * in_c in
 * [ky][kx][ic] order, folded bias. The input windows of four output positions (AArch64; two on ARMv7) are copied
 * as int8 into the scratch buffer (whole kernel rows 16 bytes at a time where the window lies inside the input;
 * in_zp in the padding, which the folded bias cancels), then multiplied with 4 output channels per loop
 * (VMULL/VMLAL.S8, VPADAL.S16). Plain C elsewhere. Same results as ec_conv2d_s8 (with the unfolded bias) bit for
 * bit.
 */
#include "edgec_neon.h"

/* COPY for each of the k_h kernel rows (dst, src), advancing both; three rows unrolled (measured on Cortex-A53:
 * resnet8 3,803,001 -> 3,771,549 instructions, conv_2 731,554 -> 722,538, conv_1 298,652 -> 289,684). */
#define EC_COPY_ROWS(COPY)                                                                                       \
    do {                                                                                                         \
        if (k_h == 3) {                                                                                          \
            COPY;                                                                                                \
            dst += len;                                                                                          \
            src += row_step;                                                                                     \
            COPY;                                                                                                \
            dst += len;                                                                                          \
            src += row_step;                                                                                     \
            COPY;                                                                                                \
        } else {                                                                                                 \
            for (ky = 0; ky < k_h; ++ky, dst += len, src += row_step) {                                          \
                COPY;                                                                                            \
            }                                                                                                    \
        }                                                                                                        \
    } while (0)

/* The window of a pixel partly in the padding, dil_w == 1: in_zp everywhere, then each kernel row's part inside the
 * input, one copy per row (measured on Cortex-A53 against ec_neon_im2col: resnet8 conv_2 745,417 -> 734,879,
 * conv_1 314,036 -> 301,974 instructions). */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static void edge_window(const ec_conv_params *p, const int8_t *in_b, int32_t iy0, int32_t ix0, int32_t zp,
                        int8_t *col)
{
    const int32_t in_c = p->in_c, len = p->k_w * in_c, row_step = p->dil_h * p->in_w * in_c;
    int32_t ky0, ky1, kx0, kx1, ky, n;
    const int8_t *src;
    ec_window_range(iy0, p->dil_h, p->k_h, p->in_h, &ky0, &ky1);
    ec_window_range(ix0, 1, p->k_w, p->in_w, &kx0, &kx1);
    ec_neon_fill(col, zp, p->k_h * len);
    n = (kx1 - kx0) * in_c;
    src = in_b + ((iy0 + ky0 * p->dil_h) * p->in_w + ix0 + kx0) * in_c;
    col += ky0 * len + kx0 * in_c;
    for (ky = ky0; ky < ky1; ++ky, col += len, src += row_step) {
        ec_neon_copy(col, src, n);
    }
}

int32_t ec_conv2d_im2col_neon_s8_get_buffer_size(const ec_conv_params *p)
{
    return 4 * ec_k8(p->k_h * p->k_w * p->in_c) + 16 + ec_neon_tables_bytes(p->out_c);
}

void ec_conv2d_im2col_neon_s8(const ec_conv_params *p, const ec_quant_s8 *q, const int8_t *input,
                              const int8_t *weights, const int32_t *bias, int8_t *output, void *scratch)
{
    const int32_t in_h = p->in_h, in_w = p->in_w, in_c = p->in_c, k_h = p->k_h, k_w = p->k_w;
    const int32_t len = k_w * in_c, k = k_h * len, k8 = ec_k8(k);
    const int32_t out_c = p->out_c, out_w = p->out_w, hw = p->out_h * p->out_w;
    const int32_t npix = p->batch * hw, image = in_h * in_w * in_c;
    const int32_t row_step = p->dil_h * in_w * in_c, last_row = (k_h - 1) * p->dil_h;
    const int32_t fast = ec_neon_fast_ok(bias, q, out_c, k8);
    int8_t *col = (int8_t *)scratch;
    int32_t *tb = (int32_t *)(void *)(col + 4 * k8 + 16); /* ec_neon_stage_tables */
    const int8_t *x[EC_NEON_COLS];
    int8_t *y[EC_NEON_COLS];
    const int32_t chunks = (len + 15) / 16; /* 16-byte blocks per kernel row (AArch64 copies) */
    int32_t pix, c, ky, i;

    (void)chunks;
    ec_neon_stage_tables(bias, q, 0, out_c, fast, tb);
    for (c = 0; c < EC_NEON_COLS; ++c) {
        memset(col + c * k8 + k, 0, (size_t)(k8 - k));
        x[c] = col + c * k8;
    }
    /* the next pixel's image b and window corner (iy0, ix0), advanced without divisions; the geometry in locals
     * (stores through int8_t * could alias *p) */
    const int32_t sh = p->stride_h, sw = p->stride_w, ix_first = -p->pad_left, ix_end = ix_first + out_w * sw;
    const int32_t iy_end = (p->out_h * sh) - p->pad_top, whole = p->dil_w == 1;
    const int32_t last = p->batch * image - last_row * in_w * in_c - ((len + 15) & ~15);
    int32_t b = 0, iy0 = -p->pad_top, ix0 = ix_first;
    for (pix = 0; pix < npix; pix += EC_NEON_COLS) {
        const int32_t ncols = npix - pix >= EC_NEON_COLS ? EC_NEON_COLS : npix - pix;
        for (c = 0; c < ncols; ++c) {
            const int32_t at = b * image + (iy0 * in_w + ix0) * in_c; /* tap (0, 0) */
            int8_t *dst = col + c * k8;
            y[c] = output + (pix + c) * out_c;
            if (whole && iy0 >= 0 && iy0 + last_row < in_h && ix0 >= 0 && ix0 + k_w <= in_w && at <= last) {
                /* inside the input: whole rows, 16 bytes at a time; the bytes copied past a row are overwritten
                 * by the next row or land after K (zero weights) or in the next column or the 16 spare bytes */
                const int8_t *src = input + at;
#if defined(__aarch64__)
                /* one LD1/ST1 of up to 64 bytes per kernel row (measured on Cortex-A53: resnet8 conv_2 802,338 ->
                 * 764,790 instructions, conv_1 349,297 -> 333,406) */
                if (chunks == 1) {
                    EC_COPY_ROWS(vst1q_s8(dst, vld1q_s8(src)));
                } else if (chunks == 2) {
                    EC_COPY_ROWS(vst1q_s8_x2(dst, vld1q_s8_x2(src)));
                } else if (chunks == 3) {
                    EC_COPY_ROWS(vst1q_s8_x3(dst, vld1q_s8_x3(src)));
                } else if (chunks == 4) {
                    EC_COPY_ROWS(vst1q_s8_x4(dst, vld1q_s8_x4(src)));
                } else if (chunks % 4 == 0) {
                    EC_COPY_ROWS(for (i = 0; i < len; i += 64) { vst1q_s8_x4(dst + i, vld1q_s8_x4(src + i)); });
                } else if (chunks % 3 == 0) {
                    EC_COPY_ROWS(for (i = 0; i < len; i += 48) { vst1q_s8_x3(dst + i, vld1q_s8_x3(src + i)); });
                } else
#endif
                {
                    for (ky = 0; ky < k_h; ++ky, dst += len, src += row_step) {
                        for (i = 0; i < len; i += 16) {
#if defined(__ARM_NEON)
                            vst1q_s8(dst + i, vld1q_s8(src + i));
#else
                            memcpy(dst + i, src + i, 16);
#endif
                        }
                    }
                }
            } else if (whole) {
                edge_window(p, input + b * image, iy0, ix0, q->in_zp, dst);
            } else {
                ec_neon_im2col(p, input + b * image, iy0, ix0, q->in_zp, dst);
            }
            ix0 += sw;
            if (ix0 == ix_end) {
                ix0 = ix_first;
                iy0 += sh;
                if (iy0 == iy_end) {
                    iy0 = -p->pad_top;
                    ++b;
                }
            }
        }
        ec_neon_gemm(weights, k8, out_c, x, ncols, tb, q, fast, y);
    }
}
