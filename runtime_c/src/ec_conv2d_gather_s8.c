/*
 * ec_conv2d_gather_s8: int8 2-D convolution (groups == 1, any kernel, stride, padding, dilation) for layers with
 * few input channels (first layers: 1 to 4), NHWC, without im2col bookkeeping, on cores with the DSP extension
 * (Cortex-M4/M7/M33; plain C elsewhere). For every output row the input rows its windows read are copied into a
 * band of padded rows in the scratch buffer (the border holding in_zp), so every window lies inside the band. The
 * whole receptive field of an output position (k = k_h * k_w * in_c bytes: 27 for 3x3x3, 40 for 10x4x1) is
 * gathered kernel row by kernel row, a word at a time, into one contiguous int8 row, then expanded 4 bytes per
 * SXTAB16 pair into the int16 column buffer of the matrix core (edgec_gemm.h: 2 positions x 2 channels per SMLAD
 * loop). Unlike ec_conv2d_im2col_s8, kernel rows are not padded to a multiple of 4: k is padded once (27 -> 28
 * instead of 3 x 12 = 36). Weights: pack_matrix_s8 of [out_c][k] in [kh][kw][ic] order. Same results as
 * ec_conv2d_s8 bit for bit.
 *
 * Scratch: the column buffer (2 columns of k4 = k rounded up to 4 int16), the row (k4 + 4 bytes: words copied past
 * a kernel row's end are overwritten by the next row, or fall on zero weights), the band: (k_h - 1) * dil_h + 1 rows
 * of wp * in_c bytes, wp = max(pad_left + in_w, (out_w - 1) * stride_w + (k_w - 1) * dil_w + 1), and 4 bytes after
 * it (the last word read).
 */
#include <string.h>

#include "edgec_gemm.h"

static void band_geometry(const ec_conv_params *p, int32_t *rows, int32_t *row_bytes)
{
    const int32_t ew = (p->k_w - 1) * p->dil_w + 1, need = (p->out_w - 1) * p->stride_w + ew;
    const int32_t wp = need > p->pad_left + p->in_w ? need : p->pad_left + p->in_w;
    *rows = (p->k_h - 1) * p->dil_h + 1;
    *row_bytes = wp * p->in_c;
}

int32_t ec_conv2d_gather_s8_get_buffer_size(const ec_conv_params *p)
{
    const int32_t k4 = ec_k4(p->k_h * p->k_w * p->in_c);
    int32_t rows, row_bytes;
    band_geometry(p, &rows, &row_bytes);
    return 2 * 2 * k4 + k4 + 4 + rows * row_bytes + 4;
}

/* row[0 .. k - 1] = the window whose corner is base: k_h kernel rows row_step bytes apart, each of k_w taps of in_c
 * bytes dil_w * in_c apart, in [ky][kx][ic] order. Without dilation across, a kernel row is len contiguous bytes
 * copied a word at a time (unaligned LDR/STR on ARMv7-M and ARMv8-M Mainline), up to 3 bytes past it written too. */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline void gather(const int8_t *base, int32_t row_step, int32_t k_h, int32_t k_w, int32_t in_c,
                          int32_t dil_w, int8_t *row)
{
    const int32_t len = k_w * in_c;
    int32_t ky, kx, i;
    if (dil_w == 1) {
        const int32_t words = (len + 3) >> 2;
        for (ky = k_h; ky > 0; --ky) {
            const int8_t *s = base;
            int8_t *d = row;
            for (i = words; i > 0; --i) {
                uint32_t v;
                memcpy(&v, s, 4);
                memcpy(d, &v, 4);
                s += 4;
                d += 4;
            }
            row += len;
            base += row_step;
        }
        return;
    }
    for (ky = 0; ky < k_h; ++ky) {
        for (kx = 0; kx < k_w; ++kx) {
            for (i = 0; i < in_c; ++i) {
                row[kx * in_c + i] = base[kx * dil_w * in_c + i];
            }
        }
        row += len;
        base += row_step;
    }
}

void ec_conv2d_gather_s8(const ec_conv_params *p, const ec_quant_s8 *q, const int8_t *input,
                         const int8_t *weights, const int32_t *bias, int8_t *output, void *scratch)
{
    const int32_t in_c = p->in_c, k_h = p->k_h, k_w = p->k_w, dil_w = p->dil_w, k4 = ec_k4(k_h * k_w * in_c);
    const int32_t out_c = p->out_c, out_w = p->out_w, in_row = p->in_w * in_c, left = p->pad_left * in_c;
    const int32_t step = p->stride_w * in_c, zp = q->in_zp;
    const int32_t fast = ec_fast_ok(bias, q, out_c, k4);
    int16_t *col = (int16_t *)scratch;
    int8_t *row = (int8_t *)(col + 2 * k4);
    int8_t *band = row + k4 + 4;
    int32_t rows, row_bytes, row_step, b, oy, ox, i, c = 0;
    int8_t *out0 = output;

    band_geometry(p, &rows, &row_bytes);
    row_step = p->dil_h * row_bytes;
    memset(band, zp, (size_t)(rows * row_bytes + 4)); /* the border columns keep in_zp */
    memset(row, 0, (size_t)(k4 + 4));
    for (b = 0; b < p->batch; ++b) {
        for (oy = 0; oy < p->out_h; ++oy) {
            const int32_t iy0 = oy * p->stride_h - p->pad_top;
            for (i = 0; i < rows; ++i) {
                int8_t *dst = band + i * row_bytes + left;
                if (iy0 + i >= 0 && iy0 + i < p->in_h) {
                    memcpy(dst, input + (b * p->in_h + iy0 + i) * in_row, (size_t)in_row);
                } else {
                    memset(dst, zp, (size_t)in_row);
                }
            }
            for (ox = 0; ox < out_w; ++ox) {
                gather(band + ox * step, row_step, k_h, k_w, in_c, dil_w, row);
                ec_col_expand(col, 8, c, 0, row, k4, zp);
                if (c == 0) {
                    c = 1;
                    continue;
                }
                ec_gemm_s8s16(weights, k4, out_c, col, 8, 2, bias, q, fast, out0, out0 + out_c);
                out0 += 2 * out_c;
                c = 0;
            }
        }
    }
    if (c == 1) {
        ec_gemm_s8s16(weights, k4, out_c, col, 8, 1, bias, q, fast, out0, NULL);
    }
}
