""".tflite models: import (the file's own NHWC int8 inputs and outputs and scales), build, run, and agreement with
TFLM (the tflite-micro package's interpreter, reference kernels) on the official MLPerf Tiny files and on small
generated models, one operator each."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tflite_builder as tb
from helpers import MODELS, integer_samples, needs_target

from edgec.build import BuildOptions, build
from edgec.cli import main
from edgec.errors import EdgecError
from edgec.frontends import load_model
from edgec.reference import quantize_feeds, run_graph
from edgec.runner import run_build
from edgec.validate import litert_outputs, tflm_divergence, tflm_outputs

pytest.importorskip("tflite_micro", reason="needs the tflite extra: pip install 'edgec[tflite]'")

OFFICIAL = ["ad01_int8", "kws_ref_model", "pretrainedResnet_quant", "str_ww_ref_model", "vww_96_int8"]
needs_models = pytest.mark.skipif(not (MODELS / "ad01_int8.tflite").is_file(), reason="needs ../shared/models")


def _official(name: str) -> tuple[Path, dict[str, np.ndarray], dict[str, np.ndarray]]:
    path = MODELS / f"{name}.tflite"
    inputs = dict(np.load(MODELS / f"{name}.inputs.npz"))
    outputs = dict(np.load(MODELS / f"{name}.outputs.npz"))
    return path, inputs, outputs


def cli_run(tmp_path: Path, name: str, target: str = "host", count: int | None = None):
    """Build, then edgec run on the model's own int8 NHWC inputs; (the output array edgec run wrote, the graph)."""
    path, inputs, outputs = _official(name)
    tmp_path.mkdir(parents=True, exist_ok=True)
    if count is not None:
        inputs = {k: v[:count] for k, v in inputs.items()}
    np.savez(tmp_path / "in.npz", **inputs)
    _, _, g = build(BuildOptions(path, target=target, out=tmp_path / "b"))
    assert main(["run", str(tmp_path / "b"), "--inputs", str(tmp_path / "in.npz"), "--output",
                 str(tmp_path / "out.npz")]) == 0
    got = np.load(tmp_path / "out.npz")
    (key,) = outputs
    assert list(got.files) == [key]  # keyed by the .tflite output name
    return got[key], g


@needs_models
@pytest.mark.parametrize("name", OFFICIAL)
def test_official_model_on_host(tmp_path, name):
    """Import and build keep the file's I/O (name, NHWC shape, int8 and its scale); `edgec run` reproduces TFLM's
    reference outputs (outputs.npz, all samples) exactly, and the C equals the integer reference. (The emulated
    targets: tests/test_tflm_models.py.)"""
    path, inputs, outputs = _official(name)
    g = load_model(path)
    (in_name,) = inputs
    assert g.inputs == [in_name] and g.shape(in_name) == inputs[in_name].shape[1:]
    assert g.arithmetic == "tflm"
    got, g = cli_run(tmp_path, name)
    assert got.dtype == np.int8 == outputs[g.outputs[0]].dtype
    np.testing.assert_array_equal(got, next(iter(outputs.values())).reshape(got.shape))
    # The C equals the numpy integer reference (fed the same int8 NHWC inputs).
    assert g.tensors[in_name].dtype == "int8"
    for k in range(3):
        ref = run_graph(g, {in_name: inputs[in_name][k]}, int8=True)[g.outputs[0]]
        np.testing.assert_array_equal(ref.reshape(got[k].shape), got[k])


