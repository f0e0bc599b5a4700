/*
 * edgec runtime: portable C99 kernels.
 *
 * Conventions (shared by every kernel):
 *  - Activations are channels-last: NHWC for 2-D ops; a 1-D op is NHWC with H = 1.
 *  - Every constant (quantization multipliers, shifts, lookup tables, strides) is computed at build time in
 *    Python; kernels only run. No malloc, no globals, no float in an s8 kernel.
 *  - s8 kernels must equal the numpy integer reference (toolchain/ops) bit for bit.
 *  - Names: ec_<op>_<type>, one kernel per file in runtime_c/src.
 */
#ifndef EDGEC_H
#define EDGEC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EC_MAX_DIMS 6

/* ---- shared parameter structs --------------------------------------------------------------------------- */

/* Convolution, depthwise convolution and pooling geometry (NHWC). */
typedef struct {
    int32_t batch;
    int32_t in_h, in_w, in_c;
    int32_t out_h, out_w, out_c;
    int32_t k_h, k_w;
    int32_t stride_h, stride_w;
    int32_t dil_h, dil_w;
    int32_t pad_top, pad_left; /* bottom/right padding is implied by out_h/out_w */
    int32_t groups;            /* conv only: in_c % groups == 0, out_c % groups == 0 */
} ec_conv_params;

/* int8 output stage: out = clamp(requantize(acc, mult, shift) + out_zp, act_min, act_max). */
typedef struct {
    int32_t in_zp;
    int32_t out_zp;
    int32_t act_min; /* >= -128, carries a fused Relu/Clip */
    int32_t act_max; /* <= 127 */
    const int32_t *mult;  /* per output channel (or one entry when per_channel == 0) */
    const int32_t *shift; /* per output channel; > 0 means left shift */
    int32_t per_channel;
} ec_quant_s8;

/* int16 (16x8) output stage, zero points 0: out = clamp(ec_requantize_s64(acc, mult, shift), act_min, act_max).
 * mult is the 15-bit multiplier of the 64-bit accumulator (toolchain/ops/base.py reduce_multiplier). */
typedef struct {
    int32_t act_min; /* >= -32768, carries a fused Relu/Clip */
    int32_t act_max; /* <= 32767 */
    const int32_t *mult;  /* per output channel */
    const int32_t *shift; /* per output channel, <= 14 */
} ec_quant_s16;

/* float output stage: out = min(max(acc, act_min), act_max). */
typedef struct {
    float act_min;
    float act_max;
} ec_act_f32;

/* Strided N-d iteration for broadcasting and transposition. Dims are padded on the left with 1 to EC_MAX_DIMS.
 * Element offsets: in_a index = sum(i[d] * a_strides[d]); a stride of 0 broadcasts. */
typedef struct {
    int32_t out_shape[EC_MAX_DIMS];
    int32_t a_strides[EC_MAX_DIMS];
    int32_t b_strides[EC_MAX_DIMS];
} ec_broadcast_params;

/* ---- fixed-point helpers ------------------------------------------------------------------------------------ */

/* x * mult * 2^shift / 2^31 rounded once to the nearest integer (ties toward +infinity), saturated to int32:
 * floor((x * mult + 2^(30 - shift)) / 2^(31 - shift)). mult < 2^31, -31 <= shift <= 30. A single rounding (not
 * gemmlowp's two) gives the integer nearest to the exact product, as a float requantization (onnxruntime's) does
 * except at exact ties. For shift = -e < 0 it is floor((r + 1) / 2) with r = floor(floor(x * mult / 2^31) / 2^(e - 1)),
 * all in 32 bits after the product. */
#if defined(EC_TFLM) && !defined(EDGEC_TFLM_H)
#error "a kernel built with TFLM's arithmetic (EC_TFLM) includes edgec_tflm.h first: see runtime_c/src/<kernel>_tflm.c"
#endif
static inline int32_t ec_requantize(int32_t x, int32_t mult, int32_t shift)
{
#if defined(EC_TFLM) /* a kernel compiled for TFLM's arithmetic (edgec_tflm.h) */
    return ec_tflm_requantize(x, mult, shift);
#else
    const int64_t p = (int64_t)x * mult;
    if (shift < 0) {
        const int32_t r = (int32_t)(p >> 31) >> (-shift - 1);
        return (r >> 1) + (r & 1);
    } else {
        const int64_t r = (p + (INT64_C(1) << (30 - shift))) >> (31 - shift);
        return r > INT32_MAX ? INT32_MAX : (r < INT32_MIN ? INT32_MIN : (int32_t)r);
    }
#endif
}

/* A 64-bit accumulator (|x| < 2^47) times a 15-bit multiplier: (x * mult + 2^(t - 1)) >> t, t = 15 - shift,
 * rounding half up (the arithmetic shift of a negative value is gcc's, as everywhere in edgec). */
static inline int64_t ec_requantize_s64(int64_t x, int32_t mult, int32_t shift)
{
    const int32_t t = 15 - shift;
    return (x * (int64_t)mult + (INT64_C(1) << (t - 1))) >> t;
}

