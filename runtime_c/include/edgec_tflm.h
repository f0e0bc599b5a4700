/*
 * edgec runtime: TensorFlow Lite Micro's integer arithmetic (its reference kernels, double rounding), for the kernels
 * of a build whose graph has arithmetic "tflm" (a .tflite model). Not part of the public API.
 *
 * A kernel computes TFLM's arithmetic when its translation unit defines EC_TFLM before including edgec.h: the
 * requantization helpers (ec_requantize in edgec.h, ec_requant_fast in edgec_dsp.h, ec_mve_requantize in
 * edgec_mve.h, ec_neon_requant in edgec_neon.h) then compute ec_tflm_requantize. The files
 * runtime_c/src/<kernel>_tflm.c do that for <kernel>.c under the name <kernel>_tflm, so that both arithmetics can
 * be linked into one program. The numpy twins are in toolchain/ops/tflm.py.
 */
#ifndef EDGEC_TFLM_H
#define EDGEC_TFLM_H

#include <stdint.h>

/* gemmlowp's SaturatingRoundingDoublingHighMul: a * b * 2 / 2^32 rounded to nearest with ties toward +infinity
 * (TFLM adds 2^30, or 1 - 2^30 for a negative product, and divides by 2^31 truncating toward zero: the same
 * integer); INT32_MIN * INT32_MIN, the only overflow, saturates to INT32_MAX. */
static inline int32_t ec_tflm_srdhm(int32_t a, int32_t b)
{
    const int64_t ab = (int64_t)a * b;
    if (a == INT32_MIN && b == INT32_MIN) {
        return INT32_MAX;
    }
    return (int32_t)((ab + (INT64_C(1) << 30)) >> 31);
}

/* gemmlowp's RoundingDivideByPOT: x / 2^e rounded to nearest with ties away from zero, 0 <= e <= 31. */
static inline int32_t ec_tflm_rdbpot(int32_t x, int32_t e)
{
    const int32_t mask = (int32_t)((INT64_C(1) << e) - 1);
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> e) + ((x & mask) > threshold ? 1 : 0);
}

/* x * 2^n modulo 2^32 (TFLM's x * (1 << n), which wraps on its targets), 0 <= n <= 31. */
static inline int32_t ec_tflm_shl(int32_t x, int32_t n)
{
    return (int32_t)((uint32_t)x << n);
}

/* rdbpot(h, e) for e >= 1 and h > INT32_MIN, in shifts only: ties away from zero are ties up of h - 1 for negative
 * h, and floor((h' + 2^(e - 1)) / 2^e) = floor((floor(h' / 2^(e - 1)) + 1) / 2) = (v >> 1) + (v & 1) with
 * v = h' >> (e - 1) (no overflow). */
static inline int32_t ec_tflm_rdbpot_pos(int32_t h, int32_t e)
{
    const int32_t v = (h + (h >> 31)) >> (e - 1);
    return (v >> 1) + (v & 1);
}

/* TFLM's MultiplyByQuantizedMultiplier: rdbpot(srdhm(x * 2^max(shift, 0), mult), max(-shift, 0)), for mult >= 0
 * (srdhm then never saturates and its result is above INT32_MIN). */
static inline int32_t ec_tflm_requantize(int32_t x, int32_t mult, int32_t shift)
{
    if (shift > 0) {
        return ec_tflm_srdhm(ec_tflm_shl(x, shift), mult);
    } else {
        const int32_t h = (int32_t)(((int64_t)x * mult + (INT64_C(1) << 30)) >> 31);
        return shift == 0 ? h : ec_tflm_rdbpot_pos(h, -shift);
    }
}

#endif /* EDGEC_TFLM_H */
