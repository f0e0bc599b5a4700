"""The output stage of the integer Conv and Gemm layers: weight quantization, the integer bias, the requantization
(per-channel multiplier and shift, 64-bit for int16 layers, a rounding shift for Q-format ones) and the activation
clamp; its numpy twin (finish_s8) and the C structs the kernels take (ec_quant_s8, ec_quant_q7, ec_quant_s16,
ec_act_f32).

The parameters are typed (Stage: AffineStage for int8/int4, Affine16Stage for int16, ShiftStage for Q-format), so a
second arithmetic (TFLite Micro's double-rounding requantization, Graph.arithmetic "tflm") is one more Stage subclass.

API for an op: quantize with layer_weights + output_stage (-> the node's Stage, Node.q), compute the reference with
Stage.finish (finish_s8), and lower with Stage.struct (quant_struct / quant_struct_s16; act_struct for float
layers)."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np

from ..calls import Array, Struct
from ..errors import EdgecError
from ..ir import Graph, Node
from . import tflm
from .base import (
    MIN_SCALE,
    Q7_SHIFT_RANGE,
    QRANGE,
    act_range,
    c_float,
    frac_bits,
    pow2_bits,
    qparams,
    quant_bounds,
    quantize_multiplier,
    reduce_multiplier,
    requantize,
    requantize64,
    shift_round,
)
from .packing import pair_layout, quad_layout
from .params import Params

INT4_MAX = 7  # int4 weights are symmetric in [-7, 7]

INT32_MAX = 2**31 - 1

BIAS64_LIMIT = 2**40  # int16 layers: |bias| bound, so that bias + accumulator stays below 2^47 (ec_requantize_s64)

@dataclass(kw_only=True)
class Stage(Params):
    """A Conv/Gemm layer's integer parameters: its integer weights and the output stage that turns the int32 (int16
    layers: int64) accumulator of sum((x - in_zp) * w) into the output: add the bias, requantize, clamp to
    [act_min, act_max]. One subclass per requantization arithmetic; finish() is its numpy twin (the specification
    of the C kernels) and struct() the C struct the kernels take. A new arithmetic (TFLite Micro's double rounding)
    is one more subclass with its own finish() and struct().

    Item access (q["bias"], "mult" in q) reads and writes the fields by name (Params)."""

    w: np.ndarray | None = None  # integer weights, ONNX layout (Conv [O][I/g][k...], Gemm [N][K])
    w_scale: np.ndarray | None = None  # the weights' scale per output channel
    bias: np.ndarray  # per output channel: int32 (int16 layers: int64)
    in_zp: int = 0
    out_zp: int = 0
    act_min: int
    act_max: int

    def finish(self, acc: np.ndarray, channel_axis: int) -> np.ndarray:
        raise NotImplementedError

    def struct(self, name: str) -> Struct:
        raise NotImplementedError

    def _biased(self, acc: np.ndarray, channel_axis: int) -> tuple[np.ndarray, list[int]]:
        shape = [1] * acc.ndim
        shape[channel_axis] = -1
        return acc + self.bias.reshape(shape), shape


@dataclass(kw_only=True)
class AffineStage(Stage):
    """int8 and int4 layers (ec_quant_s8): ec_requantize, a 32-bit multiplier and a shift per channel rounded once,
    plus the output zero point."""

    mult: np.ndarray  # int32 per channel
    shift: np.ndarray  # int32 per channel
    dtype: str = "int8"  # the output's element type

    def finish(self, acc: np.ndarray, channel_axis: int) -> np.ndarray:
        acc, shape = self._biased(acc, channel_axis)
        y = requantize(acc, self.mult.reshape(shape), self.shift.reshape(shape)) + self.out_zp
        return np.clip(y, self.act_min, self.act_max).astype(np.int8)

    def struct(self, name: str) -> Struct:
        return Struct(f"q_{name}", "ec_quant_s8", {
            "in_zp": self.in_zp, "out_zp": self.out_zp, "act_min": self.act_min, "act_max": self.act_max,
            "mult": Array(f"mult_{name}", self.mult, "int32_t"),
            "shift": Array(f"shift_{name}", self.shift, "int32_t"), "per_channel": 1,
        })


@dataclass(kw_only=True)
class Affine16Stage(AffineStage):
    """int16 (16x8) layers (ec_quant_s16): int64 bias and accumulator, 15-bit multipliers (ec_requantize_s64), zero
    points 0."""

    dtype: str = "int16"

    def finish(self, acc: np.ndarray, channel_axis: int) -> np.ndarray:
        acc, shape = self._biased(acc, channel_axis)
        y = requantize64(acc, self.mult.reshape(shape), self.shift.reshape(shape))
        return np.clip(y, self.act_min, self.act_max).astype(np.int16)

    def struct(self, name: str) -> Struct:
        return Struct(f"q_{name}", "ec_quant_s16", {
            "act_min": self.act_min, "act_max": self.act_max, "mult": Array(f"mult_{name}", self.mult, "int32_t"),
            "shift": Array(f"shift_{name}", self.shift, "int32_t"),
        })


@dataclass(kw_only=True)
class TflmAffineStage(AffineStage):
    """int8 layers of a graph with TFLite Micro's arithmetic (ops/tflm.py): TFLM's multipliers and bounds, and its
    double-rounding requantization (tflm.requantize); the same C struct, taken by the kernels' _tflm builds
    (tflm.retarget)."""

    arithmetic: str = tflm.TFLM  # the key tflm.uses_tflm reads

    def finish(self, acc: np.ndarray, channel_axis: int) -> np.ndarray:
        acc, shape = self._biased(acc, channel_axis)
        y = tflm.requantize(acc, self.mult.reshape(shape), self.shift.reshape(shape)) + self.out_zp
        return np.clip(y, self.act_min, self.act_max).astype(np.int8)


@dataclass(kw_only=True)
class TflmAffine16Stage(Affine16Stage):
    """16x8 layers of a graph with TFLM's arithmetic: TFLM's int64 requantization is requantize64 with TFLM's 15-bit
    multiplier (tflm.s16_output_stage, which also refuses what TFLM would truncate), so the numpy twin and the C
    struct are Affine16Stage's and the int16 kernels compute it as they are."""

    arithmetic: str = tflm.TFLM  # the key tflm.uses_tflm reads


@dataclass(kw_only=True)
class ShiftStage(Stage):
    """Q-format layers (ec_quant_q7): power-of-two scales, so the requantization is one rounding shift per channel
    (ec_shift_round); zero points 0."""

    shift: np.ndarray  # int8 per channel, in Q7_SHIFT_RANGE

    def finish(self, acc: np.ndarray, channel_axis: int) -> np.ndarray:
        acc, shape = self._biased(acc, channel_axis)
        return np.clip(shift_round(acc, self.shift.reshape(shape)), self.act_min, self.act_max).astype(np.int8)

    def struct(self, name: str) -> Struct:
        return Struct(f"q_{name}", "ec_quant_q7", {
            "act_min": self.act_min, "act_max": self.act_max,
            "shift": Array(f"shift_{name}", self.shift, "int8_t"), "per_channel": 1})


def as_stage(q: Stage | dict) -> Stage:
    """A Stage from its fields by name (a dict such as edgec.torch's); a Stage as it is. Without "mult": Q-format."""
    if isinstance(q, Stage):
        return q
    if "mult" not in q:
        cls: type[Stage] = ShiftStage
    elif tflm.uses_tflm(q):
        cls = TflmAffine16Stage if q.get("dtype") == "int16" else TflmAffineStage
    else:
        cls = Affine16Stage if q.get("dtype") == "int16" else AffineStage
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in q.items() if k in names})


