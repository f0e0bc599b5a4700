"""Each runtime_c kernel against a small numpy model of the semantics documented in runtime_c/include/edgec.h.

The kernels are compiled into one shared library (gcc, with UBSan) and called through cffi. int8 kernels must match
the model exactly; float kernels within rtol 1e-5. The models are written for clarity, not speed.
"""

import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

cffi = pytest.importorskip("cffi")

RUNTIME = Path(__file__).resolve().parents[2] / "runtime_c"
MAX_DIMS = 6
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
SEEDS = range(25)

CDEF = """
typedef struct {
    int32_t batch;
    int32_t in_h, in_w, in_c;
    int32_t out_h, out_w, out_c;
    int32_t k_h, k_w;
    int32_t stride_h, stride_w;
    int32_t dil_h, dil_w;
    int32_t pad_top, pad_left;
    int32_t groups;
} ec_conv_params;
typedef struct {
    int32_t in_zp, out_zp, act_min, act_max;
    const int32_t *mult;
    const int32_t *shift;
    int32_t per_channel;
} ec_quant_s8;
typedef struct { float act_min, act_max; } ec_act_f32;
typedef struct { int32_t out_shape[6]; int32_t a_strides[6]; int32_t b_strides[6]; } ec_broadcast_params;
typedef enum { EC_ADD = 0, EC_SUB = 1, EC_MUL = 2, EC_DIV = 3, EC_MAX = 4, EC_MIN = 5 } ec_binary_op;
typedef struct {
    int32_t left_shift;
    int32_t a_zp, a_mult, a_shift;
    int32_t b_zp, b_mult, b_shift;
    int32_t out_zp, out_mult, out_shift;
    int32_t act_min, act_max;
} ec_add_s8_params;
typedef struct {
    int32_t a_zp, b_zp;
    int32_t out_zp, out_mult, out_shift;
    int32_t act_min, act_max;
} ec_mul_s8_params;
typedef struct {
    int32_t in_zp, slope_zp, out_zp;
    int32_t pos_mult, pos_shift, neg_mult, neg_shift;
} ec_prelu_s8_params;
typedef enum {
    EC_RELU = 0, EC_CLIP = 1, EC_LEAKY_RELU = 2, EC_SIGMOID = 3, EC_TANH = 4, EC_HARD_SIGMOID = 5, EC_HARD_SWISH = 6
} ec_unary_op;
typedef struct {
    int32_t pad_bottom, pad_right; int32_t count_include_pad; int32_t mult, shift, out_zp;
} ec_avgpool_extra;

void ec_conv2d_s8(const ec_conv_params *p, const ec_quant_s8 *q, const int8_t *input, const int8_t *weights,
                  const int32_t *bias, int8_t *output);
void ec_conv2d_f32(const ec_conv_params *p, const ec_act_f32 *act, const float *input, const float *weights,
                   const float *bias, float *output);
void ec_depthwise_conv2d_s8(const ec_conv_params *p, const ec_quant_s8 *q, const int8_t *input,
                            const int8_t *weights, const int32_t *bias, int8_t *output);
void ec_depthwise_conv2d_f32(const ec_conv_params *p, const ec_act_f32 *act, const float *input,
                             const float *weights, const float *bias, float *output);
void ec_fully_connected_s8(int32_t rows, int32_t depth, int32_t out_c, const ec_quant_s8 *q, const int8_t *input,
                           const int8_t *weights, const int32_t *bias, int8_t *output);
void ec_fully_connected_f32(int32_t rows, int32_t depth, int32_t out_c, const ec_act_f32 *act, const float *input,
                            const float *weights, const float *bias, float *output);
int32_t ec_conv2d_im2col_s8_get_buffer_size(const ec_conv_params *p);
void ec_conv2d_im2col_s8(const ec_conv_params *p, const ec_quant_s8 *q, const int8_t *input,
                         const int8_t *weights, const int32_t *bias, int8_t *output, void *scratch);
int32_t ec_conv2d_1x1_s8_get_buffer_size(const ec_conv_params *p);
void ec_conv2d_1x1_s8(const ec_conv_params *p, const ec_quant_s8 *q, const int8_t *input, const int8_t *weights,
                      const int32_t *bias, int8_t *output, void *scratch);
void ec_depthwise_conv2d_packed_s8(const ec_conv_params *p, const ec_quant_s8 *q, const int8_t *input,
                                   const int16_t *weights, const int32_t *bias, int8_t *output);
int32_t ec_depthwise_conv2d_3x3_s8_get_buffer_size(const ec_conv_params *p);
void ec_depthwise_conv2d_3x3_s8(const ec_conv_params *p, const ec_quant_s8 *q, const int8_t *input,
                                const int16_t *weights, const int32_t *bias, int8_t *output, void *scratch);
int32_t ec_depthwise_conv2d_3x3_planar_s8_get_buffer_size(const ec_conv_params *p);
void ec_depthwise_conv2d_3x3_planar_s8(const ec_conv_params *p, const ec_quant_s8 *q, const int8_t *input,
                                       const int16_t *weights, const int32_t *bias, int8_t *output, void *scratch);
int32_t ec_fully_connected_packed_s8_get_buffer_size(int32_t rows, int32_t depth);
int32_t ec_conv2d_im2col_s16_get_buffer_size(const ec_conv_params *p);
int32_t ec_depthwise_conv2d_packed_s16_get_buffer_size(const ec_conv_params *p);
void ec_fully_connected_packed_s8(int32_t rows, int32_t depth, int32_t out_c, const ec_quant_s8 *q,
                                  const int8_t *input, const int8_t *weights, const int32_t *bias, int8_t *output,
                                  void *scratch);
int32_t ec_fully_connected_block4_s8_get_buffer_size(int32_t depth);
void ec_fully_connected_block4_s8(int32_t rows, int32_t depth, int32_t out_c, const ec_quant_s8 *q,
                                  const int8_t *input, const int8_t *weights, const int32_t *bias, int8_t *output,
                                  void *scratch, int32_t fast);
void ec_add_s8(const ec_broadcast_params *bp, ec_binary_op op, const ec_add_s8_params *q, const int8_t *a,
               const int8_t *b, int8_t *output);
void ec_mul_s8(const ec_broadcast_params *bp, const ec_mul_s8_params *q, const int8_t *a, const int8_t *b,
               int8_t *output);
void ec_binary_f32(const ec_broadcast_params *bp, ec_binary_op op, const ec_act_f32 *act, const float *a,
                   const float *b, float *output);
void ec_prelu_s8(const ec_broadcast_params *bp, const ec_prelu_s8_params *q, const int8_t *input,
                 const int8_t *slope, int8_t *output);
void ec_prelu_f32(const ec_broadcast_params *bp, const float *input, const float *slope, float *output);
void ec_lut_s8(int32_t size, const int8_t *table, const int8_t *input, int8_t *output);
void ec_unary_f32(int32_t size, ec_unary_op op, float alpha, float beta, const ec_act_f32 *act, const float *input,
                  float *output);
void ec_maxpool_s8(const ec_conv_params *p, int32_t act_min, int32_t act_max, const int8_t *input, int8_t *output);
void ec_maxpool_f32(const ec_conv_params *p, const ec_act_f32 *act, const float *input, float *output);
void ec_avgpool_s8(const ec_conv_params *p, const ec_avgpool_extra *x, int32_t zp, int32_t act_min,
                   int32_t act_max, const int8_t *input, int8_t *output);
void ec_avgpool_f32(const ec_conv_params *p, const ec_avgpool_extra *x, const ec_act_f32 *act, const float *input,
                    float *output);
void ec_softmax_s8(int32_t outer, int32_t n, int32_t inner, const uint32_t *exp_table, int32_t out_n, int32_t out_zp,
                   const int8_t *input, int8_t *output);
void ec_softmax_f32(int32_t outer, int32_t n, int32_t inner, const float *input, float *output);
void ec_transpose(const ec_broadcast_params *bp, int32_t elem_size, const void *input, void *output);
void ec_concat(int32_t num_inputs, int32_t outer, int32_t inner, const int32_t *axis_sizes, int32_t elem_size,
               const void *const *inputs, const int8_t *const *tables, void *output);
void ec_pad(const int32_t *in_shape, const int32_t *pads_begin, const int32_t *pads_end, int32_t elem_size,
            const void *pad_value, const void *input, void *output);
"""


