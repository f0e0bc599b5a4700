/*
 * ec_depthwise_conv2d_3x3_planar_s8: int8 3x3 depthwise convolution, channel multiplier 1, dilation 1, any stride
 * and padding, NHWC, with channel-planar int16 rows in scratch and weights pre-paired along kernel rows (edgec.h).
 *
 * Every input row is expanded once into a ring of 3 scratch rows: per channel c, a plane of wp int16 values
 * (x - in_zp, 0 in the padding) along x, wp = (out_w - 1) * stride_w + 3. An output row then runs channel by
 * channel along x with the channel's 6 weight words (w[r][0], w[r][1]) and (w[r][1], w[r][2]) of each kernel row r
 * kept in registers. The window slides over neighbouring int16 pairs of a plane: with stride 1, two outputs x and
 * x + 1 of a kernel row take the pairs (x, x + 1) and (x + 2, x + 3) -- the second one becomes the next step's
 * first -- and 4 dual multiplies: SMLAD (x, x + 1) * (w0, w1), SMLABT x + 2 * w2 for output x, SMLATB x + 1 * w0,
 * SMLAD (x + 2, x + 3) * (w1, w2) for output x + 1; 18 multiply-accumulates in 12 instructions and 3 loads.
 * Other strides take per output and kernel row the pair (s x, s x + 1) and the single s x + 2.
 * The expansion takes SXTAB16 (subtracting in_zp) and PKHBT/PKHTB for 4 channels and 2 columns at a time.
 * The DSP instructions have plain C twins on other cores (same results); same results as ec_depthwise_conv2d_s8
 * bit for bit.
 *
 * In place (toolchain/inplace.py): an output row is written only after the (at most 3) input rows its windows
 * read were copied to scratch, output rows in order; G = 1.
 */
#include "edgec_depthwise.h"

/* Columns of a plane: (out_w - 1) * stride_w + 3 */
static int32_t dw_columns(const ec_conv_params *p)
{
    return (p->out_w - 1) * p->stride_w + 3;
}

int32_t ec_depthwise_conv2d_3x3_planar_s8_get_buffer_size(const ec_conv_params *p)
{
    return 6 * p->in_c * dw_columns(p);
}

/* v in both int16 lanes */
static inline int32_t dw_dup16(int32_t v)
{
    return (int32_t)(((uint32_t)v & 0xffffu) * 0x10001u);
}

/* The int16 pair (x[0], x[1]) as a word, x[0] in the low half. */
static inline int32_t dw_pair(const int16_t *x)
{
    int32_t v;
    memcpy(&v, x, 4);
    return v;
}

#if defined(__ARM_FEATURE_DSP)
#define DW_SMLAD(x, w, a) __smlad((x), (w), (a))
#define DW_SMLABT(x, w, a) __smlabt((x), (w), (a))
#define DW_SMLATB(x, w, a) __smlatb((x), (w), (a))
#else
static inline int32_t dw_lo(int32_t v)
{
    return (int32_t)(int16_t)(v & 0xffff);
}

static inline int32_t dw_hi(int32_t v)
{
    return v >> 16;
}

#define DW_SMLAD(x, w, a) ((a) + dw_lo(x) * dw_lo(w) + dw_hi(x) * dw_hi(w))
#define DW_SMLABT(x, w, a) ((a) + dw_lo(x) * dw_hi(w))
#define DW_SMLATB(x, w, a) ((a) + dw_hi(x) * dw_lo(w))
#endif

/* Input row `row` (NULL: outside the input) expanded into the in_c planes of wp values at dst; the columns in the
 * padding are left as they are (zero: the scratch is cleared once). */
