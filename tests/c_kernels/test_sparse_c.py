"""The sparse fully connected kernels (runtime_c/include/edgec_sparse.h: row-sparse, row-group and, where the weights
fit it, N:4) against the dense ones on the same matrices.

The kernels are compiled with gcc and UBSan and called through cffi; the weights are encoded by toolchain/sparse.py.
s8 must equal ec_fully_connected_s8 bit for bit, f32 must equal ec_fully_connected_f32 exactly."""

import subprocess
from pathlib import Path

import numpy as np
import pytest

from edgec.sparse import (
    encode_gather,
    encode_nm,
    encode_rows,
    gather_fast,
    nm_fit,
    nm_scratch_bytes,
    sparse_scratch_bytes,
)

cffi = pytest.importorskip("cffi")

RUNTIME = Path(__file__).resolve().parents[2] / "runtime_c"
KERNELS = ["ec_fully_connected_s8", "ec_fully_connected_f32", "ec_fully_connected_sparse_s8",
           "ec_fully_connected_sparse_f32", "ec_fully_connected_nm_s8", "ec_fully_connected_nm_f32",
           "ec_fully_connected_sparse_gather_s8"]
CDEF = """
typedef struct {
    int32_t in_zp, out_zp, act_min, act_max;
    const int32_t *mult;
    const int32_t *shift;
    int32_t per_channel;
} ec_quant_s8;
typedef struct { float act_min, act_max; } ec_act_f32;
void ec_fully_connected_s8(int32_t rows, int32_t depth, int32_t out_c, const ec_quant_s8 *q, const int8_t *input,
                           const int8_t *weights, const int32_t *bias, int8_t *output);
void ec_fully_connected_f32(int32_t rows, int32_t depth, int32_t out_c, const ec_act_f32 *act, const float *input,
                            const float *weights, const float *bias, float *output);
int32_t ec_fully_connected_sparse_s8_get_buffer_size(int32_t rows, int32_t depth, int32_t out_c);
void ec_fully_connected_sparse_s8(int32_t rows, int32_t depth, int32_t out_c, const ec_quant_s8 *q,
                                  const int8_t *input, const uint8_t *counts, const uint8_t *blocks,
                                  const int32_t *bias, int8_t *output, void *scratch);
void ec_fully_connected_sparse_f32(int32_t rows, int32_t depth, int32_t out_c, const ec_act_f32 *act,
                                   const float *input, const uint8_t *counts, const uint8_t *index,
                                   const float *values, const float *bias, float *output);
int32_t ec_fully_connected_nm_s8_get_buffer_size(int32_t rows, int32_t depth, int32_t out_c, int32_t n);
void ec_fully_connected_nm_s8(int32_t rows, int32_t depth, int32_t out_c, int32_t n, const ec_quant_s8 *q,
                              const int8_t *input, const uint8_t *index, const int8_t *values, const int32_t *bias,
                              int8_t *output, void *scratch);
void ec_fully_connected_nm_f32(int32_t rows, int32_t depth, int32_t out_c, int32_t n, const ec_act_f32 *act,
                               const float *input, const uint8_t *index, const float *values, const float *bias,
                               float *output);
void ec_fully_connected_sparse_gather_s8(int32_t rows, int32_t depth, int32_t out_c, int32_t words, int32_t fast,
                                         int32_t out_zp, int32_t act_min, int32_t act_max, const int8_t *input,
                                         const int32_t *stream, int8_t *output);
"""
# (sparsity or pattern, out_c, depth): unstructured shares of zeros, N:M patterns, empty rows, an all-zero matrix,
# depths that are not a multiple of 4 and that span several 256-column segments.
CASES = [(0.5, 13, 37), (0.7, 20, 100), (0.9, 32, 257), (0.9, 7, 600), ("2:4", 9, 64), ("1:4", 11, 28),
         ("empty rows", 16, 45), ("zeros", 5, 19), (0.0, 6, 9), (0.97, 40, 1000), ("2:4", 6, 300), ("1:4", 5, 36)]


@pytest.fixture(scope="module")
def ck(tmp_path_factory):
    so = tmp_path_factory.mktemp("sparse") / "libsparse.so"
    srcs = [str(RUNTIME / "src" / f"{k}.c") for k in KERNELS]
    subprocess.run(["gcc", "-std=c99", "-O2", "-shared", "-fPIC", "-Wall", "-Wextra", "-Werror", "-fsanitize=undefined",
                    "-I", str(RUNTIME / "include"), *srcs, "-o", str(so), "-lm"], check=True)
    ffi = cffi.FFI()
    ffi.cdef(CDEF)
    return ffi, ffi.dlopen(str(so))


@pytest.fixture(autouse=True)
def no_undefined_behaviour(capfd):
    yield
    err = capfd.readouterr().err
    if "runtime error" in err:
        pytest.fail("undefined behaviour in a kernel:\n" + err)


def buf(ffi, a: np.ndarray):
    types = {np.int8: "int8_t", np.uint8: "uint8_t", np.int32: "int32_t", np.float32: "float"}
    return ffi.from_buffer(types[a.dtype.type] + "[]", np.ascontiguousarray(a))


