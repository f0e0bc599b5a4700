"""Add, Sub, Mul with ONNX broadcasting (Div by a constant is normalized into Mul)."""

from __future__ import annotations

import numpy as np

from ..calls import Array, Buf, Call, Lowered, Raw, Struct
from ..ir import Graph, Node
from . import tflm
from .base import (
    MIN_SCALE,
    LowerContext,
    Op,
    act_range,
    apply_act,
    c_float,
    check_act,
    check_broadcast,
    check_io,
    frac_bits,
    is_int,
    nctype,
    out_dtype,
    qparams,
    quant_bounds,
    quantize_multiplier,
    register,
    requantize,
)
from .geometry import broadcast_struct
from .output_stage import act_struct

ADD_LEFT_SHIFT = 20
ADD_LEFT_SHIFT_S16 = 15  # int16 operands: (x << 15) still fits int32
_FLOAT = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply}


def const_quant(data: np.ndarray, dtype: str = "int8", pow2: bool = False) -> tuple[np.ndarray, float, int]:
    """Asymmetric per-tensor int8 for a constant operand; Q-format (pow2): a power-of-two scale, zero point 0;
    int16: symmetric."""
    if pow2:  # q7, or q15 for int16
        wide = dtype == "int16"
        scale = float(np.ldexp(1.0, -int(frac_bits(float(np.abs(data).max()))) - (8 if wide else 0)))
        lo, hi = (-32768, 32767) if wide else (-128, 127)
        return np.clip(np.round(data / scale), lo, hi).astype(np.int16 if wide else np.int8), scale, 0
    if dtype == "int16":
        bound = float(np.abs(data).max())
        scale = max(c_float(bound / 32767.0), MIN_SCALE) if bound > 0 else 1.0
        return np.clip(np.round(data / scale), -32768, 32767).astype(np.int16), scale, 0
    lo, hi = min(0.0, float(data.min())), max(0.0, float(data.max()))
    scale = max(c_float((hi - lo) / 255.0), MIN_SCALE) if hi > lo else 1.0
    zp = int(np.clip(round(-128 - lo / scale), -128, 127))
    return np.clip(np.round(data / scale) + zp, -128, 127).astype(np.int8), scale, zp


