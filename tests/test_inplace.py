"""In-place execution: the shift rule of windowed kernels (simulated on a shared buffer), the planner's merges, and
random graphs (residuals, concat, depthwise stacks) built with outputs written over dead inputs, bit-exact with the
integer reference on the host and on Cortex-M7."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import ConvGraph, assert_bitexact, build_and_run, make_model, needs_target
from onnx import helper

from edgec.codegen.memory import Step, plan_memory
from edgec.inplace import window_shift


def _geometry(h, w, cin, cout, k, stride, pad):
    out_h, out_w = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    return {"in_h": h, "in_w": w, "in_c": cin, "out_h": out_h, "out_w": out_w, "out_c": cout, "k_h": k, "k_w": k,
            "stride_h": stride, "stride_w": stride, "pad_top": pad, "pad_left": pad}


def _convolve_in_place(p: dict, x: np.ndarray, w: np.ndarray, group: int, shift: int) -> np.ndarray:
    """A convolution that reads its input from and writes its output to one shared buffer, the output `shift`
    elements before the input, pixel by pixel in raster order: the windows of `group` pixels read, then the
    pixels written (the order of the kernels in toolchain/inplace.py)."""
    out_px = p["out_c"]
    lead = max(shift, 0)
    buf = np.full(lead + max(x.size, p["out_h"] * p["out_w"] * out_px - shift) + 8, -999, np.int64)
    buf[lead:lead + x.size] = x.ravel()
    n = p["out_h"] * p["out_w"]
    for start in range(0, n, group):
        results = []
        for q in range(start, min(start + group, n)):
            oy, ox = divmod(q, p["out_w"])
            acc = np.zeros(out_px, np.int64)
            for ky in range(p["k_h"]):
                for kx in range(p["k_w"]):
                    iy, ix = oy * p["stride_h"] - p["pad_top"] + ky, ox * p["stride_w"] - p["pad_left"] + kx
                    if 0 <= iy < p["in_h"] and 0 <= ix < p["in_w"]:
                        at = lead + (iy * p["in_w"] + ix) * p["in_c"]
                        acc += w[:, ky, kx, :] @ buf[at:at + p["in_c"]]
            results.append((q, acc))
        for q, acc in results:
            at = lead - shift + q * out_px
            buf[at:at + out_px] = acc
    return buf[lead - shift:lead - shift + n * out_px]


@pytest.mark.parametrize("h, w, cin, cout, k, stride, pad", [
    (6, 7, 4, 4, 3, 1, 1), (6, 7, 3, 8, 3, 1, 1), (8, 8, 8, 2, 3, 1, 1), (9, 8, 4, 4, 3, 2, 1), (7, 7, 2, 6, 5, 1, 2),
    (5, 6, 4, 4, 1, 1, 0), (10, 4, 1, 4, 3, 2, 0)])
@pytest.mark.parametrize("group", [1, 2])
def test_window_shift_is_safe(h, w, cin, cout, k, stride, pad, group):
    p = _geometry(h, w, cin, cout, k, stride, pad)
    rng = np.random.default_rng(h * w + cin)
    x = rng.integers(-128, 128, (h, w, cin))
    weights = rng.integers(-128, 128, (cout, k, k, cin))
    shift = window_shift(p, group)
    want = _convolve_in_place(p, x, weights, group, 10**6)  # far apart: an ordinary convolution
    np.testing.assert_array_equal(_convolve_in_place(p, x, weights, group, shift), want)
    if k > 1 and stride == 1:  # the simulation sees the hazard: exactly in place, outputs clobber inputs still needed
        assert not np.array_equal(_convolve_in_place(p, x, weights, group, 0), want)


def check_plan(plan, steps: list[Step], sizes: dict[str, int], inputs: list[str], outputs: list[str]) -> None:
    """No two tensors alive at the same step share a byte, except a step's output and the input it is written over
    (which dies there); model outputs are never written over."""
    first = {t: 0 for t in inputs}
    last = {t: 0 for t in inputs}
    for i, step in enumerate(steps):
        for t in step.inputs:
            last[t] = i
        for t in step.outputs:
            first[t], last[t] = i, i
    for t in outputs:
        last[t] = len(steps) - 1
    assert not set(plan.inplace.values()) & set(outputs)
    assert all(plan.offset(t) % 16 == 0 for t in sizes)  # kernels load words; shifts are rounded up
    for i in range(len(steps)):
        alive = [t for t in first if first[t] <= i <= last[t]]
        for a in alive:
            for b in alive:
                if a < b and plan.inplace.get(a) != b and plan.inplace.get(b) != a:
                    oa, ob = plan.offset(a), plan.offset(b)
                    assert not (oa < ob + sizes[b] and ob < oa + sizes[a]), (i, a, b)
        for out, src in plan.inplace.items():
            assert last[src] == [j for j, s in enumerate(steps) if out in s.outputs][0]  # it dies where out is born


def test_planner_writes_in_place_only_over_dead_inputs():
    # a -> b -> c (not over b: the Add reads b again) -> d = b + c -> out (a model output) -> tail
    sizes = {"in": 64, "a": 64, "b": 64, "c": 64, "d": 64, "out": 64, "tail": 64}
    steps = [Step(["in"], ["a"]), Step(["a"], ["b"], inplace=[("a", 16)]), Step(["b"], ["c"], inplace=[("b", 16)]),
             Step(["b", "c"], ["d"], inplace=[("c", 0), ("b", 0)]), Step(["d"], ["out"], inplace=[("d", 0)]),
             Step(["out"], ["tail"], inplace=[("out", 0)])]
    plan = plan_memory(steps, sizes, inputs=["in"], outputs=["out", "tail"])
    check_plan(plan, steps, sizes, ["in"], ["out", "tail"])
    assert "c" not in plan.inplace and "tail" not in plan.inplace
    assert plan.inplace["d"] in ("b", "c") and plan.offset("d") == plan.offset(plan.inplace["d"])
    assert plan.arena_bytes == 2 * 64  # without in place: b, c and d alive together, 192


@pytest.mark.parametrize("seed", range(20))
def test_planner_in_place_on_random_chains(seed):
    rng = np.random.default_rng(seed)
    names = ["in"]
    steps, sizes = [], {"in": int(rng.integers(1, 9)) * 16}
    for i in range(12):
        reads = [names[-1]] + ([str(rng.choice(names))] if rng.random() < 0.3 else [])
        out = f"t{i}"
        sizes[out] = int(rng.integers(1, 9)) * 16
        cands = [(r, int(rng.choice([0, 5, 16, 40]))) for r in dict.fromkeys(reads)]
        steps.append(Step(reads, [out], scratch=int(rng.integers(0, 3)) * 16, inplace=cands))
        names.append(out)
    outputs = [names[-1], names[int(rng.integers(1, len(names) - 1))]]
    plan = plan_memory(steps, sizes, inputs=["in"], outputs=outputs)
    check_plan(plan, steps, sizes, ["in"], outputs)
    plain = plan_memory([Step(s.inputs, s.outputs, scratch=s.scratch) for s in steps], sizes, inputs=["in"],
                        outputs=outputs)
    assert plan.arena_bytes <= plain.arena_bytes


def test_planner_keeps_separate_buffers_when_in_place_would_cost_more():
    # A small output written over a large input would keep the large buffer alive for the output's whole life.
    steps = [Step(["in"], ["big"]), Step(["big"], ["small"], inplace=[("big", 0)]),
             Step(["small"], ["x"], scratch=900), Step(["x"], ["out"])]
    sizes = {"in": 16, "big": 1024, "small": 16, "x": 16, "out": 16}
    plan = plan_memory(steps, sizes, inputs=["in"], outputs=["out"])
    assert plan.inplace == {}
    assert plan.arena_bytes == 1024 + 16


# ---- random graphs through the whole build ----

def _random_graph(seed: int, blocks: list[str] | None = None, channels: int | None = None,
                  size: tuple[int, int] | None = None):
    """Blocks of 3x3 convolutions, residual Adds, depthwise stacks, 1x1 convolutions and a concat, NCHW (a residual
    block and 3 random ones unless given)."""
    rng = np.random.default_rng(seed)
    c, h, w = int(rng.choice([4, 6, 8])), int(rng.integers(6, 11)), int(rng.integers(6, 11))
    c = channels or c
    h, w = size or (h, w)
    graph = ConvGraph(rng)
    name, conv, nodes, inits = graph.name, graph.conv, graph.nodes, graph.inits

    x = conv("x", c, c)
    for block in blocks or ["res", *rng.choice(["res", "dw", "pw", "concat", "conv"], size=3)]:
        if block == "res":
            y = conv(conv(x, c, c), c, c, relu=False)
            s = name("add")
            nodes.append(helper.make_node("Add", [x, y], [s]))
            x = name("relu")
            nodes.append(helper.make_node("Relu", [s], [x]))
        elif block == "dw":
            x = conv(conv(x, c, c, group=c), c, c, group=c)
        elif block == "pw":
            x = conv(x, c, c, size=1)
        elif block == "concat":
            a, b = conv(x, c, c // 2), conv(x, c, c // 2, size=1)
            y = name("cat")
            nodes.append(helper.make_node("Concat", [a, b], [y], axis=1))
            x = y
        else:
            x = conv(x, c, c)
    nodes.append(helper.make_node("Identity", [x], ["y"]))
    return make_model(nodes, {"x": [1, c, h, w]}, {"y": None}, inits)


# host and Cortex-M7 (the portable and DSP convolutions written in place) with 4 graphs each; the other kernel
# families (ARMv6-M, Helium, NEON: their Adds written in place) with 2
GRAPH_CASES = [(t, seed) for t in ("host", "cortex-m7") for seed in range(4)] + \
    [(t, seed) for t in ("cortex-m0plus", "cortex-m55", "cortex-a53") for seed in range(2)]


@pytest.mark.parametrize("target, seed", [pytest.param(t, s, marks=needs_target(t)) if t != "host" else (t, s)
                                          for t, s in GRAPH_CASES])
def test_random_graphs_in_place_are_bitexact(tmp_path, target, seed):
    samples, res, g, _ = build_and_run(_random_graph(seed), tmp_path, quantize="int8", target=target, n_samples=2,
                                       n_calib=8, seed=seed)
    assert_bitexact(g, samples, res)
    layers = json.loads((tmp_path / "build" / "edgec.json").read_text())["layers"]
    assert any("inplace" in layer for layer in layers)  # some output was written over its input


@pytest.mark.parametrize("target", ["host", pytest.param("cortex-m7", marks=needs_target("cortex-m7"))])
@pytest.mark.parametrize("channels", [6, 8])  # odd channel pairs for the DSP kernels
def test_depthwise_stack_in_place_is_bitexact(tmp_path, target, channels):
    # tall images: a whole chain in place drifts by each layer's shift (a few rows' worth), far less than a tensor.
    # dw, pw, dw, pw (dscnn_kws's pattern): with 6 channels the planner writes ec_depthwise_conv2d_3x3_planar_s8's
    # output over its input on Cortex-M7 (its scratch, 6 in_c int16 per plane column, leaves nothing to gain in place
    # in a dw, dw, pw, dw chain there)
    model = _random_graph(7, ["dw", "pw", "dw", "pw"], channels, (32, 6))
    samples, res, g, _ = build_and_run(model, tmp_path, quantize="int8", target=target, n_samples=2, n_calib=8)
    assert_bitexact(g, samples, res)
    layers = json.loads((tmp_path / "build" / "edgec.json").read_text())["layers"]
    if target == "cortex-m7" and channels == 6:  # planned in place there (checked); 8 channels: bit-exactness only
        assert any("inplace" in layer and "depthwise" in layer["kernels"][0] for layer in layers)


@pytest.mark.parametrize("channels", [pytest.param(c, marks=needs_target("cortex-m55")) for c in (5, 16)])
def test_depthwise_plane_in_place_is_bitexact(tmp_path, monkeypatch, channels):
    """ec_depthwise_conv2d_plane_mve_s8 (forced wherever it fits) writing its output over its input on cortex-m55."""
    import edgec.ops.conv

    cost = edgec.ops.conv.depthwise_plane_mve_cost
    monkeypatch.setattr(edgec.ops.conv, "depthwise_plane_mve_cost",
                        lambda p, t: None if cost(p, t) is None else cost(p, t) // 100)
    model = _random_graph(7, ["dw", "dw", "pw", "dw"], channels, (32, 6))
    samples, res, g, _ = build_and_run(model, tmp_path, quantize="int8", target="cortex-m55", n_samples=2,
                                       n_calib=8)
    assert_bitexact(g, samples, res)
    layers = json.loads((tmp_path / "build" / "edgec.json").read_text())["layers"]
    assert any("inplace" in layer and layer["kernels"][0] == "ec_depthwise_conv2d_plane_mve_s8" for layer in layers)