def weight_scales(w: np.ndarray, qmax: int = 127) -> np.ndarray:
    """Symmetric per-output-channel scales for weights in [-qmax, qmax] (int8: 127, int4: 7)."""
    wmax = np.abs(w.reshape(w.shape[0], -1)).max(axis=1).astype(np.float64)
    scales = np.where(wmax > 0, np.maximum(wmax / qmax, MIN_SCALE), 1.0)  # (denormal weights: MIN_SCALE)
    return scales.astype(np.float32).astype(np.float64)  # as ONNX stores them


def pow2_weight_scales(w: np.ndarray) -> np.ndarray:
    """Q-format q7 weight scales per output channel: 2^-n with n = frac_bits(max |w|)."""
    return np.ldexp(1.0, -frac_bits(np.abs(w.reshape(w.shape[0], -1)).max(axis=1)))


def quantize_weights(w: np.ndarray, scales: np.ndarray | None = None,
                     scheme: str = "int8") -> tuple[np.ndarray, np.ndarray]:
    """Integer weights per output channel (axis 0) and their scales, with the given scales (an imported model's,
    or one per tensor) or our own: int8 in [-127, 127]; int4 in [-7, 7] (held in int8); qformat: power-of-two
    scales, [-128, 127]."""
    if scales is not None:
        ws = np.broadcast_to(scales, (w.shape[0],)).astype(np.float64)
    elif scheme == "qformat":
        ws = pow2_weight_scales(w)
    else:
        ws = weight_scales(w, INT4_MAX if scheme == "int4" else 127)
    lo, hi = {"int4": (-INT4_MAX, INT4_MAX), "qformat": (-128, 127)}.get(scheme, (-127, 127))
    shape = (-1,) + (1,) * (w.ndim - 1)
    return np.clip(np.round(w / ws.reshape(shape)), lo, hi).astype(np.int8), ws


