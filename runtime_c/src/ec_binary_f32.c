/*
 * ec_binary_f32: float elementwise binary op with broadcasting.
 * out = clamp(a op b, act_min, act_max) for op in ADD, SUB, MUL, DIV, MAX, MIN; act == NULL means no clamp.
 */
#include "edgec_internal.h"

/* One output row of n elements; operand a (b) starts at a[0] (b[0]) and steps sa (sb) elements. */
static void binary_row(ec_binary_op op, int32_t n, const float *a, int32_t sa, const float *b, int32_t sb, float lo,
                       float hi, float *out)
{
    int32_t i, ia, ib;
    switch (op) {
    case EC_ADD:
        for (i = 0, ia = 0, ib = 0; i < n; ++i, ia += sa, ib += sb) {
            out[i] = ec_clamp_f32(a[ia] + b[ib], lo, hi);
        }
        break;
    case EC_SUB:
        for (i = 0, ia = 0, ib = 0; i < n; ++i, ia += sa, ib += sb) {
            out[i] = ec_clamp_f32(a[ia] - b[ib], lo, hi);
        }
        break;
    case EC_MUL:
        for (i = 0, ia = 0, ib = 0; i < n; ++i, ia += sa, ib += sb) {
            out[i] = ec_clamp_f32(a[ia] * b[ib], lo, hi);
        }
        break;
    case EC_DIV:
        for (i = 0, ia = 0, ib = 0; i < n; ++i, ia += sa, ib += sb) {
            out[i] = ec_clamp_f32(a[ia] / b[ib], lo, hi);
        }
        break;
    case EC_MAX:
        for (i = 0, ia = 0, ib = 0; i < n; ++i, ia += sa, ib += sb) {
            out[i] = ec_clamp_f32(a[ia] > b[ib] ? a[ia] : b[ib], lo, hi);
        }
        break;
    case EC_MIN:
        for (i = 0, ia = 0, ib = 0; i < n; ++i, ia += sa, ib += sb) {
            out[i] = ec_clamp_f32(a[ia] < b[ib] ? a[ia] : b[ib], lo, hi);
        }
        break;
    }
}

void ec_binary_f32(const ec_broadcast_params *bp, ec_binary_op op, const ec_act_f32 *act, const float *a,
                   const float *b, float *output)
{
    float lo, hi;
    ec_nd_iter it;
    int32_t r;

    ec_act_bounds(act, &lo, &hi);
    ec_nd_init(&it, bp->out_shape, bp->a_strides, bp->b_strides);
    for (r = 0; r < it.rows; ++r) {
        binary_row(op, it.row_len, a + it.a_off, it.row_a, b + it.b_off, it.row_b, lo, hi, output);
        output += it.row_len;
        ec_nd_next(&it);
    }
}
