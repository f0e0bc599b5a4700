/*
 * ec_lrn_f32: local response normalization across channels (ONNX LRN) of float data viewed as [batch][channels]
 * [positions] with element strides per dimension for the input and the output (any of NCHW or NHWC order):
 * y = x / (bias + alpha / size * sum of x^2 over channels c - (size - 1) / 2 .. c + size / 2 (clipped))^beta.
 */
#include "edgec_internal.h"

void ec_lrn_f32(const ec_lrn_params *p, const float *input, float *output)
{
    const int32_t lo_span = (p->size - 1) / 2, hi_span = p->size / 2;
    const float k = p->alpha / (float)p->size;
    int32_t n, s, c, j;

    for (n = 0; n < p->batch; ++n) {
        for (s = 0; s < p->positions; ++s) {
            const float *x = input + n * p->in_strides[0] + s * p->in_strides[2];
            float *y = output + n * p->out_strides[0] + s * p->out_strides[2];
            for (c = 0; c < p->channels; ++c) {
                const int32_t first = c - lo_span < 0 ? 0 : c - lo_span;
                const int32_t last = c + hi_span >= p->channels ? p->channels - 1 : c + hi_span;
                float sum = 0.0f;
                for (j = first; j <= last; ++j) {
                    const float v = x[j * p->in_strides[1]];
                    sum += v * v;
                }
                y[c * p->out_strides[1]] = x[c * p->in_strides[1]] / powf(p->bias + k * sum, p->beta);
            }
        }
    }
}
