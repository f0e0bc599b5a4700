"""edgec as users install it: a wheel built from the source tree holds every file edgec reads, installs into a
fresh virtual environment and builds and runs a model there (host and Cortex-M7); `edgec --version` and
`python -m edgec`; one spelling of the output option in every command."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import numpy as np
import onnx
import pytest
from helpers import HAVE_ARM

import edgec
from edgec.cli import main, parser
from edgec.examples import convnet, sample_inputs

ROOT = Path(__file__).resolve().parents[1]
# The source folders and the package folders they become (pyproject.toml package-dir).
PACKAGE_DIRS = {"toolchain": "edgec", "codegen": "edgec/codegen", "runtime_c": "edgec/runtime_c",
                "targets": "edgec/targets"}


def _source_files() -> set[str]:
    """Every file of the package folders in the wheel's layout, except caches and the kernel build check."""
    files = set()
    for src, dst in PACKAGE_DIRS.items():
        for f in (ROOT / src).rglob("*"):
            rel = f.relative_to(ROOT / src).as_posix()
            if f.is_file() and "__pycache__" not in rel and rel != "check_build.sh":
                files.add(f"{dst}/{rel}")
    return files


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built (no build isolation: offline) from a copy of the source tree, so the build leaves nothing in
    the checkout."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    for name in (*PACKAGE_DIRS, "pyproject.toml", "README.md"):
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(ROOT / name, src / name)
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation",
                           "--no-index", "-w", str(tmp / "dist")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # setuptools' own warnings (licence field, data folders missing from `packages`, ...)
    assert "Warning" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    (whl,) = (tmp / "dist").glob("edgec-*.whl")
    return whl


def test_wheel_holds_every_file_edgec_reads(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = sorted(_source_files() - names)
    assert not missing, missing
    for f in ("edgec/targets/cortex-m/linker.ld.j2", "edgec/targets/qemu-user/insn_count_plugin.c",
              "edgec/codegen/templates/CMakeLists.txt.j2", "edgec/runtime_c/include/edgec.h", "edgec/__main__.py"):
        assert f in names, f
    metadata = zipfile.ZipFile(wheel).read(f"edgec-{edgec.__version__}.dist-info/METADATA").decode()
    assert "License-Expression: Apache-2.0" in metadata and "Requires-Python: >=3.11" in metadata


def test_installed_wheel_builds_and_runs_models(wheel, tmp_path):
    """A fresh venv with the wheel (its dependencies from this environment, through a .pth file) builds and runs
    a model outside the checkout."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")  # a path: the editable edgec stays out
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index",
                    str(wheel)], check=True, capture_output=True)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    work = tmp_path / "work"
    work.mkdir()

    def run(*args: str) -> str:
        proc = subprocess.run(list(args), cwd=work, env=env, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout

    where = run(str(python), "-c", "import edgec, edgec.paths as p; print(edgec.__file__, p.RUNTIME_DIR)")
    assert where.startswith(str(site)) and f"{site}/edgec/runtime_c" in where
    assert run(str(venv / "bin" / "edgec"), "--version").strip() == f"edgec {edgec.__version__}"
    assert run(str(python), "-m", "edgec", "--version").strip() == f"edgec {edgec.__version__}"
    model = convnet()
    onnx.save(model, work / "convnet.onnx")
    np.savez(work / "calib.npz", **sample_inputs(model, 8, seed=1))
    np.savez(work / "inputs.npz", **sample_inputs(model, 2, seed=2))
    for target in ["host"] + (["cortex-m7"] if HAVE_ARM else []):
        printed = run(str(venv / "bin" / "edgec"), "validate", "convnet.onnx", "--target", target, "--quantize",
                      "int8", "--calib", "calib.npz", "--inputs", "inputs.npz", "-o", f"b-{target}")
        assert printed.rstrip().endswith("PASS"), printed
        assert (work / f"b-{target}" / "CMakeLists.txt").is_file()
    if HAVE_ARM:
        assert (work / "b-cortex-m7" / "harness" / "firmware.elf").is_file()


def test_one_output_option_and_help_everywhere(tmp_path, capsys):
    commands = next(a for a in parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    for name, sub in commands.items():
        for action in sub._actions:
            assert action.help, f"edgec {name} {action.option_strings or action.dest}: no help text"
        outs = [a for a in sub._actions if "--out" in a.option_strings]
        assert name == "targets" or [a.option_strings[:2] for a in outs] == [["-o", "--out"]], name
    assert "--inputs" in commands["compare"].format_help()
    model = tmp_path / "convnet.onnx"
    onnx.save(convnet(), model)
    np.savez(tmp_path / "x.npz", **sample_inputs(convnet(), 2, seed=2))
    assert main(["build", str(model), "-o", str(tmp_path / "b")]) == 0
    for spelling in ("-o", "--out", "--output"):  # --output: the old spelling of run
        assert main(["run", str(tmp_path / "b"), "--inputs", str(tmp_path / "x.npz"), spelling,
                     str(tmp_path / f"y{spelling}.npz")]) == 0
    ys = [np.load(tmp_path / f"y{s}.npz")["output"] for s in ("-o", "--out", "--output")]
    assert ys[0].shape == (2, 1, 10) and all(np.array_equal(ys[0], y) for y in ys)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0 and capsys.readouterr().out.strip() == f"edgec {edgec.__version__}"
