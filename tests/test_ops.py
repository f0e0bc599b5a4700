"""Every op: float32 against onnxruntime and int8 bit for bit against the numpy integer reference (host, cffi)."""

from __future__ import annotations

import json
import zlib

import numpy as np
import pytest
from helpers import (
    EMULATED_TARGETS,
    HAVE_ARM,
    assert_bitexact,
    assert_float_close,
    assert_int8_sane,
    build_and_run,
    make_model,
    needs_target,
)
from onnx import helper

from edgec.reference import quantize_feeds, run_graph

R = np.random.default_rng(42)


def w(*shape: int, scale: float = 0.5) -> np.ndarray:
    return (R.standard_normal(shape) * scale).astype(np.float32)


def n(op: str, ins: list[str], outs: list[str], **attrs):
    return helper.make_node(op, ins, outs, **attrs)


def pre_conv(c_in: int, c_out: int, x: str = "input", y: str = "pre") -> tuple[list, dict]:
    """A 1x1 Conv in front of an op, so the op sees a channels-last tensor produced by our kernels."""
    return [n("Conv", [x, "preW", "preB"], [y])], {"preW": w(c_out, c_in, 1, 1), "preB": w(c_out, scale=0.1)}


def conv_case(x_shape, w_shape, bias=True, **attrs):
    inits = {"W": w(*w_shape, scale=1.0 / np.sqrt(np.prod(w_shape[1:])))}
    ins = ["input", "W"]
    if bias:
        inits["B"] = w(w_shape[0], scale=0.1)
        ins.append("B")
    return make_model([n("Conv", ins, ["output"], **attrs)], {"input": x_shape}, {"output": None}, inits)


def after_conv(node_fn, c: int = 6, hw=(7, 9), out_shape=None, extra=None):
    """input -> 1x1 Conv -> op; node_fn(x) returns the op's nodes reading x and writing 'output'."""
    nodes, inits = pre_conv(3, c)
    nodes += node_fn("pre")
    inits.update(extra or {})
    return make_model(nodes, {"input": [1, 3, *hw]}, {"output": out_shape}, inits)