def weight_scheme(node: Node) -> str:
    """How a layer's weights are quantized: q15 layers have qformat's power-of-two int8 weights."""
    return "qformat" if node.scheme == "q15" else node.scheme


def imported_scales(g: Graph, name: str, channel_axis: int) -> np.ndarray | None:
    """Per-output-channel weight scales that came with the model, if they are per tensor or along channel_axis."""
    t = g.tensors[name]
    if t.weight_scales is None:
        return None
    scales, axis = t.weight_scales
    return scales if scales.size == 1 or axis % t.data.ndim == channel_axis else None


def model_bias_ints(g: Graph, name: str | None, bias: np.ndarray | None, step: np.ndarray,
                    wide: bool = False) -> np.ndarray | None:
    """The int32 bias written in the model (a QDQ model's DequantizeLinear of int32), when its scale is the
    accumulator's step (input scale x weight scale, to float32 precision) and the float bias is still its value.
    wide (an int16 layer's int64 bias): the scale may also be the step times 2^k, k > 0 (bias_shifts), and the
    bias is the integers times 2^k."""
    t = g.tensors.get(name) if name else None
    if t is None or t.int_values is None or bias is None:
        return None
    ints, scales = t.int_values
    if ints.shape != bias.shape:
        return None
    k = np.round(np.log2(scales / step)).astype(np.int64) if wide else np.zeros(1, np.int64)
    if np.any(k < 0) or not np.allclose(scales, step * np.ldexp(1.0, k), rtol=1e-6, atol=0):
        return None
    if not np.array_equal((ints.astype(np.float32) * scales.astype(np.float32)).astype(np.float32),
                          bias.astype(np.float32)):
        return None
    return ints.astype(np.int64) << k if wide else ints.astype(np.int32)


def bias_shifts(bias: np.ndarray) -> np.ndarray:
    """Per channel, the k for which an int16 layer's int64 bias is a multiple of 2^k whose quotient fits int32
    (0 where the bias fits int32): a QDQ model holds it as int32 at 2^k times the accumulator's step."""
    mag = np.abs(bias.astype(np.float64))
    return np.where(mag > INT32_MAX, np.ceil(np.log2(np.maximum(mag, 1.0) / INT32_MAX)), 0).astype(np.int64)


