/*
 * ec_softmax_f32: float softmax along n of data viewed as [outer][n][inner]:
 * out = expf(x - max) / sum of expf(x - max) along the axis. In-place (output == input) is allowed.
 */
#include <math.h>

#include "edgec.h"

void ec_softmax_f32(int32_t outer, int32_t n, int32_t inner, const float *input, float *output)
{
    int32_t o, j, k;

    for (o = 0; o < outer; ++o) {
        for (j = 0; j < inner; ++j) {
            const float *x = input + o * n * inner + j;
            float *y = output + o * n * inner + j;
            float m = -INFINITY;
            float sum = 0.0f;
            int32_t xi;
            for (k = 0, xi = 0; k < n; ++k, xi += inner) {
                m = x[xi] > m ? x[xi] : m;
            }
            for (k = 0, xi = 0; k < n; ++k, xi += inner) {
                y[xi] = expf(x[xi] - m);
                sum += y[xi];
            }
            for (k = 0, xi = 0; k < n; ++k, xi += inner) {
                y[xi] = y[xi] / sum;
            }
        }
    }
}