CASES = {
    "conv2d": lambda: conv_case([1, 3, 10, 11], [5, 3, 3, 3], pads=[1, 1, 1, 1]),
    "conv2d_stride2_asym_pads": lambda: conv_case([1, 4, 11, 10], [6, 4, 3, 3], strides=[2, 2], pads=[0, 1, 1, 0]),
    "conv2d_same_upper": lambda: conv_case([1, 3, 9, 9], [4, 3, 4, 4], auto_pad="SAME_UPPER", strides=[2, 2]),
    "conv2d_same_lower": lambda: conv_case([1, 3, 8, 8], [4, 3, 2, 2], auto_pad="SAME_LOWER"),
    "conv2d_valid_nobias": lambda: conv_case([1, 3, 8, 7], [4, 3, 3, 2], bias=False, auto_pad="VALID"),
    "conv2d_dilation": lambda: conv_case([1, 2, 12, 12], [3, 2, 3, 3], dilations=[2, 2], pads=[2, 2, 2, 2]),
    "conv2d_groups": lambda: conv_case([1, 4, 8, 8], [6, 2, 3, 3], group=2, pads=[1, 1, 1, 1]),
    "depthwise": lambda: conv_case([1, 5, 9, 9], [5, 1, 3, 3], group=5, pads=[1, 1, 1, 1]),
    "depthwise_multiplier2_stride2": lambda: conv_case([1, 3, 10, 10], [6, 1, 3, 3], group=3, strides=[2, 2],
                                                       pads=[1, 1, 1, 1]),
    "conv1x1_odd": lambda: conv_case([1, 7, 5, 3], [5, 7, 1, 1]),
    "conv1x1_stride2_nobias": lambda: conv_case([1, 6, 7, 6], [4, 6, 1, 1], bias=False, strides=[2, 2]),
    "conv2d_in1_tall": lambda: conv_case([1, 1, 13, 6], [6, 1, 5, 3], strides=[2, 2], pads=[2, 1, 2, 1]),
    "depthwise_c8_stride2": lambda: conv_case([1, 8, 9, 8], [8, 1, 3, 3], group=8, strides=[2, 2], pads=[1, 1, 1, 1]),
    "depthwise_c7_dilation2": lambda: conv_case([1, 7, 8, 9], [7, 1, 3, 3], group=7, dilations=[2, 2],
                                                pads=[2, 1, 2, 2]),
    "depthwise_5x5_c12": lambda: conv_case([1, 12, 9, 7], [12, 1, 5, 5], bias=False, group=12, pads=[2, 1, 2, 2]),
    "conv1d": lambda: conv_case([1, 3, 20], [4, 3, 5], strides=[2], pads=[2, 2]),
    "conv1d_depthwise": lambda: conv_case([1, 4, 16], [4, 1, 3], group=4, pads=[1, 1]),
    "conv_relu6": lambda: make_model(
        [n("Conv", ["input", "W", "B"], ["c"]), n("Clip", ["c", "lo", "hi"], ["output"])],
        {"input": [1, 3, 6, 6]}, {"output": None},
        {"W": w(4, 3, 3, 3, scale=1.0), "B": w(4), "lo": np.array(0.0, np.float32), "hi": np.array(6.0, np.float32)}),
    "conv_batchnorm_relu": lambda: make_model(
        [n("Conv", ["input", "W"], ["c"], pads=[1, 1, 1, 1]),
         n("BatchNormalization", ["c", "g", "b", "m", "v"], ["bn"]), n("Relu", ["bn"], ["output"])],
        {"input": [1, 3, 6, 6]}, {"output": None},
        {"W": w(4, 3, 3, 3), "g": w(4) + 1, "b": w(4), "m": w(4), "v": np.abs(w(4)) + 0.5}),
    "batchnorm_standalone": lambda: make_model(
        [n("BatchNormalization", ["input", "g", "b", "m", "v"], ["output"], epsilon=1e-3)],
        {"input": [1, 4, 5, 5]}, {"output": None},
        {"g": w(4) + 1, "b": w(4), "m": w(4), "v": np.abs(w(4)) + 0.5}),
    "gemm": lambda: make_model([n("Gemm", ["input", "W", "B"], ["output"], transB=1)], {"input": [1, 16]},
                               {"output": None}, {"W": w(8, 16, scale=0.25), "B": w(8)}),
    "gemm_transb0_alpha_beta": lambda: make_model(
        [n("Gemm", ["input", "W", "B"], ["output"], alpha=0.5, beta=2.0)], {"input": [2, 12]}, {"output": None},
        {"W": w(12, 5, scale=0.3), "B": w(5)}),
    "matmul_const": lambda: make_model([n("MatMul", ["input", "W"], ["output"])], {"input": [1, 10]},
                                       {"output": None}, {"W": w(10, 7, scale=0.3)}),
    "matmul_3d": lambda: make_model([n("MatMul", ["input", "W"], ["output"])], {"input": [1, 4, 10]},
                                    {"output": None}, {"W": w(10, 7, scale=0.3)}),
    "add_same_shape": lambda: make_model([n("Add", ["input", "y"], ["output"])], {"input": [1, 3, 4, 5],
                                                                                  "y": [1, 3, 4, 5]}, {"output": None}),
    "sub_broadcast_inputs": lambda: make_model([n("Sub", ["input", "y"], ["output"])],
                                               {"input": [1, 3, 4, 5], "y": [1, 1, 4, 1]}, {"output": None}),
    "mul_broadcast_inputs": lambda: make_model([n("Mul", ["input", "y"], ["output"])],
                                               {"input": [2, 6], "y": [1, 6]}, {"output": None}),
    "add_channel_const_nhwc": lambda: after_conv(lambda x: [n("Add", [x, "c"], ["output"])],
                                                 extra={"c": w(6, 1, 1)}),
    "mul_const_nhwc_relu": lambda: after_conv(lambda x: [n("Mul", [x, "c"], ["m"]), n("Relu", ["m"], ["output"])],
                                              extra={"c": w(1, 6, 1, 1)}),
    "residual_add_relu": lambda: after_conv(lambda x: [n("Conv", [x, "W2"], ["c2"], pads=[1, 1, 1, 1]),
                                                       n("Add", [x, "c2"], ["a"]), n("Relu", ["a"], ["output"])],
                                            extra={"W2": w(6, 6, 3, 3, scale=0.2)}),
    "div_const": lambda: make_model([n("Div", ["input", "c"], ["output"])], {"input": [1, 8]}, {"output": None},
                                    {"c": np.array([2.0], np.float32)}),
    "relu": lambda: after_conv(lambda x: [n("Relu", [x], ["output"])]),
    "clip_inputs": lambda: make_model([n("Clip", ["input", "lo", "hi"], ["output"])], {"input": [1, 20]},
                                      {"output": None}, {"lo": np.array(-0.5, np.float32),
                                                         "hi": np.array(0.7, np.float32)}),
    "leaky_relu": lambda: after_conv(lambda x: [n("LeakyRelu", [x], ["output"], alpha=0.1)]),
    "prelu": lambda: after_conv(lambda x: [n("PRelu", [x, "s"], ["output"])], extra={"s": w(6, 1, 1)}),
    "sigmoid": lambda: after_conv(lambda x: [n("Sigmoid", [x], ["output"])]),
    "tanh": lambda: make_model([n("Tanh", ["input"], ["output"])], {"input": [1, 30]}, {"output": None}),
    "hard_sigmoid": lambda: make_model([n("HardSigmoid", ["input"], ["output"], alpha=0.3, beta=0.4)],
                                       {"input": [1, 30]}, {"output": None}),
    "hard_swish": lambda: after_conv(lambda x: [n("HardSwish", [x], ["output"])]),
    "maxpool": lambda: after_conv(lambda x: [n("MaxPool", [x], ["output"], kernel_shape=[2, 2], strides=[2, 2])],
                                  hw=(8, 10)),
    "maxpool_pads_ceil": lambda: after_conv(lambda x: [n("MaxPool", [x], ["output"], kernel_shape=[3, 3],
                                                         strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1)]),
    "avgpool_exclude_pad": lambda: after_conv(lambda x: [n("AveragePool", [x], ["output"], kernel_shape=[3, 3],
                                                           strides=[2, 2], pads=[1, 1, 1, 1])]),
    "avgpool_include_pad": lambda: after_conv(lambda x: [n("AveragePool", [x], ["output"], kernel_shape=[3, 3],
                                                           pads=[1, 1, 1, 1], count_include_pad=1)]),
    "avgpool_1d": lambda: make_model([n("AveragePool", ["input"], ["output"], kernel_shape=[4], strides=[2])],
                                     {"input": [1, 3, 12]}, {"output": None}),
    "global_avgpool": lambda: after_conv(lambda x: [n("GlobalAveragePool", [x], ["output"])]),
    "reduce_mean_spatial": lambda: after_conv(lambda x: [n("ReduceMean", [x], ["output"], axes=[2, 3],
                                                           keepdims=0)]),
    "flatten_gemm_nhwc": lambda: after_conv(lambda x: [n("Flatten", [x], ["f"]),
                                                       n("Gemm", ["f", "W", "B"], ["output"], transB=1)],
                                            extra={"W": w(5, 6 * 7 * 9, scale=0.05), "B": w(5)}),
    "flatten_output_nhwc": lambda: after_conv(lambda x: [n("Flatten", [x], ["output"])]),
    "reshape_squeeze_unsqueeze": lambda: make_model(
        [n("Reshape", ["input", "s"], ["r"]), n("Unsqueeze", ["r", "ax"], ["u"]), n("Squeeze", ["u", "ax"], ["q"]),
         n("Relu", ["q"], ["output"])], {"input": [1, 2, 3, 4]}, {"output": None},
        {"s": np.array([1, 6, 4], np.int64), "ax": np.array([0], np.int64)}),
    "transpose_nhwc": lambda: after_conv(lambda x: [n("Transpose", [x], ["output"], perm=[0, 2, 3, 1])]),
    "transpose_2d": lambda: make_model([n("Transpose", ["input"], ["output"], perm=[1, 0])], {"input": [5, 7]},
                                       {"output": None}),
    "concat_channels": lambda: after_conv(lambda x: [n("Conv", [x, "W2"], ["c2"]), n("Relu", ["c2"], ["r2"]),
                                                     n("Concat", [x, "r2"], ["output"], axis=1)],
                                          extra={"W2": w(3, 6, 1, 1)}),
    "concat_const": lambda: make_model([n("Concat", ["input", "c"], ["output"], axis=1)], {"input": [1, 5]},
                                       {"output": None}, {"c": w(1, 3)}),
    "pad_constant": lambda: after_conv(lambda x: [n("Pad", [x, "p", "v"], ["output"])],
                                       extra={"p": np.array([0, 0, 1, 2, 0, 1, 2, 0], np.int64),
                                              "v": np.array(0.5, np.float32)}),
    "softmax_2d": lambda: make_model([n("Softmax", ["input"], ["output"])], {"input": [2, 10]}, {"output": None}),
    "softmax_channels_nhwc": lambda: after_conv(lambda x: [n("Softmax", [x], ["output"], axis=1)]),
    "identity_dropout": lambda: make_model([n("Identity", ["input"], ["i"]), n("Dropout", ["i"], ["d"]),
                                            n("Relu", ["d"], ["output"])], {"input": [1, 9]}, {"output": None}),
}


