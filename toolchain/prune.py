"""Pruning on the IR (after folding and fusion, before layout): unstructured by magnitude, N:M, whole blocks of
the weight matrix by L2 norm, and whole filters by L1/L2 norm with a graph rewrite that removes the channels
everywhere they flow; least-squares re-fit of the remaining weights on calibration data; per-layer sensitivity; the
gradual sparsity schedule.

Weights are Conv W [O][I/g][kh][kw] and canonical Gemm W [N][K] (normalize makes every Gemm so)."""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field

import numpy as np

from .errors import EdgecError
from .ir import Graph, Node
from .ops import REGISTRY
from .ops.base import is_weighted
from .reference import run_graph, run_samples

METHODS = ("magnitude", "l1-filter", "l2-filter", "n:m", "block")


@dataclass
class PruneOptions:
    method: str = "magnitude"  # magnitude | l1-filter | l2-filter | n:m | block
    sparsity: float = 0.5  # share of weights (magnitude, block), of filters (l1/l2-filter)
    pattern: tuple[int, int] = (2, 4)  # N:M keeps N of every M weights along the input axis; block: rows x columns
    scope: str = "layer"  # magnitude threshold per layer or one global threshold
    exclude: list[str] | None = None  # layer names kept dense; None: the first and the last weighted layer
    per_layer: dict[str, float] = field(default_factory=dict)  # sparsity overrides by layer name
    refit: bool = False  # least-squares re-fit on calibration data


def schedule(t: float, total: float, s_initial: float, s_final: float, t0: float = 0.0) -> float:
    """Gradual pruning schedule s_t = s_f + (s_i - s_f) (1 - (t - t0) / total)^3, clamped to [t0, t0 + total]."""
    frac = min(max((t - t0) / total, 0.0), 1.0)
    return s_final + (s_initial - s_final) * (1.0 - frac) ** 3


def weighted_layers(g: Graph) -> list[Node]:
    return [n for n in g.nodes if is_weighted(n) and g.const(n.inputs[1]) is not None]


def parse_pattern(text: str | None, method: str = "n:m") -> tuple[int, int]:
    """--pattern: N:M for n:m pruning (default 2:4), RxC (rows x input columns) for block pruning (default 4x4)."""
    if method == "block":
        return parse_block(text or "4x4")
    text = text or "2:4"
    try:
        n, m = (int(v) for v in text.split(":"))
    except ValueError:
        raise EdgecError(f"N:M pattern '{text}' is not of the form 2:4") from None
    if not 0 < n < m:
        raise EdgecError(f"N:M pattern '{text}': need 0 < N < M")
    return n, m


def parse_block(text: str) -> tuple[int, int]:
    try:
        r, c = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise EdgecError(f"block pattern '{text}' is not of the form 4x4 (rows x input columns)") from None
    if r < 1 or c < 1:
        raise EdgecError(f"block pattern '{text}': rows and columns must be at least 1")
    return r, c


def _targets(g: Graph, opts: PruneOptions) -> list[Node]:
    layers = weighted_layers(g)
    names = {n.name for n in layers}
    if opts.exclude is None:
        excluded = {layers[0].name, layers[-1].name} if layers else set()
    else:
        unknown = sorted(set(opts.exclude) - names)
        if unknown:
            raise EdgecError(f"--exclude names unknown layers: {', '.join(unknown)}; weighted layers: "
                             f"{', '.join(sorted(names))}")
        excluded = set(opts.exclude)
    unknown = sorted(set(opts.per_layer) - names)
    if unknown:
        raise EdgecError(f"the per-layer sparsity config names unknown layers: {', '.join(unknown)}; weighted "
                         f"layers: {', '.join(sorted(names))}")
    return [n for n in layers if n.name not in excluded]


def _check_sparsity(s: float, what: str) -> None:
    if not 0.0 <= s < 1.0:
        raise EdgecError(f"{what} {s}: a sparsity must be in [0, 1)")


def _set_weights(g: Graph, node: Node, w: np.ndarray, b: np.ndarray | None = None) -> None:
    node.inputs[1] = g.add_const(f"{node.name}_W_pruned", w.astype(np.float32))
    if b is not None:
        name = g.add_const(f"{node.name}_B_pruned", b.astype(np.float32))
        if len(node.inputs) > 2:
            node.inputs[2] = name
        else:
            node.inputs.append(name)


def _bias(g: Graph, node: Node) -> np.ndarray | None:
    return g.const(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] else None


# ---- unstructured and N:M --------------------------------------------------------------------------------------


