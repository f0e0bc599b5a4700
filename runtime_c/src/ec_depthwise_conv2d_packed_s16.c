/*
 * ec_depthwise_conv2d_packed_s16: 16x8 depthwise 2-D convolution with channel multiplier 1 (any kernel of at most 64
 * taps, stride, padding, dilation), NHWC, int16 activations, zero points 0, packed int16 weights (the layout of
 * ec_depthwise_conv2d_packed_s8, edgec_depthwise.h). DSP extension: 4 channels at a time, two taps per SMLAD (the
 * int16 inputs of two taps paired with PKHBT/PKHTB); for every output position a table points each tap at its input
 * pixel, or at a row of zeros (scratch) where the tap is in the padding, so border positions take the same path. At
 * most 64 products of magnitude <= 2^22 sum exactly in int32, which is then added to the int64 bias. Channels beyond
 * a multiple of 4 and other cores run plain C (int64). Same results as ec_depthwise_conv2d_s16 bit for bit.
 */
#include "edgec_dsp.h"

/* The most taps (k_h * k_w) the DSP path takes (its tap table lives on the stack). */
#define EC_DW16_MAX_TAPS 64

/* Output stage of channel c; fast: ec_s16_fast_ok(bias, q, in_c, taps). */
static inline int16_t dw_out(int64_t acc, const ec_quant_s16 *q, int32_t c, int32_t fast)
{
    if (fast) {
        return ec_requantize_s32_clamp((int32_t)acc, q->mult[c], q->shift[c], q->act_min, q->act_max);
    }
    return ec_requantize_s64_clamp(acc, q->mult[c], q->shift[c], q->act_min, q->act_max);
}

/* Channels c0 .. c1 - 1 of one output position in plain C: the window taps ky in [ky0, ky1), kx in [kx0, kx1)
 * (inside the input); tap (0, 0) of channel 0 is x[base] (base may lie outside the input). */
static void dw_channels(const ec_conv_params *p, const ec_quant_s16 *q, const int16_t *x, int32_t base,
                        const int16_t *w, const int64_t *bias, int32_t fast, int32_t c0, int32_t c1, int32_t ky0,
                        int32_t ky1, int32_t kx0, int32_t kx1, int16_t *out)
{
    const int32_t in_c = p->in_c, k_w = p->k_w, npairs = (p->k_h * k_w + 1) >> 1;
    const int32_t row = p->in_w * in_c * p->dil_h, col = in_c * p->dil_w;
    int32_t c, ky, kx;
    for (c = c0; c < c1; ++c) {
        const int16_t *wc = w + (c >> 2) * npairs * 8 + (c & 3) * 2;
        int64_t acc = bias != NULL ? bias[c] : 0;
        for (ky = ky0; ky < ky1; ++ky) {
            for (kx = kx0; kx < kx1; ++kx) {
                const int32_t t = ky * k_w + kx;
                acc += x[base + ky * row + kx * col + c] * wc[(t >> 1) * 8 + (t & 1)];
            }
        }
        out[c] = dw_out(acc, q, c, fast);
    }
}

#if defined(__ARM_FEATURE_DSP)
/* Output stage of channels c .. c + 3 from their int32 sums a0 .. a3 (without the bias). */
static inline void dw_out4(const int64_t *bias, const ec_quant_s16 *q, int32_t c, int32_t fast, int32_t a0,
                           int32_t a1, int32_t a2, int32_t a3, int16_t *out)
{
    if (fast) { /* every sum with its bias fits int32 */
        const int32_t lo = q->act_min, hi = q->act_max;
        if (bias != NULL) {
            a0 += (int32_t)bias[c];
            a1 += (int32_t)bias[c + 1];
            a2 += (int32_t)bias[c + 2];
            a3 += (int32_t)bias[c + 3];
        }
        out[c] = ec_requantize_s32_clamp(a0, q->mult[c], q->shift[c], lo, hi);
        out[c + 1] = ec_requantize_s32_clamp(a1, q->mult[c + 1], q->shift[c + 1], lo, hi);
        out[c + 2] = ec_requantize_s32_clamp(a2, q->mult[c + 2], q->shift[c + 2], lo, hi);
        out[c + 3] = ec_requantize_s32_clamp(a3, q->mult[c + 3], q->shift[c + 3], lo, hi);
    } else {
        out[c] = dw_out((bias != NULL ? bias[c] : 0) + a0, q, c, 0);
        out[c + 1] = dw_out((bias != NULL ? bias[c + 1] : 0) + a1, q, c + 1, 0);
        out[c + 2] = dw_out((bias != NULL ? bias[c + 2] : 0) + a2, q, c + 2, 0);
        out[c + 3] = dw_out((bias != NULL ? bias[c + 3] : 0) + a3, q, c + 3, 0);
    }
}

