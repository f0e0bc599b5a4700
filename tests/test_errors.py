"""Bad input: one clear message naming the file/node/op, exit code 2, no traceback, no half-written output."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from helpers import HAVE_ARM, make_model, run_cli
from onnx import TensorProto, helper

from edgec.examples import simple_model


def assert_user_error(code: int, err: str, *needles: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err
    assert err.startswith("edgec: error: ")
    for needle in needles:
        assert needle in err, (needle, err)


@pytest.fixture
def simple(tmp_path):
    path = tmp_path / "simple.onnx"
    onnx.save(simple_model(), path)
    return path


def test_not_onnx(tmp_path, capsys):
    bad = tmp_path / "notes.onnx"
    bad.write_text("this is not a model\n" * 20)
    out = tmp_path / "out"
    code, err = run_cli(capsys, "build", bad, "--out", out)
    assert_user_error(code, err, str(bad))
    assert not out.exists()


def test_truncated_onnx(tmp_path, capsys, simple):
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(simple.read_bytes()[: simple.stat().st_size // 2])
    code, err = run_cli(capsys, "build", cut, "--out", tmp_path / "out")
    assert_user_error(code, err, str(cut))
    assert not (tmp_path / "out").exists()


def test_missing_file(tmp_path, capsys):
    code, err = run_cli(capsys, "build", tmp_path / "nope.onnx")
    assert_user_error(code, err, "nope.onnx", "no such file")


def test_unsupported_ops_listed_together(tmp_path, capsys):
    model = make_model([helper.make_node("Floor", ["input"], ["a"], name="my_floor"),
                        helper.make_node("Erf", ["a"], ["output"], name="my_erf")], {"input": [1, 4]},
                       {"output": [1, 4]})
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    code, err = run_cli(capsys, "build", path, "--out", tmp_path / "out")
    assert_user_error(code, err, "Floor (node 'my_floor')", "Erf (node 'my_erf')")
    assert not (tmp_path / "out").exists()


def dynamic_model():
    graph = helper.make_graph([helper.make_node("Relu", ["input"], ["output"])], "dyn",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 8])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 8])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_dynamic_shape_needs_input_shape(tmp_path, capsys):
    path = tmp_path / "dyn.onnx"
    onnx.save(dynamic_model(), path)
    code, err = run_cli(capsys, "build", path, "--out", tmp_path / "out")
    assert_user_error(code, err, "'input'", "--input-shape input=1,8")
    assert not (tmp_path / "out").exists()
    code, err = run_cli(capsys, "build", path, "--input-shape", "input=1,8", "--out", tmp_path / "out")
    assert code == 0, err
    assert (tmp_path / "out" / "edgec.json").is_file()


def test_bad_input_shape_spec(tmp_path, capsys):
    path = tmp_path / "dyn.onnx"
    onnx.save(dynamic_model(), path)
    code, err = run_cli(capsys, "build", path, "--input-shape", "input=1,x")
    assert_user_error(code, err, "--input-shape")
    code, err = run_cli(capsys, "build", path, "--input-shape", "other=1,8")
    assert_user_error(code, err, "'other'", "input")


@pytest.mark.parametrize("spec, needles", [
    ("input=1", ["--input-range 'input=1'", "NAME=LO,HI"]),
    ("input=2,-1", ["LO < HI"]),
    ("input=a,b", ["NAME=LO,HI"]),
    ("sensor=-1,1", ["--input-range sensor", "no such input", "input"]),
])
def test_bad_input_range(tmp_path, capsys, simple, spec, needles):
    code, err = run_cli(capsys, "build", simple, "--quantize", "int8", "--input-range", spec, "--out", tmp_path / "o")
    assert_user_error(code, err, *needles)
    assert not (tmp_path / "o").exists()


def test_input_range_needs_quantize(capsys, simple):
    code, err = run_cli(capsys, "build", simple, "--input-range", "input=-1,1")
    assert_user_error(code, err, "--input-range", "--quantize")


@pytest.mark.parametrize("data, needle", [
    ({"input": np.zeros((5, 1, 3), np.float32)}, "shape (5, 1, 3)"),
    ({"input": np.zeros((5, 1, 4), np.int32)}, "dtype int32"),
    ({"x": np.zeros((5, 1, 4), np.float32), "y": np.zeros((5, 1, 4), np.float32)}, "missing: input"),
])
def test_bad_calibration_data(tmp_path, capsys, simple, data, needle):
    calib = tmp_path / "calib.npz"
    np.savez(calib, **data)
    code, err = run_cli(capsys, "build", simple, "--quantize", "int8", "--calib", calib, "--out", tmp_path / "out")
    assert_user_error(code, err, str(calib), needle)
    assert not (tmp_path / "out").exists()


def test_calibration_file_not_npz(tmp_path, capsys, simple):
    calib = tmp_path / "calib.npz"
    calib.write_text("nope")
    code, err = run_cli(capsys, "build", simple, "--quantize", "int8", "--calib", calib)
    assert_user_error(code, err, str(calib))


def test_bad_validation_inputs(tmp_path, capsys, simple):
    inputs = tmp_path / "in.npz"
    np.savez(inputs, input=np.zeros((3, 7), np.float32))
    code, err = run_cli(capsys, "validate", simple, "--inputs", inputs)
    assert_user_error(code, err, str(inputs), "shape (3, 7)")


def test_unknown_target(capsys, simple):
    code, err = run_cli(capsys, "build", simple, "--target", "cortex-z9")
    assert_user_error(code, err, "cortex-z9", "cortex-m7")


def big_model():
    w = np.random.default_rng(0).standard_normal((600, 1024)).astype(np.float32)  # dense: no sparse kernel
    return make_model([helper.make_node("Gemm", ["input", "W"], ["output"], transB=1)], {"input": [1, 1024]},
                      {"output": [1, 600]}, {"W": w})


def test_model_too_big_for_target(tmp_path, capsys):
    path = tmp_path / "big.onnx"
    onnx.save(big_model(), path)
    out = tmp_path / "out"
    code, err = run_cli(capsys, "build", path, "--target", "cortex-m7", "--out", out)
    assert_user_error(code, err, "big.onnx", "bytes of flash", "too many", "--force")
    assert not out.exists()
    code, err = run_cli(capsys, "build", path, "--target", "cortex-m7", "--out", out, "--force")
    assert code == 0, err
    assert (out / "big.c").is_file() and not (out / "harness" / "firmware.elf").exists()


def test_missing_cross_compiler(tmp_path, capsys, simple, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    code, err = run_cli(capsys, "build", simple, "--target", "cortex-m7", "--out", tmp_path / "out")
    assert_user_error(code, err, "arm-none-eabi-gcc", "apt-get install")
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(not HAVE_ARM, reason="needs arm-none-eabi-gcc and qemu-system-arm")
def test_missing_qemu(tmp_path, capsys, simple, monkeypatch):
    out = tmp_path / "out"
    code, err = run_cli(capsys, "build", simple, "--target", "cortex-m7", "--out", out)
    assert code == 0, err
    inputs = tmp_path / "in.npz"
    np.savez(inputs, input=np.zeros((2, 1, 4), np.float32))
    monkeypatch.setenv("PATH", str(tmp_path))
    code, err = run_cli(capsys, "run", out, "--inputs", inputs, "--output", tmp_path / "o.npz")
    assert_user_error(code, err, "qemu-system-arm", "apt-get install")


def test_run_on_non_build_dir(tmp_path, capsys):
    inputs = tmp_path / "in.npz"
    np.savez(inputs, input=np.zeros((2, 1, 4), np.float32))
    code, err = run_cli(capsys, "run", tmp_path, "--inputs", inputs, "--output", tmp_path / "o.npz")
    assert_user_error(code, err, "not an edgec build directory")


def test_unsupported_form_names_the_reason(tmp_path, capsys):
    model = make_model([helper.make_node("MatMul", ["input", "y"], ["output"], name="mm")],
                       {"input": [1, 4], "y": [4, 3]}, {"output": [1, 3]})
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    code, err = run_cli(capsys, "build", path)
    assert_user_error(code, err, "MatMul (node 'mm')", "constant")
