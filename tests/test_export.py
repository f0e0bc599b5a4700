"""edgec quantize: the QDQ model passes the checker, runs in onnxruntime and agrees with edgec's own int8 C; int16,
q15 and mixed models agree with edgec's integer reference and read back with the same integers."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from helpers import assert_bitexact, build_and_run, make_model, random_feeds
from onnx import TensorProto, helper
from test_int16 import QCONFIG, case_model, mixed_model

from edgec.build import BuildOptions, build, prepare_graph, quantize_with
from edgec.cli import main
from edgec.examples import convnet, sample_inputs
from edgec.export import export_qdq
from edgec.quantize import prequantized_scheme
from edgec.reference import quantize_feeds, run_graph
from edgec.runner import run_build

EXPORT_CASES = ["conv2d_stride2_asym_pads", "depthwise_multiplier2_stride2", "conv_relu6", "gemm_transb0_alpha_beta",
                "residual_add_relu", "mul_const_nhwc_relu", "prelu", "sigmoid", "maxpool_pads_ceil",
                "avgpool_include_pad", "global_avgpool", "concat_channels", "pad_constant", "softmax_2d",
                "flatten_gemm_nhwc", "transpose_nhwc", "conv1d", "matmul_3d", "hard_swish"]


def qdq_outputs(path, samples):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return [dict(zip(names, sess.run(None, s))) for s in samples]


@pytest.mark.parametrize("case", EXPORT_CASES)
def test_qdq_export_matches_edgec_int8(case, tmp_path):
    samples, res, g, _ = build_and_run(case_model(case), tmp_path, quantize="int8")
    path = tmp_path / "q.onnx"
    export_qdq(g, path)
    onnx.checker.check_model(onnx.load(path), full_check=True)
    for ours, theirs in zip(res.outputs, qdq_outputs(path, samples)):
        for name in g.outputs:
            step = g.tensors[name].scale
            diff = np.abs(ours[name] - theirs[name]) / step
            # onnxruntime computes in float between Q/DQ pairs and rounds half to even: a few LSB apart at most
            assert diff.max() <= 4.01 and diff.mean() <= 0.5, (case, diff.max(), diff.mean())


def test_quantize_command(tmp_path, capsys):
    model = convnet()
    src, calib, out = tmp_path / "c.onnx", tmp_path / "calib.npz", tmp_path / "c.qdq.onnx"
    onnx.save(model, src)
    np.savez(calib, **sample_inputs(model, 16, seed=1))
    assert main(["quantize", str(src), "--calib", str(calib), "-o", str(out)]) == 0
    qdq = onnx.load(out)
    ops = {n.op_type for n in qdq.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv", "Gemm"} <= ops
    assert [o.name for o in qdq.graph.output] == ["output"]
    x = sample_inputs(model, 4, seed=2)["input"]
    want = [ort.InferenceSession(str(src)).run(None, {"input": x[i]})[0] for i in range(4)]
    got = qdq_outputs(out, [{"input": x[i]} for i in range(4)])
    for w, gt in zip(want, got):
        assert np.abs(w - gt["output"]).max() < 0.1 * np.abs(w).max()


# ---- int16 (16x8), q15 and mixed models: onnxruntime agrees, and edgec reads back the same integers -------------

WIDE_CASES = ["conv2d_stride2_asym_pads", "depthwise_5x5_c12", "gemm_transb0_alpha_beta", "residual_add_relu",
              "mul_const_nhwc_relu", "sigmoid", "maxpool_pads_ceil", "avgpool_include_pad", "concat_channels",
              "pad_constant", "softmax_channels_nhwc", "flatten_gemm_nhwc", "transpose_nhwc", "conv1d"]
# default q7 elsewhere: q15 -> q7 -> float (conv_b, pool, flatten) -> int8 with int4 weights (fc1) -> q7 (fc2)
QCONFIG_LOWBIT = 'default = "qformat"\n[layers]\nconv_a = "q15"\nconv_b = "float"\nfc1 = "int4"\n'


def export_quantized(model, tmp_path, scheme: str = "none", qconfig: str | None = None, n_samples: int = 3):
    """edgec quantize's stages (graph passes without the layout, calibration on 16 random samples, quantization)
    and the QDQ file; returns (graph, test samples, file)."""
    rng = np.random.default_rng(0)
    src, calib, path, cfg = (tmp_path / n for n in ("m.onnx", "calib.npz", "q.onnx", "q.toml"))
    onnx.save(model, src)
    cal = [random_feeds(model, rng) for _ in range(16)]
    np.savez(calib, **{k: np.stack([c[k] for c in cal]) for k in cal[0]})
    if qconfig is not None:
        cfg.write_text(qconfig)
    g = prepare_graph(src, layout=False)
    quantize_with(g, BuildOptions(src, quantize=scheme, qconfig=cfg if qconfig else None, calib=calib))
    export_qdq(g, path)
    onnx.checker.check_model(onnx.load(path), full_check=True)
    return g, [random_feeds(model, rng) for _ in range(n_samples)], path


def integer_outputs(g, samples) -> list[dict[str, np.ndarray]]:
    """The numpy integer reference's graph outputs."""
    return [{n: v for n, v in run_graph(g, quantize_feeds(g, s), int8=True).items() if n in g.outputs}
            for s in samples]


