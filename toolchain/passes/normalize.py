"""Rewrite ONNX ops into the smaller set the op modules implement. Semantics are unchanged."""

from __future__ import annotations

import math

import numpy as np

from ..errors import EdgecError
from ..ir import Graph, Node
from ..ops.base import check_axis, check_broadcast, check_finite_attrs, check_io, check_same_shape
from ..ops.reduce import reduce_axes

# ONNX ops rewritten into others here, with the reason given when a node keeps a form that cannot be rewritten.
NORMALIZED = {
    "Identity": "", "Dropout": "", "Flatten": "", "Squeeze": "", "Unsqueeze": "",
    "MatMul": "the right operand must be a constant 2-D matrix (weights)",
    "Div": "only division by a constant is supported",
    "BatchNormalization": "scale, bias, mean and variance must be constants",
    "Cast": "only a Cast to float of a float tensor is supported",
    "Sum": "", "Mean": "",
}
FLOAT = 1  # onnx.TensorProto.FLOAT


def check_nodes(g: Graph) -> None:
    """Every node's inputs, shapes and attributes against the ONNX specification (the ops' check methods, and
    _check_normalized for the ops rewritten here), before any pass reads them: an inconsistent model must not reach
    numpy or C. Raises EdgecError naming every bad node."""
    from ..ops import REGISTRY

    problems = []
    for n in g.nodes:
        reason = _check_normalized(n, g) if n.op in NORMALIZED else REGISTRY[n.op].check(n, g)
        if reason:
            problems.append(f"{n.op} (node '{n.name}'): {reason}")
    if problems:
        raise EdgecError(f"the model cannot be compiled: {'; '.join(problems)}")


def _check_normalized(node: Node, g: Graph) -> str | None:
    """The checks of the ops normalize rewrites; forms it leaves alone are reported later (NORMALIZED)."""
    from ..ops import REGISTRY

    op, a = node.op, node.attrs
    outs = {"Dropout": (1, 2), "BatchNormalization": (1, 5)}.get(op, (1, 1))
    ins = {"Identity": (1, 1), "Dropout": (1, 3), "Flatten": (1, 1), "BatchNormalization": (5, 5), "Cast": (1, 1),
           **dict.fromkeys(("Sum", "Mean"), (1, 2**31))}.get(
        op, (1, 2) if op in ("Squeeze", "Unsqueeze") else (2, 2))
    reason = check_io(node, g, ins, outs)
    if reason:
        return reason
    consts = [g.const(i) for i in node.inputs[1:] if i]
    if op in ("Identity", "Dropout"):
        training = _const_input(g, node, 2) if op == "Dropout" else None
        if training is not None and bool(np.asarray(training).any()):
            return "training_mode is not supported"
        return check_same_shape(node, g)
    if op in ("Flatten", "Squeeze", "Unsqueeze"):
        if any(c is None for c in consts):
            return "axes must be constant"
        if op == "Flatten":
            reason = check_axis(a.get("axis", 1), len(g.shape(node.inputs[0])), end=True)
        return reason or REGISTRY["Reshape"].check(node, g)
    if op == "MatMul":
        x, w = g.shape(node.inputs[0]), g.shape(node.inputs[1])
        if g.const(node.inputs[1]) is None or len(w) != 2:
            return None  # reported as unsupported
        if not x or x[-1] != w[0]:
            return f"operands of shapes {list(x)} and {list(w)} do not multiply"
        want = tuple(x[:-1]) + (w[1],)
        y = g.shape(node.outputs[0])
        return None if tuple(y) == want else f"output shape {list(y)} differs from {list(want)}"
    if op == "Div":
        d = g.const(node.inputs[1])
        if d is not None and not np.all(d):
            return "divides by a constant that holds 0"
        return check_broadcast(node, g)
    if op in ("Sum", "Mean"):
        return check_broadcast(node, g)
    if op == "BatchNormalization":
        x = g.shape(node.inputs[0])
        extra = [o for o in node.outputs[1:] if o and (o in g.outputs or g.consumers(o))]
        if a.get("training_mode", 0) or extra:
            return "training mode (running statistics as outputs) is not supported"
        reason = check_finite_attrs(node, "epsilon", "momentum")
        if reason or len(x) < 2:
            return reason or f"input of rank {len(x)} has no channel axis"
        if any(c is None for c in consts):
            return None  # reported as unsupported
        if any(c.shape != (x[1],) for c in consts):
            return (f"scale, bias, mean and variance of shapes {[list(c.shape) for c in consts]} for {x[1]} "
                    "channels (want one value per channel)")
        if np.any(consts[3].astype(np.float64) + a.get("epsilon", 1e-5) <= 0):
            return "variance + epsilon is not positive for every channel"
        return check_same_shape(node, g)
    return None


def _bypass(g: Graph, node: Node) -> None:
    """Remove a node whose output equals its first input."""
    src, dst = node.inputs[0], node.outputs[0]
    g.nodes.remove(node)
    if dst in g.outputs:
        if src in g.inputs or src in g.outputs:
            g.nodes.append(Node("Reshape", node.name, [src], [dst]))  # keep a copy to a distinct output
            return
        producer = g.producer(src)
        producer.outputs = [dst if o == src else o for o in producer.outputs]
        for n in g.nodes:
            n.inputs = [dst if i == src else i for i in n.inputs]
    else:
        for n in g.nodes:
            n.inputs = [src if i == dst else i for i in n.inputs]


def _const_input(g: Graph, node: Node, k: int) -> np.ndarray | None:
    return g.const(node.inputs[k]) if len(node.inputs) > k and node.inputs[k] else None


