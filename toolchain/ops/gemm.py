"""Gemm (fully connected). MatMul with a constant right operand is normalized into it: y = x @ W.T + b, W [N][K]."""

from __future__ import annotations

import numpy as np

from ..calls import Array, Buf, Call, Lowered, Scratch
from ..ir import Graph, Node
from ..sparse import lower_sparse_fc
from ..target import Target
from . import neon
from .base import Op, act_range, apply_act, is_int, nctype, register
from .output_stage import (
    act_struct,
    finish_s8,
    layer_weights,
    mve_matrix_stage,
    output_stage,
    quant_struct,
    quant_struct_s16,
)
from .packing import fc_packed_scratch_bytes, fold_input_zp, pack_matrix_s8, pack_matrix_s16, pack_s4


class Gemm(Op):
    types = ("Gemm",)
    fuses_activation = True

    def check(self, node: Node, g: Graph) -> str | None:
        a = node.attrs
        if g.const(node.inputs[1]) is None:
            return "the right operand must be a constant (weights)"
        if a.get("transA", 0):
            return "transA=1 is not supported"
        if len(node.inputs) > 2 and node.inputs[2] and g.const(node.inputs[2]) is None:
            return "the bias must be a constant"
        return None

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

    def ref(self, node: Node, g: Graph, xs: list[np.ndarray]) -> np.ndarray:
        w, b = self.weights(node, g)
        y = self._rows(xs[0]).astype(np.float64) @ w.T
        if b is not None:
            y = y + b
        return apply_act(y.reshape(g.shape(node.outputs[0])), node)

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
        return np.clip(acc, np.float32(lo), np.float32(hi)).reshape(g.shape(node.outputs[0]))

    def quantize(self, node: Node, g: Graph) -> dict:
        w, b = self.weights(node, g)
        wq, ws = layer_weights(node, g, w, b)
        return {"w": wq, **output_stage(node, g, ws, b, w.shape[0])}

    def ref_s8(self, node: Node, g: Graph, xs: list[np.ndarray]) -> np.ndarray:
        q = node.q
        acc = (self._rows(xs[0]).astype(np.int64) - q["in_zp"]) @ q["w"].astype(np.int64).T
        return finish_s8(acc, q, 1).reshape(g.shape(node.outputs[0]))

    def lower(self, node: Node, g: Graph, target: Target) -> Lowered:
        name, t = node.name, nctype(node)
        wt = t
        if node.dtype == "int16":  # 16x8: int16 activations, int8 weights, int64 bias
            w, bias, stage = node.q["w"], node.q["bias"], quant_struct_s16(name, node.q)
            suffix, bias_t, wt = "s16", "int64_t", "int8_t"
        elif is_int(node):
            w, bias, stage, suffix, bias_t = node.q["w"], node.q["bias"], quant_struct(name, node.q), "s8", "int32_t"
        else:
            w, b = self.weights(node, g)
            w = w.astype(np.float32)
            bias = np.zeros(w.shape[0], np.float32) if b is None else b.astype(np.float32)
            stage, suffix, bias_t = act_struct(name, node), "f32", "float"
        x = g.tensors[node.inputs[0]]
        if x.view is not None:  # a flattened channels-last tensor: reorder the weight columns to match it
            perm = x.storage_perm
            w = w.reshape((w.shape[0],) + tuple(x.view[1:])).transpose((0,) + tuple(perm[1:])).reshape(w.shape[0], -1)
        rows = int(np.prod(x.shape[:-1]))
        if is_int(node) and node.scheme in ("qformat", "int4"):  # portable C on every target
            int4 = node.scheme == "int4"
            warr = Array(f"w_{name}", pack_s4(w), "uint8_t") if int4 else Array(f"w_{name}", w, t)
            return Lowered([Call(f"ec_fully_connected_{'s4' if int4 else 'q7'}",
                                 [rows, w.shape[1], w.shape[0], stage, Buf(node.inputs[0], t), warr,
                                  Array(f"b_{name}", bias, bias_t), Buf(node.outputs[0], t, const=False)],
                                 node=name, macs=self.macs(node, g))])
        note = ""
        if node.dtype != "int16":
            sparse, note = lower_sparse_fc(name, rows, w, stage, Array(f"b_{name}", bias, bias_t),
                                           Buf(node.inputs[0], t), Buf(node.outputs[0], t, const=False), target,
                                           self.macs(node, g))
            if sparse is not None:
                sparse.note = note
                return sparse
        if node.dtype == "int8" and "mve" in target.features:
            stage, folded = mve_matrix_stage(name, node.q, fold_input_zp(bias, w, node.q["in_zp"]))
            call = Call("ec_fully_connected_mve_s8",
                        [rows, w.shape[1], w.shape[0], stage, Buf(node.inputs[0], t), Array(f"w_{name}", w, t),
                         folded, Buf(node.outputs[0], t, const=False)],
                        node=name, macs=self.macs(node, g))
            return Lowered([call])
        if node.dtype == "int8" and "neon" in target.features:
            low = neon.lower_fc(name, rows, w, node.q, stage, Buf(node.inputs[0], t),
                                Buf(node.outputs[0], t, const=False), self.macs(node, g))
            if low is not None:
                low.note = note
                return low
        if node.dtype == "float32" and "neon" in target.features:
            low = neon.lower_fc_f32(name, rows, w, bias, stage, Buf(node.inputs[0], t),
                                    Buf(node.outputs[0], t, const=False), self.macs(node, g))
            low.note = note
            return low
        if node.dtype == "int8" and "dsp" in target.features:
            call = Call("ec_fully_connected_packed_s8",
                        [rows, w.shape[1], w.shape[0], stage, Buf(node.inputs[0], t),
                         Array(f"w_{name}", pack_matrix_s8(w), t), Array(f"b_{name}", bias, bias_t),
                         Buf(node.outputs[0], t, const=False), Scratch(fc_packed_scratch_bytes(rows, w.shape[1]))],
                        node=name, macs=self.macs(node, g))
            return Lowered([call], note=note)
        if node.dtype == "int16" and "dsp" in target.features:
            call = Call("ec_fully_connected_packed_s16",
                        [rows, w.shape[1], w.shape[0], stage, Buf(node.inputs[0], t),
                         Array(f"w_{name}", pack_matrix_s16(w), wt), Array(f"b_{name}", bias, bias_t),
                         Buf(node.outputs[0], t, const=False)],
                        node=name, macs=self.macs(node, g))
            return Lowered([call], note=note)
        call = Call(f"ec_fully_connected_{suffix}",
                    [rows, w.shape[1], w.shape[0], stage, Buf(node.inputs[0], t), Array(f"w_{name}", w, wt),
                     Array(f"b_{name}", bias, bias_t), Buf(node.outputs[0], t, const=False)],
                    node=name, macs=self.macs(node, g))
        return Lowered([call], note=note)

    def macs(self, node: Node, g: Graph) -> int:
        w, _ = self.weights(node, g)
        return int(np.prod(g.shape(node.inputs[0])[:-1])) * w.shape[0] * w.shape[1]


register(Gemm())
