"""Sparse weights: the row-sparse and N:4 encoders, the build-time dense/sparse choice, and pruned models built with
the sparse kernels (fully connected and convolution, row-sparse and N:4) on the host and on Cortex-M7 (float close
to onnxruntime, int8 bit-exact with the integer reference)."""

import re

import numpy as np
import onnx
import pytest
from helpers import HAVE_ARM, assert_bitexact, assert_float_close, build_and_run, make_model, needs_target
from onnx import helper

from edgec import sparse
from edgec.build import BuildOptions, build, lower_graph, prepare_graph, quantize_with
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


def decode_nm(nm: sparse.NM, k: int) -> np.ndarray:
    """Dense [N][K] from N:4 arrays (the format in runtime_c/include/edgec_sparse.h)."""
    rows, blocks = nm.index.shape
    span = sparse.nm_span(nm.n)
    w = np.zeros((rows, blocks * span), nm.values.dtype)
    for r in range(rows):
        for b in range(blocks):
            for j in range(4):
                col = b * span + 4 * (j // nm.n) + (int(nm.index[r, b]) >> (2 * j) & 3)
                w[r, col] += nm.values[r, b, j]
    assert not w[:, k:].any()
    return w[:, :k]


def nm_prune(w: np.ndarray, n: int) -> np.ndarray:
    """Keep the n largest of every aligned group of 4 along the last axis (zeros appended up to a multiple of 4)."""
    k = w.shape[-1]
    p = np.concatenate([w, np.zeros(w.shape[:-1] + (-k % 4,), w.dtype)], axis=-1)
    g = p.reshape(p.shape[:-1] + (-1, 4))
    rank = np.argsort(np.argsort(-np.abs(g), axis=-1), axis=-1)
    return (g * (rank < n)).reshape(p.shape)[..., :k]


@pytest.mark.parametrize("shape,n", [((5, 19), 2), ((8, 600), 1), ((3, 16), 2), ((4, 7), 1), ((2, 40), 2)])
def test_encode_nm_round_trip(shape, n):
    rng = np.random.default_rng(1)
    w = nm_prune(rng.integers(-127, 128, shape).astype(np.int8), n)
    assert sparse.nm_fit(w) <= n
    nm = sparse.encode_nm(w, n)
    blocks = -(-shape[1] // sparse.nm_span(n))
    assert nm.index.shape == (shape[0], blocks) and nm.values.shape == (shape[0], blocks, 4)
    np.testing.assert_array_equal(decode_nm(nm, shape[1]), w)
    assert nm.nbytes == 5 * shape[0] * blocks
    assert sparse.nm_fit(rng.integers(1, 9, (3, 8)).astype(np.int8)) is None  # 4 of 4 nonzero


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


def kernels(model, tmp_path, target: str, quantize: str, sparse_kernels: str = "auto") -> list[str]:
    """The kernel of every Gemm and Conv as lowered for the target (nothing is compiled)."""
    path, calib = tmp_path / "m.onnx", tmp_path / "calib.npz"
    onnx.save(model, path)
    shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    np.savez(calib, input=np.random.default_rng(0).standard_normal([8] + shape).astype(np.float32))
    g = prepare_graph(path)
    if quantize == "int8":
        quantize_with(g, BuildOptions(path, quantize="int8", calib=calib))
    return [layer["kernels"][0] for layer in lower_graph(g, load_target(target), sparse_kernels)[2]
            if layer["op"] in ("Gemm", "Conv")]


@pytest.mark.parametrize("target", ["cortex-m7", "host"])
@pytest.mark.parametrize("quantize", ["int8", "none"])
def test_cost_model_picks_sparse_for_sparse_layers(tmp_path, target, quantize):
    """A 90%-sparse fully connected layer gets the sparse kernel; a dense one (and the small dense Gemm) do not."""
    suffix = "s8" if quantize == "int8" else "f32"
    k = kernels(fc_model(64, 200, 0.9), tmp_path, target, quantize)[0]
    assert k.startswith("ec_fully_connected_sparse_") and k.endswith(suffix)  # int8: row-sparse or row-group
    dense = kernels(fc_model(64, 200, 0.0), tmp_path, target, quantize)
    assert not any("sparse" in k for k in dense)
    k = kernels(conv1x1_model(0.9), tmp_path, target, quantize)[0]
    assert k.startswith("ec_fully_connected_sparse_") and k.endswith(suffix)
    assert "sparse" not in kernels(conv1x1_model(0.0), tmp_path, target, quantize)[0]


def test_mode_overrides_the_cost_model(tmp_path):
    assert kernels(fc_model(64, 200, 0.9), tmp_path, "cortex-m7", "int8", "dense")[0] == "ec_fully_connected_packed_s8"
    assert kernels(fc_model(64, 200, 0.0), tmp_path, "host", "none", "rows")[0] == "ec_fully_connected_sparse_f32"


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


def nm_fc_model(k: int, n: int, seed: int):
    """input [2, k] -> Gemm with n:4 weights -> Relu -> output."""
    rng = np.random.default_rng(seed)
    w = nm_prune(rng.standard_normal((13, k)).astype(np.float32) * 0.3, n)
    nodes = [helper.make_node("Gemm", ["input", "w", "b"], ["h"], transB=1),
             helper.make_node("Relu", ["h"], ["output"])]
    return make_model(nodes, {"input": [2, k]}, {"output": None},
                      {"w": w, "b": rng.standard_normal(13).astype(np.float32) * 0.1})


def sparse_convs(seed: int, n: int | None):
    """Convolutions of random shapes in a chain, pruned to 80% (n None) or to n:4 along the im2col axis
    [k_h][k_w][in_c]: a KxK convolution with random stride, dilation and padding on every border, a strided 1x1
    convolution, a 3x3 one with padding 1 (odd channel counts), with and without a fused Relu."""
    rng = np.random.default_rng(seed)

    def w(o: int, i: int, kh: int, kw: int) -> np.ndarray:
        x = (rng.standard_normal((o, i, kh, kw)) / np.sqrt(i * kh * kw)).astype(np.float32)
        x = x.transpose(0, 2, 3, 1).reshape(o, -1)  # im2col order
        x = x * (np.abs(x) >= np.quantile(np.abs(x), 0.8)) if n is None else nm_prune(x, n)
        return x.reshape(o, kh, kw, i).transpose(0, 3, 1, 2).copy()

    c, h, wd = int(rng.integers(2, 9)), int(rng.integers(6, 12)), int(rng.integers(6, 12))
    k, stride, dil = int(rng.integers(2, 5)), int(rng.integers(1, 3)), int(rng.integers(1, 3))
    c1, c2, c3 = (int(v) for v in rng.integers(3, 20, 3))
    nd = helper.make_node
    nodes = [nd("Conv", ["input", "w1", "b1"], ["c1"], kernel_shape=[k, k], strides=[stride, stride],
                dilations=[dil, 1], pads=[int(v) for v in rng.integers(0, k, 4)]),
             nd("Relu", ["c1"], ["r1"]),
             nd("Conv", ["r1", "w2", "b2"], ["c2"], strides=[2, 2]),
             nd("Conv", ["c2", "w3"], ["c3"], pads=[1, 1, 1, 1]), nd("Relu", ["c3"], ["output"])]
    inits = {"w1": w(c1, c, k, k), "b1": rng.standard_normal(c1).astype(np.float32) * 0.1,
             "w2": w(c2, c1, 1, 1), "b2": rng.standard_normal(c2).astype(np.float32) * 0.1, "w3": w(c3, c2, 3, 3)}
    return make_model(nodes, {"input": [1, c, h, wd]}, {"output": None}, inits)


def conv1d_nm():
    """A 1-D convolution (kernel 5, dilation 2, padding) with 1:4 weights over 8 channels."""
    rng = np.random.default_rng(9)
    w = rng.standard_normal((6, 8, 5)).astype(np.float32) * 0.2
    w = nm_prune(w.transpose(0, 2, 1), 1).transpose(0, 2, 1).copy()
    nodes = [helper.make_node("Conv", ["input", "w"], ["output"], dilations=[2], pads=[3, 1])]
    return make_model(nodes, {"input": [1, 8, 17]}, {"output": None}, {"w": w})


CASES = {
    "fc_positive_shifts": fc_positive_shifts,
    "fc_90": lambda: fc_model(48, 300, 0.9),  # two segments
    "fc_70_transb0": lambda: fc_model(20, 37, 0.7, seed=3, transb=0),
    "fc_50": lambda: fc_model(16, 64, 0.5, seed=4),
    "conv1x1_80": lambda: conv1x1_model(0.8),
}


# case -> (model, --sparse-kernels, the kernels that must be used)
NM_CASES = {
    "nm_fc_2of4_tail": (lambda: nm_fc_model(37, 2, 6), "nm", ["ec_fully_connected_nm"]),
    "nm_fc_1of4": (lambda: nm_fc_model(300, 1, 7), "nm", ["ec_fully_connected_nm"]),
    "nm_conv1d_1of4": (conv1d_nm, "nm", ["ec_conv2d_nm"]),
    **{f"convs_{seed}_rows": (lambda seed=seed: sparse_convs(seed, None), "rows",
                              ["ec_conv2d_sparse"]) for seed in (0, 1)},
    **{f"convs_{seed}_nm{n}": (lambda seed=seed, n=n: sparse_convs(seed, n), "nm", ["ec_conv2d_nm"])
       for seed, n in ((2, 2), (3, 1))},
}
ALL_CASES = {**{k: (v, "rows", ["ec_fully_connected_sparse"]) for k, v in CASES.items()}, **NM_CASES}


def check_case(case: str, tmp_path, target: str) -> None:
    model, mode, kernels_used = ALL_CASES[case]
    _, res, _, want = build_and_run(model(), tmp_path / "f", target=target, sparse_kernels=mode)
    assert_float_close(res, want)
    samples, res, g, _ = build_and_run(model(), tmp_path / "q", quantize="int8", target=target, sparse_kernels=mode)
    assert_bitexact(g, samples, res)
    for sub, suffix in (("f", "f32"), ("q", "s8")):
        used = {p.stem for p in (tmp_path / sub / "build" / "runtime").glob("ec_*.c")}
        assert {f"{k}_{suffix}" for k in kernels_used} <= used, used


@pytest.mark.parametrize("case", sorted(ALL_CASES))
def test_sparse_host(case, tmp_path):
    check_case(case, tmp_path, "host")


@pytest.mark.skipif(not HAVE_ARM, reason="needs arm-none-eabi-gcc and qemu-system-arm")
@pytest.mark.parametrize("case", sorted(ALL_CASES))
def test_sparse_cortex_m7(case, tmp_path):
    check_case(case, tmp_path, "cortex-m7")


# ---- row-group kernel (ec_fully_connected_sparse_gather_s8) -------------------------------------------------------


def decode_gather(gt: sparse.Gather, n: int, k: int, fast: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dense [N][K] weights, folded biases and ~shifts from a row-group stream (format in edgec_sparse.h)."""
    s, w = gt.stream.astype(np.int64), np.zeros((n, k), np.int64)
    bias, ns = np.zeros(n, np.int64), np.zeros(n, np.int64)
    pos = 0
    for _ in range(gt.groups):
        steps = s[pos] // (4 * sparse.GATHER_WORDS)
        head, pos = s[pos + 1:pos + 5], pos + sparse.GATHER_HEAD
        body = s[pos:pos + sparse.GATHER_WORDS * steps].reshape(steps, sparse.GATHER_WORDS)
        pos += sparse.GATHER_WORDS * steps
        tail, pos = s[pos:pos + sparse.GATHER_TAIL], pos + sparse.GATHER_TAIL
        lo, hi = (body[:, 4:6] << 48) >> 48, body[:, 4:6] >> 16  # sign-extended int16 halves
        vals = np.stack([lo[:, 0], lo[:, 1], hi[:, 0], hi[:, 1]], 1)
        for j, row in enumerate(tail[8:12]):
            w[row] = 0
            np.add.at(w[row], body[:, j], vals[:, j])
            bias[row], ns[row] = head[j], tail[4 + j]
    assert pos == s.size
    scale = 2 if fast else 1
    assert not (w % scale).any() and not (bias % scale).any()
    return w // scale, bias // scale, ns


@pytest.mark.parametrize("seed", range(4))
def test_encode_gather_round_trip(seed):
    """Random shapes (N not a multiple of 4, K past 255, empty rows, an all-zero layer): the stream decodes to the
    weights, the biases with the input zero point folded in, and the shifts."""
    rng = np.random.default_rng(seed)
    n, k = int(rng.integers(1, 40)), int(rng.integers(1, 700))
    density = rng.random(n)[:, None] * (seed != 3)  # seed 3: all zeros
    w = (rng.integers(-127, 128, (n, k)) * (rng.random((n, k)) < density)).astype(np.int8)
    w[rng.random(n) < 0.2] = 0
    bias = rng.integers(-5000, 5000, n).astype(np.int32)
    in_zp = int(rng.choice([-128, 127, 3]))
    mult, shift = rng.integers(2**30, 2**31, n), rng.integers(-9, 2, n)
    for fast in (False, True):
        gt = sparse.encode_gather(w, bias, in_zp, mult, shift, fast)
        wd, folded, ns = decode_gather(gt, n, k, fast)
        np.testing.assert_array_equal(wd, w)
        np.testing.assert_array_equal(folded, bias - in_zp * w.astype(np.int64).sum(axis=1))
        np.testing.assert_array_equal(ns, ~shift)
        assert gt.nbytes == sparse.gather_bytes(w) and gt.steps == sparse.gather_steps(w)


def gather_model(seed: int):
    """Random Gemm shapes for the row-group kernel: 1-3 input rows, N from 1 to 37, K from 1 to 600 (column indices
    past 255), rows of very different lengths, empty rows; a Relu before the Gemm for odd seeds (input zero point
    -128), a Relu after it for even seeds (output zero point -128; else the full int8 range); seed 2:
    fc_positive_shifts (positive shifts in rows with nonzero weights: the general output stage)."""
    if seed == 2:
        return fc_positive_shifts()
    rng = np.random.default_rng(seed)
    rows, n, k = int(rng.integers(1, 4)), int(rng.integers(1, 38)), int(rng.integers(1, 601))
    w = rng.standard_normal((n, k)).astype(np.float32) * 0.3
    w *= rng.random((n, k)) < rng.random(n)[:, None] * 0.3
    w[rng.random(n) < 0.2] = 0.0
    b = rng.standard_normal(n).astype(np.float32) * 0.1
    x = "x" if seed % 2 else "input"
    nodes = [helper.make_node("Relu", ["input"], ["x"])] if seed % 2 else []
    nodes.append(helper.make_node("Gemm", [x, "w", "b"], ["h" if seed % 2 == 0 else "output"], transB=1))
    if seed % 2 == 0:
        nodes.append(helper.make_node("Relu", ["h"], ["output"]))
    return make_model(nodes, {"input": [rows, k]}, {"output": None}, {"w": w, "b": b})


def check_gather(seed: int, tmp_path, target: str) -> None:
    samples, res, g, _ = build_and_run(gather_model(seed), tmp_path, quantize="int8", target=target,
                                       sparse_kernels="gather")
    assert_bitexact(g, samples, res)
    used = {p.stem for p in (tmp_path / "build" / "runtime").glob("ec_*.c")}
    assert "ec_fully_connected_sparse_gather_s8" in used, used
    calls = re.findall(r"ec_fully_connected_sparse_gather_s8\(([^;]*)\);",
                       "".join(p.read_text() for p in (tmp_path / "build").glob("*.c")))
    fast = int(calls[0].split(",")[4])
    assert fast == (seed != 2)  # the general output stage for seed 2, the fast one (assembly on M7) otherwise


@pytest.mark.parametrize("seed", range(6))
def test_gather_host(seed, tmp_path):
    check_gather(seed, tmp_path, "host")


@pytest.mark.skipif(not HAVE_ARM, reason="needs arm-none-eabi-gcc and qemu-system-arm")
@pytest.mark.parametrize("seed", range(6))
def test_gather_cortex_m7(seed, tmp_path):
    check_gather(seed, tmp_path, "cortex-m7")


@pytest.mark.parametrize("target,seed", [pytest.param(t, s, marks=needs_target(t))
                                         for t in ("cortex-m55", "cortex-a53", "cortex-m3") for s in (0, 2)])
def test_gather_other_cores(target, seed, tmp_path):
    """Forced on other cores: the assembly on Cortex-M55 (DSP extension), the plain C on Cortex-A53 and M3."""
    check_gather(seed, tmp_path, target)


def test_cost_model_gather_only_where_it_wins(tmp_path):
    """On Cortex-M7 a 90%-sparse int8 layer of 128x640 gets the row-group kernel, a 50%-sparse one stays dense;
    Helium and NEON targets stay dense (DENSE_FAMILIES)."""
    assert kernels(fc_model(128, 640, 0.9), tmp_path, "cortex-m7", "int8")[0] == "ec_fully_connected_sparse_gather_s8"
    assert kernels(fc_model(128, 640, 0.5), tmp_path, "cortex-m7", "int8")[0] == "ec_fully_connected_packed_s8"
    for target in ("cortex-m55", "cortex-a53"):
        assert "sparse" not in kernels(fc_model(128, 640, 0.9), tmp_path, target, "int8")[0]


def sparse_tflite_fc(seed: int) -> bytes:
    """A .tflite FULLY_CONNECTED (Relu) with 90% zero int8 weights (per-tensor scale), some rows all zero, and an
    input zero point near an end of the range: built with TFLM's arithmetic (the kernels' _tflm builds)."""
    import tflite_builder as tb

    rng = np.random.default_rng(seed)
    m = tb.TFLiteBuilder()
    rows, k, units = 2, 300, 22
    s_in, ws = 0.04, 0.004
    w = rng.integers(-127, 128, size=(units, k)) * (rng.random((units, k)) < 0.1)
    w[::7] = 0
    x = m.tensor("x", (rows, k), scale=s_in, zero_point=int(rng.choice([-120, 110])))
    wt = m.tensor("w", (units, k), data=w, scale=ws)
    bt = m.tensor("b", (units,), "int32", data=rng.integers(-3000, 3000, size=units), scale=s_in * ws)
    y = m.tensor("y", (rows, units), scale=float(np.sqrt(k / 10) * 74 * 73 * s_in * ws / 30), zero_point=-7)
    m.op("FULLY_CONNECTED", [x, wt, bt], [y], "FullyConnectedOptions", FusedActivationFunction=tb.ACT["RELU"])
    return m.finish([x], [y])


def _assert_sparse_tflm(tmp_path, target: str, kernels: str, rows: int) -> None:
    """A sparse fully connected .tflite layer built with --sparse-kernels `kernels` takes that kernel's TFLM build and
    equals the integer reference and TFLM's own outputs."""
    pytest.importorskip("tflite_micro", reason="needs the tflite extra: pip install 'edgec[tflite]'")
    from helpers import integer_samples

    from edgec.reference import quantize_feeds, run_graph
    from edgec.runner import run_build
    from edgec.validate import tflm_outputs

    kernel = {"gather": "ec_fully_connected_sparse_gather_s8", "block": "ec_fully_connected_block_sparse_s8"}[kernels]
    path = tmp_path / "fc.tflite"
    path.write_bytes(sparse_tflite_fc(rows))
    out, meta, g = build(BuildOptions(path, target=target, out=tmp_path / "b", sparse_kernels=kernels))
    assert f"{kernel}_tflm" in {k for la in meta["layers"] for k in la["kernels"]}
    samples = integer_samples(g, 4)
    res = run_build(out, samples)
    for s, raw, want in zip(samples, res.raw, tflm_outputs(str(path), g, samples)):
        ref = run_graph(g, quantize_feeds(g, s), int8=True)
        for name in g.outputs:
            np.testing.assert_array_equal(raw[name], ref[name])
            np.testing.assert_array_equal(raw[name], want[name].reshape(raw[name].shape))


@pytest.mark.parametrize("target", ["host", pytest.param("cortex-m7", marks=pytest.mark.skipif(
    not HAVE_ARM, reason="needs arm-none-eabi-gcc and qemu-system-arm"))])
def test_gather_tflm(target, tmp_path):
    """The row-group kernel's TFLM build (SMMULR output stage in the assembly on Cortex-M7) equals the integer
    reference and TFLM's own outputs."""
    _assert_sparse_tflm(tmp_path, target, "gather", 1)


# ---- block-sparse kernel (ec_fully_connected_block_sparse_s8) -----------------------------------------------------


def decode_blocks(b: sparse.Blocks, n: int, k: int) -> np.ndarray:
    """Dense [N][K] from the block-sparse stream (the format in runtime_c/include/edgec_sparse.h)."""
    w = np.zeros(((n + 3) // 4 * 4, (k + 3) // 4 * 4), np.int8)
    s, i = b.stream, 0
    for g in range(b.groups):
        count, i = int(s[i]), i + 1
        for _ in range(count):
            col = int(s[i]) // 8 * 4
            halves = s[i + 1:i + 9].astype("<i4").view("<i2").reshape(4, 4)  # per row: columns 0, 2, 1, 3
            assert np.abs(halves).max() <= 127
            w[4 * g:4 * g + 4, col:col + 4] = halves[:, [0, 2, 1, 3]]
            i += sparse.TILE_WORDS
    assert i == s.size
    assert not w[n:].any() and not w[:, k:].any()
    return w[:n, :k]


def block_weights(rng, n: int, k: int, block: tuple[int, int], keep: float) -> np.ndarray:
    """Random [N][K] int8 weights with whole rows x columns blocks zero (blocks cut at the edges)."""
    r, c = block
    mask = rng.random(((n + r - 1) // r, (k + c - 1) // c)) < keep
    mask = np.repeat(np.repeat(mask, r, axis=0), c, axis=1)[:n, :k]
    return (rng.integers(-127, 128, (n, k)) * mask).astype(np.int8)


@pytest.mark.parametrize("seed", range(4))
def test_encode_blocks_round_trip(seed):
    rng = np.random.default_rng(seed)
    n, k = int(rng.integers(1, 40)), int(rng.integers(1, 300))
    w = block_weights(rng, n, k, ((1, 8), (4, 4), (2, 4), (8, 1))[seed], float(rng.random()))
    b = sparse.encode_blocks(w)
    np.testing.assert_array_equal(decode_blocks(b, n, k), w)
    assert b.nbytes == sparse.block_bytes(w) and b.tiles == int(sparse.block_tiles(w).sum())


def block_model(seed: int):
    """Random block-sparse layers for the block-sparse kernel: seeds 0-3 a Gemm over 1-3 input rows, N from 1 to 37
    and K from 1 to 600 (N or K not multiples of 4 for some), blocks 4x4, 1x8, 2x4 or 8x4 zero with random density;
    a Relu before it for odd seeds (input zero point -128), after it for even seeds; seed 4: a 1x1 convolution (the
    kernel over the pixels); seed 5: fc_positive_shifts (the general output stage)."""
    if seed == 5:
        return fc_positive_shifts()
    rng = np.random.default_rng(seed)
    if seed == 4:
        w = block_weights(rng, 24, 40, (4, 4), 0.4).astype(np.float32)[:, :, None, None] * 0.01
        nodes = [helper.make_node("Conv", ["input", "w", "b"], ["c"]), helper.make_node("Relu", ["c"], ["output"])]
        return make_model(nodes, {"input": [1, 40, 5, 6]}, {"output": None},
                          {"w": w, "b": rng.standard_normal(24).astype(np.float32) * 0.1})
    rows, n, k = int(rng.integers(1, 4)), int(rng.integers(1, 38)), int(rng.integers(1, 601))
    w = block_weights(rng, n, k, ((4, 4), (1, 8), (2, 4), (8, 4))[seed], float(rng.uniform(0.1, 0.6)))
    w = w.astype(np.float32) * 0.003
    b = rng.standard_normal(n).astype(np.float32) * 0.1
    x = "x" if seed % 2 else "input"
    nodes = [helper.make_node("Relu", ["input"], ["x"])] if seed % 2 else []
    nodes.append(helper.make_node("Gemm", [x, "w", "b"], ["h" if seed % 2 == 0 else "output"], transB=1))
    if seed % 2 == 0:
        nodes.append(helper.make_node("Relu", ["h"], ["output"]))
    return make_model(nodes, {"input": [rows, k]}, {"output": None}, {"w": w, "b": b})


def check_block(seed: int, tmp_path, target: str) -> None:
    samples, res, g, _ = build_and_run(block_model(seed), tmp_path, quantize="int8", target=target,
                                       sparse_kernels="block")
    assert_bitexact(g, samples, res)
    calls = re.findall(r"ec_fully_connected_block_sparse_s8\(([^;]*)\);",
                       "".join(p.read_text() for p in (tmp_path / "build").glob("*.c")))
    assert calls
    assert int(calls[0].split(",")[-1].strip(" )")) == (seed != 5)  # the general output stage for seed 5


@pytest.mark.parametrize("seed", range(6))
def test_block_sparse_host(seed, tmp_path):
    check_block(seed, tmp_path, "host")


@pytest.mark.skipif(not HAVE_ARM, reason="needs arm-none-eabi-gcc and qemu-system-arm")
@pytest.mark.parametrize("seed", [0, 2, 4, 5])
def test_block_sparse_cortex_m7(seed, tmp_path):
    """The DSP assembly: 4x4 and 2x4 blocks, a 1x1 convolution and the general output stage (1x8 and 8x4 blocks
    on the host)."""
    check_block(seed, tmp_path, "cortex-m7")


@pytest.mark.parametrize("seed", [pytest.param(s, marks=needs_target("cortex-m3")) for s in (0, 5)])
def test_block_sparse_cortex_m3(seed, tmp_path):
    """The plain C on a core without the DSP extension."""
    check_block(seed, tmp_path, "cortex-m3")


def block_fc_model(keep: float):
    """input [1, 640] -> Gemm 128x640 with 4x4 blocks kept at random (share `keep`) -> Relu."""
    rng = np.random.default_rng(4)
    w = block_weights(rng, 128, 640, (4, 4), keep).astype(np.float32) * 0.003
    nodes = [helper.make_node("Gemm", ["input", "w", "b"], ["h"], transB=1),
             helper.make_node("Relu", ["h"], ["output"])]
    return make_model(nodes, {"input": [1, 640]}, {"output": None},
                      {"w": w, "b": rng.standard_normal(128).astype(np.float32) * 0.1})


def test_cost_model_block_only_where_it_wins(tmp_path):
    """On Cortex-M7 a 128x640 int8 layer with 90% of its 4x4 blocks zero gets the block-sparse kernel; with 40% zero
    it stays dense (the int16 tiles would need more flash than dense); Helium and NEON targets stay dense; forcing
    block on float weights keeps them dense."""
    assert kernels(block_fc_model(0.1), tmp_path, "cortex-m7", "int8")[0] == "ec_fully_connected_block_sparse_s8"
    assert kernels(block_fc_model(0.6), tmp_path, "cortex-m7", "int8")[0] == "ec_fully_connected_block4_s8"
    for target in ("cortex-m55", "cortex-a53"):
        assert "sparse" not in kernels(block_fc_model(0.1), tmp_path, target, "int8")[0]
    assert kernels(block_fc_model(0.1), tmp_path, "cortex-m7", "none", "block")[0] == "ec_fully_connected_f32"


@pytest.mark.skipif(not HAVE_ARM, reason="needs arm-none-eabi-gcc and qemu-system-arm")
def test_block_sparse_tflm(tmp_path):
    """The block-sparse kernel's TFLM build (SMMULR output stage) on Cortex-M7 equals the integer reference and
    TFLM's own outputs."""
    _assert_sparse_tflm(tmp_path, "cortex-m7", "block", 2)
