"""Static arena planning from tensor lifetimes.

Each buffer goes, in some order, to the lowest offset where it overlaps no buffer already placed that is alive at
the same time. The order matters and no single one is best, so several are tried and the smallest arena is kept:
largest first (TFLM's greedy planner; resnet8's arena is at its lower bound only this way) and first use first
(mobilenet_vww96: 55,328 bytes, its lower bound, against 64,512 largest first).

The model's inputs and outputs are arena buffers too (the caller writes the inputs there before the first step and
reads the outputs after the last), unless they are named external (the caller's own buffers). A Reshape shares
its input's buffer."""

from __future__ import annotations

from dataclasses import dataclass

ALIGN = 16


@dataclass
class Step:
    """One node's buffers: activations read and written, the input it aliases (no code) and scratch bytes."""

    inputs: list[str]
    outputs: list[str]
    alias: str | None = None
    scratch: int = 0


def scratch_name(step: int) -> str:
    return f"__scratch_{step}"


@dataclass
class Plan:
    offsets: dict[str, int]  # arena buffer (root tensor) -> byte offset
    root: dict[str, str]  # tensor -> the tensor whose buffer it uses
    sizes: dict[str, int]  # root -> bytes
    arena_bytes: int
    lower_bound_bytes: int  # largest sum of simultaneously live buffers
    external_bytes: int = 0  # the buffers outside the arena (the model's inputs and outputs in the caller's memory)

    def offset(self, tensor: str) -> int:
        """A tensor's byte offset in the arena."""
        return self.offsets[self.root.get(tensor, tensor)]

    @property
    def tensor_ram_bytes(self) -> int:
        """Every byte tensors and kernels occupy during one inference: the arena (scratch included) and the
        buffers outside it (what TFLM's arena_used_bytes counts, its arena holding the inputs and outputs)."""
        return self.arena_bytes + self.external_bytes


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def plan_memory(steps: list[Step], nbytes: dict[str, int], external: set[str] = frozenset(),
                inputs: list[str] = (), outputs: list[str] = ()) -> Plan:
    """Place every buffer of the steps (in execution order) in one arena; scratch lives for its step only.
    inputs / outputs: the model's, alive from before the first step / until after the last (in the arena unless
    external)."""
    root: dict[str, str] = {name: name for name in inputs}
    first: dict[str, int] = {name: 0 for name in inputs}
    last: dict[str, int] = {name: 0 for name in inputs}
    nbytes = dict(nbytes)
    for i, step in enumerate(steps):
        for name in step.inputs:
            r = root.setdefault(name, name)
            last[r] = i
        for name in step.outputs:
            r = root[step.alias] if step.alias is not None else name
            root[name] = r
            first.setdefault(r, i)
            last[r] = max(last.get(r, i), i)
        if step.scratch:
            name = scratch_name(i)
            root[name], first[name], last[name], nbytes[name] = name, i, i, step.scratch
    for name in outputs:
        r = root.setdefault(name, name)
        first.setdefault(r, 0)
        last[r] = max(len(steps) - 1, 0)
    buffers = [r for r in first if r == root[r] and r not in external]
    sizes = {r: nbytes[r] for r in buffers}
    orders = [sorted(buffers, key=lambda b: (-sizes[b], first[b])),  # largest first
              sorted(buffers, key=lambda b: (first[b], -sizes[b]))]  # first use first
    placed = [_place(order, sizes, first, last) for order in orders]
    offsets = min(placed, key=lambda o: _arena(o, sizes))  # on a tie the earlier order
    bound = 0
    for i in range(len(steps)):
        bound = max(bound, sum(sizes[r] for r in buffers if first[r] <= i <= last[r]))
    return Plan(offsets, root, sizes, _arena(offsets, sizes), bound, sum(nbytes.get(x, 0) for x in external))


def _place(order: list[str], sizes: dict[str, int], first: dict[str, int], last: dict[str, int]) -> dict[str, int]:
    """Offsets: each buffer in turn at the lowest aligned offset clear of the placed buffers alive with it."""
    offsets: dict[str, int] = {}
    for r in order:
        taken = sorted((offsets[o], offsets[o] + sizes[o]) for o in offsets
                       if first[o] <= last[r] and first[r] <= last[o])
        at = 0
        for lo, hi in taken:
            if at + sizes[r] <= lo:
                break
            at = max(at, _align(hi))
        offsets[r] = at
    return offsets


def _arena(offsets: dict[str, int], sizes: dict[str, int]) -> int:
    return _align(max((offsets[r] + sizes[r] for r in offsets), default=0))
