/*
 * ec_depthwise_conv2d_3x3_s8: int8 3x3 depthwise convolution, channel multiplier 1, dilation 1, any stride and
 * padding, NHWC, with its own packed int16 weight layout (edgec.h) and a scratch row buffer.
 *
 * DSP extension (Cortex-M4/M7/M33), 4 channels at a time: for every output row, the three input rows it reads are
 * expanded once into the scratch buffer (x - in_zp as int16, 0 in the padding), with rows 0 and 1 of every
 * column already paired per channel: per group g of 4 channels and padded input column x, 6 words
 * [(r0, r1) of c0, c1, c2, c3][(r2 c0, r2 c2)][(r2 c1, r2 c3)]. A window then takes, per kernel column, 4 SMLADs
 * (rows 0-1) and 4 SMLAxy (row 2), all at fixed offsets. Channels beyond a multiple of 4, and other cores, run
 * plain C. Same results as ec_depthwise_conv2d_s8 bit for bit.
 */
#include "edgec_depthwise.h"

int32_t ec_depthwise_conv2d_3x3_s8_get_buffer_size(const ec_conv_params *p)
{
    return (p->in_c >> 2) * ((p->out_w - 1) * p->stride_w + 3) * 6 * 4;
}

/* int16 index of w[ky][kx][c] in the packed 3x3 layout. */
static int32_t w3x3_index(int32_t ky, int32_t kx, int32_t c)
{
    const int32_t base = (c >> 2) * 36 + kx * 12, j = c & 3;
    return ky < 2 ? base + j * 2 + ky : base + (4 + (j & 1)) * 2 + (j >> 1);
}

/* Channels c0 .. in_c - 1 of one output position in plain C; tap (0, 0) is input[base] (may be outside). */
static void channels(const ec_conv_params *p, const ec_quant_s8 *q, const int8_t *in_b, int32_t base,
                     const int16_t *w, const int32_t *bias, int32_t fast, int32_t c0, int32_t ky0, int32_t ky1,
                     int32_t kx0, int32_t kx1, int8_t *out)
{
    const int32_t in_c = p->in_c, row = p->in_w * in_c;
    int32_t c, ky, kx;
    for (c = c0; c < in_c; ++c) {
        int32_t acc = bias != NULL ? bias[c] : 0;
        for (ky = ky0; ky < ky1; ++ky) {
            for (kx = kx0; kx < kx1; ++kx) {
                acc += (in_b[base + ky * row + kx * in_c + c] - q->in_zp) * w[w3x3_index(ky, kx, c)];
            }
        }
        out[c] = ec_dw_out(acc, q, c, fast);
    }
}

#if defined(__ARM_FEATURE_DSP)
/* Kernel column k / 6 of 4 channels: rows 0-1 paired (SMLAD), row 2 by halves (SMLABB / SMLATT). */
#define EC_DW3_COLUMN(k)                                                                                        \
    do {                                                                                                         \
        a0 = __smlad(x[(k)], w[(k)], a0);                                                                        \
        a1 = __smlad(x[(k) + 1], w[(k) + 1], a1);                                                                \
        a2 = __smlad(x[(k) + 2], w[(k) + 2], a2);                                                                \
        a3 = __smlad(x[(k) + 3], w[(k) + 3], a3);                                                                \
        a0 = __smlabb(x[(k) + 4], w[(k) + 4], a0);                                                               \
        a2 = __smlatt(x[(k) + 4], w[(k) + 4], a2);                                                               \
        a1 = __smlabb(x[(k) + 5], w[(k) + 5], a1);                                                               \
        a3 = __smlatt(x[(k) + 5], w[(k) + 5], a3);                                                               \
    } while (0)