@pytest.fixture(scope="module")
def ck(tmp_path_factory):
    """(ffi, lib) for every kernel in runtime_c/src, built with UBSan (reports on stderr and continues)."""
    so = tmp_path_factory.mktemp("c_kernels") / "libedgec_kernels.so"
    srcs = sorted(str(p) for p in (RUNTIME / "src").glob("*.c"))
    cmd = ["gcc", "-std=c99", "-O2", "-shared", "-fPIC", "-Wall", "-Wextra", "-Werror", "-fsanitize=undefined",
           "-I", str(RUNTIME / "include"), *srcs, "-o", str(so), "-lm"]
    subprocess.run(cmd, check=True)
    ffi = cffi.FFI()
    ffi.cdef(CDEF)
    return ffi, ffi.dlopen(str(so))


@pytest.fixture(autouse=True)
def no_undefined_behaviour(capfd):
    """Fails a test whose kernel calls hit undefined behaviour."""
    yield
    err = capfd.readouterr().err
    if "runtime error" in err:
        pytest.fail("undefined behaviour in a kernel:\n" + err)


CTYPES = {np.dtype(np.int8): "int8_t", np.dtype(np.int16): "int16_t", np.dtype(np.int32): "int32_t",
          np.dtype(np.uint32): "uint32_t", np.dtype(np.float32): "float"}


def buf(ffi, a: np.ndarray):
    """Typed C array over a C-contiguous numpy array (the array must outlive the call)."""
    assert a.flags.c_contiguous
    return ffi.from_buffer(CTYPES[a.dtype] + "[]", a)


# ---- numpy models of the fixed-point helpers (integers in int64) ---------------------------------------------------


def requantize(x, mult, shift):
    """x * mult * 2^shift / 2^31 rounded once to nearest, ties toward +infinity, saturated (Python integers)."""
    x, mult, shift = (np.asarray(v, np.int64) for v in (x, mult, shift))
    x, mult, shift = np.broadcast_arrays(x, mult, shift)
    out = [(int(a) * int(m) + (1 << (30 - int(s)))) >> (31 - int(s)) for a, m, s in zip(x.ravel(), mult.ravel(),
                                                                                   shift.ravel())]
    return np.clip(np.array(out, np.int64), INT32_MIN, INT32_MAX).reshape(x.shape)


def out_stage(r, zp, lo, hi):
    return np.clip(r + zp, lo, hi).astype(np.int8)


# ---- random parameters -------------------------------------------------------------------------------------------


def rand_mult(rng, n=None):
    return rng.integers(2**30, 2**31 - 1, size=n, endpoint=True)


def rand_shift(rng, n=None):
    return rng.integers(-10, 2, size=n, endpoint=True)


def rand_zp(rng):
    return int(rng.integers(-128, 127, endpoint=True))


def rand_act_range(rng):
    if rng.random() < 0.3:
        return -128, 127
    lo = int(rng.integers(-128, 0, endpoint=True))
    return lo, int(rng.integers(lo, 127, endpoint=True))


def rand_s8(rng, shape):
    return rng.integers(-128, 127, size=shape, endpoint=True).astype(np.int8)


def rand_f32(rng, shape):
    return rng.standard_normal(shape).astype(np.float32)


def rand_elems(rng, shape, dtype):
    """Random int8/int16 over the whole range, or float32."""
    if np.dtype(dtype).kind == "f":
        return rand_f32(rng, shape)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)


def rand_act_f32(rng, ffi):
    """(cdata or NULL, lo, hi) for a float activation clamp."""
    kind = rng.integers(3)
    if kind == 0:
        return ffi.NULL, -np.inf, np.inf
    lo, hi = (-np.inf, np.inf) if kind == 1 else (float(-rng.uniform(0, 1)), float(rng.uniform(0, 1)))
    return ffi.new("ec_act_f32 *", {"act_min": lo, "act_max": hi}), lo, hi


def assert_f32(got, want):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


# ---- windowed ops: geometry and a sliding-window model -----------------------------------------------------------


def rand_geometry(rng, pool=False):
    """ec_conv_params fields plus pad_bottom/pad_right. out_h/out_w may drop the last window position or add one
    that runs past the bottom/right padding (ceil mode)."""
    g = {"batch": int(rng.integers(1, 3)), "in_h": int(rng.integers(1, 8)), "in_w": int(rng.integers(1, 8))}
    for ax, kk, ss, dd, p0, p1, size in (("h", "k_h", "stride_h", "dil_h", "pad_top", "pad_bottom", "in_h"),
                                         ("w", "k_w", "stride_w", "dil_w", "pad_left", "pad_right", "in_w")):
        g[kk] = int(rng.integers(1, 4))
        g[ss] = int(rng.integers(1, 3))
        g[dd] = int(rng.integers(1, 3))
        eff = (g[kk] - 1) * g[dd] + 1
        # pooling also gets windows that lie entirely in the padding
        g[p0] = int(rng.integers(0, eff + (1 if pool else 0)))
        g[p1] = int(rng.integers(0, eff + (1 if pool else 0)))
        span = g[size] + g[p0] + g[p1]
        if span < eff:
            g[p1] += eff - span
            span = eff
        g["out_" + ax] = max((span - eff) // g[ss] + int(rng.integers(0, 3)), 1)
    return g


def conv_params(ffi, g, in_c, out_c, groups=1):
    fields = {k: g[k] for k in ("batch", "in_h", "in_w", "out_h", "out_w", "k_h", "k_w", "stride_h", "stride_w",
                                "dil_h", "dil_w", "pad_top", "pad_left")}
    return ffi.new("ec_conv_params *", dict(fields, in_c=in_c, out_c=out_c, groups=groups))


def windows(x, g, fill, pad_top=None, pad_left=None):
    """Window taps of an NHWC array: [k_h, k_w, batch, out_h, out_w, C], positions outside x set to fill."""
    pt = g["pad_top"] if pad_top is None else pad_top
    pl = g["pad_left"] if pad_left is None else pad_left
    need_h = (g["out_h"] - 1) * g["stride_h"] + (g["k_h"] - 1) * g["dil_h"] + 1
    need_w = (g["out_w"] - 1) * g["stride_w"] + (g["k_w"] - 1) * g["dil_w"] + 1
    pb = max(0, need_h - pt - x.shape[1])
    pr = max(0, need_w - pl - x.shape[2])
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=fill)
    taps = np.empty((g["k_h"], g["k_w"], x.shape[0], g["out_h"], g["out_w"], x.shape[3]), x.dtype)
    for ky in range(g["k_h"]):
        for kx in range(g["k_w"]):
            y0, x0 = ky * g["dil_h"], kx * g["dil_w"]
            taps[ky, kx] = xp[:, y0:y0 + need_h - (g["k_h"] - 1) * g["dil_h"]:g["stride_h"],
                              x0:x0 + need_w - (g["k_w"] - 1) * g["dil_w"]:g["stride_w"]]
    return taps


def conv_model(x, w, g, groups):
    """x [B,H,W,C] already shifted by the input zero point; w [OC,KH,KW,C/groups]. Padding contributes 0."""
    taps = windows(x, g, 0)
    icg, ocg = x.shape[3] // groups, w.shape[0] // groups
    acc = np.zeros(taps.shape[2:5] + (w.shape[0],), x.dtype)
    for gi in range(groups):
        xs = taps[..., gi * icg:(gi + 1) * icg]
        ws = w[gi * ocg:(gi + 1) * ocg]
        acc[..., gi * ocg:(gi + 1) * ocg] = np.einsum("yxbhwc,oyxc->bhwo", xs, ws)
    return acc


def depthwise_model(x, w, g):
    """x [B,H,W,C] shifted by the input zero point; w [KH,KW,OC]; oc reads channel oc // (OC // C)."""
    mult = w.shape[2] // x.shape[3]
    taps = windows(np.repeat(x, mult, axis=3), g, 0)
    return np.einsum("yxbhwo,yxo->bhwo", taps, w)


