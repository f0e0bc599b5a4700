"""Per-layer instruction profiles (edgec profile) and per-layer divergence from the integer reference (tensor
dump builds), on the host and in QEMU."""

from __future__ import annotations

import json
import re
import subprocess

import numpy as np
import onnx
import pytest
from helpers import make_model, needs_target, random_feeds
from onnx import helper

from edgec.build import BuildOptions, build, compile_build
from edgec.cli import main
from edgec.profile import RETURN_ROW, divergence, profile
from edgec.runner import run_build
from edgec.target import load_target


def small_model() -> onnx.ModelProto:
    """Conv+Relu, depthwise Conv, residual Add, MaxPool, Flatten (no code), Gemm: 1x3x8x8 -> 5."""
    rng = np.random.default_rng(7)

    def w(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.4).astype(np.float32)

    nodes = [helper.make_node("Conv", ["input", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1], group=8, name="dw2"),
             helper.make_node("Add", ["c2", "r1"], ["a2"], name="add2"),
             helper.make_node("MaxPool", ["a2"], ["p3"], kernel_shape=[2, 2], strides=[2, 2], name="pool3"),
             helper.make_node("Flatten", ["p3"], ["f3"], name="flatten3"),
             helper.make_node("Gemm", ["f3", "w4", "b4"], ["output"], transB=1, name="fc4")]
    inits = {"w1": w(8, 3, 3, 3), "b1": w(8), "w2": w(8, 1, 3, 3), "b2": w(8), "w4": w(5, 128), "b4": w(5)}
    return make_model(nodes, {"input": [1, 3, 8, 8]}, {"output": [1, 5]}, inits)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("profile")
    model = small_model()
    onnx.save(model, tmp / "m.onnx")
    rng = np.random.default_rng(0)
    calib = [random_feeds(model, rng) for _ in range(16)]
    np.savez(tmp / "calib.npz", input=np.stack([c["input"] for c in calib]))
    samples = [random_feeds(model, rng) for _ in range(2)]
    return tmp, samples


def _opts(tmp, target: str, **kw) -> BuildOptions:
    return BuildOptions(tmp / "m.onnx", target=target, quantize="int8", calib=tmp / "calib.npz", **kw)


@pytest.mark.parametrize("target", [pytest.param(t, marks=needs_target(t))
                                    for t in ("cortex-m7", "cortex-m55", "cortex-a53")])
def test_profile_total_is_the_whole_inference_count(files, target, tmp_path):
    tmp, samples = files
    out, _, _ = build(_opts(tmp, target, out=tmp_path / "normal"))
    normal_run = run_build(out, samples)
    normal = normal_run.instructions
    # sample 0 twice: the per-layer counts repeat exactly
    p = profile(_opts(tmp, target, out=tmp_path / "profile"), [samples[0], samples[0], samples[1]])
    # the profiling build runs the normal build's code: the same C, the same bytes of the run function (on
    # Cortex-M its kernel calls are redirected to timing wrappers through relocations)
    assert (out / "m.c").read_text() == (tmp_path / "profile" / "m.c").read_text()
    code = _run_function_code(target, out, tmp_path)
    assert len(code) > 50 and code == _run_function_code(target, tmp_path / "profile", tmp_path)
    assert p["measured"]
    profiled_run = run_build(tmp_path / "profile", samples)  # the wrappers pass the kernels' arguments intact
    assert all(np.array_equal(a["output"], b["output"]) for a, b in zip(profiled_run.raw, normal_run.raw))
    assert p["totals"] == [normal[0], normal[0], normal[1]]
    assert p["per_sample"][0] == p["per_sample"][1]
    rows = {r["node"]: r for r in p["rows"]}
    assert p["total"]["instructions"] == normal[0] == sum(r["instructions"] for r in p["rows"])
    assert rows["flatten3"]["instructions"] == 0 and rows["flatten3"]["kernel"] == "-"  # a Reshape: no code
    for name in ("conv1", "dw2", "add2", "pool3", "fc4"):
        assert rows[name]["instructions"] > 50
    assert 0 < rows[RETURN_ROW]["instructions"] < 20  # the run function's epilogue
    assert rows["conv1"]["macs"] == 8 * 8 * 8 * 27 and rows["fc4"]["macs"] == 5 * 128
    assert rows["fc4"]["weight_bytes"] >= 5 * 128 and p["total"]["weight_bytes"] == sum(
        r["weight_bytes"] for r in p["rows"])
    if target.startswith("cortex-m"):
        nm = load_target(target).cc.replace("gcc", "nm")
        symbols = subprocess.run([nm, str(tmp_path / "profile" / "harness" / "obj" / "m.o")], capture_output=True,
                                 text=True, check=True).stdout
        assert "U edgec_prof_ec_fully_connected" in symbols and " ec_fully_connected" not in symbols


