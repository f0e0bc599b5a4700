/*
 * ec_conv2d_sparse_s8: int8 convolution (NHWC, one group, any kernel size, stride, padding and dilation) with
 * row-sparse weights over the im2col columns (format in edgec_sparse.h). The windows of two output pixels at a time
 * are expanded into scratch as int16 x - in_zp (0 for taps outside the input, where the dense kernel adds nothing),
 * then acc = bias[oc] + the entries of row oc times the column, and the output stage of ec_conv2d_s8: the same
 * results bit for bit. DSP extension: two entries per SMLAD.
 */
#include "edgec_sparse_core.h"

int32_t ec_conv2d_sparse_s8_get_buffer_size(const ec_conv_params *p)
{
    const int32_t pixels = p->batch * p->out_h * p->out_w;
    return ec_sparse_cols(pixels) * (4 * ((p->k_h * p->k_w * p->in_c + 1) / 2) + 4 * p->out_c);
}

void ec_conv2d_sparse_s8(const ec_conv_params *p, const ec_quant_s8 *q, const int8_t *input, const uint8_t *counts,
                         const uint8_t *blocks, const int32_t *bias, int8_t *output, void *scratch)
{
    const int32_t depth = p->k_h * p->k_w * p->in_c, out_c = p->out_c, pixels = p->batch * p->out_h * p->out_w;
    const int32_t words = (depth + 1) / 2, cols = ec_sparse_cols(pixels);
    int16_t *col0 = (int16_t *)scratch, *col1 = col0 + 2 * words;
    int32_t *accs0 = (int32_t *)scratch + cols * words, *accs1 = accs0 + out_c;
    int32_t i = 0;

    for (; i + 2 <= pixels; i += 2, output += 2 * out_c) {
        ec_im2col_s8(p, input, i, q->in_zp, col0);
        ec_im2col_s8(p, input, i + 1, q->in_zp, col1);
        ec_sparse_rows2_s8(col0, col1, depth, out_c, counts, blocks, bias, accs0, accs1);
        ec_sparse_outputs(accs0, out_c, q, output);
        ec_sparse_outputs(accs1, out_c, q, output + out_c);
    }
    if (i < pixels) {
        ec_im2col_s8(p, input, i, q->in_zp, col0);
        ec_sparse_rows_s8(col0, depth, out_c, counts, blocks, bias, accs0);
        ec_sparse_outputs(accs0, out_c, q, output);
    }
}
