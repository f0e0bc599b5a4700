"""Firmware in QEMU: build, run, exact instruction counts on every Cortex-M board and under qemu-user (the TCG
plugin), crashes, hangs, missing tools (Cortex-M7 in QEMU mps2-an500 unless a test says otherwise)."""

from __future__ import annotations

import dataclasses
import shutil
import struct
import time
from pathlib import Path

import pytest

from edgec.errors import EdgecError
from edgec.firmware import build_firmware, count_plugin, elf_sizes, run_firmware
from edgec.target import Target, list_targets, load_target

pytestmark = pytest.mark.qemu

HEADER = """\
#include <stdint.h>
#define FAKE_NUM_INPUTS 2
#define FAKE_NUM_OUTPUTS 1
extern const uint32_t fake_input_bytes[];
extern const uint32_t fake_output_bytes[];
void *fake_input(uint32_t k);
void *fake_output(uint32_t k);
int fake_invoke(void);
"""

IO_SIZES = """\
#include "fake.h"
const uint32_t fake_input_bytes[] = {8, 4};
const uint32_t fake_output_bytes[] = {12};
uint8_t fake_in0[8] __attribute__((aligned(8))), fake_in1[4], fake_out0[12];
void *fake_input(uint32_t k) { return k == 0 ? (void *)fake_in0 : k == 1 ? (void *)fake_in1 : 0; }
void *fake_output(uint32_t k) { return k == 0 ? (void *)fake_out0 : 0; }
"""

# output = input + weights byte-wise, a float through the FPU, and a 256-byte buffer on the stack.
BYTEWISE = (
    IO_SIZES
    + """
static const uint8_t weights[1000] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
int fake_invoke(void)
{
    volatile uint8_t scratch[256];
    const uint8_t *a = fake_in0, *b = fake_in1;
    uint8_t *out = fake_out0;
    for (int i = 0; i < 256; i++)
        scratch[i] = (uint8_t)i;
    for (int i = 0; i < 8; i++)
        out[i] = (uint8_t)(a[i] + weights[i] + scratch[0]);
    for (int i = 0; i < 4; i++)
        out[8 + i] = (uint8_t)((float)b[i] * 0.5f + (float)weights[8 + i]);
    return 0;
}
"""
)



def counted_loop(extra_nops: int = 0, isa: str = "thumb") -> str:
    """fake_invoke of exactly 2n + 4 + extra_nops instructions for n >= 1, n = the first word of input 0:
    two instructions to load it, nops, n x (subs, bne), mov, return. Thumb-1 (every Cortex-M, Cortex-A7) or
    AArch64."""
    nops = "nop\\n" * extra_nops
    if isa == "aarch64":
        body = (f"adrp x3, fake_in0\\nldr w3, [x3, :lo12:fake_in0]\\n{nops}1: subs w3, w3, #1\\nb.ne 1b\\n"
                "mov w0, #0\\nret\\n")
    else:  # the address from a literal pool (.ltorg), then the word
        body = f"ldr r3, =fake_in0\\nldr r3, [r3]\\n{nops}1: subs r3, r3, #1\\nbne 1b\\nmovs r0, #0\\nbx lr\\n.ltorg\\n"
    thumb = ".syntax unified\\n.thumb\\n.thumb_func\\n" if isa == "thumb" else ""
    return IO_SIZES + (
        "int fake_invoke(void);\n"
        f'__asm__(".text\\n.p2align 2\\n.global fake_invoke\\n.type fake_invoke, %function\\n{thumb}fake_invoke:\\n'
        f'{body}");\n'
    )


COUNTED_LOOP = counted_loop()

RUN = "int fake_invoke(void)\n"
CRASH = IO_SIZES + RUN + '{ __asm__ volatile("udf #0"); return 0; }\n'
HANG = IO_SIZES + RUN + '{ for (;;) __asm__ volatile(""); }\n'
BROKEN = IO_SIZES + RUN + "{ return undeclared_thing; }\n"
DEEP_STACK = IO_SIZES + RUN + "{ volatile uint8_t big[40000]; big[0] = 1; return big[0] - 1; }\n"


def installed(name: str) -> Target:
    t = load_target(name)
    for tool in (t.cc, t.qemu):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    return t


@pytest.fixture(scope="module")
def target() -> Target:
    return installed("cortex-m7")


