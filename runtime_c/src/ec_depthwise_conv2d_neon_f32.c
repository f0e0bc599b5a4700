/*
 * ec_depthwise_conv2d_neon_f32: float depthwise 2-D convolution, channel multiplier 1 (out_c == in_c), any kernel,
 * stride, padding and dilation, NHWC, weights [k_h][k_w][in_c] and bias (never NULL) as ec_depthwise_conv2d_f32's.
 * NEON: 4 channels per vector, 8 per loop, over the window taps inside the input (FMLA on AArch64, VMLA.F32 on
 * ARMv7), so each output is summed in ec_depthwise_conv2d_f32's order; the channels past the last multiple of 4
 * and the whole layer elsewhere in plain C.
 */
#include "edgec_neon_f32.h"

#if defined(__ARM_NEON)
#if defined(__aarch64__)
#define EC_F32_MLA(a, x, w) vfmaq_f32((a), (x), (w))
#else
#define EC_F32_MLA(a, x, w) vmlaq_f32((a), (x), (w))
#endif
#endif

void ec_depthwise_conv2d_neon_f32(const ec_conv_params *p, const ec_act_f32 *act, const float *input,
                                  const float *weights, const float *bias, float *output)
{
    const int32_t in_h = p->in_h, in_w = p->in_w, c_n = p->in_c;
    const int32_t k_w = p->k_w, dil_h = p->dil_h, dil_w = p->dil_w;
    const int32_t in_row = in_w * c_n, x_step = dil_w * c_n;
    float lo, hi;
    int32_t b, oy, ox;

    ec_act_bounds(act, &lo, &hi);
    for (b = 0; b < p->batch; ++b) {
        const float *in_b = input + b * in_h * in_row;
        for (oy = 0; oy < p->out_h; ++oy) {
            const int32_t iy0 = oy * p->stride_h - p->pad_top;
            int32_t ky0, ky1;
            ec_window_range(iy0, dil_h, p->k_h, in_h, &ky0, &ky1);
            for (ox = 0; ox < p->out_w; ++ox) {
                const int32_t ix0 = ox * p->stride_w - p->pad_left;
                int32_t kx0, kx1, c = 0, ky, kx;
                ec_window_range(ix0, dil_w, k_w, in_w, &kx0, &kx1);
#if defined(__ARM_NEON)
                {
                    const float32x4_t vlo = vdupq_n_f32(lo), vhi = vdupq_n_f32(hi);
                    for (; c + 8 <= c_n; c += 8) {
                        float32x4_t a0 = vld1q_f32(bias + c), a1 = vld1q_f32(bias + c + 4);
                        for (ky = ky0; ky < ky1; ++ky) {
                            const float *x = in_b + (iy0 + ky * dil_h) * in_row + (ix0 + kx0 * dil_w) * c_n + c;
                            const float *w = weights + (ky * k_w + kx0) * c_n + c;
                            for (kx = kx0; kx < kx1; ++kx, x += x_step, w += c_n) {
                                a0 = EC_F32_MLA(a0, vld1q_f32(x), vld1q_f32(w));
                                a1 = EC_F32_MLA(a1, vld1q_f32(x + 4), vld1q_f32(w + 4));
                            }
                        }
                        vst1q_f32(output + c, vminq_f32(vmaxq_f32(a0, vlo), vhi));
                        vst1q_f32(output + c + 4, vminq_f32(vmaxq_f32(a1, vlo), vhi));
                    }
                    for (; c + 4 <= c_n; c += 4) {
                        float32x4_t a0 = vld1q_f32(bias + c);
                        for (ky = ky0; ky < ky1; ++ky) {
                            const float *x = in_b + (iy0 + ky * dil_h) * in_row + (ix0 + kx0 * dil_w) * c_n + c;
                            const float *w = weights + (ky * k_w + kx0) * c_n + c;
                            for (kx = kx0; kx < kx1; ++kx, x += x_step, w += c_n) {
                                a0 = EC_F32_MLA(a0, vld1q_f32(x), vld1q_f32(w));
                            }
                        }
                        vst1q_f32(output + c, vminq_f32(vmaxq_f32(a0, vlo), vhi));
                    }
                }
#endif
                for (; c < c_n; ++c) {
                    float acc = bias[c];
                    for (ky = ky0; ky < ky1; ++ky) {
                        const float *x = in_b + (iy0 + ky * dil_h) * in_row + (ix0 + kx0 * dil_w) * c_n + c;
                        const float *w = weights + (ky * k_w + kx0) * c_n + c;
                        for (kx = kx0; kx < kx1; ++kx, x += x_step, w += c_n) {
                            acc += *x * *w;
                        }
                    }
                    output[c] = ec_clamp_f32(acc, lo, hi);
                }
                output += c_n;
            }
        }
    }
}
