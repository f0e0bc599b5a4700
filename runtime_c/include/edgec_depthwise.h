/*
 * edgec runtime: pieces of the packed depthwise kernels: ec_depthwise_conv2d_packed_s8 (any kernel size) uses all
 * of it, the 3x3 fast path ec_depthwise_conv2d_3x3_s8 (its own weight layout, see edgec.h) only ec_dw_out. Not
 * part of the public API.
 *
 * Packed depthwise weights (channel multiplier 1): int16, taps t = ky * k_w + kx padded to an even count T2,
 * channels padded to a multiple of 4 (C4), zeros in the padding; for channel group g (4 channels), tap pair p and
 * channel j of the group, the word (int16 pair) at ((g * T2 / 2 + p) * 4 + j) * 2 holds (w[2p][4g + j],
 * w[2p + 1][4g + j]). A dual multiply-accumulate (SMLAD) then applies two taps of one channel at once, once the
 * inputs of the two taps are packed the same way (PKHBT/PKHTB).
 */
#ifndef EDGEC_DEPTHWISE_H
#define EDGEC_DEPTHWISE_H

#include "edgec_dsp.h"

/* Output stage of channel c; fast: ec_fast_ok(bias, q, channels, taps). */
static inline int8_t ec_dw_out(int32_t acc, const ec_quant_s8 *q, int32_t c, int32_t fast)
{
    const int32_t i = q->per_channel ? c : 0;
    if (fast) {
        return ec_output_fast(acc, q->mult[i], q->shift[i], 2 * q->out_zp + 1, q->act_min, q->act_max);
    }
    return ec_output_s8(ec_requantize(acc, q->mult[i], q->shift[i]), q->out_zp, q->act_min, q->act_max);
}

/* Channels c0 .. c1 - 1 of one output position in plain C: the window taps ky in [ky0, ky1), kx in [kx0, kx1)
 * (inside the input); tap (0, 0) of channel 0 is x[base] (base may lie outside the input). */
static inline void ec_dw_channels(const ec_conv_params *p, const ec_quant_s8 *q, const int8_t *x, int32_t base,
                                  const int16_t *w, const int32_t *bias, int32_t fast, int32_t c0, int32_t c1,
                                  int32_t ky0, int32_t ky1, int32_t kx0, int32_t kx1, int8_t *out)
{
    const int32_t in_c = p->in_c, k_w = p->k_w, npairs = (p->k_h * k_w + 1) >> 1;
    const int32_t row = p->in_w * in_c * p->dil_h, col = in_c * p->dil_w;
    int32_t c, ky, kx;
    for (c = c0; c < c1; ++c) {
        const int16_t *wc = w + (c >> 2) * npairs * 8 + (c & 3) * 2;
        int32_t acc = bias != NULL ? bias[c] : 0;
        for (ky = ky0; ky < ky1; ++ky) {
            for (kx = kx0; kx < kx1; ++kx) {
                const int32_t t = ky * k_w + kx;
                acc += (x[base + ky * row + kx * col + c] - q->in_zp) * wc[(t >> 1) * 8 + (t & 1)];
            }
        }
        out[c] = ec_dw_out(acc, q, c, fast);
    }
}

#if defined(__ARM_FEATURE_DSP)
/* 4 channels of one output position whose window is partly outside the input: one tap at a time, SMLAxy. */
static inline void ec_dw_group_border(const ec_conv_params *p, const ec_quant_s8 *q, const int8_t *x,
                                      int32_t base, const int16_t *wg, const int32_t *acc0, int32_t fast, int32_t c,
                                      int32_t ky0, int32_t ky1, int32_t kx0, int32_t kx1, int8_t *out)
{
    const int32_t k_w = p->k_w;
    const int32_t row = p->in_w * p->in_c * p->dil_h, col = p->in_c * p->dil_w;
    const int32_t off = ec_dup16(-q->in_zp);
    int32_t a0 = acc0[0], a1 = acc0[1], a2 = acc0[2], a3 = acc0[3];
    int32_t ky, kx;
    for (ky = ky0; ky < ky1; ++ky) {
        for (kx = kx0; kx < kx1; ++kx) {
            const int32_t t = ky * k_w + kx;
            const int32_t v = ec_load32(x + base + ky * row + kx * col + c);
            const int32_t x02 = __sxtab16(off, v), x13 = ec_sxtab16_ror8(off, v);
            const ec_word *wp = (const ec_word *)(const void *)(wg + (t >> 1) * 8);
            if (t & 1) {
                a0 = __smlabt(x02, wp[0], a0);
                a1 = __smlabt(x13, wp[1], a1);
                a2 = __smlatt(x02, wp[2], a2);
                a3 = __smlatt(x13, wp[3], a3);
            } else {
                a0 = __smlabb(x02, wp[0], a0);
                a1 = __smlabb(x13, wp[1], a1);
                a2 = __smlatb(x02, wp[2], a2);
                a3 = __smlatb(x13, wp[3], a3);
            }
        }
    }
    out[c] = ec_dw_out(a0, q, c, fast);
    out[c + 1] = ec_dw_out(a1, q, c + 1, fast);
    out[c + 2] = ec_dw_out(a2, q, c + 2, fast);
    out[c + 3] = ec_dw_out(a3, q, c + 3, fast);
}

/* Accumulate the tap pair (x0, x1) (4 channels each) with the weight words wp[0..3]. */
#define EC_DW_PAIR(x0, x1, wp)                                                                                  \
    do {                                                                                                         \
        const int32_t v0_ = ec_load32(x0), v1_ = ec_load32(x1);                                                 \
        const int32_t p02_ = __sxtab16(off, v0_), p13_ = ec_sxtab16_ror8(off, v0_);                              \
        const int32_t q02_ = __sxtab16(off, v1_), q13_ = ec_sxtab16_ror8(off, v1_);                              \
        a0 = __smlad(ec_pkhbt16(p02_, q02_), (wp)[0], a0);                                                       \
        a1 = __smlad(ec_pkhbt16(p13_, q13_), (wp)[1], a1);                                                       \
        a2 = __smlad(ec_pkhtb16(p02_, q02_), (wp)[2], a2);                                                       \
        a3 = __smlad(ec_pkhtb16(p13_, q13_), (wp)[3], a3);                                                       \
    } while (0)

/* Accumulate the last, unpaired tap x0 with the low halves of wp[0..3]. */
#define EC_DW_SINGLE(x0, wp)                                                                                    \
    do {                                                                                                         \
        const int32_t v0_ = ec_load32(x0);                                                                       \
        const int32_t p02_ = __sxtab16(off, v0_), p13_ = ec_sxtab16_ror8(off, v0_);                              \
        a0 = __smlabb(p02_, (wp)[0], a0);                                                                        \
        a1 = __smlabb(p13_, (wp)[1], a1);                                                                        \
        a2 = __smlatb(p02_, (wp)[2], a2);                                                                        \
        a3 = __smlatb(p13_, (wp)[3], a3);                                                                        \
    } while (0)
#endif

#endif /* EDGEC_DEPTHWISE_H */
