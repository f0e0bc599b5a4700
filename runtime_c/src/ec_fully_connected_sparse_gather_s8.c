/*
 * ec_fully_connected_sparse_gather_s8: int8 fully connected layer with row-group sparse weights (format in
 * edgec_sparse.h): input [rows][depth], output [rows][out_c]. The input zero point is folded into the biases at
 * build time, so the nonzero weights gather the int8 inputs directly (no expansion); four weight rows go through the
 * loop together, one entry of each per step, each into its own accumulator. acc = bias[oc] - in_zp * sum(w) +
 * sum(w * x) equals the dense kernel's bias[oc] + sum(w * (x - in_zp)), and the output stage is
 * ec_fully_connected_s8's: the same results bit for bit.
 * DSP extension, fast output stage (fast = 1: the build doubled the weights and biases, so the accumulators are the
 * 2 acc that ec_requant_fast computes): one input row in assembly (ec_gather_row_fast), every register planned.
 * Per step of 4 entries: one LDM of the 4 column offsets and the 2 weight pairs, 4 LDRSB, 4 SMLABB/SMLABT (four steps
 * per loop, entered at the step that leaves a multiple of 4); per group of 4 rows: one LDM of the head, the output
 * stage of 4 lanes (SMMUL, ASR, SSAT with the last halving, a 4-lane clamp with SEL unless the range is all of int8)
 * and 4 STRB to the rows' outputs, about 40 instructions. Cortex-M7 (QEMU), ad01
 * pruned to 90%: see GATHER_S8 in toolchain/sparse.py.
 */
#include "edgec_dsp.h"
#include "edgec_sparse.h"

#if defined(__ARM_FEATURE_DSP) && defined(__thumb2__)
/* The row's constants for ec_gather_row_fast. */
typedef struct {
    const int32_t *end; /* end of the stream */
    int32_t zp21;       /* 2 out_zp + 1 */
    int32_t lo4, hi4;   /* act_min, act_max in each byte */
    int32_t clamp;      /* 0 when act_min is -128 and act_max 127 (SSAT alone clamps) */
} ec_gather_consts;

#if defined(EC_TFLM)
/* TFLM: t = SMMULR(2 acc, mult), then rdbpot's (t + (t < 0 ? -1 : 0)) >> e - 1 (ec_requant_fast) */
#define EC_GATHER_MUL(a, m) "smmulr " a ", " a ", " m "\n\tadd " a ", " a ", " a ", asr #31\n\t"
#else
#define EC_GATHER_MUL(a, m) "smmul " a ", " a ", " m "\n\t"
#endif

/* One step: offsets into r4, r5, r6, r8, weight pairs (lanes 0 and 2, 1 and 3) into r10, r11; x in r2, the lanes'
 * accumulators in r7, r9, r12, lr. */
#define EC_GATHER_STEP                                                                                              \
    "ldmia r0!, {r4, r5, r6, r8, r10, r11}\n\t"                                                                     \
    "ldrsb r4, [r2, r4]\n\t"                                                                                        \
    "ldrsb r5, [r2, r5]\n\t"                                                                                        \
    "ldrsb r6, [r2, r6]\n\t"                                                                                        \
    "ldrsb r8, [r2, r8]\n\t"                                                                                        \
    "smlabb r7, r4, r10, r7\n\t"                                                                                    \
    "smlabb r9, r5, r11, r9\n\t"                                                                                    \
    "smlabt r12, r6, r10, r12\n\t"                                                                                  \
    "smlabt lr, r8, r11, lr\n\t"

/* The groups of stream p (to k->end) applied to input row x, outputs to out; the fast output stage. The arguments
 * arrive in r0-r3 (AAPCS); the body is assembly only (naked). */
