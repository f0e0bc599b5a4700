/*
 * ec_softmax_s8: int8 softmax along n of data viewed as [outer][n][inner]; output scale 1/out_n (out_n <= 256),
 * zero point out_zp. m = max along the axis; e = exp_table[m - x] (exp(-d * scale) in Q16); sum = sum of e;
 * out = min(out_zp + (e * out_n + sum / 2) / sum, 127). exp_table[0] (exp(0) = 65536) must be non-zero.
 */
#include "edgec.h"

void ec_softmax_s8(int32_t outer, int32_t n, int32_t inner, const uint32_t *exp_table, int32_t out_n, int32_t out_zp,
                   const int8_t *input, int8_t *output)
{
    int32_t o, j, k;

    for (o = 0; o < outer; ++o) {
        for (j = 0; j < inner; ++j) {
            const int8_t *x = input + o * n * inner + j;
            int8_t *y = output + o * n * inner + j;
            uint64_t sum = 0;
            int32_t m = -128;
            int32_t xi;
            for (k = 0, xi = 0; k < n; ++k, xi += inner) {
                m = x[xi] > m ? x[xi] : m;
            }
            for (k = 0, xi = 0; k < n; ++k, xi += inner) {
                sum += exp_table[m - x[xi]];
            }
            if (sum < (UINT32_C(1) << 23)) {
                /* e <= sum, so e * out_n + sum / 2 fits 32 bits: avoid the 64-bit division */
                const uint32_t s = (uint32_t)sum;
                for (k = 0, xi = 0; k < n; ++k, xi += inner) {
                    const int32_t q = out_zp + (int32_t)((exp_table[m - x[xi]] * (uint32_t)out_n + s / 2u) / s);
                    y[xi] = (int8_t)(q < 127 ? q : 127);
                }
            } else {
                for (k = 0, xi = 0; k < n; ++k, xi += inner) {
                    const int32_t q = out_zp + (int32_t)(((uint64_t)exp_table[m - x[xi]] * (uint32_t)out_n + sum / 2u) / sum);
                    y[xi] = (int8_t)(q < 127 ? q : 127);
                }
            }
        }
    }
}
