"""int16 activations with int8 weights (16x8) and mixed-precision graphs (--qconfig): the C kernels bit for bit
against the numpy integer reference on the host and on Cortex-M7, conversions between types, config errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import test_ops
from helpers import HAVE_ARM, MODELS, assert_bitexact, assert_int8_sane, build_and_run, make_model, needs_target
from onnx import helper
from test_ops import CASES, random_convs

from edgec.cli import main


def case_model(name: str):
    """CASES[name]() without moving test_ops' shared generator, so other modules' cases (test_lowbit) see the same
    weights whether or not these tests ran first."""
    state = test_ops.R.bit_generator.state
    try:
        return CASES[name]()
    finally:
        test_ops.R.bit_generator.state = state


INT16_CASES = sorted(c for c in CASES if c != "prelu")  # PRelu has no int16 kernel (test_prelu_int16_refused)


@pytest.mark.parametrize("case", INT16_CASES)
def test_int16_bitexact_with_reference(case, tmp_path):
    samples, res, g, want = build_and_run(case_model(case), tmp_path, quantize="int16")
    assert {g.tensors[t].dtype for t in g.activations()} == {"int16"}
    assert_bitexact(g, samples, res)
    assert_int8_sane(res, want, "int16")


M7_INT16_CASES = ["conv2d_stride2_asym_pads", "conv2d_groups", "depthwise_c7_dilation2", "conv1d", "gemm",
                  "conv2d_valid_nobias", "depthwise_5x5_c12",
                  "flatten_gemm_nhwc", "residual_add_relu", "mul_const_nhwc_relu", "sigmoid", "avgpool_include_pad",
                  "maxpool_pads_ceil", "concat_channels", "pad_constant", "softmax_channels_nhwc"]


@pytest.mark.skipif(not HAVE_ARM, reason="needs arm-none-eabi-gcc and qemu-system-arm")
@pytest.mark.parametrize("case", M7_INT16_CASES)
def test_int16_cortex_m7(case, tmp_path):
    samples, res, g, _ = build_and_run(case_model(case), tmp_path, quantize="int16", target="cortex-m7")
    assert_bitexact(g, samples, res)


DSP_S16 = {"ec_conv2d_im2col_s16", "ec_fully_connected_packed_s16"}


def layer_kernels(build_dir) -> set[str]:
    meta = json.loads((build_dir / "edgec.json").read_text())
    return {k for layer in meta["layers"] for k in layer["kernels"]}


@pytest.mark.parametrize("target,seed,scheme", [
    pytest.param(t, s, q, marks=needs_target(t))
    for t, s, q in (("cortex-m7", 0, "int16"), ("cortex-m7", 3, "q15"), ("cortex-m33", 1, "int16"))])
def test_int16_dsp_random_convs(target, seed, scheme, tmp_path):
    """The 16x8 DSP-extension kernels (im2col convolution, packed fully connected, also for 1x1 convolutions) on
    random layer shapes (odd channel counts, strides, padding on every border, fused Relu), bit-exact with the
    integer reference."""
    samples, res, g, _ = build_and_run(random_convs(seed), tmp_path, quantize=scheme, target=target)
    assert_bitexact(g, samples, res)
    assert DSP_S16 <= layer_kernels(tmp_path / "build")


def test_int16_dsp_plain_c(tmp_path, monkeypatch):
    """The plain C path beside the 16x8 DSP code (host, lowered as for a DSP target) equals the reference: same
    packed weights and column buffers, read without the DSP instructions."""
    import dataclasses

    import edgec.build

    host = edgec.build.load_target("host")
    monkeypatch.setattr(edgec.build, "load_target",
                        lambda name: dataclasses.replace(host, features=(*host.features, "dsp")))
    samples, res, g, _ = build_and_run(random_convs(2), tmp_path, quantize="int16")
    assert_bitexact(g, samples, res)
    assert DSP_S16 <= layer_kernels(tmp_path / "build")


def extreme_conv_model(c: int):
    """A 3x3 convolution over c channels whose weights are all -1 (int8 -127): with an input of -max everywhere, each
    inner sum is 9 * c * 32767 * 127, beyond one int32 block of 256 products (and for c = 64 beyond int32)."""
    inits = {"W": np.full((3, c, 3, 3), -1.0, np.float32), "B": np.zeros(3, np.float32)}
    nodes = [helper.make_node("Conv", ["input", "W", "B"], ["output"], pads=[1, 1, 1, 1])]
    return make_model(nodes, {"input": [1, c, 4, 5]}, {"output": None}, inits)


@pytest.mark.parametrize("c", [48, 64])
@pytest.mark.parametrize("target", ["host", pytest.param("cortex-m7", marks=needs_target("cortex-m7"))])
def test_int16_dsp_sums_beyond_int32(target, c, tmp_path):
    """Sums of 432 and 576 int16 x int8 products at the extremes are exact: the DSP kernel adds its int32 blocks in
    int32 where every sum fits (432 * 32767 * 127 < 2^31) and into the int64 accumulator where not (576: > 2^31). On
    the host: the portable kernel, the same reference."""
    import onnx

    from edgec.build import BuildOptions, build
    from edgec.reference import quantize_feeds, run_graph
    from edgec.runner import run_build

    path, calib = tmp_path / "m.onnx", tmp_path / "calib.npz"
    onnx.save(extreme_conv_model(c), path)
    r = np.random.default_rng(0)
    shape = (1, c, 4, 5)
    cal = np.concatenate([r.uniform(-1, 1, (6, *shape)), -np.ones((1, *shape)), np.ones((1, *shape))])
    np.savez(calib, input=cal.astype(np.float32))
    out, _, g = build(BuildOptions(path, target=target, quantize="int16", calib=calib, out=tmp_path / "b"))
    samples = [{"input": np.full(shape, v, np.float32)} for v in (-1.0, 1.0)]
    samples.append({"input": np.where(r.random(shape) < 0.9, -1.0, 1.0).astype(np.float32)})
    res = run_build(out, samples)
    for s, raw in zip(samples, res.raw):
        want = run_graph(g, quantize_feeds(g, s), int8=True)["output"]
        np.testing.assert_array_equal(raw["output"], want)
        assert np.abs(want).max() > 16384  # not clamped to 0 or a small range
    if target != "host":
        assert "ec_conv2d_im2col_s16" in layer_kernels(tmp_path / "b")


def test_prelu_int16_refused(tmp_path, capsys):
    path = tmp_path / "prelu.onnx"
    import onnx

    onnx.save(case_model("prelu"), path)
    code = main(["build", str(path), "--quantize", "int16", "--calib", "random", "--out", str(tmp_path / "b")])
    err = capsys.readouterr().err
    assert code == 2 and "PRelu" in err and "--qconfig" in err and "Traceback" not in err
    assert not (tmp_path / "b").exists()


def mixed_model():
    """conv_a -> conv_b -> maxpool -> flatten -> fc1 (+ Relu) -> fc2, named so a qconfig can address them."""
    r = np.random.default_rng(7)

    def w(*shape: int, scale: float) -> np.ndarray:
        return (r.standard_normal(shape) * scale).astype(np.float32)

    nodes = [helper.make_node("Conv", ["input", "Wa", "Ba"], ["a"], name="conv_a", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["a"], ["ar"], name="relu_a"),
             helper.make_node("Conv", ["ar", "Wb", "Bb"], ["b"], name="conv_b", pads=[1, 1, 1, 1]),
             helper.make_node("MaxPool", ["b"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Flatten", ["p"], ["f"], name="flatten"),
             helper.make_node("Gemm", ["f", "W1", "B1"], ["h"], name="fc1", transB=1),
             helper.make_node("Relu", ["h"], ["hr"], name="relu_1"),
             helper.make_node("Gemm", ["hr", "W2", "B2"], ["output"], name="fc2", transB=1)]
    inits = {"Wa": w(6, 3, 3, 3, scale=0.3), "Ba": w(6, scale=0.1), "Wb": w(8, 6, 3, 3, scale=0.15),
             "Bb": w(8, scale=0.1), "W1": w(16, 8 * 4 * 5, scale=0.08), "B1": w(16, scale=0.1),
             "W2": w(5, 16, scale=0.25), "B2": w(5, scale=0.1)}
    return make_model(nodes, {"input": [1, 3, 8, 10]}, {"output": None}, inits)


# (qconfig, element type of conv_a, conv_b, pool, fc1, fc2, the Converts as (from, to)): the first has the
# conversions to and from float, the second those between integer types (q7 -> int8 is int8 -> int8 at another scale)
QCONFIGS = [
    ('default = "int8"\n[layers]\nconv_b = "int16"\nfc1 = "float"\n',
     ("int8", "int16", "int16", "float32", "int8"), [("float32", "int8"), ("int16", "float32"), ("int8", "int16")]),
    ('default = "int8"\n[layers]\nconv_a = "int16"\nconv_b = "qformat"\nfc2 = "q15"\n',
     ("int16", "int8", "int8", "int8", "int16"), [("int16", "int8"), ("int8", "int16"), ("int8", "int8")]),
]
QCONFIG = QCONFIGS[0][0]  # (tests/test_export.py)


@pytest.mark.parametrize("target", ["host", pytest.param("cortex-m7", marks=pytest.mark.skipif(
    not HAVE_ARM, reason="needs arm-none-eabi-gcc and qemu-system-arm"))])
@pytest.mark.parametrize("qconfig,types,converts", QCONFIGS, ids=["float", "integer"])
def test_mixed_int8_int16_float(target, qconfig, types, converts, tmp_path):
    """Mixed int8, int16, q7, q15 and float layers: every kind of Convert, bit-exact (the float Gemm's reference
    follows the C kernel's float32 order)."""
    cfg = tmp_path / "q.toml"
    cfg.write_text(qconfig)
    samples, res, g, want = build_and_run(mixed_model(), tmp_path / "m", quantize="none", target=target,
                                          qconfig=cfg)
    dtypes = {n.name: n.dtype for n in g.nodes}
    assert tuple(dtypes[n] for n in ("conv_a", "conv_b", "pool", "fc1", "fc2")) == types
    got = [(g.tensors[n.inputs[0]].dtype, g.tensors[n.outputs[0]].dtype) for n in g.nodes if n.op == "Convert"]
    assert sorted(got) == sorted(converts)
    assert_bitexact(g, samples, res)
    assert_int8_sane(res, want)


@pytest.mark.parametrize("text,message", [
    ('[layers]\nconv_x = "int16"\n', "no layer named 'conv_x'"),
    ('[layers]\nconv_b = "int12"\n', "unknown scheme"),
    ('default = "int3"\n', "default = 'int3'"),
    ('[layers\n', "not a readable TOML"),
    ('[layers]\n"a\\nb" = "int16"\n', "no layer named 'a\\nb'"),  # (one line: the newline was printed as is)
])
def test_bad_qconfig(text, message, tmp_path, capsys):
    import onnx

    path, cfg = tmp_path / "m.onnx", tmp_path / "q.toml"
    onnx.save(mixed_model(), path)
    cfg.write_text(text)
    code = main(["build", str(path), "--quantize", "int8", "--qconfig", str(cfg), "--out", str(tmp_path / "b")])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err and err.count("\n") == 1, err
    assert not (tmp_path / "b").exists()


needs_models = pytest.mark.skipif(not (MODELS / "resnet8.onnx").is_file(), reason="needs ../shared/models")


def validate_json(capsys, *argv: str) -> dict:
    code = main(["validate", *map(str, argv), "--json"])
    report = json.loads(capsys.readouterr().out)
    report["exit"] = code
    return report


@needs_models
def test_resnet8_int16_host_beats_int8(capsys):
    """16x8 resnet8 is bit-exact and clearly more faithful to float than int8 (same calibration)."""
    args = [MODELS / "resnet8.onnx", "--inputs", MODELS / "resnet8.inputs.npz", "--calib",
            MODELS / "resnet8.calib.npz"]
    q8 = validate_json(capsys, *args, "--quantize", "int8")
    q16 = validate_json(capsys, *args, "--quantize", "int16")
    assert q16["exit"] == 0 and q16["bitexact_vs_reference"] == 1.0
    assert q16["sqnr_db"] >= q8["sqnr_db"] + 3.0


@needs_models
@pytest.mark.skipif(not HAVE_ARM, reason="needs arm-none-eabi-gcc and qemu-system-arm")
def test_ad01_int16_cortex_m7(capsys):
    q = validate_json(capsys, MODELS / "ad01.onnx", "--target", "cortex-m7", "--inputs", MODELS / "ad01.inputs.npz",
                      "--quantize", "int16", "--calib", MODELS / "ad01.calib.npz")
    assert q["exit"] == 0 and q["bitexact_vs_reference"] == 1.0 and q["instructions"] > q["macs"]


Q15_CASES = ["conv2d", "depthwise_c7_dilation2", "flatten_gemm_nhwc", "residual_add_relu", "concat_channels",
             "softmax_channels_nhwc", "sigmoid"]


@pytest.mark.parametrize("target,case", [("host", c) for c in Q15_CASES] + [
    pytest.param("cortex-m7", c, marks=pytest.mark.skipif(not HAVE_ARM, reason="needs arm-none-eabi-gcc and "
                                                                                "qemu-system-arm"))
    for c in ("conv2d", "residual_add_relu")])
def test_q15_bitexact(target, case, tmp_path):
    """--quantize qformat --qbits 16: int16 activations with power-of-two scales (Qm.n, m + n = 15), power-of-two
    int8 weights, so every Conv/Gemm multiplier is 2^14 (a rounding shift)."""
    samples, res, g, want = build_and_run(case_model(case), tmp_path, quantize="q15", target=target)
    assert_bitexact(g, samples, res)
    assert_int8_sane(res, want, "q15")
    for name in g.activations():
        t = g.tensors[name]
        assert t.dtype == "int16" and t.zero_point == 0 and np.exp2(np.round(np.log2(t.scale))) == t.scale
    for node in g.nodes:
        if node.op in ("Conv", "Gemm"):
            assert set(node.q["mult"].tolist()) == {1 << 14}


def test_qbits16_cli(tmp_path, capsys):
    import onnx

    path = tmp_path / "m.onnx"
    onnx.save(mixed_model(), path)
    assert main(["build", str(path), "--quantize", "qformat", "--qbits", "16", "--calib", "random", "--out",
                 str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    assert "out Q" in out and ".1" in out  # every layer's Qm.n, e.g. Q3.12
    meta = json.loads((tmp_path / "b" / "edgec.json").read_text())
    assert meta["quantize"] == "q15" and all(int(f[1:].split(".")[0]) + int(f.split(".")[1]) == 15
                                             for f in meta["formats"].values())
    assert main(["build", str(path), "--quantize", "int8", "--qbits", "16", "--out", str(tmp_path / "c")]) == 2


def test_auto_flash_budget_and_sqnr_drop(tmp_path):
    """--quantize auto: the weights fit the budget (int4 where it costs least), the mixed int8/int4/int16 model is
    bit-exact; with --max-sqnr-drop the measured output SQNR stays within the drop of all-int8's."""
    _, _, g8, _ = build_and_run(mixed_model(), tmp_path / "q8", quantize="int8")
    from edgec.build import _const_bytes, lower_graph
    from edgec.target import load_target

    int8_bytes = _const_bytes(lower_graph(g8, load_target("host"))[0])
    budget = int8_bytes * 3 // 4
    samples, res, g, _ = build_and_run(mixed_model(), tmp_path / "a", quantize="auto", flash_budget=budget)
    auto = g.info["auto"]
    assert auto["int8_weight_bytes"] == int8_bytes and auto["weight_bytes"] <= budget
    assert "int4" in auto["layers"].values()
    assert_bitexact(g, samples, res)
    samples, res, g, _ = build_and_run(mixed_model(), tmp_path / "d", quantize="auto", max_sqnr_drop=1.0)
    auto = g.info["auto"]
    assert auto["sqnr_db"] >= auto["int8_sqnr_db"] - 1.0 and auto["weight_bytes"] <= auto["int8_weight_bytes"]
    assert_bitexact(g, samples, res)


def test_auto_needs_constraint_and_calib(tmp_path, capsys):
    import onnx

    path = tmp_path / "m.onnx"
    onnx.save(mixed_model(), path)
    assert main(["build", str(path), "--quantize", "auto", "--out", str(tmp_path / "b")]) == 2
    assert "--calib" in capsys.readouterr().err
    assert main(["build", str(path), "--quantize", "int8", "--flash-budget", "4k", "--out", str(tmp_path / "b")]) == 2
    assert "--quantize auto" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()
