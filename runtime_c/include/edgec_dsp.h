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

/* Instructions GCC does not form from plain C (a rotated SXTB16/SXTAB16 operand, PKHBT/PKHTB, SMMUL). */
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

/* x saturated to [-128, 127] */
static inline int32_t ec_ssat8(int32_t x)
{
    int32_t r;
    __asm__("ssat %0, #8, %1" : "=r"(r) : "r"(x));
    return r;
}

/* (a * b) >> 32: the high word of the product, rounded down */
static inline int32_t ec_smmul(int32_t a, int32_t b)
{
    int32_t r;
    __asm__("smmul %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
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
 * magnitude and every shift is negative (per-channel quantization), so that ec_requant_fast applies. */
static inline int32_t ec_fast_ok(const int32_t *bias, const ec_quant_s8 *q, int32_t n, int32_t k)
{
    const int64_t limit = (INT64_C(1) << 30) - (int64_t)k * 256 * 128;
    int32_t i;
    if (limit <= 0 || !q->per_channel) {
        return 0;
    }
    for (i = 0; i < n; ++i) {
        if ((bias != NULL && (bias[i] >= limit || bias[i] <= -limit)) || q->shift[i] >= 0) {
            return 0;
        }
    }
    return 1;
}

/* ec_requantize(acc, mult, shift) + zp for -2^30 <= acc < 2^30 and shift < 0, with zp21 = 2 * zp + 1 (not
 * clamped). With e = -shift >= 1, ec_requantize is floor((floor(acc * mult / 2^(30 + e)) + 1) / 2), and
 * floor(acc * mult / 2^(30 + e)) = floor(t / 2^(e - 1)) with t = floor(acc * mult / 2^31) = floor(2 acc * mult / 2^32),
 * one SMMUL; adding 2 zp + 1 before the last halving rounds and folds in the zero point. */
static inline int32_t ec_requant_fast(int32_t acc, int32_t mult, int32_t shift, int32_t zp21)
{
#if defined(EC_TFLM)
    /* TFLM's arithmetic (edgec_tflm.h) plus zp: srdhm(acc, mult) = (2 acc * mult + 2^31) >> 32 is one SMMULR (2 acc
     * fits: |acc| < 2^30), then rdbpot by e = -shift >= 1 as in ec_tflm_rdbpot_pos, the zero point folded into its
     * last halving as above. */
#if defined(__ARM_FEATURE_DSP)
    int32_t t;
    __asm__("smmulr %0, %1, %2" : "=r"(t) : "r"(acc * 2), "r"(mult));
#else
    const int32_t t = ec_tflm_srdhm(acc, mult);
#endif
    return (((t + (t >> 31)) >> (-shift - 1)) + zp21) >> 1;
#elif defined(__ARM_FEATURE_DSP)
    const int32_t t = ec_smmul(acc * 2, mult);
#else
    const int32_t t = (int32_t)(((int64_t)acc * mult) >> 31);
#endif
    return ((t >> (-shift - 1)) + zp21) >> 1;
}

/* The whole output stage in the fast case (see ec_fast_ok). */
static inline int8_t ec_output_fast(int32_t acc, int32_t mult, int32_t shift, int32_t zp21, int32_t lo, int32_t hi)
{
    const int32_t t = ec_requant_fast(acc, mult, shift, zp21);
    return (int8_t)(t < lo ? lo : (t > hi ? hi : t));
}

#if defined(__ARM_FEATURE_DSP)
/* Four values saturated to int8 and clamped to [lo, hi] (lo4, hi4: the bounds in each byte), packed into the bytes
 * of a word (r0 in the lowest). */
static inline int32_t ec_clamp4(int32_t r0, int32_t r1, int32_t r2, int32_t r3, int32_t lo4, int32_t hi4)
{
    const int32_t lo = (int32_t)(((uint32_t)ec_ssat8(r0) & 0xffu) | ((uint32_t)ec_ssat8(r1) << 8));
    const int32_t hi = (int32_t)(((uint32_t)ec_ssat8(r2) & 0xffu) | ((uint32_t)ec_ssat8(r3) << 8));
    int32_t v = ec_pkhbt16(lo, hi);
    (void)__ssub8(v, lo4);
    v = (int32_t)__sel((uint32_t)v, (uint32_t)lo4);
    (void)__ssub8(v, hi4);
    return (int32_t)__sel((uint32_t)hi4, (uint32_t)v);
}

/* A byte in each of the 4 bytes of a word. */
static inline int32_t ec_dup8(int32_t v)
{
    return (int32_t)(((uint32_t)v & 0xffu) * 0x01010101u);
}
#endif

/* The fast output stage (see ec_fast_ok) of 4 consecutive channels: accumulators a[0..3], their multipliers and
 * shifts, clamped to [lo, hi] and stored at out (one word store with the DSP extension). */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline void ec_store4_fast(int8_t *out, const int32_t *a, const int32_t *mult, const int32_t *shift,
                                  int32_t zp21, int32_t lo, int32_t hi)
{
    const int32_t r0 = ec_requant_fast(a[0], mult[0], shift[0], zp21);
    const int32_t r1 = ec_requant_fast(a[1], mult[1], shift[1], zp21);
    const int32_t r2 = ec_requant_fast(a[2], mult[2], shift[2], zp21);
    const int32_t r3 = ec_requant_fast(a[3], mult[3], shift[3], zp21);
#if defined(__ARM_FEATURE_DSP)
    const uint32_t v = (uint32_t)ec_clamp4(r0, r1, r2, r3, ec_dup8(lo), ec_dup8(hi));
    memcpy(out, &v, 4);
#else
    out[0] = (int8_t)ec_clamp_i32(r0, lo, hi);
    out[1] = (int8_t)ec_clamp_i32(r1, lo, hi);
    out[2] = (int8_t)ec_clamp_i32(r2, lo, hi);
    out[3] = (int8_t)ec_clamp_i32(r3, lo, hi);
#endif
}

#endif /* EDGEC_DSP_H */
