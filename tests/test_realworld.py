"""Real-world exports: classic ImageNet architectures as old converters wrote them (tests/realworld_models.py), and
the ops and forms they use (LRN, ReduceMean over any axes, Pad reflect/edge, Sum/Mean/Max/Min of several inputs,
float64 and integer inputs, Dropout masks, ConstantOfShape weights, Gemm weights behind a Transpose)."""

from __future__ import annotations

import json
import zlib

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from helpers import assert_bitexact, assert_float_close, assert_int8_sane, build_and_run, make_model, needs_target
from onnx import TensorProto, helper, numpy_helper
from realworld_models import ARCHITECTURES, alexnet, resnet50, squeezenet

from edgec.build import BuildOptions, build
from edgec.cli import main
from edgec.frontends.onnx import load_onnx
from edgec.ops.reduce import reduce_axes
from edgec.reference import quantize_feeds, run_graph
from edgec.runner import run_build
from edgec.validate import onnxruntime_outputs

R = np.random.default_rng(18)
REL = 1e-4  # float builds: max abs error / output range (validate itself passes at 1e-3)


def w(*shape: int, scale: float = 0.5) -> np.ndarray:
    return (R.standard_normal(shape) * scale).astype(np.float32)


def make_case(name: str) -> onnx.ModelProto:
    """CASES[name] with weights that depend on the name only (not on which cases ran before in this process)."""
    global R
    R = np.random.default_rng(zlib.crc32(name.encode()))
    return CASES[name]()


def n(op: str, ins: list[str], outs: list[str], **attrs):
    return helper.make_node(op, ins, outs, **attrs)


def save_samples(path, model: onnx.ModelProto, count: int = 4, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    inits = {i.name for i in model.graph.initializer}
    arrays = {}
    for inp in model.graph.input:
        if inp.name not in inits:
            shape = [d.dim_value for d in inp.type.tensor_type.shape.dim]
            arrays[inp.name] = rng.standard_normal([count, *shape]).astype(np.float32)
    np.savez(path, **arrays)
    return arrays


def validate_json(tmp_path, model: onnx.ModelProto, capsys) -> tuple[dict, list[dict]]:
    """edgec validate --target host on the model (exit 0 = PASS); returns its JSON report and onnxruntime's outputs
    on the same samples."""
    path, inputs = tmp_path / "model.onnx", tmp_path / "inputs.npz"
    onnx.save(model, path)
    arrays = save_samples(inputs, model)
    code = main(["validate", str(path), "--target", "host", "--inputs", str(inputs), "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    count = len(next(iter(arrays.values())))
    want = onnxruntime_outputs(str(path), [{k: v[i] for k, v in arrays.items()} for i in range(count)])
    return json.loads(out), want


def output_range(want: list[dict]) -> float:
    values = np.concatenate([v.ravel() for s in want for v in s.values()])
    return float(values.max() - values.min())


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_architecture_validates_in_float(arch, tmp_path, capsys):
    model = ARCHITECTURES[arch]()
    report, want = validate_json(tmp_path, model, capsys)
    assert report["max_abs_err"] <= REL * output_range(want), report
    assert report["top1_agreement"] == 1.0


@pytest.mark.parametrize("arch", ["squeezenet", "vgg", "densenet"])
def test_converted_oracle_equals_original(arch, tmp_path):
    """Where onnxruntime still runs the old opset, the version-converted model validate runs gives its outputs."""
    model = ARCHITECTURES[arch]()
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    x = np.random.default_rng(3).standard_normal([d.dim_value for d in model.graph.input[0].type.tensor_type.shape
                                                  .dim]).astype(np.float32)
    original = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"data": x})[0]
    converted = onnxruntime_outputs(str(path), [{"data": x}])[0]["prob"]
    np.testing.assert_allclose(converted, original, rtol=0, atol=1e-6)


def test_old_opset_ops_onnxruntime_cannot_run(tmp_path, capsys):
    """BatchNormalization-6, Gemm-6, PRelu-6 and AveragePool-1 (padded: the padding is not counted) at opset 6, IR 3:
    onnxruntime has no kernels for them, edgec converts the model and validate compares with onnxruntime on the
    converted model."""
    inits = {"g": w(4) + 1, "b": w(4), "m": w(4), "v": np.abs(w(4)) + 0.5, "s": w(4, 1, 1), "W": w(5, 16),
             "B": w(5)}
    nodes = [n("BatchNormalization", ["input", "g", "b", "m", "v"], ["bn"], is_test=1),
             n("PRelu", ["bn", "s"], ["pr"]),
             n("AveragePool", ["pr"], ["ap"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
             n("Flatten", ["ap"], ["f"]), n("Gemm", ["f", "W", "B"], ["output"], transB=1, broadcast=1)]
    graph = helper.make_graph(
        nodes, "old", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 4, 4, 4])] +
        [helper.make_tensor_value_info(k, TensorProto.FLOAT, v.shape) for k, v in inits.items()],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 5])],
        [numpy_helper.from_array(v, k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 6)])
    model.ir_version = 3
    path = tmp_path / "old.onnx"
    onnx.save(model, path)
    with pytest.raises(Exception, match="NOT_IMPLEMENTED"):
        ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    report, want = validate_json(tmp_path, model, capsys)
    assert report["max_abs_err"] <= REL * output_range(want), report


