"""Shared geometry for convolution and pooling: attributes, windowed numpy loops, C parameter structs, strides."""

from __future__ import annotations

import math

import numpy as np

from ..calls import Struct
from ..ir import Graph, Node, Tensor
from .base import INT32_MAX, MAX_DIMS


def spatial_attrs(node: Node, g: Graph, kernel: tuple[int, ...]) -> tuple[list[int], list[int], list[int]]:
    """(strides, pads [begin..., end...], dilations) with auto_pad resolved."""
    d = len(kernel)
    strides = list(node.attrs.get("strides", [1] * d))
    dil = list(node.attrs.get("dilations", [1] * d))
    auto_pad = node.attrs.get("auto_pad", "NOTSET")
    in_sp = g.shape(node.inputs[0])[2:]
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        begin, end = [], []
        for i in range(d):
            out = math.ceil(in_sp[i] / strides[i])
            total = max(0, (out - 1) * strides[i] + (kernel[i] - 1) * dil[i] + 1 - in_sp[i])
            small = total // 2
            begin.append(small if auto_pad == "SAME_UPPER" else total - small)
            end.append(total - begin[-1])
        pads = begin + end
    elif auto_pad == "VALID":
        pads = [0] * (2 * d)
    else:
        pads = list(node.attrs.get("pads", [0] * (2 * d)))
    return strides, pads, dil


AUTO_PADS = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")


def _ints(v: object, n: int, name: str, least: int) -> str | None:
    if not isinstance(v, (list, tuple)) or len(v) != n or not all(isinstance(x, (int, np.integer)) for x in v):
        return f"{name}={v!r} must be {n} integers"
    if min(v, default=least) < least:
        return f"{name}={list(v)} must all be {least} or more"
    return None