static inline int32_t ec_clamp_i32(int32_t x, int32_t lo, int32_t hi)
{
    return x < lo ? lo : (x > hi ? hi : x);
}

/* ---- kernels ---------------------------------------------------------------------------------------------- */

/* Convolution. input [batch][in_h][in_w][in_c], weights [out_c][k_h][k_w][in_c/groups], bias [out_c] (may be
 * NULL), output [batch][out_h][out_w][out_c]. Padded positions contribute nothing (in s8: x == in_zp).
 * s8: acc = bias[oc] + sum((x - in_zp) * w); then the output stage with mult[oc], shift[oc]. */
void ec_conv2d_s8(const ec_conv_params *p, const ec_quant_s8 *q, const int8_t *input, const int8_t *weights,
                  const int32_t *bias, int8_t *output);
void ec_conv2d_f32(const ec_conv_params *p, const ec_act_f32 *act, const float *input, const float *weights,
                   const float *bias, float *output);

/* Depthwise convolution: groups == in_c, out_c == in_c * multiplier. weights [k_h][k_w][out_c]; output channel
 * oc reads input channel oc / multiplier. Same arithmetic as ec_conv2d_*. */
void ec_depthwise_conv2d_s8(const ec_conv_params *p, const ec_quant_s8 *q, const int8_t *input,
                            const int8_t *weights, const int32_t *bias, int8_t *output);
void ec_depthwise_conv2d_f32(const ec_conv_params *p, const ec_act_f32 *act, const float *input,
                             const float *weights, const float *bias, float *output);

/* Fully connected: input [rows][depth], weights [out_c][depth], bias [out_c] (may be NULL), output
 * [rows][out_c]. s8: acc = bias[oc] + sum((x - in_zp) * w); output stage per oc. */
void ec_fully_connected_s8(int32_t rows, int32_t depth, int32_t out_c, const ec_quant_s8 *q, const int8_t *input,
                           const int8_t *weights, const int32_t *bias, int8_t *output);
void ec_fully_connected_f32(int32_t rows, int32_t depth, int32_t out_c, const ec_act_f32 *act, const float *input,
                            const float *weights, const float *bias, float *output);

/* ---- int8 kernels with packed weights, optimized for the DSP extension (Cortex-M4/M7/M33) -----------------------
 * Each file has an SXTB16/SMLAD path under __ARM_FEATURE_DSP and a plain C path beside it with the same results,
 * which equal ec_conv2d_s8 / ec_depthwise_conv2d_s8 / ec_fully_connected_s8 bit for bit. `scratch` points to
 * ec_<kernel>_get_buffer_size(...) bytes, 4-byte aligned; packed weights are 8-byte aligned.
 *
 * Packed matrix weights (conv with groups == 1 and fully connected): W [N][K] (conv: N = out_c,
 * K = k_h * k_w * in_c in [kh][kw][ic] order), K padded with zeros to K4 = K rounded up to a multiple of 4, N padded
 * with a zero row to an even count; byte (n / 2) * 2 * K4 + (k / 4) * 8 + (n % 2) * 4 + k % 4 holds W[n][k]. */

/* General convolution (groups == 1) through an int16 im2col buffer of 2 output positions. Its packed weights have
 * K = k_h * L4 where every kernel row's L = k_w * in_c weights ([kw][ic] order) are padded with zeros to L4 = L
 * rounded up to a multiple of 4. */
int32_t ec_conv2d_im2col_s8_get_buffer_size(const ec_conv_params *p);
void ec_conv2d_im2col_s8(const ec_conv_params *p, const ec_quant_s8 *q, const int8_t *input,
                         const int8_t *weights, const int32_t *bias, int8_t *output, void *scratch);

/* 1x1 convolution without padding (groups == 1, any stride). */
int32_t ec_conv2d_1x1_s8_get_buffer_size(const ec_conv_params *p);
void ec_conv2d_1x1_s8(const ec_conv_params *p, const ec_quant_s8 *q, const int8_t *input, const int8_t *weights,
                      const int32_t *bias, int8_t *output, void *scratch);

/* General convolution (groups == 1) for few input channels: each window gathered from a band of padded input rows
 * into one int8 row, then expanded (runtime_c/src/ec_conv2d_gather_s8.c); packed weights of [out_c][k_h * k_w *
 * in_c]. */
int32_t ec_conv2d_gather_s8_get_buffer_size(const ec_conv_params *p);
void ec_conv2d_gather_s8(const ec_conv_params *p, const ec_quant_s8 *q, const int8_t *input, const int8_t *weights,
                         const int32_t *bias, int8_t *output, void *scratch);

/* Depthwise convolution, channel multiplier 1 (out_c == in_c == groups), any kernel, stride, padding and dilation,
 * packed int16 weights: taps t = ky * k_w + kx padded to an even count T2, channels to a multiple of 4, zeros in
 * the padding; int16 element ((c / 4 * T2 / 2 + t / 2) * 4 + c % 4) * 2 + t % 2 holds w[t][c]. No scratch. */
void ec_depthwise_conv2d_packed_s8(const ec_conv_params *p, const ec_quant_s8 *q, const int8_t *input,
                                   const int16_t *weights, const int32_t *bias, int8_t *output);