@pytest.mark.parametrize("builder", [resnet50, squeezenet, alexnet], ids=["resnet50", "squeezenet", "alexnet"])
def test_architecture_int8_bitexact(builder, tmp_path):
    """int8 builds, bit-exact with the integer reference; AlexNet's LRN layers (float only) stay float."""
    model = builder()
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    calib = tmp_path / "calib.npz"
    save_samples(calib, model, count=8, seed=5)
    lrn = [node.name for node in model.graph.node if node.op_type == "LRN"]
    qconfig = None
    if lrn:
        qconfig = tmp_path / "q.toml"
        qconfig.write_text("[layers]\n" + "".join(f'{name} = "float"\n' for name in lrn))
    out, _, g = build(BuildOptions(path, quantize="int8", calib=calib, qconfig=qconfig, out=tmp_path / "build"))
    assert {node.dtype for node in g.nodes if node.op == "LRN"} <= {"float32"}
    arrays = save_samples(tmp_path / "x.npz", model, count=3, seed=6)
    samples = [{k: v[i] for k, v in arrays.items()} for i in range(3)]
    res = run_build(out, samples)
    assert_bitexact(g, samples, res)
    want = onnxruntime_outputs(str(path), samples)
    span = output_range(want)
    err = max(float(np.abs(got["prob"] - ref["prob"]).max()) for got, ref in zip(res.outputs, want))
    assert err <= 0.1 * span, (err, span)


def after_conv(node_fn, c: int = 6, hw=(7, 9), extra=None, opset: int = 17):
    """input -> 1x1 Conv (channels-last output) -> the op's nodes reading 'pre' and writing 'output'."""
    inits = {"preW": w(c, 3, 1, 1), "preB": w(c, scale=0.1), **(extra or {})}
    return make_model([n("Conv", ["input", "preW", "preB"], ["pre"])] + node_fn("pre"), {"input": [1, 3, *hw]},
                      {"output": None}, inits, opset=opset)


def axes(*a: int) -> np.ndarray:
    return np.array(a, np.int64)


