/*
 * edgec runtime: the inner loops shared by the sparse kernels (formats in edgec_sparse.h; not part of the public
 * API): input expansion, im2col of one output pixel, the row-sparse and N:4 dot products of every output channel
 * with one column, and the int8 output stage.
 */
#ifndef EDGEC_SPARSE_CORE_H
#define EDGEC_SPARSE_CORE_H

#include "edgec_dsp.h"
#include "edgec_sparse.h"

/* Columns covered by one N:4 block of 4 entries. */
static inline int32_t ec_nm_span(int32_t n)
{
    return 16 / n;
}

/* B * span: the N:4 column length, depth rounded up to whole blocks. */
static inline int32_t ec_nm_depth(int32_t depth, int32_t n)
{
    const int32_t span = ec_nm_span(n);
    return (depth + span - 1) / span * span;
}

/* dst[i] = src[i] - zp for i < n (in [-255, 255]); dst 2-byte aligned. */
static inline void ec_sparse_expand(int16_t *dst, const int8_t *src, int32_t n, int32_t zp)
{
    int32_t i = 0;
#if defined(__ARM_FEATURE_DSP)
    const int32_t off = ec_dup16(-zp);
    for (; i + 4 <= n; i += 4) {
        const int32_t x = ec_load32(src + i);
        const int32_t even = __sxtab16(off, x);      /* elements 0, 2 */
        const int32_t odd = ec_sxtab16_ror8(off, x); /* elements 1, 3 */
        const int32_t lo = ec_pkhbt16(even, odd), hi = ec_pkhtb16(even, odd);
        memcpy(dst + i, &lo, 4); /* STR: unaligned access is allowed */
        memcpy(dst + i + 2, &hi, 4);
    }
#endif
    for (; i < n; ++i) {
        dst[i] = (int16_t)(src[i] - zp);
    }
}

/* The im2col column of output pixel (oy, ox) of image in_b, [k_h][k_w][in_c], as int16 x - zp (s8) with zeros
 * for taps outside the input (the zero point there). */
static inline void ec_im2col_pixel_s8(const ec_conv_params *p, const int8_t *in_b, int32_t oy, int32_t ox,
                                      int32_t zp, int16_t *col)
{
    const int32_t in_c = p->in_c, k_w = p->k_w, run = k_w * in_c;
    const int32_t iy0 = oy * p->stride_h - p->pad_top, ix0 = ox * p->stride_w - p->pad_left;
    const int32_t whole = p->dil_w == 1 && ix0 >= 0 && ix0 + k_w <= p->in_w;
    int32_t ky, kx;
    for (ky = 0; ky < p->k_h; ++ky, col += run) {
        const int32_t iy = iy0 + ky * p->dil_h;
        const int8_t *row = in_b + iy * p->in_w * in_c;
        if (iy < 0 || iy >= p->in_h) {
            memset(col, 0, (size_t)run * sizeof(int16_t));
        } else if (whole) {
            ec_sparse_expand(col, row + ix0 * in_c, run, zp);
        } else {
            for (kx = 0; kx < k_w; ++kx) {
                const int32_t ix = ix0 + kx * p->dil_w;
                if (ix < 0 || ix >= p->in_w) {
                    memset(col + kx * in_c, 0, (size_t)in_c * sizeof(int16_t));
                } else {
                    ec_sparse_expand(col + kx * in_c, row + ix * in_c, in_c, zp);
                }
            }
        }
    }
}

/* ec_im2col_pixel_s8 for output pixel i of all batch * out_h * out_w, in NHWC order. */
static inline void ec_im2col_s8(const ec_conv_params *p, const int8_t *input, int32_t i, int32_t zp, int16_t *col)
{
    const int32_t per_image = p->out_h * p->out_w, b = i / per_image, r = i - b * per_image;
    ec_im2col_pixel_s8(p, input + b * p->in_h * p->in_w * p->in_c, r / p->out_w, r % p->out_w, zp, col);
}