/* 3x3 depthwise convolution, channel multiplier 1, dilation 1, any stride and padding, with a scratch row buffer.
 * Packed int16 weights, channels padded to a multiple of 4: for group g of 4 channels and kernel column kx, 6
 * int16 pairs at (g * 3 + kx) * 12: (w[0][kx][c], w[1][kx][c]) for c = 4g .. 4g + 3, then (w[2][kx][4g],
 * w[2][kx][4g + 2]) and (w[2][kx][4g + 1], w[2][kx][4g + 3]). */
int32_t ec_depthwise_conv2d_3x3_s8_get_buffer_size(const ec_conv_params *p);
void ec_depthwise_conv2d_3x3_s8(const ec_conv_params *p, const ec_quant_s8 *q, const int8_t *input,
                                const int16_t *weights, const int32_t *bias, int8_t *output, void *scratch);
/* 3x3 depthwise convolution, channel multiplier 1, dilation 1, any stride and padding, with a ring of 3
 * channel-planar int16 input rows in scratch. Packed int16 weights, doubled: for channel c and kernel row r, at
 * c * 12 + r * 4: 2 w[r][0][c], 2 w[r][1][c], 2 w[r][1][c], 2 w[r][2][c]. */
int32_t ec_depthwise_conv2d_3x3_planar_s8_get_buffer_size(const ec_conv_params *p);
void ec_depthwise_conv2d_3x3_planar_s8(const ec_conv_params *p, const ec_quant_s8 *q, const int8_t *input,
                                       const int16_t *weights, const int32_t *bias, int8_t *output, void *scratch);

/* Fully connected with packed weights (N = out_c, K = depth). */
int32_t ec_fully_connected_packed_s8_get_buffer_size(int32_t rows, int32_t depth);
void ec_fully_connected_packed_s8(int32_t rows, int32_t depth, int32_t out_c, const ec_quant_s8 *q,
                                  const int8_t *input, const int8_t *weights, const int32_t *bias, int8_t *output,
                                  void *scratch);
/* Fully connected, one input row at a time, weights in blocks of 4 rows (layout in ec_fully_connected_block4_s8.c);
 * scratch: one int16 column. */
int32_t ec_fully_connected_block4_s8_get_buffer_size(int32_t depth);
void ec_fully_connected_block4_s8(int32_t rows, int32_t depth, int32_t out_c, const ec_quant_s8 *q,
                                  const int8_t *input, const int8_t *weights, const int32_t *bias, int8_t *output,
                                  void *scratch, int32_t fast);

/* ---- int8 kernels for Helium (MVE, Cortex-M55) ------------------------------------------------------------------
 * Each file has an MVE path under __ARM_FEATURE_MVE and a plain C path beside it with the same results, which equal
 * ec_conv2d_s8 / ec_depthwise_conv2d_s8 / ec_fully_connected_s8 bit for bit. The input zero point is folded into
 * the bias at build time: bias[c] - in_zp * (sum of channel c's weights); positions in the padding read in_zp
 * (edgec_mve.h). Multipliers and shifts are per channel (q->per_channel == 1). Fully connected weights are plain
 * int8 [N][K], their bias, mult and shift arrays 4 entries per pair of channels (c, c + 1, c, c + 1) (edgec_mve.h);
 * convolution weights (N = out_c, K = k_h * k_w * in_c in [kh][kw][ic] order) are interleaved by pairs of channels
 * and blocks of 16 (edgec_mve_gemm.h ec_mve_dot_pairs), their bias, mult and shift one entry per channel padded to
 * 4. */

/* 1x1 convolution without padding (groups == 1, any stride). No scratch. */
void ec_conv2d_1x1_mve_s8(const ec_conv_params *p, const ec_quant_s8 *q, const int8_t *input,
                          const int8_t *weights, const int32_t *bias, int8_t *output);
/* General convolution (groups == 1) through an int8 im2col buffer of 2 output positions. */
int32_t ec_conv2d_im2col_mve_s8_get_buffer_size(const ec_conv_params *p);
void ec_conv2d_im2col_mve_s8(const ec_conv_params *p, const ec_quant_s8 *q, const int8_t *input,
                             const int8_t *weights, const int32_t *bias, int8_t *output, void *scratch);
/* General convolution (groups == 1) for few input channels: windows gathered from a band of padded input rows
 * (runtime_c/src/ec_conv2d_gather_mve_s8.c), weights and output stage as ec_conv2d_im2col_mve_s8. */
int32_t ec_conv2d_gather_mve_s8_get_buffer_size(const ec_conv_params *p);
void ec_conv2d_gather_mve_s8(const ec_conv_params *p, const ec_quant_s8 *q, const int8_t *input,
                             const int8_t *weights, const int32_t *bias, int8_t *output, void *scratch);
/* Depthwise convolution, any kernel, stride, padding, dilation and channel multiplier; weights, bias, mult and
 * shift in the layouts of runtime_c/src/ec_depthwise_conv2d_mve_s8.c (channels padded to a multiple of 8). No
 * scratch. */