def lsb_apart(g, samples, path) -> np.ndarray:
    """|onnxruntime - edgec's integer reference| in output steps, for every output value of every sample."""
    diffs = []
    for ours, theirs in zip(integer_outputs(g, samples), qdq_outputs(path, samples)):
        for name in g.outputs:
            t = g.tensors[name]
            diffs.append(np.abs((ours[name].astype(np.float64) - t.zero_point) * t.scale - theirs[name]).ravel()
                         / t.scale)
    return np.concatenate(diffs)


def reimport(path):
    """What edgec build does with the written file: its own scales and (mixed) layer schemes, no calibration."""
    g = prepare_graph(path, layout=False)
    quantize_with(g, BuildOptions(path, quantize=prequantized_scheme(g)))
    return g


def assert_same_integers(g, g2, samples) -> None:
    """The re-imported graph has the original's layers, schemes, element types, scales and zero points (Converts
    too), and its integer reference gives the same outputs bit for bit."""
    assert [(n.name, n.op, n.scheme) for n in g.nodes] == [(n.name, n.op, n.scheme) for n in g2.nodes]
    assert g.activations() == g2.activations()
    for name in g.activations():
        a, b = g.tensors[name], g2.tensors[name]
        assert (a.dtype, a.scale, a.zero_point) == (b.dtype, b.scale, b.zero_point), name
    for ours, again in zip(integer_outputs(g, samples), integer_outputs(g2, samples)):
        for name in g.outputs:
            np.testing.assert_array_equal(ours[name], again[name])


@pytest.mark.parametrize("scheme", ["int16", "q15"])
@pytest.mark.parametrize("case", WIDE_CASES)
def test_qdq_export_int16(scheme, case, tmp_path):
    g, samples, path = export_quantized(case_model(case), tmp_path, scheme)
    model = onnx.load(path)
    inits = {i.name: i for i in model.graph.initializer}
    assert model.opset_import[0].version == 21
    assert {inits[n.input[2]].data_type for n in model.graph.node if n.op_type == "QuantizeLinear"} == \
        {TensorProto.INT16}
    # onnxruntime requantizes in float32 and rounds half to even; edgec's int64 accumulator and 15-bit multiplier
    # round once, half up: they differ at ties, and sigmoid/softmax by their tables' interpolation
    lsb = lsb_apart(g, samples, path)
    assert np.mean(lsb <= 1.01) >= 0.99 and lsb.max() <= 2.01, (lsb.max(), np.mean(lsb <= 1.01))
    g2 = reimport(path)
    assert prequantized_scheme(g2) == scheme
    assert_same_integers(g, g2, samples)


