"""Softmax along one axis. int8 output has scale 1/255 and zero point -128 (affine int8: [0, 1] exactly, so a sure
class keeps its probability 1; with 1/256, TFLite's choice, the highest code means 0.996: str_ww's confident test
outputs lost up to 0.004 each, 48.34 dB output SQNR, 57.26 dB with 1/255), 1/256 (Q-format: UQ0.8) or the
model's own scale 1/N (N <= 256) and zero point (an imported quantized model, e.g. TFLite's 1/256); exp comes from
a 256-entry table.
int16 output has scale 1/32768 and zero point 0; exp comes from a 513-knot table interpolated linearly."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..calls import Array, Buf, Call, Lowered
from ..errors import EdgecError
from ..ir import Graph, Node
from . import tflm
from .base import INTERP_BITS, LowerContext, Op, check_axis, check_io, check_same_shape, pick, qparams, register
from .geometry import axis_split
from .params import Params

EXP_FRACTION_BITS = 16


@dataclass(kw_only=True)
class SoftmaxParams(Params):
    """edgec's softmax: exp[d] = round(e^(-d * s_in) * 2^16) for d = max - x (int8: 256 entries; int16: 513 knots
    every 2^INTERP_BITS, ec_softmax_s16), and for int8 the output 1/out_n and zero point."""

    exp: np.ndarray  # uint32
    out_n: int = 0
    out_zp: int = 0


@dataclass(kw_only=True)
class TflmSoftmaxParams(Params):
    """TFLM's int8 softmax (ops/tflm.py softmax_s8, ec_softmax_tflm_s8): its fixed-point input multiplier, left shift
    and the least difference that still counts."""

    mult: int
    left_shift: int
    diff_min: int
    arithmetic: str = tflm.TFLM


class Softmax(Op):
    types = ("Softmax",)
    layout = "follows_input"
    classifies = True

    def axis(self, node: Node, g: Graph) -> int:
        rank = len(g.shape(node.inputs[0]))
        return node.attrs.get("axis", -1) % rank

    def export_attrs(self, node: Node) -> dict:
        return pick(node.attrs, ("axis",))

    def check(self, node: Node, g: Graph) -> str | None:
        return (check_io(node, g, (1, 1)) or check_axis(node.attrs.get("axis", -1), len(g.shape(node.inputs[0])))
                or check_same_shape(node, g))

    def ref(self, node: Node, g: Graph, xs: list[np.ndarray]) -> np.ndarray:
        x = xs[0].astype(np.float64)
        e = np.exp(x - x.max(axis=self.axis(node, g), keepdims=True))
        return (e / e.sum(axis=self.axis(node, g), keepdims=True)).astype(np.float32)

    def output_quant(self, node: Node, g: Graph) -> tuple[float, int]:
        if node.dtype == "int16":
            return 1.0 / 32768.0, 0
        return g.tensors[node.outputs[0]].fixed_quant or (1.0 / (256.0 if node.scheme == "qformat" else 255.0), -128)

    def quantize(self, node: Node, g: Graph) -> SoftmaxParams | TflmSoftmaxParams:
        s_in, _ = qparams(g, node.inputs[0])
        if node.dtype == "int16":  # knots at d = 128 k for k = 0..512 (d = max - x ranges over 0..65535)
            d = np.arange(513, dtype=np.float64) * (1 << INTERP_BITS)
            return SoftmaxParams(exp=np.round(np.exp(-d * s_in) * (1 << EXP_FRACTION_BITS)).astype(np.uint32))
        s_out, zp_out = qparams(g, node.outputs[0])
        if tflm.is_tflm(g):  # a TFLite model: TFLM's fixed-point softmax (ops/tflm.py)
            if (np.float32(s_out), zp_out) != (np.float32(1.0 / 256.0), -128):
                raise EdgecError(f"Softmax (node '{node.name}'): TFLM's int8 softmax needs the output scale 1/256 and "
                                 f"zero point -128, the model has {s_out:.6g} and {zp_out}")
            mult, shift, diff_min = tflm.softmax_params(node.attrs.get("beta", 1.0), s_in)
            return TflmSoftmaxParams(mult=mult, left_shift=shift, diff_min=diff_min)
        out_n = int(round(1.0 / s_out))
        if not 1 <= out_n <= 256 or abs(out_n * s_out - 1.0) > 1e-4:
            raise EdgecError(f"Softmax (node '{node.name}'): the model's int8 output scale {s_out:.6g} is not 1/N "
                             "with N <= 256; edgec's int8 softmax needs such a scale (1/256 or 1/255)")
        d = np.arange(256, dtype=np.float64)
        return SoftmaxParams(exp=np.round(np.exp(-d * s_in) * (1 << EXP_FRACTION_BITS)).astype(np.uint32),
                             out_n=out_n, out_zp=zp_out)

    def ref_s8(self, node: Node, g: Graph, xs: list[np.ndarray]) -> np.ndarray:
        ax = self.axis(node, g)
        x = xs[0].astype(np.int64)
        if node.dtype == "int16":
            d = x.max(axis=ax, keepdims=True) - x
            i, frac = d >> INTERP_BITS, d & ((1 << INTERP_BITS) - 1)
            t = node.q.exp.astype(np.int64)
            e = t[i] + (((t[i + 1] - t[i]) * frac + (1 << (INTERP_BITS - 1))) >> INTERP_BITS)
            s = e.sum(axis=ax, keepdims=True)
            return np.minimum((e * 32768 + s // 2) // s, 32767).astype(np.int16)
        if tflm.uses_tflm(node.q):
            return tflm.softmax_s8(x, ax, node.q.mult, node.q.left_shift, node.q.diff_min)
        e = node.q.exp.astype(np.int64)[x.max(axis=ax, keepdims=True) - x]
        s = e.sum(axis=ax, keepdims=True)
        return np.minimum(node.q.out_zp + (e * node.q.out_n + s // 2) // s, 127).astype(np.int8)

    def lower(self, node: Node, g: Graph, ctx: LowerContext) -> Lowered:
        outer, n, inner = axis_split(g.tensors[node.inputs[0]], self.axis(node, g))
        if node.dtype == "int16":
            args = [Array(f"exp_{node.name}", node.q.exp, "uint32_t"), Buf(node.inputs[0], "int16_t"),
                    Buf(node.outputs[0], "int16_t", const=False)]
            return Lowered([Call("ec_softmax_s16", [outer, n, inner, *args], node=node.name)])
        if node.dtype == "int8" and tflm.uses_tflm(node.q):
            q = node.q
            args = [q.mult, q.left_shift, q.diff_min, Buf(node.inputs[0], "int8_t"),
                    Buf(node.outputs[0], "int8_t", const=False)]
            return Lowered([Call("ec_softmax_tflm_s8", [outer, n, inner, *args], node=node.name)])
        if node.dtype == "int8":
            args = [Array(f"exp_{node.name}", node.q.exp, "uint32_t"), node.q.out_n, node.q.out_zp,
                    Buf(node.inputs[0], "int8_t"), Buf(node.outputs[0], "int8_t", const=False)]
            return Lowered([Call("ec_softmax_s8", [outer, n, inner, *args], node=node.name)])
        args = [Buf(node.inputs[0], "float"), Buf(node.outputs[0], "float", const=False)]
        return Lowered([Call("ec_softmax_f32", [outer, n, inner, *args], node=node.name)])


register(Softmax())
