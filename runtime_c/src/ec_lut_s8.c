/*
 * ec_lut_s8: int8 unary op through a 256-entry table, out[i] = table[in[i] + 128]. In-place is allowed.
 */
#include "edgec.h"

void ec_lut_s8(int32_t size, const int8_t *table, const int8_t *input, int8_t *output)
{
    const int8_t *const t = table + 128;
    int32_t i;

    for (i = 0; i < size; ++i) {
        output[i] = t[input[i]];
    }
}
