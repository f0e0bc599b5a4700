/*
 * edgec runtime: the int4 dot product shared by ec_conv2d_s4 and ec_fully_connected_s4 (not part of the public API).
 *
 * A run of n int4 weights (edgec_lowbit.h) comes in groups of 8 elements and a tail: byte j (0..3) of group g holds
 * element 8g + j in its low nibble and element 8g + j + 4 in its high nibble, so that the low nibbles of a word are
 * elements 0-3 and the high nibbles elements 4-7, in the order SXTB16 pairs int8 lanes; the n % 8 tail elements
 * follow in pairs (byte i: element 2i low, 2i + 1 high). n int4 weights take (n + 1) / 2 bytes.
 */
#ifndef EDGEC_S4_H
#define EDGEC_S4_H

#include "edgec_dsp.h"
#include "edgec_lowbit.h"

/* sum over k < n of (x[k] - zp) * w[k]. */
static inline int32_t ec_dot_s4(const int8_t *x, const uint8_t *w, int32_t n, int32_t zp)
{
    const int32_t groups = n / 8;
    const int32_t pairs = (n % 8) / 2;
    int32_t acc = 0;
    int32_t g, j;
#if defined(__ARM_FEATURE_DSP)
    /* Nibbles moved to the top of their bytes are int8 lanes of 16 w; the sum of 16 w (x - zp) is exact in int32
     * for n < 65,000 and a multiple of 16. */
    const int32_t zp2 = ec_dup16(zp);
    int32_t acc16 = 0;
    for (g = 0; g < groups; ++g) {
        const int32_t xa = ec_load32(x), xb = ec_load32(x + 4);
        uint32_t wv;
        memcpy(&wv, w, 4);
        const int32_t lo = (int32_t)((wv << 4) & 0xF0F0F0F0u), hi = (int32_t)(wv & 0xF0F0F0F0u);
        acc16 = __smlad(__ssub16(__sxtb16(xa), zp2), __sxtb16(lo), acc16);
        acc16 = __smlad(__ssub16(ec_sxtb16_ror8(xa), zp2), ec_sxtb16_ror8(lo), acc16);
        acc16 = __smlad(__ssub16(__sxtb16(xb), zp2), __sxtb16(hi), acc16);
        acc16 = __smlad(__ssub16(ec_sxtb16_ror8(xb), zp2), ec_sxtb16_ror8(hi), acc16);
        x += 8;
        w += 4;
    }
    acc = acc16 >> 4;
    (void)j;
#else
    for (g = 0; g < groups; ++g) {
        for (j = 0; j < 4; ++j) {
            acc += (x[j] - zp) * ec_s4_lo(w[j]) + (x[j + 4] - zp) * ec_s4_hi(w[j]);
        }
        x += 8;
        w += 4;
    }
#endif
    for (g = 0; g < pairs; ++g) {
        acc += (x[2 * g] - zp) * ec_s4_lo(w[g]) + (x[2 * g + 1] - zp) * ec_s4_hi(w[g]);
    }
    if (n & 1) {
        acc += (x[2 * pairs] - zp) * ec_s4_lo(w[pairs]);
    }
    return acc;
}

#endif /* EDGEC_S4_H */