def rand_quant_s8(rng, ffi, out_c, keep):
    """(ec_quant_s8 cdata, its scalar fields, per-channel mult, shift); keep receives the arrays the struct points
    into, which must stay alive while it is used."""
    per_channel = int(rng.integers(2))
    n = out_c if per_channel else 1
    mult, shift = rand_mult(rng, n).astype(np.int32), rand_shift(rng, n).astype(np.int32)
    lo, hi = rand_act_range(rng)
    q = {"in_zp": rand_zp(rng), "out_zp": rand_zp(rng), "act_min": lo, "act_max": hi}
    keep += [mult, shift]
    cq = ffi.new("ec_quant_s8 *", dict(q, mult=buf(ffi, mult), shift=buf(ffi, shift), per_channel=per_channel))
    mult_oc = np.broadcast_to(mult.astype(np.int64), (out_c,))
    shift_oc = np.broadcast_to(shift.astype(np.int64), (out_c,))
    return cq, q, mult_oc, shift_oc


def maybe_bias(rng, ffi, n, dtype):
    """No bias, a small one or (int32 only) one near the int32 limits, which saturates the requantization."""
    kind = rng.integers(4)
    if kind == 0:
        return None, ffi.NULL
    if dtype == np.float32:
        b = rng.standard_normal(n).astype(np.float32)
    else:
        limit = 5000 if kind < 3 else 2**31 - 2**21
        b = rng.integers(-limit, limit, n, endpoint=True).astype(np.int32)
    return b, buf(ffi, b)