CORTEX_M = [t.name for t in list_targets() if t.kind == "qemu-system"]
CORTEX_A = [t.name for t in list_targets() if t.kind == "qemu-user"]


def build(target: Target, where: Path, body: str) -> Path:
    src = where / "src"
    src.mkdir(parents=True)
    (src / "fake.h").write_text(HEADER)
    (src / "fake.c").write_text(body)
    return build_firmware(target, "fake", [src / "fake.c"], [src], where / "build")


def reference(sample: bytes) -> bytes:
    weights = list(range(1, 13))
    a = bytes((x + w) & 0xFF for x, w in zip(sample[:8], weights[:8], strict=True))
    b = bytes(int(x * 0.5 + w) for x, w in zip(sample[8:], weights[8:], strict=True))
    return a + b


def test_targets() -> None:
    names = [t.name for t in list_targets()]
    assert set(names) == {"host", "cortex-m0plus", "cortex-m0plus-microbit", "cortex-m3", "cortex-m4", "cortex-m7",
                          "cortex-m33", "cortex-m55", "cortex-a53", "cortex-a7"}
    m7 = load_target("cortex-m7")
    assert m7.kind == "qemu-system" and m7.machine == "mps2-an500" and "fpu" in m7.features
    assert m7.instructions_per_tick == 40 and m7.tick_lock == (1, 40)
    # SysTick clocks measured with `info qtree` (cpuclk): 20 MHz on mps2-an505, 32 MHz on mps3-an547, 16 MHz
    # on microbit, so lock units of 1 tick = 50, 4 ticks = 125 and 2 ticks = 125 instructions.
    assert load_target("cortex-m33").tick_lock == (1, 50)
    assert load_target("cortex-m55").tick_lock == (4, 125)
    assert load_target("cortex-m0plus-microbit").tick_lock == (2, 125)
    m0 = load_target("cortex-m0plus")
    assert (m0.flash_bytes, m0.ram_bytes) == (256 * 1024, 32 * 1024) and m0.board_ram > m0.ram_bytes
    assert "mve" in load_target("cortex-m55").features
    with pytest.raises(EdgecError, match="known targets: .*cortex-m7"):
        load_target("cortex-m99")


@pytest.mark.parametrize("name", CORTEX_M + CORTEX_A)
def test_outputs_round_trip_and_runs_repeat(name: str, tmp_path: Path) -> None:
    target = installed(name)
    elf = build(target, tmp_path, BYTEWISE)
    samples = [bytes(range(12)), bytes(range(100, 112)), bytes([255] * 12), bytes(12)]
    first = run_firmware(target, elf, samples, 12)
    assert first.outputs == [reference(s) for s in samples]
    assert len(first.instructions) == len(samples) and all(n > 0 for n in first.instructions)
    assert 256 <= first.stack_bytes < 256 + 96  # the buffer, saved registers, soft float calls on ARMv6-M
    second = run_firmware(target, elf, samples, 12)
    assert second == first

    sizes = elf_sizes(elf, target, ["fake.c"])
    assert sizes["flash"] == sizes["text"] + sizes["rodata"] + sizes["data"]
    assert target.kind == "qemu-user" or sizes["flash"] <= target.board_flash
    assert sizes["ram_static"] == sizes["data"] + sizes["bss"]
    # weights (1000) + the two size arrays (12) + fake_invoke's and the I/O functions' code; newlib and startup are
    # not counted
    assert 1012 < sizes["model_flash"] < 1400 < sizes["flash"]


@pytest.mark.parametrize("name", CORTEX_M)
def test_instruction_counts_are_exact(name: str, tmp_path: Path) -> None:
    """Counts of every length from 6 to 2 lock units + 5: every phase against the SysTick lock unit."""
    target = installed(name)
    _, unit = target.tick_lock
    loops = [*range(1, unit + 1), 1000, 100_000]
    samples = [struct.pack("<II", n, 0) + bytes(4) for n in loops]
    for extra in (0, 1):
        elf = build(target, tmp_path / str(extra), counted_loop(extra))
        first = run_firmware(target, elf, samples, 12)
        assert first.instructions == [2 * n + 4 + extra for n in loops]
        # Semihosting I/O between samples takes virtual time, so a long run sees SysTick wraps; their exception
        # frames count as stack (see firmware_main.c.j2). The first few samples are far from a wrap.
        again = run_firmware(target, elf, samples[-3:], 12)
        assert again.instructions == first.instructions[-3:] and again.stack_bytes == 0


