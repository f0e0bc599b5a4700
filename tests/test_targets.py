"""Targets: the list, fits-or-refuses on the 16 KiB microbit board, --flash/--ram overrides."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from helpers import make_model, needs_target
from onnx import helper

from edgec.cli import main
from edgec.examples import convnet, simple_model

MICROBIT = "cortex-m0plus-microbit"


def cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def save(model: onnx.ModelProto, path) -> str:
    onnx.save(model, path)
    return str(path)


def big_gemm() -> onnx.ModelProto:
    """300 x 300 float weights: 360,000 bytes (and a bias), more than 256 KiB of flash; a tiny arena."""
    w = np.random.default_rng(0).standard_normal((300, 300)).astype(np.float32) * 0.05
    nodes = [helper.make_node("Gemm", ["input", "W"], ["output"], transB=1)]
    return make_model(nodes, {"input": [1, 300]}, {"output": [1, 300]}, {"W": w})


def wide_conv() -> onnx.ModelProto:
    """1x28x28 -> Conv(1, 16, 3, p1) -> Relu -> Linear(16 * 28 * 28, 10): 12,544 int8 activation bytes."""
    rng = np.random.default_rng(0)
    w = {"W1": (rng.standard_normal((16, 1, 3, 3)) * 0.3).astype(np.float32),
         "W2": (rng.standard_normal((10, 16 * 28 * 28)) * 0.01).astype(np.float32)}
    nodes = [helper.make_node("Conv", ["input", "W1"], ["c1"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"]), helper.make_node("Flatten", ["r1"], ["f"]),
             helper.make_node("Gemm", ["f", "W2"], ["output"], transB=1)]
    return make_model(nodes, {"input": [1, 1, 28, 28]}, {"output": [1, 10]}, w)


def host_meta(capsys, model: str, tmp_path) -> dict:
    out = tmp_path / f"host-{Path(model).stem}"
    assert cli(capsys, "build", model, "--out", out)[0] == 0
    return json.loads((out / "edgec.json").read_text())


def test_targets_are_listed_with_features(capsys):
    code, out, _ = cli(capsys, "targets")
    assert code == 0
    for name in ("host", "cortex-m0plus", MICROBIT, "cortex-m3", "cortex-m4", "cortex-m7", "cortex-m33",
                 "cortex-m55", "cortex-a53", "cortex-a7"):
        assert f"\n{name} " in f"\n{out}"
    assert "QEMU mps3-an547; flash 2048 KiB, RAM 512 KiB; features: fpu, dsp, mve" in out
    assert "qemu-aarch64 -cpu cortex-a53; no limits; features: neon, fpu" in out
    assert "QEMU microbit; flash 256 KiB, RAM 16 KiB" in out


@needs_target(MICROBIT)
def test_fits_or_refuses_on_microbit(capsys, tmp_path):
    small = save(simple_model(), tmp_path / "small.onnx")
    code, out, err = cli(capsys, "validate", small, "--target", MICROBIT, "--quantize", "int8", "--calib", "random",
                        "--json")
    report = json.loads(out)
    assert code == 0 and report["bitexact_vs_reference"] == 1.0 and report["instructions"] > 0

    big = save(convnet(), tmp_path / "convnet.onnx")
    arena = host_meta(capsys, big, tmp_path)["arena_bytes"]
    assert arena > 16384
    code, _, err = cli(capsys, "build", big, "--target", MICROBIT, "--out", tmp_path / "refused")
    assert code == 2 and err.startswith("edgec: error: ") and "Traceback" not in err
    assert f"does not fit {MICROBIT}: the arena needs {arena} bytes of RAM, {MICROBIT} has 16384 " \
           f"({arena - 16384} too many)" in err
    assert not (tmp_path / "refused").exists()

    # In int8 (its input and output in the arena, its second convolution written over the first's output) it fits.
    code, out, err = cli(capsys, "validate", big, "--target", MICROBIT, "--quantize", "int8", "--calib", "random",
                         "--json")
    assert code == 0 and json.loads(out)["tensor_ram_bytes"] < 8192

    # 16 channels: in int8 the arena passes the check, but the board has no room for the test harness beside it.
    wide = save(wide_conv(), tmp_path / "wide.onnx")
    code, _, err = cli(capsys, "build", wide, "--target", MICROBIT, "--quantize", "int8", "--calib", "random",
                       "--out",
                       tmp_path / "refused")
    assert code == 2 and "RAM overflow" in err and "(the model with the test harness)" in err
    assert not (tmp_path / "refused").exists()

    gemm = save(big_gemm(), tmp_path / "gemm.onnx")
    weights = host_meta(capsys, gemm, tmp_path)["weight_bytes"]
    assert weights > 262144
    code, _, err = cli(capsys, "build", gemm, "--target", MICROBIT, "--out", tmp_path / "refused")
    assert code == 2
    assert f"weights need {weights} bytes of flash, {MICROBIT} has 262144 ({weights - 262144} too many)" in err
    assert not (tmp_path / "refused").exists()


@needs_target("cortex-m0plus")
def test_flash_and_ram_options_override_the_limits(capsys, tmp_path):
    model = save(convnet(), tmp_path / "convnet.onnx")
    arena = host_meta(capsys, model, tmp_path)["arena_bytes"]
    code, _, err = cli(capsys, "build", model, "--target", "cortex-m0plus", "--out", tmp_path / "m0")
    assert code == 2 and f"the arena needs {arena} bytes of RAM, cortex-m0plus has 32768" in err

    code, out, err = cli(capsys, "validate", model, "--target", "cortex-m0plus", "--ram", "64k", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["max_abs_err"] < 1e-4 and report["instructions"] > 0

    # The arena alone fits, but not with the model's other static data and its stack (checked after the link).
    code, _, err = cli(capsys, "build", model, "--target", "cortex-m0plus", "--ram", str(arena), "--out",
                       tmp_path / "tight")
    assert code == 2 and "arena, static data and stack need" in err and f"cortex-m0plus has {arena} " in err
    assert not (tmp_path / "tight").exists()

    gemm = save(big_gemm(), tmp_path / "gemm.onnx")
    code, _, err = cli(capsys, "build", gemm, "--target", "cortex-m0plus", "--out", tmp_path / "g")
    assert code == 2 and "bytes of flash, cortex-m0plus has 262144" in err
    code, out, err = cli(capsys, "build", gemm, "--target", "cortex-m0plus", "--flash", "1M", "--out", tmp_path / "g")
    assert code == 0, err
    meta = json.loads((tmp_path / "g" / "edgec.json").read_text())
    assert meta["limits"] == {"flash_bytes": 1024 * 1024, "ram_bytes": 32768}
    assert meta["weight_bytes"] < meta["elf"]["model_flash"] < 1024 * 1024


@pytest.mark.parametrize("size", ["12q", "k", "0", "1.5m"])
def test_bad_sizes_are_usage_errors(capsys, tmp_path, size):
    with pytest.raises(SystemExit) as e:
        main(["build", str(tmp_path / "m.onnx"), "--target", "cortex-m0plus", "--ram", size])
    assert e.value.code == 2
    assert "is not a size in bytes" in capsys.readouterr().err


def test_int8_convolution_kernels_per_core(tmp_path):
    """Kernel choice on cores without the DSP extension follows the per-layer measurements in Conv.blocked: the
    blocked im2col kernels' plain C on the Cortex-M3 for all but depthwise layers, on the Cortex-M0+ only for a
    convolution with fewer than 4 input channels; the portable kernels on the host. (Compiling and running them is
    tested on every target with the MLPerf models in test_models.py.)"""
    from edgec.build import BuildOptions, lower_graph, prepare_graph, quantize_with
    from edgec.target import load_target

    rng = np.random.default_rng(0)
    inits = {"w1": rng.standard_normal((16, 1, 3, 3)), "w2": rng.standard_normal((16, 16, 3, 3)),
             "w3": rng.standard_normal((16, 1, 3, 3)), "w4": rng.standard_normal((8, 16, 1, 1))}
    nodes = [helper.make_node("Conv", ["input", "w1"], ["a"], pads=[1, 1, 1, 1]),
             helper.make_node("Conv", ["a", "w2"], ["b"], pads=[1, 1, 1, 1]),
             helper.make_node("Conv", ["b", "w3"], ["c"], pads=[1, 1, 1, 1], group=16),
             helper.make_node("Conv", ["c", "w4"], ["output"])]
    model = make_model(nodes, {"input": [1, 1, 8, 8]}, {"output": None},
                       {k: v.astype(np.float32) for k, v in inits.items()})
    path, calib = Path(save(model, tmp_path / "m.onnx")), tmp_path / "calib.npz"
    np.savez(calib, input=rng.standard_normal((4, 1, 1, 8, 8)).astype(np.float32))
    g = prepare_graph(path)
    quantize_with(g, BuildOptions(path, quantize="int8", calib=calib, calibration="minmax"))

    def kernels(target: str) -> list[str]:
        return [layer["kernels"][0] for layer in lower_graph(g, load_target(target))[2] if layer["op"] == "Conv"]

    assert kernels("cortex-m3") == ["ec_conv2d_im2col_s8", "ec_conv2d_im2col_s8", "ec_depthwise_conv2d_s8",
                                    "ec_conv2d_1x1_s8"]
    assert kernels("cortex-m0plus") == ["ec_conv2d_im2col_s8", "ec_conv2d_s8", "ec_depthwise_conv2d_s8",
                                        "ec_conv2d_s8"]
    assert kernels("host") == ["ec_conv2d_s8", "ec_conv2d_s8", "ec_depthwise_conv2d_s8", "ec_conv2d_s8"]
    assert kernels("cortex-m7") == ["ec_conv2d_gather_s8", "ec_conv2d_im2col_s8",  # 1 input channel: gathered
                                    "ec_depthwise_conv2d_3x3_planar_s8", "ec_conv2d_1x1_s8"]