CASES = {
    "pad_reflect_nhwc": lambda: after_conv(lambda x: [n("Pad", [x, "p"], ["output"], mode="reflect")],
                                           extra={"p": axes(0, 0, 2, 1, 0, 0, 1, 3)}),
    "pad_edge_nhwc": lambda: after_conv(lambda x: [n("Pad", [x, "p"], ["output"], mode="edge")],
                                        extra={"p": axes(0, 1, 2, 0, 0, 2, 0, 3)}),
    "pad_reflect_2d": lambda: make_model([n("Pad", ["input", "p"], ["output"], mode="reflect")], {"input": [3, 5]},
                                         {"output": None}, {"p": axes(2, 4, 1, 3)}),
    "reduce_mean_channels_keepdims": lambda: after_conv(lambda x: [n("ReduceMean", [x], ["output"], axes=[1])]),
    "reduce_mean_chw_no_keepdims": lambda: after_conv(lambda x: [n("ReduceMean", [x], ["output"], axes=[1, 2, 3],
                                                                   keepdims=0)]),
    "reduce_mean_axis_minus2_3d": lambda: make_model([n("ReduceMean", ["input"], ["output"], axes=[-2], keepdims=0)],
                                                   {"input": [2, 3, 7]}, {"output": None}),
    "reduce_mean_opset18_input": lambda: after_conv(lambda x: [n("ReduceMean", [x, "ax"], ["output"], keepdims=0)],
                                                    extra={"ax": axes(0, 2)}, opset=18),
    "reduce_mean_all": lambda: make_model([n("ReduceMean", ["input"], ["output"])], {"input": [2, 5, 3]},
                                          {"output": None}),
    "lrn_nhwc": lambda: after_conv(lambda x: [n("LRN", [x], ["output"], size=3, alpha=0.5, beta=0.75, bias=2.0)]),
    "lrn_plain": lambda: make_model([n("LRN", ["input"], ["output"], size=5, alpha=0.3, beta=0.6)],
                                    {"input": [2, 7, 3, 4]}, {"output": None}),
    "sum3_broadcast": lambda: make_model([n("Sum", ["input", "y", "c"], ["output"])],
                                         {"input": [1, 3, 4, 5], "y": [1, 1, 4, 1]}, {"output": None},
                                         {"c": w(5)}),
    "mean3_nhwc": lambda: after_conv(lambda x: [n("Relu", [x], ["r"]), n("Mean", [x, "r", "c"], ["output"])],
                                     extra={"c": w(6, 1, 1)}),
    "max3_const": lambda: after_conv(lambda x: [n("Sigmoid", [x], ["s"]), n("Max", [x, "s", "c"], ["output"])],
                                     extra={"c": w(1, 1, 9)}),
    "min2_broadcast": lambda: make_model([n("Min", ["input", "y"], ["output"])], {"input": [2, 6], "y": [1, 6]},
                                         {"output": None}),
    "sum1": lambda: make_model([n("Sum", ["input"], ["s"]), n("Relu", ["s"], ["output"])], {"input": [1, 8]},
                               {"output": None}),
    "gemm_transposed_weight_no_bias": lambda: make_model(
        [n("Transpose", ["W"], ["Wt"], perm=[1, 0]), n("Gemm", ["input", "Wt"], ["output"])], {"input": [1, 12]},
        {"output": None}, {"W": w(7, 12)}, opset=13),
    "constant_of_shape_bias": lambda: make_model(
        [n("ConstantOfShape", ["shp"], ["bias"], value=numpy_helper.from_array(np.array([0.25], np.float32))),
         n("Conv", ["input", "W", "bias"], ["output"], pads=[1, 1, 1, 1])], {"input": [1, 2, 5, 5]},
        {"output": None}, {"shp": axes(4), "W": w(4, 2, 3, 3)}),
    "dropout_mask_unused": lambda: make_model([n("Dropout", ["input", "r"], ["d", "mask"]),
                                               n("Relu", ["d"], ["output"])], {"input": [1, 9]}, {"output": None},
                                              {"r": np.array(0.3, np.float32)}),
}
INT8_CASES = ["pad_reflect_nhwc", "pad_edge_nhwc", "sum3_broadcast", "mean3_nhwc", "reduce_mean_channels_keepdims",
              "reduce_mean_chw_no_keepdims", "reduce_mean_opset18_input", "reduce_mean_axis_minus2_3d",
              "gemm_transposed_weight_no_bias", "constant_of_shape_bias", "dropout_mask_unused"]


@pytest.mark.parametrize("case", sorted(CASES))
def test_float_matches_onnxruntime_and_reference(case, tmp_path):
    samples, res, g, want = build_and_run(make_case(case), tmp_path)
    assert_float_close(res, want)
    for s, got in zip(samples, res.outputs):  # the float reference the op defines, too
        ref = run_graph(g, s)
        for name in g.outputs:
            np.testing.assert_allclose(got[name], ref[name], rtol=0, atol=1e-5 * max(1.0, np.abs(ref[name]).max()))