def check_window(node: Node, g: Graph, kernel: tuple[int, ...], pool: bool = False) -> str | None:
    """Conv and pooling geometry against ONNX: strides and dilations >= 1, pads >= 0 (pooling: below the kernel, so
    that every window holds an input element, as onnxruntime requires), auto_pad values, and the output shape that
    follows from them equal to the one in the graph."""
    d, a = len(kernel), node.attrs
    if min(kernel, default=1) < 1:
        return f"kernel {list(kernel)} has an empty dimension"
    auto_pad = a.get("auto_pad", "NOTSET")
    if auto_pad not in AUTO_PADS:
        return f"auto_pad={auto_pad!r}: ONNX allows {', '.join(AUTO_PADS)}"
    if auto_pad != "NOTSET" and any(a.get("pads", [])):
        return f"pads and auto_pad={auto_pad} given together (ONNX allows one)"
    for name, n, least in (("strides", d, 1), ("dilations", d, 1), ("pads", 2 * d, 0)):
        if name in a:
            reason = _ints(a[name], n, name, least)
            if reason:
                return reason
    if a.get("ceil_mode", 0) not in (0, 1) or (a.get("ceil_mode", 0) and not pool):
        return f"ceil_mode={a['ceil_mode']!r} is not supported"
    strides, pads, dil = spatial_attrs(node, g, kernel)
    in_sp, out = g.shape(node.inputs[0])[2:], g.shape(node.outputs[0])
    want = []
    for i in range(d):
        span = (kernel[i] - 1) * dil[i] + 1
        if pool and max(pads[i], pads[d + i]) >= kernel[i]:
            return f"pads {list(pads)} reach a whole kernel {list(kernel)} (every window must hold an input element)"
        room = in_sp[i] + pads[i] + pads[d + i] - span
        if room < 0:
            return (f"the kernel {list(kernel)} (dilations {list(dil)}) spans more than the padded input "
                    f"{list(in_sp)} (pads {list(pads)})")
        n = (-(-room // strides[i]) if a.get("ceil_mode", 0) else room // strides[i]) + 1
        if a.get("ceil_mode", 0) and (n - 1) * strides[i] >= in_sp[i] + pads[i]:
            n -= 1  # a last window that would start in the end padding is dropped
        want.append(n)
    if tuple(out[2:]) != tuple(want):
        return f"output shape {list(out)} does not match the computed spatial size {want} of input {list(in_sp)}"
    return None


def windows(x: np.ndarray, kernel, strides, pads, dil, out_sp, fill, channels_last: bool = False):
    """Yield (kernel index, x window [N, C, *out_sp]) for every kernel position; padding holds `fill`.
    channels_last: x is [N, *S, C] and the windows [N, *out_sp, C]."""
    d = len(kernel)
    first = 1 if channels_last else 2  # the first spatial axis
    width = [(0, 0)] * first
    for i in range(d):
        need = (out_sp[i] - 1) * strides[i] + (kernel[i] - 1) * dil[i] + 1
        end = max(pads[d + i], need - x.shape[first + i] - pads[i])
        width.append((pads[i], end))
    width += [(0, 0)] * (x.ndim - len(width))
    xp = np.pad(x, width, constant_values=fill)
    for idx in np.ndindex(*kernel):
        sl = tuple(slice(idx[i] * dil[i], idx[i] * dil[i] + (out_sp[i] - 1) * strides[i] + 1, strides[i])
                   for i in range(d))
        yield idx, xp[(slice(None),) * first + sl]


EXACT_FLOAT = 2**53  # integers below this are exact in float64, and so is every partial sum of such products
EXACT_FLOAT32 = 2**24  # the same in float32
# Fewest columns per float32 block worth a product of its own (int8 convolutions: 518 columns per block; int16
# activations need float64)
MIN_BLOCK = 128


def conv_nd(x: np.ndarray, w: np.ndarray, strides, pads, dil, group: int, out_sp) -> np.ndarray:
    """Grouped N-d convolution without bias; x [N,C,*S], w [O,C/g,*K]; float64 or int64 arithmetic.

    As im2col and one matrix product per group. Integers are multiplied in float64 (BLAS) when no sum can reach
    2^53 (max |x| * max |w| * taps per output), which makes every partial sum exact in any order, so the result
    equals the int64 one; otherwise in int64. Without groups, int8 products are summed exactly in float32 over blocks
    of columns whose sums stay below 2^24 (sgemm, half the bytes of float64), the blocks then added in float64.
    Without groups the columns are built channels-last ([tap][channel],
    weights reordered to match), which copies the input once per tap in long runs (measured: the 2.27 GMAC CNN of
    bench/buildtime.py, 16 samples: 37.2 -> 23.7 CPU s for the whole build)."""
    n, c = x.shape[:2]
    o, kernel = w.shape[0], w.shape[2:]
    taps, pixels, cg, og = math.prod(kernel), math.prod(out_sp), c // group, o // group
    integer = np.issubdtype(x.dtype, np.integer)
    step = int(np.abs(x).max(initial=0)) * int(np.abs(w).max(initial=0)) if integer else 0  # largest product
    exact = not integer or step * cg * taps < EXACT_FLOAT
    acc_type = np.float64 if exact else np.int64
    if group == 1:
        block = (EXACT_FLOAT32 - 1) // max(step, 1) if integer else 0  # columns whose sums float32 holds exactly
        col_type = np.float32 if exact and block >= min(MIN_BLOCK, taps * c) else acc_type
        xl = np.moveaxis(x, 1, -1).astype(col_type)  # channels last
        cols = np.empty((n, *out_sp, taps, c), col_type)
        for t, (_, win) in enumerate(windows(xl, kernel, strides, pads, dil, out_sp, 0, channels_last=True)):
            cols[..., t, :] = win
        cols = cols.reshape(n * pixels, taps * c)
        wl = np.moveaxis(w, 1, -1).reshape(o, taps * c).astype(col_type).T  # [tap][channel] x [O]
        if col_type == np.float32:  # exact integer sums per block of columns, the blocks added in float64
            y = sum((cols[:, k:k + block] @ wl[k:k + block]).astype(np.float64) for k in range(0, taps * c, block))
        else:
            y = cols @ wl
        y = np.moveaxis(y.reshape((n, *out_sp, o)), -1, 1)
        return np.ascontiguousarray(y).astype(np.int64) if integer else np.ascontiguousarray(y)
    cols = np.stack([win for _, win in windows(x.astype(acc_type), kernel, strides, pads, dil, out_sp, 0)], axis=2)
    cols = cols.reshape(n, group, cg, taps, pixels).transpose(1, 0, 4, 2, 3).reshape(group, n * pixels, cg * taps)
    y = np.matmul(cols, w.reshape(group, og, cg * taps).astype(acc_type).transpose(0, 2, 1))  # [g, N*P, O/g]
    y = y.reshape(group, n, pixels, og).transpose(1, 0, 3, 2).reshape((n, o) + tuple(out_sp))
    return y.astype(np.int64) if integer else y


def conv_params(name: str, g: Graph, x: str, y: str, kernel, strides, pads, dil, groups: int = 1) -> Struct:
    """ec_conv_params for a 1-D (H = 1) or 2-D op on channels-last buffers."""
    xs, ys = g.shape(x), g.shape(y)
    if len(kernel) == 1:
        xs, ys = xs[:2] + (1,) + xs[2:], ys[:2] + (1,) + ys[2:]
        kernel, strides, dil = (1,) + tuple(kernel), [1] + list(strides), [1] + list(dil)
        pads = [0, pads[0], 0, pads[1]]
    return Struct(f"p_{name}", "ec_conv_params", {
        "batch": xs[0], "in_h": xs[2], "in_w": xs[3], "in_c": xs[1],
        "out_h": ys[2], "out_w": ys[3], "out_c": ys[1],
        "k_h": kernel[0], "k_w": kernel[1], "stride_h": strides[0], "stride_w": strides[1],
        "dil_h": dil[0], "dil_w": dil[1], "pad_top": pads[0], "pad_left": pads[1], "groups": groups,
    })


def channels_last(rank: int) -> tuple[int, ...]:
    return (0,) + tuple(range(2, rank)) + (1,)


def logical_strides(t: Tensor) -> list[int]:
    """Element strides of each logical dimension in t's storage (storage must be a pure permutation)."""
    assert t.view is None or tuple(t.view) == tuple(t.shape), f"{t.name} has a reshaped storage"
    perm = t.storage_perm
    phys = [t.shape[p] for p in perm]
    st = [0] * len(perm)
    acc = 1
    for k in range(len(perm) - 1, -1, -1):
        st[perm[k]] = acc
        acc *= phys[k]
    return st


def broadcast_struct(name: str, out: Tensor, ins: list[Tensor]) -> Struct:
    """ec_broadcast_params: iterate `out` in its storage order; inputs broadcast with ONNX rules (stride 0)."""
    rank = len(out.shape)
    if rank > MAX_DIMS:
        raise ValueError(f"{out.name}: rank {rank} exceeds {MAX_DIMS}")
    perm = out.storage_perm
    out_shape = [out.shape[p] for p in perm]
    strides = []
    for t in ins[:2]:
        shape = (1,) * (rank - len(t.shape)) + tuple(t.shape)
        st = [0] * (rank - len(t.shape)) + logical_strides(t)
        st = [0 if shape[d] == 1 and out.shape[d] != 1 else st[d] for d in range(rank)]
        strides.append([st[p] for p in perm])
    while len(strides) < 2:
        strides.append([0] * rank)
    pad = MAX_DIMS - rank
    return Struct(f"bp_{name}", "ec_broadcast_params", {
        "out_shape": [1] * pad + out_shape,
        "a_strides": [0] * pad + strides[0],
        "b_strides": [0] * pad + strides[1],
    })


def axis_split(t: Tensor, axis: int) -> tuple[int, int, int]:
    """(outer, n, inner) of logical `axis` in t's storage order."""
    perm = t.storage_perm
    phys = [t.shape[p] for p in perm]
    k = perm.index(axis)
    return int(np.prod(phys[:k], dtype=np.int64)), phys[k], int(np.prod(phys[k + 1:], dtype=np.int64))


def clamp_i32(a: np.ndarray) -> np.ndarray:
    return np.clip(a, -INT32_MAX - 1, INT32_MAX)
