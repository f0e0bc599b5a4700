/*
 * ec_fully_connected_sparse_s8: int8 fully connected layer with row-sparse weights (format in edgec_sparse.h):
 * input [rows][depth], output [rows][out_c]. Each input row is expanded once into scratch as int16 x - in_zp; then
 * acc = bias[oc] + sum over the entries of row oc of (x - in_zp) * w, segment by segment, and the output stage of
 * ec_fully_connected_s8. The zeros left out contribute nothing there either, so the results are the same bit for
 * bit. DSP extension: two entries per SMLAD (the gathered inputs paired by PKHBT, the weights by SXTB16).
 */
#include "edgec_dsp.h"
#include "edgec_sparse.h"

/* Scratch of the s8 kernels: depth int16 values x - in_zp (rounded up to 4 bytes), then out_c int32 accumulators. */
static inline int32_t ec_sparse_scratch_bytes(int32_t depth, int32_t out_c)
{
    return 4 * ((depth + 1) / 2) + 4 * out_c;
}

/* dst[i] = src[i] - zp for i < n (in [-255, 255]); dst 4-byte aligned. */
static inline void ec_sparse_expand(int16_t *dst, const int8_t *src, int32_t n, int32_t zp)
{
    int32_t i = 0;
#if defined(__ARM_FEATURE_DSP)
    const int32_t off = ec_dup16(-zp);
    ec_word *d = (ec_word *)(void *)dst;
    for (; i + 4 <= n; i += 4) {
        const int32_t x = ec_load32(src + i);
        const int32_t even = __sxtab16(off, x);       /* elements 0, 2 */
        const int32_t odd = ec_sxtab16_ror8(off, x); /* elements 1, 3 */
        *d++ = ec_pkhbt16(even, odd);
        *d++ = ec_pkhtb16(even, odd);
    }
#endif
    for (; i < n; ++i) {
        dst[i] = (int16_t)(src[i] - zp);
    }
}

/* ec_output_s8(ec_requantize(acc, mult, shift), zp, lo, hi) with zp21 = 2 zp + 1: ec_requant_fast when its
 * conditions hold (a negative shift, |acc| < 2^30). */
static inline int8_t ec_sparse_output(int32_t acc, int32_t mult, int32_t shift, int32_t zp21, int32_t lo, int32_t hi)
{
    if (shift >= 0 || acc < -(1 << 30) || acc >= (1 << 30)) {
        return ec_output_s8(ec_requantize(acc, mult, shift), zp21 >> 1, lo, hi);
    }
    return (int8_t)ec_clamp_i32(ec_requant_fast(acc, mult, shift, zp21), lo, hi);
}

/* out[i] = the output stage of ec_fully_connected_s8 for accumulator acc[i] (bias included), channel i < n.
 * DSP extension: four channels at a time with ec_requant_fast and a 4-lane clamp when their shifts are negative and
 * their accumulators below 2^30 in magnitude. */
static void ec_sparse_outputs(const int32_t *acc, int32_t n, const ec_quant_s8 *q, int8_t *out)
{
    const int32_t *mult = q->mult, *shift = q->shift;
    const int32_t step = q->per_channel ? 1 : 0;
    const int32_t lo = q->act_min, hi = q->act_max, zp21 = 2 * q->out_zp + 1;
    int32_t i = 0;
#if defined(__ARM_FEATURE_DSP)
    const int32_t lo4 = ec_dup8(lo), hi4 = ec_dup8(hi);
    const uint32_t h = UINT32_C(1) << 30;
    for (; step && i + 4 <= n; i += 4) {
        const int32_t *a = acc + i, *m = mult + i, *s = shift + i;
        if ((s[0] & s[1] & s[2] & s[3]) < 0 &&
            (((uint32_t)a[0] + h) | ((uint32_t)a[1] + h) | ((uint32_t)a[2] + h) | ((uint32_t)a[3] + h)) < 2 * h) {
            const int32_t v = ec_clamp4(ec_requant_fast(a[0], m[0], s[0], zp21),
                                        ec_requant_fast(a[1], m[1], s[1], zp21),
                                        ec_requant_fast(a[2], m[2], s[2], zp21),
                                        ec_requant_fast(a[3], m[3], s[3], zp21), lo4, hi4);
            memcpy(out + i, &v, 4);
        } else {
            out[i] = ec_sparse_output(a[0], m[0], s[0], zp21, lo, hi);
            out[i + 1] = ec_sparse_output(a[1], m[1], s[1], zp21, lo, hi);
            out[i + 2] = ec_sparse_output(a[2], m[2], s[2], zp21, lo, hi);
            out[i + 3] = ec_sparse_output(a[3], m[3], s[3], zp21, lo, hi);
        }
    }
#endif
    for (; i < n; ++i) {
        out[i] = ec_sparse_output(acc[i], mult[i * step], shift[i * step], zp21, lo, hi);
    }
}

int32_t ec_fully_connected_sparse_s8_get_buffer_size(int32_t depth, int32_t out_c)
{
    return ec_sparse_scratch_bytes(depth, out_c);
}

/* acc + the entries of one block: 4 indices into seg, then 4 int8 weights. */
static inline int32_t ec_sparse_block(int32_t acc, const int16_t *seg, const uint8_t *b)
{
#if defined(__ARM_FEATURE_DSP)
    const int32_t w = ec_load32((const int8_t *)(const void *)(b + 4));
    acc = __smlad(ec_pkhbt16(seg[b[0]], seg[b[2]]), __sxtb16(w), acc);
    return __smlad(ec_pkhbt16(seg[b[1]], seg[b[3]]), ec_sxtb16_ror8(w), acc);
#else
    const int8_t *w = (const int8_t *)(const void *)(b + 4);
    return acc + seg[b[0]] * w[0] + seg[b[1]] * w[1] + seg[b[2]] * w[2] + seg[b[3]] * w[3];
#endif
}

void ec_fully_connected_sparse_s8(int32_t rows, int32_t depth, int32_t out_c, const ec_quant_s8 *q,
                                  const int8_t *input, const uint8_t *counts, const uint8_t *blocks,
                                  const int32_t *bias, int8_t *output, void *scratch)
{
    int16_t *col = (int16_t *)scratch;
    int32_t *accs = (int32_t *)scratch + (depth + 1) / 2;
    int32_t r, oc, s;

    for (r = 0; r < rows; ++r) {
        const uint8_t *cnt = counts;
        const uint8_t *b = blocks;
        const int32_t *from = bias; /* the sums before this segment */
        if (bias == NULL) {
            memset(accs, 0, (size_t)out_c * sizeof(int32_t));
            from = accs;
        }
        ec_sparse_expand(col, input + r * depth, depth, q->in_zp);
        for (s = 0; s < depth; s += 256, from = accs) {
            const int16_t *seg = col + s;
            for (oc = 0; oc < out_c; ++oc) {
                const uint8_t *end = b + 8 * *cnt++;
                int32_t acc = from[oc];
                if ((end - b) & 8) { /* an odd number of blocks */
                    acc = ec_sparse_block(acc, seg, b);
                    b += 8;
                }
                for (; b != end; b += 16) {
                    acc = ec_sparse_block(ec_sparse_block(acc, seg, b), seg, b + 8);
                }
                accs[oc] = acc;
            }
        }
        ec_sparse_outputs(accs, out_c, q, output + r * out_c);
    }
}
