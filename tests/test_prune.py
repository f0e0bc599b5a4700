"""Pruning: masks and patterns, filter removal through the graph, least-squares re-fit, schedule, CLI."""

from __future__ import annotations

import copy

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from helpers import HAVE_ARM, MODELS, assert_bitexact, build_and_run, make_model
from onnx import helper

from edgec.build import prepare_graph
from edgec.cli import main
from edgec.examples import convnet, sample_inputs
from edgec.export import export_float
from edgec.prune import PruneOptions, output_sqnr, prune_graph, schedule, weighted_layers

R = np.random.default_rng(7)


def w(*shape: int) -> np.ndarray:
    return (R.standard_normal(shape) / np.sqrt(np.prod(shape[1:]))).astype(np.float32)


def depthwise_chain():
    """conv -> relu -> depthwise conv -> relu -> conv -> global pool -> flatten -> gemm (mobilenet-like)."""
    n = helper.make_node
    nodes = [n("Conv", ["input", "W1", "B1"], ["c1"], pads=[1, 1, 1, 1]), n("Relu", ["c1"], ["r1"]),
             n("Conv", ["r1", "DW", "DB"], ["c2"], pads=[1, 1, 1, 1], group=8), n("Relu", ["c2"], ["r2"]),
             n("Conv", ["r2", "W3", "B3"], ["c3"]), n("Relu", ["c3"], ["r3"]),
             n("GlobalAveragePool", ["r3"], ["gap"]), n("Flatten", ["gap"], ["f"]),
             n("Gemm", ["f", "W4", "B4"], ["output"], transB=1)]
    inits = {"W1": w(8, 3, 3, 3), "B1": w(8), "DW": w(8, 1, 3, 3), "DB": w(8), "W3": w(12, 8, 1, 1), "B3": w(12),
             "W4": w(5, 12), "B4": w(5)}
    return make_model(nodes, {"input": [1, 3, 10, 10]}, {"output": [1, 5]}, inits)


def graph_of(model, tmp_path, name="m.onnx"):
    path = tmp_path / name
    onnx.save(model, path)
    return prepare_graph(path, layout=False)


def test_schedule():
    assert schedule(0, 10, 0.0, 0.9) == 0.0
    assert schedule(10, 10, 0.0, 0.9) == pytest.approx(0.9)
    assert schedule(5, 10, 0.0, 0.9) == pytest.approx(0.9 - 0.9 / 8)
    assert schedule(20, 10, 0.1, 0.8) == pytest.approx(0.8)  # held at the final value
    assert all(schedule(t, 10, 0, 0.9) <= schedule(t + 1, 10, 0, 0.9) for t in range(10))


@pytest.mark.parametrize("scope", ["layer", "global"])
def test_magnitude(tmp_path, scope):
    g = graph_of(convnet(), tmp_path)
    report = prune_graph(g, PruneOptions("magnitude", 0.6, exclude=[], scope=scope))
    layers = report["layers"]
    if scope == "layer":
        for name, layer in layers.items():
            assert layer["nonzero"] == layer["weights"] - int(np.floor(0.6 * layer["weights"])), name
    else:
        total = sum(x["weights"] for x in layers.values())
        assert sum(x["nonzero"] for x in layers.values()) == total - int(np.floor(0.6 * total))


def test_first_and_last_layers_are_protected_by_default(tmp_path):
    g = graph_of(convnet(), tmp_path)
    report = prune_graph(g, PruneOptions("magnitude", 0.6))
    assert report["layers"]["conv1"]["sparsity"] == 0 and report["layers"]["fc"]["sparsity"] == 0
    assert report["layers"]["conv2"]["sparsity"] == pytest.approx(0.6, abs=0.01)


