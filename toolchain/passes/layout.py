"""Choose each activation's byte order, by each op's Op.layout. Convolution and pooling run channels-last (NHWC);
elementwise ops follow their input; model inputs and outputs keep the ONNX order. A LayoutCast node (a real copy) is
inserted only where the order must change and the bytes differ; the values (logical shapes) never change, so
references stay ONNX's."""

from __future__ import annotations

from ..ir import Graph, Node, Tensor
from ..ops import REGISTRY
from ..ops.geometry import channels_last


def same_bytes(t: Tensor, view: tuple[int, ...] | None, perm: tuple[int, ...] | None) -> bool:
    """Whether t stored as (view, perm) has the same byte order as t stored plainly."""
    v = view if view is not None else t.shape
    p = perm if perm is not None else tuple(range(len(v)))
    moved = [v[i] for i in p if v[i] != 1]
    kept = [s for s in v if s != 1]
    order = [i for i in p if v[i] != 1]
    return moved == kept and order == sorted(order)


def _is_plain(t: Tensor) -> bool:
    return t.perm is None and t.view is None


class _Layout:
    def __init__(self, g: Graph) -> None:
        self.g = g
        self.new_nodes: list[Node] = []

    def cast(self, name: str, view, perm, at: str) -> str:
        """A tensor holding `name`'s values stored as (view, perm); no copy when the bytes already match."""
        t = self.g.tensors[name]
        if (t.view, t.perm) == (view, perm):
            return name
        new = self.g.fresh_name(f"{name}_{'nhwc' if perm else 'nchw'}")
        self.g.tensors[new] = Tensor(new, t.shape, view=view, perm=perm)
        src_plain = same_bytes(t, t.view, t.perm)
        dst_plain = same_bytes(t, view, perm)
        op = "Reshape" if src_plain and dst_plain else "LayoutCast"
        self.new_nodes.append(Node(op, f"{at}_{op.lower()}_{name}", [name], [new]))
        return new

    def run(self) -> None:
        g = self.g
        for node in list(g.nodes):
            self.new_nodes = []
            self.visit(node)
            self.new_nodes.append(node)
            self.emit(node)
        for k, out in enumerate(g.outputs):
            t = g.tensors[out]
            if not _is_plain(t):
                inner = g.fresh_name(f"{out}_internal")
                g.rename_tensor(out, inner)
                g.outputs[k] = inner
                self.new_nodes = []
                plain = self.cast(inner, None, None, out)
                g.nodes.extend(self.new_nodes)
                g.rename_tensor(plain, out)
                g.outputs[k] = out

    def emit(self, node: Node) -> None:
        i = self.g.nodes.index(node)
        self.g.nodes[i:i + 1] = self.new_nodes

    def visit(self, node: Node) -> None:
        g = self.g
        acts = [i for i in node.inputs if i and g.const(i) is None]
        out = g.tensors[node.outputs[0]]
        role = REGISTRY[node.op].layout_role(node, g)  # Op.layout
        if role == "channels_last":
            perm = channels_last(len(out.shape))
            node.inputs[0] = self.cast(node.inputs[0], None, perm, node.name)
            out.perm = perm
        elif role == "follows_input":
            first = g.tensors[acts[0]]
            view, perm = first.view, first.perm
            if view is not None or len(first.shape) != len(out.shape):
                view, perm = None, None
            for k, name in enumerate(node.inputs):
                if name in acts and len(g.shape(name)) == len(out.shape):
                    node.inputs[k] = self.cast(name, view, perm, node.name)
                elif name in acts:
                    node.inputs[k] = self.cast(name, None, None, node.name)
            out.view, out.perm = view, perm
        elif role == "flatten":
            self.reshape(node)
        elif role == "to_channels_first" and _is_plain(g.tensors[acts[0]]):
            # NHWC -> NCHW of a plain tensor (a channels-last model input, e.g. a .tflite's): stored channels-last,
            # its bytes are the input's, so the transpose is no copy
            out.perm = channels_last(4)
        elif role == "rows":
            x = g.tensors[node.inputs[0]]
            if x.view is None and x.perm is not None:
                node.inputs[0] = self.cast(node.inputs[0], None, None, node.name)
        else:  # Transpose, LayoutCast and anything else read any permuted storage and write plain order
            for k, name in enumerate(node.inputs):
                if name in acts and g.tensors[name].view is not None:
                    node.inputs[k] = self.cast(name, None, None, node.name)

    def reshape(self, node: Node) -> None:
        g = self.g
        x, out = g.tensors[node.inputs[0]], g.tensors[node.outputs[0]]
        if _is_plain(x) or same_bytes(x, x.view, x.perm):
            return
        # A channels-last tensor flattened for Gemm layers only: keep its bytes, Gemm reorders its weights.
        users = g.consumers(out.name)
        if (x.view is None and len(out.shape) == 2 and out.shape[0] == x.shape[0] and users
                and all(REGISTRY[u.op].layout == "rows" and u.inputs[0] == out.name for u in users)
                and out.name not in g.outputs):
            out.view, out.perm = x.shape, x.perm
            return
        node.inputs[0] = self.cast(node.inputs[0], None, None, node.name)


def assign_layout(g: Graph) -> None:
    _Layout(g).run()
