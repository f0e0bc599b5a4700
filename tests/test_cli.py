"""The command line on the happy path: build, run, validate (table, JSON, failure exit code), targets."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from helpers import HAVE_ARM

from edgec import validate as validate_module
from edgec.cli import main
from edgec.examples import convnet, sample_inputs


@pytest.fixture
def convnet_files(tmp_path):
    model = convnet()
    path = tmp_path / "convnet.onnx"
    onnx.save(model, path)
    np.savez(tmp_path / "calib.npz", **sample_inputs(model, 16, seed=1))
    np.savez(tmp_path / "inputs.npz", **sample_inputs(model, 4, seed=2))
    return path, tmp_path / "calib.npz", tmp_path / "inputs.npz"


@pytest.mark.parametrize("target", ["host", pytest.param("cortex-m7", marks=pytest.mark.skipif(
    not HAVE_ARM, reason="needs arm-none-eabi-gcc and qemu-system-arm"))])
def test_build_then_run(convnet_files, tmp_path, capsys, target):
    model, calib, inputs = convnet_files
    out = tmp_path / "b"
    assert main(["build", str(model), "--target", target, "--quantize", "int8", "--calib", str(calib),
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    # the portable kernels on the host, the DSP-extension kernels on the Cortex-M7
    kernels = (["ec_conv2d_s8", "ec_fully_connected_s8"] if target == "host" else
               ["ec_conv2d_gather_s8", "ec_fully_connected_block4_s8"])
    assert "arena lower bound" in printed and all(k in printed for k in kernels)
    header = (out / "convnet.h").read_text()
    assert "int convnet_run(const void *const inputs[], void *const outputs[]);" in header
    assert sorted(p.name for p in (out / "runtime").glob("*.c")) == [f"{k}.c" for k in kernels]  # only those used
    assert main(["run", str(out), "--inputs", str(inputs), "--output", str(tmp_path / "o.npz")]) == 0
    got = np.load(tmp_path / "o.npz")["output"]
    sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    x = np.load(inputs)["input"]
    want = np.stack([sess.run(None, {"input": x[i]})[0] for i in range(len(x))])
    assert got.shape == want.shape
    assert np.abs(got - want).max() < 0.1 * np.abs(want).max()  # int8 noise, calibrated on 16 samples


def test_validate_json_keys(convnet_files, capsys):
    model, calib, inputs = convnet_files
    code = main(["validate", str(model), "--quantize", "int8", "--calib", str(calib), "--inputs", str(inputs),
                 "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    for key in ("max_abs_err", "mean_abs_err", "cosine", "sqnr_db", "top1_agreement", "bitexact_vs_reference",
                "flash_bytes", "ram_bytes", "tensor_ram_bytes", "arena_bytes", "arena_lower_bound_bytes",
                "schedule", "instructions", "macs", "params"):
        assert key in report, key
    # the int8 input and output live in the arena: it holds every tensor byte (the input with the first layer's output)
    assert report["tensor_ram_bytes"] == report["arena_bytes"] >= report["arena_lower_bound_bytes"] > 28 * 28
    assert report["bitexact_vs_reference"] == 1.0
    assert report["macs"] == 28 * 28 * 4 * 9 + 28 * 28 * 8 * 36 + 8 * 28 * 28 * 10


def test_validate_fails_when_not_bitexact(convnet_files, capsys, monkeypatch):
    model, calib, inputs = convnet_files
    real = validate_module.reference_outputs

    def off_by_one(g, samples):
        return [{k: (v.astype(np.int16) + 1).clip(-128, 127).astype(np.int8) for k, v in o.items()}
                for o in real(g, samples)]

    monkeypatch.setattr("edgec.validate.reference_outputs", off_by_one)
    code = main(["validate", str(model), "--quantize", "int8", "--calib", str(calib), "--inputs", str(inputs)])
    out = capsys.readouterr().out
    assert code == 1 and "FAIL" in out


def test_validate_reports_clipped_inputs(convnet_files, tmp_path, capsys):
    """Test inputs beyond the calibrated input range are clipped by the input's quantization: validate counts them
    exactly and says so; --input-range covering them makes the share 0."""
    model, calib, inputs = convnet_files
    x = np.load(inputs)["input"].copy()  # uniform [0, 1), like the calibration samples
    x.reshape(len(x), -1)[:, :7] = 3.0  # 7 of each sample's 784 values far above every calibration value
    wide = tmp_path / "wide.npz"
    np.savez(wide, input=x)
    argv = ["validate", str(model), "--quantize", "int8", "--calib", str(calib), "--inputs", str(wide), "--json"]
    assert main(argv) == 0
    printed = capsys.readouterr()
    report = json.loads(printed.out)
    assert report["input_clipped_share"] == 7 / 784 and report["bitexact_vs_reference"] == 1.0
    assert "0.89% of the values of input 'input'" in printed.err and "--input-range input=LO,HI" in printed.err
    assert main([*argv, "--input-range", "input=0,3"]) == 0
    printed = capsys.readouterr()
    assert json.loads(printed.out)["input_clipped_share"] == 0.0 and "warning" not in printed.err


def test_input_range_sets_the_input_quantization(convnet_files, tmp_path, capsys):
    from edgec.quantize import affine_params, int16_params

    model, calib, _ = convnet_files
    for scheme, params in (("int8", affine_params), ("int16", int16_params)):
        out = tmp_path / scheme
        assert main(["build", str(model), "--quantize", scheme, "--calib", str(calib), "--input-range",
                     "input=-2,6", "--out", str(out)]) == 0
        meta = json.loads((out / "edgec.json").read_text())
        scale, zp = params(-2.0, 6.0)
        assert (meta["inputs"][0]["scale"], meta["inputs"][0]["zero_point"]) == (scale, zp), scheme
        ctype, low = {"int8": ("int8_t", -128), "int16": ("int16_t", -32768)}[scheme]
        assert f"input 'input'      {ctype}, scale {scale:.6g}, zero point {zp}: represents " \
               f"[{(low - zp) * scale:.6g}," in capsys.readouterr().out


def test_targets_lists_host_and_m7(capsys):
    assert main(["targets"]) == 0
    out = capsys.readouterr().out
    assert "host" in out and "cortex-m7" in out and "mps2-an500" in out