/* Columns the s8 kernels expand at once: two when there are at least two pixels or rows. */
static inline int32_t ec_sparse_cols(int32_t rows)
{
    return rows >= 2 ? 2 : 1;
}

/* The same for float input: x, or 0 outside the input. */
static inline void ec_im2col_pixel_f32(const ec_conv_params *p, const float *in_b, int32_t oy, int32_t ox,
                                       float *col)
{
    const int32_t in_c = p->in_c, k_w = p->k_w, run = k_w * in_c;
    const int32_t iy0 = oy * p->stride_h - p->pad_top, ix0 = ox * p->stride_w - p->pad_left;
    int32_t ky, kx, c;
    for (ky = 0; ky < p->k_h; ++ky, col += run) {
        const int32_t iy = iy0 + ky * p->dil_h;
        for (kx = 0; kx < k_w; ++kx) {
            const int32_t ix = ix0 + kx * p->dil_w;
            if (iy < 0 || iy >= p->in_h || ix < 0 || ix >= p->in_w) {
                for (c = 0; c < in_c; ++c) {
                    col[kx * in_c + c] = 0.0f;
                }
            } else {
                memcpy(col + kx * in_c, in_b + (iy * p->in_w + ix) * in_c, (size_t)in_c * sizeof(float));
            }
        }
    }
}

/* ec_output_s8(ec_requantize(acc, mult, shift), zp, lo, hi) with zp21 = 2 zp + 1: ec_requant_fast when its
 * conditions hold (a negative shift, |acc| < 2^30). */
static inline int8_t ec_sparse_output(int32_t acc, int32_t mult, int32_t shift, int32_t zp21, int32_t lo, int32_t hi)
{
    if (shift >= 0 || acc < -(1 << 30) || acc >= (1 << 30)) {
        return ec_output_s8(ec_requantize(acc, mult, shift), zp21 >> 1, lo, hi);
    }
    return (int8_t)ec_clamp_i32(ec_requant_fast(acc, mult, shift, zp21), lo, hi);
}

/* out[i] = the output stage of ec_fully_connected_s8 for accumulator acc[i] (bias included), channel i < n.
 * DSP extension: four channels at a time with ec_requant_fast and a 4-lane clamp when their shifts are negative and
 * their accumulators below 2^30 in magnitude. */
static inline void ec_sparse_outputs(const int32_t *acc, int32_t n, const ec_quant_s8 *q, int8_t *out)
{
    const int32_t *mult = q->mult, *shift = q->shift;
    const int32_t step = q->per_channel ? 1 : 0;
    const int32_t lo = q->act_min, hi = q->act_max, zp21 = 2 * q->out_zp + 1;
    int32_t i = 0;
#if defined(__ARM_FEATURE_DSP)
    const int32_t lo4 = ec_dup8(lo), hi4 = ec_dup8(hi);
    const uint32_t h = UINT32_C(1) << 30;
    for (; step && i + 4 <= n; i += 4) {
        const int32_t *a = acc + i, *m = mult + i, *s = shift + i;
        if ((s[0] & s[1] & s[2] & s[3]) < 0 &&
            (((uint32_t)a[0] + h) | ((uint32_t)a[1] + h) | ((uint32_t)a[2] + h) | ((uint32_t)a[3] + h)) < 2 * h) {
            const int32_t v = ec_clamp4(ec_requant_fast(a[0], m[0], s[0], zp21),
                                        ec_requant_fast(a[1], m[1], s[1], zp21),
                                        ec_requant_fast(a[2], m[2], s[2], zp21),
                                        ec_requant_fast(a[3], m[3], s[3], zp21), lo4, hi4);
            memcpy(out + i, &v, 4);
        } else {
            out[i] = ec_sparse_output(a[0], m[0], s[0], zp21, lo, hi);
            out[i + 1] = ec_sparse_output(a[1], m[1], s[1], zp21, lo, hi);
            out[i + 2] = ec_sparse_output(a[2], m[2], s[2], zp21, lo, hi);
            out[i + 3] = ec_sparse_output(a[3], m[3], s[3], zp21, lo, hi);
        }
    }
#endif
    for (; i < n; ++i) {
        out[i] = ec_sparse_output(acc[i], mult[i * step], shift[i * step], zp21, lo, hi);
    }
}