@pytest.mark.parametrize("seed", SEEDS)
def test_conv2d_s8(ck, seed):
    ffi, lib = ck
    rng = np.random.default_rng(seed)
    g = rand_geometry(rng)
    groups = int(rng.integers(1, 4))
    in_c, out_c = groups * int(rng.integers(1, 5)), groups * int(rng.integers(1, 4))
    x = rand_s8(rng, (g["batch"], g["in_h"], g["in_w"], in_c))
    w = rand_s8(rng, (out_c, g["k_h"], g["k_w"], in_c // groups))
    bias, cbias = maybe_bias(rng, ffi, out_c, np.int32)
    keep = []
    cq, q, mult, shift = rand_quant_s8(rng, ffi, out_c, keep)
    out = np.empty((g["batch"], g["out_h"], g["out_w"], out_c), np.int8)
    lib.ec_conv2d_s8(conv_params(ffi, g, in_c, out_c, groups), cq, buf(ffi, x), buf(ffi, w), cbias, buf(ffi, out))
    acc = conv_model(x.astype(np.int64) - q["in_zp"], w.astype(np.int64), g, groups)
    acc += 0 if bias is None else bias
    want = out_stage(requantize(acc, mult, shift), q["out_zp"], q["act_min"], q["act_max"])
    np.testing.assert_array_equal(out, want)


@pytest.mark.parametrize("seed", SEEDS)
def test_conv2d_f32(ck, seed):
    ffi, lib = ck
    rng = np.random.default_rng(seed)
    g = rand_geometry(rng)
    groups = int(rng.integers(1, 4))
    in_c, out_c = groups * int(rng.integers(1, 5)), groups * int(rng.integers(1, 4))
    x = rand_f32(rng, (g["batch"], g["in_h"], g["in_w"], in_c))
    w = rand_f32(rng, (out_c, g["k_h"], g["k_w"], in_c // groups))
    bias, cbias = maybe_bias(rng, ffi, out_c, np.float32)
    act, lo, hi = rand_act_f32(rng, ffi)
    out = np.empty((g["batch"], g["out_h"], g["out_w"], out_c), np.float32)
    lib.ec_conv2d_f32(conv_params(ffi, g, in_c, out_c, groups), act, buf(ffi, x), buf(ffi, w), cbias, buf(ffi, out))
    acc = conv_model(x.astype(np.float64), w.astype(np.float64), g, groups) + (0 if bias is None else bias)
    assert_f32(out, np.clip(acc, lo, hi))


@pytest.mark.parametrize("seed", SEEDS)
def test_depthwise_conv2d_s8(ck, seed):
    ffi, lib = ck
    rng = np.random.default_rng(seed)
    g = rand_geometry(rng)
    in_c = int(rng.integers(1, 6))
    out_c = in_c * int(rng.integers(1, 3))
    x = rand_s8(rng, (g["batch"], g["in_h"], g["in_w"], in_c))
    w = rand_s8(rng, (g["k_h"], g["k_w"], out_c))
    bias, cbias = maybe_bias(rng, ffi, out_c, np.int32)
    keep = []
    cq, q, mult, shift = rand_quant_s8(rng, ffi, out_c, keep)
    out = np.empty((g["batch"], g["out_h"], g["out_w"], out_c), np.int8)
    lib.ec_depthwise_conv2d_s8(conv_params(ffi, g, in_c, out_c, in_c), cq, buf(ffi, x), buf(ffi, w), cbias,
                               buf(ffi, out))
    acc = depthwise_model(x.astype(np.int64) - q["in_zp"], w.astype(np.int64), g) + (0 if bias is None else bias)
    want = out_stage(requantize(acc, mult, shift), q["out_zp"], q["act_min"], q["act_max"])
    np.testing.assert_array_equal(out, want)


@pytest.mark.parametrize("seed", SEEDS)
def test_depthwise_conv2d_f32(ck, seed):
    ffi, lib = ck
    rng = np.random.default_rng(seed)
    g = rand_geometry(rng)
    in_c = int(rng.integers(1, 6))
    out_c = in_c * int(rng.integers(1, 3))
    x = rand_f32(rng, (g["batch"], g["in_h"], g["in_w"], in_c))
    w = rand_f32(rng, (g["k_h"], g["k_w"], out_c))
    bias, cbias = maybe_bias(rng, ffi, out_c, np.float32)
    act, lo, hi = rand_act_f32(rng, ffi)
    out = np.empty((g["batch"], g["out_h"], g["out_w"], out_c), np.float32)
    lib.ec_depthwise_conv2d_f32(conv_params(ffi, g, in_c, out_c, in_c), act, buf(ffi, x), buf(ffi, w), cbias,
                                buf(ffi, out))
    acc = depthwise_model(x.astype(np.float64), w.astype(np.float64), g) + (0 if bias is None else bias)
    assert_f32(out, np.clip(acc, lo, hi))


@pytest.mark.parametrize("seed", SEEDS)
def test_fully_connected_s8(ck, seed):
    ffi, lib = ck
    rng = np.random.default_rng(seed)
    rows, depth, out_c = (int(v) for v in rng.integers(1, 20, 3))
    x, w = rand_s8(rng, (rows, depth)), rand_s8(rng, (out_c, depth))
    bias, cbias = maybe_bias(rng, ffi, out_c, np.int32)
    keep = []
    cq, q, mult, shift = rand_quant_s8(rng, ffi, out_c, keep)
    out = np.empty((rows, out_c), np.int8)
    lib.ec_fully_connected_s8(rows, depth, out_c, cq, buf(ffi, x), buf(ffi, w), cbias, buf(ffi, out))
    acc = (x.astype(np.int64) - q["in_zp"]) @ w.astype(np.int64).T + (0 if bias is None else bias)
    want = out_stage(requantize(acc, mult, shift), q["out_zp"], q["act_min"], q["act_max"])
    np.testing.assert_array_equal(out, want)


def test_output_stage_extremes(ck):
    """Saturating left shift, and requantized values near the int32 limits plus a zero point (no overflow), with
    left and right shifts."""
    ffi, lib = ck
    bias = np.array([INT32_MAX - 20000, INT32_MIN + 20000, 2**29, -(2**29), 5, -5, 0, 1], np.int32)
    for mult, shift, zp in ((INT32_MAX, 2, 127), (INT32_MAX, 1, -128), (2**30, 2, 100), (INT32_MAX, 0, -100),
                            (INT32_MAX, -1, 0), (2**30 + 1, -31, 5), (INT32_MAX, -30, -128)):
        m, sh = np.array([mult], np.int32), np.array([shift], np.int32)
        q = ffi.new("ec_quant_s8 *", {"in_zp": 3, "out_zp": zp, "act_min": -128, "act_max": 127,
                                      "mult": buf(ffi, m), "shift": buf(ffi, sh), "per_channel": 0})
        x, w = np.array([[-128]], np.int8), np.array([[127]] * bias.size, np.int8)
        out = np.empty((1, bias.size), np.int8)
        lib.ec_fully_connected_s8(1, 1, bias.size, q, buf(ffi, x), buf(ffi, w), buf(ffi, bias), buf(ffi, out))
        acc = bias.astype(np.int64) + (-128 - 3) * 127
        np.testing.assert_array_equal(out[0], out_stage(requantize(acc, mult, shift), zp, -128, 127))


@pytest.mark.parametrize("seed", SEEDS)
def test_fully_connected_f32(ck, seed):
    ffi, lib = ck
    rng = np.random.default_rng(seed)
    rows, depth, out_c = (int(v) for v in rng.integers(1, 20, 3))
    x, w = rand_f32(rng, (rows, depth)), rand_f32(rng, (out_c, depth))
    bias, cbias = maybe_bias(rng, ffi, out_c, np.float32)
    act, lo, hi = rand_act_f32(rng, ffi)
    out = np.empty((rows, out_c), np.float32)
    lib.ec_fully_connected_f32(rows, depth, out_c, act, buf(ffi, x), buf(ffi, w), cbias, buf(ffi, out))
    acc = x.astype(np.float64) @ w.astype(np.float64).T + (0 if bias is None else bias)
    assert_f32(out, np.clip(acc, lo, hi))


# ---- packed-weight kernels (DSP extension on Arm; here their plain C path) ----------------------------------------


def pack_matrix(w):
    """[N][K] -> packed bytes: W[n][k] at (n // 2) * 2 * K4 + (k // 4) * 8 + (n % 2) * 4 + k % 4 (edgec.h)."""
    n, k = w.shape
    k4 = (k + 3) // 4 * 4
    out = np.zeros((n + n % 2) * k4, np.int8)
    for i in range(n):
        for j in range(k):
            out[(i // 2) * 2 * k4 + (j // 4) * 8 + (i % 2) * 4 + j % 4] = w[i, j]
    return out


def scratch(nbytes):
    """A scratch buffer filled with garbage (the kernels must not depend on its contents)."""
    return np.full(max(nbytes, 4), 0x5A, np.uint8)


def test_pack_matrix_twin():
    from edgec.ops.packing import pack_matrix_s8

    rng = np.random.default_rng(0)
    for n, k in ((1, 1), (2, 4), (3, 5), (8, 27), (7, 64)):
        w = rand_s8(rng, (n, k))
        np.testing.assert_array_equal(pack_matrix_s8(w), pack_matrix(w))


def test_pack_matrix_s16_twin():
    """16x8 packed weights (edgec.h): the int8 packed layout with the bytes of every group of 4 in the order
    (0, 2, 1, 3)."""
    from edgec.ops.packing import pack_matrix_s16

    rng = np.random.default_rng(0)
    for n, k in ((1, 1), (2, 4), (3, 5), (8, 27), (7, 64)):
        w = rand_s8(rng, (n, k))
        k4 = (k + 3) // 4 * 4
        want = np.zeros((n + n % 2) * k4, np.int8)
        for i in range(n):
            for j in range(k):
                want[(i // 2) * 2 * k4 + (j // 4) * 8 + (i % 2) * 4 + (0, 2, 1, 3)[j % 4]] = w[i, j]
        np.testing.assert_array_equal(pack_matrix_s16(w), want)


def test_scratch_size_twins(ck):
    """The Python twins used at build time equal the C _get_buffer_size companions."""
    from edgec.ops.packing import (
        conv_1x1_scratch_bytes,
        conv_im2col_s16_scratch_bytes,
        conv_im2col_scratch_bytes,
        depthwise_3x3_planar_scratch_bytes,
        depthwise_3x3_scratch_bytes,
        depthwise_s16_scratch_bytes,
        fc_packed_scratch_bytes,
    )

    ffi, lib = ck
    rng = np.random.default_rng(1)
    for _ in range(50):
        g = rand_geometry(rng)
        in_c, out_c = int(rng.integers(1, 300)), int(rng.integers(1, 300))
        p = conv_params(ffi, g, in_c, out_c)
        fields = dict(g, in_c=in_c, out_c=out_c, groups=1)
        assert lib.ec_conv2d_im2col_s8_get_buffer_size(p) == conv_im2col_scratch_bytes(fields)
        assert lib.ec_conv2d_1x1_s8_get_buffer_size(p) == conv_1x1_scratch_bytes(fields)
        assert lib.ec_conv2d_im2col_s16_get_buffer_size(p) == conv_im2col_s16_scratch_bytes(fields)
        assert lib.ec_depthwise_conv2d_packed_s16_get_buffer_size(p) == depthwise_s16_scratch_bytes(fields)
        assert lib.ec_depthwise_conv2d_3x3_s8_get_buffer_size(p) == depthwise_3x3_scratch_bytes(fields)
        assert lib.ec_depthwise_conv2d_3x3_planar_s8_get_buffer_size(p) == depthwise_3x3_planar_scratch_bytes(fields)
        rows = int(rng.integers(1, 4))
        assert lib.ec_fully_connected_packed_s8_get_buffer_size(rows, in_c) == fc_packed_scratch_bytes(rows, in_c)


def run_packed_conv(ffi, lib, rng, g, kernel):
    in_c, out_c = int(rng.integers(1, 12)), int(rng.integers(1, 8))
    x = rand_s8(rng, (g["batch"], g["in_h"], g["in_w"], in_c))
    w = rand_s8(rng, (out_c, g["k_h"], g["k_w"], in_c))
    bias, cbias = maybe_bias(rng, ffi, out_c, np.int32)
    keep = []
    cq, q, mult, shift = rand_quant_s8(rng, ffi, out_c, keep)
    out = np.empty((g["batch"], g["out_h"], g["out_w"], out_c), np.int8)
    p = conv_params(ffi, g, in_c, out_c)
    rows = w.reshape(out_c, g["k_h"], g["k_w"] * in_c)
    if kernel == "ec_conv2d_im2col_s8":  # every kernel row padded to a multiple of 4 (edgec.h)
        rows = np.pad(rows, ((0, 0), (0, 0), (0, -rows.shape[2] % 4)))
    wp = pack_matrix(rows.reshape(out_c, -1))
    sc = scratch(getattr(lib, kernel + "_get_buffer_size")(p))
    getattr(lib, kernel)(p, cq, buf(ffi, x), buf(ffi, wp), cbias, buf(ffi, out), ffi.from_buffer(sc))
    acc = conv_model(x.astype(np.int64) - q["in_zp"], w.astype(np.int64), g, 1)
    acc += 0 if bias is None else bias
    want = out_stage(requantize(acc, mult, shift), q["out_zp"], q["act_min"], q["act_max"])
    np.testing.assert_array_equal(out, want)


@pytest.mark.parametrize("seed", SEEDS)
def test_conv2d_im2col_s8(ck, seed):
    ffi, lib = ck
    rng = np.random.default_rng(seed)
    run_packed_conv(ffi, lib, rng, rand_geometry(rng), "ec_conv2d_im2col_s8")


@pytest.mark.parametrize("seed", SEEDS)
def test_conv2d_1x1_s8(ck, seed):
    ffi, lib = ck
    rng = np.random.default_rng(seed)
    g = {"batch": int(rng.integers(1, 3)), "k_h": 1, "k_w": 1, "dil_h": 1, "dil_w": 1, "pad_top": 0, "pad_left": 0}
    for ax in ("h", "w"):
        g["in_" + ax] = int(rng.integers(1, 8))
        g["stride_" + ax] = 1 if seed % 2 else int(rng.integers(1, 3))
        g["out_" + ax] = (g["in_" + ax] - 1) // g["stride_" + ax] + 1
    run_packed_conv(ffi, lib, rng, g, "ec_conv2d_1x1_s8")


def pack_depthwise(w):
    """[KH][KW][C] -> packed int16: w[t][c] at ((c // 4 * T2 // 2 + t // 2) * 4 + c % 4) * 2 + t % 2 (edgec.h)."""
    t, c = w.shape[0] * w.shape[1], w.shape[2]
    t2, c4 = t + t % 2, (c + 3) // 4 * 4
    out = np.zeros(c4 * t2, np.int16)
    for ti in range(t):
        for ci in range(c):
            out[((ci // 4 * t2 // 2 + ti // 2) * 4 + ci % 4) * 2 + ti % 2] = w.reshape(t, c)[ti, ci]
    return out


def pack_depthwise_3x3(w):
    """[3][3][C] -> packed int16: for group g and column kx, at (g * 3 + kx) * 12: (w[0][kx][c], w[1][kx][c]) for the
    4 channels c of g, then (w[2][kx][4g], w[2][kx][4g + 2]), (w[2][kx][4g + 1], w[2][kx][4g + 3]) (edgec.h)."""
    c = w.shape[2]
    c4 = (c + 3) // 4 * 4
    wp = np.zeros((3, 3, c4), np.int64)
    wp[:, :, :c] = w
    out = []
    for g in range(c4 // 4):
        for kx in range(3):
            for j in range(4):
                out += [wp[0, kx, 4 * g + j], wp[1, kx, 4 * g + j]]
            out += [wp[2, kx, 4 * g], wp[2, kx, 4 * g + 2], wp[2, kx, 4 * g + 1], wp[2, kx, 4 * g + 3]]
    return np.array(out, np.int16)


def test_pack_depthwise_twins():
    from edgec.ops.packing import pack_depthwise_3x3_s8, pack_depthwise_s8

    rng = np.random.default_rng(0)
    for shape in ((3, 3, 8), (3, 3, 5), (1, 1, 1), (2, 3, 7), (1, 5, 4), (3, 3, 1)):
        w = rand_s8(rng, shape)
        np.testing.assert_array_equal(pack_depthwise_s8(w), pack_depthwise(w))
        if shape[:2] == (3, 3):
            np.testing.assert_array_equal(pack_depthwise_3x3_s8(w), pack_depthwise_3x3(w))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("kernel", ["ec_depthwise_conv2d_packed_s8", "ec_depthwise_conv2d_3x3_s8"])
def test_depthwise_packed_s8(ck, seed, kernel):
    ffi, lib = ck
    rng = np.random.default_rng(seed)
    g = rand_geometry(rng)
    if kernel.endswith("3x3_s8"):
        g.update(k_h=3, k_w=3, dil_h=1, dil_w=1, pad_top=int(rng.integers(0, 3)), pad_left=int(rng.integers(0, 3)),
                 in_h=int(rng.integers(1, 9)), in_w=int(rng.integers(1, 9)))
        for ax, s, d, p0, size in (("h", "stride_h", "dil_h", "pad_top", "in_h"),
                                   ("w", "stride_w", "dil_w", "pad_left", "in_w")):
            eff = 2 * g[d] + 1
            g["out_" + ax] = max((g[size] + 2 * g[p0] - eff) // g[s] + 1, 1)
    c = int(rng.integers(1, 14))
    x = rand_s8(rng, (g["batch"], g["in_h"], g["in_w"], c))
    w = rand_s8(rng, (g["k_h"], g["k_w"], c))
    bias, cbias = maybe_bias(rng, ffi, c, np.int32)
    keep = []
    cq, q, mult, shift = rand_quant_s8(rng, ffi, c, keep)
    out = np.empty((g["batch"], g["out_h"], g["out_w"], c), np.int8)
    p = conv_params(ffi, g, c, c, c)
    if kernel.endswith("3x3_s8"):
        sc = scratch(lib.ec_depthwise_conv2d_3x3_s8_get_buffer_size(p))
        lib.ec_depthwise_conv2d_3x3_s8(p, cq, buf(ffi, x), buf(ffi, pack_depthwise_3x3(w)), cbias, buf(ffi, out),
                                       ffi.from_buffer(sc))
    else:
        lib.ec_depthwise_conv2d_packed_s8(p, cq, buf(ffi, x), buf(ffi, pack_depthwise(w)), cbias, buf(ffi, out))
    acc = depthwise_model(x.astype(np.int64) - q["in_zp"], w.astype(np.int64), g) + (0 if bias is None else bias)
    want = out_stage(requantize(acc, mult, shift), q["out_zp"], q["act_min"], q["act_max"])
    np.testing.assert_array_equal(out, want)


def test_pack_depthwise_3x3_planar():
    """Per channel c and kernel row r, int16 at c * 12 + r * 4: 2 w[r][0][c], 2 w[r][1][c], 2 w[r][1][c],
    2 w[r][2][c] (edgec.h)."""
    from edgec.ops.packing import pack_depthwise_3x3_planar_s8

    w = rand_s8(np.random.default_rng(3), (3, 3, 5))
    got = pack_depthwise_3x3_planar_s8(w)
    for c in range(5):
        for r in range(3):
            assert list(got[c * 12 + r * 4:c * 12 + r * 4 + 4]) == [2 * int(w[r, k, c]) for k in (0, 1, 1, 2)]


@pytest.mark.parametrize("seed", SEEDS)
def test_depthwise_3x3_planar_s8(ck, seed):
    """ec_depthwise_conv2d_3x3_planar_s8 (its plain C path here): strides 1-3, padding 0-2 on each side, odd and
    even widths and channel counts, in_zp at both extremes, scratch full of garbage."""
    from edgec.ops.packing import pack_depthwise_3x3_planar_s8

    ffi, lib = ck
    rng = np.random.default_rng(seed)
    g = {"batch": int(rng.integers(1, 3)), "k_h": 3, "k_w": 3, "dil_h": 1, "dil_w": 1}
    for ax, pad in (("h", "pad_top"), ("w", "pad_left")):
        g["in_" + ax] = int(rng.integers(1, 12))
        g["stride_" + ax] = int(rng.integers(1, 4))
        g[pad] = int(rng.integers(0, 3))
        after = int(rng.integers(0, 3))
        g["out_" + ax] = max((g["in_" + ax] + g[pad] + after - 3) // g["stride_" + ax] + 1, 1)
    c = int(rng.integers(1, 20))
    x = rand_s8(rng, (g["batch"], g["in_h"], g["in_w"], c))
    w = rand_s8(rng, (3, 3, c))
    bias, cbias = maybe_bias(rng, ffi, c, np.int32)
    keep = []
    cq, q, mult, shift = rand_quant_s8(rng, ffi, c, keep)
    if seed % 3:
        q["in_zp"] = cq.in_zp = (-128, 127)[seed % 2]
    out = np.empty((g["batch"], g["out_h"], g["out_w"], c), np.int8)
    p = conv_params(ffi, g, c, c, c)
    sc = scratch(lib.ec_depthwise_conv2d_3x3_planar_s8_get_buffer_size(p))
    lib.ec_depthwise_conv2d_3x3_planar_s8(p, cq, buf(ffi, x), buf(ffi, pack_depthwise_3x3_planar_s8(w)), cbias,
                                          buf(ffi, out), ffi.from_buffer(sc))
    acc = depthwise_model(x.astype(np.int64) - q["in_zp"], w.astype(np.int64), g) + (0 if bias is None else bias)
    want = out_stage(requantize(acc, mult, shift), q["out_zp"], q["act_min"], q["act_max"])
    np.testing.assert_array_equal(out, want)


@pytest.mark.parametrize("seed", SEEDS)
def test_fully_connected_packed_s8(ck, seed):
    ffi, lib = ck
    rng = np.random.default_rng(seed)
    rows, depth, out_c = (int(v) for v in rng.integers(1, 20, 3))
    x, w = rand_s8(rng, (rows, depth)), rand_s8(rng, (out_c, depth))
    bias, cbias = maybe_bias(rng, ffi, out_c, np.int32)
    keep = []
    cq, q, mult, shift = rand_quant_s8(rng, ffi, out_c, keep)
    out = np.empty((rows, out_c), np.int8)
    sc = scratch(lib.ec_fully_connected_packed_s8_get_buffer_size(rows, depth))
    lib.ec_fully_connected_packed_s8(rows, depth, out_c, cq, buf(ffi, x), buf(ffi, pack_matrix(w)), cbias,
                                     buf(ffi, out), ffi.from_buffer(sc))
    acc = (x.astype(np.int64) - q["in_zp"]) @ w.astype(np.int64).T + (0 if bias is None else bias)
    want = out_stage(requantize(acc, mult, shift), q["out_zp"], q["act_min"], q["act_max"])
    np.testing.assert_array_equal(out, want)


def pack_fc_block4(w):
    """[N][K] -> ec_fully_connected_block4_s8's bytes: K padded to 8; rows in blocks of 4, per group of 4 columns the
    4 bytes of each row of the block in turn; the N % 4 last rows one after the other (edgec.h)."""
    n, k = w.shape
    k8, n4 = (k + 7) // 8 * 8, n // 4 * 4
    wp = np.zeros((n, k8), np.int8)
    wp[:, :k] = w
    out = [wp[4 * b + r, 4 * g + j] for b in range(n4 // 4) for g in range(k8 // 4) for r in range(4) for j in range(4)]
    out += [wp[r, j] for r in range(n4, n) for j in range(k8)]
    return np.array(out, np.int8)


def test_pack_fc_block4_twin():
    from edgec.ops.packing import pack_fc_block4_s8

    rng = np.random.default_rng(0)
    for n, k in ((1, 1), (4, 8), (5, 9), (8, 27), (11, 64), (3, 16)):
        w = rand_s8(rng, (n, k))
        np.testing.assert_array_equal(pack_fc_block4_s8(w), pack_fc_block4(w))


def run_block4(ck, seed) -> bool:
    """ec_fully_connected_block4_s8 on a random layer against the model; whether it took the fast output stage."""
    from edgec.ops.packing import fast_output_ok

    ffi, lib = ck
    rng = np.random.default_rng(seed)
    rows, depth, out_c = int(rng.integers(1, 4)), int(rng.integers(1, 40)), int(rng.integers(1, 20))
    x, w = rand_s8(rng, (rows, depth)), rand_s8(rng, (out_c, depth))
    bias, cbias = maybe_bias(rng, ffi, out_c, np.int32)
    keep = []
    cq, q, mult, shift = rand_quant_s8(rng, ffi, out_c, keep)
    if cq.per_channel and seed % 2:  # every shift negative: the fast output stage when the bias allows it
        keep[1][:] = -rng.integers(1, 11, out_c)
        shift = keep[1].astype(np.int64)
    fast = bias is not None and fast_output_ok(bias, shift, bool(cq.per_channel), (depth + 7) // 8 * 8)
    out = np.empty((rows, out_c), np.int8)
    assert lib.ec_fully_connected_block4_s8_get_buffer_size(depth) == 2 * ((depth + 7) // 8 * 8)
    sc = scratch(lib.ec_fully_connected_block4_s8_get_buffer_size(depth))
    lib.ec_fully_connected_block4_s8(rows, depth, out_c, cq, buf(ffi, x), buf(ffi, pack_fc_block4(w)), cbias,
                                     buf(ffi, out), ffi.from_buffer(sc), int(fast))
    acc = (x.astype(np.int64) - q["in_zp"]) @ w.astype(np.int64).T + (0 if bias is None else bias)
    want = out_stage(requantize(acc, mult, shift), q["out_zp"], q["act_min"], q["act_max"])
    np.testing.assert_array_equal(out, want)
    return fast


def test_fully_connected_block4_s8(ck):
    """Both output stages: the fast one when its conditions hold (as lowering decides at build time), the general
    one otherwise; depths that are not multiples of 8 or 16, row counts that are not multiples of 4."""
    assert sum(run_block4(ck, seed) for seed in SEEDS) >= 3


# ---- broadcasting / strided ops ----------------------------------------------------------------------------------


def rand_operand(rng, out_shape, dtype, broadcast=True):
    """A dense array whose storage order is a random permutation of the logical dims, some dims broadcast.
    Returns (storage array, element strides of the logical view over out_shape, logical view)."""
    shape = [1 if broadcast and rng.random() < 0.3 else n for n in out_shape]
    perm = rng.permutation(len(shape)) if rng.random() < 0.5 else np.arange(len(shape))
    store = rand_elems(rng, [shape[p] for p in perm], dtype)
    logical = store.transpose(np.argsort(perm))
    strides = [0 if n == 1 else s // store.itemsize for n, s in zip(shape, logical.strides, strict=True)]
    return store, strides, np.broadcast_to(logical, out_shape)


def rand_out_shape(rng):
    return [int(n) for n in rng.integers(1, 5, size=int(rng.integers(0, MAX_DIMS + 1)))]


def bcast_params(ffi, out_shape, a_strides, b_strides=None):
    pad = MAX_DIMS - len(out_shape)
    b_strides = [0] * len(out_shape) if b_strides is None else b_strides
    return ffi.new("ec_broadcast_params *", {"out_shape": [1] * pad + list(out_shape),
                                             "a_strides": [0] * pad + list(a_strides),
                                             "b_strides": [0] * pad + list(b_strides)})


@pytest.mark.parametrize("seed", SEEDS)
def test_add_s8(ck, seed):
    ffi, lib = ck
    rng = np.random.default_rng(seed)
    shape = rand_out_shape(rng)
    a, sa, va = rand_operand(rng, shape, np.int8)
    b, sb, vb = rand_operand(rng, shape, np.int8)
    # TFLite-style parameters: left_shift 20 and input multipliers below 1, so a + b cannot overflow int32
    lo, hi = rand_act_range(rng)
    q = {"left_shift": 20, "a_zp": rand_zp(rng), "a_mult": int(rand_mult(rng)), "a_shift": int(rng.integers(-10, 0)),
         "b_zp": rand_zp(rng), "b_mult": int(rand_mult(rng)), "b_shift": int(rng.integers(-10, 0)),
         "out_zp": rand_zp(rng), "out_mult": int(rand_mult(rng)), "out_shift": int(rand_shift(rng)) - 16,
         "act_min": lo, "act_max": hi}
    op = int(rng.integers(2))
    out = np.empty(shape, np.int8)
    lib.ec_add_s8(bcast_params(ffi, shape, sa, sb), op, ffi.new("ec_add_s8_params *", q), buf(ffi, a), buf(ffi, b),
                  buf(ffi, out))
    ra = requantize((va.astype(np.int64) - q["a_zp"]) * 2 ** q["left_shift"], q["a_mult"], q["a_shift"])
    rb = requantize((vb.astype(np.int64) - q["b_zp"]) * 2 ** q["left_shift"], q["b_mult"], q["b_shift"])
    r = requantize(ra + rb if op == 0 else ra - rb, q["out_mult"], q["out_shift"])
    np.testing.assert_array_equal(out, out_stage(r, q["out_zp"], lo, hi))


@pytest.mark.parametrize("seed", SEEDS)
def test_mul_s8(ck, seed):
    ffi, lib = ck
    rng = np.random.default_rng(seed)
    shape = rand_out_shape(rng)
    a, sa, va = rand_operand(rng, shape, np.int8)
    b, sb, vb = rand_operand(rng, shape, np.int8)
    lo, hi = rand_act_range(rng)
    q = {"a_zp": rand_zp(rng), "b_zp": rand_zp(rng), "out_zp": rand_zp(rng), "out_mult": int(rand_mult(rng)),
         "out_shift": int(rand_shift(rng)), "act_min": lo, "act_max": hi}
    out = np.empty(shape, np.int8)
    lib.ec_mul_s8(bcast_params(ffi, shape, sa, sb), ffi.new("ec_mul_s8_params *", q), buf(ffi, a), buf(ffi, b),
                  buf(ffi, out))
    prod = (va.astype(np.int64) - q["a_zp"]) * (vb.astype(np.int64) - q["b_zp"])
    want = out_stage(requantize(prod, q["out_mult"], q["out_shift"]), q["out_zp"], lo, hi)
    np.testing.assert_array_equal(out, want)


BINARY_F32 = {0: np.add, 1: np.subtract, 2: np.multiply, 3: np.divide, 4: np.maximum, 5: np.minimum}


@pytest.mark.parametrize("seed", SEEDS)
def test_binary_f32(ck, seed):
    ffi, lib = ck
    rng = np.random.default_rng(seed)
    shape = rand_out_shape(rng)
    a, sa, va = rand_operand(rng, shape, np.float32)
    b, sb, vb = rand_operand(rng, shape, np.float32)
    b += np.where(b >= 0, 0.5, -0.5).astype(np.float32)  # keep divisors away from 0
    act, lo, hi = rand_act_f32(rng, ffi)
    for op, f in BINARY_F32.items():
        out = np.empty(shape, np.float32)
        lib.ec_binary_f32(bcast_params(ffi, shape, sa, sb), op, act, buf(ffi, a), buf(ffi, b), buf(ffi, out))
        assert_f32(out, np.clip(f(va.astype(np.float64), vb.astype(np.float64)), lo, hi))


@pytest.mark.parametrize("seed", SEEDS)
def test_prelu_s8(ck, seed):
    ffi, lib = ck
    rng = np.random.default_rng(seed)
    shape = rand_out_shape(rng)
    x, sx, vx = rand_operand(rng, shape, np.int8, broadcast=False)
    s, ss, vs = rand_operand(rng, shape, np.int8)
    q = {"in_zp": rand_zp(rng), "slope_zp": rand_zp(rng), "out_zp": rand_zp(rng), "pos_mult": int(rand_mult(rng)),
         "pos_shift": int(rand_shift(rng)), "neg_mult": int(rand_mult(rng)), "neg_shift": int(rand_shift(rng)) - 6}
    out = np.empty(shape, np.int8)
    lib.ec_prelu_s8(bcast_params(ffi, shape, sx, ss), ffi.new("ec_prelu_s8_params *", q), buf(ffi, x), buf(ffi, s),
                    buf(ffi, out))
    v = vx.astype(np.int64) - q["in_zp"]
    pos = requantize(v, q["pos_mult"], q["pos_shift"])
    neg = requantize(v * (vs.astype(np.int64) - q["slope_zp"]), q["neg_mult"], q["neg_shift"])
    np.testing.assert_array_equal(out, out_stage(np.where(v >= 0, pos, neg), q["out_zp"], -128, 127))


@pytest.mark.parametrize("seed", SEEDS)
def test_prelu_f32(ck, seed):
    ffi, lib = ck
    rng = np.random.default_rng(seed)
    shape = rand_out_shape(rng)
    x, sx, vx = rand_operand(rng, shape, np.float32, broadcast=False)
    s, ss, vs = rand_operand(rng, shape, np.float32)
    out = np.empty(shape, np.float32)
    lib.ec_prelu_f32(bcast_params(ffi, shape, sx, ss), buf(ffi, x), buf(ffi, s), buf(ffi, out))
    assert_f32(out, np.where(vx >= 0, vx, vx.astype(np.float64) * vs))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("elem", [np.int8, np.int16, np.float32])
def test_transpose(ck, seed, elem):
    ffi, lib = ck
    rng = np.random.default_rng(seed)
    shape = rand_out_shape(rng)
    x, sx, _ = rand_operand(rng, shape, elem)
    out = np.empty(shape, elem)
    lib.ec_transpose(bcast_params(ffi, shape, sx), x.itemsize, buf(ffi, x), buf(ffi, out))
    want = np.lib.stride_tricks.as_strided(x, shape, [s * x.itemsize for s in sx])
    np.testing.assert_array_equal(out, want)


# ---- other ops ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_lut_s8(ck, seed):
    ffi, lib = ck
    rng = np.random.default_rng(seed)
    table = rand_s8(rng, 256)
    x = rand_s8(rng, int(rng.integers(1, 300)))
    want = table[x.astype(np.int64) + 128]
    out = np.empty_like(x)
    lib.ec_lut_s8(x.size, buf(ffi, table), buf(ffi, x), buf(ffi, out))
    np.testing.assert_array_equal(out, want)
    lib.ec_lut_s8(x.size, buf(ffi, table), buf(ffi, x), buf(ffi, x))  # in place
    np.testing.assert_array_equal(x, want)


def unary_model(op, x, alpha, beta):
    x = x.astype(np.float64)
    return {
        0: lambda: np.maximum(x, 0),
        1: lambda: x,
        2: lambda: np.where(x >= 0, x, alpha * x),
        3: lambda: 1 / (1 + np.exp(-x)),
        4: lambda: np.tanh(x),
        5: lambda: np.clip(alpha * x + beta, 0, 1),
        6: lambda: x * np.clip(x / 6 + 0.5, 0, 1),
    }[op]()


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("op", range(7))
def test_unary_f32(ck, seed, op):
    ffi, lib = ck
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(int(rng.integers(1, 200))) * 4).astype(np.float32)
    alpha, beta = float(np.float32(rng.uniform(0.05, 0.5))), float(np.float32(rng.uniform(0.2, 0.8)))
    act, lo, hi = rand_act_f32(rng, ffi)
    out = np.empty_like(x)
    lib.ec_unary_f32(x.size, op, alpha, beta, act, buf(ffi, x), buf(ffi, out))
    assert_f32(out, np.clip(unary_model(op, x, alpha, beta), lo, hi))


def pool_inputs(rng, dtype):
    g = rand_geometry(rng, pool=True)
    c = int(rng.integers(1, 6))
    shape = (g["batch"], g["in_h"], g["in_w"], c)
    return g, c, (rand_s8(rng, shape) if dtype == np.int8 else rand_f32(rng, shape))


@pytest.mark.parametrize("seed", SEEDS)
def test_maxpool_s8(ck, seed):
    ffi, lib = ck
    rng = np.random.default_rng(seed)
    g, c, x = pool_inputs(rng, np.int8)
    lo, hi = rand_act_range(rng)
    out = np.empty((g["batch"], g["out_h"], g["out_w"], c), np.int8)
    lib.ec_maxpool_s8(conv_params(ffi, g, c, c), lo, hi, buf(ffi, x), buf(ffi, out))
    m = windows(x.astype(np.int64), g, -1000).max(axis=(0, 1))
    np.testing.assert_array_equal(out, np.clip(np.maximum(m, -128), lo, hi))  # empty window: -128, clamped


@pytest.mark.parametrize("seed", SEEDS)
def test_maxpool_f32(ck, seed):
    ffi, lib = ck
    rng = np.random.default_rng(seed)
    g, c, x = pool_inputs(rng, np.float32)
    act, lo, hi = rand_act_f32(rng, ffi)
    out = np.empty((g["batch"], g["out_h"], g["out_w"], c), np.float32)
    lib.ec_maxpool_f32(conv_params(ffi, g, c, c), act, buf(ffi, x), buf(ffi, out))
    m = windows(x, g, -np.inf).max(axis=(0, 1))
    assert_f32(out, np.clip(m, lo, hi))


def avgpool_model(x, g, include_pad):
    """(sum of the taps inside x, divisor)."""
    acc = windows(x, g, 0).sum(axis=(0, 1))
    if include_pad:  # taps inside [-pad, in + pad_end): windows over the padded extent, with no padding of its own
        ones = np.ones((1, g["pad_top"] + g["in_h"] + g["pad_bottom"], g["pad_left"] + g["in_w"] + g["pad_right"], 1))
    else:
        ones = np.pad(np.ones((1, g["in_h"], g["in_w"], 1)), ((0, 0), (g["pad_top"], 0), (g["pad_left"], 0), (0, 0)))
    return acc, windows(ones, g, 0, pad_top=0, pad_left=0).sum(axis=(0, 1)).astype(np.int64)


@pytest.mark.parametrize("seed", SEEDS)
def test_avgpool_s8(ck, seed):
    ffi, lib = ck
    rng = np.random.default_rng(seed)
    g, c, x = pool_inputs(rng, np.int8)
    zp = rand_zp(rng)
    lo, hi = rand_act_range(rng)
    include_pad = int(rng.integers(2))
    extra = ffi.new("ec_avgpool_extra *", {"pad_bottom": g["pad_bottom"], "pad_right": g["pad_right"],
                                           "count_include_pad": include_pad})
    out = np.empty((g["batch"], g["out_h"], g["out_w"], c), np.int8)
    lib.ec_avgpool_s8(conv_params(ffi, g, c, c), extra, zp, lo, hi, buf(ffi, x), buf(ffi, out))
    acc, d = avgpool_model(x.astype(np.int64) - zp, g, include_pad)
    dd = np.maximum(d, 1)
    # acc / d rounded to nearest with ties to even (exact with Python's fractions); 0 when d == 0 (acc == 0 too)
    acc, dd = np.broadcast_arrays(acc, dd)
    avg = np.array([round(Fraction(int(a), int(b))) for a, b in zip(acc.ravel(), dd.ravel())],
                   np.int64).reshape(acc.shape)
    np.testing.assert_array_equal(out, out_stage(avg, zp, lo, hi))


@pytest.mark.parametrize("seed", SEEDS)
def test_avgpool_s8_rescaled(ck, seed):
    """An output scale of its own: the window sum requantized (any multiplier; 1 / divisor is folded into it)."""
    ffi, lib = ck
    rng = np.random.default_rng(seed)
    g, c, x = pool_inputs(rng, np.int8)
    zp, out_zp = rand_zp(rng), rand_zp(rng)
    lo, hi = rand_act_range(rng)
    mult, shift = int(rng.integers(2**30, 2**31)), int(rng.integers(-12, 2))
    extra = ffi.new("ec_avgpool_extra *", {"pad_bottom": g["pad_bottom"], "pad_right": g["pad_right"],
                                           "count_include_pad": 0, "mult": mult, "shift": shift, "out_zp": out_zp})
    out = np.empty((g["batch"], g["out_h"], g["out_w"], c), np.int8)
    lib.ec_avgpool_s8(conv_params(ffi, g, c, c), extra, zp, lo, hi, buf(ffi, x), buf(ffi, out))
    acc, _ = avgpool_model(x.astype(np.int64) - zp, g, 0)
    np.testing.assert_array_equal(out, out_stage(requantize(acc, mult, shift), out_zp, lo, hi))


@pytest.mark.parametrize("seed", SEEDS)
def test_avgpool_f32(ck, seed):
    ffi, lib = ck
    rng = np.random.default_rng(seed)
    g, c, x = pool_inputs(rng, np.float32)
    act, lo, hi = rand_act_f32(rng, ffi)
    include_pad = int(rng.integers(2))
    extra = ffi.new("ec_avgpool_extra *", {"pad_bottom": g["pad_bottom"], "pad_right": g["pad_right"],
                                           "count_include_pad": include_pad})
    out = np.empty((g["batch"], g["out_h"], g["out_w"], c), np.float32)
    lib.ec_avgpool_f32(conv_params(ffi, g, c, c), extra, act, buf(ffi, x), buf(ffi, out))
    acc, d = avgpool_model(x.astype(np.float64), g, include_pad)
    assert_f32(out, np.clip(np.where(d > 0, acc / np.maximum(d, 1), 0.0), lo, hi))


@pytest.mark.parametrize("seed", SEEDS)
def test_softmax_s8(ck, seed):
    ffi, lib = ck
    rng = np.random.default_rng(seed)
    outer, n, inner = int(rng.integers(1, 4)), int(rng.integers(1, 40)), int(rng.integers(1, 4))
    if seed % 5 == 0:
        n = int(rng.integers(256, 512))  # with x >= 125 below, sum >= 2^23: the 64-bit division path
    scale = rng.uniform(0.01, 0.2)
    table = np.round(np.exp(-np.arange(256) * scale) * 65536).astype(np.uint32)
    if seed % 5 == 1:  # any table must work: entries up to 2^26, so e * 256 needs more than 32 bits
        table = rng.integers(1, 2**26, 256).astype(np.uint32)
    x = rand_s8(rng, (outer, n, inner))
    if seed % 5 == 0:
        x[:] = np.maximum(x, 125)
    out = np.empty_like(x)
    # output scale 1/256 (edgec's own) or 1/255 (onnxruntime's quantizer) or any 1/N, with any zero point
    out_n, out_zp = [(256, -128), (255, -128), (int(rng.integers(1, 257)), int(rng.integers(-128, 128)))][seed % 3]
    lib.ec_softmax_s8(outer, n, inner, buf(ffi, table), out_n, out_zp, buf(ffi, x), buf(ffi, out))
    xi = x.astype(np.int64)
    e = table[xi.max(axis=1, keepdims=True) - xi].astype(np.int64)
    s = e.sum(axis=1, keepdims=True)
    np.testing.assert_array_equal(out, np.minimum(out_zp + (e * out_n + s // 2) // s, 127))


@pytest.mark.parametrize("seed", SEEDS)
def test_softmax_f32(ck, seed):
    ffi, lib = ck
    rng = np.random.default_rng(seed)
    outer, n, inner = int(rng.integers(1, 4)), int(rng.integers(1, 40)), int(rng.integers(1, 4))
    x = (rng.standard_normal((outer, n, inner)) * 5).astype(np.float32)
    out = np.empty_like(x)
    lib.ec_softmax_f32(outer, n, inner, buf(ffi, x), buf(ffi, out))
    e = np.exp(x.astype(np.float64) - x.max(axis=1, keepdims=True))
    assert_f32(out, e / e.sum(axis=1, keepdims=True))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("elem", [np.int8, np.int16, np.float32])
def test_concat(ck, seed, elem):
    ffi, lib = ck
    rng = np.random.default_rng(seed)
    k, outer, inner = int(rng.integers(1, 5)), int(rng.integers(1, 4)), int(rng.integers(1, 5))
    sizes = np.array(rng.integers(0, 4, k), np.int32)
    xs = [rand_elems(rng, (outer, int(s), inner), elem) for s in sizes]
    tables = [rand_s8(rng, 256) if elem == np.int8 and rng.random() < 0.5 else None for _ in range(k)]
    out = np.empty((outer, int(sizes.sum()), inner), elem)
    inputs = ffi.new("void *[]", [buf(ffi, x) for x in xs])
    ctables = ffi.new("int8_t *[]", [ffi.NULL if t is None else buf(ffi, t) for t in tables])
    use_tables = elem == np.int8 and rng.random() < 0.8
    lib.ec_concat(k, outer, inner, buf(ffi, sizes), np.dtype(elem).itemsize, inputs,
                  ctables if use_tables else ffi.NULL, buf(ffi, out))
    parts = [t[x.astype(np.int64) + 128] if use_tables and t is not None else x
             for x, t in zip(xs, tables, strict=True)]
    np.testing.assert_array_equal(out, np.concatenate(parts, axis=1))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("elem", [np.int8, np.int16, np.float32])
def test_pad(ck, seed, elem):
    ffi, lib = ck
    rng = np.random.default_rng(seed)
    shape = np.array([1] * MAX_DIMS, np.int32)
    rank = int(rng.integers(1, MAX_DIMS + 1))
    shape[MAX_DIMS - rank:] = rng.integers(1, 5, rank)
    begin = np.where(shape > 1, rng.integers(-1, 3, MAX_DIMS), rng.integers(0, 3, MAX_DIMS)).astype(np.int32)
    end = np.where(shape > 1, rng.integers(-1, 3, MAX_DIMS), rng.integers(0, 3, MAX_DIMS)).astype(np.int32)
    x = rand_elems(rng, shape, elem)
    value = rand_elems(rng, 1, elem)
    out = np.empty(shape + begin + end, elem)
    lib.ec_pad(buf(ffi, shape), buf(ffi, begin), buf(ffi, end), x.itemsize, buf(ffi, value), buf(ffi, x),
               buf(ffi, out))
    crop = x[tuple(slice(max(-b, 0), n - max(-e, 0)) for b, e, n in zip(begin, end, shape, strict=True))]
    want = np.pad(crop, [(max(b, 0), max(e, 0)) for b, e in zip(begin, end, strict=True)], constant_values=value[0])
    np.testing.assert_array_equal(out, want)
