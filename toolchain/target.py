"""Target descriptions: one TOML file per target in targets/ (compiler, flags, memory limits, emulator)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from fractions import Fraction
from pathlib import Path
from typing import Any

from .errors import EdgecError
from .paths import TARGETS_DIR


@dataclass(frozen=True)
class Target:
    name: str
    description: str
    kind: str  # "host", "qemu-system" (bare metal, semihosting) or "qemu-user" (Linux user mode)
    cc: str
    cflags: tuple[str, ...] = ()
    ldflags: tuple[str, ...] = ()
    opt: str = "-O2"
    qemu: str = ""
    machine: str = ""
    # Limits of the part, checked at build time against what the model needs (weights + code in flash; arena,
    # static data and stack in RAM); 0: no limit. `edgec build --flash/--ram` overrides them.
    flash_bytes: int = 0
    ram_bytes: int = 0
    # Memory of the emulated board (the linker script's regions): the model plus the test harness (C library,
    # semihosting, input/output buffers, stack). 0: the same as the limit.
    flash_origin: int = 0
    board_flash_bytes: int = 0
    ram_origin: int = 0
    board_ram_bytes: int = 0
    vectors_origin: int = -1  # where the board reads the vector table at reset, when not at flash_origin
    stack_bytes: int = 0  # stack reserved at the top of the board's RAM
    heap_bytes: int = 0  # minimum heap for the C library and the harness's buffers
    timer_hz: int = 0  # SysTick clock in QEMU's virtual time (QEMU `info qtree`: cpuclk of the armv7m device)
    icount_shift: int = 0  # QEMU -icount shift: one instruction = 2**shift ns of virtual time
    features: tuple[str, ...] = ()
    apt: tuple[str, ...] = ()

    @property
    def board_flash(self) -> int:
        return self.board_flash_bytes or self.flash_bytes

    @property
    def board_ram(self) -> int:
        return self.board_ram_bytes or self.ram_bytes

    @property
    def tick_lock(self) -> tuple[int, int]:
        """(ticks, instructions): the shortest whole number of SysTick ticks, a power of two, that lasts a whole
        number of instructions under `-icount shift=<icount_shift>` (1 instruction = 2**shift ns), and that number
        of instructions. 25 MHz: (1, 40); 32 MHz: (4, 125)."""
        per_tick = Fraction(1_000_000_000, self.timer_hz << self.icount_shift)
        ticks = per_tick.denominator
        if ticks & (ticks - 1):
            raise EdgecError(f"target {self.name}: a tick of timer_hz {self.timer_hz} lasts {per_tick} instructions;"
                             " the denominator must be a power of two")
        return ticks, per_tick.numerator

    @property
    def instructions_per_tick(self) -> Fraction:
        """Instructions executed per SysTick tick under `-icount shift=<icount_shift>`."""
        ticks, instructions = self.tick_lock
        return Fraction(instructions, ticks)

    @property
    def apt_install(self) -> str:
        return "sudo apt-get install " + " ".join(self.apt)


_KINDS = ("host", "qemu-system", "qemu-user")
_TUPLE_FIELDS = {"cflags", "ldflags", "features", "apt"}


def _from_toml(path: Path) -> Target:
    try:
        data: dict[str, Any] = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise EdgecError(f"target file {path}: {e}") from e
    known = {f.name for f in fields(Target)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise EdgecError(f"target file {path}: unknown field(s) {', '.join(unknown)}")
    missing = [k for k in ("name", "description", "kind", "cc") if k not in data]
    if missing:
        raise EdgecError(f"target file {path}: missing field(s) {', '.join(missing)}")
    if data["kind"] not in _KINDS:
        raise EdgecError(f"target file {path}: kind must be one of {', '.join(_KINDS)}, not {data['kind']!r}")
    values = {k: tuple(v) if k in _TUPLE_FIELDS else v for k, v in data.items()}
    return Target(**values)


def list_targets() -> list[Target]:
    """All targets described in targets/*.toml, sorted by name."""
    return sorted((_from_toml(p) for p in TARGETS_DIR.glob("*.toml")), key=lambda t: t.name)


def load_target(name: str) -> Target:
    path = TARGETS_DIR / f"{name}.toml"
    if not path.is_file():
        known = ", ".join(t.name for t in list_targets())
        raise EdgecError(f"unknown target {name!r}; known targets: {known}")
    target = _from_toml(path)
    if target.name != name:
        raise EdgecError(f"target file {path} declares name {target.name!r}, expected {name!r}")
    return target