void ec_depthwise_conv2d_mve_s8(const ec_conv_params *p, const ec_quant_s8 *q, const int8_t *input,
                                const int8_t *weights, const int32_t *bias, const uint8_t *in_offsets,
                                const int8_t *zp_row, int8_t *output);
/* Depthwise convolution one channel at a time (VMLA by scalar over 4 output pixels), any kernel, stride, padding,
 * dilation and channel multiplier: weights [out_c][k_h][k_w] ([out_c][k_w][k_h] when transposed), bias folded
 * with in_zp, q->mult/q->shift per channel; scratch: a padded input plane. */
int32_t ec_depthwise_conv2d_plane_mve_s8_get_buffer_size(const ec_conv_params *p, int32_t transposed);
void ec_depthwise_conv2d_plane_mve_s8(const ec_conv_params *p, const ec_quant_s8 *q, const int8_t *input,
                                      const int8_t *weights, const int32_t *bias, int32_t transposed,
                                      int8_t *output, void *scratch);
/* Fully connected, weights [out_c][depth]. No scratch. */
void ec_fully_connected_mve_s8(int32_t rows, int32_t depth, int32_t out_c, const ec_quant_s8 *q,
                               const int8_t *input, const int8_t *weights, const int32_t *bias, int8_t *output);

/* ---- int8 kernels for NEON (Cortex-A53 AArch64, Cortex-A7 ARMv7-A) ------------------------------------------------
 * Each file has a NEON path under __ARM_NEON and a plain C path beside it with the same results, which equal
 * ec_conv2d_s8 / ec_depthwise_conv2d_s8 / ec_fully_connected_s8 bit for bit. They multiply the stored int8 inputs
 * (not x - in_zp) and take a folded bias: bias[oc] - in_zp * (sum of the weights of output channel oc), modulo 2^32
 * (never NULL); inputs in the padding read in_zp. Weights must lie in [-127, 127]. `scratch` points to
 * ec_<kernel>_get_buffer_size(...) bytes (NULL when that is 0). See runtime_c/include/edgec_neon.h.
 *
 * NEON matrix weights (conv with groups == 1, fully connected): W [N][K] (conv: N = out_c, K = k_h * k_w * in_c in
 * [kh][kw][ic] order) with K padded with zeros to K8 = K rounded up to a multiple of 8 and N padded with zero rows
 * to a multiple of 4; byte n * K8 + k holds W[n][k]. */
int32_t ec_conv2d_im2col_neon_s8_get_buffer_size(const ec_conv_params *p);
void ec_conv2d_im2col_neon_s8(const ec_conv_params *p, const ec_quant_s8 *q, const int8_t *input,
                              const int8_t *weights, const int32_t *bias, int8_t *output, void *scratch);
/* 1x1 convolution without padding (groups == 1, any stride). */
int32_t ec_conv2d_1x1_neon_s8_get_buffer_size(const ec_conv_params *p);
void ec_conv2d_1x1_neon_s8(const ec_conv_params *p, const ec_quant_s8 *q, const int8_t *input,
                           const int8_t *weights, const int32_t *bias, int8_t *output, void *scratch);
/* Fully connected (N = out_c, K = depth). */
int32_t ec_fully_connected_neon_s8_get_buffer_size(int32_t rows, int32_t depth);
void ec_fully_connected_neon_s8(int32_t rows, int32_t depth, int32_t out_c, const ec_quant_s8 *q,
                                const int8_t *input, const int8_t *weights, const int32_t *bias, int8_t *output,
                                void *scratch);
/* Convolution with a short dot product (groups == 1, any kernel, stride, padding, dilation), one pixel at a time,
 * products by lane: int16 weights in blocks of 16 output channels (a last one of 8 when out_c rounded up to 8
 * leaves 8), each [K8][width] with zeros in the padding (out_c rounded up to 8); any int8 weight value. */
int32_t ec_conv2d_lanes_neon_s8_get_buffer_size(const ec_conv_params *p);
void ec_conv2d_lanes_neon_s8(const ec_conv_params *p, const ec_quant_s8 *q, const int8_t *input,
                             const int16_t *weights, const int32_t *bias, int8_t *output, void *scratch);
/* Depthwise convolution, channel multiplier 1, weights [k_h][k_w][in_c] (as ec_depthwise_conv2d_s8's). The 3x3
 * kernel: dilation 1, any stride and padding; the other: any kernel of at most 64 taps, stride, padding and
 * dilation. */
int32_t ec_depthwise_conv2d_3x3_neon_s8_get_buffer_size(const ec_conv_params *p);
void ec_depthwise_conv2d_3x3_neon_s8(const ec_conv_params *p, const ec_quant_s8 *q, const int8_t *input,
                                     const int8_t *weights, const int32_t *bias, int8_t *output, void *scratch);
int32_t ec_depthwise_conv2d_neon_s8_get_buffer_size(const ec_conv_params *p);
void ec_depthwise_conv2d_neon_s8(const ec_conv_params *p, const ec_quant_s8 *q, const int8_t *input,
                                 const int8_t *weights, const int32_t *bias, int8_t *output, void *scratch);

