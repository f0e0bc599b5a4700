"""TFLM's arithmetic in C (runtime_c/include/edgec_tflm.h, the helpers compiled with EC_TFLM, ec_softmax_tflm_s8)
equals its numpy twins (toolchain/ops/tflm.py) on random and extreme values: host gcc with UBSan."""

import subprocess
from pathlib import Path

import numpy as np
import pytest

from edgec.ops import tflm

cffi = pytest.importorskip("cffi")

RUNTIME = Path(__file__).resolve().parents[2] / "runtime_c"
I32_MIN, I32_MAX = -(2**31), 2**31 - 1
WRAPPER = """
#define EC_TFLM 1
#include "edgec_tflm.h"
#include "edgec_dsp.h"
void rq(int32_t n, int32_t fast, const int32_t *x, const int32_t *mult, const int32_t *shift, int32_t *out);
void rq(int32_t n, int32_t fast, const int32_t *x, const int32_t *mult, const int32_t *shift, int32_t *out)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        out[i] = fast ? ec_requant_fast(x[i], mult[i], shift[i], 7) : ec_requantize(x[i], mult[i], shift[i]);
    }
}
"""
CDEF = """
typedef enum { EC_F32 = 0, EC_S8 = 1, EC_S16 = 2 } ec_elem_type;
typedef struct {
    ec_elem_type in_type, out_type;
    int32_t in_zp, out_zp;
    int32_t mult, shift;
    float scale;
    int32_t qmin, qmax;
} ec_convert_params;
void ec_convert_tflm(int32_t size, const ec_convert_params *p, const void *input, void *output);
void rq(int32_t n, int32_t fast, const int32_t *x, const int32_t *mult, const int32_t *shift, int32_t *out);
void ec_softmax_tflm_s8(int32_t outer, int32_t n, int32_t inner, int32_t mult, int32_t left_shift, int32_t diff_min,
                        const int8_t *input, int8_t *output);
"""


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    d = tmp_path_factory.mktemp("tflm_c")
    (d / "rq.c").write_text(WRAPPER)
    so = d / "libtflm.so"
    subprocess.run(["gcc", "-std=c99", "-O2", "-shared", "-fPIC", "-Wall", "-Wextra", "-Werror", "-fsanitize=undefined",
                    "-fno-sanitize-recover=undefined", "-I", str(RUNTIME / "include"), str(d / "rq.c"),
                    str(RUNTIME / "src" / "ec_softmax_tflm_s8.c"), str(RUNTIME / "src" / "ec_convert_tflm.c"), "-o",
                    str(so), "-lm"], check=True)
    ffi = cffi.FFI()
    ffi.cdef(CDEF)
    return ffi, ffi.dlopen(str(so))


def ptr(ffi, a: np.ndarray, ctype: str):
    return ffi.cast(f"{ctype} *", ffi.from_buffer(a))


def call_rq(ffi, lib, fast: int, x, m, s) -> np.ndarray:
    x, m, s = (np.ascontiguousarray(v, np.int32) for v in (x, m, s))
    out = np.empty(x.size, np.int32)
    lib.rq(x.size, fast, *(ptr(ffi, a, "int32_t") for a in (x, m, s, out)))
    return out


def test_requantize(lib):
    """ec_requantize compiled with EC_TFLM: every accumulator, multiplier in [0, 2^31) and shift in [-31, 30],
    with the extremes: INT32_MIN and INT32_MAX accumulators, left shifts that wrap, ties of both roundings."""
    ffi, c = lib
    r = np.random.default_rng(1)
    edge_x = np.array([I32_MIN, I32_MIN + 1, -(2**30) - 1, -(2**30), -3, -1, 0, 1, 3, 2**30, I32_MAX])
    edge_m = np.array([0, 1, 1 << 30, (1 << 30) + 1, I32_MAX])
    edge_s = np.array([-31, -30, -17, -2, -1, 0, 1, 2, 17, 30])
    grid = np.array(np.meshgrid(edge_x, edge_m, edge_s)).reshape(3, -1)
    n = 60000
    rand = np.stack([np.where(r.random(n) < 0.5, r.integers(I32_MIN, I32_MAX, n, endpoint=True),
                              r.integers(-70000, 70000, n)),
                     r.integers(1 << 30, I32_MAX, n, endpoint=True), r.integers(-31, 31, n)])
    ties = np.stack([np.arange(-200, 200) * (1 << 7) + (1 << 6), np.full(400, 1 << 30), np.full(400, -7)])
    x, m, s = np.concatenate([grid, rand, ties], axis=1)
    np.testing.assert_array_equal(call_rq(ffi, c, 0, x, m, s), tflm.requantize(x, m, s))


