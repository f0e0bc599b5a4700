/*
 * ec_conv2d_im2col_mve_s8: int8 2-D convolution (groups == 1, any kernel, stride, padding, dilation), NHWC, as a
 * matrix product. For every 3 output positions the input windows are copied as int8 into the column buffer
 * (scratch: 3 columns of k = k_h * k_w * in_c rounded up to 16, in [ky][kx][ic] order, zero past k; positions in the
 * padding hold in_zp), then multiplied with the weights, 3 positions x 2 channels per inner loop (edgec_mve_gemm.h),
 * 16 multiply-accumulates per VMLADAVA.S8 with Helium (Cortex-M55); plain C elsewhere. Weights [out_c rounded up to even][k
 * rounded up to 16] zero-padded, bias folded with the input zero point (edgec_mve.h), output stage in the quad layout. Same results as
 * ec_conv2d_s8 bit for bit.
 */
#include "edgec_mve_gemm.h"

int32_t ec_conv2d_im2col_mve_s8_get_buffer_size(const ec_conv_params *p)
{
    return EC_MVE_ROWS * ((p->k_h * p->k_w * p->in_c + 15) & ~15);
}

/* dst[0 .. n - 1] = src[0 .. n - 1] */
static inline void copy_bytes(int8_t *dst, const int8_t *src, int32_t n)
{
#if defined(__ARM_FEATURE_MVE)
    for (; n >= 16; n -= 16) {
        vstrbq_s8(dst, vldrbq_s8(src));
        dst += 16;
        src += 16;
    }
    if (n > 0) {
        const mve_pred16_t t = vctp8q((uint32_t)n);
        vstrbq_p_s8(dst, vldrbq_z_s8(src, t), t);
    }
#else
    int32_t i;
    for (i = 0; i < n; ++i) {
        dst[i] = src[i];
    }
#endif
}

/* dst[row * r + i] = src[step * r + i] for r < rows, i < row: the kernel rows of a window inside the input. With
 * Helium one predicated load and store per row of up to 16 bytes, 3 instructions per 16 bytes of longer rows
 * whose length is a multiple of 16. */
static inline void copy_rows(int8_t *dst, const int8_t *src, int32_t rows, int32_t row, int32_t step)
{
#if defined(__ARM_FEATURE_MVE)
    if (row <= 16) {
        const mve_pred16_t t = vctp8q((uint32_t)row);
        for (; rows > 0; --rows) {
            vstrbq_p_s8(dst, vldrbq_z_s8(src, t), t);
            dst += row;
            src += step;
        }
        return;
    }
    if ((row & 15) == 0) {
        int32_t i;
        for (; rows > 0; --rows) {
            for (i = row >> 4; i > 0; --i) {
                vstrbq_s8(dst, vldrbq_s8(src));
                dst += 16;
                src += 16;
            }
            src += step - row;
        }
        return;
    }
#endif
    for (; rows > 0; --rows) {
        copy_bytes(dst, src, row);
        dst += row;
        src += step;
    }
}

/* dst[0 .. n - 1] = v */
static inline void fill_bytes(int8_t *dst, int8_t v, int32_t n)
{
#if defined(__ARM_FEATURE_MVE)
    const int8x16_t d = vdupq_n_s8(v);
    for (; n > 0; n -= 16) {
        vstrbq_p_s8(dst, d, vctp8q((uint32_t)n));
        dst += 16;
    }
#else
    int32_t i;
    for (i = 0; i < n; ++i) {
        dst[i] = v;
    }
#endif
}

/* Taps t in [0, k) with base + t * dil in [0, size): [*t0, *t1) (no division when dil == 1). */
static inline void window(int32_t base, int32_t dil, int32_t k, int32_t size, int32_t *t0, int32_t *t1)
{
    if (dil == 1) {
        const int32_t s = base < 0 ? -base : 0, e = size - base < k ? size - base : k;
        *t0 = s < e ? s : (e > 0 ? e : 0);
        *t1 = e > 0 ? e : 0;
    } else {
        ec_window_range(base, dil, k, size, t0, t1);
    }
}

