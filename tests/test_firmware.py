"""Cortex-M7 firmware in QEMU mps2-an500: build, run, exact instruction counts, crashes, hangs, missing tools."""

from __future__ import annotations

import dataclasses
import shutil
import struct
import time
from pathlib import Path

import pytest
from edgec.errors import EdgecError
from edgec.firmware import build_firmware, elf_sizes, run_firmware
from edgec.target import Target, list_targets, load_target

pytestmark = pytest.mark.qemu

HEADER = """\
#include <stdint.h>
#define FAKE_NUM_INPUTS 2
#define FAKE_NUM_OUTPUTS 1
extern const uint32_t fake_input_bytes[];
extern const uint32_t fake_output_bytes[];
int fake_run(const void *const inputs[], void *const outputs[]);
"""

IO_SIZES = """\
#include "fake.h"
const uint32_t fake_input_bytes[] = {8, 4};
const uint32_t fake_output_bytes[] = {12};
"""

# output = input + weights byte-wise, a float through the FPU, and a 256-byte buffer on the stack.
BYTEWISE = (
    IO_SIZES
    + """
static const uint8_t weights[1000] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
int fake_run(const void *const inputs[], void *const outputs[])
{
    volatile uint8_t scratch[256];
    const uint8_t *a = inputs[0], *b = inputs[1];
    uint8_t *out = outputs[0];
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

# Exactly 2n + 4 instructions for n >= 1, n = first word of input 0: ldr, ldr, n x (subs, bne), movs, bx.
COUNTED_LOOP = (
    IO_SIZES
    + """
__attribute__((naked)) int fake_run(const void *const inputs[], void *const outputs[])
{
    (void)inputs;
    (void)outputs;
    __asm__ volatile("ldr r3, [r0]\\n\\t"
                     "ldr r3, [r3]\\n\\t"
                     "1: subs r3, r3, #1\\n\\t"
                     "bne 1b\\n\\t"
                     "movs r0, #0\\n\\t"
                     "bx lr\\n\\t");
}
"""
)

RUN = "int fake_run(const void *const inputs[], void *const outputs[])\n"
CRASH = IO_SIZES + RUN + '{ (void)inputs; (void)outputs; __asm__ volatile("udf #0"); return 0; }\n'
HANG = IO_SIZES + RUN + '{ (void)inputs; (void)outputs; for (;;) __asm__ volatile(""); }\n'
BROKEN = IO_SIZES + RUN + "{ return undeclared_thing; }\n"
DEEP_STACK = (
    IO_SIZES + RUN + "{ (void)inputs; (void)outputs; volatile uint8_t big[40000]; big[0] = 1; return big[0] - 1; }\n"
)


@pytest.fixture(scope="module")
def target() -> Target:
    t = load_target("cortex-m7")
    for tool in (t.cc, t.qemu):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    return t


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
    assert {"cortex-m7", "host"} <= set(names)
    m7 = load_target("cortex-m7")
    assert m7.kind == "qemu-system" and m7.machine == "mps2-an500" and "fpu" in m7.features
    assert m7.instructions_per_tick == 40
    with pytest.raises(EdgecError, match="known targets: .*cortex-m7"):
        load_target("cortex-m99")


def test_outputs_round_trip_and_runs_repeat(target: Target, tmp_path: Path) -> None:
    elf = build(target, tmp_path, BYTEWISE)
    samples = [bytes(range(12)), bytes(range(100, 112)), bytes([255] * 12), bytes(12)]
    first = run_firmware(target, elf, samples, 12)
    assert first.outputs == [reference(s) for s in samples]
    assert len(first.instructions) == len(samples) and all(n > 0 for n in first.instructions)
    assert 256 <= first.stack_bytes < 256 + 64
    second = run_firmware(target, elf, samples, 12)
    assert second == first

    sizes = elf_sizes(elf, target, ["fake.c"])
    assert sizes["flash"] == sizes["text"] + sizes["rodata"] + sizes["data"] <= target.flash_bytes
    assert sizes["ram_static"] == sizes["data"] + sizes["bss"]
    # weights (1000) + the two size arrays (12) + fake_run's code; newlib and startup are not counted
    assert 1012 < sizes["model_flash"] < 1400 < sizes["flash"]


def test_instruction_counts_are_exact(target: Target, tmp_path: Path) -> None:
    elf = build(target, tmp_path, COUNTED_LOOP)
    loops = [1, 2, 3, 1000, 2000, 40, 41, 100_000, 200_000]
    samples = [struct.pack("<II", n, 0) + bytes(4) for n in loops]
    result = run_firmware(target, elf, samples, 12)
    assert result.instructions == [2 * n + 4 for n in loops]
    assert result.stack_bytes == 0


def test_crash_is_an_error(target: Target, tmp_path: Path) -> None:
    elf = build(target, tmp_path, CRASH)
    start = time.monotonic()
    with pytest.raises(EdgecError, match="HardFault") as e:
        run_firmware(target, elf, [bytes(12)], 12, timeout_s=20)
    assert time.monotonic() - start < 5
    assert "exit code 1" in str(e.value) and "pc   = 0x" in str(e.value)


def test_hang_times_out(target: Target, tmp_path: Path) -> None:
    elf = build(target, tmp_path, HANG)
    with pytest.raises(EdgecError, match="did not finish within 1.5 s in QEMU mps2-an500"):
        run_firmware(target, elf, [bytes(12)], 12, timeout_s=1.5)


def test_stack_overflow_is_an_error(target: Target, tmp_path: Path) -> None:
    elf = build(target, tmp_path, DEEP_STACK)
    with pytest.raises(EdgecError, match="stack overflow: fake_run used 40000 bytes of stack"):
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
