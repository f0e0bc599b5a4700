"""Schedules under --memory-budget: random graphs (residual Adds, depthwise stacks, strided convolutions, a concat)
built under several budgets run in row strips, bit-exact with the integer reference on the host, Cortex-M7, M55 and
A53 (int8; int16 and float32 on the host); a budget below the smallest schedule is a user error that says how much
it needs; a scratch placed over the input it expands."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import onnx
import pytest
from helpers import ConvGraph, assert_bitexact, assert_float_close, build_and_run, make_model, needs_target
from onnx import helper

from edgec.codegen.memory import Step, plan_memory
from edgec.errors import EdgecError


def _graph(seed: int, blocks: list[str]) -> onnx.ModelProto:
    """A 3x3 convolution on a 16 x 12 image, then the blocks, NCHW."""
    rng = np.random.default_rng(seed)
    c = 4
    graph = ConvGraph(rng)
    name, conv, nodes, inits = graph.name, graph.conv, graph.nodes, graph.inits

    x = conv("x", 3, c)
    for block in blocks:
        if block == "res":
            y = conv(conv(x, c, c), c, c, relu=False)
            s = name("add")
            nodes.append(helper.make_node("Add", [x, y], [s]))
            x = name("relu")
            nodes.append(helper.make_node("Relu", [s], [x]))
        elif block == "dw":
            x = conv(conv(x, c, c, group=c), c, 2 * c, size=1)
            c *= 2
        elif block == "s2":
            x = conv(x, c, c, stride=2)
        elif block == "concat":
            a, b = conv(x, c, c // 2), conv(x, c, c // 2, size=1)
            x = name("cat")
            nodes.append(helper.make_node("Concat", [a, b], [x], axis=1))
    nodes.append(helper.make_node("Identity", [x], ["y"]))
    return make_model(nodes, {"x": [1, 3, 16, 12]}, {"y": None}, inits)


GRAPHS = [["res", "s2", "dw"], ["dw", "dw", "s2", "res"], ["s2", "res", "concat"]]


def _least(tmp_path, model, target: str, seed: int) -> tuple[int, int]:
    """(the least tensor RAM a schedule reaches, layer by layer's): from the error for a 1-byte budget."""
    with pytest.raises(EdgecError, match="needs") as err:
        build_and_run(model, tmp_path / "least", quantize="int8", target=target, n_samples=1, n_calib=4, seed=seed,
                      memory_budget=1)
    least, layered = (int(x) for x in re.search(r"needs (\d+) bytes .*layer by layer: (\d+)", str(err.value)).groups())
    assert not (tmp_path / "least" / "build").exists()  # nothing written
    return least, layered


@pytest.mark.parametrize("seed, blocks", list(enumerate(GRAPHS)))
def test_random_graphs_under_budgets_are_bitexact(tmp_path, seed, blocks):
    model = _graph(seed, blocks)
    least, layered = _least(tmp_path, model, "host", seed)
    assert least < layered  # the first layers in strips need less than layer by layer
    for k, budget in enumerate(sorted({least, (least + layered) // 2})):
        samples, res, g, _ = build_and_run(model, tmp_path / str(k), quantize="int8", n_samples=2, n_calib=4,
                                           seed=seed, memory_budget=budget)
        assert_bitexact(g, samples, res)
        meta = json.loads((tmp_path / str(k) / "build" / "edgec.json").read_text())
        assert meta["tensor_ram_bytes"] <= budget
        assert meta["schedule"]["patch"] is not None and meta["schedule"]["extra_macs"] >= 0


@pytest.mark.parametrize("target", [pytest.param(t, marks=needs_target(t))
                                    for t in ("cortex-m7", "cortex-m55", "cortex-a53")])
def test_budget_on_arm_targets_is_bitexact(tmp_path, target):
    """The DSP, Helium and NEON kernels on strips."""
    model = _graph(0, GRAPHS[0])
    least, _ = _least(tmp_path, model, target, 0)
    samples, res, g, _ = build_and_run(model, tmp_path / "b", quantize="int8", target=target, n_samples=2,
                                       n_calib=4, memory_budget=least)
    assert_bitexact(g, samples, res)
    meta = json.loads((tmp_path / "b" / "build" / "edgec.json").read_text())
    assert meta["tensor_ram_bytes"] <= least and meta["schedule"]["patch"] is not None


def test_too_small_budget_is_a_user_error(tmp_path):
    path = tmp_path / "m.onnx"
    onnx.save(_graph(1, ["res"]), path)
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "edgec.cli", "build", str(path), "--quantize", "int8", "--calib",
                           "random", "--memory-budget", "1k", "-o", str(out)], capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert re.search(r"--memory-budget 1024: the smallest schedule edgec finds needs \d+ bytes", proc.stderr)
    assert "Traceback" not in proc.stderr and not out.exists()


def test_scratch_is_placed_over_the_input_it_expands():
    # a 640-byte input expanded into 1,280 bytes of scratch that starts 640 bytes before it, a 128-byte output
    steps = [Step(["in"], ["h"], scratch=1280, scratch_over=[("in", 640)]), Step(["h"], ["out"])]
    sizes = {"in": 640, "h": 128, "out": 128}
    plan = plan_memory(steps, sizes, inputs=["in"], outputs=["out"])
    assert plan.offset("in") - plan.offset("__scratch_0") == 640
    assert plan.arena_bytes == 1280 + 128
    kept = plan_memory([Step(["in"], ["h"], scratch=1280), Step(["h"], ["out"])], sizes, inputs=["in"],
                       outputs=["out"])
    assert kept.arena_bytes == 640 + 1280 + 128


@pytest.mark.parametrize("quantize", ["none", "int16"])
def test_float_and_int16_in_strips(tmp_path, quantize):
    model = _graph(1, GRAPHS[1])
    with pytest.raises(EdgecError, match="needs") as err:
        build_and_run(model, tmp_path / "least", quantize=quantize, n_samples=1, n_calib=4, memory_budget=1)
    least = int(re.search(r"needs (\d+) bytes", str(err.value)).group(1))
    samples, res, g, want = build_and_run(model, tmp_path / "b", quantize=quantize, n_samples=2, n_calib=4,
                                          memory_budget=least)
    if quantize == "none":
        assert_float_close(res, want)
    else:
        assert_bitexact(g, samples, res)
    assert json.loads((tmp_path / "b" / "build" / "edgec.json").read_text())["schedule"]["patch"] is not None


def test_budget_with_tensor_dumps_is_a_user_error(tmp_path):
    """A dump build (validate --per-layer) needs every layer's whole output: a budget with it is refused, and nothing
    is written."""
    with pytest.raises(EdgecError, match="validate --per-layer"):
        build_and_run(_graph(0, ["res"]), tmp_path, quantize="int8", n_samples=1, n_calib=4, memory_budget=1 << 20,
                      instrument="dump")
    assert not (tmp_path / "build").exists()