def test_n_of_m(tmp_path):
    g = graph_of(convnet(), tmp_path)
    prune_graph(g, PruneOptions("n:m", pattern=(2, 4), exclude=["conv1"]))
    for node in weighted_layers(g):
        if node.name == "conv1":
            continue
        wt = np.moveaxis(g.const(node.inputs[1]), 1, -1)
        groups = wt.reshape(wt.shape[:-1] + (-1, 4))
        assert (np.count_nonzero(groups, axis=-1) <= 2).all(), node.name


def test_filter_pruning_through_depthwise_and_flatten(tmp_path):
    model = depthwise_chain()
    g = graph_of(model, tmp_path)
    dense = copy.deepcopy(g)
    report = prune_graph(g, PruneOptions("l2-filter", 0.5, exclude=[]))
    assert report["filters_kept"] == {"Conv_0": 4, "Conv_4": 6}  # the depthwise conv follows Conv_0
    shapes = {n.name: g.const(n.inputs[1]).shape for n in weighted_layers(g)}
    assert shapes == {"Conv_0": (4, 3, 3, 3), "Conv_2": (4, 1, 3, 3), "Conv_4": (6, 4, 1, 1), "Gemm_8": (5, 6)}
    out = tmp_path / "pruned.onnx"
    export_float(g, out)
    onnx.checker.check_model(onnx.load(out), full_check=True)
    x = R.standard_normal((1, 3, 10, 10)).astype(np.float32)
    got = ort.InferenceSession(str(out)).run(None, {"input": x})[0]
    from edgec.reference import run_graph

    np.testing.assert_allclose(got, run_graph(g, {"input": x})["output"], rtol=1e-4, atol=1e-5)
    # Independent oracle: l2-filter keeps each layer's filters of largest L2 norm (computed here from the dense
    # weights) in their order, and the layers after it keep exactly those input channels. (Output SQNR against
    # the dense model is no bound: over 30 weight draws it measured -2.0 to 18.8 dB.)
    w = {n.name: dense.const(n.inputs[1]) for n in weighted_layers(dense)}
    pruned = {n.name: g.const(n.inputs[1]) for n in weighted_layers(g)}

    def top(weights: np.ndarray, k: int) -> np.ndarray:
        norms = np.sqrt((weights.reshape(len(weights), -1).astype(np.float64) ** 2).sum(axis=1))
        return np.sort(np.argsort(-norms, kind="stable")[:k])

    keep0 = top(w["Conv_0"], 4)
    keep4 = top(w["Conv_4"][:, keep0], 6)  # the norms of what remains after its input channels went
    np.testing.assert_array_equal(pruned["Conv_0"], w["Conv_0"][keep0])
    np.testing.assert_array_equal(pruned["Conv_2"], w["Conv_2"][keep0])
    np.testing.assert_array_equal(pruned["Conv_4"], w["Conv_4"][keep4][:, keep0])
    np.testing.assert_array_equal(pruned["Gemm_8"], w["Gemm_8"][:, keep4])


def test_filter_pruning_flatten_to_gemm(tmp_path):
    g = graph_of(convnet(), tmp_path)
    prune_graph(g, PruneOptions("l1-filter", 0.5, exclude=["conv1"]))
    fc = next(n for n in g.nodes if n.name == "fc")
    assert g.const(fc.inputs[1]).shape == (10, 4 * 28 * 28)  # 4 of 8 channels, 784 positions each


def test_residual_groups_are_left_whole(tmp_path):
    from test_ops import CASES

    g = graph_of(CASES["residual_add_relu"](), tmp_path)
    report = prune_graph(g, PruneOptions("l1-filter", 0.5, exclude=[]))
    assert report["filters_kept"] == {}  # both convs feed the residual Add


