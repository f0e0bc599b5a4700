/*
 * edgec bare-metal startup for Cortex-M (QEMU's mps2/mps3 and microbit boards, and real parts), ARMv6-M to
 * ARMv8.1-M: only Thumb-1 instructions where the architecture matters.
 *
 * Reset_Handler enables the FPU (when the code is built for one), copies .data, zeroes .bss, paints the stack, opens the semihosting stdio
 * handles of newlib's librdimon and calls main(). It replaces rdimon-crt0 (the firmware is linked with
 * -nostartfiles): that crt0 moves SP to the stack base from SYS_HEAPINFO, which QEMU 7.2 reports as
 * 0x61000000 on mps2-an500 (the top of its 16 MiB RAM at 0x60000000, outside this target's RAM), and it does
 * not copy .data out of flash.
 *
 * A fault prints the faulting PC and fault status registers through semihosting and stops QEMU with a
 * nonzero exit status, so a crash is a clear error rather than a hang.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/* Symbols from linker.ld.j2. */
extern uint32_t __data_start__[], __data_end__[], __data_load__[];
extern uint32_t __bss_start__[], __bss_end__[];
extern char __heap_start__[], __heap_end__[];
extern uint32_t __stack_limit__[], __stack_top__[];

/* Pattern written over the free stack; the lowest word that no longer holds it is the high-water mark. */
#define EDGEC_STACK_PAINT 0xEDC57ACCu

/* SysTick wraps since the timer was started (the firmware main reads it together with SYST_CVR). */
volatile uint32_t edgec_systick_wraps;
extern const uint32_t edgec_systick_handler_instructions;

int main(void);
void initialise_monitor_handles(void);
void __libc_init_array(void);
void _init(void);
void _fini(void);
void Reset_Handler(void);
void Default_Handler(void);
void HardFault_Handler(void);
void SysTick_Handler(void);
void edgec_fault_report(const uint32_t *frame, uint32_t exc_return);
void *_sbrk(ptrdiff_t incr);

/* ---- raw semihosting (usable when the C library state may be broken) ------------------------------------- */

#define SEMI_SYS_WRITE0 0x04u
#define SEMI_SYS_EXIT 0x18u
#define ADP_STOPPED_RUNTIME_ERROR_UNKNOWN 0x20023u /* any reason but ApplicationExit: QEMU exits with 1 */

