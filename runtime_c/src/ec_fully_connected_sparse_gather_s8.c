/*
 * ec_fully_connected_sparse_gather_s8: int8 fully connected layer with row-group sparse weights (format in
 * edgec_sparse.h): input [rows][depth], output [rows][out_c]. The input zero point is folded into the biases at
 * build time, so the nonzero weights gather the int8 inputs directly (no expansion); four weight rows go through the
 * loop together, one entry of each per step, each into its own accumulator, and every step's 4 column offsets and
 * 4 weights (int16 pairs) come in one LDM. acc = bias[oc] - in_zp * sum(w) + sum(w * x) equals the dense kernel's
 * bias[oc] + sum(w * (x - in_zp)), and the output stage is ec_fully_connected_s8's: the same results bit for bit.
 * Cortex-M7 (QEMU): 2.5 instructions per entry (DSP extension: LDM, 4 LDRSB, 4 SMLABB/SMLABT per step of 4
 * entries, two steps per loop) against 4.1 per nonzero for ec_fully_connected_sparse_s8 (bench/sparse_cost.py).
 */
#include "edgec_dsp.h"
#include "edgec_sparse.h"

#if defined(__ARM_FEATURE_DSP) && defined(__thumb2__)
/* One step (4 entries) from p: offsets into r4, r5, r6, r8, weight pairs (lanes 0 and 2, 1 and 3) into r10, r11. */
#define EC_GATHER_STEP                                                                                              \
    "ldmia %[p]!, {r4, r5, r6, r8, r10, r11}\n\t"                                                                  \
    "ldrsb r4, [%[x], r4]\n\t"                                                                                      \
    "ldrsb r5, [%[x], r5]\n\t"                                                                                      \
    "ldrsb r6, [%[x], r6]\n\t"                                                                                      \
    "ldrsb r8, [%[x], r8]\n\t"                                                                                      \
    "smlabb %[a0], r4, r10, %[a0]\n\t"                                                                              \
    "smlabb %[a1], r5, r11, %[a1]\n\t"                                                                              \
    "smlabt %[a2], r6, r10, %[a2]\n\t"                                                                              \
    "smlabt %[a3], r8, r11, %[a3]\n\t"
#endif

/* a[j] += the entries of lane j in the steps from *pp to end; *pp = end. */
static inline void ec_gather_steps(int32_t *a, const int8_t *x, const int32_t **pp, const int32_t *end)
{
    const int32_t *p = *pp;
    int32_t a0 = a[0], a1 = a[1], a2 = a[2], a3 = a[3];
#if defined(__ARM_FEATURE_DSP) && defined(__thumb2__)
    /* two steps per loop; an odd number of steps enters the loop at its second step */
    __asm__ volatile("cmp %[p], %[end]\n\t"
                     "beq 3f\n\t"
                     "ldr r4, [%[p], #-20]\n\t" /* the group's steps in bytes (24 per step), EC_GATHER_HEAD words back */
                     "tst r4, #8\n\t"
                     "bne 2f\n\t"
                     "1:\n\t" EC_GATHER_STEP "2:\n\t" EC_GATHER_STEP
                     "cmp %[p], %[end]\n\t"
                     "bne 1b\n\t"
                     "3:\n\t"
                     : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [p] "+r"(p)
                     : [x] "r"(x), [end] "r"(end)
                     : "r4", "r5", "r6", "r8", "r10", "r11", "cc", "memory");
#else
    for (; p != end; p += EC_GATHER_WORDS) {
        a0 += x[p[0]] * (int16_t)p[4];
        a1 += x[p[1]] * (int16_t)p[5];
        a2 += x[p[2]] * (p[4] >> 16);
        a3 += x[p[3]] * (p[5] >> 16);
    }
#endif
    a[0] = a0;
    a[1] = a1;
    a[2] = a2;
    a[3] = a3;
    *pp = p;
}

#if defined(__ARM_FEATURE_DSP)
/* ec_requant_fast(acc, mult, ~ns, zp21) * 2 + 1 from acc2 = 2 acc, before its last halving (done by
 * ec_clamp4_ssat): acc2 is what ec_requant_fast doubles (edgec: SMMUL; TFLM: SMMULR, as ec_requant_fast). */
static inline int32_t ec_gather_fast2(int32_t acc2, int32_t mult, int32_t ns, int32_t zp21)
{
    int32_t t;
#if defined(EC_TFLM)
    __asm__("smmulr %0, %1, %2" : "=r"(t) : "r"(acc2), "r"(mult));
    return ((t + (t >> 31)) >> ns) + zp21;
#else
    __asm__("smmul %0, %1, %2" : "=r"(t) : "r"(acc2), "r"(mult));
    return (t >> ns) + zp21;
#endif
}

