/*
 * The direct (grouped) 2-D convolution, NHWC, of the portable kernels of every element type: ec_conv2d_s8, _s16,
 * _q7, _f32 and _s4 are each a list of the definitions below followed by #include "edgec_conv2d_direct.h", which
 * writes the function. Only the element types, one tap's dot product and the output stage differ between them.
 *
 *   EC_CONV_NAME             the function
 *   EC_CONV_STAGE_T          its second parameter q: the output stage (ec_quant_s8, ec_quant_s16, ec_quant_q7,
 *                            ec_act_f32)
 *   EC_CONV_IN_T, EC_CONV_W_T, EC_CONV_BIAS_T, EC_CONV_OUT_T, EC_CONV_ACC_T
 *                            element types of input, weights, bias, output and accumulator
 *   EC_CONV_TAP_SIZE         weight elements per tap of one output channel (expression of ic_per_g)
 *   EC_CONV_STAGE            declarations of the output stage's values, read from q before the loops (stores
 *                            through the output may alias q)
 *   EC_CONV_BEGIN            statements before the loops (may be empty)
 *   EC_CONV_DOT(acc, x, w)   statement: acc += the ic_per_g products of one tap (inputs x, weights w; the loop
 *                            counter c is declared for it)
 *   EC_CONV_FINISH(acc, oc)  the output value of channel oc
 *
 * Weights [out_c][k_h][k_w][in_c / groups]; acc = bias[oc] (0 without bias) + the dot products of the window taps
 * inside the input, then EC_CONV_FINISH.
 */

void EC_CONV_NAME(const ec_conv_params *p, const EC_CONV_STAGE_T *q, const EC_CONV_IN_T *input,
                  const EC_CONV_W_T *weights, const EC_CONV_BIAS_T *bias, EC_CONV_OUT_T *output)
{
    /* Parameters are copied to locals: stores through the output may alias them otherwise. */
    const int32_t in_h = p->in_h, in_w = p->in_w, in_c = p->in_c;
    const int32_t k_h = p->k_h, k_w = p->k_w, dil_h = p->dil_h, dil_w = p->dil_w;
    const int32_t groups = p->groups > 0 ? p->groups : 1;
    const int32_t ic_per_g = in_c / groups;
    const int32_t oc_per_g = p->out_c / groups;
    const int32_t w_oc_size = k_h * k_w * EC_CONV_TAP_SIZE;
    const int32_t in_row = in_w * in_c;
    EC_CONV_STAGE
    const int32_t batch = p->batch, out_h = p->out_h, out_w = p->out_w;
    const int32_t stride_h = p->stride_h, stride_w = p->stride_w, pad_top = p->pad_top, pad_left = p->pad_left;
    int32_t b, oy, ox, g, j, ky, kx, c;

    EC_CONV_BEGIN
    for (b = 0; b < batch; ++b) {
        const EC_CONV_IN_T *in_b = input + b * in_h * in_row;
        for (oy = 0; oy < out_h; ++oy) {
            const int32_t iy0 = oy * stride_h - pad_top;
            int32_t ky0, ky1;
            ec_window_range(iy0, dil_h, k_h, in_h, &ky0, &ky1);
            for (ox = 0; ox < out_w; ++ox) {
                const int32_t ix0 = ox * stride_w - pad_left;
                int32_t kx0, kx1;
                int32_t oc = 0;
                ec_window_range(ix0, dil_w, k_w, in_w, &kx0, &kx1);
                for (g = 0; g < groups; ++g) {
                    const EC_CONV_IN_T *in_g = in_b + g * ic_per_g;
                    for (j = 0; j < oc_per_g; ++j, ++oc) {
                        const EC_CONV_W_T *w_oc = weights + oc * w_oc_size;
                        EC_CONV_ACC_T acc = bias != NULL ? bias[oc] : 0;
                        for (ky = ky0; ky < ky1; ++ky) {
                            const EC_CONV_IN_T *x_row = in_g + (iy0 + ky * dil_h) * in_row;
                            const EC_CONV_W_T *w_row = w_oc + ky * k_w * EC_CONV_TAP_SIZE;
                            for (kx = kx0; kx < kx1; ++kx) {
                                const EC_CONV_IN_T *x = x_row + (ix0 + kx * dil_w) * in_c;
                                const EC_CONV_W_T *w = w_row + kx * EC_CONV_TAP_SIZE;
                                EC_CONV_DOT(acc, x, w);
                            }
                        }
                        *output++ = EC_CONV_FINISH(acc, oc);
                    }
                }
            }
        }
    }
}