def magnitude_masks(g: Graph, layers: list[Node], sparsity: dict[str, float], scope: str) -> dict[str, np.ndarray]:
    if scope == "global":
        s = next(iter(sparsity.values()), 0.0)
        everything = np.concatenate([np.abs(g.const(n.inputs[1])).ravel() for n in layers])
        k = int(math.floor(s * everything.size))
        cut = np.partition(everything, k - 1)[k - 1] if k > 0 else -1.0
        return {n.name: np.abs(g.const(n.inputs[1])) > cut for n in layers}
    masks = {}
    for n in layers:
        w = np.abs(g.const(n.inputs[1]))
        k = int(math.floor(sparsity[n.name] * w.size))
        order = np.argsort(w, axis=None, kind="stable")
        mask = np.ones(w.size, bool)
        mask[order[:k]] = False
        masks[n.name] = mask.reshape(w.shape)
    return masks


def nm_masks(g: Graph, layers: list[Node], n_keep: int, m: int) -> dict[str, np.ndarray]:
    """Keep the n_keep largest of every m consecutive weights along the input axis (axis 1; Gemm: K)."""
    masks = {}
    for node in layers:
        w = g.const(node.inputs[1])
        k = w.shape[1]
        if k == 1:  # a depthwise convolution has one input per filter: nothing to choose from
            continue
        if k % m:
            raise EdgecError(f"N:M {n_keep}:{m} does not divide the {k} input channels of layer '{node.name}'; "
                             f"exclude it with --exclude {node.name}")
        moved = np.moveaxis(np.abs(w), 1, -1)  # [..., K]
        groups = moved.reshape(moved.shape[:-1] + (k // m, m))
        rank = np.argsort(np.argsort(-groups, axis=-1, kind="stable"), axis=-1, kind="stable")
        masks[node.name] = np.moveaxis((rank < n_keep).reshape(moved.shape), -1, 1)
    return masks


def _kernel_matrix(w: np.ndarray) -> np.ndarray:
    """Weights as the kernels' [out][in] matrix: a convolution's [O][I][kh][kw] in im2col order [O][kh][kw][I]."""
    return np.moveaxis(w, 1, -1).reshape(w.shape[0], -1) if w.ndim > 2 else w


def _from_kernel_matrix(m: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    if len(shape) <= 2:
        return m
    return np.moveaxis(m.reshape((shape[0],) + tuple(shape[2:]) + (shape[1],)), -1, 1)


def block_norms(w: np.ndarray, block: tuple[int, int]) -> np.ndarray:
    """L2 norm of every rows x columns block of the [out][in] matrix w (whose shape the block divides)."""
    r, c = block
    n, k = w.shape
    return np.sqrt(np.square(w.astype(np.float64)).reshape(n // r, r, k // c, c).sum(axis=(1, 3)))


def block_masks(g: Graph, layers: list[Node], sparsity: dict[str, float], scope: str, block: tuple[int, int],
                explicit: set[str]) -> tuple[dict[str, np.ndarray], list[str]]:
    """Zero the blocks of smallest L2 norm of each layer's [out][in] matrix (_kernel_matrix), per layer or with one
    global threshold; a layer that the block does not divide stays dense (a note), or is an error when `explicit`
    (the user named it) holds it. Returns the masks (in the weights' shape) and the notes."""
    r, c = block
    mats, notes = {}, []
    for n in layers:
        m = _kernel_matrix(g.const(n.inputs[1]))
        if m.shape[0] % r or m.shape[1] % c:
            msg = f"block {r}x{c} does not divide the {m.shape[0]}x{m.shape[1]} weight matrix of layer '{n.name}'"
            if n.name in explicit:
                raise EdgecError(f"{msg}; choose another --pattern or exclude it with --exclude {n.name}")
            notes.append(f"{msg}: left dense")
            continue
        mats[n.name] = block_norms(m, block)
    if scope == "global" and mats:
        s = next(iter(sparsity.values()), 0.0)
        everything = np.concatenate([v.ravel() for v in mats.values()])
        k = int(math.floor(s * everything.size))
        order = np.argsort(everything, kind="stable")
        keep = np.ones(everything.size, bool)
        keep[order[:k]] = False
        ends = np.cumsum([v.size for v in mats.values()])
        kept = dict(zip(mats, np.split(keep, ends[:-1])))
    else:
        kept = {}
        for name, v in mats.items():
            k = int(math.floor(sparsity[name] * v.size))
            keep = np.ones(v.size, bool)
            keep[np.argsort(v, axis=None, kind="stable")[:k]] = False
            kept[name] = keep
    masks = {}
    for n in layers:
        if n.name in kept:
            shape = g.const(n.inputs[1]).shape
            v = mats[n.name]
            m = np.repeat(np.repeat(kept[n.name].reshape(v.shape), r, axis=0), c, axis=1)
            masks[n.name] = _from_kernel_matrix(m, shape)
    return masks, notes


def apply_masks(g: Graph, layers: list[Node], masks: dict[str, np.ndarray]) -> None:
    for n in layers:
        if n.name in masks:
            _set_weights(g, n, g.const(n.inputs[1]) * masks[n.name])


# ---- filter pruning with a graph rewrite -----------------------------------------------------------------------


@dataclass
class _Edit:
    """What removing channels of one layer changes downstream."""

    shapes: list[str] = field(default_factory=list)  # tensors whose axis-1 (or last) size shrinks
    inputs_of: list[tuple[Node, bool]] = field(default_factory=list)  # layers that lose input channels (flattened)
    depthwise: list[Node] = field(default_factory=list)  # depthwise convs that lose the same channels
    consts: list[tuple[Node, int]] = field(default_factory=list)  # per-channel constant operands to slice
    flatten: list[tuple[str, int]] = field(default_factory=list)  # (reshape output, spatial size per channel)


def _per_channel_const(g: Graph, name: str, channels: int) -> bool:
    c = g.const(name)
    if c is None:
        return False
    shape = tuple(c.shape)
    return c.size == 1 or (c.size == channels and len(shape) >= 3 and shape[-3] == channels)


def _flow(g: Graph, tensor: str, channels: int, edit: _Edit) -> bool:
    """Follow the channels of `tensor` to the layers that consume them; False where that is not possible."""
    if tensor in g.outputs:
        return False
    for u in g.consumers(tensor):
        out = u.outputs[0]
        channelwise = REGISTRY[u.op].channelwise if u.op in REGISTRY else None  # Op.channelwise
        if channelwise == "always" or (channelwise == "consts" and all(
                i == tensor or _per_channel_const(g, i, channels) for i in u.inputs)):
            edit.shapes.append(out)
            edit.consts += [(u, k) for k, i in enumerate(u.inputs) if i != tensor and g.const(i) is not None
                            and g.const(i).size > 1]
            if not _flow(g, out, channels, edit):
                return False
            continue
        reads = REGISTRY[u.op].reads_channels(u, g, tensor, channels) if u.op in REGISTRY else None
        if reads == "inputs":
            edit.inputs_of.append((u, False))
        elif reads == "depthwise":
            edit.depthwise.append(u)
            edit.shapes.append(out)
            if not _flow(g, out, channels, edit):
                return False
        elif reads == "flatten":
            edit.flatten.append((out, int(np.prod(g.shape(tensor)[2:], dtype=np.int64))))
            edit.inputs_of += [(c, True) for c in g.consumers(out)]
        else:
            return False
    return True


def _shrink(g: Graph, name: str, keep: np.ndarray, axis: int = 1) -> None:
    t = g.tensors[name]
    shape = list(t.shape)
    shape[axis] = int(keep.size)
    t.shape = tuple(shape)


def prune_filters(g: Graph, layers: list[Node], sparsity: dict[str, float], norm: int) -> dict[str, np.ndarray]:
    """Remove the filters (output channels) of smallest L1/L2 norm; returns the kept channel indices by pruned
    layer. Layers whose channels reach something that cannot follow (a residual Add of two branches, a Concat, a
    model output) stay whole."""
    kept = {}
    for node in layers:
        w = g.const(node.inputs[1])
        out = node.outputs[0]
        channels, op = w.shape[0], REGISTRY[node.op]
        if op.groups(node) != 1:
            continue
        count = min(int(math.floor(sparsity[node.name] * channels)), channels - 1)
        edit = _Edit()
        if count <= 0 or len(g.shape(out)) < 2 or not _flow(g, out, channels, edit):
            continue
        norms = np.linalg.norm(w.reshape(channels, -1), ord=norm, axis=1)
        keep = np.sort(np.argsort(norms, kind="stable")[count:])
        b = _bias(g, node)
        _set_weights(g, node, w[keep], None if b is None else b[keep])
        _shrink(g, out, keep, axis=op.channel_axis)
        for name in edit.shapes:
            _shrink(g, name, keep)
        for d in edit.depthwise:
            db = _bias(g, d)
            _set_weights(g, d, g.const(d.inputs[1])[keep], None if db is None else db[keep])
            d.attrs["group"] = int(keep.size)
        for u, k in edit.consts:
            c = g.const(u.inputs[k])
            u.inputs[k] = g.add_const(f"{u.name}_c{k}_pruned", np.take(c, keep, axis=c.ndim - 3).astype(np.float32))
        columns = keep
        for name, spatial in edit.flatten:
            columns = (keep[:, None] * spatial + np.arange(spatial)[None, :]).ravel()
            _shrink(g, name, columns, axis=1)
        for c, flattened in edit.inputs_of:
            _set_weights(g, c, np.take(g.const(c.inputs[1]), columns if flattened else keep, axis=1))
        kept[node.name] = keep
    g.remove_unused()
    return kept


# ---- least-squares re-fit --------------------------------------------------------------------------------------


def _pre_activation(g: Graph, node: Node, x: np.ndarray) -> np.ndarray:
    """The layer's output without its fused activation, as [output positions, output channels]."""
    bare = Node(node.op, node.name, node.inputs, node.outputs, {k: v for k, v in node.attrs.items() if k != "act"})
    op = REGISTRY[node.op]
    return op.output_rows(op.ref(bare, g, [x]).astype(np.float64))


def refit(dense: Graph, g: Graph, layers: list[Node], samples: list[dict[str, np.ndarray]],
          kept: dict[str, np.ndarray] | None = None, ridge: float = 1e-3) -> dict[str, tuple[float, float]]:
    """Re-fit each layer's remaining weights and bias by least squares so that, on the pruned model's own inputs
    to the layer, its pre-activation output matches the dense layer's on the dense model's inputs. Layers are
    done in order, so later layers also absorb the error of earlier ones. `kept`: the output channels a filter-
    pruned layer still has. Returns the relative output error (before, after) per layer."""
    kept = kept or {}
    dense_nodes = {n.name: n for n in dense.nodes}
    errors = {}
    dense_values = [run_graph(dense, s) for s in samples]
    for node in layers:
        op = REGISTRY[node.op]
        if op.groups(node) != 1:
            continue
        dn = dense_nodes[node.name]
        pruned_values = [run_graph(g, s) for s in samples]
        x = np.concatenate([op.input_rows(node, g, v[node.inputs[0]])[0] for v in pruned_values])
        target = np.concatenate([_pre_activation(dense, dn, v[dn.inputs[0]]) for v in dense_values])
        if node.name in kept:
            target = target[:, kept[node.name]]
        before = np.concatenate([_pre_activation(g, node, v[node.inputs[0]]) for v in pruned_values])
        w = g.const(node.inputs[1])
        flat = w.reshape(w.shape[0], -1).astype(np.float64)
        mask = flat != 0
        xa = np.concatenate([x, np.ones((len(x), 1))], axis=1)  # last column: the bias
        gram = xa.T @ xa
        rhs = xa.T @ target
        lam = ridge * np.trace(gram) / len(gram)
        b0 = _bias(g, node)
        start = np.concatenate([flat, np.zeros((w.shape[0], 1)) if b0 is None else b0[:, None]], axis=1)
        new_w, new_b = np.zeros_like(flat), np.zeros(w.shape[0])
        for o in range(w.shape[0]):
            # ridge toward the current weights: directions the data never excites keep their values
            cols = np.append(np.flatnonzero(mask[o]), len(gram) - 1)
            sol = np.linalg.solve(gram[np.ix_(cols, cols)] + lam * np.eye(len(cols)),
                                  rhs[cols, o] + lam * start[o, cols])
            new_w[o, cols[:-1]] = sol[:-1]
            new_b[o] = sol[-1]
        _set_weights(g, node, new_w.reshape(w.shape), new_b)
        after = xa[:, :-1] @ new_w.T + new_b
        scale = float(np.sum(target**2)) or 1.0
        errors[node.name] = (float(np.sum((before - target) ** 2)) / scale,
                             float(np.sum((after - target) ** 2)) / scale)
    return errors


# ---- sensitivity -----------------------------------------------------------------------------------------------


def output_sqnr(dense: Graph, g: Graph, samples: list[dict[str, np.ndarray]],
                want: list[dict[str, np.ndarray]] | None = None) -> float:
    """Output SQNR (dB) of g against dense (want: dense's outputs on the samples, run_samples, when known); the
    samples run as one batch."""
    sig = noise = 0.0
    want = run_samples(dense, samples) if want is None else want
    for a, b in zip(want, run_samples(g, samples)):
        for o in dense.outputs:
            sig += float(np.sum(a[o].astype(np.float64) ** 2))
            noise += float(np.sum((a[o].astype(np.float64) - b[o]) ** 2))
    return math.inf if noise == 0 else 10 * math.log10(max(sig, 1e-30) / noise)


def sensitivity(g: Graph, layers: list[Node], samples: list[dict[str, np.ndarray]],
                levels: tuple[float, ...] = (0.3, 0.5, 0.7, 0.8, 0.9)) -> dict[str, dict[float, float]]:
    """Output SQNR (dB, against the dense model) with one layer magnitude-pruned alone at each level."""
    import copy

    from .console import stage

    table: dict[str, dict[float, float]] = {}
    want = run_samples(g, samples)
    with stage("pruning sensitivity sweep", len(layers) * len(levels), "trials") as progress:
        for node in layers:
            table[node.name] = {}
            for s in levels:
                trial = copy.deepcopy(g)
                target = next(n for n in trial.nodes if n.name == node.name)
                apply_masks(trial, [target], magnitude_masks(trial, [target], {node.name: s}, "layer"))
                table[node.name][s] = output_sqnr(g, trial, samples, want)
                progress.update()
    return table


def allocate(g: Graph, layers: list[Node], table: dict[str, dict[float, float]], target: float) -> dict[str, float]:
    """Per-layer sparsities reaching `target` of all these layers' weights, raising first the layer whose next
    level costs the least SQNR per removed weight."""
    sizes = {n.name: g.const(n.inputs[1]).size for n in layers}
    total = sum(sizes.values())
    chosen = {n: 0.0 for n in sizes}
    while sum(chosen[n] * sizes[n] for n in sizes) < target * total:
        best, best_cost = None, math.inf
        for name, curve in table.items():
            higher = [s for s in sorted(curve) if s > chosen[name]]
            if not higher:
                continue
            s = higher[0]
            before = curve.get(chosen[name], math.inf)
            cost = (min(before, 200.0) - min(curve[s], 200.0)) / ((s - chosen[name]) * sizes[name])
            if cost < best_cost:
                best, best_cost = (name, s), cost
        if best is None:
            break
        chosen[best[0]] = best[1]
    return chosen


# ---- the pass --------------------------------------------------------------------------------------------------


def prune_graph(g: Graph, opts: PruneOptions, samples: list[dict[str, np.ndarray]] | None = None) -> dict:
    """Prune g in place; returns a report (per-layer sparsity, removed filters, re-fit errors)."""
    import copy

    if opts.method not in METHODS:
        raise EdgecError(f"--method {opts.method}: choose one of {', '.join(METHODS)}")
    _check_sparsity(opts.sparsity, "--sparsity")
    for name, s in opts.per_layer.items():
        _check_sparsity(s, f"sparsity of layer '{name}'")
    dense = copy.deepcopy(g)
    layers = _targets(g, opts)
    sparsity = {n.name: opts.per_layer.get(n.name, opts.sparsity) for n in layers}
    report: dict = {"method": opts.method, "layers": {}}
    kept: dict[str, np.ndarray] = {}
    if opts.method == "magnitude":
        apply_masks(g, layers, magnitude_masks(g, layers, sparsity, opts.scope))
    elif opts.method == "n:m":
        apply_masks(g, layers, nm_masks(g, layers, *opts.pattern))
    elif opts.method == "block":
        masks, report["notes"] = block_masks(g, layers, sparsity, opts.scope, opts.pattern, set(opts.per_layer))
        for note in report["notes"]:
            print(f"note: {note}", file=sys.stderr)
        apply_masks(g, layers, masks)
    else:
        kept = prune_filters(g, layers, sparsity, 1 if opts.method == "l1-filter" else 2)
        report["filters_kept"] = {k: int(v.size) for k, v in kept.items()}
    if opts.refit:
        if not samples:
            raise EdgecError("--refit needs calibration data (--calib samples.npz)")
        names = {n.name for n in layers}
        if opts.method.endswith("-filter"):  # the layers after a removed filter absorb it
            names = {n.name for n in weighted_layers(g)}
        report["refit"] = refit(dense, g, [n for n in weighted_layers(g) if n.name in names], samples,
                                kept if opts.method.endswith("-filter") else None)
    report["dense_weights"] = int(sum(dense.const(n.inputs[1]).size for n in weighted_layers(dense)))
    for n in weighted_layers(g):
        w = g.const(n.inputs[1])
        report["layers"][n.name] = {"weights": int(w.size), "nonzero": int(np.count_nonzero(w)),
                                    "sparsity": float(1 - np.count_nonzero(w) / w.size)}
    return report
