"""Typed integer parameters of the ops (Node.q): the base class every op's parameter dataclass derives from.

An op's quantize() returns one of its own dataclasses (the weighted layers: a Stage of output_stage.py); its ref_s8
and lower read the fields. A second arithmetic for the same op (TFLite Micro's, ops/tflm.py) is a subclass whose
`arithmetic` field says so (tflm.uses_tflm reads it)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any


@dataclass(kw_only=True)
class Params:
    """Item access (q["table"], "mult" in q, q.get("tables")) reads and writes the fields by name, for code that
    handles every op's parameters alike."""

    def keys(self) -> list[str]:
        return [f.name for f in fields(self)]

    def __contains__(self, key: object) -> bool:
        return key in self.keys()

    def __getitem__(self, key: str) -> Any:
        if key not in self:
            raise KeyError(key)
        return getattr(self, key)

    def __setitem__(self, key: str, value: Any) -> None:
        if key not in self:
            raise KeyError(key)
        setattr(self, key, value)

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key) if key in self else default
