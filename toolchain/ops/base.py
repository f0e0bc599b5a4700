"""The op interface and the fixed-point arithmetic every int8 op shares.

Each op module defines one Op subclass that knows, for its ONNX op types: which attributes it supports, the float
reference (ONNX semantics, numpy, logical NCHW), how to quantize its parameters, the int8 reference (the
specification the C kernels must equal bit for bit) and the kernel calls it lowers to."""

from __future__ import annotations

import math

import numpy as np

from ..calls import Lowered
from ..ir import Graph, Node
from ..target import Target

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1


class Op:
    types: tuple[str, ...] = ()
    # The output has exactly the input's scale and zero point (pooling, reshapes, ...).
    keeps_quant: bool = False
    # A fused Relu/Clip may be folded into this op's output stage.
    fuses_activation: bool = False

    def check(self, node: Node, g: Graph) -> str | None:
        """Why this node cannot be compiled, or None."""
        return None

    def ref(self, node: Node, g: Graph, xs: list[np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    def quantize(self, node: Node, g: Graph) -> dict:
        """Integer parameters from the input/output scales (set on the tensors) and the float constants."""
        return {}

    def ref_s8(self, node: Node, g: Graph, xs: list[np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    def rescales(self, node: Node) -> bool:
        """Whether this keeps_quant op can also give its output a scale of its own (an imported model's)."""
        return False

    def output_quant(self, node: Node, g: Graph) -> tuple[float, int] | None:
        """A fixed output scale/zero point (softmax), or None to use the calibrated range."""
        return None

    def lower(self, node: Node, g: Graph, target: Target) -> Lowered:
        """Kernel calls for this node on the target (the target's features choose the kernel variant)."""
        raise NotImplementedError

    def macs(self, node: Node, g: Graph) -> int:
        return 0


REGISTRY: dict[str, Op] = {}


def register(op: Op) -> Op:
    for t in op.types:
        REGISTRY[t] = op
    return op


# ---- fixed-point helpers: numpy twin of ec_requantize in runtime_c/include/edgec.h ------------------------------


def quantize_multiplier(real: float) -> tuple[int, int]:
    """real ~= mult * 2^shift / 2^31 with mult in [2^30, 2^31) (TFLite's QuantizeMultiplier)."""
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    mult = int(round(q * (1 << 31)))
    if mult == 1 << 31:
        mult //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    if shift > 30:
        raise ValueError(f"requantization scale {real} is too large")
    return mult, shift


def requantize(x: np.ndarray, mult: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """Elementwise ec_requantize: x * mult * 2^shift / 2^31 rounded once to nearest (ties toward +infinity),
    saturated to int32; mult and shift broadcast against x. Returns int64."""
    x = np.asarray(x, dtype=np.int64)
    mult = np.asarray(mult, dtype=np.int64)
    total = 31 - np.asarray(shift, dtype=np.int64)
    r = (x * mult + (np.int64(1) << (total - 1))) >> total
    return np.clip(r, INT32_MIN, INT32_MAX)


def shift_round(x: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Elementwise ec_shift_round (runtime_c/include/edgec_lowbit.h): s > 0: x / 2^s rounded half up; s <= 0:
    x clamped to [-256, 255], times 2^-s. Returns int64."""
    x = np.asarray(x, dtype=np.int64)
    s = np.asarray(s, dtype=np.int64)
    right = (x >> np.maximum(s, 1)) + ((x >> np.maximum(s - 1, 0)) & 1)
    left = np.clip(x, -256, 255) << np.maximum(-s, 0)
    return np.where(s > 0, right, left)


Q7_SHIFT_RANGE = (-23, 31)  # the shifts ec_shift_round takes


def frac_bits(amax: np.ndarray | float) -> np.ndarray:
    """Q-format q7: the fractional bits n of the Qm.n format (m = 7 - n integer bits) covering [-amax, amax]:
    n = 7 - ceil(log2(amax)), so the scale is 2^-n (NNoM's rule; amax itself may clip by at most one step when it
    is a power of two). 7 for amax = 0."""
    a = np.asarray(amax, dtype=np.float64)
    with np.errstate(divide="ignore"):
        n = 7 - np.ceil(np.log2(np.where(a > 0, a, 1.0)))
    return np.where(a > 0, n, 7).astype(np.int64)


def pow2_bits(scale: np.ndarray | float) -> np.ndarray:
    """n for scales that are exactly 2^-n."""
    s = np.asarray(scale, dtype=np.float64)
    n = np.round(-np.log2(s)).astype(np.int64)
    assert np.all(np.ldexp(1.0, -n) == s), f"not a power-of-two scale: {scale}"
    return n


def quant_bounds(lo: float, hi: float, scale: float, zp: int) -> tuple[int, int]:
    """int8 clamp bounds of a fused activation range [lo, hi] (infinite = no bound)."""
    qlo = -128 if math.isinf(lo) else max(-128, zp + int(round(lo / scale)))
    qhi = 127 if math.isinf(hi) else min(127, zp + int(round(hi / scale)))
    return qlo, qhi


def act_range(node: Node) -> tuple[float, float]:
    return node.attrs.get("act", (-math.inf, math.inf))


def apply_act(y: np.ndarray, node: Node) -> np.ndarray:
    lo, hi = act_range(node)
    return np.clip(y, lo, hi).astype(np.float32) if (lo, hi) != (-math.inf, math.inf) else y.astype(np.float32)


def qparams(g: Graph, name: str) -> tuple[float, int]:
    t = g.tensors[name]
    assert t.scale is not None and t.zero_point is not None, f"tensor {name} is not quantized"
    return t.scale, t.zero_point


def ctype(g: Graph) -> str:
    return "int8_t" if g.quantized else "float"


def c_float(x: float) -> float:
    return float(np.float32(x))