def _seeded(name: str, make):
    """make() with R seeded from the case's name: a case's weights do not depend on which cases ran before it in
    the same process (pytest-xdist hands each worker a different subset)."""
    def seeded():
        R.bit_generator.state = np.random.default_rng(zlib.crc32(name.encode())).bit_generator.state
        return make()
    return seeded


CASES = {name: _seeded(name, make) for name, make in CASES.items()}


@pytest.mark.parametrize("case", sorted(CASES))
def test_float_matches_onnxruntime(case, tmp_path):
    _, res, _, want = build_and_run(CASES[case](), tmp_path)
    assert_float_close(res, want)


@pytest.mark.parametrize("case", sorted(CASES))
def test_int8_bitexact_with_reference(case, tmp_path):
    samples, res, g, want = build_and_run(CASES[case](), tmp_path, quantize="int8")
    assert_bitexact(g, samples, res)
    assert_int8_sane(res, want)


M7_CASES = ["conv2d", "conv2d_stride2_asym_pads", "conv2d_dilation", "conv2d_groups", "conv1x1_odd",
            "conv1x1_stride2_nobias", "conv2d_in1_tall", "gemm", "depthwise_multiplier2_stride2", "conv1d",
            "gemm_transb0_alpha_beta", "depthwise", "depthwise_c8_stride2", "depthwise_c7_dilation2",
            "depthwise_5x5_c12", "conv1d_depthwise",
            "residual_add_relu", "mul_const_nhwc_relu", "prelu", "sigmoid", "avgpool_include_pad",
            "maxpool_pads_ceil", "concat_channels", "pad_constant", "softmax_channels_nhwc", "flatten_gemm_nhwc",
            "transpose_nhwc"]


