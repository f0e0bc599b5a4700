/*
 * ec_concat: concatenation of data viewed as [outer][axis][inner]; for each outer index, input k contributes
 * axis_sizes[k] * inner elements in order. When tables != NULL and tables[k] != NULL (int8 only, elem_size 1)
 * input k is requantized through that 256-entry table, out = table[x + 128], while it is copied.
 */
#include <string.h>

#include "edgec.h"

void ec_concat(int32_t num_inputs, int32_t outer, int32_t inner, const int32_t *axis_sizes, int32_t elem_size,
               const void *const *inputs, const int8_t *const *tables, void *output)
{
    unsigned char *out = (unsigned char *)output;
    int32_t o, k, i;

    for (o = 0; o < outer; ++o) {
        for (k = 0; k < num_inputs; ++k) {
            const int32_t n = axis_sizes[k] * inner;
            const int8_t *table = tables != NULL ? tables[k] : NULL;
            if (table != NULL) {
                const int8_t *x = (const int8_t *)inputs[k] + o * n;
                int8_t *y = (int8_t *)(void *)out;
                for (i = 0; i < n; ++i) {
                    y[i] = table[x[i] + 128];
                }
            } else {
                memcpy(out, (const unsigned char *)inputs[k] + (size_t)o * (size_t)n * (size_t)elem_size,
                       (size_t)n * (size_t)elem_size);
            }
            out += (size_t)n * (size_t)elem_size;
        }
    }
}