/* ---- float kernels for NEON (Cortex-A53 AArch64, Cortex-A7 ARMv7-A) ------------------------------------------------
 * NEON path under __ARM_NEON, plain C beside it. Weights W [N][K] (conv: N = out_c, K = k_h * k_w * in_c in
 * [kh][kw][ic] order) in blocks of 4 output channels, [N4 / 4][K][4] with N4 = N rounded up to 4 and zeros in the
 * extra channels; bias padded with zeros to N4 (never NULL; the depthwise kernel's not padded). Each output is
 * summed in the portable kernel's order; AArch64 fuses each multiply-add (FMLA), so results differ from the
 * portable kernels by rounding only. See
 * runtime_c/include/edgec_neon_f32.h. */
int32_t ec_conv2d_im2col_neon_f32_get_buffer_size(const ec_conv_params *p);
void ec_conv2d_im2col_neon_f32(const ec_conv_params *p, const ec_act_f32 *act, const float *input,
                               const float *weights, const float *bias, float *output, void *scratch);
/* 1x1 convolution without padding (groups == 1, any stride). */
void ec_conv2d_1x1_neon_f32(const ec_conv_params *p, const ec_act_f32 *act, const float *input, const float *weights,
                            const float *bias, float *output);
void ec_fully_connected_neon_f32(int32_t rows, int32_t depth, int32_t out_c, const ec_act_f32 *act,
                                 const float *input, const float *weights, const float *bias, float *output);
/* Depthwise convolution, channel multiplier 1, weights [k_h][k_w][in_c] and bias (not padded) as
 * ec_depthwise_conv2d_f32's; any kernel, stride, padding and dilation. */
void ec_depthwise_conv2d_neon_f32(const ec_conv_params *p, const ec_act_f32 *act, const float *input,
                                  const float *weights, const float *bias, float *output);

/* Elementwise binary ops with broadcasting (ec_broadcast_params; output is dense row-major over out_shape). */
typedef enum { EC_ADD = 0, EC_SUB = 1, EC_MUL = 2, EC_DIV = 3, EC_MAX = 4, EC_MIN = 5 } ec_binary_op;

/* s8 add/sub, TFLite's scheme:
 *   a = requantize((xa - a_zp) << left_shift, a_mult, a_shift); b likewise;
 *   r = (op == EC_ADD) ? a + b : a - b;
 *   out = clamp(requantize(r, out_mult, out_shift) + out_zp, act_min, act_max). */
typedef struct {
    int32_t left_shift;
    int32_t a_zp, a_mult, a_shift;
    int32_t b_zp, b_mult, b_shift;
    int32_t out_zp, out_mult, out_shift;
    int32_t act_min, act_max;
} ec_add_s8_params;
void ec_add_s8(const ec_broadcast_params *bp, ec_binary_op op, const ec_add_s8_params *q, const int8_t *a,
               const int8_t *b, int8_t *output);

/* s8 add/sub in the form the build fits to the exact arithmetic of ec_add_s8 (edgec's or TFLM's) and checks on all
 * 65,536 operand pairs (toolchain/ops/binary.py fit_lut): out = clamp((x * mult + table[(uint8_t)y]) >> 20,
 * act_min, act_max) in int32, x and y the operands (in either order). ec_add_lut_s8: plain C, SSAT on cores with
 * the DSP extension; ec_add_lut_mve_s8: 4 elements per vector (VLDRW gather) under Helium, the same plain C
 * elsewhere. */
typedef struct {
    int32_t mult;
    int32_t act_min, act_max;
} ec_add_lut_params;
void ec_add_lut_s8(const ec_broadcast_params *bp, const ec_add_lut_params *q, const int8_t *x, const int8_t *y,
                   const int32_t *table, int8_t *output);
void ec_add_lut_mve_s8(const ec_broadcast_params *bp, const ec_add_lut_params *q, const int8_t *x, const int8_t *y,
                       const int32_t *table, int8_t *output);

/* s8 mul in the same fitted form with a multiplier per value of y (toolchain/ops/binary.py fit_lut):
 * out = clamp((x * mults[(uint8_t)y] + table[(uint8_t)y]) >> 20, act_min, act_max). */
typedef struct {
    int32_t act_min, act_max;
} ec_mul_lut_params;
void ec_mul_lut_s8(const ec_broadcast_params *bp, const ec_mul_lut_params *q, const int8_t *x, const int8_t *y,
                   const int32_t *mults, const int32_t *table, int8_t *output);
void ec_mul_lut_mve_s8(const ec_broadcast_params *bp, const ec_mul_lut_params *q, const int8_t *x, const int8_t *y,
                       const int32_t *mults, const int32_t *table, int8_t *output);

/* s8 add/sub in an affine form the build fits to the exact arithmetic of ec_add_s8 (edgec's or TFLM's) and checks
 * on all 65,536 operand pairs (toolchain/ops/binary.py fit_affine), for NEON (Cortex-A):
 * out = clamp((x' * x_mul8 * x_mul16 + y' * y_mul8 * y_mul16 + bias) >> 21, act_min, act_max), x' = x + 128 and
 * y' = (uint8_t)y ^ y_flip (0x80: y + 128; 0x7f: 127 - y, for a Sub), the sum modulo 2^32 as int32; x_mul8, y_mul8
 * in 1 .. 255, x_mul16, y_mul16 in 1 .. 65535. */