@pytest.mark.skipif(not HAVE_ARM, reason="needs arm-none-eabi-gcc and qemu-system-arm")
@pytest.mark.parametrize("case", [*M7_CASES, "matmul_const"])  # (a K4 tail and 3 channels after 4 in one row)
def test_cortex_m7(case, tmp_path):
    _, res, _, want = build_and_run(CASES[case](), tmp_path / "f", target="cortex-m7")
    assert_float_close(res, want)
    samples, res, g, want = build_and_run(CASES[case](), tmp_path / "q", quantize="int8", target="cortex-m7")
    assert_bitexact(g, samples, res)


# Every other emulated target runs a rotating share of the M7 cases (float close to onnxruntime, int8 bit-exact
# with the reference): each target sees several op families, and together they cover the whole list.
CASES_PER_TARGET = 5
TARGET_CASES = [pytest.param(t, M7_CASES[(i * CASES_PER_TARGET + k) % len(M7_CASES)], marks=needs_target(t))
                for i, t in enumerate(t for t in EMULATED_TARGETS if t != "cortex-m7") for k in range(CASES_PER_TARGET)]


@pytest.mark.parametrize("target,case", TARGET_CASES)
def test_emulated_targets(target, case, tmp_path):
    _, res, _, want = build_and_run(CASES[case](), tmp_path / "f", target=target)
    assert_float_close(res, want)
    assert len(res.instructions) == len(res.outputs) and min(res.instructions) > 0
    samples, res, g, want = build_and_run(CASES[case](), tmp_path / "q", quantize="int8", target=target)
    assert_bitexact(g, samples, res)


