"""Regression tests of a fuzz run over quantization and its caches (2026-12-05): hostile but valid models,
calibration files, options and cache files must give correct integer models or one clear error, never a wrong
model built silently or a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from helpers import MODELS, SampleReader, assert_bitexact, build_and_run, make_model, run_cli
from onnx import helper, numpy_helper
from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

from edgec.cli import main
from edgec.quantize import QuantOptions


def mlp(w2: np.ndarray, b2: np.ndarray) -> onnx.ModelProto:
    """Gemm(16 -> 8) -> Relu -> Gemm(8 -> 4) with the given second layer."""
    rng = np.random.default_rng(1)
    inits = {"W1": (rng.standard_normal((8, 16)) * 0.3).astype(np.float32), "B1": np.zeros(8, np.float32),
             "W2": np.asarray(w2, np.float32), "B2": np.asarray(b2, np.float32)}
    nodes = [helper.make_node("Gemm", ["x", "W1", "B1"], ["a"], name="fc1", transB=1),
             helper.make_node("Relu", ["a"], ["r"], name="relu"),
             helper.make_node("Gemm", ["r", "W2", "B2"], ["y"], name="fc2", transB=1)]
    return make_model(nodes, {"x": [1, 16]}, {"y": [1, 4]}, inits)



@pytest.mark.parametrize("case", ["zero_weights", "large_bias"])
@pytest.mark.parametrize("per_channel", [True, False])
def test_a_bias_beyond_the_accumulator_widens_the_weight_scales(tmp_path, case, per_channel):
    """All-zero weights at a per-tensor scale (floored to 1e-12) or a bias of 1e6 over weights of 0.3 put the
    int32 bias beyond int32 at the default weight scale; it was clipped silently (outputs 0 where the float model
    gives 1..4, or far from 1e6). The weight scales widen instead, and the outputs are right."""
    rng = np.random.default_rng(2)
    w2, b2 = ((np.zeros((4, 8)), [1.0, 2.0, 3.0, 4.0]) if case == "zero_weights" else
              (rng.standard_normal((4, 8)) * 0.3, np.full(4, 1e6)))
    samples, res, g, want = build_and_run(mlp(w2, b2), tmp_path, quantize="int8", n_samples=4,
                                          quant=QuantOptions(per_channel=per_channel))
    assert_bitexact(g, samples, res)
    step = g.tensors["y"].scale
    for got, ref in zip(res.outputs, want):
        assert np.abs(got["y"] - ref["y"]).max() <= 2 * step



def test_a_model_bias_that_overflows_the_accumulator_is_refused(tmp_path, capsys):
    """A QDQ model whose int32 bias is 2^31 - 1: bias + products overflows the C's int32 accumulator (undefined
    behaviour; the int64 reference differed). A user error naming the node; nothing written."""
    onnx.save(mlp(np.random.default_rng(3).standard_normal((4, 8)) * 0.3, np.zeros(4)), tmp_path / "f.onnx")
    x = np.random.default_rng(4).standard_normal((16, 1, 16)).astype(np.float32)
    quantize_static(str(tmp_path / "f.onnx"), str(tmp_path / "q.onnx"), SampleReader(x, "x"),
                    quant_format=QuantFormat.QDQ, per_channel=True, weight_type=QuantType.QInt8)
    model = onnx.load(tmp_path / "q.onnx")
    bias = next(i for i in model.graph.initializer if i.data_type == onnx.TensorProto.INT32 and "B2" in i.name)
    ints = numpy_helper.to_array(bias).copy()
    ints[0] = 2**31 - 1
    bias.CopyFrom(numpy_helper.from_array(ints, bias.name))
    onnx.save(model, tmp_path / "q.onnx")
    ort.InferenceSession(str(tmp_path / "q.onnx"), providers=["CPUExecutionProvider"])  # a valid model
    code, err = run_cli(capsys, "build", tmp_path / "q.onnx", "--quantize", "int8", "--out", tmp_path / "o")
    assert code == 2 and "Traceback" not in err and "fc2" in err and "accumulator" in err, err
    assert not (tmp_path / "o").exists()


@pytest.fixture
def mlp_files(tmp_path):
    """An MLP whose output is 0 for every input (last layer all zero: the int8 model is exact, SQNR infinite), and
    32 calibration samples."""
    onnx.save(mlp(np.zeros((4, 8)), np.zeros(4)), tmp_path / "m.onnx")
    np.savez(tmp_path / "c.npz", x=np.random.default_rng(5).standard_normal((32, 1, 16)).astype(np.float32))
    return tmp_path / "m.onnx", tmp_path / "c.npz"


@pytest.mark.filterwarnings("error::RuntimeWarning")
@pytest.mark.parametrize("method", ["auto", "entropy"])
def test_exact_outputs_write_strict_json(tmp_path, capsys, mlp_files, monkeypatch, method):
    """An exact int8 model: auto's candidate SQNRs are infinite; edgec.json had `Infinity` (not JSON for jq or
    JavaScript). Entropy calibration sees the all-zero output tensor (no RuntimeWarning allowed)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for _ in range(2):  # computed, then from the statistics cache
        code, err = run_cli(capsys, "build", mlp_files[0], "--quantize", "int8", "--calib", mlp_files[1],
                            "--calibration", method, "--out", tmp_path / "o")
        assert code == 0, err

        def refuse(c):
            raise ValueError(c)

        json.loads((tmp_path / "o" / "edgec.json").read_text(), parse_constant=refuse)


