/*
 * The direct depthwise 2-D convolution, NHWC, of the portable kernels of every element type:
 * ec_depthwise_conv2d_s8, _s16, _q7, _f32 and _s4 are each a list of the definitions below followed by
 * #include "edgec_depthwise_direct.h", which writes the function (as edgec_conv2d_direct.h does for convolutions).
 *
 *   EC_DW_NAME, EC_DW_STAGE_T, EC_DW_IN_T, EC_DW_W_T, EC_DW_BIAS_T, EC_DW_OUT_T, EC_DW_ACC_T
 *                            the function, the type of q (its output stage) and the element types
 *   EC_DW_STAGE              declarations of the output stage's values, read from q before the loops
 *   EC_DW_BEGIN              statements before the loops (may be empty)
 *   EC_DW_CHANNEL            declarations for output channel oc (may be empty)
 *   EC_DW_TAP_SIZE           weight elements per tap row (out_c; bytes for int4)
 *   EC_DW_W_ROW(ky)          the weights of channel oc in tap row ky
 *   EC_DW_PRODUCT(x, w)      one tap's product, from the input value x and the weight element w
 *   EC_DW_FINISH(acc, oc)    the output value of channel oc
 *
 * Weights [k_h][k_w][out_c]; output channel oc = ic * multiplier + m reads input channel ic; acc = bias[oc] (0
 * without bias) + the products of the window taps inside the input, then EC_DW_FINISH.
 */

void EC_DW_NAME(const ec_conv_params *p, const EC_DW_STAGE_T *q, const EC_DW_IN_T *input, const EC_DW_W_T *weights,
                const EC_DW_BIAS_T *bias, EC_DW_OUT_T *output)
{
    /* Parameters are copied to locals: stores through the output may alias them otherwise. */
    const int32_t in_h = p->in_h, in_w = p->in_w, in_c = p->in_c, out_c = p->out_c;
    const int32_t k_h = p->k_h, k_w = p->k_w, dil_h = p->dil_h, dil_w = p->dil_w;
    const int32_t ch_mult = out_c / in_c;
    const int32_t in_row = in_w * in_c;
    const int32_t x_step = dil_w * in_c;
    EC_DW_STAGE
    const int32_t batch = p->batch, out_h = p->out_h, out_w = p->out_w;
    const int32_t stride_h = p->stride_h, stride_w = p->stride_w, pad_top = p->pad_top, pad_left = p->pad_left;
    int32_t b, oy, ox, ic, m, ky, kx;

    EC_DW_BEGIN
    for (b = 0; b < batch; ++b) {
        const EC_DW_IN_T *in_b = input + b * in_h * in_row;
        for (oy = 0; oy < out_h; ++oy) {
            const int32_t iy0 = oy * stride_h - pad_top;
            int32_t ky0, ky1;
            ec_window_range(iy0, dil_h, k_h, in_h, &ky0, &ky1);
            for (ox = 0; ox < out_w; ++ox) {
                const int32_t ix0 = ox * stride_w - pad_left;
                int32_t kx0, kx1;
                int32_t oc = 0;
                ec_window_range(ix0, dil_w, k_w, in_w, &kx0, &kx1);
                for (ic = 0; ic < in_c; ++ic) {
                    for (m = 0; m < ch_mult; ++m, ++oc) {
                        EC_DW_CHANNEL
                        EC_DW_ACC_T acc = bias != NULL ? bias[oc] : 0;
                        for (ky = ky0; ky < ky1; ++ky) {
                            const EC_DW_IN_T *x_row = in_b + (iy0 + ky * dil_h) * in_row + ic;
                            const EC_DW_W_T *w_row = EC_DW_W_ROW(ky);
                            int32_t xi = (ix0 + kx0 * dil_w) * in_c;
                            int32_t wi = kx0 * EC_DW_TAP_SIZE;
                            for (kx = kx0; kx < kx1; ++kx) {
                                acc += EC_DW_PRODUCT(x_row[xi], w_row[wi]);
                                xi += x_step;
                                wi += EC_DW_TAP_SIZE;
                            }
                        }
                        *output++ = EC_DW_FINISH(acc, oc);
                    }
                }
            }
        }
    }
}
