/*
 * edgec instruction counter: a QEMU TCG plugin for QEMU 7.2 user mode (qemu-aarch64, qemu-arm).
 *
 *     qemu-aarch64 -plugin insn_count_plugin.so,begin=0x<addr>,end=0x<addr>,out=<file>[,watch=0x<a>:0x<b>:...]
 *                  program
 *
 * Counts the guest instructions executed between two marker functions of the program: at every execution of
 * the instruction at `begin` the count restarts, and at every execution of the instruction at `end` the
 * instructions executed since then (both markers' single return instructions included) are appended to
 * `out` as one decimal line. With `watch` (profiling, up to MAX_WATCH addresses), every execution of a watched
 * instruction appends "@<index in the list> <instructions executed since begin before this one>", so the
 * instructions between two watched points (e.g. a kernel call and its return address) are exact. The harness (codegen/templates/linux_main.c.j2) subtracts a calibration run.
 *
 * Exactness: every translation block adds its instruction count to a counter inline when it starts. A block
 * ends at a branch, so in user mode it always runs to its end (no interrupts; a system call ends a block
 * too), and the counter is exact. A watched instruction may lie inside its block: its callback subtracts the
 * block's instructions from it to the end, which the block's add counted already. The callbacks at the markers run before their instruction, after their
 * block's inline add; both markers are one-instruction functions, so each adds exactly 1 before its callback.
 *
 * Debian packages no qemu-plugin.h, so the few declarations used are written out here from QEMU's documented
 * plugin API (include/qemu/qemu-plugin.h, API version 1 in QEMU 7.2). Built by toolchain/firmware.py with the
 * host gcc.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- from QEMU's plugin API ------------------------------------------------------------------------------ */

typedef uint64_t qemu_plugin_id_t;
typedef struct qemu_info_t qemu_info_t; /* used by pointer only */
struct qemu_plugin_tb;
struct qemu_plugin_insn;

enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_CB_R_REGS, QEMU_PLUGIN_CB_RW_REGS };
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };

typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn);
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *tb, enum qemu_plugin_op op, void *ptr,
                                              uint64_t imm);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn, qemu_plugin_vcpu_udata_cb_t cb,
                                            enum qemu_plugin_cb_flags flags, void *userdata);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);

#define QEMU_PLUGIN_EXPORT __attribute__((visibility("default")))
#define QEMU_PLUGIN_VERSION 1

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;
QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv);

/* ---- the counter ----------------------------------------------------------------------------------------- */

static uint64_t executed;  /* instructions executed so far (one vCPU: the harness is single-threaded) */
static uint64_t at_begin;  /* `executed` at the last begin marker */
static uint64_t begin_pc, end_pc;
#define MAX_WATCH 4096
static uint64_t watch_pc[MAX_WATCH];
static size_t watches;
static FILE *out;

static void on_begin(unsigned int vcpu_index, void *userdata)
{
    (void)vcpu_index;
    (void)userdata;
    at_begin = executed;
}

static void on_end(unsigned int vcpu_index, void *userdata)
{
    (void)vcpu_index;
    (void)userdata;
    fprintf(out, "%" PRIu64 "\n", executed - at_begin);
    fflush(out);
}

/* userdata: (index in the watch list << 16) | instructions of its block from it to the end (at most 512) */
static void on_watch(unsigned int vcpu_index, void *userdata)
{
    (void)vcpu_index;
    uintptr_t data = (uintptr_t)userdata;
    fprintf(out, "@%lu %" PRIu64 "\n", (unsigned long)(data >> 16), executed - (data & 0xFFFFu) - at_begin);
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    size_t n = qemu_plugin_tb_n_insns(tb);
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &executed, n);
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        uint64_t pc = qemu_plugin_insn_vaddr(insn);
        if (pc == begin_pc)
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_begin, QEMU_PLUGIN_CB_NO_REGS, NULL);
        else if (pc == end_pc)
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_end, QEMU_PLUGIN_CB_NO_REGS, NULL);
        for (size_t w = 0; w < watches; w++)
            if (pc == watch_pc[w])
                qemu_plugin_register_vcpu_insn_exec_cb(insn, on_watch, QEMU_PLUGIN_CB_NO_REGS,
                                                       (void *)(uintptr_t)((w << 16) | (n - i)));
    }
}

static void at_exit(qemu_plugin_id_t id, void *userdata)
{
    (void)id;
    (void)userdata;
    fclose(out);
}

int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv)
{
    (void)info;
    const char *path = NULL;
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "begin=", 6) == 0)
            begin_pc = strtoull(argv[i] + 6, NULL, 0);
        else if (strncmp(argv[i], "end=", 4) == 0)
            end_pc = strtoull(argv[i] + 4, NULL, 0);
        else if (strncmp(argv[i], "out=", 4) == 0)
            path = argv[i] + 4;
        else if (strncmp(argv[i], "watch=", 6) == 0) {
            char *at = argv[i] + 6, *next;
            while (*at && watches < MAX_WATCH) {
                uint64_t pc = strtoull(at, &next, 0);
                if (next == at)
                    break;
                watch_pc[watches++] = pc;
                at = *next == ':' ? next + 1 : next;
            }
        }
    }
    if (!begin_pc || !end_pc || begin_pc == end_pc || !path) {
        fprintf(stderr, "insn_count_plugin: needs begin=<address>,end=<address>,out=<file>\n");
        return -1;
    }
    out = fopen(path, "w");
    if (!out) {
        fprintf(stderr, "insn_count_plugin: cannot write %s\n", path);
        return -1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}
