/*
 * ec_concat_s16: concatenation of int16 data viewed as [outer][axis][inner] (as ec_concat); input k is requantized,
 * out = clamp(ec_requantize(x, mult[k], shift[k]), -32768, 32767), when mult[k] != 0 and copied otherwise.
 */
#include <string.h>

#include "edgec_internal.h"

void ec_concat_s16(int32_t num_inputs, int32_t outer, int32_t inner, const int32_t *axis_sizes,
                   const void *const *inputs, const int32_t *mult, const int32_t *shift, int16_t *output)
{
    int32_t o, k, i;

    for (o = 0; o < outer; ++o) {
        for (k = 0; k < num_inputs; ++k) {
            const int32_t n = axis_sizes[k] * inner;
            const int16_t *x = (const int16_t *)inputs[k] + o * n;
            if (mult[k] != 0) {
                const int32_t m = mult[k], s = shift[k];
                for (i = 0; i < n; ++i) {
                    output[i] = (int16_t)ec_clamp_i32(ec_requantize(x[i], m, s), -32768, 32767);
                }
            } else {
                memcpy(output, x, (size_t)n * sizeof(int16_t));
            }
            output += n;
        }
    }
}
