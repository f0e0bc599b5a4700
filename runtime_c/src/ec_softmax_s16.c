/*
 * ec_softmax_s16: int16 softmax along n of data viewed as [outer][n][inner]; output scale 1/32768, zero point 0.
 * m = max along the axis; d = m - x (0..65535); e = exp_table[d >> 7] interpolated linearly towards
 * exp_table[(d >> 7) + 1] by (d & 127) / 128 (knots exp(-128 k * scale) in Q16, k = 0..512), rounding with + 64
 * and an arithmetic shift; sum = sum of e; out = min((e * 32768 + sum / 2) / sum, 32767).
 */
#include "edgec.h"

static uint32_t exp_at(const uint32_t *table, int32_t d)
{
    const int32_t i = d >> 7;
    const int32_t t0 = (int32_t)table[i];
    return (uint32_t)(t0 + ((((int32_t)table[i + 1] - t0) * (d & 127) + 64) >> 7));
}

void ec_softmax_s16(int32_t outer, int32_t n, int32_t inner, const uint32_t *exp_table, const int16_t *input,
                    int16_t *output)
{
    int32_t o, j, k;

    for (o = 0; o < outer; ++o) {
        for (j = 0; j < inner; ++j) {
            const int16_t *x = input + o * n * inner + j;
            int16_t *y = output + o * n * inner + j;
            uint64_t sum = 0;
            int32_t m = -32768;
            int32_t xi;
            for (k = 0, xi = 0; k < n; ++k, xi += inner) {
                m = x[xi] > m ? x[xi] : m;
            }
            for (k = 0, xi = 0; k < n; ++k, xi += inner) {
                sum += exp_at(exp_table, m - x[xi]);
            }
            for (k = 0, xi = 0; k < n; ++k, xi += inner) {
                const uint64_t q = ((uint64_t)exp_at(exp_table, m - x[xi]) * 32768u + sum / 2u) / sum;
                y[xi] = (int16_t)(q < 32767u ? q : 32767u);
            }
        }
    }
}
