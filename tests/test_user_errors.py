"""Regression tests of issue 18's user errors: one line on stderr, exit code 2, no traceback; --calib required by
the integer schemes; validate's SQNR floor and cosine similarity."""

from __future__ import annotations

import io
import json
import shutil
import zipfile

import numpy as np
import onnx
import pytest
from helpers import run_cli

from edgec.cli import main
from edgec.examples import simple_model
from edgec.validate import SQNR_FLOOR_DB, cosine, metrics


def assert_user_error(code: int, err: str, *needles: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err and err.startswith("edgec: error: ") and err.count("\n") == 1, err
    for needle in needles:
        assert needle in err, (needle, err)


@pytest.fixture
def work(tmp_path):
    onnx.save(simple_model(), tmp_path / "m.onnx")
    np.savez(tmp_path / "good.npz", input=np.random.default_rng(0).standard_normal((4, 1, 4)).astype(np.float32))
    return tmp_path


def huge_header(path, key: str, shape: tuple) -> None:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f4", "fortran_order": False, "shape": shape})
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(f"{key}.npy", buf.getvalue() + b"\0" * 64)


def bad_samples(tmp_path, kind: str):
    p = tmp_path / f"{kind}.npz"
    if kind == "npy":
        p = tmp_path / "x.npy"
        np.save(p, np.zeros((2, 1, 4), np.float32))
    elif kind == "nan":
        x = np.zeros((3, 1, 4), np.float32)
        x[1, 0, 2] = np.nan
        np.savez(p, input=x)
    elif kind == "inf":
        np.savez(p, input=np.full((3, 1, 4), np.inf, np.float32))
    elif kind == "float64_overflow":
        np.savez(p, input=np.full((3, 1, 4), 1e300))
    elif kind == "int":
        np.savez(p, input=np.zeros((3, 1, 4), np.int32))
    elif kind == "shape":
        np.savez(p, input=np.zeros((3, 5), np.float32))
    elif kind == "keys":
        np.savez(p, a=np.zeros((3, 1, 4), np.float32), b=np.zeros(2))
    elif kind == "huge":
        huge_header(p, "input", (2**40, 1, 4))
    elif kind == "empty":
        p.write_bytes(b"")
    elif kind == "dir":
        p.mkdir()
    elif kind == "missing":
        pass
    elif kind == "no_samples":
        np.savez(p, input=np.zeros((0, 1, 4), np.float32))
    return p


CASES = {"npy": ["not an .npz file", "numpy.savez"], "nan": ["'input'", "NaN or infinite"],
         "inf": ["'input'", "NaN or infinite"], "float64_overflow": ["float32 range"], "int": ["dtype int32"],
         "shape": ["shape (3, 5)", "expected (N, 1, 4)"], "keys": ["missing: input"],
         "huge": ["declare 17,592,186,044,416 bytes"], "empty": ["not an .npz file"], "dir": ["is a directory"],
         "missing": ["no such file"], "no_samples": ["no samples"]}


@pytest.mark.parametrize("kind", sorted(CASES))
def test_bad_calibration_file(kind, work, capsys):
    path = bad_samples(work, kind)
    code, err = run_cli(capsys, "build", work / "m.onnx", "--quantize", "int8", "--calib", path, "--out", work / "o")
    assert_user_error(code, err, str(path), "calibration", *CASES[kind])
    assert not (work / "o").exists()


@pytest.mark.parametrize("kind", ["npy", "nan", "huge", "keys"])
def test_bad_inputs_to_run(kind, work, capsys):
    assert main(["build", str(work / "m.onnx"), "--out", str(work / "b")]) == 0
    path = bad_samples(work, kind)
    code, err = run_cli(capsys, "run", work / "b", "--inputs", path, "--output", work / "o.npz")
    assert_user_error(code, err, str(path), *CASES[kind])
    assert not (work / "o.npz").exists()


def test_damaged_build_folder(work, capsys):
    assert main(["build", str(work / "m.onnx"), "--out", str(work / "b")]) == 0
    capsys.readouterr()
    run = ["--inputs", work / "good.npz", "--output", work / "o.npz"]
    code, err = run_cli(capsys, "run", work / "b", "--inputs", work / "good.npz", "--output", work / "nodir" / "o.npz")
    assert_user_error(code, err, "does not exist")
    for damage, needle in (("{oops", "cannot read the build description"), ("[]", "not a JSON object"),
                           ('{"name": "x(); evil", "target": "host", "inputs": [], "outputs": []}', "C identifier")):
        broken = work / f"broken{len(damage)}"
        shutil.copytree(work / "b", broken)
        (broken / "edgec.json").write_text(damage)
        code, err = run_cli(capsys, "run", broken, *run)
        assert_user_error(code, err, "edgec.json", needle)
    meta = json.loads((work / "b" / "edgec.json").read_text())
    broken = work / "broken_native"  # (a TypeError in run before)
    shutil.copytree(work / "b", broken)
    (broken / "edgec.json").write_text(json.dumps({**meta, "integer_outputs": None}))
    assert_user_error(*run_cli(capsys, "run", broken, *run), "edgec.json", "integer_outputs")
    (work / "b" / "harness" / f"lib{meta['name']}.so").unlink()
    code, err = run_cli(capsys, "run", work / "b", *run)
    assert_user_error(code, err, f"lib{meta['name']}.so", "rebuild")
    meta["target"] = "cortex-m7"
    (work / "b" / "edgec.json").write_text(json.dumps(meta))
    code, err = run_cli(capsys, "run", work / "b", *run)
    assert_user_error(code, err, "firmware.elf")
    assert not (work / "o.npz").exists()


@pytest.mark.parametrize("text,needle", [('[sparsity]\nfc1 = "abc"\n', "fc1 = 'abc'"), ("sparsity = 3\n", "table"),
                                         ("[sparsity]\nfc1 = 1.5\n", "in [0, 1)"), ("[sparsity]\nfc1 = true\n", "True"),
                                         ("[sparsity\n", "not a readable TOML")])
def test_prune_config_types(text, needle, work, capsys):
    cfg = work / "p.toml"
    cfg.write_text(text)
    code, err = run_cli(capsys, "build", work / "m.onnx", "--prune", "magnitude", "--prune-config", cfg, "--out",
                        work / "o")
    assert_user_error(code, err, str(cfg), needle)


@pytest.mark.parametrize("damage", ["ir_version", "node_names"])
def test_onnxruntime_refusal_in_validate(damage, work, capsys):
    """A model edgec builds but onnxruntime refuses: an IR version newer than onnxruntime reads, or two nodes of the
    same name (onnx.checker allows it; onnxruntime's session creation raised a traceback through validate)."""
    model = simple_model()
    if damage == "ir_version":
        model.ir_version = 99
    for node in model.graph.node if damage == "node_names" else []:
        node.name = "n"
    onnx.save(model, work / "future.onnx")
    code, err = run_cli(capsys, "validate", work / "future.onnx", "--inputs", work / "good.npz")
    assert_user_error(code, err, "future.onnx", "onnxruntime")


@pytest.mark.parametrize("scheme", ["int8", "int4", "int16", "qformat"])
def test_integer_schemes_need_calib(scheme, work, capsys):
    code, err = run_cli(capsys, "build", work / "m.onnx", "--quantize", scheme, "--out", work / "o")
    assert_user_error(code, err, "--calib samples.npz", "--calib random")
    assert not (work / "o").exists()


def test_calib_random_on_request(work, capsys):
    code, err = run_cli(capsys, "build", work / "m.onnx", "--quantize", "int8", "--calib", "random", "--out",
                        work / "o")
    assert code == 0 and "warning: --calib random" in err
    assert json.loads((work / "o" / "edgec.json").read_text())["quantize"] == "int8"


def test_cosine_of_zero_outputs():
    zero, one = np.zeros(5), np.ones(5)
    assert cosine(zero, zero) == 1.0 and cosine(zero, one) == 0.0 and cosine(one, zero) == 0.0
    assert cosine(one, -one) == pytest.approx(-1.0)
    assert cosine(np.full(2, 1e300), np.full(2, 1e300)) == pytest.approx(1.0)
    m = metrics([{"y": np.zeros(4, np.float32)}], [{"y": np.arange(4, dtype=np.float32) + 1}], ["y"])
    assert m["cosine"] == 0.0 and m["sqnr_db"] == pytest.approx(0.0)


def test_validate_fails_below_the_sqnr_floor(work, capsys):
    """An int8 build bit-exact with its reference but calibrated on inputs 10^6 times larger than the test inputs:
    one output step is larger than the outputs, the integer reference agrees with the C, and validate must still
    fail on the SQNR floor."""
    calib = work / "big.npz"
    np.savez(calib, input=np.random.default_rng(1).standard_normal((8, 1, 4)).astype(np.float32) * 1e3)
    tiny = work / "tiny.npz"
    np.savez(tiny, input=np.random.default_rng(2).standard_normal((8, 1, 4)).astype(np.float32) * 1e-3)
    code = main(["validate", str(work / "m.onnx"), "--quantize", "int8", "--calib", str(calib), "--inputs", str(tiny),
                 "--json"])
    report = json.loads(capsys.readouterr().out)
    assert report["bitexact_vs_reference"] == 1.0 and report["sqnr_db"] <= SQNR_FLOOR_DB
    assert code == 1 and any("SQNR" in f for f in report["failures"])


def test_prune_config_needs_prune(work, capsys):
    """--prune-config without --prune was ignored: the model was built unpruned, exit 0."""
    (work / "p.toml").write_text("[sparsity]\nfc1 = 0.5\n")
    code, err = run_cli(capsys, "build", work / "m.onnx", "--prune-config", work / "p.toml", "--out", work / "o")
    assert_user_error(code, err, "--prune-config", "--prune METHOD")
    assert not (work / "o").exists()