def normalize(g: Graph) -> None:
    check_nodes(g)
    for node in list(g.nodes):
        op, a = node.op, node.attrs
        if op in ("Identity", "Dropout"):
            if op == "Dropout" and len(node.outputs) > 1 and node.outputs[1]:
                node.outputs = node.outputs[:1]
            _bypass(g, node)
        elif op in ("Flatten", "Squeeze", "Unsqueeze", "Reshape"):
            node.op, node.inputs, node.attrs = "Reshape", node.inputs[:1], {}
        elif op == "MatMul" and g.const(node.inputs[1]) is not None and len(g.shape(node.inputs[1])) == 2:
            node.op, node.attrs = "Gemm", {"transB": 0}
        elif op == "Clip":
            lo, hi = _const_input(g, node, 1), _const_input(g, node, 2)
            a.setdefault("min", float(lo) if lo is not None else -math.inf)
            a.setdefault("max", float(hi) if hi is not None else math.inf)
            node.inputs = node.inputs[:1]
        elif op == "Div" and g.const(node.inputs[1]) is not None:
            recip = (1.0 / g.const(node.inputs[1]).astype(np.float64)).astype(np.float32)
            node.op, node.inputs = "Mul", [node.inputs[0], g.add_const(f"{node.name}_recip", recip)]
        elif op == "ReduceMean":
            _reduce_mean(g, node)
        elif op == "Cast" and a.get("to") == FLOAT and node.inputs[0] in g.tensors:
            _bypass(g, node)
        elif op in ("Sum", "Mean", "Max", "Min"):
            _variadic(g, node)
        if node.op == "Gemm":
            _canonical_gemm(g, node)


def _reduce_mean(g: Graph, node: Node) -> None:
    """ReduceMean over all spatial axes of an N-C-spatial tensor is GlobalAveragePool (plus a Reshape); over no
    axis, the identity; other axes stay ReduceMean (toolchain/ops/reduce.py)."""
    rank = len(g.shape(node.inputs[0]))
    axes = reduce_axes(g, node)
    if axes == []:
        _bypass(g, node)
        return
    if axes is None or rank not in (3, 4) or axes != list(range(2, rank)):
        return
    keep = node.attrs.get("keepdims", 1)
    out = node.outputs[0]
    node.op, node.inputs, node.attrs = "GlobalAveragePool", node.inputs[:1], {}
    if not keep:
        mid = g.fresh_name(f"{out}_keepdims")
        g.tensors[mid] = type(g.tensors[out])(mid, g.shape(node.inputs[0])[:2] + (1,) * (rank - 2))
        node.outputs = [mid]
        g.nodes.insert(g.nodes.index(node) + 1, Node("Reshape", f"{node.name}_squeeze", [mid], [out]))


def _variadic(g: Graph, node: Node) -> None:
    """Sum, Mean, Max, Min of n inputs (broadcasting): a chain of n - 1 Add, Max or Min nodes, Mean then scaled
    by 1/n; one input: the identity."""
    ins = [i for i in node.inputs if i]
    if len(ins) == 1:
        node.inputs = ins
        _bypass(g, node)
        return
    binary = {"Sum": "Add", "Mean": "Add", "Max": "Max", "Min": "Min"}[node.op]
    out, at = node.outputs[0], g.nodes.index(node)
    chain, acc = [], ins[0]
    for k, name in enumerate(ins[1:], start=1):
        last = k == len(ins) - 1 and node.op != "Mean"
        dst = out if last else g.fresh_name(f"{out}_{binary.lower()}{k}")
        if not last:
            shape = tuple(np.broadcast_shapes(g.shape(acc), g.shape(name)))
            g.tensors[dst] = type(g.tensors[out])(dst, shape)
        chain.append(Node(binary, f"{node.name}_{k}" if k > 1 else node.name, [acc, name], [dst]))
        acc = dst
    if node.op == "Mean":
        scale = g.add_const(f"{node.name}_1_over_n", np.array(1.0 / len(ins), np.float32))
        chain.append(Node("Mul", f"{node.name}_mean", [acc, scale], [out]))
    g.nodes[at:at + 1] = chain


def _canonical_gemm(g: Graph, node: Node) -> None:
    """Gemm with constant W [N][K] (transB=1), alpha and beta applied, bias [N] present."""
    from ..ops.gemm import Gemm

    if g.const(node.inputs[1]) is None or node.attrs.get("transA", 0):
        return
    if len(node.inputs) > 2 and node.inputs[2] and g.const(node.inputs[2]) is None:
        return
    w, b = Gemm().weights(node, g)
    if b is None:
        b = np.zeros(w.shape[0])
    source = g.tensors[node.inputs[1]]
    bias_source = g.tensors[node.inputs[2]] if len(node.inputs) > 2 and node.inputs[2] else None
    node.inputs = [node.inputs[0], g.add_const(f"{node.name}_W", w.astype(np.float32)),
                   g.add_const(f"{node.name}_B", np.ascontiguousarray(b, dtype=np.float32))]
    if bias_source is not None and bias_source.int_values is not None and node.attrs.get("beta", 1.0) == 1.0:
        g.tensors[node.inputs[2]].int_values = bias_source.int_values  # an imported int32 bias, unchanged
    if source.weight_scales is not None:  # imported int8 scales: per output channel of the [N][K] weights
        scales, axis = source.weight_scales
        out_axis = 0 if node.attrs.get("transB", 0) else 1
        if scales.size == 1 or axis % 2 == out_axis:
            alpha = abs(node.attrs.get("alpha", 1.0))
            g.tensors[node.inputs[1]].weight_scales = (scales * alpha, 0)
    node.attrs = {"transB": 1, **({"act": node.attrs["act"]} if "act" in node.attrs else {})}