static void fill_row(const ec_conv_params *p, const int8_t *row, int32_t zp, int32_t wp, int16_t *dst)
{
    const int32_t in_c = p->in_c;
    const int32_t j0 = p->pad_left < wp ? p->pad_left : wp;
    const int32_t j1 = p->pad_left + p->in_w < wp ? p->pad_left + p->in_w : wp;
    const int32_t n = j1 - j0;
    int32_t c = 0, x;
    if (row == NULL) {
        memset(dst, 0, (size_t)(in_c * wp) * sizeof(int16_t));
        return;
    }
    c = 0;
#if defined(__ARM_FEATURE_DSP)
    {
        const int32_t off = ec_dup16(-zp);
        for (; c + 4 <= in_c; c += 4) {
            int16_t *d0 = dst + c * wp + j0;
            int16_t *d1 = d0 + wp, *d2 = d1 + wp, *d3 = d2 + wp;
            const int8_t *s = row + c;
            for (x = 0; x + 2 <= n; x += 2) {
                const int32_t v0 = ec_load32(s), v1 = ec_load32(s + in_c);
                const int32_t a02 = __sxtab16(off, v0), a13 = ec_sxtab16_ror8(off, v0);
                const int32_t b02 = __sxtab16(off, v1), b13 = ec_sxtab16_ror8(off, v1);
                const int32_t w0 = ec_pkhbt16(a02, b02), w1 = ec_pkhbt16(a13, b13);
                const int32_t w2 = ec_pkhtb16(a02, b02), w3 = ec_pkhtb16(a13, b13);
                memcpy(d0 + x, &w0, 4);
                memcpy(d1 + x, &w1, 4);
                memcpy(d2 + x, &w2, 4);
                memcpy(d3 + x, &w3, 4);
                s += 2 * in_c;
            }
            if (x < n) {
                d0[x] = (int16_t)(s[0] - zp);
                d1[x] = (int16_t)(s[1] - zp);
                d2[x] = (int16_t)(s[2] - zp);
                d3[x] = (int16_t)(s[3] - zp);
            }
        }
    }
#endif
    for (; c < in_c; ++c) {
        int16_t *d = dst + c * wp + j0;
        const int8_t *s = row + c;
        for (x = 0; x < n; ++x) {
            d[x] = (int16_t)(s[x * in_c] - zp);
        }
    }
}

/* Accumulators of one channel along an output row (stride 1: 2 at a time, sliding pairs), handed to OUT(acc, x)
 * with x the output column. r: the kernel row 0 plane, d1 and d2: kernel rows 1 and 2 relative to it (int16). */
#define DW_ROW(OUT)                                                                                              \
    do {                                                                                                         \
        const int16_t *r_ = r;                                                                                   \
        int32_t x_ = 0;                                                                                          \
        if (stride == 1) {                                                                                       \
            int32_t a0_ = dw_pair(r_), a1_ = dw_pair(r_ + d1), a2_ = dw_pair(r_ + d2);                           \
            for (; x_ + 2 <= out_w; x_ += 2) {                                                                   \
                const int32_t b0_ = dw_pair(r_ + 2), b1_ = dw_pair(r_ + d1 + 2), b2_ = dw_pair(r_ + d2 + 2);     \
                int32_t s0_ = DW_SMLAD(a0_, w01a, bias), s1_ = DW_SMLATB(a0_, w01a, bias);                       \
                s0_ = DW_SMLABT(b0_, w12a, s0_);                                                                 \
                s1_ = DW_SMLAD(b0_, w12a, s1_);                                                                  \
                s0_ = DW_SMLAD(a1_, w01b, s0_);                                                                  \
                s1_ = DW_SMLATB(a1_, w01b, s1_);                                                                 \
                s0_ = DW_SMLABT(b1_, w12b, s0_);                                                                 \
                s1_ = DW_SMLAD(b1_, w12b, s1_);                                                                  \
                s0_ = DW_SMLAD(a2_, w01c, s0_);                                                                  \
                s1_ = DW_SMLATB(a2_, w01c, s1_);                                                                 \
                s0_ = DW_SMLABT(b2_, w12c, s0_);                                                                 \
                s1_ = DW_SMLAD(b2_, w12c, s1_);                                                                  \
                OUT(s0_, s1_);                                                                                   \
                a0_ = b0_;                                                                                       \
                a1_ = b1_;                                                                                       \
                a2_ = b2_;                                                                                       \
                r_ += 2;                                                                                         \
            }                                                                                                    \
            if (x_ < out_w) {                                                                                    \
                int32_t s0_ = DW_SMLAD(a0_, w01a, bias);                                                         \
                s0_ = DW_SMLABT(r_[2], w12a, s0_);                                                               \
                s0_ = DW_SMLAD(a1_, w01b, s0_);                                                                  \
                s0_ = DW_SMLABT(r_[d1 + 2], w12b, s0_);                                                          \
                s0_ = DW_SMLAD(a2_, w01c, s0_);                                                                  \
                s0_ = DW_SMLABT(r_[d2 + 2], w12c, s0_);                                                          \
                OUT1(s0_);                                                                                       \
            }                                                                                                    \
        } else {                                                                                                 \
            for (; x_ < out_w; ++x_) {                                                                           \
                int32_t s0_ = DW_SMLAD(dw_pair(r_), w01a, bias);                                                 \
                s0_ = DW_SMLABT(r_[2], w12a, s0_);                                                               \
                s0_ = DW_SMLAD(dw_pair(r_ + d1), w01b, s0_);                                                     \
                s0_ = DW_SMLABT(r_[d1 + 2], w12b, s0_);                                                          \
                s0_ = DW_SMLAD(dw_pair(r_ + d2), w01c, s0_);                                                     \
                s0_ = DW_SMLABT(r_[d2 + 2], w12c, s0_);                                                          \
                OUT1(s0_);                                                                                       \
                r_ += stride;                                                                                    \
            }                                                                                                    \
        }                                                                                                        \
    } while (0)

