"""MaxPool, AveragePool (count_include_pad both ways) and GlobalAveragePool (ReduceMean over H, W maps here).

In int8 the output keeps the input's scale and zero point; an imported model's average pooling may give its output
a scale of its own (onnxruntime's QLinearAveragePool), then the window sum is requantized."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..calls import Buf, Call, Lowered, Struct
from ..errors import EdgecError
from ..ir import Graph, Node
from . import tflm
from .base import (
    QRANGE,
    LowerContext,
    Op,
    act_range,
    apply_act,
    check_act,
    check_io,
    is_int,
    nctype,
    out_dtype,
    pick,
    qparams,
    quant_bounds,
    quantize_multiplier,
    register,
    requantize,
)
from .geometry import check_window, conv_params, spatial_attrs, windows
from .output_stage import act_struct
from .params import Params


@dataclass(kw_only=True)
class PoolParams(Params):
    """int8/int16 pooling. MaxPool: the activation bounds only. Average: the window sum of (x - zp), divided by the
    tap count rounding ties to even (mult == 0, the output keeping the input's quantization), or requantized with
    mult, shift (1 / count folded in) to an output zero point out_zp of its own; then clamped."""

    zp: int
    act_min: int
    act_max: int
    mult: int = 0
    shift: int = 0
    out_zp: int = 0


@dataclass(kw_only=True)
class TflmPoolParams(PoolParams):
    """TFLM's AVERAGE_POOL_2D (zp 0, mult 0: the average of the stored values rounded half away from zero) and MEAN
    over H, W (the sum requantized with TFLM's double rounding)."""

    arithmetic: str = tflm.TFLM


def rounding_divide(acc: np.ndarray, d: np.ndarray) -> np.ndarray:
    """acc / d (d > 0) rounded to nearest, ties to even (as a float average quantized by ONNX QuantizeLinear)."""
    acc = acc.astype(np.int64)
    q, r = np.divmod(acc, d)  # floor division, 0 <= r < d
    return q + ((2 * r > d) | ((2 * r == d) & (q % 2 == 1)))


class Pool(Op):
    types = ("MaxPool", "AveragePool", "GlobalAveragePool")
    layout = "channels_last"
    batched = True
    channelwise = "always"
    keeps_quant = True
    fuses_activation = True

    def check(self, node: Node, g: Graph) -> str | None:
        if len(node.outputs) > 1 and node.outputs[1]:
            return "the Indices output of MaxPool is not supported"
        reason = check_io(node, g, (1, 1))
        if reason:
            return reason
        x, y = g.shape(node.inputs[0]), g.shape(node.outputs[0])
        if len(x) not in (3, 4):
            return "only 1-D and 2-D pooling is supported"
        if node.attrs.get("storage_order", 0):
            return "storage_order=1 is not supported"
        if node.attrs.get("count_include_pad", 0) not in (0, 1):
            return f"count_include_pad={node.attrs['count_include_pad']!r} must be 0 or 1"
        if y[:2] != x[:2]:
            return f"output shape {list(y)} does not keep the batch and channels of the input {list(x)}"
        if node.op == "GlobalAveragePool":
            return None if tuple(y[2:]) == (1,) * (len(x) - 2) else f"output shape {list(y)} is not [N, C, 1, ...]"
        kernel = node.attrs.get("kernel_shape")
        if not isinstance(kernel, (list, tuple)) or len(kernel) != len(x) - 2:
            return f"kernel_shape={kernel!r} must give {len(x) - 2} sizes"
        return check_window(node, g, tuple(kernel), pool=True) or check_act(node)

    def geometry(self, node: Node, g: Graph):
        if node.op == "GlobalAveragePool":
            kernel = tuple(g.shape(node.inputs[0])[2:])
            d = len(kernel)
            return kernel, [1] * d, [0] * (2 * d), [1] * d
        kernel = tuple(node.attrs["kernel_shape"])
        return (kernel, *spatial_attrs(node, g, kernel))

    def _divisor(self, node: Node, g: Graph) -> np.ndarray:
        kernel, strides, pads, dil = self.geometry(node, g)
        in_sp = g.shape(node.inputs[0])[2:]
        out_sp = g.shape(node.outputs[0])[2:]
        d = len(kernel)
        ones = np.ones((1, 1) + tuple(in_sp))
        if node.attrs.get("count_include_pad", 0):
            ones = np.pad(ones, [(0, 0), (0, 0)] + [(pads[i], pads[d + i]) for i in range(d)], constant_values=1)
            pads = [0] * (2 * d)
        total = sum(w for _, w in windows(ones, kernel, strides, pads, dil, out_sp, 0))
        return total.astype(np.int64)[0, 0]

    def export_attrs(self, node: Node) -> dict:
        return pick(node.attrs, {
            "MaxPool": ("kernel_shape", "strides", "pads", "dilations", "ceil_mode", "auto_pad"),
            "AveragePool": ("kernel_shape", "strides", "pads", "ceil_mode", "count_include_pad", "auto_pad"),
        }.get(node.op, ()))

    def ref(self, node: Node, g: Graph, xs: list[np.ndarray]) -> np.ndarray:
        kernel, strides, pads, dil = self.geometry(node, g)
        out_sp = g.shape(node.outputs[0])[2:]
        x = xs[0].astype(np.float64)
        if node.op == "MaxPool":
            y = np.maximum.reduce([w for _, w in windows(x, kernel, strides, pads, dil, out_sp, -np.inf)])
        elif node.op == "GlobalAveragePool":  # the windows' sum in their order (cumsum adds in sequence), at once
            y = np.cumsum(x.reshape(x.shape[:2] + (-1,)), axis=-1)[..., -1:] / math.prod(kernel)
            y = y.reshape(x.shape[:2] + (1,) * len(kernel))
        else:
            y = sum(w for _, w in windows(x, kernel, strides, pads, dil, out_sp, 0.0)) / self._divisor(node, g)
        return apply_act(y, node)

    def rescales(self, node: Node) -> bool:
        return node.op != "MaxPool"

    def quantize(self, node: Node, g: Graph) -> PoolParams:
        s, zp = qparams(g, node.inputs[0])
        s_out, zp_out = qparams(g, node.outputs[0])
        if tflm.is_tflm(g) and node.dtype == "int8":  # a TFLite model (ops/tflm.py)
            lo, hi = tflm.quant_bounds(*act_range(node), s_out, zp_out)
            if node.op == "GlobalAveragePool":  # MEAN over H, W: the sum requantized, 1 / count folded in
                mult, shift = tflm.mean_params(s, s_out, int(self._divisor(node, g).flat[0]))
                return TflmPoolParams(zp=zp, act_min=lo, act_max=hi, mult=mult, shift=shift, out_zp=zp_out)
            # AVERAGE_POOL_2D: the average of the stored values, the output keeping the input's quantization
            return TflmPoolParams(zp=0, act_min=lo, act_max=hi)
        lo, hi = quant_bounds(*act_range(node), s_out, zp_out, node.dtype)
        q = PoolParams(zp=zp, act_min=lo, act_max=hi, out_zp=zp_out)
        if zp_out != zp or abs(s_out - s) > 1e-6 * s:  # an imported model's own output scale: requantize the sum
            d = np.unique(self._divisor(node, g))
            if d.size != 1 or d[0] == 0:
                raise EdgecError(f"{node.op} (node '{node.name}'): an output scale other than the input's needs the "
                                 "same number of taps in every window (no padding, or count_include_pad=1)")
            q.mult, q.shift = quantize_multiplier(s / (s_out * float(d[0])))
        return q

    def ref_s8(self, node: Node, g: Graph, xs: list[np.ndarray]) -> np.ndarray:
        q = node.q
        kernel, strides, pads, dil = self.geometry(node, g)
        out_sp = g.shape(node.outputs[0])[2:]
        if node.op == "MaxPool":
            y = np.maximum.reduce([w for _, w in windows(xs[0].astype(np.int64), kernel, strides, pads, dil, out_sp,
                                                         QRANGE[node.dtype][0])])
        else:
            x = xs[0].astype(np.int64) - q.zp
            acc = sum(w for _, w in windows(x, kernel, strides, pads, dil, out_sp, 0))
            if tflm.uses_tflm(q) and q.mult:
                y = tflm.requantize(acc, q.mult, q.shift) + q.out_zp
            elif tflm.uses_tflm(q):
                y = tflm.avgpool_divide(acc, self._divisor(node, g))
            elif q.mult:
                y = requantize(acc, q.mult, q.shift) + q.out_zp
            else:
                y = rounding_divide(acc, self._divisor(node, g)) + q.zp
        return np.clip(y, q.act_min, q.act_max).astype(out_dtype(node))

    def lower_avg_simd(self, node: Node, g: Graph, ctx: LowerContext, facts: None) -> Lowered | None:
        """Helium (ec_avgpool_mve_s8) or DSP (ec_avgpool_dsp_s8): an int8 average pool summing many channels per
        instruction in 16-bit lanes, so at most 256 taps per window; the same arithmetic as ec_avgpool_s8."""
        features = ctx.target.features
        if node.op == "MaxPool" or node.dtype != "int8" or not {"mve", "dsp"} & set(features):
            return None
        kernel = self.geometry(node, g)[0]
        if int(np.prod(kernel)) > 256:
            return None
        low = self.lower_portable(node, g, ctx, facts)
        low.calls[0].kernel = "ec_avgpool_mve_s8" if "mve" in features else "ec_avgpool_dsp_s8"
        return low

    def lower_portable(self, node: Node, g: Graph, ctx: LowerContext, facts: None) -> Lowered:
        name, t = node.name, nctype(node)
        kernel, strides, pads, dil = self.geometry(node, g)
        params = conv_params(name, g, node.inputs[0], node.outputs[0], kernel, strides, pads, dil)
        x, y = Buf(node.inputs[0], t), Buf(node.outputs[0], t, const=False)
        suffix = {"int8": "s8", "int16": "s16"}.get(node.dtype, "f32")
        if node.op == "MaxPool":
            stage = [node.q.act_min, node.q.act_max] if is_int(node) else [act_struct(name, node)]
            return Lowered([Call(f"ec_maxpool_{suffix}", [params, *stage, x, y], node=name)])
        d = len(kernel)
        end = (0, pads[1]) if d == 1 else (pads[2], pads[3])
        q = node.q if is_int(node) else PoolParams(zp=0, act_min=0, act_max=0)
        requant = {"mult": q.mult, "shift": q.shift, "out_zp": q.out_zp}
        extra = Struct(f"px_{name}", "ec_avgpool_extra", {"pad_bottom": end[0], "pad_right": end[1],
                                                          "count_include_pad": node.attrs.get("count_include_pad", 0),
                                                          **requant})
        if is_int(node):
            stage = [node.q.zp, node.q.act_min, node.q.act_max]
        else:
            stage = [act_struct(name, node)]
        return Lowered([Call(self.avgpool_kernel(suffix, ctx), [params, extra, *stage, x, y], node=name)])

    @staticmethod
    def avgpool_kernel(suffix: str, ctx: LowerContext) -> str:
        """ec_avgpool_<suffix>, or for int8 on a NEON target ec_avgpool_neon_s8 (the same arguments)."""
        if suffix == "s8" and "neon" in ctx.target.features:
            return "ec_avgpool_neon_s8"
        return f"ec_avgpool_{suffix}"

    variants = (lower_avg_simd, lower_portable)


register(Pool())