@pytest.mark.parametrize("xdg", ["file", "relative"])
def test_an_unusable_cache_folder_leaves_the_build_uncached(tmp_path, capsys, mlp_files, monkeypatch, xdg):
    """$XDG_CACHE_HOME a file (NotADirectoryError escaped the cleanup) or relative (the XDG spec says to ignore
    it: ~/.cache then, nothing in the working folder)."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    if xdg == "file":
        (tmp_path / "afile").write_text("x")
    monkeypatch.setenv("XDG_CACHE_HOME", "afile" if xdg == "relative" else str(tmp_path / "afile"))
    code, err = run_cli(capsys, "build", mlp_files[0], "--quantize", "int8", "--calib", mlp_files[1], "--out",
                        tmp_path / "o")
    assert code == 0 and "Traceback" not in err, err
    cached = list((tmp_path / "home" / ".cache" / "edgec" / "calibration").glob("*.json"))
    assert len(cached) == (1 if xdg == "relative" else 0) and not (tmp_path / "afile").is_dir()


def test_a_fifo_in_the_cache_is_not_read(tmp_path, mlp_files):
    """A FIFO in place of the cache file blocked the build forever (run in a child with a time limit)."""
    cache = tmp_path / "cache"
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    cmd = [sys.executable, "-m", "edgec", "build", str(mlp_files[0]), "--quantize", "int8", "--calib",
           str(mlp_files[1]), "-q"]
    subprocess.run([*cmd, "--out", str(tmp_path / "a")], env=env, check=True, timeout=120, capture_output=True)
    (path,) = (cache / "edgec" / "calibration").glob("*.json")
    path.unlink()
    os.mkfifo(path)
    done = subprocess.run([*cmd, "--out", str(tmp_path / "b")], env=env, timeout=120, capture_output=True)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("bounds", ["0,1e41", "-3e38,3e38"])
def test_input_range_beyond_what_scales_carry(tmp_path, capsys, mlp_files, bounds):
    """--input-range beyond float32 raised OverflowError; near it, an error blamed 'the model's scales'."""
    code, err = run_cli(capsys, "build", mlp_files[0], "--quantize", "int8", "--calib", mlp_files[1],
                        "--input-range", f"x={bounds}", "--out", tmp_path / "o")
    assert code == 2 and "Traceback" not in err and "--input-range" in err and "scale" in err, err
    assert not (tmp_path / "o").exists()


# A second fuzz run (2026-12-06): output files, TOML configs and .tflite quantization parameters.


