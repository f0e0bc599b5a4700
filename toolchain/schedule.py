"""Schedules: layer by layer, or a run of layers executed in row strips (patch-based execution, as MCUNetV2).

A patch is a run of consecutive row-local nodes (Op.row_window: convolutions, elementwise ops) whose only tensor
used after it is the last node's output. The last node's output is computed `rows` rows at a time; each strip
computes, for every node of the run, the rows its consumers in the strip need (the halo rows are computed again
by the next strip: the extra MACs). The tensors inside the run exist one strip at a time; the run's inputs and its
output are whole tensors, read and written at the strip's rows. Every strip node is lowered like any node (the
same op, its input rows as the input, its window padding only at the image's edges), so each strip runs the
kernel the target selects for that geometry, and computes exactly the rows of the whole layer.

Without a budget the build keeps layer by layer (no recomputation). Under --memory-budget the candidates (every
run of up to MAX_NODES nodes, strips of CANDIDATE_ROWS rows) are tried in order of extra MACs, then of kernel
calls, and the first whose tensor RAM fits the budget is built. A run is tried only when every step outside it
keeps fewer live bytes than layer by layer's peak (the steps outside keep their buffers)."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from edgec.codegen.memory import Plan, Step, plan_memory

from . import inplace
from .calls import Array, Buf, Call, Lowered, Struct
from .errors import EdgecError
from .ir import Graph, Node
from .ops import REGISTRY

MAX_NODES = 8
CANDIDATE_ROWS = (16, 8, 4, 2, 1)
CHANNELS_LAST = (0, 2, 3, 1)


@dataclass
class Patch:
    first: int  # node indices of the run
    last: int
    rows: int  # output rows of the last node per strip
    strips: int
    extra_macs: int
    calls: int  # kernel calls of the run


@dataclass
class Schedule:
    calls: list[tuple[int, Call]]  # (step, call)
    steps: list[Step]
    graph: Graph  # the graph with the strip tensors
    views: dict[str, tuple[str, int]]  # strip view -> (tensor whose buffer holds it, byte offset)
    patch: Patch | None = None

    def plan(self) -> Plan:
        g = self.graph
        plan = plan_memory(self.steps, {n: t.nbytes for n, t in g.tensors.items() if n not in self.views},
                           inputs=g.inputs, outputs=g.outputs)
        for view, (backing, offset) in self.views.items():
            plan.root[view] = plan.root.get(backing, backing)
            plan.rel[view] = plan.rel.get(backing, 0) + offset
        return plan

    def describe(self) -> str:
        p = self.patch
        if p is None:
            return "layer by layer"
        return (f"nodes {p.first}..{p.last} ({self.graph.nodes[p.first].name} .. {self.graph.nodes[p.last].name}) "
                f"in {p.strips} strips of {p.rows} row{'s' if p.rows > 1 else ''}")


def _row_bytes(g: Graph, name: str) -> int:
    t = g.tensors[name]
    return t.nbytes // t.shape[2]


def _row_local(g: Graph, node: Node) -> bool:
    if node.op not in REGISTRY or len(node.outputs) != 1 or REGISTRY[node.op].row_window(node, g) is None:
        return False
    for name in [x for x in node.inputs if x and g.const(x) is None] + node.outputs:
        t = g.tensors[name]
        if len(t.shape) != 4 or t.shape[0] != 1 or t.perm != CHANNELS_LAST or t.view not in (None, t.shape):
            return False
    return True


def regions(g: Graph) -> list[tuple[int, int]]:
    """Runs [a, b] of row-local nodes whose only tensor used after b is node b's output."""
    local = [_row_local(g, n) for n in g.nodes]
    found = []
    for a in range(len(g.nodes)):
        for b in range(a + 1, min(a + MAX_NODES, len(g.nodes))):
            if not local[b - 1] or not local[b]:
                break
            if local[a] and _closed(g, a, b):
                found.append((a, b))
    return found


def _closed(g: Graph, a: int, b: int) -> bool:
    inside = {o for n in g.nodes[a:b] for o in n.outputs}
    later = {x for n in g.nodes[b + 1:] for x in n.inputs}
    return not (inside & (later | set(g.outputs)))