/* col = the input window of output position (b, oy, ox), in_zp in the padding. */
static void im2col(const ec_conv_params *p, const int8_t *input, int32_t b, int32_t oy, int32_t ox, int8_t zp,
                   int8_t *col)
{
    const int32_t in_c = p->in_c, k_w = p->k_w, dil_w = p->dil_w, row = k_w * in_c;
    const int32_t iy0 = oy * p->stride_h - p->pad_top;
    const int32_t ix0 = ox * p->stride_w - p->pad_left;
    const int32_t row_step = p->dil_h * p->in_w * in_c;
    const int8_t *in_b = input + b * p->in_h * p->in_w * in_c;
    int32_t ky0, ky1, kx0, kx1, ky, kx;
    window(iy0, p->dil_h, p->k_h, p->in_h, &ky0, &ky1);
    window(ix0, dil_w, k_w, p->in_w, &kx0, &kx1);
    if (kx0 == 0 && kx1 == k_w && dil_w == 1) { /* whole rows */
        const int8_t *src = in_b + ((iy0 + ky0 * p->dil_h) * p->in_w + ix0) * in_c;
        fill_bytes(col, zp, ky0 * row);
        for (ky = ky0; ky < ky1; ++ky) {
            copy_bytes(col + ky * row, src, row);
            src += row_step;
        }
        fill_bytes(col + ky1 * row, zp, (p->k_h - ky1) * row);
        return;
    }
    for (ky = 0; ky < p->k_h; ++ky) {
        int8_t *dst = col + ky * row;
        const int8_t *src;
        if (ky < ky0 || ky >= ky1 || kx0 == kx1) {
            fill_bytes(dst, zp, row);
            continue;
        }
        src = in_b + ((iy0 + ky * p->dil_h) * p->in_w + ix0) * in_c; /* tap kx = 0, maybe outside */
        fill_bytes(dst, zp, kx0 * in_c);
        if (dil_w == 1) {
            copy_bytes(dst + kx0 * in_c, src + kx0 * in_c, (kx1 - kx0) * in_c);
        } else {
            for (kx = kx0; kx < kx1; ++kx) {
                copy_bytes(dst + kx * in_c, src + kx * dil_w * in_c, in_c);
            }
        }
        fill_bytes(dst + kx1 * in_c, zp, (k_w - kx1) * in_c);
    }
}

void ec_conv2d_im2col_mve_s8(const ec_conv_params *p, const ec_quant_s8 *q, const int8_t *input,
                             const int8_t *weights, const int32_t *bias, int8_t *output, void *scratch)
{
    const int32_t in_c = p->in_c, row = p->k_w * in_c, k = p->k_h * row, kp = (k + 15) & ~15;
    const int32_t out_c = p->out_c, out_w = p->out_w, npix = p->batch * p->out_h * p->out_w;
    const int32_t row_step = p->dil_h * p->in_w * in_c;
    const int32_t y_end = p->in_h - (p->k_h - 1) * p->dil_h, x_end = p->in_w - (p->k_w - 1);
    const int8_t zp = (int8_t)q->in_zp;
    int8_t *col = (int8_t *)scratch;
    const int32_t right = ec_mve_right_shifts(q->shift, (out_c + 3) & ~3);
    int32_t pix, r, b = 0, oy = 0, ox = 0; /* the next output position */
    const int8_t *x[EC_MVE_ROWS];

    for (r = 0; r < EC_MVE_ROWS; ++r) {
        x[r] = col + r * kp;
        fill_bytes(col + r * kp + k, 0, kp - k);
    }
    for (pix = 0; pix < npix; pix += EC_MVE_ROWS) {
        const int32_t rows = npix - pix < EC_MVE_ROWS ? npix - pix : EC_MVE_ROWS;
        int8_t *out[EC_MVE_ROWS];
        for (r = 0; r < rows; ++r) {
            const int32_t iy = oy * p->stride_h - p->pad_top, ix = ox * p->stride_w - p->pad_left;
            int8_t *dst = col + r * kp;
            out[r] = output + (pix + r) * out_c;
            if (iy >= 0 && ix >= 0 && iy < y_end && ix < x_end && p->dil_w == 1) { /* inside: whole rows */
                copy_rows(dst, input + ((b * p->in_h + iy) * p->in_w + ix) * in_c, p->k_h, row, row_step);
            } else {
                im2col(p, input, b, oy, ox, zp, dst);
            }
            if (++ox == out_w) {
                ox = 0;
                if (++oy == p->out_h) {
                    oy = 0;
                    ++b;
                }
            }
        }
        for (; r < EC_MVE_ROWS; ++r) {
            out[r] = NULL; /* rows past npix multiply stale columns, not stored */
        }
        ec_mve_rows3_s8(x, rows, weights, kp, out_c, bias, q, out, right);
    }
}