@pytest.mark.parametrize("command, reads", [("quantize", "--inputs"), ("quantize", "--qconfig"),
                                             ("prune", "--prune-config")])
def test_an_output_file_is_never_one_of_the_inputs(tmp_path, capsys, mlp_files, command, reads):
    """`-o` naming the --inputs, --qconfig or --prune-config file replaced the user's file with the model."""
    model, calib = mlp_files
    victim = tmp_path / "victim"
    if reads == "--inputs":
        np.savez(victim.with_suffix(".npz"), x=np.zeros((2, 1, 16), np.float32))
        victim = victim.with_suffix(".npz")
        extra = ["--calib", calib, "--report", "--inputs", victim]
    elif reads == "--qconfig":
        victim.write_text('default = "int8"\n')
        extra = ["--calib", calib, "--qconfig", victim]
    else:
        victim.write_text("[sparsity]\nfc1 = 0.5\n")
        extra = ["--prune-config", victim]
    before = victim.read_bytes()
    code, err = run_cli(capsys, command, model, *extra, "-o", victim)
    assert code == 2 and "also an input" in err, err
    assert victim.read_bytes() == before


def test_a_report_on_bad_samples_writes_nothing(tmp_path, capsys, mlp_files):
    """quantize --report checks its samples before it writes -o (it wrote the model, then failed)."""
    np.savez(tmp_path / "empty.npz", x=np.zeros((0, 1, 16), np.float32))
    code, err = run_cli(capsys, "quantize", mlp_files[0], "--calib", mlp_files[1], "--report", "--inputs",
                        tmp_path / "empty.npz", "-o", tmp_path / "q.onnx")
    assert code == 2 and not (tmp_path / "q.onnx").exists(), err


@pytest.mark.parametrize("option", ["--qconfig", "--prune-config"])
def test_deeply_nested_toml_is_a_user_error(tmp_path, capsys, mlp_files, option):
    """tomllib raises RecursionError on deep nesting: it was a traceback (exit 1)."""
    deep = tmp_path / "deep.toml"
    deep.write_text("x = " + "[" * 5000 + "]" * 5000 + "\n")
    extra = ["--prune", "magnitude"] if option == "--prune-config" else []
    code, err = run_cli(capsys, "build", mlp_files[0], "--quantize", "int8", "--calib", mlp_files[1], *extra,
                        option, deep, "--out", tmp_path / "o")
    assert code == 2 and "Traceback" not in err and "deep.toml" in err, err


def test_a_tflite_zero_point_outside_int8_is_refused(tmp_path, capsys):
    """An int8 activation with zero point 200 built C whose clamp bounds crossed (act_min 200 > act_max 127): the
    host C then differed from the reference and from TFLM."""
    import tflite_builder as tb

    (tmp_path / "m.tflite").write_bytes(tb.unary_model("RELU", (1, 4, 8, 8), 0.05, 200))
    code, err = run_cli(capsys, "build", tmp_path / "m.tflite", "--out", tmp_path / "o")
    assert code == 2 and "zero point 200" in err and "Traceback" not in err, err
    assert not (tmp_path / "o").exists()


