/*
 * ec_fully_connected_mve_s8: int8 fully connected layer, two input rows x 4 output channels per step (one row x 4
 * channels for a single row), 16 multiply-accumulates per VMLADAVA.S8 with Helium (Cortex-M55); plain C
 * elsewhere. Weights [out_c][depth] int8, bias folded with the input zero point (edgec_mve.h); no scratch. Same
 * results as ec_fully_connected_s8 bit for bit.
 */
#include "edgec_mve.h"

#if defined(__ARM_FEATURE_MVE)
/* the output of channel c from its dot product (bias, mult and shift in the pair layout) */
static inline int8_t one_output(const ec_quant_s8 *q, const int32_t *bias, int32_t c, int32_t dot)
{
    const int32_t s = ec_mve_pair_slot(c, 0);
    return ec_output_s8(ec_requantize(dot + bias[s], q->mult[s], q->shift[s]), q->out_zp, q->act_min, q->act_max);
}
#endif

void ec_fully_connected_mve_s8(int32_t rows, int32_t depth, int32_t out_c, const ec_quant_s8 *q,
                               const int8_t *input, const int8_t *weights, const int32_t *bias, int8_t *output)
{
    const int32_t right = ec_mve_right_shifts(q->shift, 2 * out_c);
    if (rows != 1) {
        ec_mve_gemm_rows_s8(input, depth, rows, weights, depth, out_c, bias, q, output, right);
        return;
    }
#if defined(__ARM_FEATURE_MVE)
    if (out_c & 3) {
        /* one row: 4 channels per step, the last 1 to 3 channels 2 per step (as one position of a 2 x 2 block)
         * rather than in plain C (mobilenet_vww96's 256 -> 2 layer: 2,209 -> 286 instructions) */
        int32_t c;
        for (c = out_c & ~3; c < out_c; c += 2) {
            const int8_t *w0 = weights + c * depth;
            const int32x4_t acc = ec_mve_dot_2x2(input, input, w0, c + 1 < out_c ? w0 + depth : w0, depth);
            output[c] = one_output(q, bias, c, vgetq_lane_s32(acc, 0));
            if (c + 1 < out_c) {
                output[c + 1] = one_output(q, bias, c + 1, vgetq_lane_s32(acc, 1));
            }
        }
        out_c &= ~3;
    }
#endif
    ec_mve_gemm_s8(input, NULL, weights, depth, out_c, bias, q, output, NULL, right);
}
