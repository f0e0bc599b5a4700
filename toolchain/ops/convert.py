"""Convert: our own op joining layers of different element types in a mixed-precision graph (--qconfig).

float32 -> int (quantize): q = clamp(rint(x * inv_scale) + zp), in float32, half to even.
int -> float32 (dequantize): x = (float)(q - zp) * scale, in float32.
int -> int (requantize, e.g. int8 <-> int16): q' = clamp(requantize(q - zp, mult, shift) + zp').
The quantizer inserts one where a tensor is read by a layer of another type; logically it is the identity."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..calls import Buf, Call, Lowered, Raw, Struct
from ..ir import NUMPY_TYPES, Graph, Node
from . import tflm
from .base import QRANGE, LowerContext, Op, c_float, quantize_multiplier, register, requantize
from .params import Params

_C_TYPE = {"float32": "EC_F32", "int8": "EC_S8", "int16": "EC_S16"}


@dataclass(kw_only=True)
class ConvertParams(Params):
    """ec_convert_params: from float32, the float32 factor 1 / scale; to float32, the scale; between integer types,
    the requantization multiplier and shift; the zero points and, for an integer output, its bounds."""

    in_zp: int
    out_zp: int
    mult: int = 0
    shift: int = 0
    scale: float = 0.0
    qmin: int = 0
    qmax: int = 0


@dataclass(kw_only=True)
class TflmConvertParams(ConvertParams):
    """TFLM's QUANTIZE (scale: the float32 scale divided by, as AffineQuantize does), DEQUANTIZE and int8 requantize
    (TFLM's multiplier and double rounding)."""

    arithmetic: str = tflm.TFLM


class Convert(Op):
    types = ("Convert",)
    batched = True

    def ref(self, node: Node, g: Graph, xs: list[np.ndarray]) -> np.ndarray:
        return xs[0]

    def ref_f32(self, node: Node, g: Graph, xs: list[np.ndarray]) -> np.ndarray:
        """To float32 (dequantize): part of the integer definition, ref_s8."""
        return self.ref_s8(node, g, xs)

    def export_node(self, node: Node, g: Graph, w: Any) -> bool:
        w.convert(node)
        return True

    def inserted(self, node: Node) -> bool:
        return True

    def quantize(self, node: Node, g: Graph) -> ConvertParams:
        src, dst = g.tensors[node.inputs[0]], g.tensors[node.outputs[0]]
        qmin, qmax = QRANGE[dst.dtype] if dst.dtype != "float32" else (0, 0)
        zps = {"in_zp": src.zero_point or 0, "out_zp": dst.zero_point or 0, "qmin": qmin, "qmax": qmax}
        if tflm.is_tflm(g) and "int16" not in (src.dtype, dst.dtype):  # TFLM's QUANTIZE, DEQUANTIZE (ops/tflm.py)
            if src.dtype == "float32":  # divided by, as AffineQuantize does
                return TflmConvertParams(**zps, scale=c_float(dst.scale))
            if dst.dtype == "float32":  # float(double(scale) * (q - zp)): the exact product rounded once, as here
                return TflmConvertParams(**zps, scale=c_float(src.scale))
            mult, shift = tflm.quantize_multiplier(tflm.ratio_scale(src.scale, dst.scale))
            return TflmConvertParams(**zps, mult=mult, shift=shift)
        if src.dtype == "float32":
            return ConvertParams(**zps, scale=c_float(1.0 / dst.scale))
        if dst.dtype == "float32":
            return ConvertParams(**zps, scale=c_float(src.scale))
        mult, shift = quantize_multiplier(src.scale / dst.scale)
        return ConvertParams(**zps, mult=mult, shift=shift)

    def ref_s8(self, node: Node, g: Graph, xs: list[np.ndarray]) -> np.ndarray:
        src, dst = g.tensors[node.inputs[0]], g.tensors[node.outputs[0]]
        q = node.q
        if tflm.uses_tflm(q) and src.dtype == "float32":
            return tflm.quantize_float(xs[0], q.scale, q.out_zp, q.qmin, q.qmax).astype(np.int8)
        if tflm.uses_tflm(q) and dst.dtype != "float32":
            y = tflm.requantize(np.asarray(xs[0]).astype(np.int64) - q.in_zp, q.mult, q.shift)
            return np.clip(y + q.out_zp, q.qmin, q.qmax).astype(np.int8)
        if src.dtype == "float32":
            v = np.rint(np.asarray(xs[0], np.float32) * np.float32(q.scale)).astype(np.float64)
            return np.clip(v + q.out_zp, q.qmin, q.qmax).astype(NUMPY_TYPES[dst.dtype])
        x = np.asarray(xs[0]).astype(np.int64) - q.in_zp
        if dst.dtype == "float32":
            return x.astype(np.float32) * np.float32(q.scale)
        y = requantize(x, q.mult, q.shift) + q.out_zp
        return np.clip(y, q.qmin, q.qmax).astype(NUMPY_TYPES[dst.dtype])

    def lower(self, node: Node, g: Graph, ctx: LowerContext) -> Lowered:
        src, dst = g.tensors[node.inputs[0]], g.tensors[node.outputs[0]]
        q = node.q
        fields = {"in_type": Raw(_C_TYPE[src.dtype]), "out_type": Raw(_C_TYPE[dst.dtype]),
                  "in_zp": q.in_zp, "out_zp": q.out_zp, "mult": q.mult, "shift": q.shift, "scale": q.scale,
                  "qmin": q.qmin, "qmax": q.qmax}
        return Lowered([Call("ec_convert", [src.size, Struct(f"q_{node.name}", "ec_convert_params", fields),
                                            Buf(src.name, "void"),
                                            Buf(dst.name, "void", const=False)], node=node.name)])


register(Convert())