@pytest.mark.skipif(not (MODELS / "resnet8.onnx").exists(), reason="needs ../shared/models")
def test_a_float_softmax_in_an_int8_build_validates(tmp_path, capsys):
    """resnet8 int8 with its Softmax kept float: the C's expf and numpy's exp differ by a float32 step, and validate
    failed the build (bit-exact share 0.265) although every layer matched the reference."""
    (tmp_path / "q.toml").write_text('default = "int8"\n[layers]\nsoftmax_1 = "float"\n')
    m = MODELS / "resnet8"
    code = main(["validate", f"{m}.onnx", "--calib", f"{m}.calib.npz", "--inputs", f"{m}.inputs.npz", "--qconfig",
                 str(tmp_path / "q.toml"), "--json", "-q"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["bitexact_vs_reference"] == 1.0, report


@pytest.mark.parametrize("drop", ["nan", "-1", "inf"])
def test_max_sqnr_drop_must_be_a_finite_number(tmp_path, capsys, mlp_files, drop):
    """--max-sqnr-drop nan was accepted and meant "every layer int8"; -1 and inf were accepted too."""
    code, err = run_cli(capsys, "build", mlp_files[0], "--quantize", "auto", "--calib", mlp_files[1],
                        f"--max-sqnr-drop={drop}", "--out", tmp_path / "o")
    assert code == 2 and "--max-sqnr-drop" in err, err


@pytest.mark.parametrize("row, needle", [("pattern = 5", "pattern = 5"), ('calibration = ["a"]', "calibration"),
                                         ("name = 5", "name = 5"), ('per_channel = "no"', "per_channel"),
                                         ('quantize = "bogus"', "bogus"), ('sparsity = "x"', "sparsity"),
                                         ("sparsity = 1.5", "sparsity")])
def test_compare_grid_values_are_checked_before_any_row_runs(tmp_path, row, needle):
    """A grid row's field of the wrong type raised TypeError in a worker or in the report after the whole grid had
    run; "no" read as true; an unknown scheme failed every row with exit 1."""
    from edgec.compare import load_grid
    from edgec.errors import EdgecError

    extra = "" if row.startswith("name") else 'name = "r"\n'
    (tmp_path / "g.toml").write_text(f"[[config]]\n{extra}{row}\n")
    with pytest.raises(EdgecError, match=needle):
        load_grid(tmp_path / "g.toml")


def test_a_float_model_that_overflows_is_named_in_validate(tmp_path, capsys):
    """Weights of 1e30 times 1e30: the float outputs are infinite in onnxruntime and in the C alike; validate
    printed NaN errors with numpy RuntimeWarnings and failed on 'float error'."""
    rng = np.random.default_rng(0)
    nodes = [helper.make_node("Gemm", ["x", "W", "B"], ["h"], transB=1), helper.make_node("Mul", ["h", "C"], ["y"])]
    inits = {"W": (rng.standard_normal((3, 4)) * 1e30).astype(np.float32), "B": np.zeros(3, np.float32),
             "C": np.full((1, 3), 1e30, np.float32)}
    onnx.save(make_model(nodes, {"x": [1, 4]}, {"y": [1, 3]}, inits), tmp_path / "m.onnx")
    code, err = run_cli(capsys, "validate", tmp_path / "m.onnx", "--quantize", "none", "--out", tmp_path / "o")
    assert code == 2 and "not finite" in err and "'y'" in err and "Traceback" not in err, err


def test_a_tflite_bias_at_another_scale_is_refused(tmp_path, capsys):
    """An int32 bias stored at 10x input scale x weight scale: edgec re-quantized the float bias while TFLM adds
    the stored integers, so the build differed from TFLM without a word."""
    import tflite_builder as tb

    (tmp_path / "m.tflite").write_bytes(tb.fc_model(np.random.default_rng(0), (1, 16), 8, bias_step=10.0))
    code, err = run_cli(capsys, "build", tmp_path / "m.tflite", "--out", tmp_path / "o")
    assert code == 2 and "integer bias has a scale" in err and "Traceback" not in err, err
    assert not (tmp_path / "o").exists()


def test_tflm_refusing_a_file_is_a_user_error(tmp_path, capsys):
    """An output scale of 1e-9 of the usual: edgec builds it, TFLM's Prepare fails ('failed to allocate tensors'),
    and validate raised TFLM's RuntimeError."""
    import tflite_builder as tb

    (tmp_path / "m.tflite").write_bytes(tb.fc_model(np.random.default_rng(0), (1, 16), 8, out_step=1e-9))
    np.savez(tmp_path / "x.npz", x=np.random.default_rng(1).integers(-128, 128, (4, 1, 16)).astype(np.int8))
    code, err = run_cli(capsys, "validate", tmp_path / "m.tflite", "--inputs", tmp_path / "x.npz")
    assert code == 2 and "TFLM" in err and "cannot run this model" in err and "Traceback" not in err, err
