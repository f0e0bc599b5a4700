"""ec_requantize_s64_clamp and ec_requantize_s32_clamp (edgec_internal.h; the output stages of the 16x8 DSP kernels,
in 32-bit pieces and with one 32 x 32-bit product) equal clamp(requantize64) of the numpy reference, the twin of
ec_requantize_s64, on random and extreme accumulators, multipliers, shifts and bounds of their domains (host gcc
with UBSan)."""

import subprocess
from pathlib import Path

import numpy as np
import pytest

from edgec.ops.base import requantize64

cffi = pytest.importorskip("cffi")

RUNTIME = Path(__file__).resolve().parents[2] / "runtime_c"
WRAPPER = """
#include "edgec_internal.h"
void rq_clamp(int32_t n, int32_t s32, const int64_t *x, const int32_t *mult, const int32_t *shift, const int32_t *lo,
              const int32_t *hi, int16_t *out);
void rq_clamp(int32_t n, int32_t s32, const int64_t *x, const int32_t *mult, const int32_t *shift, const int32_t *lo,
              const int32_t *hi, int16_t *out)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        out[i] = s32 ? ec_requantize_s32_clamp((int32_t)x[i], mult[i], shift[i], lo[i], hi[i])
                     : ec_requantize_s64_clamp(x[i], mult[i], shift[i], lo[i], hi[i]);
    }
}
"""


@pytest.mark.parametrize("s32", [0, 1])
def test_requantize_clamp(s32, tmp_path, capfd):
    src, so = tmp_path / "rq.c", tmp_path / "librq.so"
    src.write_text(WRAPPER)
    subprocess.run(["gcc", "-std=c99", "-O2", "-shared", "-fPIC", "-Wall", "-Wextra", "-Werror", "-fsanitize=undefined",
                    "-I", str(RUNTIME / "include"), str(src), "-o", str(so), "-lm"], check=True)
    ffi = cffi.FFI()
    ffi.cdef("void rq_clamp(int32_t n, int32_t s32, const int64_t *x, const int32_t *mult, const int32_t *shift, "
             "const int32_t *lo, const int32_t *hi, int16_t *out);")
    lib = ffi.dlopen(str(so))
    r = np.random.default_rng(0)
    n = 50000
    bits = r.integers(0, 32 if s32 else 48, n)  # |x| < 2^31 or 2^47
    x = np.array([int(r.integers(-(1 << int(b)), 1 << int(b))) if b else 0 for b in bits], np.int64)
    x[:10] = ([2**31 - 1, -(2**31), 0, -1, 1, 2**30, -(2**30), 65535, -65536, 12345] if s32 else
              [2**47 - 1, -(2**47), 0, -1, 1, 2**32, -(2**32), 2**31, -(2**31) - 1, 12345])
    mult = np.where(r.random(n) < 0.1, r.choice([0, 1 << 14, 1 << 15], n), r.integers(1 << 14, (1 << 15) + 1, n))
    shift = 14 - r.integers(17, 33, n) if s32 else r.integers(-31, 15, n)  # s = 14 - shift in [17, 32]
    lo = np.where(r.random(n) < 0.7, -32768, r.integers(-32768, 1, n))
    hi = np.where(r.random(n) < 0.7, 32767, r.integers(0, 32768, n))
    arrays = [np.ascontiguousarray(a, t) for a, t in ((x, np.int64), (mult, np.int32), (shift, np.int32),
                                                       (lo, np.int32), (hi, np.int32))]
    out = np.empty(n, np.int16)
    ptrs = [ffi.cast(f"{c} *", ffi.from_buffer(a)) for a, c in zip(arrays, ("int64_t", "int32_t", "int32_t",
                                                                           "int32_t", "int32_t"))]
    lib.rq_clamp(n, s32, *ptrs, ffi.cast("int16_t *", ffi.from_buffer(out)))
    assert "runtime error" not in capfd.readouterr().err
    np.testing.assert_array_equal(out, np.clip(requantize64(x, mult, shift), lo, hi))
