/*
 * ec_lut_s16: int16 unary op through 513 knots, linearly interpolated (ec_interp_s16): u = x + 32768,
 * out = t[u >> 7] + (((t[(u >> 7) + 1] - t[u >> 7]) * (u & 127) + 64) >> 7). In-place is allowed.
 */
#include "edgec_internal.h"

void ec_lut_s16(int32_t size, const int16_t *table, const int16_t *input, int16_t *output)
{
    int32_t i;

    for (i = 0; i < size; ++i) {
        output[i] = (int16_t)ec_interp_s16(table, input[i]);
    }
}