/* Expand input rows iy0 .. iy0 + 2 (columns ix0 .. ix0 + wp - 1) of every full group of 4 channels into buf. */
static void fill_rows(const ec_conv_params *p, const int8_t *in_b, int32_t iy0, int32_t ix0, int32_t wp,
                      int32_t zp, ec_word *buf)
{
    const int32_t in_c = p->in_c, groups = in_c >> 2;
    const int32_t xl = ix0 < 0 ? (-ix0 < wp ? -ix0 : wp) : 0;
    int32_t xr = p->in_w - ix0;
    const int8_t *rows[3];
    int32_t step[3]; /* a row outside the input reads zp bytes, which expand to 0 */
    int32_t g, x, ky;
    const int32_t off = ec_dup16(-zp);
    int8_t zp4[4];
    memset(zp4, zp, sizeof zp4);
    xr = xr < xl ? xl : (xr > wp ? wp : xr);
    for (ky = 0; ky < 3; ++ky) {
        const int32_t iy = iy0 + ky;
        const int32_t inside = iy >= 0 && iy < p->in_h;
        rows[ky] = inside ? in_b + (iy * p->in_w + ix0 + xl) * in_c : zp4;
        step[ky] = inside ? in_c : 0;
    }
    for (g = 0; g < groups; ++g) {
        ec_word *d = buf + g * wp * 6;
        const int32_t o = g * 4;
        const int8_t *r0 = rows[0] + (rows[0] != zp4 ? o : 0);
        const int8_t *r1 = rows[1] + (rows[1] != zp4 ? o : 0);
        const int8_t *r2 = rows[2] + (rows[2] != zp4 ? o : 0);
        const int32_t s0 = step[0], s1 = step[1], s2 = step[2];
        for (x = 0; x < xl; ++x, d += 6) {
            d[0] = d[1] = d[2] = d[3] = d[4] = d[5] = 0;
        }
        for (; x < xr; ++x, d += 6) {
            const int32_t v0 = ec_load32(r0), v1 = ec_load32(r1), v2 = ec_load32(r2);
            const int32_t a02 = __sxtab16(off, v0), a13 = ec_sxtab16_ror8(off, v0);
            const int32_t b02 = __sxtab16(off, v1), b13 = ec_sxtab16_ror8(off, v1);
            d[0] = ec_pkhbt16(a02, b02);
            d[1] = ec_pkhbt16(a13, b13);
            d[2] = ec_pkhtb16(a02, b02);
            d[3] = ec_pkhtb16(a13, b13);
            d[4] = __sxtab16(off, v2);
            d[5] = ec_sxtab16_ror8(off, v2);
            r0 += s0;
            r1 += s1;
            r2 += s2;
        }
        for (; x < wp; ++x, d += 6) {
            d[0] = d[1] = d[2] = d[3] = d[4] = d[5] = 0;
        }
    }
}
#endif

void ec_depthwise_conv2d_3x3_s8(const ec_conv_params *p, const ec_quant_s8 *q, const int8_t *input,
                                const int16_t *weights, const int32_t *bias, int8_t *output, void *scratch)
{
    const int32_t in_h = p->in_h, in_w = p->in_w, in_c = p->in_c;
    const int32_t fast = ec_fast_ok(bias, q, in_c, 9);
    int32_t b, oy, ox;
#if defined(__ARM_FEATURE_DSP)
    const int32_t full_c = in_c & ~3, wp = (p->out_w - 1) * p->stride_w + 3;
    const int32_t zp21 = 2 * q->out_zp + 1, lo4 = ec_dup8(q->act_min), hi4 = ec_dup8(q->act_max);
    const int32_t *const mult = q->mult;
    const int32_t *const shift = q->shift;
    ec_word *buf = (ec_word *)scratch;
#else
    const int32_t full_c = 0;
    (void)scratch;
#endif

    for (b = 0; b < p->batch; ++b) {
        const int8_t *in_b = input + b * in_h * in_w * in_c;
        for (oy = 0; oy < p->out_h; ++oy) {
            const int32_t iy0 = oy * p->stride_h - p->pad_top;
            int32_t ky0, ky1;
            ec_window_range(iy0, 1, 3, in_h, &ky0, &ky1);
#if defined(__ARM_FEATURE_DSP)
            fill_rows(p, in_b, iy0, -p->pad_left, wp, q->in_zp, buf);
#endif
            for (ox = 0; ox < p->out_w; ++ox) {
                const int32_t ix0 = ox * p->stride_w - p->pad_left;
#if defined(__ARM_FEATURE_DSP)
                {
                    const ec_word *x = buf + ox * p->stride_w * 6;
                    const ec_word *w = (const ec_word *)(const void *)weights;
                    int32_t c;
                    for (c = 0; c < full_c; c += 4) {
                        int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
                        if (bias != NULL) {
                            a0 = bias[c];
                            a1 = bias[c + 1];
                            a2 = bias[c + 2];
                            a3 = bias[c + 3];
                        }
                        EC_DW3_COLUMN(0);
                        EC_DW3_COLUMN(6);
                        EC_DW3_COLUMN(12);
                        if (fast) {
                            const int32_t v = ec_clamp4(ec_requant_fast(a0, mult[c], shift[c], zp21),
                                                        ec_requant_fast(a1, mult[c + 1], shift[c + 1], zp21),
                                                        ec_requant_fast(a2, mult[c + 2], shift[c + 2], zp21),
                                                        ec_requant_fast(a3, mult[c + 3], shift[c + 3], zp21), lo4,
                                                        hi4);
                            memcpy(output + c, &v, 4);
                        } else {
                            output[c] = ec_dw_out(a0, q, c, 0);
                            output[c + 1] = ec_dw_out(a1, q, c + 1, 0);
                            output[c + 2] = ec_dw_out(a2, q, c + 2, 0);
                            output[c + 3] = ec_dw_out(a3, q, c + 3, 0);
                        }
                        x += wp * 6;
                        w += 18;
                    }
                }
#endif
                if (full_c < in_c) {
                    int32_t kx0, kx1;
                    ec_window_range(ix0, 1, 3, in_w, &kx0, &kx1);
                    channels(p, q, in_b, (iy0 * in_w + ix0) * in_c, weights, bias, fast, full_c, ky0, ky1, kx0, kx1,
                             output);
                }
                output += in_c;
            }
        }
    }
}
