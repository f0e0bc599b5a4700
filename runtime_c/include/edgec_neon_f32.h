/*
 * edgec runtime: the matrix core shared by the float kernels written for NEON (Cortex-A53 in AArch64, Cortex-A7 in
 * ARMv7-A): ec_conv2d_1x1_neon_f32, ec_conv2d_im2col_neon_f32 and ec_fully_connected_neon_f32. A NEON path under
 * __ARM_NEON and a plain C path beside it. Not part of the public API.
 *
 * Layout: W [N][K] float is stored in blocks of 4 output channels, [N4 / 4][K][4] (N4 = N rounded up to a multiple
 * of 4, the extra channels zero), so one 128-bit load gives one input column's weights for 4 output channels; the
 * bias is padded with zeros to N4. The lanes of an accumulator are 4 output channels, so each output is summed in
 * ec_conv2d_f32's order: the bias, then input column by input column. AArch64 uses the fused FMLA (one rounding per
 * step), ARMv7 NEON the unfused VMLA.F32 (NEON flushes denormals to zero); the plain C path rounds product and sum
 * separately, as ec_conv2d_f32 does. Up to 4 rows (pixels) are computed at once, so each weight load serves 4 rows.
 */
#ifndef EDGEC_NEON_F32_H
#define EDGEC_NEON_F32_H

#include <string.h>

#include "edgec_internal.h"

#if defined(__ARM_NEON)
#include <arm_neon.h>
#if defined(__aarch64__)
#define EC_F32_MLA_LANE(a, w, v, l) vfmaq_laneq_f32((a), (w), (v), (l))
#define EC_F32_MLA_N(a, w, s) vfmaq_n_f32((a), (w), (s))
#else
#define EC_F32_MLA_LANE(a, w, v, l) vmlaq_lane_f32((a), (w), (l) < 2 ? vget_low_f32(v) : vget_high_f32(v), (l) & 1)
#define EC_F32_MLA_N(a, w, s) vmlaq_n_f32((a), (w), (s))
#endif
#endif

/* Rows computed together. */
#define EC_NEON_F32_ROWS 4

/* N rounded up to a multiple of 4. */
static inline int32_t ec_n4(int32_t n)
{
    return (n + 3) & ~3;
}

/* out + r * out_stride [n] = clamp(bias[n] + sum_i x[r][i] * W[n][i], lo, hi) for r < rows (1 to 4), n < N; W in
 * the blocked layout above, bias padded to N4. */
static inline void ec_neon_f32_rows(int32_t rows, int32_t k, int32_t n, const float *const x[EC_NEON_F32_ROWS],
                                    const float *w, const float *bias, float lo, float hi, float *out,
                                    int32_t out_stride)
{
    int32_t j, r;
#if defined(__ARM_NEON)
    const float *x0 = x[0], *x1 = rows > 1 ? x[1] : x0, *x2 = rows > 2 ? x[2] : x0, *x3 = rows > 3 ? x[3] : x0;
    const float32x4_t vlo = vdupq_n_f32(lo), vhi = vdupq_n_f32(hi);
    for (j = 0; j < n; j += 4) {
        const float *wj = w + j * k; /* block j / 4 starts at (j / 4) * 4 * k */
        float32x4_t acc[EC_NEON_F32_ROWS];
        float32x4_t a0 = vld1q_f32(bias + j), a1 = a0, a2 = a0, a3 = a0;
        int32_t i = 0;
        for (; i + 4 <= k; i += 4) {
            const float32x4_t v0 = vld1q_f32(x0 + i), v1 = vld1q_f32(x1 + i);
            const float32x4_t v2 = vld1q_f32(x2 + i), v3 = vld1q_f32(x3 + i);
            const float *wi = wj + 4 * i;
            float32x4_t wv = vld1q_f32(wi);
            a0 = EC_F32_MLA_LANE(a0, wv, v0, 0);
            a1 = EC_F32_MLA_LANE(a1, wv, v1, 0);
            a2 = EC_F32_MLA_LANE(a2, wv, v2, 0);
            a3 = EC_F32_MLA_LANE(a3, wv, v3, 0);
            wv = vld1q_f32(wi + 4);
            a0 = EC_F32_MLA_LANE(a0, wv, v0, 1);
            a1 = EC_F32_MLA_LANE(a1, wv, v1, 1);
            a2 = EC_F32_MLA_LANE(a2, wv, v2, 1);
            a3 = EC_F32_MLA_LANE(a3, wv, v3, 1);
            wv = vld1q_f32(wi + 8);
            a0 = EC_F32_MLA_LANE(a0, wv, v0, 2);
            a1 = EC_F32_MLA_LANE(a1, wv, v1, 2);
            a2 = EC_F32_MLA_LANE(a2, wv, v2, 2);
            a3 = EC_F32_MLA_LANE(a3, wv, v3, 2);
            wv = vld1q_f32(wi + 12);
            a0 = EC_F32_MLA_LANE(a0, wv, v0, 3);
            a1 = EC_F32_MLA_LANE(a1, wv, v1, 3);
            a2 = EC_F32_MLA_LANE(a2, wv, v2, 3);
            a3 = EC_F32_MLA_LANE(a3, wv, v3, 3);
        }
        for (; i < k; ++i) {
            const float32x4_t wv = vld1q_f32(wj + 4 * i);
            a0 = EC_F32_MLA_N(a0, wv, x0[i]);
            a1 = EC_F32_MLA_N(a1, wv, x1[i]);
            a2 = EC_F32_MLA_N(a2, wv, x2[i]);
            a3 = EC_F32_MLA_N(a3, wv, x3[i]);
        }
        acc[0] = vminq_f32(vmaxq_f32(a0, vlo), vhi);
        acc[1] = vminq_f32(vmaxq_f32(a1, vlo), vhi);
        acc[2] = vminq_f32(vmaxq_f32(a2, vlo), vhi);
        acc[3] = vminq_f32(vmaxq_f32(a3, vlo), vhi);
        for (r = 0; r < rows; ++r) {
            float *o = out + r * out_stride + j;
            if (j + 4 <= n) {
                vst1q_f32(o, acc[r]);
            } else {
                float tail[4];
                vst1q_f32(tail, acc[r]);
                memcpy(o, tail, (size_t)(n - j) * sizeof(float));
            }
        }
    }
#else
    for (j = 0; j < n; j += 4) {
        const float *wj = w + j * k;
        for (r = 0; r < rows; ++r) {
            int32_t l;
            for (l = 0; l < 4 && j + l < n; ++l) {
                float acc = bias[j + l];
                int32_t i;
                for (i = 0; i < k; ++i) {
                    acc += x[r][i] * wj[4 * i + l];
                }
                out[r * out_stride + j + l] = ec_clamp_f32(acc, lo, hi);
            }
        }
    }
#endif
}

#endif