/* ec_requant_fast(s / 2, mult, -e - 1, zp21) before its last halving, for s = 2 acc (the weights are doubled);
 * k = DW_K(zp21, e). Without TFLM's rounding, floor(s * mult / 2^32) + zp21 * 2^e is one SMMLA (|zp21 * 2^e| < 2^30:
 * e <= 21, see dw_ok), and the sum shifted by e is ec_requant_fast's value before its halving. */
#if defined(EC_TFLM)
#define DW_K(zp21, e) (zp21)
#else
#define DW_K(zp21, e) ((zp21) * (1 << (e)))
#endif
static inline int32_t dw_fast(int32_t s, int32_t mult, int32_t e, int32_t k)
{
#if defined(EC_TFLM)
#if defined(__ARM_FEATURE_DSP)
    int32_t t;
    __asm__("smmulr %0, %1, %2" : "=r"(t) : "r"(s), "r"(mult));
#else
    const int32_t t = ec_tflm_srdhm(s / 2, mult);
#endif
    return ((t + (t >> 31)) >> e) + k;
#elif defined(__ARM_FEATURE_DSP)
    int32_t t;
    __asm__("smmla %0, %1, %2, %3" : "=r"(t) : "r"(s), "r"(mult), "r"(k));
    return t >> e;
#else
    return ((int32_t)(((int64_t)s * mult) >> 32) + k) >> e;
#endif
}

/* The fast output stage (ec_fast_ok) with every e = -shift - 1 at most 21 (dw_fast). */
static int32_t dw_ok(const int32_t *bias, const ec_quant_s8 *q, int32_t n)
{
    int32_t i;
    if (!ec_fast_ok(bias, q, n, 9)) {
        return 0;
    }
    for (i = 0; i < n; ++i) {
        if (q->shift[i] < -22) {
            return 0;
        }
    }
    return 1;
}

/* dw_fast's value halved and saturated to int8 */
static inline int32_t dw_sat(int32_t v)
{
#if defined(__ARM_FEATURE_DSP)
    int32_t r;
    __asm__("ssat %0, #8, %1, asr #1" : "=r"(r) : "r"(v));
    return r;
#else
    v >>= 1;
    return v < -128 ? -128 : (v > 127 ? 127 : v);
#endif
}

/* Two saturated outputs clamped to [lo, hi] in int16 lanes (lo2, hi2: the bounds in both), packed (t0 low). */
static inline int32_t dw_clamp2(int32_t t0, int32_t t1, int32_t lo2, int32_t hi2)
{
#if defined(__ARM_FEATURE_DSP)
    int32_t v = ec_pkhbt16(t0, t1);
    (void)__ssub16(v, lo2);
    v = (int32_t)__sel((uint32_t)v, (uint32_t)lo2);
    (void)__ssub16(v, hi2);
    return (int32_t)__sel((uint32_t)hi2, (uint32_t)v);
#else
    const int32_t lo = dw_lo(lo2), hi = dw_lo(hi2);
    t0 = t0 < lo ? lo : (t0 > hi ? hi : t0);
    t1 = t1 < lo ? lo : (t1 > hi ? hi : t1);
    return (int32_t)(((uint32_t)t0 & 0xffffu) | ((uint32_t)t1 << 16));
#endif
}