def _needs(g: Graph, nodes: list[Node], lo: int, hi: int) -> dict[str, tuple[int, int]]:
    """Rows [lo, hi) of the last node's output -> the rows of every tensor of the run that the strip computes or
    reads."""
    need = {nodes[-1].outputs[0]: (lo, hi)}
    for n in reversed(nodes):
        span, stride, pad = REGISTRY[n.op].row_window(n, g)
        o_lo, o_hi = need[n.outputs[0]]
        for x in n.inputs:
            if not x or g.const(x) is not None:
                continue
            a, b = max(0, o_lo * stride - pad), min(g.shape(x)[2], (o_hi - 1) * stride - pad + span)
            if x in need:
                a, b = min(a, need[x][0]), max(b, need[x][1])
            need[x] = (a, b)
    return need


def _with_rows(g: Graph, name: str, new: str, rows: int) -> None:
    t = g.tensors[name]
    g.tensors[new] = dataclasses.replace(t, name=new, shape=(*t.shape[:2], rows, t.shape[3]), view=None)


def _rename(arg, names: dict[str, str]):
    if isinstance(arg, Buf):
        return dataclasses.replace(arg, tensor=names.get(arg.tensor, arg.tensor))
    if isinstance(arg, Struct):
        return dataclasses.replace(arg, fields={k: _rename(v, names) for k, v in arg.fields.items()})
    if isinstance(arg, list):
        return [_rename(v, names) for v in arg]
    if isinstance(arg, Array) and arg.data.dtype == object:
        data = np.array([_rename(v, names) for v in arg.data.ravel()], dtype=object).reshape(arg.data.shape)
        return dataclasses.replace(arg, data=data)
    return arg


class _Strips:
    """Builds the strip nodes of one run; a strip geometry already lowered is reused with its tensors renamed."""

    def __init__(self, g: Graph, a: int, b: int, lower: Callable[[Node, Graph], Lowered], cache: dict) -> None:
        self.g, self.nodes, self.lower, self.cache = g, g.nodes[a:b + 1], lower, cache
        self.out = self.nodes[-1].outputs[0]
        self.views: dict[str, tuple[str, int]] = {}
        self.names: dict[tuple, str] = {}  # (tensor, strip) or (buffer, first row, end row) -> a name no tensor has

    def strip(self, k: int, lo: int, hi: int) -> list[tuple[Node, Lowered, Step]]:
        g, need = self.g, _needs(self.g, self.nodes, lo, hi)
        produced = {n.outputs[0] for n in self.nodes[:-1]}
        done = []
        for n in self.nodes:
            span, stride, pad = REGISTRY[n.op].row_window(n, g)
            o_lo, o_hi = need[n.outputs[0]]
            want_lo, want_hi = o_lo * stride - pad, (o_hi - 1) * stride - pad + span
            ins, backing, height = [], [], 0
            for x in n.inputs:
                if not x or g.const(x) is not None:
                    ins.append(x)
                    continue
                height = g.shape(x)[2]  # the whole tensor's rows
                a, b = max(0, want_lo), min(height, want_hi)
                store, base = (self.names[x, k], need[x][0]) if x in produced else (x, 0)
                ins.append(self._view(x, store, a, b, (a - base) * _row_bytes(g, x)))
                backing.append(store)
            y = n.outputs[0]
            if y == self.out:
                store = y
                name = self._view(y, y, o_lo, o_hi, o_lo * _row_bytes(g, y))
            else:
                store = name = self._fresh(f"{y}@{k}", (y, k))
                _with_rows(g, y, name, o_hi - o_lo)
            top, bottom = max(0, -want_lo), max(0, want_hi - height)
            node = Node(n.op, n.name, ins, [name], REGISTRY[n.op].strip_attrs(n, g, top, bottom), n.q, n.scheme,
                        n.dtype)
            low = self._lowered(node, n, top, bottom)
            scratch = max((c.scratch_bytes for c in low.calls), default=0)
            cands = [] if store == self.out else [
                (self.views.get(t, (t, 0))[0], s) for t, s in inplace.candidates(node, g, low.calls)
                if self.views.get(t, (t, 0))[1] == 0 and g.tensors[t].nbytes == g.tensors[
                    self.views.get(t, (t, 0))[0]].nbytes]
            done.append((node, low, Step(backing, [store], None, scratch, cands, fixed=True)))
        return done

    def _fresh(self, base: str, key: tuple) -> str:
        self.names[key] = self.g.fresh_name(base)
        return self.names[key]

    def _view(self, x: str, store: str, a: int, b: int, offset: int) -> str:
        if (store, a, b) not in self.names:
            name = self._fresh(f"{store}:{a}-{b}", (store, a, b))
            _with_rows(self.g, x, name, b - a)
            self.views[name] = (store, offset)
        return self.names[store, a, b]

    def _lowered(self, node: Node, orig: Node, top: int, bottom: int) -> Lowered:
        key = (id(orig), top, bottom, *(self.g.shape(x) for x in node.inputs + node.outputs if x))
        if key not in self.cache:
            self.cache[key] = (node, self.lower(node, self.g))
            return self.cache[key][1]
        first, low = self.cache[key]
        names = dict(zip(first.inputs + first.outputs, node.inputs + node.outputs))
        return dataclasses.replace(low, calls=[dataclasses.replace(c, args=_rename(c.args, names))
                                               for c in low.calls])