class Binary(Op):
    types = ("Add", "Sub", "Mul")
    layout = "follows_input"
    channelwise = "consts"
    fuses_activation = True

    def check(self, node: Node, g: Graph) -> str | None:
        reason = check_io(node, g, (2, 2))
        if reason:
            return reason
        if all(g.const(i) is not None for i in node.inputs):
            return "both operands are constant (should have been folded)"
        return check_broadcast(node, g) or check_act(node)

    def ref(self, node: Node, g: Graph, xs: list[np.ndarray]) -> np.ndarray:
        a, b = (x.astype(np.float64) for x in xs)
        return apply_act(_FLOAT[node.op](a, b), node)

    def _operand_quant(self, node: Node, g: Graph) -> list[tuple[np.ndarray | None, float, int]]:
        out = []
        for name in node.inputs:
            data = g.const(name)
            if data is None:
                out.append((None, *qparams(g, name)))
            else:
                out.append(const_quant(data.astype(np.float64), node.dtype, node.scheme in ("qformat", "q15")))
        return out

    def quantize(self, node: Node, g: Graph) -> dict:
        (ca, sa, za), (cb, sb, zb) = self._operand_quant(node, g)
        so, zo = qparams(g, node.outputs[0])
        act_min, act_max = quant_bounds(*act_range(node), so, zo, node.dtype)
        q = {"consts": [ca, cb], "a_zp": za, "b_zp": zb, "out_zp": zo, "act_min": act_min, "act_max": act_max}
        if tflm.is_tflm(g) and node.dtype == "int8":  # a TFLite model: TFLM's multipliers and bounds (ops/tflm.py)
            q["act_min"], q["act_max"] = tflm.quant_bounds(*act_range(node), so, zo)
            if node.op == "Mul":
                q["out_mult"], q["out_shift"] = tflm.quantize_multiplier(tflm.mul_scale(sa, sb, so))
            else:
                q.update(tflm.add_params(sa, sb, so))
            return tflm.tag(q)
        shift = ADD_LEFT_SHIFT_S16 if node.dtype == "int16" else ADD_LEFT_SHIFT
        if node.op == "Mul":
            q["out_mult"], q["out_shift"] = quantize_multiplier(sa * sb / so)
        else:
            twice_max = 2.0 * max(sa, sb)
            q["left_shift"] = shift
            q["a_mult"], q["a_shift"] = quantize_multiplier(sa / twice_max)
            q["b_mult"], q["b_shift"] = quantize_multiplier(sb / twice_max)
            q["out_mult"], q["out_shift"] = quantize_multiplier(twice_max / ((1 << shift) * so))
        return q

    def ref_s8(self, node: Node, g: Graph, xs: list[np.ndarray]) -> np.ndarray:
        q = node.q
        a, b = (np.asarray(c if c is not None else x, dtype=np.int64) for c, x in zip(q["consts"], xs))
        rq = tflm.requantize if tflm.uses_tflm(q) else requantize
        if node.op == "Mul":
            r = (a - q["a_zp"]) * (b - q["b_zp"])
        else:
            ra = rq((a - q["a_zp"]) << q["left_shift"], q["a_mult"], q["a_shift"])
            rb = rq((b - q["b_zp"]) << q["left_shift"], q["b_mult"], q["b_shift"])
            r = ra + rb if node.op == "Add" else ra - rb
        y = rq(r, q["out_mult"], q["out_shift"]) + q["out_zp"]
        return np.clip(y, q["act_min"], q["act_max"]).astype(out_dtype(node))

    def export_const(self, node: Node, g: Graph, k: int) -> tuple[np.ndarray, np.float32, int] | None:
        qc, s, zp = const_quant(g.const(node.inputs[k]).astype(np.float64), node.dtype,
                                node.scheme in ("qformat", "q15"))
        return qc, np.float32(s), zp

    def lower(self, node: Node, g: Graph, ctx: LowerContext) -> Lowered:
        name, t = node.name, nctype(node)
        ins = [g.tensors[i] for i in node.inputs]
        bp = broadcast_struct(name, g.tensors[node.outputs[0]], ins)
        suffix = "s16" if node.dtype == "int16" else "s8"
        if is_int(node):
            operands = [Array(f"c_{name}_{k}", c, t) if c is not None else Buf(i, t)
                        for k, (c, i) in enumerate(zip(node.q["consts"], node.inputs))]
        else:
            operands = [Array(f"c_{name}_{k}", x.data.astype(np.float32), t) if x.is_const else Buf(x.name, t)
                        for k, x in enumerate(ins)]
        out = Buf(node.outputs[0], t, const=False)
        op = Raw({"Add": "EC_ADD", "Sub": "EC_SUB", "Mul": "EC_MUL"}[node.op])
        if not is_int(node):
            return Lowered([Call("ec_binary_f32", [bp, op, act_struct(name, node), *operands, out], node=name)])
        q = node.q
        if node.op == "Mul":
            fields = {k: q[k] for k in ("a_zp", "b_zp", "out_zp", "out_mult", "out_shift", "act_min", "act_max")}
            return Lowered([Call(f"ec_mul_{suffix}", [bp, Struct(f"q_{name}", "ec_mul_s8_params", fields), *operands,
                                                      out], node=name)])
        keys = ("left_shift", "a_zp", "a_mult", "a_shift", "b_zp", "b_mult", "b_shift", "out_zp", "out_mult",
                "out_shift", "act_min", "act_max")
        st = Struct(f"q_{name}", "ec_add_s8_params", {k: q[k] for k in keys})
        return Lowered([Call(f"ec_add_{suffix}", [bp, op, st, *operands, out], node=name)])


register(Binary())