/* Both int16 lanes of w halved (the doubled weights back to their values). */
static inline int32_t dw_half(int32_t w)
{
#if defined(__ARM_FEATURE_DSP)
    return (int32_t)__shadd16(w, 0);
#else
    return (int32_t)(((uint32_t)(dw_lo(w) / 2) & 0xffffu) | ((uint32_t)(dw_hi(w) / 2) << 16));
#endif
}

#if defined(__ARM_FEATURE_DSP)
/* One kernel row of two outputs: (a, b) = the pairs (x, x + 1) and (x + 2, x + 3) of plane P (two LDRs: an odd
 * plane width leaves every other plane at an odd int16 offset; P advanced by 2 columns), (w01, w12) its weight words at W + OFF; s0 += (a * w01 + b.lo * w12.hi), s1 += (a.hi * w01.lo + b * w12). */
#define DW_ASM_ROW(P, OFF)                                                                                       \
    "ldrd %[t0], %[t1], [%[w], #" #OFF "]\n\t"                                                                   \
    "ldr %[t2], [%[" P "]], #4\n\t"                                                                              \
    "ldr %[t3], [%[" P "]]\n\t"                                                                                   \
    "smlad %[t5], %[t2], %[t0], %[t5]\n\t"                                                                      \
    "smlatb %[t4], %[t2], %[t0], %[t4]\n\t"                                                                     \
    "smlabt %[t5], %[t3], %[t1], %[t5]\n\t"                                                                     \
    "smlad %[t4], %[t3], %[t1], %[t4]\n\t"
#if defined(EC_TFLM)
/* blk: 2 bias, mult, zp21, e; TFLM's rounding (ec_requant_fast), then the halving and int8 saturation. */
#define DW_ASM_OUT                                                                                               \
    "ldrd %[t0], %[t1], [%[blk], #4]\n\t"                                                                       \
    "smmulr %[t5], %[t5], %[t0]\n\t"                                                                            \
    "smmulr %[t4], %[t4], %[t0]\n\t"                                                                            \
    "add %[t5], %[t5], %[t5], asr #31\n\t"                                                                      \
    "add %[t4], %[t4], %[t4], asr #31\n\t"                                                                      \
    "ldr %[t0], [%[blk], #12]\n\t"                                                                              \
    "asr %[t5], %[t5], %[t0]\n\t"                                                                               \
    "asr %[t4], %[t4], %[t0]\n\t"                                                                               \
    "add %[t5], %[t5], %[t1]\n\t"                                                                               \
    "add %[t4], %[t4], %[t1]\n\t"                                                                               \
    "ssat %[t5], #8, %[t5], asr #1\n\t"                                                                         \
    "ssat %[t4], #8, %[t4], asr #1\n\t"
#else
/* blk: 2 bias, mult, k = zp21 * 2^e, e; SMMLA (dw_fast), then the halving and int8 saturation. */
#define DW_ASM_OUT                                                                                               \
    "ldrd %[t0], %[t1], [%[blk], #4]\n\t"                                                                       \
    "smmla %[t5], %[t5], %[t0], %[t1]\n\t"                                                                      \
    "smmla %[t4], %[t4], %[t0], %[t1]\n\t"                                                                      \
    "ldr %[t0], [%[blk], #12]\n\t"                                                                              \
    "asr %[t5], %[t5], %[t0]\n\t"                                                                               \
    "asr %[t4], %[t4], %[t0]\n\t"                                                                               \
    "ssat %[t5], #8, %[t5], asr #1\n\t"                                                                         \
    "ssat %[t4], #8, %[t4], asr #1\n\t"
#endif
/* blk[4], blk[5]: the activation bounds in both int16 lanes */
#define DW_ASM_CLAMP                                                                                             \
    "pkhbt %[t5], %[t5], %[t4], lsl #16\n\t"                                                                    \
    "ldrd %[t0], %[t1], [%[blk], #16]\n\t"                                                                      \
    "ssub16 %[t2], %[t5], %[t0]\n\t"                                                                            \
    "sel %[t5], %[t5], %[t0]\n\t"                                                                               \
    "ssub16 %[t2], %[t5], %[t1]\n\t"                                                                            \
    "sel %[t5], %[t1], %[t5]\n\t"                                                                               \
    "asr %[t4], %[t5], #16\n\t"
