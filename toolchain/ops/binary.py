"""Add, Sub, Mul with ONNX broadcasting (Div by a constant is normalized into Mul)."""

from __future__ import annotations

from dataclasses import dataclass

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
from .params import Params

ADD_LEFT_SHIFT = 20
ADD_LEFT_SHIFT_S16 = 15  # int16 operands: (x << 15) still fits int32
_FLOAT = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply}
LUT_SHIFT = 20  # the right shift of ec_add_lut_s8 / ec_add_lut_mve_s8 (an immediate in their loops)
AFFINE_SHIFT = 21  # the right shift of ec_add_affine_neon_s8 (16 in VADDHN, 5 in VQSHRN: immediates)
AFFINE_SEARCH = 64  # multipliers fit_affine tries on either side of each operand's slope times 2^AFFINE_SHIFT


@dataclass(kw_only=True)
class BinaryParams(Params):
    """int8/int16 Add, Sub (ec_add_s8_params) and Mul (ec_mul_s8_params). Add/Sub: each operand, less its zero
    point and shifted left by left_shift, is requantized with its own multiplier (a_*, b_*), the two are added and
    the sum requantized with out_*; Mul: the product of the operands less their zero points requantized with out_*.
    consts: a constant operand's integers (None for a tensor operand)."""

    consts: list[np.ndarray | None]
    a_zp: int
    b_zp: int
    out_zp: int
    act_min: int
    act_max: int
    out_mult: int = 0
    out_shift: int = 0
    left_shift: int = 0
    a_mult: int = 0
    a_shift: int = 0
    b_mult: int = 0
    b_shift: int = 0


@dataclass(kw_only=True)
class TflmBinaryParams(BinaryParams):
    """TFLM's ADD, SUB and MUL (ops/tflm.py): the same fields with TFLM's multipliers and its double rounding."""

    arithmetic: str = tflm.TFLM


