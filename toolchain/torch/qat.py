"""Quantization-aware training that computes what the device computes.

prepare_qat traces a float model with torch.fx, folds every BatchNorm into the Conv before it (with the running
statistics, as edgec's fold pass does at deployment), fuses the ReLU after a Conv/Linear into it (as edgec's fuse
pass does), and puts an activation quantizer on the model input and on every layer output.

The forward value of a prepared model is edgec's integer arithmetic, not an approximation of it: each layer
quantizes its input and weights, accumulates in integers (exact in float64), adds the int32 bias and requantizes
with edgec's own fixed-point functions (toolchain/ops/base.py: quantize_multiplier, requantize, quant_bounds), then
dequantizes. The gradient is that of the usual float fake-quantization with the straight-through estimator:
y = y_fake + (y_integer - y_fake).detach(). So the accuracy measured in PyTorch in eval mode is the device's.

Schemes (SCHEMES): int8, int4 (int4 weights, int8 activations), qformat (Q-format q7, power-of-two scales and
shift-only requantization) and int16 (16x8: symmetric int16 activations, int8 weights, int64 bias, 15-bit
multipliers); weight scales come from edgec's quantize_weights for the scheme. `edgec build` of the exported model
recognizes the scheme from its scales (int16: from its int16 Q/DQ pairs, ONNX opset 21).

Activation ranges are calibrated (min/max over calibration data, the same rule as `edgec build --calib`) and then
follow an exponential moving average of each training batch's min/max; in eval mode they are fixed."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn

from ..errors import EdgecError
from ..ops.base import (
    INT32_MAX,
    INT32_MIN,
    Q7_SHIFT_RANGE,
    QRANGE,
    pow2_bits,
    quant_bounds,
    quantize_multiplier,
    reduce_multiplier,
)
from ..ops.output_stage import BIAS64_LIMIT, Q7_MAX_SHIFT, bias_fitting_scales, finish_s8, quantize_weights
from ..quantize import affine_params, int16_params, pow2_params


@dataclass(frozen=True)
class Scheme:
    """A quantization scheme edgec deploys (`edgec build --quantize NAME`): int8 (affine int8 activations, int8
    weights per channel, multiplier requantization), int4 (the same with int4 weights, as edgec's int4 scheme
    chooses their scales: MSE-optimal clipping), qformat (Q-format q7: power-of-two scales everywhere, zero points
    0, requantization by a rounding shift), int16 (16x8: int16 activations with zero point 0, int8 weights per
    channel, int64 bias, 64-bit requantization with 15-bit multipliers)."""

    name: str
    pow2: bool = False  # power-of-two scales, zero point 0 (Q-format)
    act: str = "int8"  # element type of the activations: "int8" or "int16"


SCHEMES = {"int8": Scheme("int8"), "int4": Scheme("int4"), "qformat": Scheme("qformat", pow2=True),
           "int16": Scheme("int16", act="int16")}

# Modes of every quantizer and layer: "qat" (integer forward, STE gradient), "float" (no quantization: the float
# model, used for calibration), "export" (standard fake-quantize ops that torch.onnx.export writes as Q/DQ).
MODES = ("qat", "float", "export")


def get_scheme(scheme: str | Scheme) -> Scheme:
    if isinstance(scheme, Scheme):
        return scheme
    if scheme not in SCHEMES:
        raise EdgecError(f"edgec.torch: quantization scheme '{scheme}' is not available; choose one of "
                         f"{', '.join(SCHEMES)}")
    return SCHEMES[scheme]


def f32(x: float) -> float:
    """The value a float32 ONNX initializer holds (what edgec reads back)."""
    return float(np.float32(x))


class ActQuant(nn.Module):
    """Per-tensor quantizer of an activation: asymmetric int8 (edgec's affine_params on the tracked range), Q-format
    (pow2_params) or symmetric int16 (int16_params)."""

    def __init__(self, pow2: bool = False, momentum: float = 0.05, dtype: str = "int8") -> None:
        super().__init__()
        self.pow2, self.momentum, self.dtype = pow2, momentum, dtype
        self.qmin, self.qmax = QRANGE[dtype]
        self.mode = "qat"
        self.calibrating = False
        self.register_buffer("lo", torch.zeros((), dtype=torch.float64))
        self.register_buffer("hi", torch.zeros((), dtype=torch.float64))
        self.register_buffer("seen", torch.zeros((), dtype=torch.bool))

    def observe(self, x: torch.Tensor) -> None:
        lo, hi = x.detach().min().double(), x.detach().max().double()
        if self.calibrating or not bool(self.seen):
            self.lo.copy_(torch.minimum(self.lo, lo) if bool(self.seen) else lo)
            self.hi.copy_(torch.maximum(self.hi, hi) if bool(self.seen) else hi)
            self.seen.fill_(True)
        else:
            self.lo.add_(self.momentum * (lo - self.lo))
            self.hi.add_(self.momentum * (hi - self.hi))

    def params(self) -> tuple[float, int]:
        """(scale, zero point) as the exported model stores them: the scale rounded to float32."""
        if not bool(self.seen):
            raise EdgecError("edgec.torch: an activation range was never observed; calibrate the prepared model "
                             "(edgec.torch.calibrate) or train it before evaluating or exporting")
        rule = int16_params if self.dtype == "int16" else pow2_params if self.pow2 else affine_params
        scale, zp = rule(float(self.lo), float(self.hi))
        return f32(scale), zp

    def quantize(self, x: torch.Tensor) -> torch.Tensor:
        """Integer codes (as int64) of x: edgec's quantize_input (round half to even in float64, clamp)."""
        scale, zp = self.params()
        return torch.clamp(torch.round(x.detach().double() / scale) + zp, self.qmin, self.qmax).long()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "float":
            if self.calibrating:
                self.observe(x)
            return x
        if self.training and self.mode == "qat":
            self.observe(x)
        scale, zp = self.params()
        if self.mode == "export":  # int16: written as an int8 pair that export() widens (torch writes only 8 bits)
            return torch.fake_quantize_per_tensor_affine(x, scale, zp, -128, 127)
        fake = torch.fake_quantize_per_tensor_affine(x, scale, zp, self.qmin, self.qmax)
        exact = ((self.quantize(x) - zp).double() * scale).float()
        return fake + (exact - fake).detach()


class QLayer(nn.Module):
    """A Conv2d or Linear with its BatchNorm folded and its ReLU fused, computing edgec's int8 layer."""

    def __init__(self, layer: nn.Conv2d | nn.Linear, bn: nn.BatchNorm2d | None, relu: bool, scheme: Scheme) -> None:
        super().__init__()
        self.layer, self.bn, self.relu, self.scheme = layer, bn, relu, scheme
        self.out_q = ActQuant(scheme.pow2, dtype=scheme.act)
        self.mode = "qat"
        self.in_q: list[ActQuant] = []  # the quantizer of this layer's input (a list: not a submodule)
        self.source = ""  # the layer's module name in the float model

    def folded(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Weight and bias with the BatchNorm folded in (running statistics), as edgec's fold pass computes them."""
        w = self.layer.weight
        b = self.layer.bias if self.layer.bias is not None else torch.zeros(w.shape[0], dtype=w.dtype)
        if self.bn is None:
            return w, b
        scale = self.bn.weight / torch.sqrt(self.bn.running_var + self.bn.eps)
        return w * scale.reshape((-1,) + (1,) * (w.dim() - 1)), (b - self.bn.running_mean) * scale + self.bn.bias

    def weight_quant(self, w: torch.Tensor, b: torch.Tensor, s_in: float, s_out: float) -> tuple[torch.Tensor,
                                                                                                  torch.Tensor]:
        """Per-output-channel integer weights and their scales (rounded to float32, as exported), chosen by
        edgec's own quantize_weights for the scheme; Q-format with the cap of edgec's layer_weights."""
        wn = w.detach().double().numpy()
        ws = quantize_weights(wn, None, self.scheme.name)[1].astype(np.float32).astype(np.float64)
        if self.scheme.pow2:  # twin of the cap in toolchain/ops/output_stage.py layer_weights (shift and bias range)
            n_in, n_out = pow2_bits(s_in), pow2_bits(s_out)
            cap = np.full(len(ws), n_out - n_in + Q7_MAX_SHIFT)
            babs = np.abs(b.detach().float().double().numpy())
            with np.errstate(divide="ignore"):
                cap = np.where(babs > 0, np.minimum(cap, np.floor(30 - np.log2(np.where(babs > 0, babs, 1.0))) - n_in),
                               cap)
            ws = np.ldexp(1.0, -np.minimum(pow2_bits(ws), cap).astype(np.int64))
        elif self.scheme.act != "int16":  # twin of bias_fitting_scales in layer_weights
            ws = bias_fitting_scales(ws, b.detach().float().double().numpy(), s_in, wn[0].size)
        wq = quantize_weights(wn, ws, self.scheme.name)[0]
        return torch.from_numpy(wq.astype(np.float64)), torch.from_numpy(ws)

    def integer_params(self) -> dict:
        """Everything edgec derives for this layer at build time from the exported model (output_stage of
        toolchain/ops/output_stage.py): int weights, int32 bias (int16: int64), per-channel multiplier and shift (int16:
        15-bit multipliers), zero points and clamp bounds."""
        s_in, zp_in = self.in_q[0].params()
        s_out, zp_out = self.out_q.params()
        w, b = self.folded()
        wq, ws = self.weight_quant(w, b, s_in, s_out)
        act = self.scheme.act
        limit = (-BIAS64_LIMIT, BIAS64_LIMIT) if act == "int16" else (INT32_MIN, INT32_MAX)
        bq = torch.clamp(torch.round(b.detach().float().double() / (s_in * ws)), *limit)
        act_min, act_max = quant_bounds(0.0 if self.relu else -math.inf, math.inf, s_out, zp_out, act)
        q = {"w": wq, "ws": ws, "bias": bq, "in": (s_in, zp_in), "out": (s_out, zp_out), "out_zp": zp_out,
             "act_min": act_min, "act_max": act_max, "dtype": act}
        if self.scheme.pow2:  # a rounding shift (toolchain/ops/output_stage.py)
            q["shift"] = np.clip(pow2_bits(s_in) + pow2_bits(ws.numpy()) - pow2_bits(s_out), *Q7_SHIFT_RANGE)
        else:
            ms = [quantize_multiplier(s_in * float(s) / s_out) for s in ws]
            if act == "int16":
                if max(s for _, s in ms) > 14:
                    raise EdgecError(f"edgec.torch: layer '{self.source}': its int16 requantization scale is above "
                                     "2^14 (an almost constant output?); edgec cannot build it as 16x8")
                ms = [reduce_multiplier(m, s) for m, s in ms]
            q["mult"], q["shift"] = np.array([m for m, _ in ms], np.int64), np.array([s for _, s in ms], np.int64)
        return q

    def _apply(self, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
        if isinstance(self.layer, nn.Conv2d):
            c = self.layer
            if c.padding_mode != "zeros":
                raise EdgecError(f"edgec.torch: Conv2d padding_mode '{c.padding_mode}' is not supported")
            return F.conv2d(x, w, b, c.stride, c.padding, c.dilation, c.groups)
        return F.linear(x, w, b)

    def _integer(self, x: torch.Tensor, q: dict) -> torch.Tensor:
        """edgec's int8 layer (ref_s8 of Conv/Gemm): accumulate, add the bias, requantize, clamp; dequantized."""
        s_out, zp_out = q["out"]
        xq = (self.in_q[0].quantize(x) - q["in"][1]).double()
        acc = self._apply(xq, q["w"], None)  # integers, exact in float64
        stage = {k: v for k, v in q.items() if k in ("mult", "shift", "out_zp", "act_min", "act_max", "dtype")}
        stage["bias"] = q["bias"].long().numpy()
        y = finish_s8(acc.round().long().numpy(), stage, 1).astype(np.int64)
        return torch.from_numpy(((y - zp_out) * s_out).astype(np.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w, b = self.folded()
        if self.mode == "float":
            y = self._apply(x, w, b)
            return self.out_q(F.relu(y) if self.relu else y)
        if self.mode == "export":
            q = self.integer_params()
            wq = (q["w"] * q["ws"].reshape((-1,) + (1,) * (w.dim() - 1))).float()
            zeros = torch.zeros(w.shape[0], dtype=torch.int32)
            wfake = torch.fake_quantize_per_channel_affine(wq, q["ws"].float(), zeros, 0, -128, 127)
            y = self._apply(x, wfake, b.detach().float())
            return self.out_q(F.relu(y) if self.relu else y)
        if self.training:  # the output range follows the float layer
            with torch.no_grad():
                y = self._apply(x, w, b)
                self.out_q.observe(F.relu(y) if self.relu else y)
        q = self.integer_params()
        exact = self._integer(x, q)
        if not torch.is_grad_enabled():
            return exact
        s_in = q["in"][0]
        shape = (-1,) + (1,) * (w.dim() - 1)
        w_ste = w + ((q["w"] * q["ws"].reshape(shape)).float() - w).detach()
        b_ste = b + ((q["bias"] * s_in * q["ws"]).float() - b).detach()
        y = self._apply(x, w_ste, b_ste)
        y = F.relu(y) if self.relu else y
        s_out, zp_out = q["out"]
        fake = torch.fake_quantize_per_tensor_affine(y, s_out, zp_out, q["act_min"], q["act_max"])
        return fake + (exact - fake).detach()


# ---- preparing a model: trace, fold, fuse, insert quantizers -----------------------------------------------------

_RELU_FUNCS = (F.relu, torch.relu)
# ops whose int8 output keeps its input's scale and zero point in edgec (values are taken, not computed)
_KEEP_MODULES = (nn.MaxPool2d, nn.Flatten, nn.Dropout, nn.Identity)
_KEEP_FUNCS = (torch.flatten, F.max_pool2d, F.dropout)
_KEEP_METHODS = ("view", "reshape", "flatten", "contiguous", "squeeze", "unsqueeze")


def _module(gm: fx.GraphModule, node: fx.Node) -> nn.Module | None:
    return gm.get_submodule(node.target) if node.op == "call_module" else None


def _is_relu(gm: fx.GraphModule, node: fx.Node) -> bool:
    return (isinstance(_module(gm, node), nn.ReLU) or (node.op == "call_function" and node.target in _RELU_FUNCS)
            or (node.op == "call_method" and node.target == "relu"))


def _keeps_quant(gm: fx.GraphModule, node: fx.Node) -> bool:
    return (isinstance(_module(gm, node), _KEEP_MODULES) or (node.op == "call_function" and node.target in _KEEP_FUNCS)
            or (node.op == "call_method" and node.target in _KEEP_METHODS))


def _only_user(node: fx.Node) -> fx.Node | None:
    users = list(node.users)
    return users[0] if len(users) == 1 else None


def _describe(node: fx.Node) -> str:
    return f"'{node.name}' ({node.op} {getattr(node.target, '__name__', node.target)})"


def prepare_qat(model: nn.Module, scheme: str | Scheme = "int8", calib: torch.Tensor | None = None) -> fx.GraphModule:
    """A copy of `model` with edgec's quantization simulated (see the module docstring). With `calib` (a batch of
    real inputs), activation ranges are calibrated on it at once, as `edgec build --calib` would."""
    sch = get_scheme(scheme)
    gm = fx.symbolic_trace(copy.deepcopy(model).eval())
    graph = gm.graph
    counter = 0
    for node in list(graph.nodes):
        layer = _module(gm, node)
        if not isinstance(layer, (nn.Conv2d, nn.Linear)):
            continue
        last, bn, relu = node, None, False
        nxt = _only_user(last)
        if isinstance(layer, nn.Conv2d) and nxt is not None and isinstance(_module(gm, nxt), nn.BatchNorm2d):
            bn, last = _module(gm, nxt), nxt
            nxt = _only_user(last)
        if nxt is not None and _is_relu(gm, nxt):
            relu, last = True, nxt
        name = f"q{counter}_{node.target.replace('.', '_')}"
        counter += 1
        gm.add_submodule(name, QLayer(layer, bn, relu, sch))
        gm.get_submodule(name).source = node.target
        with graph.inserting_after(last):
            new = graph.call_module(name, (node.args[0],))
        fused = [node] + ([_only_user(node)] if bn is not None else []) + ([last] if relu else [])
        last.replace_all_uses_with(new)
        for dead in reversed(fused):
            graph.erase_node(dead)
    for node in [n for n in graph.nodes if n.op == "placeholder"]:
        name = f"q_input_{node.name}"
        gm.add_submodule(name, ActQuant(sch.pow2, dtype=sch.act))
        with graph.inserting_after(node):
            new = graph.call_module(name, (node,))
        node.replace_all_uses_with(new, delete_user_cb=lambda u, new=new: u is not new)
    _link(gm)
    gm.recompile()
    gm.delete_all_unused_submodules()
    if calib is not None:
        calibrate(gm, calib)
    return gm


def _source_quant(gm: fx.GraphModule, node: fx.Node) -> ActQuant:
    """The quantizer whose grid the value of `node` is on (through ops that keep the scale)."""
    while True:
        mod = _module(gm, node)
        if isinstance(mod, QLayer):
            return mod.out_q
        if isinstance(mod, ActQuant):
            return mod
        if not _keeps_quant(gm, node):
            raise EdgecError(f"edgec.torch: node {_describe(node)} is not supported between quantized layers; "
                             "supported: Conv2d (+BatchNorm2d) (+ReLU), Linear (+ReLU), MaxPool2d, flatten/view/"
                             "reshape, Dropout")
        node = node.args[0]


def _link(gm: fx.GraphModule) -> None:
    """Give every layer its input quantizer; refuse ops edgec's int8 arithmetic would compute differently."""
    for node in gm.graph.nodes:
        mod = _module(gm, node)
        if isinstance(mod, QLayer):
            mod.in_q = [_source_quant(gm, node.args[0])]
        elif node.op == "output":
            for out in _flat_args(node.args[0]):
                _source_quant(gm, out)
        elif node.op in ("call_module", "call_function", "call_method") and not isinstance(mod, ActQuant):
            if not _keeps_quant(gm, node) and not (node.op == "call_method" and node.target == "size"):
                raise EdgecError(f"edgec.torch: node {_describe(node)} is not supported in a quantized model; "
                                 "supported: Conv2d (+BatchNorm2d) (+ReLU), Linear (+ReLU), MaxPool2d, "
                                 "flatten/view/reshape, Dropout")


def _flat_args(arg) -> list[fx.Node]:
    if isinstance(arg, fx.Node):
        return [arg]
    if isinstance(arg, (list, tuple)):
        return [n for a in arg for n in _flat_args(a)]
    return []


def set_mode(model: nn.Module, mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"mode {mode}: choose one of {MODES}")
    for m in model.modules():
        if isinstance(m, (ActQuant, QLayer)):
            m.mode = mode


@torch.no_grad()
def calibrate(model: fx.GraphModule, x: torch.Tensor, batch: int = 256) -> None:
    """Set every activation range to the min/max of the float model over x (edgec's minmax calibration)."""
    quants = [m for m in model.modules() if isinstance(m, ActQuant)]
    was_training = model.training
    model.eval()
    set_mode(model, "float")
    for q in quants:
        q.calibrating = True
        q.seen.fill_(False)
    try:
        for i in range(0, len(x), batch):
            model(x[i:i + batch])
    finally:
        for q in quants:
            q.calibrating = False
        set_mode(model, "qat")
        model.train(was_training)


def output_quant(model: fx.GraphModule) -> ActQuant:
    """The quantizer of the model's (first) output."""
    out = next(n for n in model.graph.nodes if n.op == "output")
    return _source_quant(model, _flat_args(out.args[0])[0])


@torch.no_grad()
def integer_outputs(model: fx.GraphModule, x: torch.Tensor) -> np.ndarray:
    """The integer codes of the model's output for x (eval mode, int8 or int16): what the device writes for each
    sample."""
    was_training = model.training
    model.eval()
    try:
        y = model(x)
    finally:
        model.train(was_training)
    oq = output_quant(model)
    return oq.quantize(y).numpy().astype(np.int16 if oq.dtype == "int16" else np.int8)


def is_prepared(model: nn.Module) -> bool:
    return any(isinstance(m, QLayer) for m in model.modules())