@pytest.mark.parametrize("qconfig", [QCONFIG, QCONFIG_LOWBIT], ids=["int8_int16_float", "q15_q7_float_int4"])
def test_qdq_export_mixed(qconfig, tmp_path):
    """Each tensor has the Q/DQ pair of its own type, a float layer float weights and no Q/DQ of its own (it reads
    a DQ output, its integer reader quantizes its output), a Convert between integer types is a DQ -> Q pair;
    onnxruntime agrees within 1 LSB for nearly all values; edgec reads back every layer's scheme and every scale,
    and `edgec build` of the file gives C outputs equal to the original graph's integer reference."""
    g, samples, path = export_quantized(mixed_model(), tmp_path, qconfig=qconfig, n_samples=8)
    model = onnx.load(path)
    inits = {i.name: i for i in model.graph.initializer}
    produced = {o: n for n in model.graph.node for o in n.output}
    floats = [n for n in g.nodes if n.scheme == "float" and n.op in ("Conv", "Gemm")]
    for layer in floats:
        onnx_node = next(n for n in model.graph.node if n.name == layer.name)
        assert onnx_node.input[1] in inits and inits[onnx_node.input[1]].data_type == TensorProto.FLOAT
    converts = [n for n in g.nodes if n.op == "Convert" and "float32" not in
                (g.tensors[n.inputs[0]].dtype, g.tensors[n.outputs[0]].dtype)]
    pairs = [n for n in model.graph.node if n.op_type == "QuantizeLinear" and n.input[0] in produced
             and produced[n.input[0]].op_type == "DequantizeLinear"]
    assert converts and len(pairs) == len(converts)
    zp_types = {inits[n.input[2]].data_type for n in model.graph.node if n.op_type == "QuantizeLinear"}
    assert zp_types == {TensorProto.INT8, TensorProto.INT16}
    lsb = lsb_apart(g, samples, path)
    assert np.mean(lsb <= 1.01) >= 0.95 and lsb.max() <= 2.01, (lsb.max(), np.mean(lsb <= 1.01))
    assert_same_integers(g, reimport(path), samples)
    out, meta, _ = build(BuildOptions(path, out=tmp_path / "b"))
    built = {layer["node"]: layer["dtype"] for layer in meta["layers"]}
    assert all(built[n.name] == n.dtype for n in g.nodes)
    assert_bitexact(g, samples, run_build(out, samples))


def test_quantize_command_int16_and_mixed(tmp_path, capsys):
    model = mixed_model()
    src, calib, cfg = tmp_path / "m.onnx", tmp_path / "calib.npz", tmp_path / "q.toml"
    onnx.save(model, src)
    np.savez(calib, **sample_inputs(model, 16, seed=1))
    cfg.write_text(QCONFIG)
    for args, what in ((["--quantize", "int16"], "int16 activations (ONNX INT16, 16x8)"),
                       (["--qbits", "16", "--quantize", "qformat"], "Q-format q15"),
                       (["--qconfig", str(cfg)], "mixed float/int16/int8")):
        out = tmp_path / "out.onnx"
        assert main(["quantize", str(src), "--calib", str(calib), "-o", str(out), *args]) == 0
        assert what in capsys.readouterr().out
        assert [o.name for o in onnx.load(out).graph.output] == ["output"]
    out = tmp_path / "auto.onnx"
    assert main(["quantize", str(src), "--calib", str(calib), "-o", str(out), "--quantize", "auto"]) == 2
    err = capsys.readouterr().err
    assert "--quantize auto" in err and "--qconfig" in err and "Traceback" not in err and not out.exists()


def test_qdq_export_int16_bias_beyond_int32(tmp_path):
    """An int16 layer whose int64 bias exceeds int32 (tiny weights, large bias): written as int32 at 2^k times the
    accumulator's scale, onnxruntime within 1 LSB, read back with the same int64 bias."""
    r = np.random.default_rng(3)
    model = make_model([helper.make_node("Conv", ["input", "W", "B"], ["output"], name="conv")],
                       {"input": [1, 2, 4, 4]}, {"output": None},
                       {"W": (r.standard_normal((3, 2, 1, 1)) * 1e-4).astype(np.float32),
                        "B": np.array([50.0, -50.0, 1e-4], np.float32)})
    g, samples, path = export_quantized(model, tmp_path, "int16")
    bias = g.nodes[0].q["bias"]
    assert np.abs(bias).max() > 2**31 and np.abs(bias).min() < 2**31
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in onnx.load(path).graph.initializer}
    assert inits["B_q"].dtype == np.int32
    lsb = lsb_apart(g, samples, path)
    assert lsb.max() <= 1.01, lsb.max()
    g2 = reimport(path)
    np.testing.assert_array_equal(g2.nodes[0].q["bias"], bias)
    assert_same_integers(g, g2, samples)