typedef struct {
    int32_t x_mul8, x_mul16;
    int32_t y_mul8, y_mul16;
    int32_t y_flip;
    int32_t bias;
    int32_t act_min, act_max;
} ec_add_affine_params;
void ec_add_affine_neon_s8(const ec_broadcast_params *bp, const ec_add_affine_params *q, const int8_t *x,
                           const int8_t *y, int8_t *output);

/* s8 mul: out = clamp(requantize((xa - a_zp) * (xb - b_zp), out_mult, out_shift) + out_zp, act_min, act_max). */
typedef struct {
    int32_t a_zp, b_zp;
    int32_t out_zp, out_mult, out_shift;
    int32_t act_min, act_max;
} ec_mul_s8_params;
void ec_mul_s8(const ec_broadcast_params *bp, const ec_mul_s8_params *q, const int8_t *a, const int8_t *b,
               int8_t *output);

/* float binary: out = clamp(a op b). */
void ec_binary_f32(const ec_broadcast_params *bp, ec_binary_op op, const ec_act_f32 *act, const float *a,
                   const float *b, float *output);

/* PRelu: out = x >= 0 ? x : x * slope (slope broadcast through b_strides).
 * s8: v = x - in_zp; out = v >= 0 ? requantize(v, pos_mult, pos_shift) + out_zp
 *                               : requantize(v * (slope - slope_zp), neg_mult, neg_shift) + out_zp; clamp to int8. */
typedef struct {
    int32_t in_zp, slope_zp, out_zp;
    int32_t pos_mult, pos_shift, neg_mult, neg_shift;
} ec_prelu_s8_params;
void ec_prelu_s8(const ec_broadcast_params *bp, const ec_prelu_s8_params *q, const int8_t *input,
                 const int8_t *slope, int8_t *output);
void ec_prelu_f32(const ec_broadcast_params *bp, const float *input, const float *slope, float *output);

/* s8 unary op as a 256-entry table: out[i] = table[in[i] + 128]. Serves Relu, Clip, LeakyRelu, Sigmoid, Tanh,
 * HardSigmoid, HardSwish and requantization. In-place (output == input) is allowed. */
void ec_lut_s8(int32_t size, const int8_t *table, const int8_t *input, int8_t *output);

/* float unary ops. alpha/beta: LeakyRelu alpha; HardSigmoid alpha, beta; Clip uses act. */
typedef enum {
    EC_RELU = 0, EC_CLIP = 1, EC_LEAKY_RELU = 2, EC_SIGMOID = 3, EC_TANH = 4, EC_HARD_SIGMOID = 5,
    EC_HARD_SWISH = 6
} ec_unary_op;
void ec_unary_f32(int32_t size, ec_unary_op op, float alpha, float beta, const ec_act_f32 *act, const float *input,
                  float *output);

/* Max pooling, NHWC, geometry in ec_conv_params (groups unused, out_c == in_c). Window positions in padding are
 * ignored. s8: out = clamp(max, act_min, act_max); the output has the input's scale and zero point. */
void ec_maxpool_s8(const ec_conv_params *p, int32_t act_min, int32_t act_max, const int8_t *input, int8_t *output);
void ec_maxpool_f32(const ec_conv_params *p, const ec_act_f32 *act, const float *input, float *output);

/* Average pooling. acc = sum over the window's positions inside the input of (x - zp) (s8) or x (f32);
 * divisor = count_include_pad ? number of window positions inside [-pad, in + pad_end) : positions inside the
 * input; pad_bottom/pad_right give pad_end. s8 with mult == 0 (the output keeps the input's scale and zero point):
 * out = clamp(rdiv(acc, divisor) + zp, act_min, act_max) where rdiv rounds to nearest with ties to even (as
 * QuantizeLinear rounds a float average). s8 with mult != 0 (an imported model's own output scale; every window has
 * the same divisor d, folded into mult): out = clamp(ec_requantize(acc, mult, shift) + out_zp, act_min, act_max). */
typedef struct {
    int32_t pad_bottom, pad_right;
    int32_t count_include_pad;
    int32_t mult, shift, out_zp; /* s8 only */
} ec_avgpool_extra;
void ec_avgpool_s8(const ec_conv_params *p, const ec_avgpool_extra *x, int32_t zp, int32_t act_min,
                   int32_t act_max, const int8_t *input, int8_t *output);
/* ec_avgpool_s8 for NEON (Cortex-A): the same arguments and results, channels summed in vectors. */
void ec_avgpool_neon_s8(const ec_conv_params *p, const ec_avgpool_extra *x, int32_t zp, int32_t act_min,
                        int32_t act_max, const int8_t *input, int8_t *output);
/* ec_avgpool_s8 summing several channels per instruction (window sums in 16-bit lanes: at most 256 taps per window,
 * k_h * k_w <= 256): ec_avgpool_dsp_s8 4 channels per word (SXTAB16) with the DSP extension, ec_avgpool_mve_s8 16
 * per iteration with Helium; each is the plain C of ec_avgpool_s8 elsewhere. Same results as ec_avgpool_s8. */
