"""Progress on stderr (tqdm bars on a terminal, one line per stage otherwise, nothing with --quiet) and the table
helper every command prints with."""

from __future__ import annotations

import io
import re

import numpy as np
import onnx
import pytest
from helpers import needs_target

from edgec import console
from edgec.cli import main
from edgec.examples import convnet, sample_inputs, simple_model

LINE = re.compile(r"edgec: (?P<label>[^:]+): (?:(?P<count>\d+) (?P<unit>[a-z]+) in )?\d+\.\d s")


@pytest.fixture
def progress(monkeypatch):
    """Progress on, and every stage long enough to report."""
    monkeypatch.setattr(console, "QUIET", False)
    monkeypatch.setattr(console, "MIN_SECONDS", 0.0)


@pytest.fixture
def files(tmp_path):
    model = convnet()
    src = tmp_path / "convnet.onnx"
    onnx.save(model, src)
    np.savez(tmp_path / "calib.npz", **sample_inputs(model, 8, seed=1))
    np.savez(tmp_path / "test.npz", **sample_inputs(model, 3, seed=2))
    return src, tmp_path / "calib.npz", tmp_path / "test.npz"


def stage_lines(err: str) -> list[tuple[str, str | None]]:
    lines = err.splitlines()
    assert all(LINE.fullmatch(line) for line in lines), err
    return [(m["label"], m["count"]) for m in map(LINE.fullmatch, lines)]


def test_one_line_per_stage_when_stderr_is_not_a_terminal(progress, files, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # an empty calibration cache
    src, calib, test = files
    build = ["build", str(src), "--quantize", "int8", "--calib", str(calib), "--calibration", "minmax"]
    assert main([*build, "-o", str(tmp_path / "b")]) == 0
    assert stage_lines(capsys.readouterr().err) == [("float reference", "8"), ("compiling C for the host", None)]
    assert main(["run", str(tmp_path / "b"), "--inputs", str(test), "-o", str(tmp_path / "y.npz")]) == 0
    assert stage_lines(capsys.readouterr().err) == [("running on the host", "3")]
    # auto calibration: minmax's ranges from the cache, one float reference pass for the percentile ranges and the
    # candidates, then the candidates; a second time everything comes from the cache
    auto = ["build", str(src), "--quantize", "int8", "--calib", str(calib), "-o"]
    assert main([*auto, str(tmp_path / "c")]) == 0
    assert stage_lines(capsys.readouterr().err) == [
        ("float reference", "8"), ("choosing the calibration", "7"), ("compiling C for the host", None)]
    assert main([*auto, str(tmp_path / "d")]) == 0
    assert stage_lines(capsys.readouterr().err)[:-1] in ([], [("float reference", "8")])  # (for bias correction)
    assert main(["prune", str(src), "--analyze", "--calib", str(calib)]) == 0
    assert stage_lines(capsys.readouterr().err) == [("pruning sensitivity sweep", "15")]  # 3 layers x 5 levels


def test_quiet_build_prints_nothing_on_stderr(progress, files, tmp_path, capsys):
    src, calib, _ = files
    build = ["build", str(src), "--quantize", "int8", "--calib", str(calib)]
    assert main(["--quiet", *build, "-o", str(tmp_path / "b")]) == 0
    assert capsys.readouterr().err == ""
    assert main([*build, "-o", str(tmp_path / "c"), "-q"]) == 0  # also after the command
    assert capsys.readouterr().err == ""
    assert not console.QUIET  # main restores the setting


def test_compare_grid_progress(progress, files, tmp_path, capsys):
    """One line for the grid; the configurations' own stages (in the worker processes) print nothing."""
    src, calib, test = files
    grid = tmp_path / "g.toml"
    grid.write_text('[[config]]\nname = "float32"\n\n[[config]]\nname = "int8"\nquantize = "int8"\n')
    argv = ["compare", str(src), "--calib", str(calib), "--inputs", str(test), "--grid", str(grid), "--jobs", "1"]
    assert main([*argv, "-o", str(tmp_path / "o")]) == 0
    assert stage_lines(capsys.readouterr().err) == [("compare grid", "2")]


@needs_target("cortex-m4")
def test_qemu_run_counts_samples_as_they_finish(progress, tmp_path, capsys):
    model = simple_model()
    src = tmp_path / "m.onnx"
    onnx.save(model, src)
    np.savez(tmp_path / "x.npz", **sample_inputs(model, 5, seed=1))
    assert main(["build", str(src), "--target", "cortex-m4", "-o", str(tmp_path / "b")]) == 0
    assert stage_lines(capsys.readouterr().err) == [("compiling the firmware for cortex-m4", "5")]  # 4 files, link
    assert main(["run", str(tmp_path / "b"), "--inputs", str(tmp_path / "x.npz"), "-o", str(tmp_path / "y.npz")]) == 0
    assert stage_lines(capsys.readouterr().err) == [("running 5 samples in QEMU mps2-an386", "5")]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_terminal_gets_a_tqdm_bar(progress, monkeypatch):
    term = Terminal()
    monkeypatch.setattr("sys.stderr", term)
    assert list(console.track(list(range(7)), "calibrating", "samples")) == list(range(7))
    bar = term.getvalue()
    assert "calibrating" in bar and "100%" in bar and "7/7" in bar and "edgec:" not in bar
    monkeypatch.setattr(console, "QUIET", True)
    term.truncate(0)
    list(console.track([1, 2], "calibrating"))
    assert term.getvalue() == ""


def test_short_and_failed_stages_print_nothing(monkeypatch, capsys):
    monkeypatch.setattr(console, "QUIET", False)
    with console.stage("quick", 3) as s:  # below MIN_SECONDS (1 s)
        s.update(3)
    monkeypatch.setattr(console, "MIN_SECONDS", 0.0)
    with pytest.raises(ValueError), console.stage("failing", 3) as s:
        s.update()
        raise ValueError("no")
    for _ in console.track([1, 2, 3], "left early"):
        break
    assert capsys.readouterr().err == ""


def test_table():
    rows = [("conv1", "arm_conv", "1,024"), ("fc", "dense_s8", "10")]
    assert console.table(rows, header=["layer", "kernel", "MACs"], right=[2], indent=1, rule_before_last=True) == (
        " layer  kernel     MACs\n"
        " conv1  arm_conv  1,024\n"
        " ----------------------\n"
        " fc     dense_s8     10")
    bold = console.table([("\033[1m1.5*\033[0m", "x"), ("10", "yy")], right=[0], indent=0)
    assert bold == "\033[1m1.5*\033[0m  x\n  10  yy"
    assert console.table([]) == ""
