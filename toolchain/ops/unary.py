"""Elementwise activations. In int8 every one is a 256-entry table built at compile time; in int16 a 513-knot table
interpolated linearly (ec_lut_s16); PRelu has its own kernel (int8 and float only)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..calls import Array, Buf, Call, Lowered, Raw, Struct
from ..errors import EdgecError
from ..ir import Graph, Node
from . import tflm
from .base import (
    LowerContext,
    Op,
    c_float,
    check_broadcast,
    check_finite_attrs,
    check_io,
    check_same_shape,
    frac_bits,
    interp_lookup,
    interp_table,
    is_int,
    nctype,
    pick,
    qparams,
    quantize_multiplier,
    register,
    requantize,
)
from .geometry import broadcast_struct
from .params import Params


def clip_bounds(node: Node) -> tuple[float, float]:
    if node.op == "Relu":
        return 0.0, math.inf
    return node.attrs.get("min", -math.inf), node.attrs.get("max", math.inf)


def _hard_sigmoid(x: np.ndarray, alpha: float, beta: float) -> np.ndarray:
    return np.clip(alpha * x + beta, 0.0, 1.0)


def unary_float(node: Node, x: np.ndarray) -> np.ndarray:
    """The activation in float64 (ONNX semantics)."""
    a = node.attrs
    if node.op in ("Relu", "Clip"):
        lo, hi = clip_bounds(node)
        return np.clip(x, lo, hi)
    if node.op == "LeakyRelu":
        return np.where(x >= 0, x, a.get("alpha", 0.01) * x)
    if node.op == "Sigmoid":
        return 1.0 / (1.0 + np.exp(-x))
    if node.op == "Tanh":
        return np.tanh(x)
    if node.op == "HardSigmoid":
        return _hard_sigmoid(x, a.get("alpha", 0.2), a.get("beta", 0.5))
    if node.op == "HardSwish":
        return x * _hard_sigmoid(x, 1.0 / 6.0, 0.5)
    raise AssertionError(node.op)


_C_OP = {"Relu": "EC_RELU", "Clip": "EC_CLIP", "LeakyRelu": "EC_LEAKY_RELU", "Sigmoid": "EC_SIGMOID",
         "Tanh": "EC_TANH", "HardSigmoid": "EC_HARD_SIGMOID", "HardSwish": "EC_HARD_SWISH"}


def lut(f, s_in: float, zp_in: int, s_out: float, zp_out: int) -> np.ndarray:
    """table[q + 128] = quantize(f(dequantize(q)))."""
    q = np.arange(-128, 128, dtype=np.int64)
    y = f((q - zp_in) * s_in)
    return np.clip(np.round(y / s_out) + zp_out, -128, 127).astype(np.int8)


@dataclass(kw_only=True)
class LutParams(Params):
    """An activation's table: int8 256 entries indexed by q + 128 (ec_lut_s8); int16 513 knots (ec_lut_s16)."""

    table: np.ndarray


@dataclass(kw_only=True)
class TflmLutParams(LutParams):
    """The int8 table of TFLM's integer function (ops/tflm.py unary_table); the same kernel reads it."""

    arithmetic: str = tflm.TFLM


@dataclass(kw_only=True)
class PReluParams(Params):
    """int8 PRelu (ec_prelu_s8_params): x >= 0 requantized with pos_*, x < 0 times the int8 slope with neg_*."""

    slope: np.ndarray  # int8, the slope's shape
    slope_scale: float
    in_zp: int
    slope_zp: int
    out_zp: int
    pos_mult: int
    pos_shift: int
    neg_mult: int
    neg_shift: int