/* ec_clamp4 of r0 >> 1, ..., r3 >> 1 (the shift inside SSAT). */
static inline int32_t ec_clamp4_ssat(int32_t r0, int32_t r1, int32_t r2, int32_t r3, int32_t lo4, int32_t hi4)
{
    int32_t s0, s1, s2, s3, v;
    __asm__("ssat %0, #8, %1, asr #1" : "=r"(s0) : "r"(r0));
    __asm__("ssat %0, #8, %1, asr #1" : "=r"(s1) : "r"(r1));
    __asm__("ssat %0, #8, %1, asr #1" : "=r"(s2) : "r"(r2));
    __asm__("ssat %0, #8, %1, asr #1" : "=r"(s3) : "r"(r3));
    v = ec_pkhbt16((int32_t)(((uint32_t)s0 & 0xffu) | ((uint32_t)s1 << 8)),
                   (int32_t)(((uint32_t)s2 & 0xffu) | ((uint32_t)s3 << 8)));
    (void)__ssub8(v, lo4);
    v = (int32_t)__sel((uint32_t)v, (uint32_t)lo4);
    (void)__ssub8(v, hi4);
    return (int32_t)__sel((uint32_t)hi4, (uint32_t)v);
}
#endif

/* The group at p: a[j] = lane j's bias + its entries; returns the group's tail. */
static inline const int32_t *ec_gather_group(const int32_t *p, const int8_t *x, int32_t *a)
{
    const int32_t *end = (const int32_t *)(const void *)((const uint8_t *)(p + EC_GATHER_HEAD) + p[0]);
    a[0] = p[1];
    a[1] = p[2];
    a[2] = p[3];
    a[3] = p[4];
    p += EC_GATHER_HEAD;
    ec_gather_steps(a, x, &p, end);
    return p;
}

/* ec_gather_group out of line: inlined into a loop with more live values, GCC 12 finds no registers for the step
 * loop's operands (6 fixed registers for LDM plus 7 operands). */
static __attribute__((noinline)) const int32_t *ec_gather_group_call(const int32_t *p, const int8_t *x, int32_t *a)
{
    return ec_gather_group(p, x, a);
}

/* One input row x with the general output stage (a[j] = 2 acc when fast). */
static void ec_gather_row(const int32_t *p, int32_t groups, int32_t fast, int32_t zp,
                                                    int32_t lo, int32_t hi, const int8_t *x, int8_t *output)
{
    int32_t g, j, a[4];
    for (g = 0; g < groups; ++g, p += EC_GATHER_TAIL) {
        p = ec_gather_group_call(p, x, a);
        for (j = 0; j < 4; ++j) {
            output[p[8 + j]] = ec_output_s8(ec_requantize(fast ? a[j] >> 1 : a[j], p[j], ~p[4 + j]), zp, lo, hi);
        }
    }
}

void ec_fully_connected_sparse_gather_s8(int32_t rows, int32_t depth, int32_t out_c, int32_t groups, int32_t fast,
                                         int32_t out_zp, int32_t act_min, int32_t act_max, const int8_t *input,
                                         const int32_t *stream, int8_t *output)
{
    int32_t r;
    for (r = 0; r < rows; ++r, input += depth, output += out_c) {
#if defined(__ARM_FEATURE_DSP)
        if (fast) { /* a[j] = 2 acc: ec_requant_fast, the last halving inside SSAT, a 4-lane clamp */
            const int32_t zp21 = 2 * out_zp + 1, lo4 = ec_dup8(act_min), hi4 = ec_dup8(act_max);
            const int32_t *p = stream;
            int32_t g, a[4];
            for (g = 0; g < groups; ++g, p += EC_GATHER_TAIL) {
                int32_t v;
                p = ec_gather_group_call(p, input, a);
                v = ec_clamp4_ssat(ec_gather_fast2(a[0], p[0], p[4], zp21), ec_gather_fast2(a[1], p[1], p[5], zp21),
                                   ec_gather_fast2(a[2], p[2], p[6], zp21), ec_gather_fast2(a[3], p[3], p[7], zp21),
                                   lo4, hi4);
                output[p[8]] = (int8_t)v;
                output[p[9]] = (int8_t)(v >> 8);
                output[p[10]] = (int8_t)(v >> 16);
                output[p[11]] = (int8_t)(v >> 24);
            }
            continue;
        }
#endif
        ec_gather_row(stream, groups, fast, out_zp, act_min, act_max, input, output);
    }
}