Q7_MAX_SHIFT = 24  # Q-format: n_in + n_w - n_out at most

def layer_weights(node: Node, g: Graph, w: np.ndarray, bias: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """A Conv/Gemm's integer weights and scales (quantize_weights with the model's or our scales). Q-format caps each
    channel's fractional bits n_w so that the output shift stays at most Q7_MAX_SHIFT (the weights of a channel far
    below one output step lose bits they could not show) and the int32 bias at 2^-(n_in + n_w) stays below 2^30."""
    scales = imported_scales(g, node.inputs[1], 0)
    if node.scheme == "qformat":
        amax = np.abs(w.reshape(w.shape[0], -1)).max(axis=1)
        n_w = np.broadcast_to(pow2_bits(scales) if scales is not None else frac_bits(amax), (w.shape[0],))
        n_in, n_out = pow2_bits(qparams(g, node.inputs[0])[0]), pow2_bits(qparams(g, node.outputs[0])[0])
        cap = np.full(w.shape[0], n_out - n_in + Q7_MAX_SHIFT)
        if bias is not None:
            b = np.abs(np.broadcast_to(bias, (w.shape[0],)).astype(np.float64))
            with np.errstate(divide="ignore"):
                cap = np.where(b > 0, np.minimum(cap, np.floor(30 - np.log2(np.where(b > 0, b, 1.0))) - n_in), cap)
        scales = np.ldexp(1.0, -np.minimum(n_w, cap).astype(np.int64))
    elif bias is not None and node.dtype != "int16" and not (tflm.is_tflm(g) or g.tensors[node.inputs[2]].int_values):
        ws = quantize_weights(w, scales, weight_scheme(node))[1]
        scales = bias_fitting_scales(ws, bias, qparams(g, node.inputs[0])[0], w.reshape(w.shape[0], -1).shape[1])
    return quantize_weights(w, scales, weight_scheme(node))


def accumulator_bias_limit(columns: int) -> int:
    """The largest |int32 bias| for which bias + the layer's sum of products cannot leave int32 in any order of
    summation: each of the `columns` terms (x - zp) w, its zero-point part folded into the bias at build time
    included, is below 256 x 127 in magnitude."""
    return max(INT32_MAX - 256 * 127 * columns, INT32_MAX // 2)


def bias_fitting_scales(ws: np.ndarray, bias: np.ndarray, s_in: float, columns: int) -> np.ndarray:
    """Weight scales ws (per output channel), widened where the float bias at the accumulator's step s_in x ws would
    not fit accumulator_bias_limit (a large bias over tiny weights: channels batch norm switched off, a regression
    head's offset, all-zero weights at a per-tensor scale); TFLite's converter widens such scales too. Clipping
    the bias instead (as before) gave such channels a wrong constant output. Equal scales stay equal."""
    need = np.abs(np.broadcast_to(bias, ws.shape).astype(np.float64)) / (s_in * accumulator_bias_limit(columns))
    if np.all(ws >= need):
        return ws
    wide = np.maximum(ws, need * (1 + 2**-20)).astype(np.float32).astype(np.float64)
    return np.full_like(wide, wide.max()) if np.all(ws == ws[0]) else wide


def _check_model_bias(node: Node, wq: np.ndarray, bq: np.ndarray) -> None:
    """A quantized model's own int32 bias must leave the accumulator its headroom (accumulator_bias_limit): the C
    sums in int32, and a bias of 2^31 - 1 plus any product is undefined behaviour in C where the reference, in
    int64, is exact."""
    limit = accumulator_bias_limit(wq.reshape(wq.shape[0], -1).shape[1])
    if np.abs(bq.astype(np.int64)).max(initial=0) > limit:
        raise EdgecError(f"{node.op} (node '{node.name}'): the model's int32 bias reaches "
                         f"{int(np.abs(bq.astype(np.int64)).max()):,}, beyond {limit:,} where the int32 accumulator "
                         "could overflow; the file's quantization is broken (re-export it)")


def output_stage(node: Node, g: Graph, wq: np.ndarray, ws: np.ndarray, bias: np.ndarray | None, n_out: int) -> Stage:
    """The integer parameters of a Conv or Gemm with integer weights wq of scales ws: the integer bias (the model's
    own int32 when it has one), per-channel multipliers (Q-format: shifts) and clamp bounds.

    int8, int4: int32 bias and 32-bit multipliers. int16 (16x8): int64 bias and 15-bit multipliers for the 64-bit
    accumulator (reduce_multiplier)."""
    s_in, zp_in = qparams(g, node.inputs[0])
    s_out, zp_out = qparams(g, node.outputs[0])
    b = np.zeros(n_out) if bias is None else bias.astype(np.float64)
    model_bq = model_bias_ints(g, node.inputs[2] if len(node.inputs) > 2 else None, bias, s_in * ws,
                               wide=node.dtype == "int16")
    bias_t = g.tensors.get(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] else None
    if model_bq is None and tflm.is_tflm(g) and bias_t is not None and bias_t.int_values is not None:
        raise EdgecError(f"{node.op} (node '{node.name}'): the file's integer bias has a scale other than input "
                         "scale x weight scale, which TFLM's kernels assume; the file's quantization is broken "
                         "(re-export it)")
    if model_bq is None and node.dtype != "int16":
        bq = np.round(b / (s_in * ws))
        if np.abs(bq).max(initial=0) > INT32_MAX:  # (layer_weights widened the scales to prevent this)
            raise EdgecError(f"{node.op} (node '{node.name}'): its bias does not fit the int32 accumulator at "
                             "the model's weight scales; keep this layer float or int16 with --qconfig")
        bq = bq.astype(np.int32)
    else:
        bq = model_bq
    if model_bq is not None and node.dtype != "int16" and node.scheme != "qformat":
        _check_model_bias(node, wq, model_bq)
    if node.scheme == "qformat":
        if zp_in or zp_out:
            raise EdgecError(f"node '{node.name}': Q-format needs zero points 0 around it (input {zp_in}, output "
                             f"{zp_out}); use --quantize int8 for this model")
        shift = np.clip(pow2_bits(s_in) + pow2_bits(ws) - pow2_bits(s_out), *Q7_SHIFT_RANGE)
        act_min, act_max = quant_bounds(*act_range(node), s_out, 0)
        return ShiftStage(w=wq, w_scale=ws, bias=bq, act_min=act_min, act_max=act_max, shift=shift.astype(np.int8))
    if tflm.is_tflm(g) and node.dtype in ("int8", "int16"):  # a TFLite model: TFLM's multipliers and bounds
        return _tflm_stage(node, g, wq, ws, bq, model_bq)
    ms = [quantize_multiplier(s_in * float(s) / s_out) for s in ws]
    if node.dtype == "int16":
        if model_bq is None:
            bq = np.clip(np.round(b / (s_in * ws)), -BIAS64_LIMIT, BIAS64_LIMIT)
            k = np.ldexp(1.0, bias_shifts(bq))  # beyond int32: a multiple of 2^k (a step of 2^-31 of the bias)
            model_bq = (np.round(bq / k) * k).astype(np.int64)
        bq = model_bq.astype(np.int64)
        if max(s for _, s in ms) > 14:
            raise EdgecError(f"{node.op} (node '{node.name}'): its int16 requantization scale is above 2^14 (an "
                             "almost constant output?); keep this layer int8 with --qconfig")
        ms = [reduce_multiplier(m, s) for m, s in ms]
    act_min, act_max = quant_bounds(*act_range(node), s_out, zp_out, node.dtype)
    cls = Affine16Stage if node.dtype == "int16" else AffineStage
    return cls(w=wq, w_scale=ws, bias=bq, in_zp=zp_in, out_zp=zp_out, act_min=act_min, act_max=act_max,
               mult=np.array([m for m, _ in ms], np.int32), shift=np.array([s for _, s in ms], np.int32))


def _tflm_stage(node: Node, g: Graph, wq: np.ndarray, ws: np.ndarray, bq: np.ndarray,
                model_bq: np.ndarray | None) -> TflmAffineStage | TflmAffine16Stage:
    """The output stage of an int8 or 16x8 Conv/Gemm in a graph with TFLM's arithmetic: TFLM's effective scale
    (per-tensor FULLY_CONNECTED: fc_scale), multipliers (16x8: reduced to 15 bits as TFLM does) and fused-activation
    bounds."""
    s_in, zp_in = qparams(g, node.inputs[0])
    s_out, zp_out = qparams(g, node.outputs[0])
    scale = tflm.fc_scale if node.op != "Conv" and tflm.per_tensor_weights(g, node) else tflm.conv_scale
    ms = [tflm.quantize_multiplier(scale(s_in, float(s), s_out)) for s in ws]
    act_min, act_max = tflm.quant_bounds(*act_range(node), s_out, zp_out, *QRANGE[node.dtype])
    if node.dtype == "int16":
        bq, ms = tflm.s16_output_stage(g, node, model_bq, ms, wq)
        return TflmAffine16Stage(w=wq, w_scale=ws, bias=bq, act_min=act_min, act_max=act_max,
                                 mult=np.array([m for m, _ in ms], np.int32), shift=np.array([s for _, s in ms],
                                                                                            np.int32))
    return TflmAffineStage(w=wq, w_scale=ws, bias=bq, in_zp=zp_in, out_zp=zp_out, act_min=act_min, act_max=act_max,
                           mult=np.array([m for m, _ in ms], np.int32), shift=np.array([s for _, s in ms], np.int32))


def finish_s8(acc: np.ndarray, q: Stage | dict, channel_axis: int) -> np.ndarray:
    """The output stage of q (a Stage, or its fields by name) on the accumulators acc: Stage.finish."""
    return as_stage(q).finish(acc, channel_axis)


def quant_struct(name: str, q: Stage) -> Struct:
    """The C struct of an int8 or Q-format output stage (ec_quant_s8, ec_quant_q7)."""
    return q.struct(name)


def quant_struct_s16(name: str, q: Stage) -> Struct:
    """The C struct of an int16 output stage (ec_quant_s16)."""
    return q.struct(name)


def mve_matrix_stage(name: str, q: Stage, bias: np.ndarray) -> tuple[Struct, Array]:
    """The output stage struct and bias array of a Helium matrix kernel, in the pair layout."""
    # a padded channel's shift is -1, so that "every shift is negative" (the fast output stage) still holds
    return (replace(q, mult=pair_layout(q.mult), shift=pair_layout(q.shift, -1)).struct(name),
            Array(f"b_{name}", pair_layout(bias), "int32_t"))


def mve_quad_stage(name: str, q: Stage, bias: np.ndarray, n: int) -> tuple[Struct, Array]:
    """The output stage struct and bias array of the Helium convolution kernels (edgec_mve_gemm.h), in the quad
    layout; a padded channel's shift is -1, so that "every shift is negative" (the fast output stage) still holds."""
    return (replace(q, mult=quad_layout(q.mult, n), shift=quad_layout(q.shift, n, -1)).struct(name),
            Array(f"b_{name}", quad_layout(bias, n), "int32_t"))


def act_struct(name: str, node: Node) -> Struct:
    lo, hi = act_range(node)
    return Struct(f"act_{name}", "ec_act_f32", {"act_min": c_float(lo), "act_max": c_float(hi)})