def test_requant_fast(lib):
    """ec_requant_fast compiled with EC_TFLM (the plain C beside the DSP path): the TFLM requantization plus the
    zero point (zp21 = 7: zp 3) for its domain, |acc| < 2^30 and shift < 0."""
    ffi, c = lib
    r = np.random.default_rng(2)
    n = 60000
    x = np.concatenate([[-(2**30), -(2**30) + 1, -1, 0, 1, 2**30 - 1], r.integers(-(2**30), 2**30, n)])
    m = np.concatenate([[1 << 30, I32_MAX, 1 << 30, I32_MAX, 0, 1 << 30], r.integers(1 << 30, I32_MAX, n)])
    s = np.concatenate([[-1, -31, -1, -5, -1, -31], r.integers(-31, 0, n)])
    np.testing.assert_array_equal(call_rq(ffi, c, 1, x, m, s), tflm.requantize(x, m, s) + 3)


@pytest.mark.parametrize("seed", range(6))
def test_softmax(lib, seed):
    """ec_softmax_tflm_s8 along the middle axis of [outer][n][inner] equals softmax_s8, for input scales from
    tiny (every difference rounds to exp 1) to large (most fall below diff_min), with ties and constant rows; and
    its outputs track the float softmax (scale 1/256, zero point -128) within 2 steps."""
    ffi, c = lib
    r = np.random.default_rng(seed)
    outer, n, inner = int(r.integers(1, 4)), int(r.integers(1, 40)), int(r.integers(1, 4))
    s_in = float(np.float32(10.0 ** r.uniform(-4, 0.5)))
    beta = float(np.float32(r.choice([1.0, 0.5, 2.0])))
    x = r.integers(-128, 128, (outer, n, inner)).astype(np.int8)
    x[0, :, 0] = x[0, 0, 0]  # a constant row
    mult, shift, diff_min = tflm.softmax_params(beta, s_in)
    out = np.empty_like(x)
    c.ec_softmax_tflm_s8(outer, n, inner, mult, shift, diff_min, ptr(ffi, x, "int8_t"), ptr(ffi, out, "int8_t"))
    want = tflm.softmax_s8(x, 1, mult, shift, diff_min)
    np.testing.assert_array_equal(out, want)
    z = x.astype(np.float64) * s_in * beta
    e = np.exp(z - z.max(axis=1, keepdims=True))
    real = e / e.sum(axis=1, keepdims=True)
    assert np.abs((want.astype(np.float64) + 128) / 256 - real).max() <= 2 / 256


@pytest.mark.parametrize("seed", range(4))
def test_convert(lib, seed):
    """ec_convert_tflm: QUANTIZE float -> int8 (x / scale rounded half away from zero, ties and out-of-range values
    included) and int8 -> int8 (TFLM's requantization) equal the numpy twins."""
    ffi, c = lib
    r = np.random.default_rng(seed)
    s = float(np.float32(10.0 ** r.uniform(-3, 0.5)))
    zp, zp2 = (int(v) for v in r.integers(-128, 128, 2))
    x = np.concatenate([r.normal(0, 300 * s, 2000), (np.arange(-300, 300) + 0.5) * s]).astype(np.float32)
    out = np.empty(x.size, np.int8)
    p = ffi.new("ec_convert_params *", {"in_type": 0, "out_type": 1, "out_zp": zp, "scale": s, "qmin": -128,
                                        "qmax": 127})
    c.ec_convert_tflm(x.size, p, ffi.from_buffer(x), ffi.from_buffer(out))
    np.testing.assert_array_equal(out, tflm.quantize_float(x, s, zp))
    q = np.arange(-128, 128, dtype=np.int8)
    mult, shift = tflm.quantize_multiplier(float(10.0 ** r.uniform(-2, 1.5)))
    p = ffi.new("ec_convert_params *", {"in_type": 1, "out_type": 1, "in_zp": zp, "out_zp": zp2, "mult": mult,
                                        "shift": shift, "qmin": -128, "qmax": 127})
    out = np.empty(256, np.int8)
    c.ec_convert_tflm(256, p, ffi.from_buffer(q), ffi.from_buffer(out))
    np.testing.assert_array_equal(out, np.clip(tflm.requantize(q.astype(np.int64) - zp, mult, shift) + zp2, -128, 127))