/* n >= 1 pairs of outputs of one channel, stride 1: planes p0, p1, p2 (advanced by 2 n columns),
 * weight words w, blk (dw_pairs), output o (advanced by 2 n in_c); 36 instructions per pair (43 with CLAMP). */
#define DW_ASM_PAIRS(CLAMP)                                                                                      \
    __asm__ volatile("1:\n\t"                                                                                    \
                     "ldr %[t5], [%[blk]]\n\t"                                                                  \
                     "mov %[t4], %[t5]\n\t" DW_ASM_ROW("p0", 0) DW_ASM_ROW("p1", 8) DW_ASM_ROW("p2", 16)          \
                     DW_ASM_OUT CLAMP                                                                            \
                     "ldr %[t0], [%[blk], #24]\n\t"                                                             \
                     "strb %[t5], [%[o]]\n\t"                                                                   \
                     "strb %[t4], [%[o], %[t0]]\n\t"                                                            \
                     "add %[o], %[o], %[t0], lsl #1\n\t"                                                        \
                     "subs %[n], %[n], #1\n\t"                                                                  \
                     "bne 1b\n\t"                                                                               \
                     : [p0] "+r"(p0), [p1] "+r"(p1), [p2] "+r"(p2), [o] "+r"(o), [n] "+r"(n), [t0] "=&r"(t0),   \
                       [t1] "=&r"(t1), [t2] "=&r"(t2), [t3] "=&r"(t3), [t4] "=&r"(t4), [t5] "=&r"(t5)           \
                     : [w] "r"(w), [blk] "r"(blk)                                                                \
                     : "cc", "memory")

/* The last output of an odd row: (a, b) = the pair (x, x + 1) and the single x + 2 of each plane; 25 instructions
 * (30 with CLAMP1). */
#define DW_ASM_ONE_ROW(P, OFF)                                                                                   \
    "ldrd %[t0], %[t1], [%[w], #" #OFF "]\n\t"                                                                   \
    "ldr %[t2], [%[" P "]]\n\t"                                                                                   \
    "ldrsh %[t3], [%[" P "], #4]\n\t"                                                                             \
    "smlad %[t5], %[t2], %[t0], %[t5]\n\t"                                                                      \
    "smlabt %[t5], %[t3], %[t1], %[t5]\n\t"
#if defined(EC_TFLM)
#define DW_ASM_OUT1                                                                                              \
    "ldrd %[t0], %[t1], [%[blk], #4]\n\t"                                                                       \
    "smmulr %[t5], %[t5], %[t0]\n\t"                                                                            \
    "add %[t5], %[t5], %[t5], asr #31\n\t"                                                                      \
    "ldr %[t0], [%[blk], #12]\n\t"                                                                              \
    "asr %[t5], %[t5], %[t0]\n\t"                                                                               \
    "add %[t5], %[t5], %[t1]\n\t"                                                                               \
    "ssat %[t5], #8, %[t5], asr #1\n\t"
#else
#define DW_ASM_OUT1                                                                                              \
    "ldrd %[t0], %[t1], [%[blk], #4]\n\t"                                                                       \
    "smmla %[t5], %[t5], %[t0], %[t1]\n\t"                                                                      \
    "ldr %[t0], [%[blk], #12]\n\t"                                                                              \
    "asr %[t5], %[t5], %[t0]\n\t"                                                                               \
    "ssat %[t5], #8, %[t5], asr #1\n\t"
#endif
#define DW_ASM_CLAMP1                                                                                            \
    "ldrd %[t0], %[t1], [%[blk], #16]\n\t"                                                                      \
    "ssub16 %[t2], %[t5], %[t0]\n\t"                                                                            \
    "sel %[t5], %[t5], %[t0]\n\t"                                                                               \
    "ssub16 %[t2], %[t5], %[t1]\n\t"                                                                            \
    "sel %[t5], %[t1], %[t5]\n\t"