static inline int32_t load2(const int16_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

#endif

int32_t ec_depthwise_conv2d_packed_s16_get_buffer_size(const ec_conv_params *p)
{
    return (2 * p->in_c + 3) & ~3;
}

void ec_depthwise_conv2d_packed_s16(const ec_conv_params *p, const ec_quant_s16 *q, const int16_t *input,
                                    const int16_t *weights, const int64_t *bias, int16_t *output, void *scratch)
{
    const int32_t in_h = p->in_h, in_w = p->in_w, in_c = p->in_c, k_h = p->k_h, k_w = p->k_w;
    const int32_t fast = ec_s16_fast_ok(bias, q, in_c, k_h * k_w);
    int32_t b, oy, ox;
#if defined(__ARM_FEATURE_DSP)
    const int32_t taps = k_h * k_w;
    const int32_t row = in_w * in_c * p->dil_h, col = in_c * p->dil_w;
    /* more taps than the table holds: plain C for every channel */
    const int32_t full_c = taps <= EC_DW16_MAX_TAPS ? in_c & ~3 : 0, npairs = (taps + 1) >> 1;
    const int16_t *tap[EC_DW16_MAX_TAPS]; /* channel 0 of each tap of the window, or the zero row (padding) */
    int16_t *zero = (int16_t *)scratch;   /* in_c zeros */
    int32_t i;
    for (i = 0; i < in_c; ++i) {
        zero[i] = 0;
    }
#else
    const int32_t full_c = 0;
    (void)scratch;
#endif

    for (b = 0; b < p->batch; ++b) {
        const int16_t *in_b = input + b * in_h * in_w * in_c;
        for (oy = 0; oy < p->out_h; ++oy) {
            const int32_t iy0 = oy * p->stride_h - p->pad_top;
            int32_t ky0, ky1;
            ec_window_range(iy0, p->dil_h, k_h, in_h, &ky0, &ky1);
            for (ox = 0; ox < p->out_w; ++ox) {
                const int32_t ix0 = ox * p->stride_w - p->pad_left;
                const int32_t base = (iy0 * in_w + ix0) * in_c;
                int32_t kx0, kx1;
                ec_window_range(ix0, p->dil_w, k_w, in_w, &kx0, &kx1);
#if defined(__ARM_FEATURE_DSP)
                if (full_c > 0) {
                    int32_t c, ky, kx, t = 0;
                    for (ky = 0; ky < k_h; ++ky) {
                        for (kx = 0; kx < k_w; ++kx, ++t) {
                            const int32_t inside = ky >= ky0 && ky < ky1 && kx >= kx0 && kx < kx1;
                            /* the address is formed only for taps inside the input */
                            tap[t] = inside ? in_b + base + ky * row + kx * col : zero;
                        }
                    }
                    for (c = 0; c < full_c; c += 4) {
                        const ec_word *wq = (const ec_word *)(const void *)(weights + (c >> 2) * npairs * 8);
                        const int16_t *const *tp = tap;
                        int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
                        int32_t n;
                        for (n = taps >> 1; n > 0; --n) {
                            const int16_t *x0 = tp[0] + c;
                            const int16_t *x1 = tp[1] + c;
                            const int32_t u01 = load2(x0), v01 = load2(x1);
                            const int32_t u23 = load2(x0 + 2), v23 = load2(x1 + 2);
                            a0 = __smlad(ec_pkhbt16(u01, v01), wq[0], a0);
                            a1 = __smlad(ec_pkhtb16(u01, v01), wq[1], a1);
                            a2 = __smlad(ec_pkhbt16(u23, v23), wq[2], a2);
                            a3 = __smlad(ec_pkhtb16(u23, v23), wq[3], a3);
                            tp += 2;
                            wq += 4;
                        }
                        if (taps & 1) {
                            const int16_t *x0 = tp[0] + c;
                            const int32_t u01 = load2(x0), u23 = load2(x0 + 2);
                            a0 = __smlabb(u01, wq[0], a0);
                            a1 = __smlatb(u01, wq[1], a1);
                            a2 = __smlabb(u23, wq[2], a2);
                            a3 = __smlatb(u23, wq[3], a3);
                        }
                        dw_out4(bias, q, c, fast, a0, a1, a2, a3, output);
                    }
                }
#endif
                dw_channels(p, q, in_b, base, weights, bias, fast, full_c, in_c, ky0, ky1, kx0, kx1, output);
                output += in_c;
            }
        }
    }
}