class Unary(Op):
    types = tuple(_C_OP)
    layout = "follows_input"
    batched = True
    channelwise = "always"

    def check(self, node: Node, g: Graph) -> str | None:
        """Clip's min and max (attributes, or constant inputs that normalize turns into attributes) are numbers
        with min <= max."""
        reason = check_io(node, g, (1, 3 if node.op == "Clip" else 1))
        if reason:
            return reason
        bounds = []
        for k, name in ((1, "min"), (2, "max")):
            v = g.const(node.inputs[k]) if len(node.inputs) > k and node.inputs[k] else node.attrs.get(name)
            if len(node.inputs) > k and node.inputs[k] and v is None:
                return f"{name} must be a constant"
            if v is not None and (np.size(v) != 1 or np.isnan(v).any()):
                return f"{name} must be one number (it holds {np.size(v)} values)"
            bounds.append(None if v is None else float(np.asarray(v).reshape(())))
        if None not in bounds and bounds[0] > bounds[1]:
            return f"min {bounds[0]} is above max {bounds[1]}"
        return check_finite_attrs(node, "alpha", "beta") or check_same_shape(node, g)

    def ref(self, node: Node, g: Graph, xs: list[np.ndarray]) -> np.ndarray:
        return unary_float(node, xs[0].astype(np.float64)).astype(np.float32)

    def clamp_range(self, node: Node) -> tuple[float, float] | None:
        return clip_bounds(node) if node.op in ("Relu", "Clip") else None

    def export_attrs(self, node: Node) -> dict:
        return pick(node.attrs, {"LeakyRelu": ("alpha",), "HardSigmoid": ("alpha", "beta")}.get(node.op, ()))

    def export_inputs(self, node: Node, g: Graph, w: Any) -> list[str]:
        """Clip's bounds are inputs since opset 11."""
        if node.op != "Clip":
            return []
        out = node.outputs[0]
        return [w.init(f"{out}_min", np.float32(node.attrs.get("min", -np.inf))),
                w.init(f"{out}_max", np.float32(node.attrs.get("max", np.inf)))]

    def min_opset(self, node: Node) -> int:
        return 14 if node.op == "HardSwish" else 0

    def quantize(self, node: Node, g: Graph) -> LutParams:
        if tflm.is_tflm(g) and node.dtype == "int8":  # a TFLite model: the table of TFLM's integer function
            try:
                return TflmLutParams(table=tflm.unary_table(node.op, node.attrs, *qparams(g, node.inputs[0]),
                                                            *qparams(g, node.outputs[0])))
            except ValueError as e:
                raise EdgecError(f"{node.op} (node '{node.name}'): {e}; it cannot be built bit-exact with TFLM") from e
        make = interp_table if node.dtype == "int16" else lut
        return LutParams(table=make(lambda r: unary_float(node, r), *qparams(g, node.inputs[0]),
                                    *qparams(g, node.outputs[0])))

    def ref_s8(self, node: Node, g: Graph, xs: list[np.ndarray]) -> np.ndarray:
        if node.dtype == "int16":
            return interp_lookup(node.q.table, xs[0]).astype(np.int16)
        return node.q.table[xs[0].astype(np.int64) + 128]

    def row_window(self, node: Node, g: Graph) -> tuple[int, int, int] | None:
        return (1, 1, 0) if len(g.shape(node.inputs[0])) == 4 else None

    def lower(self, node: Node, g: Graph, ctx: LowerContext) -> Lowered:
        name, t = node.name, nctype(node)
        size = g.tensors[node.inputs[0]].size
        x, y = Buf(node.inputs[0], t), Buf(node.outputs[0], t, const=False)
        if is_int(node):
            kernel = "ec_lut_s16" if node.dtype == "int16" else "ec_lut_s8"
            return Lowered([Call(kernel, [size, Array(f"lut_{name}", node.q.table, t), x, y], node=name)])
        a = node.attrs
        alpha = a.get("alpha", 0.01 if node.op == "LeakyRelu" else 0.2)
        beta = a.get("beta", 0.5)
        lo, hi = clip_bounds(node) if node.op == "Clip" else (-math.inf, math.inf)
        act = Struct(f"act_{name}", "ec_act_f32", {"act_min": c_float(lo), "act_max": c_float(hi)})
        return Lowered([Call("ec_unary_f32", [size, Raw(_C_OP[node.op]), c_float(alpha), c_float(beta), act, x, y],
                             node=name)])


class PRelu(Op):
    types = ("PRelu",)
    layout = "follows_input"
    channelwise = "consts"

    def check(self, node: Node, g: Graph) -> str | None:
        reason = check_io(node, g, (2, 2))
        if reason:
            return reason
        if g.const(node.inputs[1]) is None:
            return "the slope must be a constant"
        return check_broadcast(node, g, unidirectional=True)

    def unsupported(self, node: Node, g: Graph, scheme: str) -> str | None:
        return "PRelu has no int16 kernel" if scheme in ("int16", "q15") else None

    def ref(self, node: Node, g: Graph, xs: list[np.ndarray]) -> np.ndarray:
        x, slope = xs[0].astype(np.float64), g.const(node.inputs[1]).astype(np.float64)
        return np.where(x >= 0, x, x * slope).astype(np.float32)

    def quantize(self, node: Node, g: Graph) -> PReluParams:
        slope = g.const(node.inputs[1]).astype(np.float64)
        amax = float(np.abs(slope).max())
        s_slope = (float(np.ldexp(1.0, -int(frac_bits(amax)))) if node.scheme == "qformat" else
                   c_float(max(amax, 1e-12) / 127.0))
        s_in, zp_in = qparams(g, node.inputs[0])
        s_out, zp_out = qparams(g, node.outputs[0])
        pos = quantize_multiplier(s_in / s_out)
        neg = quantize_multiplier(s_in * s_slope / s_out)
        return PReluParams(slope=np.clip(np.round(slope / s_slope), -128, 127).astype(np.int8), slope_scale=s_slope,
                           in_zp=zp_in, slope_zp=0, out_zp=zp_out, pos_mult=pos[0], pos_shift=pos[1],
                           neg_mult=neg[0], neg_shift=neg[1])

    def ref_s8(self, node: Node, g: Graph, xs: list[np.ndarray]) -> np.ndarray:
        q = node.q
        v = xs[0].astype(np.int64) - q.in_zp
        pos = requantize(v, q.pos_mult, q.pos_shift)
        neg = requantize(v * (q.slope.astype(np.int64) - q.slope_zp), q.neg_mult, q.neg_shift)
        return np.clip(np.where(v >= 0, pos, neg) + q.out_zp, -128, 127).astype(np.int8)

    def export_const(self, node: Node, g: Graph, k: int) -> tuple[np.ndarray, np.float32, np.int8] | None:
        return node.q.slope, np.float32(node.q.slope_scale), np.int8(0)

    def lower(self, node: Node, g: Graph, ctx: LowerContext) -> Lowered:
        name, t = node.name, nctype(node)
        bp = broadcast_struct(name, g.tensors[node.outputs[0]], [g.tensors[i] for i in node.inputs])
        x, y = Buf(node.inputs[0], t), Buf(node.outputs[0], t, const=False)
        if not is_int(node):
            slope = Array(f"slope_{name}", g.const(node.inputs[1]).astype(np.float32), t)
            return Lowered([Call("ec_prelu_f32", [bp, x, slope, y], node=name)])
        q = node.q
        keys = ("in_zp", "slope_zp", "out_zp", "pos_mult", "pos_shift", "neg_mult", "neg_shift")
        st = Struct(f"q_{name}", "ec_prelu_s8_params", {k: q[k] for k in keys})
        return Lowered([Call("ec_prelu_s8", [bp, st, x, Array(f"slope_{name}", q.slope, t), y], node=name)])


register(Unary())
register(PRelu())
