"""End to end: the user's two example models, import features, and the MLPerf Tiny models (host and every target)."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from helpers import (
    EMULATED_TARGETS,
    MODELS,
    assert_bitexact,
    assert_float_close,
    assert_int8_sane,
    build_and_run,
    make_model,
    needs_target,
)
from onnx import helper

from edgec.cli import main
from edgec.examples import convnet, simple_model
from edgec.runner import run_build
from edgec.target import load_target

needs_models = pytest.mark.skipif(not (MODELS / "resnet8.onnx").is_file(), reason="needs ../shared/models")


# Every target; the ConvNet does not fit the 16 KiB microbit (see test_fits_or_refuses), and in float its
# 37 KB arena needs a larger Cortex-M0+ part than the default 32 KiB.
EXAMPLES = [pytest.param(b, t, marks=needs_target(t) if t != "host" else (), id=f"{t}-{name}")
            for t in ["host", *EMULATED_TARGETS] for b, name in [(simple_model, "SimpleModel"), (convnet, "ConvNet")]
            if not (t == "cortex-m0plus-microbit" and b is convnet)]
LIMITS = {"cortex-m0plus": {"ram_bytes": 64 * 1024}}


@pytest.mark.parametrize("builder,target", EXAMPLES)
def test_example_models(builder, target, tmp_path):
    limits = LIMITS.get(target, {})
    _, res, _, want = build_and_run(builder(), tmp_path / "f", target=target, **limits)
    assert_float_close(res, want)
    samples, res, g, want = build_and_run(builder(), tmp_path / "q", quantize="int8", target=target, **limits)
    assert_bitexact(g, samples, res)
    assert_int8_sane(res, want)
    if target != "host":
        assert len(res.instructions) == len(samples) and min(res.instructions) > 0
        again = run_build(tmp_path / "q" / "build", samples)
        assert again.instructions == res.instructions  # exact and repeatable


def test_opset7_model_is_converted(tmp_path):
    rng = np.random.default_rng(3)
    nodes = [helper.make_node("Conv", ["input", "W", "B"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c", "g", "b", "m", "v"], ["bn"]),
             helper.make_node("Relu", ["bn"], ["r"]), helper.make_node("Flatten", ["r"], ["f"]),
             helper.make_node("Gemm", ["f", "FW", "FB"], ["output"], transB=1)]
    inits = {"W": rng.standard_normal((4, 2, 3, 3)).astype(np.float32), "B": np.zeros(4, np.float32),
             "g": np.ones(4, np.float32), "b": np.zeros(4, np.float32), "m": np.zeros(4, np.float32),
             "v": np.ones(4, np.float32), "FW": rng.standard_normal((3, 4 * 5 * 5)).astype(np.float32) * 0.1,
             "FB": np.zeros(3, np.float32)}
    model = make_model(nodes, {"input": [1, 2, 5, 5]}, {"output": [1, 3]}, inits, opset=7)
    samples, res, g, want = build_and_run(model, tmp_path)
    assert_float_close(res, want)
    assert [n.op for n in g.nodes] == ["LayoutCast", "Conv", "Reshape", "Gemm"]  # BN folded, Relu fused


def test_initializers_listed_as_inputs(tmp_path):
    model = simple_model()
    for init in model.graph.initializer:
        model.graph.input.append(helper.make_tensor_value_info(init.name, init.data_type, list(init.dims)))
    _, res, _, want = build_and_run(model, tmp_path)
    assert_float_close(res, want)


def test_constant_subgraphs_are_folded(tmp_path):
    """Reshape target computed from Shape/Gather/Concat, a Constant and a ConstantOfShape bias."""
    one = onnx.numpy_helper.from_array(np.array([1.0], np.float32))
    nodes = [helper.make_node("Shape", ["input"], ["shape"]),
             helper.make_node("Gather", ["shape", "zero"], ["batch"], axis=0),
             helper.make_node("Concat", ["batch", "minus1"], ["target"], axis=0),
             helper.make_node("Reshape", ["input", "target"], ["flat"]),
             helper.make_node("Constant", [], ["scale"], value=onnx.numpy_helper.from_array(
                 np.full((1, 24), 0.5, np.float32))),
             helper.make_node("Mul", ["flat", "scale"], ["scaled"]),
             helper.make_node("ConstantOfShape", ["bias_shape"], ["bias"], value=one),
             helper.make_node("Add", ["scaled", "bias"], ["output"])]
    model = make_model(nodes, {"input": [1, 2, 3, 4]}, {"output": [1, 24]},
                       {"zero": np.array([0], np.int64), "minus1": np.array([-1], np.int64),
                        "bias_shape": np.array([1, 24], np.int64)})
    samples, res, g, want = build_and_run(model, tmp_path)
    assert_float_close(res, want)
    assert [n.op for n in g.nodes] == ["Reshape", "Mul", "Add"]


def test_dynamic_batch_with_input_shape(tmp_path, capsys):
    model = convnet()
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "N"
    model.graph.output[0].type.tensor_type.shape.dim[0].dim_param = "N"
    path = tmp_path / "dyn.onnx"
    onnx.save(model, path)
    code = main(["validate", str(path), "--input-shape", "input=1,1,28,28", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["max_abs_err"] < 1e-4


MLPERF = ["ad01", "resnet8", "dscnn_kws", "mobilenet_vww96"]


def validate_json(capsys, *argv: str) -> dict:
    code = main(["validate", *map(str, argv), "--json"])
    report = json.loads(capsys.readouterr().out)
    report["exit"] = code
    return report


@needs_models
@pytest.mark.parametrize("name", MLPERF)
def test_mlperf_host(name, capsys):
    model, inputs = MODELS / f"{name}.onnx", MODELS / f"{name}.inputs.npz"
    f = validate_json(capsys, model, "--inputs", inputs)
    assert f["exit"] == 0
    assert f["max_abs_err"] < 1e-4 * max(1.0, np.abs(np.load(MODELS / f"{name}.outputs.npz")["output"]).max())
    q = validate_json(capsys, model, "--inputs", inputs, "--quantize", "int8", "--calib", MODELS / f"{name}.calib.npz")
    assert q["exit"] == 0 and q["bitexact_vs_reference"] == 1.0
    # Fidelity at least that of the official int8 TFLite models (../shared/anchors.md), with a small margin.
    floor = {"ad01": 32.0, "resnet8": 16.0, "dscnn_kws": 5.5, "mobilenet_vww96": 30.0}[name]
    assert q["sqnr_db"] >= floor
    if name in ("resnet8", "mobilenet_vww96"):
        assert q["top1_agreement"] >= 0.9


# Every emulated target but the 16 KiB microbit, the Cortex-M0+ as a larger part than its default 256/32 KiB.
# The Cortex-M7 (DSP kernels) and the Cortex-M55 (Helium kernels) run all four models, every other target two of
# them in turn (all four pass on every target; the suite runs a share to stay within the CI time).
MLPERF_TARGETS = [t for t in EMULATED_TARGETS if t != "cortex-m0plus-microbit"]
MLPERF_LIMITS = {"cortex-m0plus": ["--flash", "1m", "--ram", "256k"]}
MLPERF_CASES = [pytest.param(t, name, marks=needs_target(t), id=f"{t}-{name}")
                for i, t in enumerate(MLPERF_TARGETS) for k, name in enumerate(MLPERF)
                if t in ("cortex-m7", "cortex-m55") or k in (i % 4, (i + 1) % 4)]


@needs_models
@pytest.mark.parametrize("target,name", MLPERF_CASES)
def test_mlperf_int8(target, name, capsys):
    model = MODELS / f"{name}.onnx"
    # minmax: these cases test the kernels on each target; the default auto calibration is tested on the host
    q = validate_json(capsys, model, "--target", target, "--inputs", MODELS / f"{name}.inputs.npz",
                      "--quantize", "int8", "--calib", MODELS / f"{name}.calib.npz", "--calibration", "minmax",
                      *MLPERF_LIMITS.get(target, []))
    assert q["exit"] == 0 and q["bitexact_vs_reference"] == 1.0
    # a real count: at most 2 multiply-accumulates per instruction with SMLAD, 16 with Helium's VMLADAVA.S8 and
    # with NEON's VMULL.S8 + VMLAL.S8 + VPADAL.S16 (3 instructions for 16)
    simd = {"mve", "neon"} & set(load_target(target).features)
    assert q["instructions"] > q["macs"] / (16 if simd else 2)
    assert q["arena_bytes"] >= q["arena_lower_bound_bytes"] > 0


# Float on single- and double-precision FPUs and AArch64 NEON (soft float on the M0+/M3 takes up to a minute).
@needs_models
@pytest.mark.parametrize("target", [pytest.param(t, marks=needs_target(t)) for t in
                                    ("cortex-m7", "cortex-m4", "cortex-a53")])
def test_resnet8_float(target, capsys):
    f = validate_json(capsys, MODELS / "resnet8.onnx", "--target", target, "--inputs",
                      MODELS / "resnet8.inputs.npz")
    assert f["exit"] == 0 and f["max_abs_err"] < 1e-4