/* ---- row-sparse ------------------------------------------------------------------------------------------- */

/* acc + the entries of one s8 block: 4 indices into seg, then 4 int8 weights. DSP: two entries per SMLAD. */
static inline int32_t ec_sparse_block(int32_t acc, const int16_t *seg, const uint8_t *b)
{
#if defined(__ARM_FEATURE_DSP)
    const int32_t w = ec_load32((const int8_t *)(const void *)(b + 4));
    acc = __smlad(ec_pkhbt16(seg[b[0]], seg[b[2]]), __sxtb16(w), acc);
    return __smlad(ec_pkhbt16(seg[b[1]], seg[b[3]]), ec_sxtb16_ror8(w), acc);
#else
    const int8_t *w = (const int8_t *)(const void *)(b + 4);
    return acc + seg[b[0]] * w[0] + seg[b[1]] * w[1] + seg[b[2]] * w[2] + seg[b[3]] * w[3];
#endif
}

/* accs[oc] = bias[oc] (0 without bias) + the row-sparse row oc times col (depth int16 values). */
static inline void ec_sparse_rows_s8(const int16_t *col, int32_t depth, int32_t out_c, const uint8_t *counts,
                                     const uint8_t *blocks, const int32_t *bias, int32_t *accs)
{
    const uint8_t *b = blocks;
    const int32_t *from = bias; /* the sums before this segment */
    int32_t oc, s;
    if (bias == NULL) {
        memset(accs, 0, (size_t)out_c * sizeof(int32_t));
        from = accs;
    }
    for (s = 0; s < depth; s += 256, from = accs) {
        const int16_t *seg = col + s;
        for (oc = 0; oc < out_c; ++oc) {
            const uint8_t *end = b + 8 * *counts++;
            int32_t acc = from[oc];
            if ((end - b) & 8) { /* an odd number of blocks */
                acc = ec_sparse_block(acc, seg, b);
                b += 8;
            }
            for (; b != end; b += 16) {
                acc = ec_sparse_block(ec_sparse_block(acc, seg, b), seg, b + 8);
            }
            accs[oc] = acc;
        }
    }
}

/* The same for two columns (two pixels or input rows) at once: the indices and weights are loaded once. */
static inline void ec_sparse_rows2_s8(const int16_t *col0, const int16_t *col1, int32_t depth, int32_t out_c,
                                      const uint8_t *counts, const uint8_t *blocks, const int32_t *bias,
                                      int32_t *accs0, int32_t *accs1)
{
    const uint8_t *b = blocks;
    int32_t oc, s;
    for (s = 0; s < depth; s += 256) {
        const int16_t *s0 = col0 + s, *s1 = col1 + s;
        for (oc = 0; oc < out_c; ++oc) {
            const uint8_t *end = b + 8 * *counts++;
            int32_t a0, a1;
            if (s == 0) {
                a0 = a1 = bias != NULL ? bias[oc] : 0;
            } else {
                a0 = accs0[oc];
                a1 = accs1[oc];
            }
            for (; b != end; b += 8) {
#if defined(__ARM_FEATURE_DSP)
                const int32_t w = ec_load32((const int8_t *)(const void *)(b + 4));
                const int32_t we = __sxtb16(w), wo = ec_sxtb16_ror8(w);
                const uint32_t i0 = b[0], i1 = b[1], i2 = b[2], i3 = b[3];
                a0 = __smlad(ec_pkhbt16(s0[i0], s0[i2]), we, a0);
                a1 = __smlad(ec_pkhbt16(s1[i0], s1[i2]), we, a1);
                a0 = __smlad(ec_pkhbt16(s0[i1], s0[i3]), wo, a0);
                a1 = __smlad(ec_pkhbt16(s1[i1], s1[i3]), wo, a1);
#else
                a0 = ec_sparse_block(a0, s0, b);
                a1 = ec_sparse_block(a1, s1, b);
#endif
            }
            accs0[oc] = a0;
            accs1[oc] = a1;
        }
    }
}

