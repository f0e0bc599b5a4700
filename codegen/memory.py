"""Static arena planning from tensor lifetimes (greedy by size, like TFLM's greedy planner).

Model inputs and outputs live in the caller's buffers; a Reshape shares its input's buffer."""

from __future__ import annotations

from dataclasses import dataclass

ALIGN = 16


@dataclass
class Plan:
    offsets: dict[str, int]  # arena buffer (root tensor) -> byte offset
    root: dict[str, str]  # tensor -> the tensor whose buffer it uses
    sizes: dict[str, int]  # root -> bytes
    arena_bytes: int
    lower_bound_bytes: int  # largest sum of simultaneously live buffers


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def plan_memory(steps: list[tuple[list[str], list[str], str | None]], nbytes: dict[str, int],
                external: set[str]) -> Plan:
    """steps: per kernel step (inputs, outputs, alias source or None), in execution order."""
    root: dict[str, str] = {}
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    for i, (ins, outs, alias) in enumerate(steps):
        for name in ins:
            r = root.setdefault(name, name)
            last[r] = i
        for name in outs:
            r = root[alias] if alias is not None else name
            root[name] = r
            first.setdefault(r, i)
            last[r] = max(last.get(r, i), i)
    buffers = [r for r in first if r == root[r] and r not in external]
    sizes = {r: nbytes[r] for r in buffers}
    offsets: dict[str, int] = {}
    for r in sorted(buffers, key=lambda b: (-sizes[b], first[b])):
        taken = sorted((offsets[o], offsets[o] + sizes[o]) for o in offsets
                       if first[o] <= last[r] and first[r] <= last[o])
        at = 0
        for lo, hi in taken:
            if at + sizes[r] <= lo:
                break
            at = max(at, _align(hi))
        offsets[r] = at
    arena = _align(max((offsets[r] + sizes[r] for r in offsets), default=0))
    bound = 0
    for i in range(len(steps)):
        bound = max(bound, sum(sizes[r] for r in buffers if first[r] <= i <= last[r]))
    return Plan(offsets, root, sizes, arena, bound)
