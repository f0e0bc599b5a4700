/*
 * edgec runtime: helpers shared by the kernels optimized for the Arm DSP extension (Cortex-M4/M7/M33), and the
 * exact output stage they use. Not part of the public API.
 */
#ifndef EDGEC_DSP_H
#define EDGEC_DSP_H

#include <string.h>

#include "edgec_internal.h"

#if defined(__ARM_FEATURE_DSP)
#include <arm_acle.h>
/* A 32-bit word that may alias any object (buffers are written and read both as words and as int8/int16). */
typedef int32_t ec_word __attribute__((may_alias));

/* Instructions GCC does not form from plain C (a rotated SXTB16/SXTAB16 operand, PKHBT/PKHTB, SMMULR). */
static inline int32_t ec_sxtb16_ror8(int32_t x)
{
    int32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}

static inline int32_t ec_sxtab16_ror8(int32_t a, int32_t x)
{
    int32_t r;
    __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(a), "r"(x));
    return r;
}

/* (a.lo, b.lo) */
static inline int32_t ec_pkhbt16(int32_t a, int32_t b)
{
    int32_t r;
    __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(r) : "r"(a), "r"(b));
    return r;
}

/* (a.hi, b.hi): PKHTB b, a, asr #16 */
static inline int32_t ec_pkhtb16(int32_t a, int32_t b)
{
    int32_t r;
    __asm__("pkhtb %0, %1, %2, asr #16" : "=r"(r) : "r"(b), "r"(a));
    return r;
}

/* (a * b + 2^31) >> 32 */
static inline int32_t ec_smmulr(int32_t a, int32_t b)
{
    int32_t r;
    __asm__("smmulr %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
    return r;
}

/* Two int16 lanes holding v. */
static inline int32_t ec_dup16(int32_t v)
{
    return (int32_t)(((uint32_t)v & 0xffffu) * 0x10001u);
}

static inline int32_t ec_load32(const int8_t *p)
{
    int32_t x;
    memcpy(&x, p, 4); /* one LDR (unaligned access is allowed) */
    return x;
}
#endif

/* 1 when every accumulator bias[i] + (a sum of k products of (x - zp) and an int8 weight) is below 2^30 in
 * magnitude, so that ec_output_fast applies. bias may be NULL. */
static inline int32_t ec_acc_small(const int32_t *bias, int32_t n, int32_t k)
{
    const int64_t limit = (INT64_C(1) << 30) - (int64_t)k * 256 * 128;
    int32_t i;
    if (limit <= 0) {
        return 0;
    }
    for (i = 0; bias != NULL && i < n; ++i) {
        if (bias[i] >= limit || bias[i] <= -limit) {
            return 0;
        }
    }
    return 1;
}

/* ec_output_s8(ec_requantize(acc, mult, shift), zp, lo, hi) for |acc| < 2^30 and shift = -e < 0, with
 * half = 2^(e - 1): ec_srdhm(acc, mult) = (acc * mult + 2^30) >> 31 (gemmlowp's nudge is a round-half-up) =
 * (2 acc * mult + 2^31) >> 32, one SMMULR; then the rounding right shift with ties away from zero. */
static inline int8_t ec_output_fast(int32_t acc, int32_t mult, int32_t e, int32_t half, int32_t zp, int32_t lo,
                                    int32_t hi)
{
#if defined(__ARM_FEATURE_DSP)
    int32_t t = ec_smmulr(acc * 2, mult);
#else
    int32_t t = (int32_t)(((int64_t)acc * mult + (INT64_C(1) << 30)) >> 31);
#endif
    t = ((t + half - (int32_t)((uint32_t)t >> 31)) >> e) + zp;
    t = t < lo ? lo : t;
    return (int8_t)(t > hi ? hi : t);
}

#endif /* EDGEC_DSP_H */
