/*
 * ec_convert: element type conversion between the layers of a mixed-precision graph (float32, int8, int16).
 * float -> int: clamp(round_half_even(x * scale) + out_zp, qmin, qmax), in float32 (scale = 1 / output scale);
 * int -> float: (float)(x - in_zp) * scale; int -> int: clamp(ec_requantize(x - in_zp, mult, shift) + out_zp).
 * Compiled with EC_TFLM (ec_convert_tflm.c), TFLM's QUANTIZE: float -> int rounds x / scale (scale = the output
 * scale) to nearest with ties away from zero, and int -> int requantizes with TFLM's arithmetic.
 */
#include "edgec_internal.h"

static int32_t load_int(ec_elem_type t, const void *input, int32_t i)
{
    return t == EC_S8 ? ((const int8_t *)input)[i] : ((const int16_t *)input)[i];
}

static void store_int(ec_elem_type t, void *output, int32_t i, int32_t v)
{
    if (t == EC_S8) {
        ((int8_t *)output)[i] = (int8_t)v;
    } else {
        ((int16_t *)output)[i] = (int16_t)v;
    }
}

#if defined(EC_TFLM)
/* TFLM's AffineQuantize: x / scale (scale = the output scale) rounded to nearest, ties away from zero. */
static int32_t quantize_tflm(float x, float scale, float lo, float hi)
{
    const float v = ec_clamp_f32(x / scale, lo, hi);
    int32_t r = (int32_t)v; /* toward zero */
    const float f = v - (float)r; /* exact */
    return r + (f >= 0.5f ? 1 : (f <= -0.5f ? -1 : 0));
}
#else

/* Round to the nearest integer, ties to even (numpy's rint), for |v| < 2^23. */
static int32_t round_half_even(float v)
{
    int32_t r = (int32_t)v; /* toward zero */
    const float f = v - (float)r; /* exact */
    if (f > 0.5f || (f == 0.5f && (r & 1) != 0)) {
        ++r;
    } else if (f < -0.5f || (f == -0.5f && (r & 1) != 0)) {
        --r;
    }
    return r;
}
#endif

/* int -> int with the element types known in the loop (through load_int/store_int it took 36 instructions per
 * element on Cortex-M7: dscnn_kws's int16 conv_1 output, 8,000 elements, 288,029 instructions). */
#define REQUANTIZE_LOOP(IN_T, OUT_T)                                                                                   \
    do {                                                                                                               \
        const IN_T *x = (const IN_T *)input;                                                                           \
        OUT_T *y = (OUT_T *)output;                                                                                    \
        const int32_t mult = p->mult, shift = p->shift, lo = qmin - out_zp, hi = qmax - out_zp;                        \
        for (i = 0; i < size; ++i) {                                                                                   \
            y[i] = (OUT_T)(ec_clamp_i32(ec_requantize((int32_t)x[i] - in_zp, mult, shift), lo, hi) + out_zp);          \
        }                                                                                                              \
    } while (0)

void ec_convert(int32_t size, const ec_convert_params *p, const void *input, void *output)
{
    const ec_elem_type in_type = p->in_type, out_type = p->out_type;
    const int32_t in_zp = p->in_zp, out_zp = p->out_zp, qmin = p->qmin, qmax = p->qmax;
    const float scale = p->scale;
    int32_t i;

    if (in_type == EC_F32) {
        const float *x = (const float *)input;
        const float lo = (float)(qmin - out_zp), hi = (float)(qmax - out_zp);
        for (i = 0; i < size; ++i) {
#if defined(EC_TFLM)
            store_int(out_type, output, i, quantize_tflm(x[i], scale, lo, hi) + out_zp);
#else
            store_int(out_type, output, i, round_half_even(ec_clamp_f32(x[i] * scale, lo, hi)) + out_zp);
#endif
        }
    } else if (out_type == EC_F32) {
        float *y = (float *)output;
        for (i = 0; i < size; ++i) {
            y[i] = (float)(load_int(in_type, input, i) - in_zp) * scale;
        }
    } else if (in_type == EC_S16 && out_type == EC_S8) {
        REQUANTIZE_LOOP(int16_t, int8_t);
    } else if (in_type == EC_S8 && out_type == EC_S16) {
        REQUANTIZE_LOOP(int8_t, int16_t);
    } else if (in_type == EC_S8) {
        REQUANTIZE_LOOP(int8_t, int8_t);
    } else {
        REQUANTIZE_LOOP(int16_t, int16_t);
    }
}
