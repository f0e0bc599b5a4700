"""Target descriptions: one TOML file per target in targets/ (compiler, flags, memory limits, emulator)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from .errors import EdgecError
from .paths import TARGETS_DIR

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    import tomli as tomllib  # type: ignore[no-redef]


@dataclass(frozen=True)
class Target:
    name: str
    description: str
    kind: str  # "host" or "qemu-system"
    cc: str
    cflags: tuple[str, ...] = ()
    ldflags: tuple[str, ...] = ()
    opt: str = "-O2"
    qemu: str = ""
    machine: str = ""
    flash_origin: int = 0
    flash_bytes: int = 0  # 0: no limit (host)
    ram_origin: int = 0
    ram_bytes: int = 0
    stack_bytes: int = 0  # stack reserved at the top of RAM (part of ram_bytes)
    heap_bytes: int = 0  # heap reserved for the C library (part of ram_bytes)
    timer_hz: int = 0  # SysTick clock in QEMU's virtual time
    icount_shift: int = 0  # QEMU -icount shift: one instruction = 2**shift ns of virtual time
    features: tuple[str, ...] = ()
    apt: tuple[str, ...] = ()

    @property
    def instructions_per_tick(self) -> int:
        """Instructions executed per SysTick tick under `-icount shift=<icount_shift>`."""
        ns_per_tick, rest = divmod(1_000_000_000, self.timer_hz)
        if rest or ns_per_tick % (1 << self.icount_shift):
            raise EdgecError(f"target {self.name}: timer_hz {self.timer_hz} is not a whole number of instructions")
        return ns_per_tick >> self.icount_shift

    @property
    def apt_install(self) -> str:
        return "sudo apt-get install " + " ".join(self.apt)


_KINDS = ("host", "qemu-system")
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
