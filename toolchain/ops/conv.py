"""Conv: 1-D and 2-D, strides, pads (auto_pad too), dilations, groups (depthwise with any channel multiplier)."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from ..calls import Array, Buf, Call, Lowered, Raw, Scratch, Struct
from ..ir import Graph, Node
from ..sparse import lower_sparse_conv, lower_sparse_fc
from ..target import Target
from . import neon
from .base import LowerContext, Op, act_range, apply_act, check_act, check_io, is_int, nctype, pick, register
from .geometry import check_window, conv_nd, conv_params, spatial_attrs, windows
from .output_stage import (
    Stage,
    act_struct,
    finish_s8,
    layer_weights,
    mve_quad_stage,
    output_stage,
    quant_struct,
    quant_struct_s16,
)
from .packing import (
    conv_1x1_scratch_bytes,
    conv_gather_fits,
    conv_gather_mve_scratch_bytes,
    conv_gather_scratch_bytes,
    conv_im2col_mve_scratch_bytes,
    conv_im2col_s16_scratch_bytes,
    conv_im2col_scratch_bytes,
    depthwise_3x3_planar_scratch_bytes,
    depthwise_3x3_scratch_bytes,
    depthwise_mve_cost,
    depthwise_plane_mve_cost,
    depthwise_plane_mve_scratch_bytes,
    depthwise_s16_scratch_bytes,
    fold_input_zp,
    im2col_rows,
    pack_depthwise_3x3_planar_s8,
    pack_depthwise_3x3_s8,
    pack_depthwise_mve,
    pack_depthwise_s8,
    pack_matrix_s8,
    pack_matrix_s16,
    pack_s4,
    pair_blocks16,
    scratch_arg,
)


@dataclass
class ConvFacts:
    """A convolution's geometry, shared by its kernel variants."""

    w: np.ndarray  # the float weights, ONNX [O][I/g][k...]
    kernel: tuple[int, ...]
    strides: list[int]
    pads: list[int]
    group: int
    params: Struct  # ec_conv_params
    depthwise: bool