def lrn_by_spec(x: np.ndarray, size: int, alpha: float, beta: float, bias: float) -> np.ndarray:
    """The ONNX LRN formula written out: channels max(0, c - floor((size - 1) / 2)) ..
    min(C - 1, c + ceil((size - 1) / 2)), element by element."""
    y = np.zeros_like(x, dtype=np.float64)
    channels = x.shape[1]
    for idx in np.ndindex(*x.shape):
        c = idx[1]
        lo, hi = max(0, c - (size - 1) // 2), min(channels - 1, c + int(np.ceil((size - 1) / 2)))
        sq = sum(float(x[(idx[0], i) + idx[2:]]) ** 2 for i in range(lo, hi + 1))
        y[idx] = x[idx] / (bias + alpha / size * sq) ** beta
    return y


def test_lrn_even_size_matches_spec(tmp_path):
    """An even LRN size (ceil((size - 1) / 2) channels above, floor below): onnxruntime refuses it and onnx's
    reference evaluator sums the wrong axis, so the oracle is the specification's formula written out."""
    model = make_model([n("LRN", ["input"], ["output"], size=4, alpha=0.3, beta=0.6)], {"input": [2, 7, 3, 4]},
                       {"output": None})
    out, _, g = build(BuildOptions(_saved(tmp_path, model), out=tmp_path / "build"))
    x = np.random.default_rng(4).standard_normal((2, 7, 3, 4)).astype(np.float32)
    got = run_build(out, [{"input": x}]).outputs[0]["output"]
    want = lrn_by_spec(x, 4, 0.3, 0.6, 1.0)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * float(np.abs(want).max()))
    np.testing.assert_allclose(run_graph(g, {"input": x})["output"], want, rtol=0, atol=1e-6)


@pytest.mark.parametrize("case", INT8_CASES)
def test_int8_bitexact(case, tmp_path):
    # 64 calibration samples: with 16, a test sample of the 12-input Gemm lies outside the calibrated input range and
    # its clipping alone costs 5.7% of the output span (0.6% with 64)
    samples, res, g, want = build_and_run(make_case(case), tmp_path, quantize="int8", n_calib=64)
    assert_bitexact(g, samples, res)
    if not case.startswith("reduce_mean"):
        assert_int8_sane(res, want)
        return
    # The int8 mean (its output keeps the input's scale) is the float mean of its int8 input rounded to that grid:
    # within half a step of it.
    node = next(x for x in g.nodes if x.op == "ReduceMean")
    scale, zp = g.tensors[node.inputs[0]].scale, g.tensors[node.inputs[0]].zero_point
    for s in samples:
        values = run_graph(g, quantize_feeds(g, s), int8=True)
        x = (values[node.inputs[0]].astype(np.float64) - zp) * scale
        mean = x.mean(axis=tuple(reduce_axes(g, node)), keepdims=bool(node.attrs.get("keepdims", 1)))
        y = (values[node.outputs[0]].astype(np.float64) - zp) * scale
        assert float(np.abs(y - mean.reshape(y.shape)).max()) <= 0.5 * scale * (1 + 1e-9)


@needs_target("cortex-m7")
def test_new_kernels_on_cortex_m7(tmp_path):
    """The new kernels compiled for Cortex-M7 and run under QEMU: float close to onnxruntime, int8 bit-exact."""
    for case in ("lrn_nhwc", "reduce_mean_channels_keepdims", "pad_reflect_nhwc", "max3_const"):
        _, res, _, want = build_and_run(make_case(case), tmp_path / case, target="cortex-m7")
        assert_float_close(res, want)
    for case in ("pad_edge_nhwc", "reduce_mean_chw_no_keepdims"):
        samples, res, g, _ = build_and_run(make_case(case), tmp_path / f"{case}_q", target="cortex-m7", quantize="int8")
        assert_bitexact(g, samples, res)