static uint32_t semihost(uint32_t op, const void *arg)
{
    register uint32_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

static void semi_puts(const char *s) { semihost(SEMI_SYS_WRITE0, s); }

static void semi_put_hex(const char *label, uint32_t value)
{
    char buf[12] = "0x";
    for (int i = 0; i < 8; i++) {
        uint32_t nibble = (value >> (28 - 4 * i)) & 0xFu;
        buf[2 + i] = (char)(nibble < 10 ? '0' + nibble : 'a' + nibble - 10);
    }
    buf[10] = '\n';
    buf[11] = '\0';
    semi_puts(label);
    semi_puts(buf);
}

/* ---- vector table --------------------------------------------------------------------------------------- */

#define NUM_IRQS 48 /* external interrupts handled (`info qtree`: num-irq = 48 on mps2-an385/6/500, microbit) */

void NMI_Handler(void) __attribute__((weak, alias("Default_Handler")));
void MemManage_Handler(void) __attribute__((weak, alias("HardFault_Handler")));
void BusFault_Handler(void) __attribute__((weak, alias("HardFault_Handler")));
void UsageFault_Handler(void) __attribute__((weak, alias("HardFault_Handler")));
void SVC_Handler(void) __attribute__((weak, alias("Default_Handler")));
void DebugMon_Handler(void) __attribute__((weak, alias("Default_Handler")));
void PendSV_Handler(void) __attribute__((weak, alias("Default_Handler")));

typedef void (*vector_fn)(void);

__attribute__((section(".isr_vector"), used)) static const vector_fn vector_table[16 + NUM_IRQS] = {
    (vector_fn)(uintptr_t)__stack_top__,
    Reset_Handler,
    NMI_Handler,
    HardFault_Handler,
    MemManage_Handler,
    BusFault_Handler,
    UsageFault_Handler,
    0,
    0,
    0,
    0,
    SVC_Handler,
    DebugMon_Handler,
    0,
    PendSV_Handler,
    SysTick_Handler,
    [16 ... 16 + NUM_IRQS - 1] = Default_Handler,
};

/* ---- handlers ------------------------------------------------------------------------------------------- */

#define SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)
#define SCB_ICSR (*(volatile uint32_t *)0xE000ED04u)
#define SCB_CFSR (*(volatile uint32_t *)0xE000ED28u)
#define SCB_HFSR (*(volatile uint32_t *)0xE000ED2Cu)
#define SCB_MMFAR (*(volatile uint32_t *)0xE000ED34u)
#define SCB_BFAR (*(volatile uint32_t *)0xE000ED38u)

void Reset_Handler(void)
{
#ifdef __ARM_FP
    /* Full access to CP10/CP11 (the FPU, and Helium on ARMv8.1-M) before any floating-point instruction runs.
       ARMv6-M and soft-float builds have no CPACR to write. */
    SCB_CPACR |= 0xFu << 20;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif

    for (uint32_t *src = __data_load__, *dst = __data_start__; dst < __data_end__;)
        *dst++ = *src++;
    for (uint32_t *dst = __bss_start__; dst < __bss_end__;)
        *dst++ = 0;

    /* Paint the free stack below the current stack pointer. */
    uint32_t *sp;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    for (uint32_t *p = __stack_limit__; p < sp; p++)
        *p = EDGEC_STACK_PAINT;

    initialise_monitor_handles();
    __libc_init_array();
    exit(main());
}

/* Normally from crti.o, which -nostartfiles leaves out; C code needs no work here. */
void _init(void) {}
void _fini(void) {}

void Default_Handler(void)
{
    semi_put_hex("EDGEC error: unexpected exception, vector ", SCB_ICSR & 0x1FFu);
    semihost(SEMI_SYS_EXIT, (const void *)ADP_STOPPED_RUNTIME_ERROR_UNKNOWN);
    for (;;) {
    }
}

/* Pass the stacked exception frame (MSP or PSP, from EXC_RETURN bit 2) to the C reporter (Thumb-1 only). */
__attribute__((naked)) void HardFault_Handler(void)
{
    __asm__ volatile(".syntax unified\n\t" /* GCC passes Thumb-1 inline assembly in divided syntax */
                     "mov r1, lr\n\t"
                     "movs r2, #4\n\t"
                     "tst r1, r2\n\t"
                     "beq 1f\n\t"
                     "mrs r0, psp\n\t"
                     "b 2f\n\t"
                     "1: mrs r0, msp\n\t"
                     "2: ldr r2, =edgec_fault_report\n\t"
                     "bx r2\n\t"
                     ".ltorg\n\t");
}

void edgec_fault_report(const uint32_t *frame, uint32_t exc_return)
{
    semi_puts("EDGEC error: HardFault (crash in the firmware)\n");
    semi_put_hex("  pc   = ", frame[6]);
    semi_put_hex("  lr   = ", frame[5]);
#ifndef __ARM_ARCH_6M__ /* ARMv6-M has no fault status registers */
    semi_put_hex("  cfsr = ", SCB_CFSR);
    semi_put_hex("  hfsr = ", SCB_HFSR);
    semi_put_hex("  mmfar= ", SCB_MMFAR);
    semi_put_hex("  bfar = ", SCB_BFAR);
#endif
    semi_put_hex("  exc  = ", exc_return);
    semihost(SEMI_SYS_EXIT, (const void *)ADP_STOPPED_RUNTIME_ERROR_UNKNOWN);
    for (;;) {
    }
}

/*
 * Counts SysTick wraps. Written in assembly so its cost is known: the firmware main subtracts
 * edgec_systick_handler_instructions per wrap from a measured instruction count.
 */
__attribute__((naked)) void SysTick_Handler(void)
{
    __asm__ volatile(".syntax unified\n\t"
                     "ldr r0, =edgec_systick_wraps\n\t"
                     "ldr r1, [r0]\n\t"
                     "adds r1, r1, #1\n\t"
                     "str r1, [r0]\n\t"
                     "bx lr\n\t"
                     ".ltorg\n\t");
}
const uint32_t edgec_systick_handler_instructions = 5;

/* ---- heap for newlib: the .heap reservation of the linker script, never the stack ----------------------- */

void *_sbrk(ptrdiff_t incr)
{
    static char *brk = __heap_start__;
    if (incr > __heap_end__ - brk || incr < __heap_start__ - brk) {
        errno = ENOMEM;
        return (void *)-1;
    }
    char *prev = brk;
    brk += incr;
    return prev;
}