def random_convs(seed: int, helium: bool = False):
    """Convolutions of random shapes in a chain (general, depthwise 3x3 and 5x5, 1x1, then a Gemm), so the
    optimized kernels' tails are reached: channel counts that are not multiples of 4, odd widths, strides, padding
    on every border, with and without a fused Relu. Its own generator: the module's R stays untouched.
    helium: also dilated general convolutions, a depthwise convolution with a channel multiplier and a residual
    Add (the other draws are unchanged)."""
    rng = np.random.default_rng(seed)

    def w(*shape: int, scale: float) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    c, h, wd = int(rng.integers(1, 12)), int(rng.integers(5, 12)), int(rng.integers(5, 12))
    h_in, w_in = h, wd
    nodes, inits, x = [], {}, "input"
    for i, kind in enumerate(["conv", "dw3", "pw", "dw5", "conv"] + (["dwm"] if helium else [])):
        k = {"dw3": 3, "dwm": 3, "dw5": 5, "pw": 1}.get(kind, int(rng.integers(1, 4)))
        dil = int(rng.integers(1, 3)) if helium and kind in ("conv", "dwm") else 1
        ext = (k - 1) * dil + 1
        group = c if kind.startswith("dw") else 1
        out_c = c * int(rng.integers(2, 4)) if kind == "dwm" else c if group > 1 else int(rng.integers(1, 14))
        pads = [0] * 4 if kind == "pw" else [int(p) for p in rng.integers(0, ext, 4)]
        stride = 1 if kind == "pw" else int(rng.integers(1, 3))
        for ax in (0, 1):  # keep at least one output position: [top, left, bottom, right]
            pads[ax + 2] += max(0, ext - (h, wd)[ax] - pads[ax] - pads[ax + 2])
        h = (h + pads[0] + pads[2] - ext) // stride + 1
        wd = (wd + pads[1] + pads[3] - ext) // stride + 1
        inits[f"W{i}"] = w(out_c, c // group, k, k, scale=1.0 / np.sqrt(k * k * c / group))
        inits[f"B{i}"] = w(out_c, scale=0.1)
        y = f"c{i}"
        extra = {"dilations": [dil, dil]} if helium else {}
        nodes.append(n("Conv", [x, f"W{i}", f"B{i}"], [y], group=group, pads=pads, strides=[stride, stride], **extra))
        if rng.random() < 0.5:
            nodes.append(n("Relu", [y], [f"r{i}"]))
            y = f"r{i}"
        x, c = y, out_c
    if helium:  # a residual Add of two differently scaled tensors of the same shape
        nodes += [n("Sigmoid", [x], ["s"]), n("Add", [x, "s"], ["a"])]
        x = "a"
    c_in = int(inits["W0"].shape[1])
    inits["WG"] = w(int(rng.integers(1, 10)), c * h * wd, scale=0.05)
    nodes += [n("Flatten", [x], ["f"]), n("Gemm", ["f", "WG"], ["output"], transB=1)]
    return make_model(nodes, {"input": [1, c_in, h_in, w_in]}, {"output": None}, inits)


@pytest.mark.skipif(not HAVE_ARM, reason="needs arm-none-eabi-gcc and qemu-system-arm")
@pytest.mark.parametrize("seed", range(4))
def test_cortex_m7_random_convs(seed, tmp_path):
    """The DSP-extension kernels on random layer shapes, bit-exact with the integer reference."""
    samples, res, g, _ = build_and_run(random_convs(seed), tmp_path, quantize="int8", target="cortex-m7")
    assert_bitexact(g, samples, res)


def depthwise_3x3_chain(seed: int):
    """3x3 depthwise convolutions in a chain for ec_depthwise_conv2d_3x3_planar_s8: odd channel counts, odd and even
    widths, strides 1, 2, 1, padding 0-2 on each border, the input zero point at -128 (after Relu), at 127 (after
    Relu times -1) or in between, Relu6 (clamped outputs) or none."""
    rng = np.random.default_rng(seed)
    # wide enough that lowering picks the planar kernel for all three (Conv.lower_dsp_depthwise: out_w >= 16 at
    # stride 2)
    c, h, wd = int(rng.integers(1, 20)), int(rng.integers(3, 9)), int(rng.integers(33, 45))
    nodes, inits, x = [], {}, "input"
    first = ("Relu", "Negated Relu", None)[seed % 3]
    if first:
        nodes.append(n("Relu", [x], ["r"]))
        x = "r"
        if first == "Negated Relu":
            inits["m1"] = np.float32(-1)
            nodes.append(n("Mul", [x, "m1"], ["ng"]))
            x = "ng"
    h_out, w_out = h, wd
    for i, stride in enumerate((1, 2, 1)):
        pads = [int(p) for p in rng.integers(0, 3, 4)]
        for ax in (0, 1):  # keep at least one output position
            pads[ax + 2] += max(0, 3 - (h_out, w_out)[ax] - pads[ax] - pads[ax + 2])
        h_out = (h_out + pads[0] + pads[2] - 3) // stride + 1
        w_out = (w_out + pads[1] + pads[3] - 3) // stride + 1
        inits[f"W{i}"] = (rng.standard_normal((c, 1, 3, 3)) / 3).astype(np.float32)
        inits[f"B{i}"] = (rng.standard_normal(c) * 0.1).astype(np.float32)
        nodes.append(n("Conv", [x, f"W{i}", f"B{i}"], [f"c{i}"], group=c, pads=pads, strides=[stride, stride]))
        x = f"c{i}"
        if rng.random() < 0.5:
            inits[f"lo{i}"], inits[f"hi{i}"] = np.float32(0), np.float32(6)
            nodes.append(n("Clip", [x, f"lo{i}", f"hi{i}"], [f"k{i}"]))
            x = f"k{i}"
    inits["WG"] = (rng.standard_normal((3, c * h_out * w_out)) * 0.05).astype(np.float32)
    nodes += [n("Flatten", [x], ["f"]), n("Gemm", ["f", "WG"], ["output"], transB=1)]
    return make_model(nodes, {"input": [1, c, h, wd]}, {"output": None}, inits)


@pytest.mark.skipif(not HAVE_ARM, reason="needs arm-none-eabi-gcc and qemu-system-arm")
@pytest.mark.parametrize("seed", range(6))
def test_cortex_m7_depthwise_3x3_planar(seed, tmp_path):
    """ec_depthwise_conv2d_3x3_planar_s8 (SXTAB16 expansion, the SMLAD pair loop in assembly, the strided loop) on
    Cortex-M7, bit-exact with the integer reference."""
    samples, res, g, _ = build_and_run(depthwise_3x3_chain(seed), tmp_path, quantize="int8", target="cortex-m7")
    assert_bitexact(g, samples, res)
    meta = json.loads((tmp_path / "build" / "edgec.json").read_text())
    assert sum(layer["kernels"] == ["ec_depthwise_conv2d_3x3_planar_s8"] for layer in meta["layers"]) == 3


def random_fcs(seed: int):
    """A chain of fully connected layers of random shapes (one input row): depths and output counts around the
    multiples of 4, 8 and 16 that ec_fully_connected_block4_s8 blocks by, down to 1, with and without a fused
    Relu."""
    rng = np.random.default_rng(seed)
    sizes = [int(rng.integers(1, 70)) for _ in range(4)] + [int(rng.choice([1, 2, 3, 5, 8]))]
    nodes, inits, x = [], {}, "input"
    for i in range(1, len(sizes)):
        inits[f"W{i}"] = (rng.standard_normal((sizes[i], sizes[i - 1])) / np.sqrt(sizes[i - 1])).astype(np.float32)
        inits[f"B{i}"] = (rng.standard_normal(sizes[i]) * 0.1).astype(np.float32)
        y = f"g{i}" if i < len(sizes) - 1 else "output"
        nodes.append(n("Gemm", [x, f"W{i}", f"B{i}"], [y], transB=1))
        if i < len(sizes) - 1 and rng.random() < 0.5:
            nodes.append(n("Relu", [y], [f"r{i}"]))
            y = f"r{i}"
        x = y
    return make_model(nodes, {"input": [1, sizes[0]]}, {"output": None}, inits)


@pytest.mark.skipif(not HAVE_ARM, reason="needs arm-none-eabi-gcc and qemu-system-arm")
@pytest.mark.parametrize("seed,per_tensor", [(0, False), (1, False), (2, True)])
def test_cortex_m7_random_fcs(seed, per_tensor, tmp_path):
    """ec_fully_connected_block4_s8 (DSP) on random shapes, per-channel and per-tensor weights, bit-exact with the
    integer reference."""
    from edgec.quantize import QuantOptions

    samples, res, g, _ = build_and_run(random_fcs(seed), tmp_path, quantize="int8", target="cortex-m7",
                                       quant=QuantOptions(per_channel=not per_tensor))
    assert_bitexact(g, samples, res)
    assert "ec_fully_connected_block4_s8(" in (tmp_path / "build" / "model.c").read_text()


@pytest.mark.parametrize("seed", [pytest.param(s, marks=needs_target("cortex-m55")) for s in range(3)])
def test_cortex_m55_random_convs(seed, tmp_path):
    """The Helium (MVE) kernels on random layer shapes (dilation, channel multipliers, residual Add),
    bit-exact with the integer reference."""
    samples, res, g, _ = build_and_run(random_convs(seed, helium=True), tmp_path, quantize="int8",
                                       target="cortex-m55")
    assert_bitexact(g, samples, res)
    code = (tmp_path / "build" / "model.c").read_text()
    assert "ec_depthwise_conv2d_mve_s8(" in code and "ec_fully_connected_mve_s8(" in code


@pytest.mark.parametrize("seed", range(2))
def test_helium_kernels_plain_c(seed, tmp_path, monkeypatch):
    """The plain C paths beside the Helium code (host, no MVE), lowered as for a Helium target, equal the
    reference: same packed layouts and folded biases, read without vector instructions."""
    import dataclasses

    import edgec.build

    host = edgec.build.load_target("host")
    monkeypatch.setattr(edgec.build, "load_target",
                        lambda name: dataclasses.replace(host, features=(*host.features, "mve")))
    samples, res, g, _ = build_and_run(random_convs(seed, helium=True), tmp_path, quantize="int8")
    assert_bitexact(g, samples, res)
    assert "ec_depthwise_conv2d_mve_s8(" in (tmp_path / "build" / "model.c").read_text()


@pytest.mark.parametrize("target,seed", [pytest.param(t, s, marks=needs_target(t))
                                         for t in ("cortex-a53", "cortex-a7") for s in (2, 5)])
def test_neon_random_convs(target, seed, tmp_path):
    """The NEON kernels (by-lane for the short dot products, im2col, depthwise 3x3 and general, fully connected) as
    lowering chooses them for random layer shapes, bit-exact with the integer reference (these narrow layers take
    ec_conv2d_lanes_neon_s8 for 1x1; ec_conv2d_1x1_neon_s8 is covered by tests/c_kernels/test_neon_c.py)."""
    samples, res, g, _ = build_and_run(random_convs(seed), tmp_path, quantize="int8", target=target)
    assert_bitexact(g, samples, res)
    meta = json.loads((tmp_path / "build" / "edgec.json").read_text())
    kernels = {k for layer in meta["layers"] for k in layer["kernels"]}
    assert {"ec_depthwise_conv2d_3x3_neon_s8", "ec_depthwise_conv2d_neon_s8", "ec_conv2d_lanes_neon_s8",
            "ec_conv2d_im2col_neon_s8", "ec_fully_connected_neon_s8"} <= kernels


NEON_F32 = {"ec_conv2d_1x1_neon_f32", "ec_conv2d_im2col_neon_f32", "ec_fully_connected_neon_f32",
            "ec_depthwise_conv2d_neon_f32"}


def neon_f32_check(g, samples, res, tmp_path, rel: float) -> None:
    """Outputs within rel * (largest magnitude) of the float32 numpy reference in the kernels' summation order, and
    the NEON float kernels chosen."""
    for s, got in zip(samples, res.outputs):
        want = run_graph(g, quantize_feeds(g, s), int8=True)
        for name in g.outputs:
            scale = max(float(np.abs(want[name]).max()), 1e-3)
            np.testing.assert_allclose(got[name], want[name], rtol=0, atol=rel * scale, err_msg=name)
    meta = json.loads((tmp_path / "build" / "edgec.json").read_text())
    assert NEON_F32 <= {k for layer in meta["layers"] for k in layer["kernels"]}


@pytest.mark.parametrize("target,seed", [pytest.param(t, s, marks=needs_target(t))
                                         for t in ("cortex-a53", "cortex-a7") for s in (1, 6)])
def test_neon_f32_random_convs(target, seed, tmp_path):
    """The NEON float kernels (1x1, im2col, depthwise 3x3 and 5x5, fully connected) as lowering chooses them for
    random layer shapes (odd channel counts, strides, padding), close to the float32 reference: AArch64 fuses each
    multiply-add, ARMv7 NEON flushes denormals, otherwise the order of the sums is the reference's."""
    samples, res, g, _ = build_and_run(random_convs(seed), tmp_path, target=target)
    neon_f32_check(g, samples, res, tmp_path, 1e-5)


def test_neon_f32_plain_c(tmp_path, monkeypatch):
    """The plain C path beside the NEON float code (host, lowered as for a NEON target) equals the float32
    reference bit for bit: same blocked weights and padded biases, same order of sums."""
    import dataclasses

    import edgec.build

    host = edgec.build.load_target("host")
    monkeypatch.setattr(edgec.build, "load_target",
                        lambda name: dataclasses.replace(host, features=(*host.features, "neon")))
    samples, res, g, _ = build_and_run(random_convs(1), tmp_path)
    neon_f32_check(g, samples, res, tmp_path, 0.0)


def helium_conv_chain(rng: np.random.Generator):
    """Convolutions that reach every path of the Helium matrix core (edgec_mve_gemm.h) and its callers: a 3-channel
    3x3 (rows of 9 bytes, k 27 padded to 32), a 1x1 of 5 channels after a Relu (k <= 16 kept in registers, input zero
    point -128), a 3x3 stride 2 with asymmetric padding and 16 input channels (rows of 48 bytes) to 67 outputs (two
    chunks, odd), a 1x1 stride 2 of 67 channels (k > 16 with a tail of 3) to 71, a dilated 2x2 of 71 channels (rows
    of 142 bytes), then a Gemm to 3 outputs (the fully connected kernel's last channels)."""
    def w(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) / np.sqrt(np.prod(shape[1:]))).astype(np.float32)

    layers = [  # out_c, in_c, kernel, attributes
        (5, 3, 3, {"pads": [1, 1, 1, 1]}),
        (16, 5, 1, {}),
        (67, 16, 3, {"pads": [0, 1, 1, 0], "strides": [2, 2]}),
        (71, 67, 1, {"strides": [2, 2]}),
        (6, 71, 2, {"pads": [1, 1, 1, 1], "dilations": [2, 2]}),
    ]
    nodes, inits, x = [], {}, "input"
    for i, (o, c, k, attrs) in enumerate(layers):
        inits[f"W{i}"], inits[f"B{i}"] = w(o, c, k, k), (rng.standard_normal(o) * 0.1).astype(np.float32)
        nodes.append(n("Conv", [x, f"W{i}", f"B{i}"], [f"c{i}"], **attrs))
        x = f"c{i}"
        if i in (0, 3):
            nodes.append(n("Relu", [x], [f"r{i}"]))
            x = f"r{i}"
    inits["WG"] = w(3, 6 * 3 * 3)
    nodes += [n("Flatten", [x], ["f"]), n("Gemm", ["f", "WG"], ["output"], transB=1)]
    return make_model(nodes, {"input": [1, 3, 13, 11]}, {"output": None}, inits)