def _run_function_code(target: str, build_dir, tmp_path) -> bytes:
    out = tmp_path / f"{build_dir.name}.bin"
    objcopy = load_target(target).cc.replace("gcc", "objcopy")
    subprocess.run([objcopy, "-O", "binary", "-j", ".text.m_run", str(build_dir / "harness" / "obj" / "m.o"), str(out)],
                   check=True)
    return out.read_bytes()


def test_dump_build_only_adds_hooks_between_layers(files):
    tmp, _ = files
    normal, meta, _ = build(_opts(tmp, "host", out=tmp / "n-host"))
    dump, _, _ = build(_opts(tmp, "host", out=tmp / "d-host", instrument="dump"))
    text, dumped = (normal / "m.c").read_text(), (dump / "m.c").read_text()
    assert "dump_hook" not in text
    assert dumped.count("if (m_dump_hook) m_dump_hook(") == len(meta["layers"])

    def body(c: str) -> list[str]:  # the run function without the hooks' lines
        return [ln for ln in c[c.index("int m_run("):].splitlines()
                if "dump_hook" not in ln and "tensor dump:" not in ln]
    assert body(dumped) == body(text)


def _corrupt_bias(build_dir, layer: str) -> None:
    """Add 1000 to the first int32 of the layer's bias array in the emitted C."""
    c = build_dir / "m.c"
    text = c.read_text()
    pattern = re.compile(rf"(static const int32_t b_{layer}\[\d+\] EC_FLASH = {{\s*)(-?\d+)")
    assert pattern.search(text), f"no bias array for {layer}"
    c.write_text(pattern.sub(lambda m: f"{m.group(1)}{int(m.group(2)) + 1000}", text, count=1))


@pytest.mark.parametrize("target", ["host", pytest.param("cortex-m7", marks=needs_target("cortex-m7")),
                                    pytest.param("cortex-a53", marks=needs_target("cortex-a53"))])
def test_divergence_names_the_corrupted_layer(files, target):
    tmp, samples = files
    out, meta, g = build(_opts(tmp, target, out=tmp / f"dump-{target}", instrument="dump"))
    clean = divergence(g, run_build(out, samples).tensors, samples)
    assert clean["first"] is None and all(x["values"] > 0 for x in clean["layers"])
    _corrupt_bias(out, "dw2")
    compile_build(out, meta)
    d = divergence(g, run_build(out, samples).tensors, samples)
    assert d["first"]["node"] == "dw2"
    assert 0 < d["first"]["differing"] <= 2 * 64  # channel 0 of an 8x8x8 output, two samples
    assert d["first"]["max_abs_diff_lsb"] > 0
    at = [x["node"] for x in d["layers"]].index("dw2")
    assert at >= 1 and all(x["differing"] == 0 for x in d["layers"][:at])  # the layers before are untouched


@needs_target("cortex-a53")
def test_profile_and_validate_per_layer_commands(files, capsys):
    tmp, samples = files
    np.savez(tmp / "inputs.npz", input=np.stack([s["input"] for s in samples]))
    base = [str(tmp / "m.onnx"), "--quantize", "int8", "--calib", str(tmp / "calib.npz")]
    assert main(["profile", *base, "--target", "host", "--json"]) == 0
    p = json.loads(capsys.readouterr().out)
    assert not p["measured"] and p["total"]["instructions"] is None and p["total"]["macs"] > 0
    assert main(["profile", *base, "--target", "host"]) == 0
    assert "not measured on the host" in capsys.readouterr().out
    assert main(["validate", *base, "--target", "cortex-a53", "--inputs", str(tmp / "inputs.npz"),
                 "--per-layer"]) == 0
    out = capsys.readouterr().out
    total = int(re.search(r"^  instructions\s+([\d,]+)$", out, re.M).group(1).replace(",", ""))
    row = re.search(r"^  total\s.*$", out, re.M).group(0).split()
    assert int(row[4].replace(",", "")) == total  # the profile's total row is the whole inference
    assert "every layer's output on cortex-a53 equals the integer reference" in out and "PASS" in out