@needs_models
def test_validate_reports_agreement_with_tflm_and_litert(tmp_path, capsys):
    import json

    path, inputs, _ = _official("str_ww_ref_model")
    np.savez(tmp_path / "in.npz", **{k: v[:4] for k, v in inputs.items()})
    rc = main(["validate", str(path), "--inputs", str(tmp_path / "in.npz"), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert report["bitexact_vs_reference"] == 1.0
    assert report["bitexact_vs_tflm"] == 1.0 and 0.9 <= report["bitexact_vs_litert"] <= 1.0
    assert rc == 0  # PASS means TFLM's integers


@needs_models
def test_every_layer_against_tflm_intermediates(tmp_path):
    """tflm_divergence lines up every TFLite operator with TFLM's own tensor: fed TFLM's inputs, each is within
    1 LSB (as measured on all five models), and the first layer reads the same input, so it is the same alone."""
    path, inputs, _ = _official("str_ww_ref_model")
    _, _, g = build(BuildOptions(path, out=tmp_path / "b"))
    (name,) = inputs
    x = inputs[name][0]
    t = g.tensors[name]
    rows = tflm_divergence(str(path), g, {name: ((x.astype(np.float64) - t.zero_point) * t.scale)})
    ops = [r["node"].split(" (")[0] for r in rows if "operator" in r["node"]]
    assert ops == ["DEPTHWISE_CONV_2D", "CONV_2D"] * 4 + ["RESHAPE", "FULLY_CONNECTED", "SOFTMAX"]
    assert all(r["max_diff_alone"] <= 1 for r in rows)
    assert rows[1]["equal"] == rows[1]["equal_alone"] and rows[-1]["op"] == "Softmax"


# ---- one operator each, generated files --------------------------------------------------------------------------

# A 16x8 output scale whose multiplier (s_in * s_w / s_out = 0.999995 * 2^-9) is above 0x7FFF8000: TFLM's 15-bit
# multiplier is then 0x7FFF, not (mult + 2^15) >> 16 = 0x8000.
S_OUT_NEAR_ONE = float(np.float32(0.05 / 256) * np.float32(0.005) / (0.999995 * 2.0**-9))


def _op_cases() -> list:
    rng = np.random.default_rng(0)
    same, valid = tb.SAME, tb.VALID
    # (id, model bytes, equal to TFLM with edgec's own arithmetic today, measured: logistic and tanh over all 256
    # int8 inputs)
    cases = [
        ("conv_same_s2_relu", tb.conv_model(rng, (1, 11, 9, 8), 16, (3, 3), (2, 2), same, "RELU"), False),
        ("conv_valid_per_tensor", tb.conv_model(rng, (1, 8, 8, 3), 4, (3, 2), (1, 2), valid, per_channel=False),
         False),
        ("conv_dilated_relu6", tb.conv_model(rng, (1, 10, 9, 2), 3, (3, 3), (1, 1), same, "RELU6", dilation=(2, 2)),
         False),
        ("depthwise_same_relu6", tb.conv_model(rng, (1, 7, 9, 4), 4, (3, 3), (2, 1), same, "RELU6", depthwise=True),
         False),
        ("depthwise_multiplier2", tb.conv_model(rng, (1, 6, 6, 3), 6, (3, 3), (1, 1), valid, depthwise=True,
                                                multiplier=2), False),
        ("conv_16x8_same_relu", tb.conv_model(rng, (1, 9, 7, 5), 6, (3, 3), (2, 2), same, "RELU", int16=True), True),
        ("depthwise_16x8_relu6", tb.conv_model(rng, (1, 7, 9, 4), 4, (3, 3), (2, 1), same, "RELU6", depthwise=True,
                                               int16=True), True),
        ("conv_16x8_multiplier_near_one", tb.conv_model(rng, (1, 6, 5, 5), 4, (3, 3), (1, 1), valid,
                                                        per_channel=False, int16=True, s_out=S_OUT_NEAR_ONE), True),
        ("fully_connected_16x8_relu", tb.fc_model(rng, (1, 37), 20, "RELU", int16=True), True),
        ("fully_connected_relu", tb.fc_model(rng, (1, 97), 48, "RELU"), True),
        ("fully_connected_4d_input", tb.fc_model(rng, (1, 4, 3, 8), 40), True),
        ("average_pool_same", tb.pool_model("AVERAGE_POOL_2D", (1, 7, 6, 3), (3, 3), (2, 2), same), False),
        ("average_pool_valid", tb.pool_model("AVERAGE_POOL_2D", (1, 8, 8, 4), (2, 2), (2, 2), valid), False),
        ("max_pool_same_relu", tb.pool_model("MAX_POOL_2D", (1, 7, 6, 3), (3, 3), (2, 2), same, "RELU"), True),
        ("max_pool_valid", tb.pool_model("MAX_POOL_2D", (1, 9, 5, 2), (2, 3), (3, 1), valid), True),
        ("add", tb.binary_model("ADD", (1, 4, 5, 3)), False),
        ("add_relu_n1_to_1", tb.binary_model("ADD", (1, 4, 5, 3), scales=(0.004, 0.006, 0.01), act="RELU_N1_TO_1"),
         True),
        ("sub", tb.binary_model("SUB", (1, 4, 5, 3)), False),
        ("mul", tb.binary_model("MUL", (1, 4, 5, 3), scales=(0.05, 0.07, 0.2)), False),
        ("relu", tb.unary_model("RELU", (1, 4, 8, 8), 0.05, -3), True),
        ("relu6", tb.unary_model("RELU6", (1, 4, 8, 8), 0.05, -3), True),
        ("logistic", tb.unary_model("LOGISTIC", (1, 4, 8, 8), 1 / 256, -128), True),
        ("tanh", tb.unary_model("TANH", (1, 4, 8, 8), 1 / 128, 0), True),
        ("hard_swish", tb.unary_model("HARD_SWISH", (1, 4, 8, 8), 0.04, -20), False),
        ("leaky_relu", tb.unary_model("LEAKY_RELU", (1, 4, 8, 8), 0.05, -3, "LeakyReluOptions", Alpha=0.2), False),
        ("reshape_flatten", tb.reshape_model((1, 3, 4, 5), (1, 60)), True),
        ("reshape_4d", tb.reshape_model((1, 3, 4, 5), (1, 6, 2, 5)), True),
        ("pad", tb.pad_model((1, 3, 4, 5), [[0, 0], [1, 2], [0, 1], [0, 0]]), True),
        ("concat_channels", tb.concat_model([(1, 3, 4, 2), (1, 3, 4, 5)], 3), True),
        ("concat_height", tb.concat_model([(1, 3, 4, 2), (1, 2, 4, 2)], 1), True),
        ("transpose", tb.transpose_model((1, 3, 4, 5), (0, 2, 1, 3)), True),
        ("mean", tb.mean_model((1, 5, 6, 7), False), False),
        ("mean_keep_dims", tb.mean_model((1, 5, 6, 7), True), False),
        ("softmax", tb.softmax_model((1, 10)), True),
    ]
    return cases


OP_CASES = _op_cases()


def _run_generated(tmp_path: Path, data: bytes, count: int = 16, target: str = "host"):
    """Build the model, run `count` samples of random integers (the first: every value from the smallest in order);
    returns (raw outputs of the C, TFLM's outputs, graph, samples)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "model.tflite"
    path.write_bytes(data)
    out, _, g = build(BuildOptions(path, target=target, out=tmp_path / "b"))
    samples = integer_samples(g, count)
    res = run_build(out, samples)
    return res, tflm_outputs(str(path), g, samples), g, samples


def _check_generated(tmp_path: Path, data: bytes, count: int = 16, target: str = "host"):
    res, want, g, samples = _run_generated(tmp_path, data, count, target)
    for s, raw, w in zip(samples, res.raw, want):
        ref = run_graph(g, quantize_feeds(g, s), int8=True)
        for name in g.outputs:
            np.testing.assert_array_equal(raw[name], ref[name])
            np.testing.assert_array_equal(raw[name], w[name].reshape(raw[name].shape))
    return g


@pytest.mark.parametrize("case", OP_CASES, ids=[c[0] for c in OP_CASES])
def test_operator_bitexact_with_tflm(tmp_path, case):
    """The C equals the integer reference and TFLM's outputs, bit for bit."""
    _check_generated(tmp_path, case[1])


S16_CASES = [c for c in OP_CASES if "16x8" in c[0]]


@pytest.mark.qemu
@pytest.mark.parametrize("target", [pytest.param(t, marks=needs_target(t)) for t in ("cortex-m7", "cortex-m55")])
def test_16x8_on_targets(tmp_path, target):
    """The 16x8 layers' kernels on the DSP (SMLAD, the 32-bit output stage where sums fit int32) and Helium
    targets equal TFLM: TFLM's int64 requantization is ec_requantize_s64 with TFLM's 15-bit multiplier."""
    for name, data, _ in S16_CASES:
        g = _check_generated(tmp_path / name, data, count=4, target=target)
        assert any(n.dtype == "int16" for n in g.nodes)


def test_16x8_mult16_is_tflms():
    """The reduced multiplier is (mult + 2^15) >> 16, and 0x7FFF from 0x7FFF0000 up (never 2^15)."""
    from edgec.ops import tflm

    assert [tflm.reduce_multiplier(m) for m in (1 << 30, 0x7FFEFFFF, 0x7FFF0000, 0x7FFF8000, 2**31 - 1)] == \
        [1 << 14, 0x7FFF, 0x7FFF, 0x7FFF, 0x7FFF]


def test_16x8_int32_bias_refused(tmp_path):
    """TFLM accumulates a 16x8 layer with an int32 bias in int32: refused with a message, nothing written."""
    data = tb.conv_model(np.random.default_rng(0), (1, 6, 6, 3), 4, (3, 3), (1, 1), tb.SAME, int16=True,
                         bias16="int32")
    path = tmp_path / "m.tflite"
    path.write_bytes(data)
    with pytest.raises(EdgecError, match="int64 bias"):
        build(BuildOptions(path, out=tmp_path / "b"))
    assert not (tmp_path / "b").exists()


def test_float_model_matches_litert_and_quantizes(tmp_path):
    """A float32 .tflite builds in float and agrees with LiteRT; --quantize int8 with --calib (NHWC samples)
    builds and the C equals the integer reference."""
    path = tmp_path / "float.tflite"
    path.write_bytes(tb.float_model(np.random.default_rng(3)))
    out, _, g = build(BuildOptions(path, out=tmp_path / "f"))
    assert g.arithmetic == "edgec" and g.inputs == ["image"] and g.shape("image") == (1, 9, 11, 3)
    rng = np.random.default_rng(4)
    samples = [{"image": rng.standard_normal((1, 9, 11, 3)).astype(np.float32)} for _ in range(3)]
    res = run_build(out, samples)
    for got, want in zip(res.outputs, litert_outputs(str(path), g, samples)):
        np.testing.assert_allclose(got["probs"], want["probs"], rtol=0, atol=1e-5)
    np.savez(tmp_path / "calib.npz", image=rng.standard_normal((16, 1, 9, 11, 3)).astype(np.float32))
    out, meta, g = build(BuildOptions(path, quantize="int8", calib=tmp_path / "calib.npz", out=tmp_path / "q"))
    res = run_build(out, samples)
    for s, raw in zip(samples, res.raw):
        np.testing.assert_array_equal(raw["probs"], run_graph(g, quantize_feeds(g, s), int8=True)["probs"])
    for got, want in zip(res.outputs, litert_outputs(str(path), g, samples)):
        assert np.abs(got["probs"] - want["probs"]).max() <= 0.05


def test_quantize_and_dequantize_at_the_model_boundary(tmp_path):
    """float -> QUANTIZE -> int8 layer -> DEQUANTIZE -> float: the build takes and gives the integers (run and
    validate quantize and dequantize with the file's scales) and stays within one output step of TFLM."""
    path = tmp_path / "qdq.tflite"
    path.write_bytes(tb.quantize_dequantize_model(np.random.default_rng(0)))
    out, meta, g = build(BuildOptions(path, out=tmp_path / "b"))
    assert g.tensors["x"].dtype == "int8" and g.tensors["x"].scale == pytest.approx(0.02)
    assert meta["integer_outputs"] == []  # the file's output is float: edgec run writes floats
    rng = np.random.default_rng(1)
    samples = [{"x": rng.standard_normal((1, 16)).astype(np.float32)} for _ in range(8)]
    res = run_build(out, samples)
    for s, raw, got, want in zip(samples, res.raw, res.outputs, tflm_outputs(str(path), g, samples)):
        np.testing.assert_array_equal(raw["y"], run_graph(g, quantize_feeds(g, s), int8=True)["y"])
        assert want["y"].dtype == np.float32 and np.abs(got["y"] - want["y"]).max() <= 0.05 * 1.001


def test_recognised_by_content(tmp_path):
    data = tb.softmax_model((1, 10))
    (tmp_path / "model.bin").write_bytes(data)
    assert load_model(tmp_path / "model.bin").info["source_format"] == "tflite"
    (tmp_path / "fake.tflite").write_bytes(b"\x08\x01\x12\x04onnx" + bytes(40))
    with pytest.raises(EdgecError, match="not a TFLite model"):
        load_model(tmp_path / "fake.tflite")


# ---- bad files: exit 2, one message, nothing written ----------------------------------------------------------------

def _cli(tmp_path: Path, model: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgec.cli", "build", str(model), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, cwd=tmp_path)


def test_truncated_file_exit_2_nothing_written(tmp_path):
    data = tb.conv_model(np.random.default_rng(0), (1, 6, 6, 3), 4, (3, 3), (1, 1), tb.SAME)
    bad = tmp_path / "truncated.tflite"
    bad.write_bytes(data[: len(data) // 2])
    p = _cli(tmp_path, bad)
    assert p.returncode == 2, p.stderr
    assert "Traceback" not in p.stderr and "truncated.tflite" in p.stderr
    assert not (tmp_path / "out").exists()


def test_every_truncation_is_a_clear_error(tmp_path):
    data = tb.conv_model(np.random.default_rng(0), (1, 6, 6, 3), 4, (3, 3), (1, 1), tb.SAME)
    path = tmp_path / "cut.tflite"
    for cut in range(0, len(data) - 1, 7):
        path.write_bytes(data[:cut])
        with pytest.raises(EdgecError):
            load_model(path)


@pytest.mark.parametrize("model", ["conv", "mean"])
def test_corrupted_bytes_give_edgec_errors_only(tmp_path, model):
    """Random byte changes anywhere in a small model: loading, the passes, quantizing and lowering either work or
    raise EdgecError (exit 2), never another exception."""
    from edgec.build import lower_graph, prepare_graph, quantize_with
    from edgec.target import load_target

    rng = np.random.default_rng(11)
    data = tb.conv_model(rng, (1, 6, 6, 3), 4, (3, 3), (1, 1), tb.SAME, "RELU") if model == "conv" else \
        tb.mean_model((1, 5, 6, 7), False)
    path = tmp_path / "fuzz.tflite"
    errors = 0
    for _ in range(300):
        d = bytearray(data)
        for i in rng.integers(8, len(d), size=rng.integers(1, 4)):
            d[i] = int(rng.integers(0, 256))
        path.write_bytes(bytes(d))
        try:
            g = prepare_graph(path)
            quantize_with(g, BuildOptions(path, quantize="int8"))
            lower_graph(g, load_target("host"))
        except EdgecError:
            errors += 1
    assert errors > 0  # (the changes do reach the structure)


def _model_with(change) -> bytes:
    m = tb.TFLiteBuilder()
    x = m.tensor("x", (1, 4), scale=0.1)
    w = m.tensor("w", (3, 4), data=np.arange(12).reshape(3, 4), scale=0.01)
    y = m.tensor("y", (1, 3), scale=0.1)
    m.op("FULLY_CONNECTED", [x, w, -1], [y], "FullyConnectedOptions")
    change(m, x, w, y)
    return m.finish([x], [y])


def _shorter_buffer(m, x, w, y):
    m.tensors[w].shape = (3, 8)


def _index_out_of_range(m, x, w, y):
    m.ops[0].inputs[1] = 99


def _negative_dim(m, x, w, y):
    m.tensors[x].shape = (1, -4)


def _wrong_output_shape(m, x, w, y):
    m.tensors[y].shape = (1, 30)


def _unsupported_op(m, x, w, y):
    m.ops[0].code = tb.tflite.BuiltinOperator.STRIDED_SLICE


@pytest.mark.parametrize("change, message", [
    (_shorter_buffer, "needs 24 bytes; its buffer holds 12"),
    (_index_out_of_range, "tensor index 99 is out of range"),
    (_negative_dim, "positive sizes"),
    (_wrong_output_shape, "the operator computes"),
    (_unsupported_op, "STRIDED_SLICE"),
], ids=["buffer_shorter_than_shape", "index_out_of_range", "negative_dim", "wrong_output_shape", "unsupported_op"])
def test_bad_file_exit_2(tmp_path, capsys, change, message):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(_model_with(change))
    assert main(["build", str(bad), "--out", str(tmp_path / "out")]) == 2  # (any other exception would raise)
    err = capsys.readouterr().err
    assert message in err and "bad.tflite" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("kind", ["ADD", "LOGISTIC"])
def test_int16_elementwise_refused(tmp_path, kind):
    """edgec has no TFLM arithmetic for int16 elementwise operators: exit 2 naming the operator, nothing written."""
    m = tb.TFLiteBuilder()
    ins = [m.tensor(f"x{k}", (1, 4, 4, 3), "int16", scale=0.001) for k in range(2 if kind == "ADD" else 1)]
    y = m.tensor("y", (1, 4, 4, 3), "int16", scale=1 / 32768 if kind == "LOGISTIC" else 0.002)
    m.op(kind, ins, [y], "AddOptions" if kind == "ADD" else None)
    path = tmp_path / "m.tflite"
    path.write_bytes(m.finish(ins, [y]))
    assert main(["build", str(path), "-o", str(tmp_path / "out")]) == 2
    assert not (tmp_path / "out").exists()
    with pytest.raises(EdgecError, match=f"{kind} .*TFLM's arithmetic"):
        build(BuildOptions(path, out=tmp_path / "out"))
