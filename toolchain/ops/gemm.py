"""Gemm (fully connected). MatMul with a constant right operand is normalized into it: y = x @ W.T + b, W [N][K]."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..calls import Arg, Array, Buf, Call, Lowered, Scratch, Struct
from ..ir import Graph, Node
from ..sparse import lower_sparse_fc
from . import neon
from .base import (
    LowerContext,
    Op,
    act_range,
    apply_act,
    check_act,
    check_finite_attrs,
    check_io,
    is_int,
    nctype,
    pick,
    register,
)
from .output_stage import (
    Stage,
    act_struct,
    finish_s8,
    layer_weights,
    mve_matrix_stage,
    output_stage,
    quant_struct,
    quant_struct_s16,
)
from .packing import (
    ceil8,
    fast_output_ok,
    fc_block4_scratch_bytes,
    fc_packed_scratch_bytes,
    fold_input_zp,
    pack_fc_block4_s8,
    pack_matrix_s8,
    pack_matrix_s16,
    pack_s4,
)


@dataclass
class GemmFacts:
    """The layer's weights [N][K] (columns in the input's storage order), bias and output stage, shared by its kernel
    variants."""

    w: np.ndarray
    bias: np.ndarray
    stage: Struct
    suffix: str  # of the portable kernel: s8, s16, f32
    bias_t: str
    wt: str  # C type of the weights
    rows: int = 0  # input rows


class Gemm(Op):
    types = ("Gemm",)
    fuses_activation = True
    layout = "rows"
    weighted = True
    batched = True
    channel_axis = -1

    def check(self, node: Node, g: Graph) -> str | None:
        """ONNX Gemm (A [M][K], B [K][N] or [N][K] with transB) and the Gemm a MatMul with a constant 2-D right
        operand becomes (normalize: A of any rank, its last axis K)."""
        a = node.attrs
        reason = check_io(node, g, (2, 3)) or check_finite_attrs(node, "alpha", "beta")
        if reason:
            return reason
        w = g.const(node.inputs[1])
        if w is None:
            return "the right operand must be a constant (weights)"
        for k in ("transA", "transB"):
            if a.get(k, 0) not in (0, 1):
                return f"{k}={a[k]!r} must be 0 or 1"
        if a.get("transA", 0):
            return "transA=1 is not supported"
        if len(node.inputs) > 2 and node.inputs[2] and g.const(node.inputs[2]) is None:
            return "the bias must be a constant"
        x = g.shape(node.inputs[0])
        if w.ndim != 2 or not x:
            return f"operands of shapes {list(x)} and {list(w.shape)} (want a matrix of weights)"
        n, k = w.shape if a.get("transB", 0) else w.shape[::-1]
        if x[-1] != k:
            return (f"the input {list(x)} has {x[-1]} columns, the weights {list(w.shape)} (transB="
                    f"{a.get('transB', 0)}) take {k}")
        if len(node.inputs) > 2 and node.inputs[2]:
            b = g.const(node.inputs[2])
            if b.ndim > 2 or b.shape[-1:] not in ((), (1,), (n,)) or (b.ndim == 2 and b.shape[0] != 1):
                return f"bias of shape {list(b.shape)} for {n} outputs (want [{n}], [1, {n}] or one value)"
        y = g.shape(node.outputs[0])
        if tuple(y) != tuple(x[:-1]) + (n,):
            return f"output shape {list(y)} differs from {list(x[:-1]) + [n]} (input {list(x)}, {n} outputs)"
        return check_act(node)

    def weights(self, node: Node, g: Graph) -> tuple[np.ndarray, np.ndarray | None]:
        """W [N][K] and bias [N] with alpha, beta and transB applied."""
        a = node.attrs
        w = g.const(node.inputs[1]).astype(np.float64)
        w = w if a.get("transB", 0) else w.T
        w = w * a.get("alpha", 1.0)
        b = None
        if len(node.inputs) > 2 and node.inputs[2]:
            b = np.broadcast_to(g.const(node.inputs[2]).astype(np.float64) * a.get("beta", 1.0), (w.shape[0],))
        return w, b

    def _rows(self, x: np.ndarray) -> np.ndarray:
        return x.reshape(-1, x.shape[-1])

    def _out_shape(self, node: Node, g: Graph) -> tuple[int, ...]:
        """The output's shape for any number of samples along axis 0 (the `batched` trait)."""
        shape = tuple(g.shape(node.outputs[0]))
        return (-1,) + shape[1:] if len(shape) > 1 else shape

    def ref(self, node: Node, g: Graph, xs: list[np.ndarray]) -> np.ndarray:
        return apply_act(self.ref_with_weights(node, g, *self.weights(node, g), xs[0]), node)

    def ref_with_weights(self, node: Node, g: Graph, w: np.ndarray, b: np.ndarray | None,
                         x: np.ndarray) -> np.ndarray:
        y = self._rows(x).astype(np.float64) @ w.T
        return (y if b is None else y + b).reshape(self._out_shape(node, g))

    def weight_matrix(self, node: Node, g: Graph) -> np.ndarray:
        return self.weights(node, g)[0]

    def input_rows(self, node: Node, g: Graph, x: np.ndarray) -> list[np.ndarray]:
        return [self._rows(x).astype(np.float64)]

    def bias_vector(self, node: Node, g: Graph) -> np.ndarray | None:
        return self.weights(node, g)[1]

    def output_rows(self, y: np.ndarray) -> np.ndarray:
        return self._rows(y)

    def reads_channels(self, node: Node, g: Graph, tensor: str, channels: int) -> str | None:
        return "inputs" if node.inputs[0] == tensor and len(g.shape(tensor)) == 2 else None

    def set_weights(self, node: Node, g: Graph, w: np.ndarray, b: np.ndarray | None) -> None:
        """Written as weights() gives them: [N][K] (transB 1), alpha and beta 1."""
        node.attrs.update(transB=1, alpha=1.0, beta=1.0)
        node.inputs[1] = g.add_const(f"{node.name}_W", w.astype(np.float32))
        if b is not None:
            node.inputs[2] = g.add_const(f"{node.name}_B", b.astype(np.float32))

    def export_attrs(self, node: Node) -> dict:
        return pick(node.attrs, ("transB",))

    def export_node(self, node: Node, g: Graph, w: Any) -> bool:
        """ONNX Gemm takes matrices only: another rank goes through export.py's Reshape-Gemm-Reshape."""
        if len(g.shape(node.inputs[0])) == 2:
            return False
        w.gemm_rows(node)
        return True

    def ref_f32(self, node: Node, g: Graph, xs: list[np.ndarray]) -> np.ndarray:
        """float32 in ec_fully_connected_f32's order: the bias, then one rounded product and one rounded sum per
        input column, the columns in the input's storage order (as lowered)."""
        w, b = self.weights(node, g)
        w = w.astype(np.float32)
        xt = g.tensors[node.inputs[0]]
        x = self._rows(xs[0]).astype(np.float32)
        if xt.view is not None:  # a flattened channels-last tensor: columns in storage order, as in lower()
            perm = (0,) + tuple(xt.storage_perm[1:])
            w = w.reshape((w.shape[0],) + tuple(xt.view[1:])).transpose(perm).reshape(w.shape[0], -1)
            x = x.reshape((x.shape[0],) + tuple(xt.view[1:])).transpose(perm).reshape(x.shape[0], -1)
        acc = np.empty((x.shape[0], w.shape[0]), np.float32)
        acc[...] = 0.0 if b is None else b.astype(np.float32)
        for d in range(x.shape[1]):
            acc += x[:, d:d + 1] * w[None, :, d]
        lo, hi = act_range(node)
        return np.clip(acc, np.float32(lo), np.float32(hi)).reshape(self._out_shape(node, g))

    def quantize(self, node: Node, g: Graph) -> Stage:
        w, b = self.weights(node, g)
        wq, ws = layer_weights(node, g, w, b)
        return output_stage(node, g, wq, ws, b, w.shape[0])

    def ref_s8(self, node: Node, g: Graph, xs: list[np.ndarray]) -> np.ndarray:
        q = node.q
        acc = (self._rows(xs[0]).astype(np.int64) - q["in_zp"]) @ q["w"].astype(np.int64).T
        return finish_s8(acc, q, 1).reshape(self._out_shape(node, g))

    def facts(self, node: Node, g: Graph, ctx: LowerContext) -> GemmFacts:
        name, t = node.name, nctype(node)
        if node.dtype == "int16":  # 16x8: int16 activations, int8 weights, int64 bias
            w, bias, stage = node.q["w"], node.q["bias"], quant_struct_s16(name, node.q)
            f = GemmFacts(w, bias, stage, "s16", "int64_t", "int8_t")
        elif is_int(node):
            f = GemmFacts(node.q["w"], node.q["bias"], quant_struct(name, node.q), "s8", "int32_t", t)
        else:
            w, b = self.weights(node, g)
            w = w.astype(np.float32)
            bias = np.zeros(w.shape[0], np.float32) if b is None else b.astype(np.float32)
            f = GemmFacts(w, bias, act_struct(name, node), "f32", "float", t)
        x = g.tensors[node.inputs[0]]
        if x.view is not None:  # a flattened channels-last tensor: reorder the weight columns to match it
            perm = x.storage_perm
            f.w = f.w.reshape((f.w.shape[0],) + tuple(x.view[1:])).transpose((0,) + tuple(perm[1:])).reshape(
                f.w.shape[0], -1)
        f.rows = int(np.prod(x.shape[:-1]))
        return f

    def _call(self, kernel: str, node: Node, g: Graph, f: GemmFacts, w: Array, bias: Array, *tail: Arg,
              stage: Struct | None = None) -> Lowered:
        """The fully connected kernel call: rows, depth, outputs, stage, x, w, bias, y, (tail)."""
        t = nctype(node)
        return Lowered([Call(kernel, [f.rows, f.w.shape[1], f.w.shape[0], stage or f.stage,
                                      Buf(node.inputs[0], t), w, bias, Buf(node.outputs[0], t, const=False), *tail],
                             node=node.name, macs=self.macs(node, g))])

    def lower_lowbit(self, node: Node, g: Graph, ctx: LowerContext, f: GemmFacts) -> Lowered | None:
        """Q-format or int4 weights: portable C on every target."""
        if not is_int(node) or node.scheme not in ("qformat", "int4"):
            return None
        int4, name = node.scheme == "int4", node.name
        warr = Array(f"w_{name}", pack_s4(f.w), "uint8_t") if int4 else Array(f"w_{name}", f.w, f.wt)
        return self._call(f"ec_fully_connected_{'s4' if int4 else 'q7'}", node, g, f, warr,
                          Array(f"b_{name}", f.bias, f.bias_t))

    def lower_sparse(self, node: Node, g: Graph, ctx: LowerContext, f: GemmFacts) -> Lowered | None:
        if node.dtype == "int16":
            return None
        t = nctype(node)
        low, ctx.note = lower_sparse_fc(node.name, f.rows, f.w, f.stage, Array(f"b_{node.name}", f.bias, f.bias_t),
                                        Buf(node.inputs[0], t), Buf(node.outputs[0], t, const=False), ctx.target,
                                        self.macs(node, g), ctx.sparse_kernels, node.q if is_int(node) else None)
        return low

    def lower_mve(self, node: Node, g: Graph, ctx: LowerContext, f: GemmFacts) -> Lowered | None:
        if node.dtype != "int8" or "mve" not in ctx.target.features:
            return None
        stage, folded = mve_matrix_stage(node.name, node.q, fold_input_zp(f.bias, f.w, node.q["in_zp"]))
        return self._call("ec_fully_connected_mve_s8", node, g, f, Array(f"w_{node.name}", f.w, f.wt), folded,
                          stage=stage)

    def lower_neon(self, node: Node, g: Graph, ctx: LowerContext, f: GemmFacts) -> Lowered | None:
        if "neon" not in ctx.target.features or node.dtype not in ("int8", "float32"):
            return None
        t = nctype(node)
        x, y = Buf(node.inputs[0], t), Buf(node.outputs[0], t, const=False)
        if node.dtype == "int8":
            return neon.lower_fc(node.name, f.rows, f.w, node.q, f.stage, x, y, self.macs(node, g))
        return neon.lower_fc_f32(node.name, f.rows, f.w, f.bias, f.stage, x, y, self.macs(node, g))

    def lower_dsp_block4(self, node: Node, g: Graph, ctx: LowerContext, f: GemmFacts) -> Lowered | None:
        """One input row (DSP extension): ec_fully_connected_block4_s8, 4 output rows per inner loop sharing each
        input load. Several rows go to lower_dsp's kernel, which shares each weight's SXTB16 between two rows."""
        if "dsp" not in ctx.target.features or node.dtype != "int8" or f.rows != 1:
            return None
        name, q = node.name, node.q
        stage = quant_struct(name, q)
        fast = fast_output_ok(q.bias, q.shift, bool(stage.fields["per_channel"]), ceil8(f.w.shape[1]))
        return self._call("ec_fully_connected_block4_s8", node, g, f, Array(f"w_{name}", pack_fc_block4_s8(f.w), f.wt),
                          Array(f"b_{name}", q.bias, f.bias_t), Scratch(fc_block4_scratch_bytes(f.w.shape[1])),
                          int(fast), stage=stage)

    def lower_dsp(self, node: Node, g: Graph, ctx: LowerContext, f: GemmFacts) -> Lowered | None:
        if "dsp" not in ctx.target.features or node.dtype not in ("int8", "int16"):
            return None
        bias = Array(f"b_{node.name}", f.bias, f.bias_t)
        if node.dtype == "int8":
            return self._call("ec_fully_connected_packed_s8", node, g, f,
                              Array(f"w_{node.name}", pack_matrix_s8(f.w), f.wt), bias,
                              Scratch(fc_packed_scratch_bytes(f.rows, f.w.shape[1])))
        return self._call("ec_fully_connected_packed_s16", node, g, f,
                          Array(f"w_{node.name}", pack_matrix_s16(f.w), f.wt), bias)

    def lower_portable(self, node: Node, g: Graph, ctx: LowerContext, f: GemmFacts) -> Lowered:
        return self._call(f"ec_fully_connected_{f.suffix}", node, g, f, Array(f"w_{node.name}", f.w, f.wt),
                          Array(f"b_{node.name}", f.bias, f.bias_t))

    def macs(self, node: Node, g: Graph) -> int:
        w, _ = self.weights(node, g)
        return int(np.prod(g.shape(node.inputs[0])[:-1])) * w.shape[0] * w.shape[1]

    variants = (lower_lowbit, lower_sparse, lower_mve, lower_neon, lower_dsp_block4, lower_dsp, lower_portable)


register(Gemm())