#define DW_ASM_ONE(CLAMP)                                                                                        \
    __asm__ volatile("ldr %[t5], [%[blk]]\n\t" DW_ASM_ONE_ROW("p0", 0) DW_ASM_ONE_ROW("p1", 8)                   \
                     DW_ASM_ONE_ROW("p2", 16) DW_ASM_OUT1 CLAMP "strb %[t5], [%[o]]\n\t"                         \
                     : [t0] "=&r"(t0), [t1] "=&r"(t1), [t2] "=&r"(t2), [t3] "=&r"(t3), [t5] "=&r"(t5)           \
                     : [p0] "r"(p0), [p1] "r"(p1), [p2] "r"(p2), [o] "r"(o), [w] "r"(w), [blk] "r"(blk)         \
                     : "memory")

/* Output row `out` in the fast case with stride 1 (see output_row): per channel, blk = (2 bias, mult, k, e, the
 * activation bounds in both int16 lanes, in_c), then DW_ASM_PAIRS along the row and DW_ASM_ONE for an odd width. */
static void output_row_dsp(const ec_conv_params *p, const ec_quant_s8 *q, const int16_t *rows, int32_t d1,
                           int32_t d2, int32_t wp, const int32_t *weights, const int32_t *biases, int8_t *out)
{
    const int32_t in_c = p->in_c, pairs = p->out_w >> 1, odd = p->out_w & 1;
    const int32_t zp21 = 2 * q->out_zp + 1, clamp = q->act_min != -128 || q->act_max != 127;
    const int32_t *const mults = q->mult;
    const int32_t *const shifts = q->shift;
    int32_t blk[7];
    int32_t c, t0, t1, t2, t3, t4, t5;
    blk[4] = dw_dup16(q->act_min);
    blk[5] = dw_dup16(q->act_max);
    blk[6] = in_c;
    for (c = 0; c < in_c; ++c) {
        const int16_t *p0 = rows + c * wp, *p1 = p0 + d1, *p2 = p0 + d2;
        const int32_t *w = weights + c * 6;
        const int32_t e = -shifts[c] - 1;
        int8_t *o = out + c;
        int32_t n = pairs;
        blk[0] = biases != NULL ? 2 * biases[c] : 0;
        blk[1] = mults[c];
        blk[2] = DW_K(zp21, e);
        blk[3] = e;
        if (n > 0) {
            if (clamp) {
                DW_ASM_PAIRS(DW_ASM_CLAMP);
            } else {
                DW_ASM_PAIRS("");
            }
        }
        if (odd) {
            if (clamp) {
                DW_ASM_ONE(DW_ASM_CLAMP1);
            } else {
                DW_ASM_ONE("");
            }
        }
    }
    (void)t0;
    (void)t1;
    (void)t2;
    (void)t3;
    (void)t4;
    (void)t5;
}
#endif

/* Output row `out` from the scratch planes at rows (kernel row 0 of channel 0) + c * wp, kernel rows 1 and 2 d1 and d2
 * after it; every channel. */