def pruned(rng: np.random.Generator, pattern, n: int, k: int, dtype) -> np.ndarray:
    w = (rng.integers(-127, 128, (n, k)) if dtype == np.int8 else rng.standard_normal((n, k))).astype(dtype)
    if pattern == "zeros":
        return np.zeros_like(w)
    if pattern == "empty rows":
        keep = rng.random((n, k)) < 0.2
        keep[::3] = False
    elif isinstance(pattern, str):  # n:m along the input axis: keep the n largest of every m
        nn, m = (int(v) for v in pattern.split(":"))
        groups = np.abs(w.astype(np.float64)).reshape(n, k // m, m)
        keep = (np.argsort(np.argsort(-groups, axis=2), axis=2) < nn).reshape(n, k)
    else:
        keep = rng.random((n, k)) >= pattern
    return np.where(keep, w, 0).astype(dtype)


@pytest.mark.parametrize("case", range(len(CASES)))
@pytest.mark.parametrize("seed", range(3))
def test_sparse_s8_equals_dense(ck, case, seed):
    ffi, lib = ck
    pattern, n, k = CASES[case]
    rng = np.random.default_rng(seed * 100 + case)
    rows = int(rng.integers(1, 4))
    w = pruned(rng, pattern, n, k, np.int8)
    x = rng.integers(-128, 128, (rows, k)).astype(np.int8)
    bias = rng.integers(-5000, 5000, n).astype(np.int32) if seed != 1 else None
    big = seed == 2  # accumulators near the int32 limits: the kernels' general output stage
    if big and bias is not None:
        bias[::2] = 2**31 - 2**21
    per_channel = seed != 1
    mult = rng.integers(2**30, 2**31 - 1, n if per_channel else 1).astype(np.int32)
    shift = rng.integers(-10, 2, n if per_channel else 1).astype(np.int32)
    q = ffi.new("ec_quant_s8 *", {"in_zp": int(rng.integers(-128, 128)), "out_zp": int(rng.integers(-128, 128)),
                                  "act_min": -100 if seed else -128, "act_max": 127, "mult": buf(ffi, mult),
                                  "shift": buf(ffi, shift), "per_channel": int(per_channel)})
    cbias = ffi.NULL if bias is None else buf(ffi, bias)
    want = np.empty((rows, n), np.int8)
    lib.ec_fully_connected_s8(rows, k, n, q, buf(ffi, x), buf(ffi, w), cbias, buf(ffi, want))
    sp = encode_rows(w)
    got = np.empty((rows, n), np.int8)
    nbytes = lib.ec_fully_connected_sparse_s8_get_buffer_size(rows, k, n)
    assert nbytes == sparse_scratch_bytes(rows, k, n)
    scratch = np.full(nbytes, 0x5A, np.uint8)
    lib.ec_fully_connected_sparse_s8(rows, k, n, q, buf(ffi, x), buf(ffi, sp.counts), buf(ffi, sp.blocks_s8()), cbias,
                                     buf(ffi, got), ffi.from_buffer(scratch))
    np.testing.assert_array_equal(got, want)
    # row-group: per-channel stage, the input zero point folded into the biases (not when they would leave int32)
    full = np.zeros(n, np.int64) if bias is None else bias.astype(np.int64)
    mults, shifts = np.broadcast_to(mult, n).astype(np.int64), np.broadcast_to(shift, n).astype(np.int64)
    if not big:
        fast = gather_fast(w, full, shifts)
        gt = encode_gather(w, full, q.in_zp, mults, shifts, fast)
        got[:] = 0
        lib.ec_fully_connected_sparse_gather_s8(rows, k, n, gt.stream.size, int(fast), q.out_zp, q.act_min, q.act_max,
                                                buf(ffi, x), buf(ffi, gt.stream), buf(ffi, got))
        np.testing.assert_array_equal(got, want)
    fit = nm_fit(w)
    if fit is not None:  # N:4
        nm = encode_nm(w, fit)
        nbytes = lib.ec_fully_connected_nm_s8_get_buffer_size(rows, k, n, fit)
        assert nbytes == nm_scratch_bytes(rows, k, n, fit)
        scratch = np.full(nbytes, 0x5A, np.uint8)
        got[:] = 0
        lib.ec_fully_connected_nm_s8(rows, k, n, fit, q, buf(ffi, x), buf(ffi, nm.index), buf(ffi, nm.values), cbias,
                                     buf(ffi, got), ffi.from_buffer(scratch))
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("case", range(len(CASES)))
def test_sparse_f32_equals_dense(ck, case):
    ffi, lib = ck
    pattern, n, k = CASES[case]
    rng = np.random.default_rng(case)
    rows = int(rng.integers(1, 4))
    w = pruned(rng, pattern, n, k, np.float32)
    x = rng.standard_normal((rows, k)).astype(np.float32)
    bias = rng.standard_normal(n).astype(np.float32)
    act = ffi.new("ec_act_f32 *", {"act_min": -1.0, "act_max": 2.0}) if case % 2 else ffi.NULL
    want = np.empty((rows, n), np.float32)
    lib.ec_fully_connected_f32(rows, k, n, act, buf(ffi, x), buf(ffi, w), buf(ffi, bias), buf(ffi, want))
    sp = encode_rows(w)
    got = np.empty((rows, n), np.float32)
    lib.ec_fully_connected_sparse_f32(rows, k, n, act, buf(ffi, x), buf(ffi, sp.counts), buf(ffi, sp.index),
                                      buf(ffi, sp.values), buf(ffi, bias), buf(ffi, got))
    np.testing.assert_array_equal(got, want)
    fit = nm_fit(w)
    if fit is not None:  # N:4
        nm = encode_nm(w, fit)
        got[:] = 0
        lib.ec_fully_connected_nm_f32(rows, k, n, fit, act, buf(ffi, x), buf(ffi, nm.index), buf(ffi, nm.values),
                                      buf(ffi, bias), buf(ffi, got))
        np.testing.assert_array_equal(got, want)