class Conv(Op):
    types = ("Conv",)
    fuses_activation = True
    layout = "channels_last"
    weighted = True
    batched = True

    def _geometry(self, node: Node, g: Graph):
        w = g.const(node.inputs[1])
        kernel = tuple(w.shape[2:])
        strides, pads, dil = spatial_attrs(node, g, kernel)
        return w, kernel, strides, pads, dil, node.attrs.get("group", 1)

    def check(self, node: Node, g: Graph) -> str | None:
        reason = check_io(node, g, (2, 3))
        if reason:
            return reason
        w = g.const(node.inputs[1])
        if w is None:
            return "weights must be a constant"
        if len(node.inputs) > 2 and node.inputs[2] and g.const(node.inputs[2]) is None:
            return "bias must be a constant"
        x = g.shape(node.inputs[0])
        if len(x) not in (3, 4):
            return "only 1-D and 2-D convolutions are supported"
        if w.ndim != len(x):
            return f"weights of shape {list(w.shape)} for a rank-{len(x)} input (want [M, C/group, *kernel])"
        group = node.attrs.get("group", 1)
        if not isinstance(group, int) or group < 1:
            return f"group={group!r} must be a positive integer"
        if x[1] % group or w.shape[0] % group:
            return f"group={group} does not divide the {x[1]} input channels and {w.shape[0]} output channels"
        if w.shape[1] * group != x[1]:
            return (f"weights of shape {list(w.shape)} are for {w.shape[1] * group} input channels (group {group}), "
                    f"the input {list(x)} has {x[1]}")
        if "kernel_shape" in node.attrs and tuple(node.attrs["kernel_shape"]) != tuple(w.shape[2:]):
            return f"kernel_shape={list(node.attrs['kernel_shape'])} differs from the weights' {list(w.shape[2:])}"
        b = self._bias(node, g)
        if b is not None and b.shape != (w.shape[0],):
            return f"bias of shape {list(b.shape)} for {w.shape[0]} output channels (want [{w.shape[0]}])"
        y = g.shape(node.outputs[0])
        if y[:2] != (x[0], w.shape[0]):
            return f"output shape {list(y)} does not match batch {x[0]} and {w.shape[0]} output channels"
        return check_window(node, g, tuple(w.shape[2:])) or check_act(node)

    def _bias(self, node: Node, g: Graph) -> np.ndarray | None:
        return g.const(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] else None

    def ref(self, node: Node, g: Graph, xs: list[np.ndarray]) -> np.ndarray:
        return apply_act(self.ref_with_weights(node, g, g.const(node.inputs[1]), self._bias(node, g), xs[0]), node)

    def ref_with_weights(self, node: Node, g: Graph, w: np.ndarray, b: np.ndarray | None,
                         x: np.ndarray) -> np.ndarray:
        _, kernel, strides, pads, dil, group = self._geometry(node, g)
        y = conv_nd(x, w, strides, pads, dil, group, g.shape(node.outputs[0])[2:])
        return y if b is None else y + b.reshape((1, -1) + (1,) * len(kernel))

    def groups(self, node: Node) -> int:
        return node.attrs.get("group", 1)

    def weight_matrix(self, node: Node, g: Graph) -> np.ndarray:
        w = g.const(node.inputs[1])
        return w.reshape(w.shape[0], -1)

    def input_rows(self, node: Node, g: Graph, x: np.ndarray) -> list[np.ndarray]:
        """im2col per group: columns in [c][ky][kx] order."""
        _, kernel, strides, pads, dil, group = self._geometry(node, g)
        out_sp = g.shape(node.outputs[0])[2:]
        p = np.stack([win for _, win in windows(x.astype(np.float64), kernel, strides, pads, dil, out_sp, 0.0)],
                     axis=2)
        n, c, t = p.shape[:3]
        return list(p.reshape(n, group, c // group, t, -1).transpose(1, 0, 4, 2, 3).reshape(group, -1, c // group * t))

    def input_means(self, node: Node, g: Graph, x: np.ndarray) -> list[np.ndarray]:
        """input_rows' column means from the windows' means, without building the rows."""
        _, kernel, strides, pads, dil, group = self._geometry(node, g)
        out_sp = g.shape(node.outputs[0])[2:]
        axes = (0,) + tuple(range(2, x.ndim))
        m = np.stack([win.mean(axis=axes) for _, win in windows(x.astype(np.float64), kernel, strides, pads, dil,
                                                               out_sp, 0.0)], axis=1)  # [C][taps]
        return list(m.reshape(group, -1))

    def bias_vector(self, node: Node, g: Graph) -> np.ndarray | None:
        return self._bias(node, g)

    def output_rows(self, y: np.ndarray) -> np.ndarray:
        return np.moveaxis(y, 1, -1).reshape(-1, y.shape[1])

    def reads_channels(self, node: Node, g: Graph, tensor: str, channels: int) -> str | None:
        if node.inputs[0] != tensor:
            return None
        group = self.groups(node)
        if group == 1:
            return "inputs"
        return "depthwise" if group == channels and g.const(node.inputs[1]).shape[0] == channels else None

    def set_weights(self, node: Node, g: Graph, w: np.ndarray, b: np.ndarray | None) -> None:
        shape = g.const(node.inputs[1]).shape
        node.inputs[1] = g.add_const(f"{node.name}_W", w.reshape(shape).astype(np.float32))
        if b is not None:
            node.inputs[2] = g.add_const(f"{node.name}_B", b.astype(np.float32))

    def export_attrs(self, node: Node) -> dict:
        return pick(node.attrs, ("strides", "pads", "dilations", "group", "auto_pad", "kernel_shape"))

    def ref_f32(self, node: Node, g: Graph, xs: list[np.ndarray]) -> np.ndarray:
        """float32 in ec_conv2d_f32's order: per output, the bias, then tap by tap (ky, kx, input channel), one
        rounded product and one rounded sum each (taps in the padding add zero)."""
        w, kernel, strides, pads, dil, group = self._geometry(node, g)
        out_sp = tuple(g.shape(node.outputs[0])[2:])
        x = xs[0].astype(np.float32)
        n, c, o = x.shape[0], x.shape[1], w.shape[0]
        cg, og = c // group, o // group
        b = self._bias(node, g)
        bias = np.zeros(o, np.float32) if b is None else b.astype(np.float32)
        acc = np.empty((n, group, og) + out_sp, np.float32)
        acc[...] = bias.reshape((1, group, og) + (1,) * len(out_sp))
        wg = w.astype(np.float32).reshape((group, og, cg) + tuple(kernel))
        for idx, xw in windows(x, kernel, strides, pads, dil, out_sp, np.float32(0)):
            xg = xw.reshape((n, group, cg) + out_sp)
            for ci in range(cg):
                acc += xg[:, :, None, ci] * wg[(slice(None), slice(None), ci) + idx].reshape(
                    (1, group, og) + (1,) * len(out_sp))
        lo, hi = act_range(node)
        return np.clip(acc.reshape((n, o) + out_sp), np.float32(lo), np.float32(hi))

    def quantize(self, node: Node, g: Graph) -> Stage:
        w, *_ = self._geometry(node, g)
        wq, ws = layer_weights(node, g, w, self._bias(node, g))
        return output_stage(node, g, wq, ws, self._bias(node, g), w.shape[0])

    def ref_s8(self, node: Node, g: Graph, xs: list[np.ndarray]) -> np.ndarray:
        q = node.q
        _, kernel, strides, pads, dil, group = self._geometry(node, g)
        x = xs[0].astype(np.int64) - q["in_zp"]
        acc = conv_nd(x, q["w"], strides, pads, dil, group, g.shape(node.outputs[0])[2:])
        return finish_s8(acc, q, 1)

    def is_depthwise(self, node: Node, g: Graph) -> bool:
        group = node.attrs.get("group", 1)
        return group > 1 and group == g.shape(node.inputs[0])[1]

    def blocked(self, node: Node, g: Graph, target: Target, kernel: list[int], pads: list[int]) -> bool:
        """Whether lower_dsp's kernels run this int8 layer. They block 2 pixels x 2 channels per loop, with SXTB16
        and SMLAD on cores with the DSP extension and in plain C elsewhere. On Cortex-M cores without the DSP
        extension their plain C was measured per layer against the portable kernels (int8, instructions):
        - with Thumb-2 (Cortex-M3), it wins on every convolution but depthwise ones: dscnn_kws conv_1 (10x4, 1
          input channel) 6,116,417 -> 2,002,029, conv_3 (1x1) 3,804,972 -> 2,916,894, depthwise conv_2 1,534,618
          -> 1,824,617;
        - on the Cortex-M0+ (ARMv6-M: 8 low registers, no multiply-accumulate) only where the portable kernel's
          channel loop is too short to pay its per-tap overhead: dscnn_kws conv_1 8,867,613 -> 4,080,607 and
          resnet8 conv_1 (3 input channels) 8,852,231 -> 8,629,670, against resnet8 conv_2 (16 channels)
          23,548,565 -> 28,662,713 and dscnn_kws conv_3 5,445,512 -> 6,250,134."""
        if "dsp" in target.features:
            return True
        if target.kind != "qemu-system" or self.is_depthwise(node, g):
            return False
        if "thumb2" in target.features:
            return True
        pointwise = all(k == 1 for k in kernel) and not any(pads)
        channels = g.shape(node.inputs[0])[1] // node.attrs.get("group", 1)
        return not pointwise and channels < 4

    def lower_dsp_depthwise(self, node: Node, g: Graph, ctx: LowerContext, f: ConvFacts) -> Lowered | None:
        """An int8 3x3 depthwise convolution (channel multiplier 1, dilation 1) on a core with the DSP extension:
        ec_depthwise_conv2d_3x3_planar_s8 (channel-planar int16 input rows, weights paired along kernel rows) where
        its per-channel row setup pays off, or None (lower_dsp's ec_depthwise_conv2d_3x3_s8). Measured on Cortex-M7
        (instructions, ec_depthwise_conv2d_3x3_s8 -> planar): stride 1, mobilenet_vww96 out_w 48: 904,909 ->
        429,319, 6: 218,522 -> 161,588, dscnn_kws out_w 5: 386,646 -> 320,153, but out_w 3: 118,657 -> 129,286;
        stride 2, out_w 24: 495,354 -> 470,451, but 12: 245,539 -> 251,932."""
        p = f.params.fields
        if node.dtype != "int8" or "dsp" not in ctx.target.features or not f.depthwise or p["out_c"] != p["in_c"] \
                or (p["k_h"], p["k_w"], p["dil_h"], p["dil_w"]) != (3, 3, 1, 1):
            return None
        if p["out_w"] < (4 if p["stride_w"] == 1 else 16):
            return None
        q, name = node.q, node.name
        w = q["w"][:, 0].reshape(p["out_c"], 3, 3).transpose(1, 2, 0)
        return Lowered([Call("ec_depthwise_conv2d_3x3_planar_s8",
                             [f.params, quant_struct(name, q), Buf(node.inputs[0], "int8_t"),
                              Array(f"w_{name}", pack_depthwise_3x3_planar_s8(w), "int16_t"),
                              Array(f"b_{name}", q["bias"], "int32_t"), Buf(node.outputs[0], "int8_t", const=False),
                              Scratch(depthwise_3x3_planar_scratch_bytes(p))], node=name, macs=self.macs(node, g))])

    def lower_dsp(self, node: Node, g: Graph, ctx: LowerContext, f: ConvFacts) -> Lowered | None:
        """An int8 SXTB16/SMLAD kernel (DSP extension, or its plain C where blocked() says it wins) for the layer's
        shape, or None. With the DSP extension, a first layer (packing.conv_gather_fits) takes ec_conv2d_gather_s8."""
        if node.dtype != "int8" or not self.blocked(node, g, ctx.target, f.kernel, f.pads):
            return None
        q, name, params, pads = node.q, node.name, f.params, f.pads
        p = params.fields
        args = [params, quant_struct(name, q), Buf(node.inputs[0], "int8_t")]
        tail = [Array(f"b_{name}", q["bias"], "int32_t"), Buf(node.outputs[0], "int8_t", const=False)]
        if self.is_depthwise(node, g) and p["out_c"] == p["in_c"]:
            w = q["w"][:, 0].reshape(p["out_c"], p["k_h"], p["k_w"]).transpose(1, 2, 0)
            if w.shape[:2] == (3, 3) and p["dil_h"] == p["dil_w"] == 1:
                call = Call("ec_depthwise_conv2d_3x3_s8",
                            args + [Array(f"w_{name}", pack_depthwise_3x3_s8(w), "int16_t")] + tail
                            + [scratch_arg(depthwise_3x3_scratch_bytes(p))], node=name, macs=self.macs(node, g))
            else:
                call = Call("ec_depthwise_conv2d_packed_s8",
                            args + [Array(f"w_{name}", pack_depthwise_s8(w), "int16_t")] + tail,
                            node=name, macs=self.macs(node, g))
            return Lowered([call])
        if p["groups"] != 1:
            return None
        args = [params, quant_struct(name, q), Buf(node.inputs[0], "int8_t")]
        tail = [Array(f"b_{name}", q["bias"], "int32_t"), Buf(node.outputs[0], "int8_t", const=False)]
        w = q["w"].reshape(q["w"].shape[0], q["w"].shape[1], p["k_h"], p["k_w"]).transpose(0, 2, 3, 1)
        packed = Array(f"w_{name}", pack_matrix_s8(im2col_rows(w)), "int8_t")
        if "dsp" in ctx.target.features and conv_gather_fits(p):
            packed = Array(f"w_{name}", pack_matrix_s8(w.reshape(w.shape[0], -1)), "int8_t")
            kernel, scratch = "ec_conv2d_gather_s8", conv_gather_scratch_bytes(p)
        elif p["k_h"] == 1 and p["k_w"] == 1 and not any(pads):
            kernel, scratch = "ec_conv2d_1x1_s8", conv_1x1_scratch_bytes(p)
        else:
            kernel, scratch = "ec_conv2d_im2col_s8", conv_im2col_scratch_bytes(p)
        return Lowered([Call(kernel, args + [packed] + tail + [Scratch(scratch)], node=name, macs=self.macs(node, g))])

    def lower_dsp_s16(self, node: Node, g: Graph, ctx: LowerContext, f: ConvFacts) -> Lowered | None:
        """A 16x8 SMLAD kernel (DSP extension) for a convolution with one group or a depthwise one with channel
        multiplier 1 and at most 64 taps, or None. A 1x1 convolution with stride 1 and no padding is a fully
        connected layer over the NHWC pixels."""
        if node.dtype != "int16" or "dsp" not in ctx.target.features:
            return None
        q, name, params, pads = node.q, node.name, f.params, f.pads
        p = params.fields
        if self.is_depthwise(node, g) and p["out_c"] == p["in_c"] and p["k_h"] * p["k_w"] <= 64:
            w = q["w"][:, 0].reshape(p["out_c"], p["k_h"], p["k_w"]).transpose(1, 2, 0)
            return Lowered([Call("ec_depthwise_conv2d_packed_s16",
                                 [params, quant_struct_s16(name, q), Buf(node.inputs[0], "int16_t"),
                                  Array(f"w_{name}", pack_depthwise_s8(w), "int16_t"),
                                  Array(f"b_{name}", q["bias"], "int64_t"),
                                  Buf(node.outputs[0], "int16_t", const=False),
                                  Scratch(depthwise_s16_scratch_bytes(p))],
                                 node=name, macs=self.macs(node, g))])
        if p["groups"] != 1:
            return None
        w = q["w"].reshape(q["w"].shape[0], q["w"].shape[1], p["k_h"], p["k_w"]).transpose(0, 2, 3, 1)
        packed = pack_matrix_s16(w.reshape(w.shape[0], -1))  # [out_c][K], K in [kh][kw][ic] order
        tail = [Buf(node.inputs[0], "int16_t"), Array(f"w_{name}", packed, "int8_t"),
                Array(f"b_{name}", q["bias"], "int64_t"), Buf(node.outputs[0], "int16_t", const=False)]
        stage, macs = quant_struct_s16(name, q), self.macs(node, g)
        if p["k_h"] == p["k_w"] == p["stride_h"] == p["stride_w"] == 1 and not any(pads):
            rows = p["batch"] * p["out_h"] * p["out_w"]
            return Lowered([Call("ec_fully_connected_packed_s16", [rows, p["in_c"], p["out_c"], stage] + tail,
                                 node=name, macs=macs)])
        return Lowered([Call("ec_conv2d_im2col_s16", [params, stage] + tail
                             + [Scratch(conv_im2col_s16_scratch_bytes(p))], node=name, macs=macs)])

    def lower_mve_depthwise(self, node: Node, g: Graph, ctx: LowerContext, f: ConvFacts) -> Lowered | None:
        """An int8 Helium (MVE) depthwise kernel, or None. ec_depthwise_conv2d_plane_mve_s8 (one channel at a time,
        VMLA by scalar over 4 output pixels, vectors along rows or, transposed, along columns) where it fits and its
        expected cost (packing.depthwise_plane_mve_cost) is below the channel-vectorized
        ec_depthwise_conv2d_mve_s8's (packing.depthwise_mve_cost); otherwise the latter."""
        if node.dtype != "int8" or "mve" not in ctx.target.features or not self.is_depthwise(node, g):
            return None
        q, name, params = node.q, node.name, f.params
        p = params.fields
        zp, macs, out = q["in_zp"], self.macs(node, g), Buf(node.outputs[0], "int8_t", const=False)
        costs = {t: c for t in (False, True) if (c := depthwise_plane_mve_cost(p, t)) is not None}
        if costs and min(costs.values()) < depthwise_mve_cost(p):
            transposed = min(costs, key=lambda t: costs[t])
            w = q["w"][:, 0].reshape(p["out_c"], 3, 3)
            w = w.transpose(0, 2, 1) if transposed else w
            bias = fold_input_zp(q["bias"], w.reshape(p["out_c"], -1), zp)
            stage = replace(q, mult=np.broadcast_to(q["mult"], (p["out_c"],)).astype(np.int32),
                            shift=np.broadcast_to(q["shift"], (p["out_c"],)).astype(np.int32)).struct(name)
            return Lowered([Call("ec_depthwise_conv2d_plane_mve_s8",
                                 [params, stage, Buf(node.inputs[0], "int8_t"),
                                  Array(f"w_{name}", w.reshape(-1), "int8_t"), Array(f"b_{name}", bias, "int32_t"),
                                  int(transposed), out, Scratch(depthwise_plane_mve_scratch_bytes(p, transposed))],
                                 node=name, macs=macs)])
        if q["w"].min(initial=0) < -127:  # two taps' products must fit in int16 (edgec_mve.h)
            return None
        w = q["w"][:, 0].reshape(p["out_c"], p["k_h"], p["k_w"]).transpose(1, 2, 0)
        bias = fold_input_zp(q["bias"], w.reshape(-1, p["out_c"]).T, zp)
        mult_ch = p["out_c"] // p["in_c"]
        wp, b, m, s, offsets = pack_depthwise_mve(w, bias, q["mult"], q["shift"], mult_ch)
        stage = replace(q, mult=m, shift=s).struct(name)
        offs = Array(f"off_{name}", offsets, "uint8_t") if mult_ch > 1 else Raw("NULL")
        zp_row = Array(f"zp_{name}", np.full(len(b), zp, np.int8), "int8_t")
        return Lowered([Call("ec_depthwise_conv2d_mve_s8",
                             [params, stage, Buf(node.inputs[0], "int8_t"), Array(f"w_{name}", wp, "int8_t"),
                              Array(f"b_{name}", b, "int32_t"), offs, zp_row, out], node=name, macs=macs)])

    def lower_mve(self, node: Node, g: Graph, ctx: LowerContext, f: ConvFacts) -> Lowered | None:
        """An int8 Helium (MVE) kernel for the layer's shape, or None: ec_conv2d_1x1_mve_s8, ec_conv2d_gather_mve_s8
        for a first layer (packing.conv_gather_fits), ec_conv2d_im2col_mve_s8 otherwise."""
        if node.dtype != "int8" or "mve" not in ctx.target.features:
            return None
        q, name, params, pads = node.q, node.name, f.params, f.pads
        p = params.fields
        zp = q["in_zp"]
        head, out = [params], Buf(node.outputs[0], "int8_t", const=False)
        macs = self.macs(node, g)
        if p["groups"] != 1:
            return None
        w = q["w"].reshape(q["w"].shape[0], q["w"].shape[1], p["k_h"], p["k_w"]).transpose(0, 2, 3, 1)
        w = w.reshape(w.shape[0], -1)
        stage, bias = mve_quad_stage(name, q, fold_input_zp(q["bias"], w, zp), p["out_c"])
        x = Buf(node.inputs[0], "int8_t")
        if p["k_h"] == 1 and p["k_w"] == 1 and not any(pads):
            return Lowered([Call("ec_conv2d_1x1_mve_s8",
                                 head + [stage, x, Array(f"w_{name}", pair_blocks16(w), "int8_t"), bias, out],
                                 node=name, macs=macs)])
        kernel, scratch = "ec_conv2d_im2col_mve_s8", conv_im2col_mve_scratch_bytes(p)
        if conv_gather_fits(p):
            kernel, scratch = "ec_conv2d_gather_mve_s8", conv_gather_mve_scratch_bytes(p)
        return Lowered([Call(kernel, head + [stage, x, Array(f"w_{name}", pair_blocks16(w), "int8_t"), bias, out,
                                             Scratch(scratch)], node=name, macs=macs)])

    def lower_sparse(self, node: Node, g: Graph, ctx: LowerContext, f: ConvFacts) -> Lowered | None:
        """A sparse kernel when the cost model prefers it for these weights (toolchain/sparse.py; its note goes to
        ctx.note). A 1x1 convolution with stride 1, no padding and one group is a fully connected layer over the
        NHWC pixels; other convolutions with one group use the sparse convolution kernels. Grouped, depthwise and
        int16 ones stay dense."""
        params, kernel, strides, pads = f.params, f.kernel, f.strides, f.pads
        if f.group != 1 or node.dtype == "int16":
            return None
        name, t = node.name, nctype(node)
        if is_int(node):
            w, bias, stage, bias_t = node.q["w"], node.q["bias"], quant_struct(name, node.q), "int32_t"
        else:
            w, b = g.const(node.inputs[1]).astype(np.float32), self._bias(node, g)
            bias = np.zeros(w.shape[0], np.float32) if b is None else b.astype(np.float32)
            stage, bias_t = act_struct(name, node), "float"
        args = (stage, Array(f"b_{name}", bias, bias_t), Buf(node.inputs[0], t), Buf(node.outputs[0], t, const=False),
                ctx.target, self.macs(node, g), ctx.sparse_kernels)
        if all(k == 1 for k in kernel) and all(s == 1 for s in strides) and not any(pads):
            w = w.reshape(w.shape[0], -1)
            low, ctx.note = lower_sparse_fc(name, int(np.prod(g.shape(node.outputs[0]))) // w.shape[0], w, *args,
                                            q=node.q if is_int(node) else None)
            return low
        if len(kernel) == 1:
            w = w[:, :, None, :]
        low, ctx.note = lower_sparse_conv(name, params, w.transpose(0, 2, 3, 1), *args)
        return low

    def lower_neon(self, node: Node, g: Graph, ctx: LowerContext, f: ConvFacts) -> Lowered | None:
        if node.dtype != "int8" or "neon" not in ctx.target.features:
            return None
        name, t = node.name, nctype(node)
        return neon.lower_conv(name, node.q, f.params, quant_struct(name, node.q), Buf(node.inputs[0], t),
                               Buf(node.outputs[0], t, const=False), f.depthwise, any(f.pads), self.macs(node, g),
                               "a64" in ctx.target.features)

    def lower_neon_f32(self, node: Node, g: Graph, ctx: LowerContext, f: ConvFacts) -> Lowered | None:
        if node.dtype != "float32" or "neon" not in ctx.target.features:
            return None
        name, t, b = node.name, nctype(node), self._bias(node, g)
        return neon.lower_conv_f32(name, f.w.astype(np.float32),
                                   np.zeros(f.w.shape[0], np.float32) if b is None else b.astype(np.float32),
                                   f.params, act_struct(name, node), Buf(node.inputs[0], t),
                                   Buf(node.outputs[0], t, const=False), any(f.pads), f.depthwise, self.macs(node, g))

    def lower_portable(self, node: Node, g: Graph, ctx: LowerContext, f: ConvFacts) -> Lowered:
        """The portable C kernel of the element type (every target)."""
        name, t = node.name, nctype(node)
        wt = t
        if node.dtype == "int16":  # 16x8: int16 activations, int8 weights, int64 bias
            wdata, bias = node.q["w"], node.q["bias"]
            stage = quant_struct_s16(name, node.q)
            suffix, bias_t, wt = "s16", "int64_t", "int8_t"
        elif is_int(node):
            wdata, bias = node.q["w"], node.q["bias"]
            stage = quant_struct(name, node.q)
            suffix, bias_t = "s8", "int32_t"
        else:
            wdata = f.w.astype(np.float32)
            b = self._bias(node, g)
            bias = np.zeros(f.w.shape[0], np.float32) if b is None else b.astype(np.float32)
            stage = act_struct(name, node)
            suffix, bias_t = "f32", "float"
        if len(f.kernel) == 1:
            wdata = wdata[:, :, None, :]
        # ONNX [O][I/g][kh][kw] -> depthwise [kh][kw][O] or general [O][kh][kw][I/g]
        wdata = wdata[:, 0].transpose(1, 2, 0) if f.depthwise else wdata.transpose(0, 2, 3, 1)
        kernel_fn = f"ec_{'depthwise_' if f.depthwise else ''}conv2d_{suffix}"
        call = Call(kernel_fn, [f.params, stage, Buf(node.inputs[0], t), Array(f"w_{name}", wdata, wt),
                                Array(f"b_{name}", bias, bias_t), Buf(node.outputs[0], t, const=False)],
                    node=name, macs=self.macs(node, g))
        return Lowered([call])

    def facts(self, node: Node, g: Graph, ctx: LowerContext) -> ConvFacts:
        w, kernel, strides, pads, dil, group = self._geometry(node, g)
        params = conv_params(node.name, g, node.inputs[0], node.outputs[0], kernel, strides, pads, dil, group)
        return ConvFacts(w, kernel, strides, pads, group, params, self.is_depthwise(node, g))

    def lower_lowbit(self, node: Node, g: Graph, ctx: LowerContext, f: ConvFacts) -> Lowered | None:
        """Q-format (ec_*conv2d_q7, shift-only output stage) or int4 weights (ec_*conv2d_s4, packed), portable C on
        every target."""
        if not is_int(node) or node.scheme not in ("qformat", "int4"):
            return None
        q, name, params, depthwise = node.q, node.name, f.params, f.depthwise
        w = q["w"][:, :, None, :] if len(f.kernel) == 1 else q["w"]
        w = w[:, 0].transpose(1, 2, 0) if depthwise else w.transpose(0, 2, 3, 1)
        if node.scheme == "int4":
            # rows on bytes: depthwise [kh][kw] rows of out_c, otherwise [out_c][kh][kw] rows of in_c / groups
            warr = Array(f"w_{name}", pack_s4(w.reshape(-1, w.shape[-1]), grouped=not depthwise), "uint8_t")
        else:
            warr = Array(f"w_{name}", w, "int8_t")
        suffix = "s4" if node.scheme == "int4" else "q7"
        kernel = f"ec_{'depthwise_' if depthwise else ''}conv2d_{suffix}"
        return Lowered([Call(kernel, [params, quant_struct(name, q), Buf(node.inputs[0], "int8_t"), warr,
                                      Array(f"b_{name}", q["bias"], "int32_t"),
                                      Buf(node.outputs[0], "int8_t", const=False)],
                             node=name, macs=self.macs(node, g))])

    def macs(self, node: Node, g: Graph) -> int:
        w = g.const(node.inputs[1])
        return int(np.prod(g.shape(node.outputs[0]))) * int(math.prod(w.shape[1:]))

    def row_window(self, node: Node, g: Graph) -> tuple[int, int, int] | None:
        if len(g.shape(node.inputs[0])) != 4:
            return None
        _, kernel, strides, pads, dil, _ = self._geometry(node, g)
        return (kernel[0] - 1) * dil[0] + 1, strides[0], pads[0]

    def strip_attrs(self, node: Node, g: Graph, pad_top: int, pad_bottom: int) -> dict:
        _, _, _, pads, _, _ = self._geometry(node, g)
        attrs = {k: v for k, v in node.attrs.items() if k != "auto_pad"}
        return {**attrs, "pads": [pad_top, pads[1], pad_bottom, pads[3]]}

    variants = (lower_lowbit, lower_sparse, lower_mve_depthwise, lower_mve, lower_dsp_depthwise, lower_dsp,
                lower_dsp_s16, lower_neon,
                lower_neon_f32, lower_portable)


register(Conv())