void ec_avgpool_dsp_s8(const ec_conv_params *p, const ec_avgpool_extra *x, int32_t zp, int32_t act_min,
                       int32_t act_max, const int8_t *input, int8_t *output);
void ec_avgpool_mve_s8(const ec_conv_params *p, const ec_avgpool_extra *x, int32_t zp, int32_t act_min,
                       int32_t act_max, const int8_t *input, int8_t *output);
void ec_avgpool_f32(const ec_conv_params *p, const ec_avgpool_extra *x, const ec_act_f32 *act, const float *input,
                    float *output);

/* Softmax over an axis: data viewed as [outer][n][inner]; softmax along n.
 * s8: m = max over the axis; d = m - x (0..255); e = exp_table[d] (uint32, exp(-d * scale) in Q16);
 * sum = sum of e; out = min(out_zp + (e * out_n + sum / 2) / sum, 127) (output scale 1/out_n, 1 <= out_n <= 256,
 * zero point out_zp; -128 <= out_zp). */
void ec_softmax_s8(int32_t outer, int32_t n, int32_t inner, const uint32_t *exp_table, int32_t out_n, int32_t out_zp,
                   const int8_t *input, int8_t *output);
void ec_softmax_f32(int32_t outer, int32_t n, int32_t inner, const float *input, float *output);

/* TensorFlow Lite Micro's int8 softmax (output scale 1/256, zero point -128) along n of [outer][n][inner]; mult,
 * left_shift and diff_min as TFLM computes them from beta and the input scale (toolchain/ops/tflm.py). The other
 * kernels with TFLM's arithmetic are <kernel>_tflm (runtime_c/include/edgec_tflm.h). */
void ec_softmax_tflm_s8(int32_t outer, int32_t n, int32_t inner, int32_t mult, int32_t left_shift, int32_t diff_min,
                        const int8_t *input, int8_t *output);

/* ---- int16 activations with int8 weights (16x8), zero points 0 ----------------------------------------------
 * Same geometry and data layout as the s8 kernels. Conv and fully connected accumulate in int64 with an int64 bias
 * and requantize with ec_quant_s16. */
void ec_conv2d_s16(const ec_conv_params *p, const ec_quant_s16 *q, const int16_t *input, const int8_t *weights,
                   const int64_t *bias, int16_t *output);
void ec_depthwise_conv2d_s16(const ec_conv_params *p, const ec_quant_s16 *q, const int16_t *input,
                             const int8_t *weights, const int64_t *bias, int16_t *output);
void ec_fully_connected_s16(int32_t rows, int32_t depth, int32_t out_c, const ec_quant_s16 *q,
                            const int16_t *input, const int8_t *weights, const int64_t *bias, int16_t *output);
/* 16x8 kernels with packed weights for the DSP extension (Cortex-M4/M7/M33): an SXTB16/SMLAD path under
 * __ARM_FEATURE_DSP (int32 sums of at most 256 products added to the int64 accumulator, so the sums are exact) and a
 * plain C path beside it, both equal to ec_conv2d_s16 / ec_fully_connected_s16 bit for bit. Packed weights: the
 * packed matrix layout of the int8 kernels above (W [N][K], conv: N = out_c, K = k_h * k_w * in_c in [kh][kw][ic]
 * order, no padding of the kernel rows) with the bytes of each group of 4 columns in the order (0, 2, 1, 3): byte
 * (n / 2) * 2 * K4 + (k / 4) * 8 + (n % 2) * 4 + (0, 2, 1, 3)[k % 4] holds W[n][k]; 8-byte aligned. */
int32_t ec_conv2d_im2col_s16_get_buffer_size(const ec_conv_params *p);
void ec_conv2d_im2col_s16(const ec_conv_params *p, const ec_quant_s16 *q, const int16_t *input,
                          const int8_t *weights, const int64_t *bias, int16_t *output, void *scratch);
/* Depthwise convolution with channel multiplier 1 and at most 64 taps (k_h * k_w), any stride, padding and
 * dilation; packed int16 weights in the layout of ec_depthwise_conv2d_packed_s8. Scratch: a row of in_c zeros that
 * taps in the padding read. */
int32_t ec_depthwise_conv2d_packed_s16_get_buffer_size(const ec_conv_params *p);
void ec_depthwise_conv2d_packed_s16(const ec_conv_params *p, const ec_quant_s16 *q, const int16_t *input,
                                    const int16_t *weights, const int64_t *bias, int16_t *output, void *scratch);
/* Fully connected (also a 1x1 convolution with stride 1 and no padding: rows = its pixels). No scratch. */
void ec_fully_connected_packed_s16(int32_t rows, int32_t depth, int32_t out_c, const ec_quant_s16 *q,
                                   const int16_t *input, const int8_t *weights, const int64_t *bias,
                                   int16_t *output);
/* Add/sub and mul: the s8 formulas with int16 operands (left_shift 15 for add; zero points 0). */
void ec_add_s16(const ec_broadcast_params *bp, ec_binary_op op, const ec_add_s8_params *q, const int16_t *a,
                const int16_t *b, int16_t *output);