#define EC_UNUSED __attribute__((unused))
static __attribute__((naked, noinline)) void ec_gather_row_fast(EC_UNUSED const int32_t *p,
                                                                 EC_UNUSED const ec_gather_consts *k,
                                                                 EC_UNUSED const int8_t *x, EC_UNUSED int8_t *out)
{
    __asm__ volatile(
        "push {r4, r5, r6, r7, r8, r9, r10, r11, lr}\n\t"
        "ldm r1, {r4, r5, r6, r8, r9}\n\t"
        "push {r3, r4, r5, r6, r8, r9}\n\t" /* [sp]: out, end, zp21, lo4, hi4, clamp */
        "cmp r0, r4\n\t"
        "beq 9f\n\t"
        "1:\n\t" /* a group: its head word (24 steps + steps % 4), the 4 biases */
        "ldmia r0!, {r1, r7, r9, r12, lr}\n\t"
        "lsls r4, r1, #31\n\t" /* N: steps % 4 is odd, C: steps % 4 >= 2 */
        "bic r1, r1, #3\n\t"
        "add r1, r0, r1\n\t" /* the end of the steps */
        "bcs 5f\n\t"
        "bmi 3f\n\t" /* 1 step more than a multiple of 4: enter at the 4th */
        "cmp r0, r1\n\t"
        "bne 2f\n\t"
        "b 4f\n\t"
        "5:\n\t"
        "bmi 6f\n\t" /* 3 more: enter at the 2nd step */
        "b 7f\n\t"   /* 2 more: at the 3rd */
        "2:\n\t" EC_GATHER_STEP "6:\n\t" EC_GATHER_STEP "7:\n\t" EC_GATHER_STEP "3:\n\t" EC_GATHER_STEP
        "cmp r0, r1\n\t"
        "bne 2b\n\t"
        "4:\n\t" /* the tail: 4 mult, 4 ~shift, 4 output channels */
        "ldmia r0!, {r4, r5, r6, r8}\n\t"
        EC_GATHER_MUL("r7", "r4") EC_GATHER_MUL("r9", "r5") EC_GATHER_MUL("r12", "r6") EC_GATHER_MUL("lr", "r8")
        "ldmia r0!, {r4, r5, r6, r8}\n\t"
        "asr r7, r7, r4\n\t"
        "asr r9, r9, r5\n\t"
        "asr r12, r12, r6\n\t"
        "asr lr, lr, r8\n\t"
        "ldr r4, [sp, #8]\n\t"
        "add r7, r7, r4\n\t"
        "add r9, r9, r4\n\t"
        "add r12, r12, r4\n\t"
        "add lr, lr, r4\n\t"
        "ssat r7, #8, r7, asr #1\n\t"
        "ssat r9, #8, r9, asr #1\n\t"
        "ssat r12, #8, r12, asr #1\n\t"
        "ssat lr, #8, lr, asr #1\n\t"
        "bfi r7, r9, #8, #8\n\t"
        "bfi r7, r12, #16, #8\n\t"
        "bfi r7, lr, #24, #8\n\t"
        "ldr r4, [sp, #20]\n\t"
        "cbz r4, 8f\n\t" /* no clamp: act_min -128, act_max 127 */
        "ldrd r4, r5, [sp, #12]\n\t"
        "ssub8 r6, r7, r4\n\t" /* max with act_min */
        "sel r7, r7, r4\n\t"
        "ssub8 r6, r7, r5\n\t" /* min with act_max */
        "sel r7, r5, r7\n\t"
        "8:\n\t"
        "ldmia r0!, {r4, r5, r6, r8}\n\t"
        "strb r7, [r3, r4]\n\t" /* out stays in r3, which the steps leave alone */
        "lsr r7, r7, #8\n\t"
        "strb r7, [r3, r5]\n\t"
        "lsr r7, r7, #8\n\t"
        "strb r7, [r3, r6]\n\t"
        "lsr r7, r7, #8\n\t"
        "strb r7, [r3, r8]\n\t"
        "ldr r1, [sp, #4]\n\t"
        "cmp r0, r1\n\t"
        "bne 1b\n\t"
        "9:\n\t"
        "add sp, sp, #24\n\t"
        "pop {r4, r5, r6, r7, r8, r9, r10, r11, pc}\n\t");
}
#endif

/* a[j] = lane j's bias + its entries for the group at p; returns the group's tail. */
static const int32_t *ec_gather_group(const int32_t *p, const int8_t *x, int32_t *a)
{
    const int32_t *end = (const int32_t *)(const void *)((const uint8_t *)(p + EC_GATHER_HEAD) + (p[0] & ~3));
    int32_t a0 = p[1], a1 = p[2], a2 = p[3], a3 = p[4];
    for (p += EC_GATHER_HEAD; p != end; p += EC_GATHER_WORDS) {
        a0 += x[p[0]] * (int16_t)p[4];
        a1 += x[p[1]] * (int16_t)p[5];
        a2 += x[p[2]] * (p[4] >> 16);
        a3 += x[p[3]] * (p[5] >> 16);
    }
    a[0] = a0;
    a[1] = a1;
    a[2] = a2;
    a[3] = a3;
    return p;
}

void ec_fully_connected_sparse_gather_s8(int32_t rows, int32_t depth, int32_t out_c, int32_t words, int32_t fast,
                                         int32_t out_zp, int32_t act_min, int32_t act_max, const int8_t *input,
                                         const int32_t *stream, int8_t *output)
{
    const int32_t *end = stream + words;
    int32_t r, j, a[4];
    for (r = 0; r < rows; ++r, input += depth, output += out_c) {
        const int32_t *p = stream;
#if defined(__ARM_FEATURE_DSP) && defined(__thumb2__)
        if (fast) {
            const ec_gather_consts k = {end, 2 * out_zp + 1, ec_dup8(act_min), ec_dup8(act_max),
                                        act_min > -128 || act_max < 127};
            ec_gather_row_fast(stream, &k, input, output);
            continue;
        }
#endif
        while (p != end) {
            p = ec_gather_group(p, input, a);
            for (j = 0; j < 4; ++j) { /* a[j] = 2 acc when fast */
                output[p[8 + j]] = ec_output_s8(ec_requantize(fast ? a[j] >> 1 : a[j], p[j], ~p[4 + j]), out_zp,
                                                act_min, act_max);
            }
            p += EC_GATHER_TAIL;
        }
    }
}