/* out[oc] = bias[oc] (0 without bias) + the row-sparse row oc times x (depth floats), in column order. */
static inline void ec_sparse_rows_f32(const float *x, int32_t depth, int32_t out_c, const uint8_t *counts,
                                      const uint8_t *index, const float *values, const float *bias, float *out)
{
    const uint8_t *ix = index;
    const float *w = values;
    int32_t oc, s;
    for (oc = 0; oc < out_c; ++oc) {
        out[oc] = bias != NULL ? bias[oc] : 0.0f;
    }
    for (s = 0; s < depth; s += 256) {
        const float *seg = x + s;
        for (oc = 0; oc < out_c; ++oc) {
            const uint8_t *end = ix + 4 * *counts++;
            float acc = out[oc];
            for (; ix != end; ix += 4, w += 4) {
                acc += seg[ix[0]] * w[0];
                acc += seg[ix[1]] * w[1];
                acc += seg[ix[2]] * w[2];
                acc += seg[ix[3]] * w[3];
            }
            out[oc] = acc;
        }
    }
}

/* ---- N:4 -------------------------------------------------------------------------------------------------- */

/* acc + one N:4 block of x: index byte b, int8 weights w (4 bytes); n = 2 (offsets 0, 0, 4, 4) or 1 (0, 4, 8, 12).
 * DSP: entries (0, 2) and (1, 3) paired for two SMLADs. */
static inline int32_t ec_nm_block_s8(int32_t acc, const int16_t *x, uint32_t b, const int8_t *w, int32_t n)
{
    const uint32_t o1 = n == 2 ? 0u : 4u, o2 = n == 2 ? 4u : 8u, o3 = n == 2 ? 4u : 12u;
    const int32_t x0 = x[b & 3u], x1 = x[o1 + ((b >> 2) & 3u)], x2 = x[o2 + ((b >> 4) & 3u)], x3 = x[o3 + (b >> 6)];
#if defined(__ARM_FEATURE_DSP)
    const int32_t wv = ec_load32(w);
    acc = __smlad(ec_pkhbt16(x0, x2), __sxtb16(wv), acc);
    return __smlad(ec_pkhbt16(x1, x3), ec_sxtb16_ror8(wv), acc);
#else
    return acc + x0 * w[0] + x1 * w[1] + x2 * w[2] + x3 * w[3];
#endif
}

/* accs[oc] = bias[oc] (0 without bias) + the N:4 row oc times col (ec_nm_depth(depth, n) int16 values). The loops
 * are written out for n = 2 and n = 1 so that the entry offsets are constants. */
static inline void ec_nm_rows_s8(const int16_t *col, int32_t depth, int32_t out_c, int32_t n, const uint8_t *index,
                                 const int8_t *values, const int32_t *bias, int32_t *accs)
{
    const int32_t blocks = ec_nm_depth(depth, n) / ec_nm_span(n);
    int32_t oc, k;
    for (oc = 0; oc < out_c; ++oc) {
        const int16_t *x = col;
        int32_t acc = bias != NULL ? bias[oc] : 0;
        if (n == 2) {
            for (k = 0; k < blocks; ++k, x += 8, values += 4) {
                acc = ec_nm_block_s8(acc, x, *index++, values, 2);
            }
        } else {
            for (k = 0; k < blocks; ++k, x += 16, values += 4) {
                acc = ec_nm_block_s8(acc, x, *index++, values, 1);
            }
        }
        accs[oc] = acc;
    }
}