@pytest.mark.parametrize("per_channel", [pytest.param(p, marks=needs_target("cortex-m55")) for p in (True, False)])
def test_cortex_m55_helium_conv_paths(per_channel, tmp_path, monkeypatch):
    """The Helium convolution kernels on shapes that reach each of their paths, per-channel and per-tensor weights,
    bit-exact with the integer reference on Cortex-M55, and their plain C (host, lowered as for Helium) too."""
    import dataclasses

    import edgec.build
    from edgec.quantize import QuantOptions

    model = helium_conv_chain(np.random.default_rng(7))
    quant = QuantOptions(per_channel=per_channel)
    samples, res, g, _ = build_and_run(model, tmp_path / "m55", quantize="int8", target="cortex-m55", quant=quant)
    assert_bitexact(g, samples, res)
    meta = json.loads((tmp_path / "m55" / "build" / "edgec.json").read_text())
    kernels = [k for layer in meta["layers"] for k in layer["kernels"]]
    assert kernels.count("ec_conv2d_im2col_mve_s8") == 2 and kernels.count("ec_conv2d_1x1_mve_s8") == 2
    assert kernels.count("ec_conv2d_gather_mve_s8") == 1  # the 3-channel first layer
    assert any(nd.op == "Conv" and nd.q["in_zp"] == -128 for nd in g.nodes)
    host = edgec.build.load_target("host")
    monkeypatch.setattr(edgec.build, "load_target",
                        lambda name: dataclasses.replace(host, features=(*host.features, "mve")))
    samples, res, g, _ = build_and_run(model, tmp_path / "host", quantize="int8", quant=quant)
    assert_bitexact(g, samples, res)
    assert "ec_conv2d_1x1_mve_s8(" in (tmp_path / "host" / "build" / "model.c").read_text()