def patched(g: Graph, base: Schedule, a: int, b: int, rows: int, lower: Callable[[Node, Graph], Lowered],
            cache: dict | None = None) -> Schedule:
    """The schedule with nodes a..b run in strips of `rows` rows of node b's output (cache: strip lowerings by
    geometry, shared between schedules)."""
    g2 = copy.copy(g)
    g2.tensors = dict(g.tensors)
    strips = _Strips(g2, a, b, lower, {} if cache is None else cache)
    height = g.shape(g.nodes[b].outputs[0])[2]
    calls, steps, macs, ncalls = [], [], 0, 0
    for i in range(a):
        steps.append(base.steps[i])
    for k, lo in enumerate(range(0, height, rows)):
        for node, low, step in strips.strip(k, lo, min(height, lo + rows)):
            calls.extend((len(steps), c) for c in low.calls)
            steps.append(step)
            macs += REGISTRY[node.op].macs(node, g2)
            ncalls += len(low.calls)
    shift = len(steps) - (b + 1)
    calls = [(s, c) for s, c in base.calls if s < a] + calls + [(s + shift, c) for s, c in base.calls if s > b]
    steps += base.steps[b + 1:]
    extra = macs - sum(REGISTRY[n.op].macs(n, g) for n in g.nodes[a:b + 1])
    patch = Patch(a, b, rows, -(-height // rows), extra, ncalls)
    return Schedule(calls, steps, g2, strips.views, patch)


def choose(g: Graph, base: Schedule, budget: int | None,
           lower: Callable[[Node, Graph], Lowered]) -> tuple[Schedule, Plan]:
    """The fastest schedule whose tensor RAM fits the budget (None: layer by layer); a user error with the least
    tensor RAM found when none fits."""
    plan = base.plan()
    if budget is None or plan.tensor_ram_bytes <= budget:
        return base, plan
    candidates = []
    for a, b in regions(g):
        outside = max(plan.live[:a] + plan.live[b + 1:], default=0)  # the steps outside the run keep their buffers
        if outside >= plan.lower_bound_bytes:
            continue  # it cannot go below layer by layer
        height = g.shape(g.nodes[b].outputs[0])[2]
        for rows in CANDIDATE_ROWS:
            if rows < height:
                candidates.append((_extra_macs(g, a, b, rows), -(-height // rows) * (b - a + 1), a, b, rows))
    least, cache = plan.tensor_ram_bytes, {}
    for *_, a, b, rows in sorted(candidates):
        schedule = patched(g, base, a, b, rows, lower, cache)
        trial = schedule.plan()
        if trial.tensor_ram_bytes <= budget:
            return schedule, trial
        least = min(least, trial.tensor_ram_bytes)
    raise EdgecError(f"--memory-budget {budget}: the smallest schedule edgec finds needs {least} bytes of tensor RAM "
                     f"(layer by layer: {plan.tensor_ram_bytes}); give a budget of at least {least}")


def _extra_macs(g: Graph, a: int, b: int, rows: int) -> int:
    """The MACs strips of `rows` rows compute again: each node's rows computed beyond its height, times its MACs
    per row."""
    nodes = g.nodes[a:b + 1]
    height = g.shape(nodes[-1].outputs[0])[2]
    computed: dict[str, int] = {}
    for lo in range(0, height, rows):
        for name, (x, y) in _needs(g, nodes, lo, min(height, lo + rows)).items():
            computed[name] = computed.get(name, 0) + y - x
    extra = 0
    for n in nodes:
        h = g.shape(n.outputs[0])[2]
        extra += (computed[n.outputs[0]] - h) * REGISTRY[n.op].macs(n, g) // h
    return extra