/* The same for two columns at once: the indices are decoded and the weights loaded once. */
static inline void ec_nm_block2_s8(int32_t *a0, int32_t *a1, const int16_t *x, const int16_t *y, uint32_t b,
                                   const int8_t *w, int32_t n)
{
    const uint32_t o1 = n == 2 ? 0u : 4u, o2 = n == 2 ? 4u : 8u, o3 = n == 2 ? 4u : 12u;
    const uint32_t i0 = b & 3u, i1 = o1 + ((b >> 2) & 3u), i2 = o2 + ((b >> 4) & 3u), i3 = o3 + (b >> 6);
#if defined(__ARM_FEATURE_DSP)
    const int32_t wv = ec_load32(w);
    const int32_t we = __sxtb16(wv), wo = ec_sxtb16_ror8(wv);
    *a0 = __smlad(ec_pkhbt16(x[i0], x[i2]), we, *a0);
    *a1 = __smlad(ec_pkhbt16(y[i0], y[i2]), we, *a1);
    *a0 = __smlad(ec_pkhbt16(x[i1], x[i3]), wo, *a0);
    *a1 = __smlad(ec_pkhbt16(y[i1], y[i3]), wo, *a1);
#else
    *a0 += x[i0] * w[0] + x[i1] * w[1] + x[i2] * w[2] + x[i3] * w[3];
    *a1 += y[i0] * w[0] + y[i1] * w[1] + y[i2] * w[2] + y[i3] * w[3];
#endif
}

static inline void ec_nm_rows2_s8(const int16_t *col0, const int16_t *col1, int32_t depth, int32_t out_c, int32_t n,
                                  const uint8_t *index, const int8_t *values, const int32_t *bias, int32_t *accs0,
                                  int32_t *accs1)
{
    const int32_t blocks = ec_nm_depth(depth, n) / ec_nm_span(n);
    int32_t oc, k;
    for (oc = 0; oc < out_c; ++oc) {
        const int16_t *x = col0, *y = col1;
        int32_t a0 = bias != NULL ? bias[oc] : 0, a1 = a0;
        if (n == 2) {
            for (k = 0; k < blocks; ++k, x += 8, y += 8, values += 4) {
                ec_nm_block2_s8(&a0, &a1, x, y, *index++, values, 2);
            }
        } else {
            for (k = 0; k < blocks; ++k, x += 16, y += 16, values += 4) {
                ec_nm_block2_s8(&a0, &a1, x, y, *index++, values, 1);
            }
        }
        accs0[oc] = a0;
        accs1[oc] = a1;
    }
}

/* acc + one N:4 block of x (float), the entries in column order. */
static inline float ec_nm_block_f32(float acc, const float *x, uint32_t b, const float *w, int32_t n)
{
    const uint32_t o1 = n == 2 ? 0u : 4u, o2 = n == 2 ? 4u : 8u, o3 = n == 2 ? 4u : 12u;
    acc += x[b & 3u] * w[0];
    acc += x[o1 + ((b >> 2) & 3u)] * w[1];
    acc += x[o2 + ((b >> 4) & 3u)] * w[2];
    acc += x[o3 + (b >> 6)] * w[3];
    return acc;
}

/* out[oc] = bias[oc] (0 without bias) + the N:4 row oc times x (depth floats). When depth is not a multiple of
 * the span, the last block reads `tail` (the last depth % span values of x, then zeros) instead of x. */
static inline void ec_nm_rows_f32(const float *x, const float *tail, int32_t depth, int32_t out_c, int32_t n,
                                  const uint8_t *index, const float *values, const float *bias, float *out)
{
    const int32_t span = ec_nm_span(n), full = depth / span;
    int32_t oc, k;
    for (oc = 0; oc < out_c; ++oc) {
        const float *xs = x;
        float acc = bias != NULL ? bias[oc] : 0.0f;
        if (n == 2) {
            for (k = 0; k < full; ++k, xs += 8, values += 4) {
                acc = ec_nm_block_f32(acc, xs, *index++, values, 2);
            }
        } else {
            for (k = 0; k < full; ++k, xs += 16, values += 4) {
                acc = ec_nm_block_f32(acc, xs, *index++, values, 1);
            }
        }
        if (full * span < depth) {
            acc = ec_nm_block_f32(acc, tail, *index++, values, n);
            values += 4;
        }
        out[oc] = acc;
    }
}

#endif /* EDGEC_SPARSE_CORE_H */
