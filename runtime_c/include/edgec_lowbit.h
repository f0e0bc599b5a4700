/*
 * edgec runtime: kernels of the low-bit quantization schemes. Same conventions as edgec.h.
 *
 * Q-format q7 (--quantize qformat): every tensor has a power-of-two scale 2^-n and zero point 0 (Qm.n, m + n = 7),
 * weights 2^-n_w per output channel, bias int32 at 2^-(n_in + n_w). The output stage is a rounding arithmetic
 * shift by s = n_in + n_w - n_out (no multiplier):
 *   out = clamp(ec_shift_round(acc, s[oc]), act_min, act_max), acc = bias[oc] + sum(x * w).
 *
 * int4 weights (--quantize int4): int8 activations and the int8 output stage (ec_quant_s8), weights symmetric per
 * output channel in [-7, 7], two per byte (two's complement nibbles). Depthwise: element k of a row is in byte
 * k / 2, the low nibble for an even k, the high nibble for an odd k; conv and fully connected rows are in the
 * grouped order of edgec_s4.h. Every row starts on a byte (a row of odd length ends with a
 * zero nibble): conv rows are the taps of an output channel ([out_c][k_h][k_w] rows of in_c / groups), fully
 * connected rows are output channels ([out_c] rows of depth), depthwise rows are taps ([k_h][k_w] rows of out_c).
 */
#ifndef EDGEC_LOWBIT_H
#define EDGEC_LOWBIT_H

#include "edgec.h"

#ifdef __cplusplus
extern "C" {
#endif

/* q7 output stage. */
typedef struct {
    int32_t act_min; /* >= -128, carries a fused Relu/Clip */
    int32_t act_max; /* <= 127 */
    const int8_t *shift; /* per output channel (or one entry when per_channel == 0), in [-23, 31] */
    int32_t per_channel;
} ec_quant_q7;

/* Rounding arithmetic shift: s > 0: x / 2^s rounded half up, computed as (x >> s) + bit s - 1 of x (no overflow);
 * s <= 0: x * 2^-s with x first clamped to [-256, 255] (the result only feeds an int8 clamp). Twin of shift_round in
 * toolchain/ops/base.py. */
static inline int32_t ec_shift_round(int32_t x, int32_t s)
{
    if (s > 0) {
        return (x >> s) + ((x >> (s - 1)) & 1);
    }
    return ec_clamp_i32(x, -256, 255) * (1 << -s);
}

/* The two's complement nibbles of a byte b (bits 0-3, bits 4-7) as int32: a shift left and an arithmetic shift
 * right each. */
static inline int32_t ec_s4_lo(uint32_t b)
{
    return (int32_t)(b << 28) >> 28;
}

static inline int32_t ec_s4_hi(uint32_t b)
{
    return (int32_t)(b << 24) >> 28;
}

/* q7 kernels: the geometry and weight layouts of ec_conv2d_s8 / ec_depthwise_conv2d_s8 / ec_fully_connected_s8. */
void ec_conv2d_q7(const ec_conv_params *p, const ec_quant_q7 *q, const int8_t *input, const int8_t *weights,
                  const int32_t *bias, int8_t *output);
void ec_depthwise_conv2d_q7(const ec_conv_params *p, const ec_quant_q7 *q, const int8_t *input,
                            const int8_t *weights, const int32_t *bias, int8_t *output);
void ec_fully_connected_q7(int32_t rows, int32_t depth, int32_t out_c, const ec_quant_q7 *q, const int8_t *input,
                           const int8_t *weights, const int32_t *bias, int8_t *output);

/* int4-weight kernels: ec_conv2d_s8 / ec_depthwise_conv2d_s8 / ec_fully_connected_s8 with packed int4 weights. */
void ec_conv2d_s4(const ec_conv_params *p, const ec_quant_s8 *q, const int8_t *input, const uint8_t *weights,
                  const int32_t *bias, int8_t *output);
void ec_depthwise_conv2d_s4(const ec_conv_params *p, const ec_quant_s8 *q, const int8_t *input,
                            const uint8_t *weights, const int32_t *bias, int8_t *output);
void ec_fully_connected_s4(int32_t rows, int32_t depth, int32_t out_c, const ec_quant_s8 *q, const int8_t *input,
                           const uint8_t *weights, const int32_t *bias, int8_t *output);

#ifdef __cplusplus
}
#endif

#endif /* EDGEC_LOWBIT_H */
