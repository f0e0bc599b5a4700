/*
 * ec_softmax_tflm_s8: TensorFlow Lite Micro's int8 SOFTMAX (its reference kernel: gemmlowp's fixed-point exp and
 * reciprocal), output scale 1/256 and zero point -128. Data viewed as [outer][n][inner], softmax along n.
 * For x with d = x - max >= diff_min: s = srdhm(d * 2^left_shift, mult) (Q5.26), e = exp(s) (Q0.31), sum of
 * rdbpot(e, 12) (Q12.19); out = clamp(rdbpot(srdhm(recip, e), bits + 23) - 128, -128, 127) with recip, bits from the
 * reciprocal of the sum. Other x give -128. Numpy twin: toolchain/ops/tflm.py softmax_s8.
 */
#include "edgec_internal.h"
#include "edgec_tflm.h"

/* a + b modulo 2^32 (gemmlowp's fixed-point addition of int32 raws) */
static int32_t add_wrap(int32_t a, int32_t b)
{
    return (int32_t)((uint32_t)a + (uint32_t)b);
}

/* x * 2^n saturated to int32 (gemmlowp's SaturatingRoundingMultiplyByPOT with a positive exponent) */
static int32_t sat_shl(int32_t x, int32_t n)
{
    const int32_t limit = (int32_t)((INT64_C(1) << (31 - n)) - 1);
    if (x > limit) {
        return INT32_MAX;
    }
    if (x < -limit) {
        return INT32_MIN;
    }
    return (int32_t)((uint32_t)x << n);
}

/* exp(a) for a in [-1/4, 0), Q0.31: exp(-1/8) * exp(t) with t = a + 1/8, exp(t) by its Taylor polynomial of degree 4 */
static int32_t exp_quarter(int32_t a)
{
    const int32_t exp_minus_eighth = 1895147668, one_third = 715827883;
    const int32_t t = add_wrap(a, 1 << 28);
    const int32_t t2 = ec_tflm_srdhm(t, t), t3 = ec_tflm_srdhm(t2, t), t4 = ec_tflm_srdhm(t2, t2);
    const int32_t t4_4 = ec_tflm_rdbpot(t4, 2);
    const int32_t poly = ec_tflm_rdbpot(add_wrap(ec_tflm_srdhm(add_wrap(t4_4, t3), one_third), t2), 1);
    return add_wrap(exp_minus_eighth, ec_tflm_srdhm(exp_minus_eighth, add_wrap(t, poly)));
}

/* exp(a) for a <= 0 in Q5.26, result Q0.31: the remainder modulo 1/4 through exp_quarter, then one factor
 * exp(-2^k) (Q0.31) for every bit 2^k of the whole quarters, k = -2 .. 4. */
static int32_t exp_negative(int32_t a)
{
    static const int32_t factors[7] = {1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242};
    const int32_t quarter = 1 << 24;
    const int32_t rem = (int32_t)((uint32_t)a & (uint32_t)(quarter - 1)) - quarter;
    const int32_t whole = rem - a;
    int32_t r = exp_quarter(sat_shl(rem, 5));
    int32_t k;
    for (k = 0; k < 7; ++k) {
        if (whole & (1 << (24 + k))) {
            r = ec_tflm_srdhm(r, factors[k]);
        }
    }
    return a == 0 ? INT32_MAX : r;
}

/* 1 / (1 + x) for x in [0, 1) Q0.31, result Q0.31 (times 1/2): Newton-Raphson from 48/17 - 32/17 h, three steps. */
static int32_t reciprocal(int32_t x)
{
    const int64_t s = (int64_t)x + INT32_MAX;
    const int32_t half = (int32_t)((s + (s >= 0 ? 1 : -1)) / 2); /* rounding half sum of x and one, Q0.31 */
    int32_t r = add_wrap(1515870810, ec_tflm_srdhm(half, -1010580540)); /* Q2.29 */
    int32_t i;
    for (i = 0; i < 3; ++i) {
        const int32_t err = add_wrap(1 << 29, -ec_tflm_srdhm(half, r));
        r = add_wrap(r, sat_shl(ec_tflm_srdhm(r, err), 2));
    }
    return sat_shl(r, 1);
}

static int32_t count_leading_zeros(uint32_t x)
{
    int32_t n = 0;
    if (x == 0) {
        return 32;
    }
    while ((x & 0x80000000u) == 0) {
        x <<= 1;
        ++n;
    }
    return n;
}

void ec_softmax_tflm_s8(int32_t outer, int32_t n, int32_t inner, int32_t mult, int32_t left_shift, int32_t diff_min,
                        const int8_t *input, int8_t *output)
{
    int32_t o, i, j;
    for (o = 0; o < outer; ++o) {
        for (i = 0; i < inner; ++i) {
            const int8_t *x = input + o * n * inner + i;
            int8_t *y = output + o * n * inner + i;
            int32_t m = -128, sum = 0, clz, bits, recip;
            for (j = 0; j < n; ++j) {
                m = x[j * inner] > m ? x[j * inner] : m;
            }
            for (j = 0; j < n; ++j) {
                const int32_t d = x[j * inner] - m;
                if (d >= diff_min) {
                    const int32_t e = exp_negative(ec_tflm_srdhm(ec_tflm_shl(d, left_shift), mult));
                    sum = add_wrap(sum, ec_tflm_rdbpot(e, 12));
                }
            }
            clz = count_leading_zeros((uint32_t)sum);
            bits = 12 - clz;
            recip = reciprocal((int32_t)(((uint32_t)sum << clz) - 0x80000000u));
            for (j = 0; j < n; ++j) {
                const int32_t d = x[j * inner] - m;
                int32_t r = -128;
                if (d >= diff_min) {
                    const int32_t e = exp_negative(ec_tflm_srdhm(ec_tflm_shl(d, left_shift), mult));
                    r = ec_clamp_i32(ec_tflm_rdbpot(ec_tflm_srdhm(recip, e), bits + 23) - 128, -128, 127);
                }
                y[j * inner] = (int8_t)r;
            }
        }
    }
}
