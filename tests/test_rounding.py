"""GPTQ weight rounding for int8 weights (--weight-rounding gptq) and cross-layer equalization (--equalize)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from helpers import MODELS, assert_bitexact, build_and_run, make_model
from onnx import helper

from edgec.build import BuildOptions, build, prepare_graph
from edgec.cli import main
from edgec.equalize import equalize, pairs
from edgec.ops import REGISTRY
from edgec.ops.output_stage import quantize_weights, weight_scales
from edgec.quantize import QuantOptions
from edgec.reference import run_graph
from edgec.rounding import gptq_round


def _conv(name: str, x: str, y: str, w: np.ndarray, group: int = 1, bias: bool = True) -> tuple:
    inits = {f"{name}_W": w.astype(np.float32)}
    if bias:
        inits[f"{name}_B"] = np.linspace(-0.5, 0.5, w.shape[0]).astype(np.float32)
    pad = w.shape[-1] // 2
    node = helper.make_node("Conv", [x, *inits], [y], name=name, group=group, pads=[pad] * 4)
    return node, inits


def separable_model() -> onnx.ModelProto:
    """Pairs equalization may scale: A -> Relu -> B (depthwise -> pointwise), C -> D (no activation), G1 -> Relu ->
    G2 (Gemm, transB 0 with alpha and beta). Pairs it must leave: B -> Clip(0, 6) -> C, D -> Relu -> E and F (a
    tensor read by two layers), E, F -> Add -> H, H -> Flatten -> G1."""
    rng = np.random.default_rng(5)
    spread = np.array([0.01, 1.0, 10.0, 100.0]).reshape(4, 1, 1, 1)  # depthwise channels of very different ranges
    convs, inits = {}, {}
    for spec in [("A", "x", "a0", rng.standard_normal((4, 1, 3, 3)) * spread, 4),
                 ("B", "a", "b0", rng.standard_normal((6, 4, 1, 1)), 1),
                 ("C", "b", "c", rng.standard_normal((6, 6, 3, 3)) * 0.3, 1),
                 ("D", "c", "d0", rng.standard_normal((5, 6, 1, 1)) * np.linspace(0.1, 3, 5).reshape(5, 1, 1, 1), 1),
                 ("E", "d", "e", rng.standard_normal((5, 5, 1, 1)), 1),
                 ("F", "d", "f", rng.standard_normal((5, 5, 1, 1)), 1),
                 ("H", "g", "h", rng.standard_normal((3, 5, 1, 1)), 1)]:
        convs[spec[0]], w = _conv(*spec)
        inits.update(w)
    inits.update(G1_W=(rng.standard_normal((48, 8)) * np.linspace(0.05, 5, 8)).astype(np.float32),
                 G1_B=rng.standard_normal(8).astype(np.float32), G2_W=rng.standard_normal((2, 8)).astype(np.float32),
                 G2_B=rng.standard_normal(2).astype(np.float32), lo=np.float32(0), hi=np.float32(6))
    nodes = [convs["A"], helper.make_node("Relu", ["a0"], ["a"]), convs["B"],
             helper.make_node("Clip", ["b0", "lo", "hi"], ["b"]), convs["C"], convs["D"],
             helper.make_node("Relu", ["d0"], ["d"]), convs["E"], convs["F"],
             helper.make_node("Add", ["e", "f"], ["g"]), convs["H"], helper.make_node("Flatten", ["h"], ["hf"]),
             helper.make_node("Gemm", ["hf", "G1_W", "G1_B"], ["g1"], name="G1", alpha=0.5, beta=2.0),
             helper.make_node("Relu", ["g1"], ["g1r"]),
             helper.make_node("Gemm", ["g1r", "G2_W", "G2_B"], ["y"], name="G2", transB=1)]
    return make_model(nodes, {"x": [1, 4, 4, 4]}, {"y": [1, 2]}, inits)


def test_equalization_keeps_the_float_model_and_scales_legal_pairs_only(tmp_path):
    onnx.save(separable_model(), tmp_path / "m.onnx")
    g = prepare_graph(tmp_path / "m.onnx")
    assert sorted((a.name, b.name) for a, b in pairs(g)) == [("A", "B"), ("C", "D"), ("G1", "G2")]
    rng = np.random.default_rng(0)
    xs = [{"x": rng.standard_normal((1, 4, 4, 4)).astype(np.float32) * 3} for _ in range(4)]
    before = [run_graph(g, x)["y"] for x in xs]
    weights = {n.name: g.const(n.inputs[1]).copy() for n in g.nodes if n.op in ("Conv", "Gemm")}
    moved = equalize(g)
    assert set(moved) == {"A", "C", "G1"} and min(moved.values()) > 0.5  # log2 of the largest scale
    for x, want in zip(xs, before):
        np.testing.assert_allclose(run_graph(g, x)["y"], want, rtol=1e-5, atol=1e-5 * float(np.abs(want).max()))
    after = {n.name: g.const(n.inputs[1]) for n in g.nodes if n.op in ("Conv", "Gemm")}
    for name in "EFH":  # in no legal pair: untouched
        np.testing.assert_array_equal(after[name], weights[name])
    for name in ["A", "B", "C", "D", "G1", "G2"]:
        assert not np.array_equal(after[name], weights[name]), name
    # A -> B converged (B's outputs are not scaled): each of A's channels has the range of B's weights reading it
    np.testing.assert_allclose(np.abs(after["A"]).reshape(4, -1).max(axis=1),
                               np.abs(after["B"]).reshape(6, 4).max(axis=0), rtol=1e-5)


@pytest.mark.parametrize("quantize,options", [("int8", {"weight_rounding": "gptq"}), ("int8", {"equalize": True}),
                                              ("int8", {"weight_rounding": "gptq", "equalize": True}),
                                              ("int16", {"weight_rounding": "gptq"})])
def test_builds_with_the_options_are_bitexact(tmp_path, quantize, options):
    samples, res, g, _ = build_and_run(separable_model(), tmp_path, quantize=quantize, n_calib=8,
                                       quant=QuantOptions(**options))
    assert_bitexact(g, samples, res)
    if "weight_rounding" in options:  # some weights rounded away from nearest
        layers = [n for n in g.nodes if n.q is not None and "w" in n.q]
        nearest = [quantize_weights(REGISTRY[n.op].weight_matrix(n, g), n.q["w_scale"])[0] for n in layers]
        assert any(not np.array_equal(n.q["w"], q.reshape(n.q["w"].shape)) for n, q in zip(layers, nearest))


def test_gptq_int8_lowers_the_layer_output_error():
    """int8 weights of a random layer on correlated inputs: GPTQ's output error is below nearest rounding's; pruned
    (zero) weights stay zero."""
    rng = np.random.default_rng(7)
    w = rng.standard_normal((16, 48))
    w[:, ::5] = 0.0
    scales = weight_scales(w)
    x = rng.standard_normal((2000, 48)) @ rng.standard_normal((48, 48))
    plain = np.clip(np.round(w / scales[:, None]), -127, 127)
    q = gptq_round(w, scales, x.T @ x, 127)
    assert np.abs(q).max() <= 127 and not q[:, ::5].any()

    def err(v: np.ndarray) -> float:
        return float(np.sum((x @ (w - v * scales[:, None]).T) ** 2))

    assert err(q) < 0.85 * err(plain)  # (0.77 measured)


@pytest.mark.skipif(not (MODELS / "pretrainedResnet_quant.tflite").exists(), reason="needs ../shared/models")
@pytest.mark.parametrize("flag", [["--equalize"], ["--weight-rounding", "gptq"]])
def test_a_quantized_model_keeps_its_weights(tmp_path, capsys, flag):
    """A model that is already quantized: the options that change its weights are a user error; nothing written."""
    code = main(["build", str(MODELS / "pretrainedResnet_quant.tflite"), "--quantize", "int8", *flag,
                 "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "already quantized" in err and "--equalize" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def _mlp_named_alike() -> onnx.ModelProto:
    """Gemm -> Relu -> Gemm, every node named "n" (onnx.checker allows it)."""
    rng = np.random.default_rng(3)
    inits = {"W1": rng.standard_normal((8, 16)).astype(np.float32) * 0.3, "B1": np.zeros(8, np.float32),
             "W2": rng.standard_normal((4, 8)).astype(np.float32) * 0.3, "B2": np.zeros(4, np.float32)}
    nodes = [helper.make_node("Gemm", ["x", "W1", "B1"], ["a"], name="n", transB=1),
             helper.make_node("Relu", ["a"], ["r"], name="n"),
             helper.make_node("Gemm", ["r", "W2", "B2"], ["y"], name="n", transB=1)]
    return make_model(nodes, {"x": [1, 16]}, {"y": [1, 4]}, inits)


@pytest.mark.parametrize("quantize, options", [("int4", {}), ("int8", {"weight_rounding": "gptq"})])
def test_gptq_rounding_does_not_depend_on_the_input_scale(tmp_path, quantize, options):
    """Layers named alike each get their own X^T X, and calibration inputs of 2^70 (whose X^T X overflows float32)
    or 2^-90 (whose X^T X underflows) round every weight exactly as inputs of 1 do: GPTQ is scale-invariant and
    edgec scales by powers of two. (Before: an IndexError for the names, NaN weights cast to int8 for the scale.)"""
    model = _mlp_named_alike()
    onnx.save(model, tmp_path / "m.onnx")
    x = np.random.default_rng(4).standard_normal((32, 1, 16)).astype(np.float32)
    weights = []
    for scale in (1.0, 2.0**70, 2.0**-90):
        np.savez(tmp_path / "c.npz", x=x * np.float32(scale))
        _, _, g = build(BuildOptions(tmp_path / "m.onnx", quantize=quantize, calib=tmp_path / "c.npz",
                                     out=tmp_path / f"o{len(weights)}", quant=QuantOptions(**options)))
        weights.append([n.q["w"] for n in g.nodes if n.q is not None and "w" in n.q])
    for other in weights[1:]:
        assert len(other) == 2 and all(np.array_equal(a, b) for a, b in zip(weights[0], other))
