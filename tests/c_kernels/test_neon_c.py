"""The NEON int8 kernels (runtime_c/include/edgec_neon.h) on Cortex-A53 (qemu-aarch64) and Cortex-A7 (qemu-arm),
and their plain C path on the host (gcc with UBSan), against the numpy models of test_kernels_c.py.

Random cases (odd channel counts and widths, strides, padding on every border, dilation, per-tensor and per-channel
quantization with left and right shifts, biases near the int32 limits, contiguous and broadcast adds) are written
into one C program per target as constant arrays, with the weights packed and the biases folded by the build-time
twins in edgec.ops.packing. The program checks nothing itself: it writes each kernel's _get_buffer_size and output to
stdout, and the test compares them with the twins and the models bit for bit."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from test_kernels_c import (
    avgpool_model,
    conv_model,
    depthwise_model,
    out_stage,
    rand_act_range,
    rand_geometry,
    rand_mult,
    rand_out_shape,
    rand_s8,
    rand_shift,
    rand_zp,
    requantize,
)

from edgec.ops import packing
from edgec.target import load_target

RUNTIME = Path(__file__).resolve().parents[2] / "runtime_c"
KERNELS = ["ec_conv2d_1x1_neon_s8", "ec_conv2d_im2col_neon_s8", "ec_conv2d_lanes_neon_s8", "ec_fully_connected_neon_s8",
           "ec_depthwise_conv2d_3x3_neon_s8", "ec_depthwise_conv2d_neon_s8", "ec_add_s8", "ec_transpose",
           "ec_avgpool_neon_s8"]
CASES_PER_KERNEL = 12
# kernels with many paths
MORE_CASES = {"ec_conv2d_lanes_neon_s8": 30, "ec_depthwise_conv2d_3x3_neon_s8": 30, "ec_avgpool_neon_s8": 30,
              "ec_add_s8": 30}
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
CTYPE = {np.dtype(np.int8): "int8_t", np.dtype(np.int16): "int16_t", np.dtype(np.int32): "int32_t"}


@dataclass
class Case:
    kernel: str
    args: str  # the C arguments after the struct declarations, with {x} standing for the case's array prefix
    structs: str  # C declarations of the parameter structs (p, q), with {x}
    arrays: dict[str, np.ndarray]
    want: np.ndarray
    scratch: int | None  # the Python twin's scratch bytes; None: the kernel has no scratch
    size_args: str = "&p"
    extra: dict = field(default_factory=dict)


def rand_weights(rng, shape):
    """int8 weights in [-127, 127], as edgec quantizes them (the NEON kernels' precondition)."""
    return rng.integers(-127, 127, size=shape, endpoint=True).astype(np.int8)


def rand_quant(rng, out_c):
    per_channel = int(rng.integers(2))
    n = out_c if per_channel else 1
    mult = rand_mult(rng, n).astype(np.int32)
    shift = rand_shift(rng, n).astype(np.int32)
    if rng.random() < 0.5:  # the usual case: right shifts only (the kernels' cheaper rounding)
        shift = -np.abs(shift) - 1
    lo, hi = rand_act_range(rng)
    q = {"in_zp": rand_zp(rng), "out_zp": rand_zp(rng), "act_min": lo, "act_max": hi, "per_channel": per_channel}
    return q, mult, shift


def finish(acc, bias, q, mult, shift, out_c):
    """The output stage of the int64 accumulators, or None when one does not fit int32 (outside the contract)."""
    acc = acc + bias
    if acc.size and (acc.min() < INT32_MIN or acc.max() > INT32_MAX):
        return None
    m = np.broadcast_to(mult.astype(np.int64), (out_c,))
    s = np.broadcast_to(shift.astype(np.int64), (out_c,))
    return out_stage(requantize(acc, m, s), q["out_zp"], q["act_min"], q["act_max"])


def rand_bias(rng, out_c):
    kind = rng.integers(4)
    limit = 2**31 - 2**21 if kind == 3 else 5000
    return (rng.integers(-limit, limit, out_c, endpoint=True) if kind else np.zeros(out_c)).astype(np.int32)


def quant_decl(q, n_mult):
    return (f"static const ec_quant_s8 q = {{{q['in_zp']}, {q['out_zp']}, {q['act_min']}, {q['act_max']}, "
            f"{{x}}mult, {{x}}shift, {q['per_channel']}}};")


def params_decl(g, in_c, out_c, groups):
    f = [g["batch"], g["in_h"], g["in_w"], in_c, g["out_h"], g["out_w"], out_c, g["k_h"], g["k_w"], g["stride_h"],
         g["stride_w"], g["dil_h"], g["dil_w"], g["pad_top"], g["pad_left"], groups]
    return "static const ec_conv_params p = {" + ", ".join(map(str, f)) + "};"


def conv_case(rng, kernel):
    while True:
        if kernel == "ec_conv2d_1x1_neon_s8":
            g = {"batch": int(rng.integers(1, 3)), "k_h": 1, "k_w": 1, "dil_h": 1, "dil_w": 1, "pad_top": 0,
                 "pad_left": 0}
            for ax in ("h", "w"):
                g["in_" + ax] = int(rng.integers(1, 8))
                g["stride_" + ax] = int(rng.integers(1, 3))
                g["out_" + ax] = (g["in_" + ax] - 1) // g["stride_" + ax] + 1
            in_c = int(rng.choice([int(rng.integers(1, 40)), 8, 16, 24, 32]))
        else:
            g = rand_geometry(rng)
            in_c = int(rng.integers(1, 20))
        out_c = int(rng.integers(1, 14))
        x = rand_s8(rng, (g["batch"], g["in_h"], g["in_w"], in_c))
        w = rand_weights(rng, (out_c, g["k_h"], g["k_w"], in_c))
        bias = rand_bias(rng, out_c)
        q, mult, shift = rand_quant(rng, out_c)
        acc = conv_model(x.astype(np.int64) - q["in_zp"], w.astype(np.int64), g, 1)
        want = finish(acc, bias, q, mult, shift, out_c)
        if want is not None:
            break
    wm = w.reshape(out_c, -1)
    p = dict(g, in_c=in_c, out_c=out_c)
    scratch = (packing.neon_conv_1x1_scratch_bytes if "1x1" in kernel else packing.neon_conv_im2col_scratch_bytes)(p)
    arrays = {"x": x, "w": packing.pack_matrix_neon(wm), "b": packing.fold_input_zp(bias, wm, q["in_zp"]), "mult": mult,
              "shift": shift}
    return Case(kernel, "&p, &q, {x}x, {x}w, {x}b, {x}out, SCRATCH", params_decl(g, in_c, out_c, 1) + quant_decl(q, 0),
                arrays, want, scratch)


def lanes_case(rng, kernel):
    """ec_conv2d_lanes_neon_s8: any geometry with a short dot product (K up to 64), 1x1 layers read in place (in_c a
    multiple of 8) or copied, out_c over blocks of 16, a last block of 8 and partial stores, any int8 weight (-128
    too), in_zp at its extremes."""
    while True:
        if rng.random() < 0.4:
            g = {"batch": int(rng.integers(1, 3)), "k_h": 1, "k_w": 1, "dil_h": 1, "dil_w": 1, "pad_top": 0,
                 "pad_left": 0}
            for ax in ("h", "w"):
                g["in_" + ax] = int(rng.integers(1, 8))
                g["stride_" + ax] = int(rng.integers(1, 3))
                g["out_" + ax] = (g["in_" + ax] - 1) // g["stride_" + ax] + 1
            in_c = int(rng.choice([int(rng.integers(1, 64)), 8, 16, 32, 64]))
        else:
            g = rand_geometry(rng)
            in_c = int(rng.integers(1, 4))
        out_c = int(rng.choice([int(rng.integers(1, 40)), 8, 16, 24, 32]))
        x = rand_s8(rng, (g["batch"], g["in_h"], g["in_w"], in_c))
        w = rng.integers(-128, 127, size=(out_c, g["k_h"], g["k_w"], in_c), endpoint=True).astype(np.int8)
        bias = rand_bias(rng, out_c)
        q, mult, shift = rand_quant(rng, out_c)
        if rng.random() < 0.3:
            q["in_zp"] = int(rng.choice([-128, 127]))
        acc = conv_model(x.astype(np.int64) - q["in_zp"], w.astype(np.int64), g, 1)
        want = finish(acc, bias, q, mult, shift, out_c)
        if want is not None:
            break
    wm = w.reshape(out_c, -1)
    arrays = {"x": x, "w": packing.pack_lanes_neon(wm), "b": packing.fold_input_zp(bias, wm, q["in_zp"]),
              "mult": mult, "shift": shift}
    p = dict(g, in_c=in_c, out_c=out_c)
    return Case(kernel, "&p, &q, {x}x, {x}w, {x}b, {x}out, SCRATCH", params_decl(g, in_c, out_c, 1) + quant_decl(q, 0),
                arrays, want, packing.neon_conv_lanes_scratch_bytes(p))


def depthwise_case(rng, kernel):
    while True:
        g = rand_geometry(rng)
        if kernel == "ec_depthwise_conv2d_3x3_neon_s8":
            g.update(k_h=3, k_w=3, dil_h=1, dil_w=1, pad_top=int(rng.integers(0, 3)), pad_left=int(rng.integers(0, 3)),
                     in_h=int(rng.integers(1, 8)), in_w=int(rng.integers(1, 13)))
            for ax, s, p0, size in (("h", "stride_h", "pad_top", "in_h"), ("w", "stride_w", "pad_left", "in_w")):
                g["out_" + ax] = max((g[size] + 2 * g[p0] - 3) // g[s] + 1, 1)
        elif rng.random() < 0.3:  # a larger kernel: an odd tap count, pairs and a single
            g.update(k_h=5, k_w=int(rng.integers(1, 6)), dil_h=1, pad_top=int(rng.integers(0, 5)),
                     in_h=int(rng.integers(5, 8)))
            g["out_h"] = (g["in_h"] + 2 * g["pad_top"] - 5) // g["stride_h"] + 1
        c = int(rng.choice([int(rng.integers(1, 40)), 8, 16, 24]))
        x = rand_s8(rng, (g["batch"], g["in_h"], g["in_w"], c))
        w = rand_weights(rng, (g["k_h"], g["k_w"], c))
        bias = rand_bias(rng, c)
        q, mult, shift = rand_quant(rng, c)
        acc = depthwise_model(x.astype(np.int64) - q["in_zp"], w.astype(np.int64), g)
        want = finish(acc, bias, q, mult, shift, c)
        if want is not None:
            break
    wd = w.reshape(-1, c)
    arrays = {"x": x, "w": np.ascontiguousarray(wd), "b": packing.fold_input_zp(bias, wd.T, q["in_zp"]), "mult": mult,
              "shift": shift}
    return Case(kernel, "&p, &q, {x}x, {x}w, {x}b, {x}out, SCRATCH", params_decl(g, c, c, c) + quant_decl(q, 0),
                arrays, want, packing.neon_depthwise_scratch_bytes(dict(g, in_c=c)))


def fc_case(rng, kernel):
    while True:
        rows, out_c = int(rng.integers(1, 6)), int(rng.integers(1, 14))
        if rng.random() < 0.3:  # more than one pass of 64 output channels (the stage tables on the stack)
            out_c = int(rng.integers(65, 140))
        depth = int(rng.choice([int(rng.integers(1, 70)), 8, 16, 64]))
        x, w = rand_s8(rng, (rows, depth)), rand_weights(rng, (out_c, depth))
        bias = rand_bias(rng, out_c)
        q, mult, shift = rand_quant(rng, out_c)
        want = finish((x.astype(np.int64) - q["in_zp"]) @ w.astype(np.int64).T, bias, q, mult, shift, out_c)
        if want is not None:
            break
    arrays = {"x": x, "w": packing.pack_matrix_neon(w), "b": packing.fold_input_zp(bias, w, q["in_zp"]), "mult": mult,
              "shift": shift}
    return Case(kernel, f"{rows}, {depth}, {out_c}, &q, {{x}}x, {{x}}w, {{x}}b, {{x}}out, SCRATCH", quant_decl(q, 0),
                arrays, want, packing.neon_fc_scratch_bytes(rows, depth), size_args=f"{rows}, {depth}")


def add_case(rng, kernel):
    """Contiguous operands (the NEON rows, long enough for 8 at a time and a tail) or broadcast ones."""
    if rng.random() < 0.6:
        shape = [int(rng.integers(1, 3)), int(rng.integers(1, 5)), int(rng.integers(1, 40))]
        a, b = rand_s8(rng, shape), rand_s8(rng, shape)
        strides = [int(s) for s in np.array(a.strides)]
        sa, sb = strides, strides
        va, vb = a, b
    else:
        shape = rand_out_shape(rng) or [1]
        a, b = rand_s8(rng, shape), rand_s8(rng, [1] * (len(shape) - 1) + [shape[-1]])
        sa = [int(s) for s in np.array(a.strides)]
        sb = [0] * (len(shape) - 1) + [1]
        va, vb = a, np.broadcast_to(b, shape)
    lo, hi = rand_act_range(rng)
    q = {"left_shift": 20, "a_zp": rand_zp(rng), "a_mult": int(rand_mult(rng)), "a_shift": int(rng.integers(-10, 1)),
         "b_zp": rand_zp(rng), "b_mult": int(rand_mult(rng)), "b_shift": int(rng.integers(-10, 1)),
         "out_zp": rand_zp(rng), "out_mult": int(rand_mult(rng)), "out_shift": int(rand_shift(rng)) - 16,
         "act_min": lo, "act_max": hi}
    if rng.random() < 0.2:  # an output shift of 0 and one to the left (the exact general rounding)
        q["out_shift"], q["out_mult"] = int(rng.integers(0, 2)), int(rng.integers(1, 2**12))
    if rng.random() < 0.5:  # one operand requantized exactly, as edgec's Add parameters have it (add_row_exact_neon)
        side = "ab"[int(rng.integers(2))]
        q[f"{side}_mult"], q[f"{side}_shift"] = 2**30, 0
    op = int(rng.integers(2))
    ra = requantize((va.astype(np.int64) - q["a_zp"]) * 2 ** q["left_shift"], q["a_mult"], q["a_shift"])
    rb = requantize((vb.astype(np.int64) - q["b_zp"]) * 2 ** q["left_shift"], q["b_mult"], q["b_shift"])
    want = out_stage(requantize(ra + rb if op == 0 else ra - rb, q["out_mult"], q["out_shift"]), q["out_zp"], lo, hi)
    pad = 6 - len(shape)
    bp = ("static const ec_broadcast_params p = {{" + ", ".join(map(str, [1] * pad + list(shape))) + "}, {"
          + ", ".join(map(str, [0] * pad + sa)) + "}, {" + ", ".join(map(str, [0] * pad + sb)) + "}};")
    keys = ("left_shift", "a_zp", "a_mult", "a_shift", "b_zp", "b_mult", "b_shift", "out_zp", "out_mult", "out_shift",
            "act_min", "act_max")
    qd = "static const ec_add_s8_params q = {" + ", ".join(str(q[k]) for k in keys) + "};"
    return Case(kernel, f"&p, {'EC_SUB' if op else 'EC_ADD'}, &q, {{x}}x, {{x}}y, {{x}}out", bp + qd,
                {"x": a, "y": b}, want, None)


def avgpool_case(rng, kernel):
    """ec_avgpool_neon_s8 against ec_avgpool_s8's arithmetic: random windows (padding, dilation, count_include_pad),
    channels over vectors of 16 and 8 and a tail, global pools of more than 128 taps, a requantized output."""
    g = rand_geometry(rng, pool=True)
    if rng.random() < 0.3:  # a global pool, up to 12 x 12 taps
        h, w = int(rng.integers(1, 13)), int(rng.integers(1, 13))
        g.update(in_h=h, in_w=w, k_h=h, k_w=w, stride_h=1, stride_w=1, dil_h=1, dil_w=1, pad_top=0, pad_left=0,
                 pad_bottom=0, pad_right=0, out_h=1, out_w=1)
    c = int(rng.choice([int(rng.integers(1, 40)), 8, 16, 64]))
    x = rand_s8(rng, (g["batch"], g["in_h"], g["in_w"], c))
    zp = rand_zp(rng)
    lo, hi = rand_act_range(rng)
    include_pad = int(rng.integers(2))
    acc, d = avgpool_model(x.astype(np.int64) - zp, g, include_pad)
    acc, d = np.broadcast_arrays(acc, d)
    mult, shift, out_zp = 0, 0, 0
    if rng.random() < 0.3:
        mult, shift, out_zp = int(rand_mult(rng)), int(rng.integers(-8, 1)), rand_zp(rng)
        want = out_stage(requantize(acc, mult, shift), out_zp, lo, hi)
    else:
        dd = np.maximum(d, 1)
        avg = np.array([round(Fraction(int(a), int(b))) for a, b in zip(acc.ravel(), dd.ravel())],
                       np.int64).reshape(acc.shape)
        want = out_stage(avg, zp, lo, hi)
    structs = (params_decl(g, c, c, 1) + f"static const ec_avgpool_extra e = {{{g['pad_bottom']}, {g['pad_right']}, "
               f"{include_pad}, {mult}, {shift}, {out_zp}}};")
    return Case(kernel, f"&p, &e, {zp}, {lo}, {hi}, {{x}}x, {{x}}out", structs, {"x": x}, want, None)


def transpose_case(rng, kernel):
    """NCHW to NHWC of int8: 2 to 4 channels take the NEON interleave (runs of 16 pixels and a tail), others not."""
    n, c, h, w = int(rng.integers(1, 3)), int(rng.integers(1, 6)), int(rng.integers(1, 7)), int(rng.integers(1, 9))
    x = rand_s8(rng, (n, c, h, w))
    strides = [c * h * w, w, 1, h * w]
    pad = [1, 1]
    bp = ("static const ec_broadcast_params p = {{" + ", ".join(map(str, pad + [n, h, w, c])) + "}, {"
          + ", ".join(map(str, [0, 0] + strides)) + "}, {0, 0, 0, 0, 0, 0}};")
    return Case(kernel, "&p, 1, {x}x, {x}out", bp, {"x": x}, np.ascontiguousarray(x.transpose(0, 2, 3, 1)), None)


GENERATORS = {"ec_conv2d_1x1_neon_s8": conv_case, "ec_conv2d_im2col_neon_s8": conv_case,
              "ec_conv2d_lanes_neon_s8": lanes_case,
              "ec_fully_connected_neon_s8": fc_case, "ec_depthwise_conv2d_3x3_neon_s8": depthwise_case,
              "ec_depthwise_conv2d_neon_s8": depthwise_case, "ec_add_s8": add_case, "ec_transpose": transpose_case,
              "ec_avgpool_neon_s8": avgpool_case}


def make_cases() -> list[Case]:
    rng = np.random.default_rng(2026)
    return [GENERATORS[k](rng, k) for k in KERNELS for _ in range(MORE_CASES.get(k, CASES_PER_KERNEL))]


def c_array(name: str, a: np.ndarray) -> str:
    flat = np.asarray(a).ravel()
    body = ", ".join(str(int(v)) for v in flat) if flat.size else "0"
    return f"static const {CTYPE[a.dtype]} {name}[{max(flat.size, 1)}] = {{{body}}};"


def c_program(cases: list[Case]) -> str:
    head = ["#include <stdio.h>", "#include <string.h>", '#include "edgec.h"', ""]
    body = ["int main(void)", "{"]
    for i, c in enumerate(cases):
        x = f"c{i}_"
        head += [c_array(x + k, v) for k, v in c.arrays.items()]
        head.append(f"static int8_t {x}out[{max(c.want.size, 1)}];")
        if c.scratch:
            head.append(f"static int8_t {x}sc[{c.scratch}] __attribute__((aligned(16)));")
        scratch = f"{x}sc" if c.scratch else "NULL"
        body.append("    {")
        body.append("        " + c.structs.replace("{x}", x))
        if c.scratch is not None:
            body.append(f"        const int32_t size = {c.kernel}_get_buffer_size({c.size_args});")
            body.append("        fwrite(&size, 4, 1, stdout);")
        if c.scratch:
            body.append(f"        memset({x}sc, 0x5a, sizeof {x}sc); /* garbage the kernel must not depend on */")
        body.append(f"        {c.kernel}({c.args.replace('{x}', x).replace('SCRATCH', scratch)});")
        body.append(f"        fwrite({x}out, 1, {c.want.size}, stdout);")
        body.append("    }")
    body += ["    return 0;", "}", ""]
    return "\n".join(head + [""] + body)


def compile_and_run(target: str, tmp: Path, cases: list[Case]) -> bytes:
    src = tmp / "neon_cases.c"
    src.write_text(c_program(cases))
    kernels = sorted({str(RUNTIME / "src" / f"{c.kernel}.c") for c in cases})
    exe = tmp / f"cases-{target}"
    warn = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-I", str(RUNTIME / "include")]
    if target == "host":
        subprocess.run(["gcc", *warn, "-fsanitize=undefined", "-fno-sanitize-recover=undefined", str(src), *kernels,
                        "-o", str(exe)], check=True)
        run = [str(exe)]
    else:
        t = load_target(target)
        subprocess.run([t.cc, *t.cflags, *warn, "-static", str(src), *kernels, "-o", str(exe)], check=True)
        run = [t.qemu, "-cpu", t.machine, str(exe)]
    proc = subprocess.run(run, capture_output=True, check=True)
    assert b"runtime error" not in proc.stderr, proc.stderr.decode()
    return proc.stdout


def target_param(name: str):
    if name == "host":
        return name
    t = load_target(name)
    missing = [tool for tool in (t.cc, t.qemu) if shutil.which(tool) is None]
    return pytest.param(name, marks=pytest.mark.skipif(bool(missing), reason=f"needs {', '.join(missing)}"))


@pytest.mark.parametrize("target", [target_param(t) for t in ("host", "cortex-a53", "cortex-a7")])
def test_neon_kernels_bitexact(target, tmp_path):
    cases = make_cases()
    out = compile_and_run(target, tmp_path, cases)
    at = 0
    for i, c in enumerate(cases):
        if c.scratch is not None:
            size = int(np.frombuffer(out[at:at + 4], np.int32)[0])
            at += 4
            assert size == c.scratch, f"case {i} ({c.kernel}): _get_buffer_size {size}, Python twin {c.scratch}"
        got = np.frombuffer(out[at:at + c.want.size], np.int8).reshape(c.want.shape)
        at += c.want.size
        np.testing.assert_array_equal(got, c.want, err_msg=f"case {i} ({c.kernel}) on {target}")
    assert at == len(out)


def test_pack_and_fold_twins():
    """The NEON matrix layout and the folded bias, element by element."""
    rng = np.random.default_rng(0)
    for n, k in ((1, 1), (3, 8), (5, 13), (8, 64), (7, 27)):
        w = rand_weights(rng, (n, k))
        p = packing.pack_matrix_neon(w)
        k8 = (k + 7) // 8 * 8
        assert p.size == (n + 3) // 4 * 4 * k8
        for i in range(n):
            for j in range(k8):
                assert p[i * k8 + j] == (w[i, j] if j < k else 0)
        assert not p[n * k8:].any()
        bias = rng.integers(-(2**31), 2**31 - 1, n, endpoint=True).astype(np.int32)
        zp = rand_zp(rng)
        folded = packing.fold_input_zp(bias, w, zp).astype(np.int64)
        exact = bias.astype(np.int64) - zp * w.astype(np.int64).sum(axis=1)
        assert ((folded - exact) % 2**32 == 0).all() and folded.dtype == np.int64


def test_f32_scratch_and_pack_twins(tmp_path):
    """ec_conv2d_im2col_neon_f32_get_buffer_size (host gcc) equals its Python twin on random geometries, and the
    blocked float layout holds W[n][k] at (n // 4) * 4 * K + 4 * k + n % 4 with zeros in the padded channels."""
    rng = np.random.default_rng(1)
    geos = [rand_geometry(rng) | {"in_c": int(rng.integers(1, 40))} for _ in range(8)]
    lines = ["#include <stdio.h>", '#include "edgec.h"', "int main(void)", "{"]
    for g in geos:
        f = [g["batch"], g["in_h"], g["in_w"], g["in_c"], g["out_h"], g["out_w"], 1, g["k_h"], g["k_w"], g["stride_h"],
             g["stride_w"], g["dil_h"], g["dil_w"], g["pad_top"], g["pad_left"], 1]
        lines += ["    {", "        const ec_conv_params p = {" + ", ".join(map(str, f)) + "};",
                  '        printf("%d\\n", (int)ec_conv2d_im2col_neon_f32_get_buffer_size(&p));', "    }"]
    src = tmp_path / "sizes.c"
    src.write_text("\n".join(lines + ["    return 0;", "}", ""]))
    subprocess.run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-I", str(RUNTIME / "include"), str(src),
                    str(RUNTIME / "src" / "ec_conv2d_im2col_neon_f32.c"), "-o", str(tmp_path / "sizes")], check=True)
    got = [int(s) for s in subprocess.run([str(tmp_path / "sizes")], capture_output=True, check=True).stdout.split()]
    assert got == [packing.neon_conv_im2col_f32_scratch_bytes(g) for g in geos]
    for n, k in ((1, 1), (5, 3), (8, 7)):
        w = rng.standard_normal((n, k)).astype(np.float32)
        p = packing.pack_f32(w)
        n4 = (n + 3) // 4 * 4
        assert p.size == n4 * k
        for i in range(n4):
            for j in range(k):
                assert p[(i // 4) * 4 * k + 4 * j + i % 4] == (w[i, j] if i < n else 0)
        assert list(packing.pad_bias_f32(np.arange(n, dtype=np.float32))) == list(range(n)) + [0] * (n4 - n)