@pytest.mark.parametrize("case", ["lrn_nhwc", "min2_broadcast", "max3_const"])
def test_float_only_ops_refuse_int8_clearly(case, tmp_path, capsys):
    path = tmp_path / "m.onnx"
    onnx.save(make_case(case), path)
    code = main(["build", str(path), "--quantize", "int8", "--calib", "random", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "only a float kernel" in err and "--qconfig" in err, err


def test_float64_model(tmp_path, capsys):
    """A model computing in float64 (input, weights, output): compiled in float32, validated against onnxruntime
    on float64 inputs."""
    graph = helper.make_graph(
        [n("MatMul", ["input", "W"], ["m"]), n("Add", ["m", "B"], ["a"]), n("Relu", ["a"], ["output"])], "f64",
        [helper.make_tensor_value_info("input", TensorProto.DOUBLE, [1, 10])],
        [helper.make_tensor_value_info("output", TensorProto.DOUBLE, [1, 6])],
        [numpy_helper.from_array(w(10, 6).astype(np.float64), "W"),
         numpy_helper.from_array(w(6).astype(np.float64), "B")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    g = load_onnx(_saved(tmp_path, model))
    assert g.info["input_types"] == {"input": "float64"}
    report, want = validate_json(tmp_path, model, capsys)
    assert want[0]["output"].dtype == np.float64
    assert report["max_abs_err"] <= REL * output_range(want), report


def _saved(tmp_path, model: onnx.ModelProto):
    path = tmp_path / "saved.onnx"
    onnx.save(model, path)
    return path


def int64_model(first_use: str = "Cast") -> onnx.ModelProto:
    first = (n("Cast", ["ids"], ["f"], to=TensorProto.FLOAT) if first_use == "Cast" else
             n("Add", ["ids", "one"], ["f"]))
    nodes = [first, n("Mul", ["f", "k"], ["output"])]
    graph = helper.make_graph(nodes, "i64", [helper.make_tensor_value_info("ids", TensorProto.INT64, [1, 8])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 8])],
                              [numpy_helper.from_array(w(8), "k"), numpy_helper.from_array(np.ones(1, np.int64),
                                                                                          "one")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def test_int64_input_cast_at_boundary(tmp_path, capsys):
    """An int64 input the model casts to float: the compiled model takes float32 values; validate feeds onnxruntime
    int64 (random samples are integers)."""
    path = _saved(tmp_path, int64_model())
    assert load_onnx(path).info["input_types"] == {"ids": "int64"}
    code = main(["validate", str(path), "--target", "host", "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    report = json.loads(captured.out)
    assert report["max_abs_err"] == 0.0, report


def test_int64_input_used_as_integer_is_refused(tmp_path, capsys):
    path = _saved(tmp_path, int64_model("Add"))
    code = main(["build", str(path), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "input 'ids' is INT64" in err and "Cast" in err and "Traceback" not in err, err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("training", [False, True])
def test_dropout_mask_used_or_training_is_refused(training, tmp_path, capsys):
    inits = {"r": np.array(0.3, np.float32)}
    if training:
        inits["t"] = np.array(True)
        nodes = [n("Dropout", ["input", "r", "t"], ["output"], name="drop")]
    else:
        nodes = [n("Dropout", ["input", "r"], ["d", "mask"], name="drop"), n("Cast", ["mask"], ["mf"], to=1),
                 n("Mul", ["d", "mf"], ["output"])]
    model = make_model(nodes, {"input": [1, 9]}, {"output": [1, 9]}, inits)
    path = _saved(tmp_path, model)
    code = main(["build", str(path), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    want = "training mode" if training else "mask output 'mask' is used"
    assert code == 2 and "Dropout (node 'drop')" in err and want in err, err


def test_reflect_pad_too_wide_is_refused(tmp_path, capsys):
    model = make_model([n("Pad", ["input", "p"], ["output"], mode="reflect", name="pad")], {"input": [1, 3]},
                       {"output": None}, {"p": axes(0, 3, 0, 0)})
    code = main(["build", str(_saved(tmp_path, model)), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "Pad (node 'pad')" in err and "reflect pads" in err, err


def test_cast_to_integer_is_refused(tmp_path, capsys):
    model = make_model([n("Cast", ["input"], ["i"], to=TensorProto.INT32, name="to_int"),
                        n("Cast", ["i"], ["output"], to=TensorProto.FLOAT)], {"input": [1, 4]}, {"output": [1, 4]})
    code = main(["build", str(_saved(tmp_path, model)), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "Cast (node 'to_int')" in err and "only a Cast to float" in err, err
