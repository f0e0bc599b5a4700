"""What lowering produces: kernel calls whose arguments are activation buffers, constant arrays and structs.

The code generator renders these; it decides nothing about arithmetic."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Buf:
    """Pointer to an activation tensor's buffer (arena, model input or model output)."""

    tensor: str
    ctype: str  # "int8_t", "float", "void"
    const: bool = True


@dataclass
class Array:
    """A constant array in flash."""

    name: str
    data: np.ndarray
    ctype: str  # int8_t, int32_t, uint32_t, float


@dataclass
class Struct:
    """A static const struct; passed by address."""

    name: str
    ctype: str
    fields: dict[str, Arg]


@dataclass
class Scratch:
    """Pointer to the call's scratch buffer (arena memory live only during this step); size from the kernel's
    Python twin of its _get_buffer_size companion."""

    nbytes: int


@dataclass
class Raw:
    """A C expression written as is (an enum constant, NULL)."""

    text: str


Arg = Buf | Array | Struct | Scratch | Raw | int | float | list


@dataclass
class Call:
    kernel: str  # C function; its source is runtime_c/src/<kernel>.c
    args: list[Arg]
    node: str = ""
    macs: int = 0

    @property
    def scratch_bytes(self) -> int:
        return max((a.nbytes for a in self.args if isinstance(a, Scratch)), default=0)


@dataclass
class Lowered:
    calls: list[Call] = field(default_factory=list)
    alias: str | None = None  # the output shares this input's buffer (no code)
    note: str = ""  # why these kernels (the sparse cost model's choice), for the build report
