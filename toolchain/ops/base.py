"""The op interface and the fixed-point arithmetic every int8 op shares.

Each op module defines one Op subclass that knows, for its ONNX op types: which attributes it supports, the float
reference (ONNX semantics, numpy, logical NCHW), how to quantize its parameters, the int8 reference (the
specification the C kernels must equal bit for bit) and the kernel calls it lowers to."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..calls import Lowered
from ..ir import CTYPES, NUMPY_TYPES, Graph, Node
from ..target import Target
from .params import Params

INT32_MIN = -(2**31)
MAX_DIMS = 6  # EC_MAX_DIMS: the rank the runtime's broadcast and copy kernels take
INT32_MAX = 2**31 - 1
# The smallest scale of a quantized tensor or weight: the smallest normal float32. A range so narrow that its step
# would be smaller (denormal weights, an almost-zero activation) gets this step, so its values quantize to 0 or a few
# steps; a step of 0 (float32 underflow) would divide by zero, and 1 / scale stays finite in float32.
MIN_SCALE = float(np.finfo(np.float32).tiny)


@dataclass
class LowerContext:
    """What lowering reads besides the node and the graph: the target (its features choose the kernel variant), the
    build's --sparse-kernels choice ("auto": the cost model of toolchain/sparse.py, "dense", "rows", "gather",
    "nm"), and the note of the node being lowered (the build report's; the sparse variant's cost-model note)."""

    target: Target
    sparse_kernels: str = "auto"
    note: str = ""


# A kernel variant of an op: (op, node, graph, context, the op's per-node facts) -> its calls, or None when it does
# not apply (then the next variant of the op's table is tried).
Variant = Callable[[Any, Node, Graph, LowerContext, Any], "Lowered | None"]


class Op:
    types: tuple[str, ...] = ()
    # The kernel variants in order of preference (sparse, Helium, DSP, NEON, ..., portable last): lower() returns
    # the first that applies. Ops with one kernel override lower() instead.
    variants: tuple[Variant, ...] = ()
    # The output has exactly the input's scale and zero point (pooling, reshapes, ...).
    keeps_quant: bool = False
    # A fused Relu/Clip may be folded into this op's output stage.
    fuses_activation: bool = False
    # Traits the passes read instead of op names.
    # The byte order it works in (passes/layout.py): "channels_last" (runs NHWC: convolution, pooling),
    # "follows_input" (works in its first input's order: elementwise ops, Softmax, Concat, Pad), "flatten" (Reshape:
    # keeps a channels-last tensor flattened for "rows" consumers), "rows" (Gemm: reads a flattened channels-last
    # tensor by reordering its weight columns), "plain" (reads and writes the logical order).
    layout: str = "plain"
    # Channel-wise for pruning (prune.py): output channel c depends on input channel c only "always", or only when
    # its constant operands are scalars or per channel ("consts"); None: not channel-wise.
    channelwise: str | None = None
    # A layer with constant weights, output channels first (Conv, Gemm): pruned, quantized per output channel,
    # bias-corrected, chosen per layer by --quantize auto, exported with its integer bias.
    weighted: bool = False
    # The axis of a weighted layer's output that holds its output channels (Conv 1, Gemm -1).
    channel_axis: int = 1
    # Its output is a probability per class (Softmax): a model output it gives has a top-1 worth keeping.
    classifies: bool = False
    # ref, ref_s8 and ref_f32 treat axis 0 as independent samples of any count (reference.run_batch lays samples
    # end to end along it); ops without it run sample by sample there.
    batched: bool = False

    def check(self, node: Node, g: Graph) -> str | None:
        """Why this node cannot be compiled, or None."""
        return None

    def ref(self, node: Node, g: Graph, xs: list[np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    def ref_f32(self, node: Node, g: Graph, xs: list[np.ndarray]) -> np.ndarray:
        """The float layer of a mixed graph: float32 arithmetic in the C kernel's order where the op defines it
        (then the C equals it bit for bit), otherwise the float reference rounded to float32."""
        return np.asarray(self.ref(node, g, xs)).astype(np.float32)

    def unsupported(self, node: Node, g: Graph, scheme: str) -> str | None:
        """Why this node cannot be quantized with the scheme (toolchain/quantize.py SCHEMES), or None."""
        return None

    def quantize(self, node: Node, g: Graph) -> Params:
        """Integer parameters from the input/output scales (set on the tensors) and the float constants: the op's
        own Params subclass; ops that only move data have none (an empty Params)."""
        return Params()

    def ref_s8(self, node: Node, g: Graph, xs: list[np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    def rescales(self, node: Node) -> bool:
        """Whether this keeps_quant op can also give its output a scale of its own (an imported model's)."""
        return False

    def output_quant(self, node: Node, g: Graph) -> tuple[float, int] | None:
        """A fixed output scale/zero point (softmax), or None to use the calibrated range."""
        return None

    def export_const(self, node: Node, g: Graph, k: int) -> tuple[np.ndarray, Any, Any] | None:
        """QDQ export (toolchain/export.py) of an integer node's constant input k: (integers, scale, zero point)
        behind a DequantizeLinear, or None to write it as it is (Conv/Gemm weights and bias: export.py)."""
        return None

    def facts(self, node: Node, g: Graph, ctx: LowerContext) -> Any:
        """What every variant of this node needs (geometry, integer weights, ...), computed once."""
        return None

    def lower(self, node: Node, g: Graph, ctx: LowerContext) -> Lowered:
        """Kernel calls for this node: the first variant that applies; the node's note is set here."""
        ctx.note = ""
        facts = self.facts(node, g, ctx)
        for variant in self.variants:
            low = variant(self, node, g, ctx, facts)
            if low is not None:
                low.note = ctx.note
                return low
        raise NotImplementedError(f"{node.op}: no kernel variant lowers node '{node.name}'")

    def macs(self, node: Node, g: Graph) -> int:
        return 0

    def row_window(self, node: Node, g: Graph) -> tuple[int, int, int] | None:
        """Row-local ops on 4-D (N, C, H, W) tensors, which toolchain/schedule.py runs on strips of rows: (span,
        stride, pad_top) such that output row y reads rows [y * stride - pad_top, y * stride - pad_top + span) of
        every activation input. None: the op cannot run on a strip."""
        return None

    def strip_attrs(self, node: Node, g: Graph, pad_top: int, pad_bottom: int) -> dict:
        """The node's attributes for a strip of rows whose window padding is pad_top / pad_bottom (ops whose
        row_window span is 1 keep theirs)."""
        return dict(node.attrs)

    def layout_role(self, node: Node, g: Graph) -> str:
        """The node's `layout` trait (passes/layout.py); ops whose role depends on their attributes override it."""
        return self.layout

    def clamp_range(self, node: Node) -> tuple[float, float] | None:
        """(lo, hi) when the op only clamps its input to that range (Relu, Clip): passes/fuse.py folds it into a
        producer that fuses_activation. None otherwise."""
        return None

    # ---- ONNX export (toolchain/export.py) ---------------------------------------------------------------------

    def export_attrs(self, node: Node) -> dict:
        """The node's attributes in its ONNX export."""
        return {}

    def export_inputs(self, node: Node, g: Graph, w: Any) -> list[str]:
        """Inputs its ONNX node takes beyond the IR node's (constants made with w.init; w: export.py's writer)."""
        return []

    def export_node(self, node: Node, g: Graph, w: Any) -> bool:
        """Write the node into the export itself (w: export.py's writer) and return True; False: export.py writes
        one ONNX node of the same type with the node's inputs, export_inputs and export_attrs."""
        return False

    def min_opset(self, node: Node) -> int:
        """The least ONNX opset that has this node's op (0: any)."""
        return 0

    def inserted(self, node: Node) -> bool:
        """Whether edgec inserted the node (a Convert between layers of two schemes, a LayoutCast): not a layer of
        the model."""
        return False

    # ---- weighted layers (weighted = True): what pruning, bias correction and weight rounding read ----------

    def groups(self, node: Node) -> int:
        """The number of groups its weights split into (a grouped or depthwise convolution's group)."""
        return 1

    def weight_matrix(self, node: Node, g: Graph) -> np.ndarray:
        """The float weights as [O][K] (K in the order input_rows' columns use)."""
        raise NotImplementedError(node.op)

    def input_rows(self, node: Node, g: Graph, x: np.ndarray) -> list[np.ndarray]:
        """The float input x as the rows that multiply weight_matrix: per group, [output positions, K / groups]."""
        raise NotImplementedError(node.op)

    def input_means(self, node: Node, g: Graph, x: np.ndarray) -> list[np.ndarray]:
        """The mean of input_rows per group ([K / groups] each): what multiplies the weights, on average."""
        return [r.mean(axis=0) for r in self.input_rows(node, g, x)]

    def bias_vector(self, node: Node, g: Graph) -> np.ndarray | None:
        """The float bias per output channel, or None."""
        raise NotImplementedError(node.op)

    def output_rows(self, y: np.ndarray) -> np.ndarray:
        """An output as [output positions, O] (output channels last)."""
        raise NotImplementedError

    def ref_with_weights(self, node: Node, g: Graph, w: np.ndarray, b: np.ndarray | None,
                         x: np.ndarray) -> np.ndarray:
        """The float op without its fused activation, with weights w (the layout of its quantized weights) and
        bias b instead of its own."""
        raise NotImplementedError(node.op)

    def reads_channels(self, node: Node, g: Graph, tensor: str, channels: int) -> str | None:
        """How this node reads the channels of `tensor` when filter pruning removes some of them (prune.py):
        "inputs" (its weights lose the same input channels), "depthwise" (it loses the same channels, weights and
        outputs), "flatten" (a Reshape to rows whose readers lose the channels' columns), None (cannot follow)."""
        return None

    def set_weights(self, node: Node, g: Graph, w: np.ndarray, b: np.ndarray | None) -> None:
        """Give a weighted layer new float weights w ([O][K], weight_matrix's layout) and bias b ([O], or None when
        it has none), as new constants (cross-layer equalization, toolchain/equalize.py)."""
        raise NotImplementedError(node.op)


# ---- shape and attribute checks shared by the ops' check methods (ONNX semantics, before lowering) -------------


def present(names: list[str]) -> list[str]:
    """The inputs or outputs a node gives: trailing optional ones left empty are dropped."""
    names = list(names)
    while names and not names[-1]:
        names.pop()
    return names


def check_io(node: Node, g: Graph, inputs: tuple[int, int], outputs: tuple[int, int] = (1, 1)) -> str | None:
    """The number of inputs and outputs is within the (least, most) bounds, and every input has a known shape."""
    ins, outs = present(node.inputs), present(node.outputs)
    if not inputs[0] <= len(ins) <= inputs[1]:
        want = str(inputs[0]) if inputs[0] == inputs[1] else f"{inputs[0]} to {inputs[1]}"
        return f"{len(ins)} inputs; the op takes {want}"
    if not outputs[0] <= len(outs) <= outputs[1]:
        return f"{len(outs)} outputs; edgec computes {outputs[1] if outputs[0] == outputs[1] else outputs}"
    missing = [i for i in ins if i and i not in g.tensors]
    if missing:
        return f"input '{missing[0]}' has no known float32 shape (an integer or dynamic tensor edgec cannot compute)"
    if any(not o for o in outs[:1]):
        return "its first output is not used"
    return None


def check_finite_attrs(node: Node, *names: str) -> str | None:
    """Float attributes that must be finite numbers."""
    for k in names:
        v = node.attrs.get(k)
        if v is not None and not (isinstance(v, (int, float)) and math.isfinite(v)):
            return f"attribute {k}={v!r} is not a finite number"
    return None


def check_act(node: Node) -> str | None:
    """A fused activation range (Relu/Clip folded into the node) that is not empty."""
    lo, hi = act_range(node)
    if math.isnan(lo) or math.isnan(hi) or lo > hi:
        return f"the fused activation range [{lo}, {hi}] is empty (a Clip with min > max?)"
    return None


def broadcast_shapes(*shapes: tuple[int, ...]) -> tuple[int, ...] | None:
    """ONNX multidirectional broadcasting of the shapes, or None if they do not broadcast."""
    rank = max(len(s) for s in shapes)
    out = []
    for d in range(rank):
        dims = {s[d - rank + len(s)] for s in shapes if d - rank + len(s) >= 0} - {1}
        if len(dims) > 1:
            return None
        out.append(dims.pop() if dims else 1)
    return tuple(out)


def check_broadcast(node: Node, g: Graph, unidirectional: bool = False) -> str | None:
    """The inputs broadcast (ONNX multidirectional rules; unidirectional: onto the first input) to the output shape,
    of a rank the kernels take (EC_MAX_DIMS)."""
    shapes = [g.shape(i) for i in node.inputs]
    want = broadcast_shapes(*shapes)
    if want is None or (unidirectional and want != shapes[0]):
        return f"input shapes {' and '.join(str(list(s)) for s in shapes)} do not broadcast"
    if tuple(g.shape(node.outputs[0])) != want:
        return f"output shape {list(g.shape(node.outputs[0]))} differs from the broadcast shape {list(want)}"
    if len(want) > MAX_DIMS:
        return f"rank {len(want)} is above {MAX_DIMS}"
    return None


def check_axis(axis: object, rank: int, name: str = "axis", end: bool = False) -> str | None:
    """An axis in [-rank, rank - 1] ([-rank - 1, rank] with end=True, e.g. Flatten's, Unsqueeze's)."""
    top = rank + 1 if end else rank
    if not isinstance(axis, (int, np.integer)) or not -top <= int(axis) < top:
        return f"{name}={axis!r} is out of range for a rank-{rank} input"
    return None


def check_same_shape(node: Node, g: Graph) -> str | None:
    """The output has the shape of the first input (elementwise ops)."""
    a, y = g.shape(node.inputs[0]), g.shape(node.outputs[0])
    return None if a == y else f"output shape {list(y)} differs from the input's {list(a)}"


REGISTRY: dict[str, Op] = {}


def op_of(node: Node) -> Op | None:
    """The op class instance of a node (None for an op edgec does not compile, before the checks)."""
    return REGISTRY.get(node.op)


def is_weighted(node: Node) -> bool:
    """Whether the node is a layer with constant weights (Op.weighted)."""
    op = REGISTRY.get(node.op)
    return op is not None and op.weighted


def register(op: Op) -> Op:
    for t in op.types:
        REGISTRY[t] = op
    return op


# ---- fixed-point helpers: numpy twin of ec_requantize in runtime_c/include/edgec.h ------------------------------


def quantize_multiplier(real: float, rounding=round) -> tuple[int, int]:
    """real ~= mult * 2^shift / 2^31 with mult in [2^30, 2^31) (TFLite's QuantizeMultiplier). rounding: of the
    31-bit fraction; edgec's own arithmetic rounds ties to even (Python's round), TFLM's away from zero
    (ops/tflm.py)."""
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    mult = int(rounding(q * (1 << 31)))
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


QRANGE = {"int8": (-128, 127), "int16": (-32768, 32767)}


def quant_bounds(lo: float, hi: float, scale: float, zp: int, dtype: str = "int8") -> tuple[int, int]:
    """Integer clamp bounds of a fused activation range [lo, hi] (infinite = no bound) for int8 or int16."""
    qmin, qmax = QRANGE[dtype]
    qlo = qmin if math.isinf(lo) else max(qmin, zp + int(round(lo / scale)))
    qhi = qmax if math.isinf(hi) else min(qmax, zp + int(round(hi / scale)))
    return qlo, qhi


# ---- int16 (16x8) helpers ---------------------------------------------------------------------------------------


def reduce_multiplier(mult: int, shift: int) -> tuple[int, int]:
    """The 15-bit multiplier of a 64-bit accumulator: mult / 2^16 rounded, so that acc * mult fits int64 for
    |acc| < 2^47 (TFLite's 16x8 convolution does the same). Returns (mult16, shift); shift must be <= 14."""
    if shift > 14:
        raise ValueError(f"requantization shift {shift} is too large for a 64-bit accumulator")
    return (mult + (1 << 15)) >> 16, shift


def requantize64(x: np.ndarray, mult16: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """Twin of ec_requantize_s64: (x * mult16 + 2^(t - 1)) >> t with t = 15 - shift (round half up). int64."""
    x = np.asarray(x, dtype=np.int64)
    t = 15 - np.asarray(shift, dtype=np.int64)
    return (x * np.asarray(mult16, dtype=np.int64) + (np.int64(1) << (t - 1))) >> t


INTERP_BITS = 7  # 65536 int16 inputs / 512 segments of 128


def interp_table(f, s_in: float, zp_in: int, s_out: float, zp_out: int, qmin: int = -32768,
                 qmax: int = 32767) -> np.ndarray:
    """513 int16 knots of f for ec_lut_s16: knot k at input q = -32768 + 128 k, quantized and clamped."""
    q = np.arange(513, dtype=np.int64) * (1 << INTERP_BITS) - 32768
    y = f((q - zp_in) * s_in)
    return np.clip(np.round(y / s_out) + zp_out, qmin, qmax).astype(np.int16)


def interp_lookup(table: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Twin of ec_interp_s16: linear interpolation between the knots around int16 x (arithmetic shift rounding)."""
    u = np.asarray(x, dtype=np.int64) + 32768
    i, frac = u >> INTERP_BITS, u & ((1 << INTERP_BITS) - 1)
    t = table.astype(np.int64)
    return t[i] + (((t[i + 1] - t[i]) * frac + (1 << (INTERP_BITS - 1))) >> INTERP_BITS)


def pick(attrs: dict, names: tuple[str, ...]) -> dict:
    """The attributes among names that attrs has."""
    return {k: v for k, v in attrs.items() if k in names}


def act_range(node: Node) -> tuple[float, float]:
    return node.attrs.get("act", (-math.inf, math.inf))


def apply_act(y: np.ndarray, node: Node) -> np.ndarray:
    lo, hi = act_range(node)
    return np.clip(y, lo, hi).astype(np.float32) if (lo, hi) != (-math.inf, math.inf) else y.astype(np.float32)


def qparams(g: Graph, name: str) -> tuple[float, int]:
    t = g.tensors[name]
    assert t.scale is not None and t.zero_point is not None, f"tensor {name} is not quantized"
    return t.scale, t.zero_point


def nctype(node: Node) -> str:
    """The C element type of a node's activations."""
    return CTYPES[node.dtype]


def is_int(node: Node) -> bool:
    return node.dtype != "float32"


def out_dtype(node: Node) -> type:
    return NUMPY_TYPES[node.dtype]


def c_float(x: float) -> float:
    return float(np.float32(x))
