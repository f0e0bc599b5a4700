/*
 * ec_conv2d_nm_s8: int8 convolution (NHWC, one group, any kernel size, stride, padding and dilation) with N:4
 * weights over the im2col columns (n = 1 or 2; format in edgec_sparse.h). The windows of two output pixels at a
 * time are expanded into scratch as int16 x - in_zp (0 for taps outside the input and up to whole blocks), then acc
 * = bias[oc] + the entries of row oc times the column, and the output stage of ec_conv2d_s8: the same results bit
 * for bit. DSP extension: two entries per SMLAD.
 */
#include "edgec_sparse_core.h"

int32_t ec_conv2d_nm_s8_get_buffer_size(const ec_conv_params *p, int32_t n)
{
    const int32_t pixels = p->batch * p->out_h * p->out_w;
    return ec_sparse_cols(pixels) * (2 * ec_nm_depth(p->k_h * p->k_w * p->in_c, n) + 4 * p->out_c);
}

void ec_conv2d_nm_s8(const ec_conv_params *p, int32_t n, const ec_quant_s8 *q, const int8_t *input,
                     const uint8_t *index, const int8_t *values, const int32_t *bias, int8_t *output, void *scratch)
{
    const int32_t depth = p->k_h * p->k_w * p->in_c, out_c = p->out_c, pixels = p->batch * p->out_h * p->out_w;
    const int32_t padded = ec_nm_depth(depth, n), cols = ec_sparse_cols(pixels); /* padded: a multiple of 8 */
    int16_t *col0 = (int16_t *)scratch, *col1 = col0 + padded;
    int32_t *accs0 = (int32_t *)(void *)(col0 + cols * padded), *accs1 = accs0 + out_c;
    int32_t i = 0;

    memset(col0 + depth, 0, (size_t)(padded - depth) * sizeof(int16_t));
    memset(col1 + depth, 0, (size_t)(cols - 1) * (size_t)(padded - depth) * sizeof(int16_t));
    for (; i + 2 <= pixels; i += 2, output += 2 * out_c) {
        ec_im2col_s8(p, input, i, q->in_zp, col0);
        ec_im2col_s8(p, input, i + 1, q->in_zp, col1);
        ec_nm_rows2_s8(col0, col1, depth, out_c, n, index, values, bias, accs0, accs1);
        ec_sparse_outputs(accs0, out_c, q, output);
        ec_sparse_outputs(accs1, out_c, q, output + out_c);
    }
    if (i < pixels) {
        ec_im2col_s8(p, input, i, q->in_zp, col0);
        ec_nm_rows_s8(col0, depth, out_c, n, index, values, bias, accs0);
        ec_sparse_outputs(accs0, out_c, q, output);
    }
}