def int_arith(op: str, q: BinaryParams, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The integer Add, Sub or Mul of quantized operands a, b (int64, broadcasting) with the node's parameters q
    (edgec's arithmetic, or TFLM's for a tagged q), clamped to the activation bounds; int64."""
    rq = tflm.requantize if tflm.uses_tflm(q) else requantize
    if op == "Mul":
        r = (a - q.a_zp) * (b - q.b_zp)
    else:
        ra = rq((a - q.a_zp) << q.left_shift, q.a_mult, q.a_shift)
        rb = rq((b - q.b_zp) << q.left_shift, q.b_mult, q.b_shift)
        r = ra + rb if op == "Add" else ra - rb
    y = rq(r, q.out_mult, q.out_shift) + q.out_zp
    return np.clip(y, q.act_min, q.act_max)


@dataclass(frozen=True)
class LutAdd:
    """An int8 Add/Sub as ec_add_lut_s8 computes it: out = clamp((x * mult + table[(uint8_t)y]) >> LUT_SHIFT,
    act_min, act_max) in int32, x and y the operands (swap: x is the second one); for a Mul (ec_mul_lut_s8) the
    multiplier is a table too, mults[(uint8_t)y]. Equal to the node's integer arithmetic for every one of the 65,536
    operand pairs (fit_lut checks them all)."""

    swap: bool
    mult: int
    table: np.ndarray  # int32 [256], entry u for y = (int8_t)u
    act_min: int
    act_max: int
    mults: np.ndarray | None = None  # Mul: int32 [256], indexed as table


def _lut_slopes(op: str, q: BinaryParams, swap: bool) -> np.ndarray:
    """d out / d x for each value of y (-128 .. 127): for Add/Sub the product of operand x's and the output's
    requantization factors, for Mul (y - y_zp) times the output's factor."""
    k, other = ("b", "a") if swap else ("a", "b")
    out = q.out_mult * 2.0 ** (q.out_shift - 31)
    if op == "Mul":
        return (np.arange(-128, 128) - q[f"{other}_zp"]) * out
    sign = -1.0 if op == "Sub" and swap else 1.0
    return np.full(256, sign * q[f"{k}_mult"] * 2.0 ** (q[f"{k}_shift"] - 31 + q.left_shift) * out)


def _unsigned_order(t: np.ndarray) -> np.ndarray:
    """A table over y = -128 .. 127 reordered to be indexed by y as an unsigned byte, as int32."""
    return np.concatenate([t[128:], t[:128]]).astype(np.int32)


def fit_lut(op: str, q: BinaryParams) -> LutAdd | None:
    """The ec_add_lut_s8 (ec_mul_lut_s8) form of an int8 Add or Sub (Mul), or None when none equals its arithmetic
    on every pair.

    For the operand x whose requantization is exact (Add/Sub: the one of the larger scale, multiplier 2^30, shift
    0; Mul: either) the result is floor((x * M_y + W_y) / 2^N) with 64-bit M_y, W_y for each value of the other
    operand y (M_y the same for all y in an Add). With M_y scaled to 2^LUT_SHIFT and rounded to m_y, a 32-bit
    table entry w_y works for all 256 x exactly when the intervals [2^s f(x, y) - x * m_y, 2^s (f(x, y) + 1) -
    x * m_y) intersect (a clamped f bounds one side only); the middle of the intersection is taken. Both operand
    orders are tried; the result is checked on all pairs, including that no int32 sum overflows."""
    if op not in ("Add", "Sub", "Mul"):
        return None
    v = np.arange(-128, 128, dtype=np.int64)
    full = int_arith(op, q, v[:, None], v[None, :])  # [a][b]
    lo, hi, big = q.act_min, q.act_max, np.int64(1) << 50
    x = v[:, None]
    for swap in (False, True):
        f = full.T if swap else full  # [x][y]
        mults = np.round(_lut_slopes(op, q, swap) * (1 << LUT_SHIFT)).astype(np.int64)
        if np.abs(mults).max() >= 1 << 23:
            continue
        lower = np.where(f > lo, f << LUT_SHIFT, -big) - x * mults[None, :]
        upper = np.where(f < hi, (f + 1) << LUT_SHIFT, big) - x * mults[None, :] - 1
        wl, wh = lower.max(axis=0), upper.min(axis=0)
        if (wl > wh).any():
            continue
        finite_l, finite_h = wl > -big // 2, wh < big // 2
        w = np.where(finite_l & finite_h, (wl + wh) // 2, np.where(finite_l, wl, np.where(finite_h, wh, 0)))
        acc = x * mults[None, :] + w[None, :]
        if np.abs(acc).max() >= 1 << 31 or not np.array_equal(np.clip(acc >> LUT_SHIFT, lo, hi), f):
            continue
        if op == "Mul":
            return LutAdd(swap, 0, _unsigned_order(w), lo, hi, _unsigned_order(mults))
        return LutAdd(swap, int(mults[0]), _unsigned_order(w), lo, hi)
    return None


@dataclass(frozen=True)
class AffineAdd:
    """An int8 Add/Sub as ec_add_affine_neon_s8 computes it: out = clamp((x' * mx + y' * my + bias) >> AFFINE_SHIFT,
    act_min, act_max) modulo 2^32 in int32, x' the first operand plus 128, y' = (uint8_t)y ^ y_flip the second
    one plus 128 (y_flip 0x80) or 127 less it (0x7f: a negative slope, as in a Sub), mx = x_mul8 * x_mul16 and
    my = y_mul8 * y_mul16 with the 8-bit factors in 1 .. 255 and the 16-bit ones in 1 .. 65535 (VMULL.U8 then
    VMULL.U16 / VMLAL.U16). Equal to the node's integer arithmetic for every one of the 65,536 operand pairs
    (fit_affine checks them all)."""

    x_mul8: int
    x_mul16: int
    y_mul8: int
    y_mul16: int
    y_flip: int
    bias: int
    act_min: int
    act_max: int


def _two_factors(m: np.ndarray) -> np.ndarray:
    """For each m > 0: the least a in 1 .. 255 with m = a * b, b in 1 .. 65535; 0 where there is none."""
    a = np.arange(1, 256, dtype=np.int64)
    ok = (m[:, None] > 0) & (m[:, None] % a == 0) & (m[:, None] // a <= 65535)
    return np.where(ok.any(axis=1), a[ok.argmax(axis=1)], 0)


def _affine_form(q: BinaryParams, f: np.ndarray, mx: int, my: int, c: int) -> AffineAdd | None:
    """The AffineAdd for x * mx + y * my + c (mx > 0, my != 0), when it equals f [x][y] on every pair as the
    kernel computes it (int32 wrap-around, shift, saturation, clamp)."""
    v = np.arange(-128, 128, dtype=np.int64)
    flip, yu = (0x80, v + 128) if my > 0 else (0x7F, 127 - v)  # y * my = |my| * y' - |my| * (128 or 127)
    bias = (c - 128 * mx - abs(my) * (128 if my > 0 else 127) + (1 << 31)) % (1 << 32) - (1 << 31)
    acc = ((v[:, None] + 128) * mx + yu[None, :] * abs(my) + bias + (1 << 31)) % (1 << 32) - (1 << 31)
    got = np.clip(np.clip(acc >> AFFINE_SHIFT, -128, 127), q.act_min, q.act_max)
    if not np.array_equal(got, f):
        return None
    ax, ay = (int(_two_factors(np.array([abs(m)]))[0]) for m in (mx, my))
    return AffineAdd(ax, mx // ax, ay, abs(my) // ay, flip, int(bias), q.act_min, q.act_max)


def fit_affine(op: str, q: BinaryParams) -> AffineAdd | None:
    """The ec_add_affine_neon_s8 form of an int8 Add or Sub, or None when none is found that equals its arithmetic
    on every pair.

    The result is floor((x * mx + y * my + c) / 2^AFFINE_SHIFT), clamped: for multipliers mx, my (within
    AFFINE_SEARCH of each operand's slope, and products of two factors as the kernel's two widening multiplies
    take them) the bias c must lie in [2^s f(x, y) - x * mx - y * my, 2^s (f(x, y) + 1) - x * mx - y * my) for
    every pair (a clamped f bounds one side only): the bounds over x for each y first, then over y for all the
    my at once. The middle of the first non-empty interval is taken and the result checked on all pairs.
    (Measured: each of resnet8's residual adds has such a form, and 115 of 120 random Adds and Subs with the
    output scale within 2x or 4x of the larger input's; with a shift of 22, one of resnet8's adds overflows int32
    where its output is clamped, with 20, one lacks a form.)"""
    if op not in ("Add", "Sub"):
        return None
    v = np.arange(-128, 128, dtype=np.int64)
    f = int_arith(op, q, v[:, None], v[None, :])  # [x][y]
    big = np.int64(1) << 50
    lower = np.where(f > q.act_min, f << AFFINE_SHIFT, -big)
    upper = np.where(f < q.act_max, (f + 1) << AFFINE_SHIFT, big) - 1
    near = np.arange(-AFFINE_SEARCH, AFFINE_SEARCH + 1, dtype=np.int64)
    mxs, mys = (np.int64(round(_lut_slopes(op, q, swap)[0] * (1 << AFFINE_SHIFT))) + near for swap in (False, True))
    mxs = mxs[_two_factors(mxs) > 0]
    mys = mys[_two_factors(np.abs(mys)) > 0]
    for mx in mxs:
        lo_y = (lower - v[:, None] * mx).max(axis=0)  # y * my + c >= lo_y[y]
        hi_y = (upper - v[:, None] * mx).min(axis=0)
        lo_c = (lo_y[None, :] - mys[:, None] * v[None, :]).max(axis=1)
        hi_c = (hi_y[None, :] - mys[:, None] * v[None, :]).min(axis=1)
        for k in np.nonzero(lo_c <= hi_c)[0]:
            fit = _affine_form(q, f, int(mx), int(mys[k]), int((lo_c[k] + hi_c[k]) // 2))
            if fit is not None:
                return fit
    return None


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
    batched = True
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

    def quantize(self, node: Node, g: Graph) -> BinaryParams:
        (ca, sa, za), (cb, sb, zb) = self._operand_quant(node, g)
        so, zo = qparams(g, node.outputs[0])
        common = {"consts": [ca, cb], "a_zp": za, "b_zp": zb, "out_zp": zo}
        if tflm.is_tflm(g) and node.dtype == "int8":  # a TFLite model: TFLM's multipliers and bounds (ops/tflm.py)
            lo, hi = tflm.quant_bounds(*act_range(node), so, zo)
            if node.op == "Mul":
                mult, shift = tflm.quantize_multiplier(tflm.mul_scale(sa, sb, so))
                return TflmBinaryParams(**common, act_min=lo, act_max=hi, out_mult=mult, out_shift=shift)
            return TflmBinaryParams(**common, act_min=lo, act_max=hi, **tflm.add_params(sa, sb, so))
        lo, hi = quant_bounds(*act_range(node), so, zo, node.dtype)
        if node.op == "Mul":
            mult, shift = quantize_multiplier(sa * sb / so)
            return BinaryParams(**common, act_min=lo, act_max=hi, out_mult=mult, out_shift=shift)
        shift = ADD_LEFT_SHIFT_S16 if node.dtype == "int16" else ADD_LEFT_SHIFT
        twice_max = 2.0 * max(sa, sb)
        (am, ash), (bm, bsh), (om, osh) = (quantize_multiplier(r) for r in
                                           (sa / twice_max, sb / twice_max, twice_max / ((1 << shift) * so)))
        return BinaryParams(**common, act_min=lo, act_max=hi, left_shift=shift, a_mult=am, a_shift=ash, b_mult=bm,
                            b_shift=bsh, out_mult=om, out_shift=osh)

    def ref_s8(self, node: Node, g: Graph, xs: list[np.ndarray]) -> np.ndarray:
        q = node.q
        a, b = (np.asarray(c if c is not None else x, dtype=np.int64) for c, x in zip(q.consts, xs))
        return int_arith(node.op, q, a, b).astype(out_dtype(node))

    def export_const(self, node: Node, g: Graph, k: int) -> tuple[np.ndarray, np.float32, int] | None:
        qc, s, zp = const_quant(g.const(node.inputs[k]).astype(np.float64), node.dtype,
                                node.scheme in ("qformat", "q15"))
        return qc, np.float32(s), zp

    def lower_lut(self, node: Node, g: Graph, ctx: LowerContext, facts: None) -> Lowered | None:
        """Helium (ec_add_lut_mve_s8, ec_mul_lut_mve_s8) or DSP (ec_add_lut_s8, ec_mul_lut_s8): an int8 Add/Sub/Mul
        as one multiply-add with table entries and a shift per element (fit_lut), when that form is exact for the
        node's parameters."""
        features = ctx.target.features
        if node.dtype != "int8" or not {"mve", "dsp"} & set(features):
            return None
        fit = fit_lut(node.op, node.q)
        if fit is None:
            return None
        name, t = node.name, nctype(node)
        bp, operands = _int_operands(node, g, [1, 0] if fit.swap else [0, 1])
        bounds = {"act_min": fit.act_min, "act_max": fit.act_max}
        out = Buf(node.outputs[0], t, const=False)
        table = Array(f"t_{name}", fit.table, "int32_t")
        if fit.mults is not None:
            kernel = "ec_mul_lut_mve_s8" if "mve" in features else "ec_mul_lut_s8"
            st = Struct(f"q_{name}", "ec_mul_lut_params", bounds)
            return Lowered([Call(kernel, [bp, st, *operands, Array(f"m_{name}", fit.mults, "int32_t"), table, out],
                                 node=name)])
        kernel = "ec_add_lut_mve_s8" if "mve" in features else "ec_add_lut_s8"
        st = Struct(f"q_{name}", "ec_add_lut_params", {"mult": fit.mult, **bounds})
        return Lowered([Call(kernel, [bp, st, *operands, table, out], node=name)])

    def lower_affine(self, node: Node, g: Graph, ctx: LowerContext, facts: None) -> Lowered | None:
        """NEON (ec_add_affine_neon_s8): an int8 Add/Sub as two widening multiplies per operand and a narrowing
        add and shift per element (fit_affine), when that form is exact for the node's parameters."""
        if node.dtype != "int8" or "neon" not in ctx.target.features:
            return None
        fit = fit_affine(node.op, node.q)
        if fit is None:
            return None
        name, t = node.name, nctype(node)
        bp, operands = _int_operands(node, g, [0, 1])
        fields = {"x_mul8": fit.x_mul8, "x_mul16": fit.x_mul16, "y_mul8": fit.y_mul8, "y_mul16": fit.y_mul16,
                  "y_flip": fit.y_flip, "bias": fit.bias, "act_min": fit.act_min, "act_max": fit.act_max}
        st = Struct(f"q_{name}", "ec_add_affine_params", fields)
        return Lowered([Call("ec_add_affine_neon_s8", [bp, st, *operands, Buf(node.outputs[0], t, const=False)],
                             node=name)])

    def lower_portable(self, node: Node, g: Graph, ctx: LowerContext, facts: None) -> Lowered:
        name, t = node.name, nctype(node)
        ins = [g.tensors[i] for i in node.inputs]
        bp = broadcast_struct(name, g.tensors[node.outputs[0]], ins)
        suffix = "s16" if node.dtype == "int16" else "s8"
        if is_int(node):
            operands = _int_operands(node, g, [0, 1])[1]
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

    def row_window(self, node: Node, g: Graph) -> tuple[int, int, int] | None:
        """Operands of the output's 4-D shape, constants constant along H."""
        out = g.shape(node.outputs[0])
        for x in node.inputs:
            shape = (1,) * (4 - len(g.shape(x))) + tuple(g.shape(x))
            if len(out) != 4 or (g.const(x) is None and tuple(g.shape(x)) != tuple(out)) or shape[2] != 1 and \
                    g.const(x) is not None:
                return None
        return 1, 1, 0

    variants = (lower_lut, lower_affine, lower_portable)


def _int_operands(node: Node, g: Graph, order: list[int]) -> tuple[Struct, list]:
    """An integer Add/Sub/Mul's broadcast struct and operands in the kernel's order: each a buffer, or a constant
    as an array of its integers."""
    name, t = node.name, nctype(node)
    operands = [Array(f"c_{name}_{k}", node.q.consts[k], t) if node.q.consts[k] is not None
                else Buf(node.inputs[k], t) for k in order]
    return broadcast_struct(name, g.tensors[node.outputs[0]], [g.tensors[node.inputs[k]] for k in order]), operands


register(Binary())