static void output_row(const ec_conv_params *p, const ec_quant_s8 *q, int32_t fast, const int16_t *rows,
                       int32_t d1, int32_t d2, int32_t wp, const int32_t *weights, const int32_t *biases,
                       int8_t *out)
{
    const int32_t in_c = p->in_c, out_w = p->out_w, stride = p->stride_w;
    const int32_t zp21 = 2 * q->out_zp + 1, lo = q->act_min, hi = q->act_max;
    const int32_t full = lo == -128 && hi == 127, lo2 = dw_dup16(lo), hi2 = dw_dup16(hi);
    const int32_t *const mults = q->mult;
    const int32_t *const shifts = q->shift;
    int32_t c;
#if defined(__ARM_FEATURE_DSP)
    if (fast && stride == 1) {
        output_row_dsp(p, q, rows, d1, d2, wp, weights, biases, out);
        return;
    }
#endif
    for (c = 0; c < in_c; ++c) {
        const int16_t *r = rows + c * wp;
        const int32_t *w = weights + c * 6;
        int8_t *o = out + c;
        if (fast) { /* 2 acc: doubled weights and bias */
            const int32_t w01a = w[0], w12a = w[1], w01b = w[2], w12b = w[3], w01c = w[4], w12c = w[5];
            const int32_t mult = mults[c], e = -shifts[c] - 1, k = DW_K(zp21, e);
            const int32_t bias = biases != NULL ? 2 * biases[c] : 0;
#define OUT1(s0)                                                                                                 \
    do {                                                                                                         \
        const int32_t t_ = dw_sat(dw_fast((s0), mult, e, k));                                                 \
        o[0] = (int8_t)(t_ < lo ? lo : (t_ > hi ? hi : t_));                                                     \
        o += in_c;                                                                                               \
    } while (0)
            if (full) {
#define OUT2(s0, s1)                                                                                             \
    do {                                                                                                         \
        o[0] = (int8_t)dw_sat(dw_fast((s0), mult, e, k));                                                     \
        o[in_c] = (int8_t)dw_sat(dw_fast((s1), mult, e, k));                                                  \
        o += 2 * in_c;                                                                                           \
    } while (0)
                DW_ROW(OUT2);
#undef OUT2
            } else {
#define OUT2(s0, s1)                                                                                             \
    do {                                                                                                         \
        const int32_t v_ = dw_clamp2(dw_sat(dw_fast((s0), mult, e, k)), dw_sat(dw_fast((s1), mult, e, k)), \
                                     lo2, hi2);                                                                  \
        o[0] = (int8_t)v_;                                                                                       \
        o[in_c] = (int8_t)(v_ >> 16);                                                                            \
        o += 2 * in_c;                                                                                           \
    } while (0)
                DW_ROW(OUT2);
#undef OUT2
            }
#undef OUT1
        } else {
            const int32_t w01a = dw_half(w[0]), w12a = dw_half(w[1]), w01b = dw_half(w[2]), w12b = dw_half(w[3]);
            const int32_t w01c = dw_half(w[4]), w12c = dw_half(w[5]);
            const int32_t bias = biases != NULL ? biases[c] : 0;
#define OUT2(s0, s1)                                                                                             \
    do {                                                                                                         \
        o[0] = ec_dw_out((s0), q, c, 0);                                                                         \
        o[in_c] = ec_dw_out((s1), q, c, 0);                                                                      \
        o += 2 * in_c;                                                                                           \
    } while (0)
#define OUT1(s0)                                                                                                 \
    do {                                                                                                         \
        o[0] = ec_dw_out((s0), q, c, 0);                                                                         \
        o += in_c;                                                                                               \
    } while (0)
            DW_ROW(OUT2);
#undef OUT2
#undef OUT1
        }
    }
}

void ec_depthwise_conv2d_3x3_planar_s8(const ec_conv_params *p, const ec_quant_s8 *q, const int8_t *input,
                                       const int16_t *weights, const int32_t *bias, int8_t *output, void *scratch)
{
    const int32_t in_h = p->in_h, in_c = p->in_c, wp = dw_columns(p);
    const int32_t fast = dw_ok(bias, q, in_c);
    const int32_t *w = (const int32_t *)(const void *)weights;
    int16_t *slots = (int16_t *)scratch;
    int32_t b, oy, k;
    for (b = 0; b < p->batch; ++b) {
        const int8_t *in_b = input + b * in_h * p->in_w * in_c;
        int32_t held[3] = {INT32_MIN, INT32_MIN, INT32_MIN}; /* input row in each scratch slot */
        memset(slots, 0, (size_t)(3 * in_c * wp) * sizeof(int16_t));
        for (oy = 0; oy < p->out_h; ++oy) {
            int32_t at[3]; /* int16 offset of each kernel row's slot */
            for (k = 0; k < 3; ++k) {
                const int32_t iy = oy * p->stride_h - p->pad_top + k;
                const int32_t slot = ((iy % 3) + 3) % 3;
                at[k] = slot * in_c * wp;
                if (held[slot] != iy) {
                    fill_row(p, iy >= 0 && iy < in_h ? in_b + iy * p->in_w * in_c : NULL, q->in_zp, wp,
                             slots + at[k]);
                    held[slot] = iy;
                }
            }
            output_row(p, q, fast, slots + at[0], at[1] - at[0], at[2] - at[0], wp, w, bias, output);
            output += p->out_w * in_c;
        }
    }
}
