"""Static arena planning from tensor lifetimes.

Each buffer goes, in some order, to the lowest offset where it overlaps no buffer already placed that is alive at
the same time. The order matters and no single one is best, so several are tried and the smallest arena is kept:
largest first (TFLM's greedy planner; resnet8's arena is at its lower bound only this way) and first use first
(mobilenet_vww96: 55,328 bytes, its lower bound, against 64,512 largest first).

The model's inputs and outputs are arena buffers too (the caller writes the inputs there before the first step and
reads the outputs after the last), unless they are named external (the caller's own buffers). A Reshape shares
its input's buffer."""

from __future__ import annotations

from dataclasses import dataclass, field

ALIGN = 16


@dataclass
class Step:
    """One node's buffers: activations read and written, the input it aliases (no code) and scratch bytes."""

    inputs: list[str]
    outputs: list[str]
    alias: str | None = None
    scratch: int = 0
    # In-place candidates, best first: (input, shift): the output may start `shift` bytes before that input's
    # first byte when the input dies at this step (the kernel is safe for it; toolchain/inplace.py).
    inplace: list[tuple[str, int]] = field(default_factory=list)
    # The same for the step's scratch: it may start `shift` bytes before an input that dies here (a kernel that
    # expands its input into scratch before it writes anything else; toolchain/inplace.py).
    scratch_over: list[tuple[str, int]] = field(default_factory=list)
    fixed: bool = False  # in place whenever it can, not tried both ways (the many steps of a run in strips)


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
    rel: dict[str, int] = field(default_factory=dict)  # tensor -> its byte offset inside its root's buffer
    # output (or step scratch) written over this input (toolchain/inplace.py)
    inplace: dict[str, str] = field(default_factory=dict)
    live: list[int] = field(default_factory=list)  # per step: the bytes of the buffers alive (in the arena)

    def offset(self, tensor: str) -> int:
        """A tensor's byte offset in the arena."""
        return self.offsets[self.root.get(tensor, tensor)] + self.rel.get(tensor, 0)

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
    # In place: everywhere or nowhere, whichever arena is smaller, then step by step each step switched where that
    # does not grow the arena (a small output written over a large input keeps the input's bytes for the output's
    # whole life; a single step in place may pay only once the others are).
    args = (steps, nbytes, root, first, last, external, list(outputs))
    candidates = {i for i, step in enumerate(steps) if step.inplace or (step.scratch and step.scratch_over)}
    fixed = {i for i in candidates if steps[i].fixed}
    candidates -= fixed
    allowed = set(fixed)
    best = _plan(*args, allowed)
    every = _plan(*args, candidates | fixed)
    if every.arena_bytes <= best.arena_bytes:
        allowed, best = candidates | fixed, every
    for _ in range(2):
        for i in sorted(candidates):
            trial_allowed = allowed ^ {i}
            trial = _plan(*args, trial_allowed)
            if trial.inplace != best.inplace and (trial.arena_bytes < best.arena_bytes or (
                    trial.arena_bytes == best.arena_bytes and i in trial_allowed)):
                allowed, best = trial_allowed, trial
    best.external_bytes = sum(nbytes.get(x, 0) for x in external)
    return best


def _plan(steps: list[Step], nbytes: dict[str, int], root: dict[str, str], first: dict[str, int],
          last: dict[str, int], external: set[str], outputs: list[str], allowed: set[int]) -> Plan:
    root, first, last = dict(root), dict(first), dict(last)
    rel, inplace = _merge_inplace(steps, root, first, last, external, outputs, allowed)
    buffers = [r for r in first if r == root[r] and r not in external]
    sizes = {r: _extent(r, root, rel, nbytes) for r in buffers}
    orders = [sorted(buffers, key=lambda b: (-sizes[b], first[b])),  # largest first
              sorted(buffers, key=lambda b: (first[b], -sizes[b]))]  # first use first
    placed = [_place(order, sizes, first, last) for order in orders]
    offsets = min(placed, key=lambda o: _arena(o, sizes))  # on a tie the earlier order
    live = [sum(sizes[r] for r in buffers if first[r] <= i <= last[r]) for i in range(len(steps))]
    return Plan(offsets, root, sizes, _arena(offsets, sizes), max(live, default=0), 0, rel, inplace, live)


def _extent(r: str, root: dict[str, str], rel: dict[str, int], nbytes: dict[str, int]) -> int:
    """The bytes of buffer r: up to the end of the furthest tensor in it."""
    return max(rel.get(t, 0) + nbytes[t] for t in root if root[t] == r)


def _merge_inplace(steps: list[Step], root: dict[str, str], first: dict[str, int], last: dict[str, int],
                   external: set[str], outputs: list[str], allowed: set[int]) -> tuple[dict[str, int], dict[str, str]]:
    """Let the output of each allowed step share the buffer of an input that dies there (its first in-place
    candidate whose buffer is no model output nor external), `shift` bytes before it. The two become one buffer
    (root, offsets inside it in rel) alive for both lifetimes. Updates root, first and last; returns rel and, per
    output written in place, its input."""
    rel: dict[str, int] = {}
    inplace: dict[str, str] = {}
    for i, step in enumerate(steps):
        if i not in allowed or step.alias is not None or len(step.outputs) != 1:
            continue
        out = step.outputs[0]
        if root[out] == out:
            done = _merge(out, i, step.inplace, root, rel, first, last, external, outputs)
            if done:
                inplace[out] = done
        if step.scratch and step.scratch_over:
            done = _merge(scratch_name(i), i, step.scratch_over, root, rel, first, last, external, outputs)
            if done:
                inplace[scratch_name(i)] = done
    return rel, inplace


def _merge(out: str, i: int, over: list[tuple[str, int]], root: dict[str, str], rel: dict[str, int],
           first: dict[str, int], last: dict[str, int], external: set[str], outputs: list[str]) -> str | None:
    """Put buffer `out` (born at step i) over the first candidate input that dies at step i; returns that input."""
    for name, shift in over:
        r = root[name]
        if r in external or r == out or last[r] != i or any(root[o] == r for o in outputs):
            continue
        at = rel.get(name, 0) - _align(shift)  # further before is safe too; every tensor stays aligned
        members = [t for t in root if root[t] == out]
        for t in members:
            root[t], rel[t] = r, rel.get(t, 0) + at
        if at < 0:  # the output starts before the buffer: move every tensor in it up
            for t in root:
                if root[t] == r:
                    rel[t] = rel.get(t, 0) - at
        last[r] = max(last[r], last.pop(out))
        first.pop(out)
        return name
    return None


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
