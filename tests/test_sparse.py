"""Sparse weights: the row-sparse encoder, the build-time dense/sparse choice, and pruned models built with the sparse
kernels on the host and on Cortex-M7 (float close to onnxruntime, int8 bit-exact with the integer reference)."""

import numpy as np
import onnx
import pytest
from helpers import HAVE_ARM, assert_bitexact, assert_float_close, build_and_run, make_model
from onnx import helper

from edgec import sparse
from edgec.build import BuildOptions, lower_graph, prepare_graph, quantize_with
from edgec.target import load_target


def decode(sp: sparse.RowSparse, k: int) -> np.ndarray:
    """Dense [N][K] from row-sparse arrays (the format in runtime_c/include/edgec_sparse.h)."""
    s, n = sp.counts.shape
    w = np.zeros((n, k), sp.values.dtype)
    e = 0
    for seg in range(s):
        for row in range(n):
            for _ in range(4 * int(sp.counts[seg, row])):
                col = seg * sparse.SEGMENT + int(sp.index[e])
                assert col < k
                w[row, col] += sp.values[e]
                e += 1
    assert e == sp.index.size == sp.values.size
    return w


@pytest.mark.parametrize("shape,density", [((5, 19), 0.3), ((8, 600), 0.1), ((3, 256), 1.0), ((4, 7), 0.0)])
def test_encode_rows_round_trip(shape, density):
    rng = np.random.default_rng(0)
    w = (rng.integers(-127, 128, shape) * (rng.random(shape) < density)).astype(np.int8)
    sp = sparse.encode_rows(w)
    assert sp.counts.shape == (sparse.segments(shape[1]), shape[0]) and sp.counts.dtype == np.uint8
    np.testing.assert_array_equal(decode(sp, shape[1]), w)
    assert sp.blocks_s8().size == 2 * sp.index.size
    assert sp.nbytes == sp.counts.size + 2 * sp.index.size


def fc_model(n_out: int, k: int, sparsity: float, seed: int = 0, transb: int = 1):
    """input [2, k] -> Gemm (pruned weights) -> Relu -> Gemm (dense, small) -> output."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((n_out, k)).astype(np.float32) * 0.3
    w[np.abs(w) < np.quantile(np.abs(w), sparsity)] = 0.0
    nodes = [helper.make_node("Gemm", ["input", "w1", "b1"], ["h"], transB=transb),
             helper.make_node("Relu", ["h"], ["r"]), helper.make_node("Gemm", ["r", "w2"], ["output"], transB=1)]
    inits = {"w1": w if transb else w.T.copy(), "b1": rng.standard_normal(n_out).astype(np.float32) * 0.1,
             "w2": rng.standard_normal((4, n_out)).astype(np.float32)}
    return make_model(nodes, {"input": [2, k]}, {"output": None}, inits)


def conv1x1_model(sparsity: float):
    rng = np.random.default_rng(1)
    w = rng.standard_normal((24, 40, 1, 1)).astype(np.float32) * 0.3
    w[np.abs(w) < np.quantile(np.abs(w), sparsity)] = 0.0
    nodes = [helper.make_node("Conv", ["input", "w", "b"], ["c"]), helper.make_node("Relu", ["c"], ["output"])]
    return make_model(nodes, {"input": [1, 40, 5, 6]}, {"output": None},
                      {"w": w, "b": rng.standard_normal(24).astype(np.float32) * 0.1})


def kernels(model, tmp_path, target: str, quantize: str) -> list[str]:
    """The kernel of every Gemm and Conv as lowered for the target (nothing is compiled)."""
    path, calib = tmp_path / "m.onnx", tmp_path / "calib.npz"
    onnx.save(model, path)
    shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    np.savez(calib, input=np.random.default_rng(0).standard_normal([8] + shape).astype(np.float32))
    g = prepare_graph(path)
    if quantize == "int8":
        quantize_with(g, BuildOptions(path, quantize="int8", calib=calib))
    return [layer["kernels"][0] for layer in lower_graph(g, load_target(target))[2] if layer["op"] in ("Gemm", "Conv")]


@pytest.mark.parametrize("target", ["cortex-m7", "host"])
@pytest.mark.parametrize("quantize", ["int8", "none"])
def test_cost_model_picks_sparse_for_sparse_layers(tmp_path, target, quantize):
    """A 90%-sparse fully connected layer gets the sparse kernel; a dense one (and the small dense Gemm) do not."""
    suffix = "s8" if quantize == "int8" else "f32"
    assert kernels(fc_model(64, 200, 0.9), tmp_path, target, quantize)[0] == f"ec_fully_connected_sparse_{suffix}"
    dense = kernels(fc_model(64, 200, 0.0), tmp_path, target, quantize)
    assert not any("sparse" in k for k in dense)
    assert kernels(conv1x1_model(0.9), tmp_path, target, quantize)[0] == f"ec_fully_connected_sparse_{suffix}"
    assert "sparse" not in kernels(conv1x1_model(0.0), tmp_path, target, quantize)[0]


def test_mode_overrides_the_cost_model(tmp_path, monkeypatch):
    monkeypatch.setattr(sparse, "MODE", "dense")
    assert kernels(fc_model(64, 200, 0.9), tmp_path, "cortex-m7", "int8")[0] == "ec_fully_connected_packed_s8"
    monkeypatch.setattr(sparse, "MODE", "sparse")
    assert kernels(fc_model(64, 200, 0.0), tmp_path, "host", "none")[0] == "ec_fully_connected_sparse_f32"


def fc_positive_shifts():
    """Outputs near zero except in one channel: a tiny output scale, positive requantization shifts and
    accumulators far outside the output range (the kernels' long output path and its clamping)."""
    rng = np.random.default_rng(5)
    w = rng.standard_normal((32, 64)).astype(np.float32) * (rng.random((32, 64)) < 0.2)
    b = np.full(32, -40.0, np.float32)
    w[0] *= 0.01
    b[0] = 0.05
    nodes = [helper.make_node("Gemm", ["input", "w", "b"], ["h"], transB=1),
             helper.make_node("Relu", ["h"], ["output"])]
    return make_model(nodes, {"input": [3, 64]}, {"output": None}, {"w": w, "b": b})


CASES = {
    "fc_positive_shifts": fc_positive_shifts,
    "fc_90": lambda: fc_model(48, 300, 0.9),  # two segments
    "fc_70_transb0": lambda: fc_model(20, 37, 0.7, seed=3, transb=0),
    "fc_50": lambda: fc_model(16, 64, 0.5, seed=4),
    "conv1x1_80": lambda: conv1x1_model(0.8),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_sparse_host(case, tmp_path, monkeypatch):
    monkeypatch.setattr(sparse, "MODE", "sparse")
    _, res, _, want = build_and_run(CASES[case](), tmp_path / "f")
    assert_float_close(res, want)
    samples, res, g, _ = build_and_run(CASES[case](), tmp_path / "q", quantize="int8")
    assert_bitexact(g, samples, res)


@pytest.mark.skipif(not HAVE_ARM, reason="needs arm-none-eabi-gcc and qemu-system-arm")
@pytest.mark.parametrize("case", sorted(CASES))
def test_sparse_cortex_m7(case, tmp_path, monkeypatch):
    monkeypatch.setattr(sparse, "MODE", "sparse")
    _, res, _, want = build_and_run(CASES[case](), tmp_path / "f", target="cortex-m7")
    assert_float_close(res, want)
    samples, res, g, _ = build_and_run(CASES[case](), tmp_path / "q", quantize="int8", target="cortex-m7")
    assert_bitexact(g, samples, res)
