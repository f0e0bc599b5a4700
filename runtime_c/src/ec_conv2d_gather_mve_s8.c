/*
 * ec_conv2d_gather_mve_s8: int8 2-D convolution (groups == 1, any kernel, stride, padding, dilation) for layers with
 * few input channels (first layers: 1 to 4), NHWC, without im2col bookkeeping. For every output row the input rows
 * its windows read are copied into a band of padded rows in the scratch buffer (the border holding in_zp), so every
 * window lies inside the band at fixed offsets from its corner: one gather load per 16 bytes of the window
 * (VLDRB with 8-bit offsets when every offset is below 256, else 8 bytes per VLDRB with 16-bit offsets) writes the
 * whole receptive field of an output position (k = k_h * k_w * in_c bytes, e.g. 40 for a 10x4 kernel on one
 * channel) into a column, and the columns of 3 positions are multiplied with all output channels by the matrix core
 * (edgec_mve_gemm.h, 3 positions x 2 channels per inner loop). Plain C elsewhere. Weights and output stage as
 * ec_conv2d_im2col_mve_s8 (the pair layout over [kh][kw][ic], bias folded with the input zero point, quad layout).
 * Same results as ec_conv2d_s8 bit for bit.
 *
 * Scratch: 3 columns of kp = k rounded up to 16 bytes, the window offsets (kp uint16, then kp uint8), the band:
 * (k_h - 1) * dil_h + 1 rows of wp * in_c bytes, wp = max(pad_left + in_w, (out_w - 1) * stride_w + (k_w - 1) *
 * dil_w + 1). Lowering (toolchain/ops/conv.py) takes it where every offset is below 65536.
 */
#include "edgec_mve_gemm.h"

/* Band geometry: rows, bytes per row, bytes in all. */
static void band_geometry(const ec_conv_params *p, int32_t *rows, int32_t *row_bytes)
{
    const int32_t ew = (p->k_w - 1) * p->dil_w + 1, need = (p->out_w - 1) * p->stride_w + ew;
    const int32_t wp = need > p->pad_left + p->in_w ? need : p->pad_left + p->in_w;
    *rows = (p->k_h - 1) * p->dil_h + 1;
    *row_bytes = wp * p->in_c;
}

int32_t ec_conv2d_gather_mve_s8_get_buffer_size(const ec_conv_params *p)
{
    const int32_t kp = (p->k_h * p->k_w * p->in_c + 15) & ~15;
    int32_t rows, row_bytes;
    band_geometry(p, &rows, &row_bytes);
    return 6 * kp + ((rows * row_bytes + 15) & ~15);
}

/* dst[0 .. n - 1] = src[0 .. n - 1], or v when src is NULL */
static void copy_or_fill(int8_t *dst, const int8_t *src, int8_t v, int32_t n)
{
#if defined(__ARM_FEATURE_MVE)
    const int8x16_t d = vdupq_n_s8(v);
    for (; n > 0; n -= 16) {
        const mve_pred16_t t = vctp8q((uint32_t)n);
        vstrbq_p_s8(dst, src != NULL ? vldrbq_z_s8(src, t) : d, t);
        dst += 16;
        src = src != NULL ? src + 16 : NULL;
    }
#else
    int32_t i;
    for (i = 0; i < n; ++i) {
        dst[i] = src != NULL ? src[i] : v;
    }
#endif
}

/* col[0 .. 16 kb - 1] = base[off[i]]: the window whose corner is base (offsets past k are 0: read, then ignored). */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline void gather(int8_t *col, const int8_t *base, const uint16_t *off16, const uint8_t *off8, int32_t kb,
                          int32_t wide)
{
    int32_t i;
#if defined(__ARM_FEATURE_MVE)
    if (wide) {
        for (i = 0; i < 2 * kb; ++i) {
            vstrbq_s16(col + 8 * i, vldrbq_gather_offset_s16(base, vldrhq_u16(off16 + 8 * i)));
        }
    } else {
        for (i = 0; i < kb; ++i) {
            vstrbq_s8(col + 16 * i, vldrbq_gather_offset_s8(base, vldrbq_u8(off8 + 16 * i)));
        }
    }
#else
    (void)off8;
    (void)wide;
    for (i = 0; i < 16 * kb; ++i) {
        col[i] = base[off16[i]];
    }
#endif
}

void ec_conv2d_gather_mve_s8(const ec_conv_params *p, const ec_quant_s8 *q, const int8_t *input,
                             const int8_t *weights, const int32_t *bias, int8_t *output, void *scratch)
{
    const int32_t in_c = p->in_c, k = p->k_h * p->k_w * in_c, kp = (k + 15) & ~15, kb = kp >> 4;
    const int32_t out_c = p->out_c, in_row = p->in_w * in_c, left = p->pad_left * in_c;
    const int8_t zp = (int8_t)q->in_zp;
    const int32_t right = ec_mve_right_shifts(q->shift, (out_c + 3) & ~3);
    int8_t *col = (int8_t *)scratch;
    uint16_t *off16 = (uint16_t *)(void *)(col + 3 * kp);
    uint8_t *off8 = (uint8_t *)(off16 + kp);
    int8_t *band = (int8_t *)(off8 + kp);
    int32_t rows, row_bytes, b, oy, ox, i, r = 0, pix = 0, wide = 0;
    const int8_t *x[EC_MVE_ROWS];
    int8_t *out[EC_MVE_ROWS];

    band_geometry(p, &rows, &row_bytes);
    for (i = 0; i < kp; ++i) { /* tap i = (ky k_w + kx) in_c + c */
        const int32_t c = i % in_c, kx = i / in_c % p->k_w, ky = i / in_c / p->k_w;
        const int32_t o = i < k ? ky * p->dil_h * row_bytes + kx * p->dil_w * in_c + c : 0;
        off16[i] = (uint16_t)o;
        off8[i] = (uint8_t)o;
        wide |= o > 255;
    }
    for (r = 0; r < EC_MVE_ROWS; ++r) {
        x[r] = col + r * kp;
        out[r] = NULL;
    }
    copy_or_fill(band, NULL, zp, rows * row_bytes); /* the border columns keep in_zp */
    r = 0;
    for (b = 0; b < p->batch; ++b) {
        for (oy = 0; oy < p->out_h; ++oy) {
            for (i = 0; i < rows; ++i) {
                const int32_t iy = oy * p->stride_h - p->pad_top + i;
                const int8_t *src = iy >= 0 && iy < p->in_h ? input + (b * p->in_h + iy) * in_row : NULL;
                copy_or_fill(band + i * row_bytes + left, src, zp, in_row);
            }
            for (ox = 0; ox < p->out_w; ++ox) {
                gather(col + r * kp, band + ox * p->stride_w * in_c, off16, off8, kb, wide);
                out[r] = output + (pix++) * out_c;
                if (++r == EC_MVE_ROWS) {
                    ec_mve_rows3_s8(x, r, weights, k, out_c, bias, q, out, right);
                    r = 0;
                }
            }
        }
    }
    if (r > 0) { /* rows past the last position multiply stale columns, not stored */
        for (i = r; i < EC_MVE_ROWS; ++i) {
            out[i] = NULL;
        }
        ec_mve_rows3_s8(x, r, weights, k, out_c, bias, q, out, right);
    }
}
