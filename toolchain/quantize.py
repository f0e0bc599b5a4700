"""Static post-training quantization: calibrate activation ranges, then let every op derive its integers.

Schemes (QuantOptions.scheme for the whole model, per node in Node.scheme; Node.dtype and Tensor.dtype are the
element types they give):
- int8: weights int8 symmetric per output channel, activations int8 asymmetric per tensor from the calibrated range,
  bias int32 with scale input_scale * weight_scale, requantization with an int32 multiplier and shift, rounded once.
- qformat: Q-format q7 fixed point: every scale a power of two 2^-n (Qm.n, zero point 0) chosen from the
  calibrated range, weights too (per channel or per tensor), bias int32 at 2^-(n_in + n_w); Conv and Gemm
  requantize with a rounding shift only.
- int4: as int8, with int4 weights symmetric per output channel in [-7, 7], packed two per byte in flash.
- int16 (16x8): weights as int8, activations int16 symmetric (zero point 0); Conv/Gemm accumulate in int64 with an
  int64 bias and requantize with a 15-bit multiplier (ec_requantize_s64); other ops as in int8 with int16 bounds.
- q15 (--quantize qformat --qbits 16): the int16 path with Q-format scales: activations Qm.n with m + n = 15
  (n = 15 - ceil(log2(max |x|))), weights as qformat's (power-of-two per channel, int8); every multiplier is then
  2^14 and requantization a rounding shift.
Every layer can have its own scheme, float included (QuantOptions.layers, from --qconfig); a Convert node is
inserted wherever a tensor is read by a layer of another element type or scale family (affine, power of two)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .calibrate import StatsCache, calibrate, finite_float32, float_activations
from .console import track
from .equalize import equalize
from .errors import EdgecError
from .ir import Graph, Node, Tensor
from .ops import REGISTRY
from .ops.base import MIN_SCALE, c_float, frac_bits, is_weighted
from .ops.output_stage import BIAS64_LIMIT, INT4_MAX
from .reference import dequantize, quantize_input, run_samples
from .rounding import refine_int4_weights, round_weights

SCHEMES = ("int8", "qformat", "int4", "int16", "q15")  # the --quantize values that quantize (besides none)
LAYER_SCHEMES = (*SCHEMES, "float")  # what a --qconfig layer entry may say
DTYPES = {"int8": "int8", "qformat": "int8", "int4": "int8", "int16": "int16", "q15": "int16", "float": "float32"}
# Tensors of one family share element type and kind of scale; between families a Convert is needed.
FAMILIES = {"int8": "int8", "int4": "int8", "qformat": "q7", "int16": "int16", "q15": "q15", "float": "float32"}


@dataclass
class QuantOptions:
    scheme: str = "int8"  # one of SCHEMES: the scheme of the layers `layers` does not name
    per_channel: bool = True  # weights: one scale per output channel, or one per tensor
    symmetric: bool = False  # int8 activations: zero point 0 (int16 and qformat always are)
    bias_correction: bool = False  # shift biases so each layer's mean output matches float on calibration data
    weight_rounding: str = "nearest"  # int8 weights: "nearest", or "gptq" (error-compensating, rounding.py)
    equalize: bool = False  # cross-layer equalization of the float weights before calibration (equalize.py)
    layers: dict[str, str] = field(default_factory=dict)  # node name -> one of LAYER_SCHEMES (--qconfig)
    # model input name -> (low, high) it is quantized over instead of its calibrated range (--input-range)
    input_ranges: dict[str, tuple[float, float]] = field(default_factory=dict)


# Activation ranges (calibrated or --input-range) at most this in magnitude: scales, their products and the
# multipliers stay finite in float32 well past it (inputs of 1e20 quantize and run bit-exact; 1e41 overflowed).
RANGE_LIMIT = 2.0**100


def parse_input_ranges(specs: list[str] | None) -> dict[str, tuple[float, float]]:
    """Parse ['NAME=LO,HI', ...] (--input-range) into {NAME: (LO, HI)}."""
    ranges: dict[str, tuple[float, float]] = {}
    for spec in specs or []:
        name, sep, bounds = spec.partition("=")
        try:
            lo, hi = (float(b) for b in bounds.split(","))
        except ValueError:
            lo = hi = math.nan
        if not sep or not name or not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise EdgecError(f"--input-range '{spec}' is not of the form NAME=LO,HI with finite LO < HI "
                             "(e.g. input=-123.4,25.7)")
        if max(abs(lo), abs(hi)) > RANGE_LIMIT:
            raise EdgecError(f"--input-range '{spec}': a bound beyond ±{RANGE_LIMIT:.3g}, which integer scales "
                             "cannot carry; scale the model's input down")
        ranges[name] = (lo, hi)
    return ranges


def load_qconfig(path, g: Graph) -> tuple[str | None, dict[str, str]]:
    """A --qconfig TOML file: an optional `default = "int8"` and a [layers] table of node name = scheme
    (LAYER_SCHEMES). Returns (default, layers); an unreadable file, an unknown layer or scheme is a user error."""
    import tomllib

    try:
        doc = tomllib.loads(path.read_text())
    except (OSError, ValueError, RecursionError) as exc:  # (TOMLDecodeError, UnicodeDecodeError; deep nesting)
        raise EdgecError(f"{path}: not a readable TOML quantization config ({exc})") from None
    unknown_keys = sorted(set(doc) - {"default", "layers"})
    if unknown_keys:
        raise EdgecError(f"{path}: unknown key(s) {', '.join(unknown_keys)}; a qconfig has `default = \"int8\"` "
                         "and a [layers] table")
    default = doc.get("default")
    if default is not None and default not in SCHEMES:
        raise EdgecError(f"{path}: default = {default!r}: choose one of {', '.join(SCHEMES)}")
    layers = doc.get("layers", {})
    if not isinstance(layers, dict):
        raise EdgecError(f"{path}: [layers] must be a table of layer name = scheme")
    names = [n.name for n in g.nodes]
    for name, scheme in layers.items():
        if scheme not in LAYER_SCHEMES:
            raise EdgecError(f"{path}: layer {name!r} = {scheme!r}: unknown scheme; choose one of "
                             f"{', '.join(LAYER_SCHEMES)}")
        if name not in names:
            raise EdgecError(f"{path}: no layer named {name!r} in the model (fused activations are part of the "
                             f"layer before them); layers: {', '.join(map(repr, names))}")
    return default, dict(layers)


def int16_params(lo: float, hi: float) -> tuple[float, int]:
    """Symmetric int16 scale covering [lo, hi] (zero point 0)."""
    bound = max(abs(lo), abs(hi))
    return max(c_float(bound / 32767.0 if bound > 0 else 1.0 / 32767.0), MIN_SCALE), 0


def affine_params(lo: float, hi: float, symmetric: bool = False) -> tuple[float, int]:
    """int8 scale and zero point covering [lo, hi] and 0 exactly (zero point 0 when symmetric)."""
    if symmetric:
        bound = max(abs(lo), abs(hi))
        return max(c_float(bound / 127.0 if bound > 0 else 1.0 / 127.0), MIN_SCALE), 0
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = max(c_float((hi - lo) / 255.0 if hi > lo else 1.0 / 255.0), MIN_SCALE)
    zp = int(np.clip(round(-128 - lo / scale), -128, 127))
    return float(scale), zp


def pow2_params(lo: float, hi: float, bits: int = 8) -> tuple[float, int]:
    """Q-format scale 2^-n and zero point 0: q7 (bits 8, n = frac_bits of the larger magnitude) or q15 (bits 16,
    n = frac_bits + 8, i.e. 15 - ceil(log2(max |x|)))."""
    return float(np.ldexp(1.0, -int(frac_bits(max(abs(lo), abs(hi)))) - (bits - 8))), 0


def qformat_name(scale: float | None, zp: int | None, bits: int = 8) -> str | None:
    """Qm.n of a power-of-two scale 2^-n with zero point 0 (m = bits - 1 - n; m or n may be negative), UQm.n for
    zero point -128 (softmax's [0, 1) output, UQ0.8); None otherwise."""
    if scale is None or scale <= 0:
        return None
    n = -math.log2(scale)
    if n != round(n) or zp not in (0, -128):
        return None
    n = int(round(n))
    return f"Q{bits - 1 - n}.{n}" if zp == 0 else f"UQ{bits - n}.{n}"


def needs_calibration(g: Graph, layers: dict[str, str] | None = None) -> bool:
    """Whether some integer activation has no scale from the model itself (an imported QDQ model has them all);
    layers: the per-layer schemes (outputs of float layers, and inputs only float layers read, need none)."""
    producers = {n.outputs[0]: n for n in g.nodes}
    floats = {n for n, scheme in (layers or {}).items() if scheme == "float"}
    for name in g.activations():
        node = producers.get(name)
        op = REGISTRY[node.op] if node else None
        if op and (op.keeps_quant or op.output_quant(node, g) is not None):
            continue
        readers = g.consumers(name)
        if (node.name in floats) if node else (readers and readers[0].name in floats):
            continue
        if g.tensors[name].fixed_quant is None:
            return True
    return False


def is_prequantized(g: Graph) -> bool:
    return any(g.tensors[n].fixed_quant is not None for n in g.activations())


def _pow2(scales: np.ndarray) -> bool:
    s = np.asarray(scales, np.float64)
    return bool(np.all(s > 0) and np.all(np.ldexp(1.0, np.round(np.log2(s)).astype(np.int64)) == s))


def prequantized_layers(g: Graph) -> dict[str, str]:
    """The per-layer schemes of a mixed QDQ model written by edgec quantize (its metadata; {} for other models).
    Checked like a --qconfig: every name a layer of g, every scheme one of LAYER_SCHEMES."""
    layers = g.info.get("layer_schemes") or {}
    names = {n.name for n in g.nodes}
    bad = [f"{k} = {v!r}" for k, v in layers.items() if k not in names or v not in LAYER_SCHEMES]
    if bad:
        raise EdgecError(f"{g.name}: the model's layer schemes (metadata written by edgec quantize) do not match its "
                         f"layers: {', '.join(bad)}; write the model again with edgec quantize")
    return dict(layers)


def prequantized_scheme(g: Graph) -> str:
    """The scheme an imported QDQ model was quantized in (one edgec.torch exports too): a mixed model written by
    edgec quantize: its most common integer layer scheme (prequantized_layers gives every layer's); int16 (16x8)
    when its activations are int16 (q15 when their scales and the weights', if any, are powers of two with zero
    point 0), qformat when every scale is a power of two with zero point 0, int4 when every imported weight lies in
    [-7, 7], else int8."""
    mixed = [s for s in prequantized_layers(g).values() if s != "float"]
    if mixed:
        return max(SCHEMES, key=mixed.count)
    fixed = [g.tensors[n] for n in list(g.inputs) + g.activations() if g.tensors[n].fixed_quant]
    if g.arithmetic == "tflm":  # a quantized .tflite: int8, or 16x8 where its activations are int16
        return "int16" if any(t.fixed_dtype == "int16" for t in fixed) else "int8"
    acts = [t.fixed_quant for t in fixed]
    layers = [g.tensors[n.inputs[1]] for n in g.nodes if is_weighted(n)]
    weights = [t for t in layers if t.weight_scales is not None]
    pow2 = all(zp == 0 and _pow2(np.array([s])) for s, zp in acts) and all(_pow2(t.weight_scales[0]) for t in weights)
    if any(t.fixed_dtype == "int16" for t in fixed):  # (load_onnx refuses models that mix int8 and int16)
        return "q15" if pow2 and len(weights) == len(layers) else "int16"
    if not acts or not weights or len(weights) < len(layers):
        return "int8"
    if pow2:
        return "qformat"
    for t in weights:
        scales, axis = t.weight_scales
        shape = [1] * t.data.ndim
        if scales.size > 1:
            shape[axis % t.data.ndim] = -1
        if np.abs(np.round(t.data / scales.reshape(shape))).max() > INT4_MAX:
            return "int8"
    return "int4"


def assign_schemes(g: Graph, opts: QuantOptions) -> dict[str, str]:
    """Each node's scheme and element type: its --qconfig entry, else its input's for ops that keep the input's
    format (pooling, reshapes, pads; reading a graph input: their reader's --qconfig entry), else opts.scheme. Graph
    inputs take their first reader's. Returns the family (FAMILIES) of every activation."""
    if opts.scheme not in SCHEMES:
        raise EdgecError(f"--quantize {opts.scheme}: choose one of none, {', '.join(SCHEMES)}")
    producer: dict[str, Node] = {}
    problems = []
    for node in g.nodes:
        op = REGISTRY[node.op]
        if node.name in opts.layers:
            node.scheme = opts.layers[node.name]
        elif op.keeps_quant and node.inputs[0] in producer:
            node.scheme = producer[node.inputs[0]].scheme
        elif op.keeps_quant and node.inputs[0] in g.inputs:  # (the layout's transpose of an input) its reader's
            node.scheme = next((opts.layers[r.name] for r in g.consumers(node.outputs[0]) if r.name in opts.layers),
                               opts.scheme)
        else:
            node.scheme = opts.scheme
        node.dtype = DTYPES[node.scheme]
        if node.scheme != "float":
            why = op.unsupported(node, g, node.scheme)
            if why:
                problems.append(f"{node.op} (node '{node.name}'): {why}")
        producer[node.outputs[0]] = node
        g.tensors[node.outputs[0]].dtype = node.dtype
    if problems:
        raise EdgecError(f"cannot quantize: {'; '.join(problems)}. Give these layers another scheme with --qconfig "
                         "(a [layers] entry such as name = \"int8\" or \"float\")")
    family = {name: FAMILIES[n.scheme] for name, n in producer.items()}
    for name in g.inputs:
        readers = [n for n in g.nodes if name in n.inputs]
        scheme = readers[0].scheme if readers else opts.scheme
        g.tensors[name].dtype, family[name] = DTYPES[scheme], FAMILIES[scheme]
    return family


def layer_schemes(g: Graph) -> list[str]:
    """The schemes of the model's layers (not of the Converts inserted between them), sorted."""
    return sorted({n.scheme for n in g.nodes if not REGISTRY[n.op].inserted(n)})


def remove_converts(g: Graph) -> None:
    """Undo insert_converts: readers of a Convert's output read its input again."""
    for node in [n for n in g.nodes if n.op == "Convert"]:
        src, dst = node.inputs[0], node.outputs[0]
        for reader in g.nodes:
            reader.inputs = [src if i == dst else i for i in reader.inputs]
        g.nodes.remove(node)
        del g.tensors[dst]


def insert_converts(g: Graph, ranges: dict[str, tuple[float, float]], family: dict[str, str]) -> None:
    """A Convert node before every reader of a tensor of another family (one per tensor and family)."""
    made: dict[tuple[str, str], str] = {}
    nodes: list[Node] = []
    for node in g.nodes:
        want = FAMILIES[node.scheme]
        for k, name in enumerate(node.inputs):
            t = g.tensors.get(name) if name else None
            if t is None or t.is_const or family[name] == want:
                continue
            key = (name, want)
            if key not in made:
                new = g.fresh_name(f"{name}_{want}")
                g.tensors[new] = Tensor(new, t.shape, view=t.view, perm=t.perm, dtype=node.dtype)
                fixed = _imported_convert(t, family[name], want, node.dtype)
                if fixed is not None:
                    g.tensors[new].fixed_quant, g.tensors[new].fixed_dtype = fixed[:2], fixed[2]
                family[new] = want
                if name in ranges:
                    ranges[new] = ranges[name]
                nodes.append(Node("Convert", g.fresh_name(f"convert_{new}"), [name], [new], scheme=node.scheme,
                                  dtype=node.dtype))
                made[key] = new
            node.inputs[k] = made[key]
        nodes.append(node)
    g.nodes = nodes


def _imported_convert(t: Tensor, family: str, want: str, dtype: str) -> tuple[float, int, str] | None:
    """The format an imported mixed QDQ model converts t to for a reader of family want: one of its DQ -> Q pairs
    (fixed_converts), or for a float layer's output the Q/DQ pair after it (fixed_quant)."""
    options = list(t.fixed_converts)
    if family == "float32" and t.fixed_quant is not None:
        options.insert(0, (*t.fixed_quant, t.fixed_dtype))
    options = [o for o in options if o[2] == dtype]
    pow2 = want in ("q7", "q15")
    return next((o for o in options if (o[1] == 0 and _pow2(np.array([o[0]]))) == pow2), None) or \
        next(iter(options), None)


def _require_finite(g: Graph, ranges: dict[str, tuple[float, float]]) -> None:
    """Quantization maps finite numbers only: the calibrated ranges and the constants the ops read (load refuses
    non-finite weights; a range turns non-finite when the float model overflows on the calibration data)."""
    for name, (lo, hi) in ranges.items():
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise EdgecError(f"cannot quantize: tensor '{name}' has the range [{lo}, {hi}] on the calibration data; "
                             "its float values are not finite (NaN or infinity in the samples, or an overflow in "
                             "the float model): check the calibration samples")
        if max(abs(lo), abs(hi)) > RANGE_LIMIT:
            raise EdgecError(f"cannot quantize: tensor '{name}' reaches {max(abs(lo), abs(hi)):.3g} on the "
                             f"calibration data, beyond ±{RANGE_LIMIT:.3g} where integer scales and multipliers "
                             "overflow; scale the model's input (or the calibration samples) down")
    for node in g.nodes:
        for name in node.inputs:
            data = g.const(name) if name else None
            if data is not None and data.dtype.kind == "f" and not np.isfinite(data).all():
                raise EdgecError(f"cannot quantize: {node.op} (node '{node.name}') reads the constant '{name}', "
                                 "which holds NaN or infinity")


def _per_tensor_weight_scales(g: Graph) -> None:
    """One scale per weight tensor (--no-per-channel) for the layers whose model gave none."""
    for node in g.nodes:
        if is_weighted(node) and g.tensors[node.inputs[1]].weight_scales is None:
            wmax = float(np.abs(g.const(node.inputs[1])).max())
            scale = (float(np.ldexp(1.0, -int(frac_bits(wmax)))) if node.scheme in ("qformat", "q15") else
                     c_float(max(wmax / (INT4_MAX if node.scheme == "int4" else 127.0), 1e-12)))
            g.tensors[node.inputs[1]].weight_scales = (np.array([scale]), 0)


def quantize_graph(g: Graph, ranges: dict[str, tuple[float, float]], opts: QuantOptions | None = None) -> None:
    """Give every node and activation its element type, insert Converts between types, set every integer
    activation's scale and zero point, then let each integer op derive its parameters.

    Priority for a scale: the op's own fixed output format (softmax), the input's format for ops that keep it
    (pooling, reshapes), the model's own (imported QDQ, int8), the calibrated range."""
    opts = opts or QuantOptions()
    ranges = {**ranges, **opts.input_ranges}
    _require_finite(g, ranges)
    remove_converts(g)  # quantizing again (calibration auto tries several ranges)
    family = assign_schemes(g, opts)
    insert_converts(g, ranges, family)
    if not opts.per_channel:
        _per_tensor_weight_scales(g)

    def params(t: Tensor) -> tuple[float, int]:
        kind = family[t.name]
        if t.fixed_quant is not None and kind in {"int8": ("int8", "q7"), "int16": ("int16", "q15")}[t.fixed_dtype]:
            return t.fixed_quant  # an imported QDQ model's own
        if kind == "int16":
            return int16_params(*ranges[t.name])
        if kind in ("q7", "q15"):
            return pow2_params(*ranges[t.name], 16 if kind == "q15" else 8)
        return t.fixed_quant or affine_params(*ranges[t.name], opts.symmetric)

    for name in g.inputs:
        t = g.tensors[name]
        if t.dtype != "float32":
            t.scale, t.zero_point = params(t)
    for node in g.nodes:
        op = REGISTRY[node.op]
        out = g.tensors[node.outputs[0]]
        if out.dtype == "float32":
            out.scale, out.zero_point = None, None
            continue
        fixed = op.output_quant(node, g)
        if fixed is not None:
            out.scale, out.zero_point = fixed
        elif op.keeps_quant and out.fixed_quant is not None and op.rescales(node):
            out.scale, out.zero_point = out.fixed_quant
        elif op.keeps_quant:
            src = g.tensors[node.inputs[0]]
            out.scale, out.zero_point = src.scale, src.zero_point
            if out.fixed_quant is not None and (out.fixed_quant[1] != src.zero_point or
                                                abs(out.fixed_quant[0] - src.scale) > 1e-6 * src.scale):
                raise EdgecError(f"{node.op} (node '{node.name}'): the model quantizes its output with scale "
                                 f"{out.fixed_quant[0]:.6g} and zero point {out.fixed_quant[1]}, its input with "
                                 f"{src.scale:.6g} and {src.zero_point}; edgec's int8 {node.op} keeps the input's "
                                 "(quantize both with the same parameters, as onnxruntime's quantizer does)")
        else:
            out.scale, out.zero_point = params(out)
    g.quantized = any(g.tensors[n].dtype != "float32" for n in g.activations())
    for node in g.nodes:
        try:
            node.q = REGISTRY[node.op].quantize(node, g) if node.scheme != "float" or node.op == "Convert" else None
        except ValueError as exc:  # a scale ratio no fixed-point multiplier holds (a model's absurd scales)
            raise EdgecError(f"{node.op} (node '{node.name}'): {exc}; check the model's scales") from None


def float_input(g: Graph, acts: dict[str, np.ndarray], name: str) -> np.ndarray:
    """A tensor's float values from float_activations taken before quantization: a Convert inserted since (the
    identity in float) is looked through."""
    while name not in acts:
        node = next(n for n in g.nodes if n.outputs[0] == name)
        assert REGISTRY[node.op].inserted(node), name
        name = node.inputs[0]
    return acts[name]


def _layer_mean(g: Graph, node: Node, x: np.ndarray, w: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    """The mean output per channel, over samples and positions, of the layer with weights w [O][K] (input_rows'
    column order) and bias b, before its activation, on input x (samples along axis 0): by linearity the weights
    times the mean input row."""
    op = REGISTRY[node.op]
    means = op.input_means(node, g, x.reshape((-1,) + x.shape[2:]))
    w = w.reshape(len(means), w.shape[0] // len(means), -1)
    y = np.concatenate([w[i] @ m for i, m in enumerate(means)])
    return y if b is None else y + b


def correct_biases(g: Graph, samples: list[dict[str, np.ndarray]],
                   acts: dict[str, np.ndarray] | None = None) -> dict[str, float]:
    """Empirical bias correction: for every Conv/Gemm, the mean difference per output channel between the int8
    layer's output before requantization and activation and the float layer's, on the same float input (from
    acts, float_activations(g, samples), computed when not given), is removed from the integer bias. Returns the
    mean absolute correction per layer in output units."""
    layers = [n for n in g.nodes if is_weighted(n) and n.q is not None]
    acts = float_activations(g, samples) if acts is None else acts
    report = {}
    for node in layers:
        op, xt, ws = REGISTRY[node.op], g.tensors[node.inputs[0]], node.q["w_scale"]
        x = float_input(g, acts, node.inputs[0])
        xq = dequantize(quantize_input(x, xt.scale, xt.zero_point, xt.dtype), xt.scale, xt.zero_point)
        w_deq = node.q["w"].reshape(len(node.q["w"]), -1).astype(np.float64) * ws.reshape(-1, 1)
        b_deq = node.q["bias"].astype(np.float64) * xt.scale * ws if len(node.inputs) > 2 else None
        diff = _layer_mean(g, node, xq, w_deq, b_deq) - _layer_mean(g, node, x, op.weight_matrix(node, g),
                                                                     op.bias_vector(node, g))
        unit = xt.scale * ws  # real value of one accumulator step
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.where(unit > 0, np.round(diff / unit), 0.0)
        bias = node.q["bias"]
        limit = BIAS64_LIMIT if bias.dtype == np.int64 else 2**31 - 1
        step = np.clip(np.nan_to_num(step), -limit, limit).astype(np.int64)  # channels of ~0 weights
        node.q["bias"] = np.clip(bias.astype(np.int64) - step, -limit, limit).astype(bias.dtype)
        report[node.name] = float(np.abs(diff).mean())
    return report


# What `--calibration auto` tries: (range method, percentile (None: --percentile), bias correction). Entropy and
# MSE clipping are left out: on the MLPerf Tiny models they were never the best and were sometimes far worse
# (entropy: 8.6 dB on mobilenet_vww96; mse + bias correction, the best on dscnn_kws_int8src's calibration data,
# 23.26 dB on its test inputs against minmax's 26.67). Percentile 99.9 with bias correction is the best on
# dscnn_kws's calibration data (26.49 dB against 25.39 for percentile 99.99) and on its real-speech test inputs
# 25.32 dB, top-1 0.85 (22.31, 0.80 without it). Output clipping (layer-output error) is the best on
# dscnn_kws_int8src's calibration data (27.18 dB against 26.28 for minmax), 24.77 dB on its test inputs (minmax:
# 26.67). On resnet8 minmax + bias correction is the only candidate with the float top-1 on all 64 calibration
# samples (19.35 dB; percentile + bias correction 21.34, 62 of 64): 20.27 dB, top-1 0.95 on its test inputs
# (19.74, 0.90 when SQNR alone decided).
AUTO_CANDIDATES = (("minmax", None, False), ("minmax", None, True), ("percentile", None, False),
                   ("percentile", None, True), ("percentile", 99.9, True), ("output", None, False),
                   ("output", None, True))
AUTO_SAMPLES = 64  # calibration samples on which the candidates are compared
# ... and at most this many multiply-accumulates per candidate, but at least AUTO_MIN_SAMPLES samples (the MLPerf
# Tiny models keep all 64; the 2.27 GMAC CNN of bench/buildtime.py compares on 8 of its 16: build 32.3 -> 22.2 s)
AUTO_MACS = 8 << 30
AUTO_MIN_SAMPLES = 8


def _subset(samples: list, most: int) -> list[int]:
    """Indices of up to `most` samples spread evenly."""
    return list(range(0, len(samples), max(1, len(samples) // most)))[:most]


def float_outputs(g: Graph, samples: list[dict[str, np.ndarray]],
                  acts: dict[str, np.ndarray] | None = None) -> list[dict[str, np.ndarray]]:
    """The float reference's graph outputs for each sample (they do not depend on the graph's quantization);
    acts: float_activations of exactly these samples, when known."""
    if acts is None:
        return run_samples(g, samples)
    return [{n: acts[n][s] for n in g.outputs} for s in range(len(samples))]


def output_sqnr(g: Graph, samples: list[dict[str, np.ndarray]],
                want_all: list[dict[str, np.ndarray]] | None = None) -> float:
    """SQNR in dB of the quantized graph's dequantized outputs (numpy integer reference, all samples as one batch)
    against its float outputs (want_all: float_outputs(g, samples), when the caller measures several quantizations
    of the same graph)."""
    return output_fidelity(g, samples, want_all)[1]


def output_fidelity(g: Graph, samples: list[dict[str, np.ndarray]],
                    want_all: list[dict[str, np.ndarray]] | None = None) -> tuple[int, float]:
    """(top-1 agreements, SQNR in dB) of the quantized graph against float, as output_sqnr; top-1 agreements are
    the samples whose first output has its largest value at the same place in both (the first of equal integers,
    as validate counts), counted for classifiers only (a first output given by an op that classifies), else 0."""
    signal = noise = 0.0
    agree = 0
    want_all = want_all if want_all is not None else float_outputs(g, samples)
    classifier = _classifier(g)
    for got, want in zip(run_samples(g, samples, int8=True), want_all):
        for n in g.outputs:
            t = g.tensors[n]
            y = got[n] if t.dtype == "float32" else dequantize(got[n], t.scale, t.zero_point)
            err = y.astype(np.float64) - want[n]
            signal += float((want[n].astype(np.float64) ** 2).sum())
            noise += float((err**2).sum())
        top = g.outputs[0]
        agree += int(classifier and np.argmax(got[top].reshape(-1)) == np.argmax(want[top].reshape(-1)))
    return agree, float(10 * np.log10(signal / noise)) if noise > 0 else float("inf")


def _classifier(g: Graph) -> bool:
    """Whether the graph's first output is a probability per class (top-1 agreement means something)."""
    node = g.producer(g.outputs[0])
    return node is not None and REGISTRY[node.op].classifies


def quantize_calibrated(g: Graph, samples: list[dict[str, np.ndarray]], method: str = "auto",
                        percentile: float = 99.99, opts: QuantOptions | None = None
                        ) -> tuple[dict, dict[str, tuple[float, float]]]:
    """Calibrate activation ranges on the samples and quantize the graph.

    method "auto" quantizes with every AUTO_CANDIDATES choice and keeps the one whose integer model is closest to
    the float model on up to AUTO_SAMPLES of the calibration samples (fewer for models above AUTO_MACS / AUTO_SAMPLES
    multiply-accumulates): for a classifier the most samples with the
    float model's top-1 first, then the highest output SQNR; no test data is involved.
    With opts.bias_correction, auto only tries the candidates with bias correction. Otherwise the named method is
    used, with bias correction when opts asks for it. Ranges and the auto choice come from the StatsCache when it
    has them. Returns what was chosen and the activation ranges used."""
    opts = opts or QuantOptions()
    if opts.equalize:
        g.info["equalize"] = equalize(g)
    hessians: dict = {}  # weight rounding (int4, gptq): computed once, whatever the ranges
    cache = StatsCache(g, samples)
    known: dict = {}

    def acts() -> dict[str, np.ndarray]:  # the float reference runs once, and only when needed
        if "acts" not in known:
            known["acts"] = float_activations(g, samples)
        return known["acts"]

    def ranges_of(m: str, pct: float | None = None) -> dict[str, tuple[float, float]]:
        pct = percentile if pct is None else pct
        entry = f"ranges {m} {pct!r}"
        r = cache.ranges(entry)
        if r is None:
            r = calibrate(g, samples, m, pct, acts())
            cache.put(entry, {k: list(v) for k, v in r.items()})
        return r

    def finish(ranges: dict[str, tuple[float, float]], bias_correction: bool, rounding: str | None = None) -> None:
        quantize_graph(g, ranges, opts)
        if any(n.scheme == "int4" for n in g.nodes):
            refine_int4_weights(g, samples, hessians, acts())
        if (rounding or opts.weight_rounding) == "gptq":
            round_weights(g, samples, hessians, known.get("acts"))  # (32 samples: a cached rebuild)
        if bias_correction:
            correct_biases(g, samples, acts())

    minmax = ranges_of("minmax")  # (for the report; before Converts are inserted)
    if method != "auto":
        ranges = ranges_of(method)
        finish(ranges, opts.bias_correction)
        return {"calibration": method, "bias_correction": opts.bias_correction,
                "ranges": _range_report(ranges, minmax)}, ranges
    candidates = list(dict.fromkeys((m, percentile if p is None or m != "percentile" else p, bc)
                                    for m, p, bc in AUTO_CANDIDATES if bc or not opts.bias_correction))
    entry = f"auto {percentile!r} {AUTO_SAMPLES} {AUTO_MACS} {candidates!r} {opts!r}"
    chosen = _cached_choice(cache.get(entry), candidates, percentile)
    if chosen is None:
        chosen = _choose(g, samples, candidates, acts, ranges_of, finish, percentile, opts.weight_rounding)
        cache.put(entry, chosen)
    m, p = _parse_label(chosen["calibration"], percentile)
    ranges = ranges_of(m, p)
    finish(ranges, chosen["bias_correction"], chosen["weight_rounding"])
    return {**chosen, "ranges": _range_report(ranges, minmax)}, ranges


def _range_report(ranges: dict[str, tuple[float, float]], minmax: dict[str, tuple[float, float]]) -> dict:
    """Per tensor, for reports: the calibrated range and the share of the min/max range it keeps."""
    return {n: {"range": [lo, hi], "kept": round((hi - lo) / (minmax[n][1] - minmax[n][0]), 4)
                if minmax[n][1] > minmax[n][0] else 1.0} for n, (lo, hi) in ranges.items() if n in minmax}


def _choose(g: Graph, samples: list[dict[str, np.ndarray]], candidates: list[tuple[str, float, bool]], acts,
            ranges_of, finish, percentile: float, rounding: str) -> dict:
    """--calibration auto: score every candidate (with the weight rounding asked for) and keep the best. Scores:
    top-1 agreement first (classifiers), then SQNR; ties keep the first (simplest) candidate. GPTQ rounding is not
    tried here: on the 16-layer 2.27 GMAC CNN of bench/buildtime.py its layer Hessians and rounding took 26 of 92
    s (it stays --weight-rounding gptq)."""
    macs = sum(REGISTRY[n.op].macs(n, g) for n in g.nodes)
    subset = _subset(samples, max(AUTO_MIN_SAMPLES, min(AUTO_SAMPLES, AUTO_MACS // max(macs, 1))))
    want = [{n: acts()[n][s] for n in g.outputs} for s in subset]

    def score(c: tuple[str, float, bool], how: str) -> tuple[int, float]:
        finish(ranges_of(c[0], c[1]), c[2], how)
        return output_fidelity(g, [samples[s] for s in subset], want)

    for c in candidates:  # every range first: calibration reads the graph before quantization inserts Converts
        ranges_of(c[0], c[1])
    scores = {c: score(c, rounding) for c in track(candidates, "choosing the calibration", "candidates")}
    best = max(candidates, key=lambda c: scores[c])
    names = {c: f"{_label(c[0], c[1], percentile)}{' + bias correction' if c[2] else ''}" for c in candidates}
    sqnr = {names[c]: round(v[1], 2) for c, v in scores.items()}
    top1 = {names[c]: round(v[0] / len(subset), 4) for c, v in scores.items()}
    return {"calibration": _label(best[0], best[1], percentile), "bias_correction": best[2],
            "weight_rounding": rounding, "auto_sqnr_db": sqnr, "auto_top1": top1 if _classifier(g) else None}


def _label(method: str, pct: float, default: float) -> str:
    """A candidate's name in reports: the method, with its percentile when it is not --percentile's."""
    return method if method != "percentile" or pct == default else f"{method} {pct:g}"


def _parse_label(label: str, default: float) -> tuple[str, float]:
    method, _, pct = label.partition(" ")
    return method, float(pct) if pct else default


def _cached_choice(c, candidates: list[tuple[str, float, bool]], percentile: float) -> dict | None:
    """A cached auto choice, if it is well formed and one of the candidates."""
    def scores(d, lo: float, hi: float) -> bool:  # candidate names -> numbers (an SQNR may be null: infinite)
        return isinstance(d, dict) and len(d) <= len(candidates) and all(
            isinstance(k, str) and len(k) < 100 and (v is None or finite_float32(v) and lo <= v <= hi)
            for k, v in d.items())

    ok = isinstance(c, dict) and set(c) == {"calibration", "bias_correction", "weight_rounding", "auto_sqnr_db",
                                            "auto_top1"} and c["weight_rounding"] in ("nearest", "gptq") and \
        isinstance(c["calibration"], str) and isinstance(c["bias_correction"], bool) and \
        scores(c["auto_sqnr_db"], -math.inf, math.inf) and (c["auto_top1"] is None or scores(c["auto_top1"], 0, 1))
    try:
        ok = ok and (*_parse_label(c["calibration"], percentile), c["bias_correction"]) in candidates
    except ValueError:
        ok = False
    return c if ok else None