@pytest.mark.parametrize("name", CORTEX_A)
def test_plugin_instruction_counts_are_exact(name: str, tmp_path: Path) -> None:
    """Cortex-A under qemu-user: edgec's TCG plugin counts the loop exactly, and again on a second run."""
    target = installed(name)
    isa = "aarch64" if target.qemu == "qemu-aarch64" else "thumb"
    loops = [1, 2, 3, 40, 41, 1000, 1_000_000]
    samples = [struct.pack("<II", n, 0) + bytes(4) for n in loops]
    elf = build(target, tmp_path, counted_loop(1, isa))
    first = run_firmware(target, elf, samples, 12)
    assert first.instructions == [2 * n + 5 for n in loops]
    assert first.stack_bytes == 0
    assert run_firmware(target, elf, samples, 12) == first


@pytest.mark.parametrize("name", ["cortex-m7", "cortex-m0plus-microbit", "cortex-m33", "cortex-m55"])
def test_crash_is_an_error(name: str, tmp_path: Path) -> None:
    target = installed(name)
    elf = build(target, tmp_path, CRASH)
    start = time.monotonic()
    with pytest.raises(EdgecError, match="HardFault") as e:
        run_firmware(target, elf, [bytes(12)], 12, timeout_s=20)
    assert time.monotonic() - start < 5
    assert "exit code 1" in str(e.value) and "pc   = 0x" in str(e.value)


def test_plugin_is_built_once_and_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    target = load_target("cortex-a53")
    so = count_plugin(target)
    assert so.parent == tmp_path / "edgec" and so.is_file()
    built = so.stat().st_mtime_ns
    assert count_plugin(target) == so and so.stat().st_mtime_ns == built
    monkeypatch.setenv("XDG_CACHE_HOME", "/proc/no-such-folder")
    with pytest.raises(EdgecError, match="cannot write the QEMU plugin to /proc/no-such-folder/edgec"):
        count_plugin(target)


@pytest.mark.parametrize("name", CORTEX_A)
def test_cortex_a_crash_and_hang_are_errors(name: str, tmp_path: Path) -> None:
    target = installed(name)
    with pytest.raises(EdgecError, match=f"(?s)failed in QEMU {name} .*uncaught target signal 4"):
        run_firmware(target, build(target, tmp_path / "crash", CRASH), [bytes(12)], 12, timeout_s=20)
    with pytest.raises(EdgecError, match=f"did not finish within 1.5 s in QEMU {name}"):
        run_firmware(target, build(target, tmp_path / "hang", HANG), [bytes(12)], 12, timeout_s=1.5)


def test_hang_times_out(target: Target, tmp_path: Path) -> None:
    elf = build(target, tmp_path, HANG)
    with pytest.raises(EdgecError, match="did not finish within 1.5 s in QEMU mps2-an500"):
        run_firmware(target, elf, [bytes(12)], 12, timeout_s=1.5)


def test_stack_overflow_is_an_error(target: Target, tmp_path: Path) -> None:
    elf = build(target, tmp_path, DEEP_STACK)
    with pytest.raises(EdgecError, match="stack overflow: fake_invoke used 40000 bytes of stack"):
        run_firmware(target, elf, [bytes(12)], 12)


def test_bad_input_size_is_an_error(target: Target, tmp_path: Path) -> None:
    elf = build(target, tmp_path, BYTEWISE)
    with pytest.raises(EdgecError, match="not a whole number of samples"):
        run_firmware(target, elf, [bytes(13)], 12)


def test_compile_error_shows_the_compiler_message(target: Target, tmp_path: Path) -> None:
    with pytest.raises(EdgecError, match="(?s)compiling .*fake.c failed.*undeclared_thing"):
        build(target, tmp_path, BROKEN)


def test_missing_tools_name_the_apt_packages(target: Target, tmp_path: Path) -> None:
    no_cc = dataclasses.replace(target, cc="arm-none-eabi-gcc-missing")
    with pytest.raises(EdgecError, match="arm-none-eabi-gcc-missing") as e:
        build(no_cc, tmp_path, BYTEWISE)
    assert "apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm" in str(e.value)

    no_qemu = dataclasses.replace(target, qemu="qemu-system-arm-missing")
    with pytest.raises(EdgecError, match="qemu-system-arm-missing.*apt-get install"):
        run_firmware(no_qemu, tmp_path / "firmware.elf", [bytes(12)], 12)