void ec_mul_s16(const ec_broadcast_params *bp, const ec_mul_s8_params *q, const int16_t *a, const int16_t *b,
                int16_t *output);
void ec_maxpool_s16(const ec_conv_params *p, int32_t act_min, int32_t act_max, const int16_t *input,
                    int16_t *output);
void ec_avgpool_s16(const ec_conv_params *p, const ec_avgpool_extra *x, int32_t zp, int32_t act_min,
                    int32_t act_max, const int16_t *input, int16_t *output);
/* Unary op through 513 knots, linearly interpolated: u = x + 32768, i = u >> 7, f = u & 127,
 * out = t[i] + (((t[i + 1] - t[i]) * f + 64) >> 7). In-place is allowed. */
void ec_lut_s16(int32_t size, const int16_t *table, const int16_t *input, int16_t *output);
/* Softmax, output scale 1/32768, zero point 0: d = max - x (0..65535), e = exp_table knots (exp(-128 k * scale) in
 * Q16, k = 0..512) interpolated as in ec_lut_s16 at d; out = min((e * 32768 + sum / 2) / sum, 32767). */
void ec_softmax_s16(int32_t outer, int32_t n, int32_t inner, const uint32_t *exp_table, const int16_t *input,
                    int16_t *output);
/* Concat of int16 data (as ec_concat); input k is requantized, clamp(ec_requantize(x, mult[k], shift[k])), when
 * mult[k] != 0 and copied otherwise. */
void ec_concat_s16(int32_t num_inputs, int32_t outer, int32_t inner, const int32_t *axis_sizes,
                   const void *const *inputs, const int32_t *mult, const int32_t *shift, int16_t *output);

/* ---- element type conversion between layers of a mixed-precision graph ---------------------------------------- */
typedef enum { EC_F32 = 0, EC_S8 = 1, EC_S16 = 2 } ec_elem_type;
/* float -> int: clamp(round_half_even(x * scale) + out_zp, qmin, qmax) in float32 (scale = 1 / output scale);
 * int -> float: (float)(x - in_zp) * scale; int -> int: clamp(ec_requantize(x - in_zp, mult, shift) + out_zp). */
typedef struct {
    ec_elem_type in_type, out_type;
    int32_t in_zp, out_zp;
    int32_t mult, shift;
    float scale;
    int32_t qmin, qmax;
} ec_convert_params;
void ec_convert(int32_t size, const ec_convert_params *p, const void *input, void *output);

/* Data movement, any element size (1, 2 or 4 bytes). */
/* Transpose/strided copy: output dense over bp->out_shape, input element at sum(i[d] * a_strides[d]). */
void ec_transpose(const ec_broadcast_params *bp, int32_t elem_size, const void *input, void *output);

/* Concat: data viewed as [outer][axis][inner]; input k contributes axis_k rows. If tables[k] != NULL (s8 only),
 * the input is requantized through that 256-entry table while it is copied. */
void ec_concat(int32_t num_inputs, int32_t outer, int32_t inner, const int32_t *axis_sizes, int32_t elem_size,
               const void *const *inputs, const int8_t *const *tables, void *output);

/* Constant pad: in_shape/pads_begin/pads_end padded on the left to EC_MAX_DIMS; out_shape = in + begin + end.
 * pad_value points to one element of elem_size bytes. */
void ec_pad(const int32_t *in_shape, const int32_t *pads_begin, const int32_t *pads_end, int32_t elem_size,
            const void *pad_value, const void *input, void *output);

/* Reflect (edge == 0) or edge padding, shapes and pads as ec_pad (pads >= 0; reflect: pads <= size - 1). */
void ec_pad_mirror(const int32_t *in_shape, const int32_t *pads_begin, const int32_t *pads_end, int32_t elem_size,
                   int32_t edge, const void *input, void *output);

/* Mean over dimensions: input dense over in_shape (EC_MAX_DIMS, left-padded with 1); out_strides[d] is the output
 * stride of input dimension d, 0 for a reduced one; output = sum * scale. */
void ec_reduce_mean_f32(const int32_t *in_shape, const int32_t *out_strides, int32_t out_size, float scale,
                        const float *input, float *output);
/* int8, the output keeping the input's scale and zero point: output = round_half_even(sum(x - zp) / count) + zp;
 * scratch holds out_size int32 sums. */
void ec_reduce_mean_s8(const int32_t *in_shape, const int32_t *out_strides, int32_t out_size, int32_t count,
                       int32_t zp, const int8_t *input, int8_t *output, void *scratch);

/* Local response normalization across channels: data viewed as [batch][channels][positions], strides in elements
 * ({batch, channel, position}) for input and output. */
typedef struct {
    int32_t batch, channels, positions;
    int32_t in_strides[3];
    int32_t out_strides[3];
    int32_t size;
    float alpha, beta, bias;
} ec_lrn_params;
void ec_lrn_f32(const ec_lrn_params *p, const float *input, float *output);

#ifdef __cplusplus
}
#endif

#endif /* EDGEC_H */