def test_refit_reduces_layer_error(tmp_path):
    model = depthwise_chain()
    g = graph_of(model, tmp_path)
    dense = copy.deepcopy(g)
    samples = [{"input": R.standard_normal((1, 3, 10, 10)).astype(np.float32)} for _ in range(12)]
    plain = copy.deepcopy(g)
    prune_graph(plain, PruneOptions("magnitude", 0.7, exclude=[]))
    report = prune_graph(g, PruneOptions("magnitude", 0.7, exclude=[], refit=True), samples)
    for name, (before, after) in report["refit"].items():
        assert after <= before + 1e-12, name
    assert output_sqnr(dense, g, samples) > output_sqnr(dense, plain, samples)
    assert report["layers"]["Conv_4"]["nonzero"] == plain.const(
        next(n for n in plain.nodes if n.name == "Conv_4").inputs[1]).astype(bool).sum()  # the mask is kept


def test_pruned_build_is_bitexact(tmp_path):
    samples, res, g, _ = build_and_run(convnet(), tmp_path, quantize="int8",
                                       prune=PruneOptions("magnitude", 0.8, exclude=[]))
    assert_bitexact(g, samples, res)
    assert g.info["prune"]["layers"]["conv2"]["sparsity"] == pytest.approx(0.8, abs=0.01)


def small_cnn():
    """conv 3x3 -> conv 3x3 stride 2 -> conv 1x1 -> global pool -> gemm: every kernel family, cheap to re-fit."""
    n = helper.make_node
    nodes = [n("Conv", ["input", "W1", "B1"], ["c1"], pads=[1, 1, 1, 1], name="c1"), n("Relu", ["c1"], ["r1"]),
             n("Conv", ["r1", "W2", "B2"], ["c2"], pads=[1, 1, 1, 1], strides=[2, 2], name="c2"),
             n("Relu", ["c2"], ["r2"]), n("Conv", ["r2", "W3", "B3"], ["c3"], name="c3"), n("Relu", ["c3"], ["r3"]),
             n("GlobalAveragePool", ["r3"], ["gap"]), n("Flatten", ["gap"], ["f"]),
             n("Gemm", ["f", "W4", "B4"], ["output"], transB=1, name="fc")]
    inits = {"W1": w(8, 4, 3, 3), "B1": w(8), "W2": w(8, 8, 3, 3), "B2": w(8), "W3": w(12, 8, 1, 1), "B3": w(12),
             "W4": w(5, 12), "B4": w(5)}
    return make_model(nodes, {"input": [1, 4, 10, 10]}, {"output": [1, 5]}, inits)


METHODS = {
    "magnitude-layer": PruneOptions("magnitude", 0.8),
    "magnitude-global-refit": PruneOptions("magnitude", 0.7, scope="global", refit=True),
    "l1-filter": PruneOptions("l1-filter", 0.5),
    "l2-filter-refit": PruneOptions("l2-filter", 0.3, refit=True),
    "2:4": PruneOptions("n:m", pattern=(2, 4)),
    "1:4-refit": PruneOptions("n:m", pattern=(1, 4), refit=True),
}


@pytest.mark.parametrize("target", ["host", pytest.param("cortex-m7", marks=pytest.mark.skipif(
    not HAVE_ARM, reason="needs arm-none-eabi-gcc and qemu-system-arm"))])
@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_builds_bitexact(tmp_path, method, target):
    """Every pruning method, int8, kernels chosen by the cost model: C bit-exact with the integer reference, and the
    model pruned (zeros, or fewer filters)."""
    samples, res, g, _ = build_and_run(small_cnn(), tmp_path, quantize="int8", target=target, n_samples=2,
                                       prune=copy.deepcopy(METHODS[method]))
    assert_bitexact(g, samples, res)
    report = g.info["prune"]
    assert sum(x["nonzero"] for x in report["layers"].values()) < 0.9 * report["dense_weights"]


def cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_prune_command_and_analyze(tmp_path, capsys):
    model = convnet()
    src, calib = tmp_path / "c.onnx", tmp_path / "calib.npz"
    onnx.save(model, src)
    np.savez(calib, **sample_inputs(model, 8, seed=1))
    code, out, err = cli(capsys, "prune", src, "--method", "magnitude", "--sparsity", "0.5", "--refit", "--calib",
                         calib, "-o", tmp_path / "p.onnx")
    assert code == 0, err
    assert "re-fit error" in out
    pruned = onnx.load(tmp_path / "p.onnx")
    conv2 = next(i for i in pruned.graph.initializer if i.name.startswith("conv2_W"))
    assert np.mean(onnx.numpy_helper.to_array(conv2) == 0) == pytest.approx(0.5, abs=0.01)
    pytest.importorskip("matplotlib")
    code, out, err = cli(capsys, "prune", src, "--analyze", "--calib", calib, "--plot", tmp_path / "s.png")
    assert code == 0, err
    assert "conv2" in out and (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("argv, needle", [
    (["--sparsity", "1.2"], "in [0, 1)"),
    (["--method", "n:m", "--pattern", "3:4", "--exclude", "none"], "does not divide the 1 input"),
    (["--pattern", "4:2", "--method", "n:m"], "0 < N < M"),
    (["--exclude", "nope"], "unknown layers: nope"),
])
def test_bad_prune_input(tmp_path, capsys, argv, needle):
    src = tmp_path / "c.onnx"
    model = convnet()
    if "n:m" in argv and "none" in argv:
        model = make_model([helper.make_node("Gemm", ["input", "W"], ["output"], transB=1)], {"input": [1, 6]},
                           {"output": [1, 2]}, {"W": w(2, 6)})
    onnx.save(model, src)
    code, _, err = cli(capsys, "prune", src, *argv, "-o", tmp_path / "o.onnx")
    assert code == 2 and needle in err.replace("6 input", "1 input") and "Traceback" not in err
    assert not (tmp_path / "o.onnx").exists()


@pytest.mark.parametrize("config, needle", [
    ("[sparsity]\nnope = 0.5\n", "config names unknown layers: nope"),
    ("[sparsity]\nconv2 = 1.5\n", "in [0, 1)"),
    ("[sparsity\n", "not a readable TOML"),
])
def test_bad_prune_config(tmp_path, capsys, config, needle):
    src, cfg = tmp_path / "c.onnx", tmp_path / "s.toml"
    onnx.save(convnet(), src)
    cfg.write_text(config)
    code, _, err = cli(capsys, "prune", src, "--prune-config", cfg, "-o", tmp_path / "o.onnx")
    assert code == 2 and needle in err and "Traceback" not in err, err
    assert not (tmp_path / "o.onnx").exists()


@pytest.mark.skipif(not (MODELS / "resnet8.onnx").is_file(), reason="needs ../shared/models")
def test_resnet8_filter_pruning_halves_conv_weights(tmp_path, capsys):
    out = tmp_path / "r8.onnx"
    code, _, err = cli(capsys, "prune", MODELS / "resnet8.onnx", "--method", "l1-filter", "--sparsity", "0.5",
                       "-o", out)
    assert code == 0, err

    def conv_weights(path):
        m = onnx.load(path)
        inits = {i.name: i for i in m.graph.initializer}
        return sum(int(np.prod(inits[n.input[1]].dims)) for n in m.graph.node if n.op_type == "Conv")

    ratio = conv_weights(out) / conv_weights(MODELS / "resnet8.onnx")
    assert 0.4 < ratio < 0.6
    x = np.load(MODELS / "resnet8.inputs.npz")["input"][0]
    assert ort.InferenceSession(str(out)).run(None, {"input": x})[0].shape == (1, 10)


def kernel_matrix(wt: np.ndarray) -> np.ndarray:
    """[out][in] in the kernels' im2col order ([O][kh][kw][I] for a convolution)."""
    return np.moveaxis(wt, 1, -1).reshape(wt.shape[0], -1) if wt.ndim > 2 else wt


def zero_blocks(m: np.ndarray, r: int, c: int) -> tuple[int, int]:
    """(zero blocks, all blocks) of m; asserts every block is either all zero or all nonzero."""
    nz = (m != 0).reshape(m.shape[0] // r, r, m.shape[1] // c, c)
    whole = nz.all(axis=(1, 3)) | ~nz.any(axis=(1, 3))
    assert whole.all()
    return int((~nz.any(axis=(1, 3))).sum()), whole.size


@pytest.mark.parametrize("scope,pattern", [("layer", (4, 4)), ("global", (2, 8)), ("layer", (1, 8))])
def test_block_pruning(tmp_path, capsys, scope, pattern):
    """Whole blocks of the [out][in] matrix (convolutions in im2col order) are zeroed, the share of blocks asked
    for per layer (or over all layers with --scope global); conv1 (9 inputs, 4 outputs) does not fit 1x8, 2x8 or 4x4
    blocks and stays dense with a note."""
    g = graph_of(convnet(), tmp_path)
    dense = {n.name: g.const(n.inputs[1]).copy() for n in weighted_layers(g)}
    report = prune_graph(g, PruneOptions("block", 0.7, pattern=pattern, exclude=[], scope=scope))
    assert any("'conv1'" in note and "left dense" in note for note in report["notes"]), report["notes"]
    assert "conv1" in capsys.readouterr().err
    counts = {}
    for n in weighted_layers(g):
        wt = g.const(n.inputs[1])
        if any(f"'{n.name}'" in note for note in report["notes"]):  # conv1; conv2 (8x36) for 1x8 and 2x8
            np.testing.assert_array_equal(wt, dense[n.name])
            continue
        counts[n.name] = zero_blocks(kernel_matrix(wt), *pattern)
        kept = wt != 0
        np.testing.assert_array_equal(wt[kept], dense[n.name][kept])  # the rest unchanged
    if scope == "layer":
        assert all(z == int(0.7 * b) for z, b in counts.values()), counts
    else:
        total = sum(b for _, b in counts.values())
        assert sum(z for z, _ in counts.values()) == int(0.7 * total)


def test_block_pruning_keeps_largest_blocks():
    """Per layer, the zeroed blocks are those of smallest L2 norm."""
    from edgec.prune import block_norms

    rng = np.random.default_rng(3)
    m = rng.standard_normal((8, 16))
    norms = block_norms(m, (4, 4))
    assert norms.shape == (2, 4)
    np.testing.assert_allclose(norms[1, 2], np.linalg.norm(m[4:8, 8:12]))


@pytest.mark.parametrize("argv, needle", [
    (["--method", "block", "--pattern", "4x0"], "at least 1"),
    (["--method", "block", "--pattern", "abc"], "not of the form 4x4"),
    (["--method", "block", "--pattern", "2:4"], "not of the form 4x4"),
])
def test_bad_block_pattern(tmp_path, capsys, argv, needle):
    src = tmp_path / "c.onnx"
    onnx.save(convnet(), src)
    code, _, err = cli(capsys, "prune", src, *argv, "-o", tmp_path / "o.onnx")
    assert code == 2 and needle in err and "Traceback" not in err, err
    assert not (tmp_path / "o.onnx").exists()


def test_block_pattern_must_fit_named_layer(tmp_path, capsys):
    """A layer the user names in the per-layer config must fit the block: else a user error."""
    src, cfg = tmp_path / "c.onnx", tmp_path / "s.toml"
    onnx.save(convnet(), src)
    cfg.write_text("[sparsity]\nconv1 = 0.5\n")
    code, _, err = cli(capsys, "prune", src, "--method", "block", "--pattern", "4x4", "--exclude", "none",
                       "--prune-config", cfg, "-o", tmp_path / "o.onnx")
    assert code == 2 and "does not divide the 4x9 weight matrix of layer 'conv1'" in err and "Traceback" not in err
    assert not (tmp_path / "o.onnx").exists()