def random_depthwise(seed: int):
    """A chain of three depthwise 3x3 convolutions of random shapes for ec_depthwise_conv2d_plane_mve_s8: 1 to 40
    channels, channel multipliers 1 to 3, strides 1 or 2 on each axis, padding on every border, tall, wide and
    square inputs (both of its layouts); a Relu before the first gives an input zero point of -128, a Clip(-6, -0.5)
    before the second one of 127."""
    rng = np.random.default_rng(seed)
    c, h, wd = int(rng.integers(1, 41)), int(rng.integers(3, 30)), int(rng.integers(3, 30))
    if rng.random() < 0.5:
        h, wd = wd, h
    c_in, h_in, w_in = c, h, wd
    nodes, inits, x = [n("Relu", ["input"], ["r"])], {}, "r"
    for i in range(3):
        mult = int(rng.integers(1, 4)) if c <= 20 else 1
        pads = [int(p) for p in rng.integers(0, 3, 4)]
        strides = [int(s) for s in rng.integers(1, 3, 2)]
        for ax in (0, 1):
            pads[ax + 2] += max(0, 3 - (h, wd)[ax] - pads[ax] - pads[ax + 2])
        h = (h + pads[0] + pads[2] - 3) // strides[0] + 1
        wd = (wd + pads[1] + pads[3] - 3) // strides[1] + 1
        inits[f"W{i}"] = (rng.standard_normal((c * mult, 1, 3, 3)) / 3).astype(np.float32)
        inits[f"B{i}"] = (rng.standard_normal(c * mult) * 0.1).astype(np.float32)
        nodes.append(n("Conv", [x, f"W{i}", f"B{i}"], [f"c{i}"], group=c, pads=pads, strides=strides))
        x, c = f"c{i}", c * mult
        if i == 0:
            inits["lo"], inits["hi"] = np.array(-6.0, np.float32), np.array(-0.5, np.float32)
            nodes.append(n("Clip", [x, "lo", "hi"], ["neg"]))
            x = "neg"
    nodes.append(n("Flatten", [x], ["output"]))
    return make_model(nodes, {"input": [1, c_in, h_in, w_in]}, {"output": None}, inits)


def force_plane_kernel(monkeypatch) -> None:
    """Lowering picks ec_depthwise_conv2d_plane_mve_s8 wherever it fits, whatever its expected cost."""
    import edgec.ops.conv

    cost = edgec.ops.conv.depthwise_plane_mve_cost
    monkeypatch.setattr(edgec.ops.conv, "depthwise_plane_mve_cost",
                        lambda p, t: None if cost(p, t) is None else cost(p, t) // 100)


@pytest.mark.parametrize("seed", [pytest.param(s, marks=needs_target("cortex-m55")) for s in range(4)])
def test_cortex_m55_depthwise_plane(seed, tmp_path, monkeypatch):
    """ec_depthwise_conv2d_plane_mve_s8 on random depthwise shapes (both layouts, strides 1 and 2, padding,
    multipliers, in_zp -128 and 127), bit-exact with the integer reference."""
    force_plane_kernel(monkeypatch)
    samples, res, g, _ = build_and_run(random_depthwise(seed), tmp_path, quantize="int8", target="cortex-m55")
    assert_bitexact(g, samples, res)
    assert "ec_depthwise_conv2d_plane_mve_s8(" in (tmp_path / "build" / "model.c").read_text()


@pytest.mark.parametrize("seed", range(4))
def test_depthwise_plane_plain_c(seed, tmp_path, monkeypatch):
    """The plain C path of ec_depthwise_conv2d_plane_mve_s8 (host, no MVE) on the same shapes: same plane layout,
    weights and folded bias."""
    import dataclasses

    import edgec.build

    host = edgec.build.load_target("host")
    monkeypatch.setattr(edgec.build, "load_target",
                        lambda name: dataclasses.replace(host, features=(*host.features, "mve")))
    force_plane_kernel(monkeypatch)
    samples, res, g, _ = build_and_run(random_depthwise(seed), tmp_path, quantize="int8")
    assert_bitexact(g, samples, res)
    assert "ec_depthwise_conv2d_plane_mve_s8(" in (tmp_path / "build" / "model.c").read_text()
