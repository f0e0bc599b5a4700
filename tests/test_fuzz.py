"""Fuzz test of the edgec command line with hostile and broken inputs (Hypothesis, fixed seed).

Four classes of input: byte-mutated ONNX files (flips, truncation, inserted bytes of a small valid model),
structurally mutated ONNX models (attribute values, initializer shapes and values, input dims, op types, opsets,
hostile names with */, newlines, quotes, 300 characters, non-ASCII), bad sample files (wrong keys, shapes,
dtypes, NaN/Inf, huge headers, not an npz) and command-line misuse (option combinations, bad paths, --out at
files, folders, . and ..). Every run of `edgec.cli.main` must exit with 0, 1 or 2, raise nothing, print no
traceback, and create or change no file outside its --out folder (and the output file it was asked to write).
Every model that builds for the host is also compiled with -fsanitize=address,undefined and run once (a few per
CI run, every one in the long mode).

The CI run takes a few dozen examples per class (well under a minute on 2 cores). For a longer local run:
EDGEC_FUZZ_EXAMPLES=2000 .venv/bin/pytest -q -s tests/test_fuzz.py (-s prints the counts per class)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import resource
import shutil
import subprocess
import traceback
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from edgec.cli import main

LONG = int(os.environ.get("EDGEC_FUZZ_EXAMPLES", "0"))
ASAN_RUNS = LONG or 3  # builds checked with AddressSanitizer per test (CI: the first 3)
FUZZ = settings(max_examples=LONG or 30, derandomize=True, deadline=None, database=None, print_blob=True,
                suppress_health_check=list(HealthCheck))
MEMORY_LIMIT = 6 << 30  # address space of an in-process edgec run: a model that allocates without bound fails
COUNTS: dict[str, Counter] = {}
HOSTILE = ["a */ int pwned = 1; /*", "*/ return 0; /*", "x\ny", 'q"u\'o\\te', "n" * 300, "ünïcødé_名前", "stdint",
           "edgec", "math", "", " ", "../../x", "a\x00b", "#define X", "??/", "${HOME}", "%s%n"]


def base_model() -> onnx.ModelProto:
    """Conv -> Relu -> GlobalAveragePool -> Flatten -> Gemm: small, quick to build."""
    rng = np.random.default_rng(0)
    n = helper.make_node
    nodes = [n("Conv", ["input", "W", "B"], ["c"], pads=[1, 1, 1, 1], name="conv"),
             n("Relu", ["c"], ["r"], name="relu"), n("GlobalAveragePool", ["r"], ["p"], name="pool"),
             n("Flatten", ["p"], ["f"], name="flat"),
             n("Gemm", ["f", "W2", "B2"], ["output"], transB=1, name="fc")]
    inits = {"W": rng.standard_normal((3, 2, 3, 3)) * 0.3, "B": rng.standard_normal(3) * 0.1,
             "W2": rng.standard_normal((4, 3)) * 0.5, "B2": rng.standard_normal(4) * 0.1}
    graph = helper.make_graph(nodes, "fuzz", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 2, 5, 5])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 4])],
                              [numpy_helper.from_array(v.astype(np.float32), k) for k, v in inits.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


BASE = base_model().SerializeToString()


# ---- running edgec and checking what it did -------------------------------------------------------------------


def snapshot(root: Path) -> dict[str, tuple]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st_ = p.lstat()  # a folder's own times change with its entries: only its existence counts
            out[str(p.relative_to(root))] = (st_.st_mode,) if name in dirnames else (st_.st_mode, st_.st_size,
                                                                                     st_.st_mtime_ns)
    return out


def run_edgec(kind: str, root: Path, argv: list[str], allowed: list[str]) -> tuple[int, str]:
    """main(argv) with cwd root/work; returns (exit code, stderr). allowed: paths (relative to root) that may
    change: --out and the output file asked for."""
    counts = COUNTS.setdefault(kind, Counter())
    counts["tried"] += 1
    before = snapshot(root)
    err, cwd = io.StringIO(), os.getcwd()
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    escaped = None
    try:
        os.chdir(root / "work")
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, hard))
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                code = main(argv)
            except SystemExit as exc:  # argparse: usage errors exit with 2
                code = exc.code if isinstance(exc.code, int) else 2
    except BaseException:  # noqa: BLE001 - reported below with the traceback
        escaped = traceback.format_exc()
        code = None
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        os.chdir(cwd)
    assert escaped is None, f"edgec {argv} raised:\n{escaped}"
    text = err.getvalue()
    assert code in (0, 1, 2), (argv, code, text)
    assert "Traceback" not in text, (argv, text)
    counts[{0: "exit 0", 1: "exit 1", 2: "clean error"}[code]] += 1
    after = snapshot(root)
    changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
    # Allowed: new files under --out or the output file asked for. A file that existed before (the user's) may not
    # change or go, wherever it is.
    prefixes = [os.path.normpath(a) for a in allowed]
    bad = sorted(k for k in changed if k in before or not any(
        p == "." or k == p or k.startswith(p + "/") for p in prefixes))
    assert not bad, (argv, code, "changed or deleted files edgec did not create:", bad[:10], text)
    return code, text


HARNESS = """#include <stdint.h>
#include <stdlib.h>
#include <string.h>
int {name}_run(const void *const inputs[], void *const outputs[]);
int main(void)
{{
    static const size_t in_bytes[] = {{{ins}}}, out_bytes[] = {{{outs}}};
    const void *inputs[{n_in}];
    void *outputs[{n_out}];
    size_t i;
    for (i = 0; i < {n_in}; ++i) {{
        unsigned char *p = malloc(in_bytes[i]);
        memset(p, 0x3c, in_bytes[i]);
        inputs[i] = p;
    }}
    for (i = 0; i < {n_out}; ++i) outputs[i] = malloc(out_bytes[i]);
    return {name}_run(inputs, outputs);
}}
"""


def asan_run(out: Path) -> None:
    """Compile the build's C with AddressSanitizer and UBSan and run one inference on constant inputs."""
    counts = COUNTS.setdefault("asan", Counter())
    meta = json.loads((out / "edgec.json").read_text())
    harness = out.parent / "asan_main.c"
    ins = [io_["bytes"] for io_ in meta["inputs"]]
    outs = [io_["bytes"] for io_ in meta["outputs"]]
    harness.write_text(HARNESS.format(name=meta["name"], ins=", ".join(map(str, ins)), outs=", ".join(map(str, outs)),
                                      n_in=len(ins), n_out=len(outs)))
    exe = out.parent / "asan_main"
    cmd = ["gcc", "-std=c99", "-g", "-O1", "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
           "-fno-omit-frame-pointer", f"-I{out}", f"-I{out / 'runtime' / 'include'}",
           *(str(out / s) for s in meta["sources"]), str(harness), "-lm", "-o", str(exe)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "ASAN_OPTIONS": "detect_leaks=0"})
    assert proc.returncode == 0, f"{out}: AddressSanitizer/UBSan:\n{proc.stderr[-3000:]}"
    counts["clean"] += 1
    for p in (harness, exe):
        p.unlink()


def fresh_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fuzz")
    (root / "work" / "deeper").mkdir(parents=True)  # cwd is root/work: '..' stays inside root
    (root / "work" / "notes.txt").write_text("the user's file\n")
    (root / "work" / "deeper" / "data.txt").write_text("more of the user's files\n")
    return root


def build_checked(kind: str, root: Path, model: bytes, extra: list[str]) -> None:
    (root / "work" / "m.onnx").write_bytes(model)
    code, _ = run_edgec(kind, root, ["build", "m.onnx", "--out", "out", *extra], ["work/out"])
    if code == 0:
        COUNTS[kind]["built"] += 1
        if COUNTS.setdefault("asan", Counter())["tried"] < ASAN_RUNS:
            COUNTS["asan"]["tried"] += 1
            asan_run(root / "work" / "out")
    shutil.rmtree(root / "work" / "out", ignore_errors=True)


QUANT = st.sampled_from([[], [], ["--quantize", "int8", "--calib", "random"]])


@pytest.fixture(scope="module", autouse=True)
def report_counts():
    yield
    for kind, c in sorted(COUNTS.items()):
        print(f"\nfuzz {kind}: " + ", ".join(f"{k} {v}" for k, v in sorted(c.items())))


# ---- byte-mutated ONNX -------------------------------------------------------------------------------------------


@st.composite
def byte_mutations(draw) -> bytes:
    data = bytearray(BASE)
    how = draw(st.sampled_from(["flip", "truncate", "insert"]))
    if how == "truncate":
        return bytes(data[:draw(st.integers(0, len(data) - 1))])
    for _ in range(draw(st.integers(1, 8))):
        at = draw(st.integers(0, len(data) - 1))
        if how == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
    return bytes(data)


@FUZZ
@given(model=byte_mutations(), extra=QUANT)
def test_fuzz_onnx_bytes(tmp_path_factory, model, extra):
    build_checked("onnx bytes", fresh_root(tmp_path_factory), model, extra)


# ---- structurally mutated ONNX -----------------------------------------------------------------------------------

INTS = st.one_of(st.integers(-3, 8), st.sampled_from([0, -1, 2**31 - 1, 2**40, -(2**31)]))
ATTR_VALUE = st.one_of(INTS, st.lists(INTS, min_size=1, max_size=6), st.floats(allow_nan=True, allow_infinity=True),
                       st.text(max_size=5))
ATTRS = ["group", "pads", "strides", "kernel_shape", "dilations", "auto_pad", "axis", "transA", "transB", "alpha",
         "beta", "ceil_mode"]
NAME = st.one_of(st.sampled_from(HOSTILE), st.text(min_size=0, max_size=40))
FLOATS = st.sampled_from([np.nan, np.inf, -np.inf, 1e38, 1e-42, 0.0, -0.0, 3e38])


@st.composite
def structured_mutations(draw) -> bytes:
    m = base_model()
    g = m.graph
    for _ in range(draw(st.integers(1, 3))):
        what = draw(st.sampled_from(["attr", "shape", "value", "rename", "rename_one", "dim", "op", "opset"]))
        if what == "attr":
            node = draw(st.sampled_from(list(g.node)))
            name = draw(st.sampled_from(ATTRS))
            keep = [a for a in node.attribute if a.name != name]
            del node.attribute[:]
            node.attribute.extend(keep + [helper.make_attribute(name, draw(ATTR_VALUE))]
                                  if draw(st.booleans()) or not keep else keep)
        elif what == "shape":
            init = draw(st.sampled_from(list(g.initializer)))
            shape = draw(st.lists(st.integers(0, 5), max_size=4))
            init.CopyFrom(numpy_helper.from_array(np.full(shape, 0.5, np.float32), init.name))
        elif what == "value":
            init = draw(st.sampled_from(list(g.initializer)))
            a = numpy_helper.to_array(init).copy()
            a.flat[draw(st.integers(0, a.size - 1))] = draw(FLOATS)
            init.CopyFrom(numpy_helper.from_array(a, init.name))
        elif what in ("rename", "rename_one"):
            tensors = ["input", "output", "c", "r", "p", "f", "W", "B", "W2", "B2"]
            old, new = draw(st.sampled_from(tensors + ["node"])), draw(NAME)
            if old == "node":
                draw(st.sampled_from(list(g.node))).name = new
                continue
            places = [(n.input, i) for n in g.node for i, x in enumerate(n.input) if x == old]
            places += [(n.output, i) for n in g.node for i, x in enumerate(n.output) if x == old]
            for seq, i in places if what == "rename" else places[:1]:
                seq[i] = new
            for v in list(g.input) + list(g.output) + list(g.initializer):
                if v.name == old and what == "rename":
                    v.name = new
        elif what == "dim":
            dim = draw(st.sampled_from(list(g.input[0].type.tensor_type.shape.dim)))
            choice = draw(st.one_of(st.sampled_from([0, -1, 2**40, 65536]), st.text(max_size=4)))
            if isinstance(choice, int):
                dim.dim_value = choice
            else:
                dim.dim_param = choice
        elif what == "op":
            draw(st.sampled_from(list(g.node))).op_type = draw(st.sampled_from(
                ["Conv", "Relu", "Gemm", "MaxPool", "AveragePool", "Softmax", "Add", "Concat", "Reshape", "Nope", ""]))
        else:
            m.opset_import[0].version = draw(st.integers(1, 25))
    return m.SerializeToString()


@FUZZ
@given(model=structured_mutations(), extra=QUANT)
def test_fuzz_onnx_structure(tmp_path_factory, model, extra):
    build_checked("onnx structure", fresh_root(tmp_path_factory), model, extra)


# ---- bad sample files --------------------------------------------------------------------------------------------

SHAPES = st.sampled_from([(2, 1, 2, 5, 5), (2, 2, 5, 5), (0, 1, 2, 5, 5), (1, 2, 5), (2, 1, 2, 5, 4), (), (3,)])
DTYPES = st.sampled_from(["float32", "float64", "float16", "int8", "int32", "complex64", "bool", "<U3"])


def huge_header_npz(path: Path, key: str) -> None:
    import zipfile

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f4", "fortran_order": False,
                                               "shape": (2**40, 1, 2, 5, 5)})
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(f"{key}.npy", buf.getvalue() + b"\0" * 64)


@st.composite
def sample_files(draw, path: Path) -> Path:
    form = draw(st.sampled_from(["npz", "npz", "npz", "npy", "empty", "bytes", "truncated", "huge", "dir", "text"]))
    key = draw(st.one_of(st.just("input"), NAME.filter(lambda s: "/" not in s and "\x00" not in s)))
    shape = draw(SHAPES)
    a = np.full(shape, 0.25).astype(draw(DTYPES))
    if a.dtype.kind == "f" and a.size:
        a.flat[draw(st.integers(0, a.size - 1))] = draw(FLOATS)
    if form == "npz":
        extra = {"other": np.zeros(3)} if draw(st.booleans()) else {}
        np.savez(path, **{key or "x": a}, **extra)
    elif form == "npy":
        with open(path, "wb") as f:
            np.save(f, a)
    elif form == "empty":
        path.write_bytes(b"")
    elif form == "bytes":
        path.write_bytes(draw(st.binary(max_size=200)))
    elif form == "truncated":
        np.savez(path, input=np.zeros((2, 1, 2, 5, 5), np.float32))
        path.write_bytes(path.read_bytes()[:draw(st.integers(0, path.stat().st_size - 1))])
    elif form == "huge":
        huge_header_npz(path, key or "input")
    elif form == "dir":
        path.mkdir()
    else:
        path.write_text("input = 1, 2, 3\n")
    return path


@FUZZ
@given(data=st.data(), command=st.sampled_from(["run", "calib", "calib", "prune", "validate"]))
def test_fuzz_sample_files(tmp_path_factory, data, command):
    root = fresh_root(tmp_path_factory)
    (root / "work" / "m.onnx").write_bytes(BASE)
    samples = data.draw(sample_files(root / "work" / "s.npz"))
    allowed = ["work/out"]
    if command == "run":
        shutil.copytree(_prebuilt(tmp_path_factory), root / "work" / "b")
        argv = ["run", "b", "--inputs", "s.npz", "--output", "out/o.npz"]
        (root / "work" / "out").mkdir()
    elif command == "calib":
        argv = ["build", "m.onnx", "--quantize", "int8", "--calib", "s.npz", "--out", "out"]
    elif command == "prune":
        argv = ["prune", "m.onnx", "--analyze", "--calib", "s.npz"]
    else:
        argv = ["validate", "m.onnx", "--inputs", "s.npz"]
    code, _ = run_edgec("sample files", root, argv, allowed)
    if code == 0 and samples.is_file() and command != "run":
        COUNTS["sample files"]["accepted"] += 1


_PREBUILT: list[Path] = []


def _prebuilt(tmp_path_factory) -> Path:
    if not _PREBUILT:
        root = tmp_path_factory.mktemp("prebuilt")
        (root / "m.onnx").write_bytes(BASE)
        assert main(["build", str(root / "m.onnx"), "--out", str(root / "b")]) == 0
        _PREBUILT.append(root / "b")
    return _PREBUILT[0]


# ---- command-line misuse -----------------------------------------------------------------------------------------

PATHS = ["m.onnx", "missing.onnx", "deeper", "notes.txt", "/dev/null", "empty.onnx", "s.npz", "m.onnx/x", ""]
OUTS = ["out", "out", ".", "..", "deeper", "notes.txt", "m.onnx", "link", "missing/parent/out", "notes.txt/x",
        "deeper/data.txt"]
OPTIONS = {
    "--target": st.sampled_from(["host", "nope", "../x", "", "cortex-m7"]),
    "--quantize": st.sampled_from(["int8", "int4", "int16", "qformat", "q15", "auto", "bogus"]),
    "--calib": st.sampled_from(["random", "s.npz", "missing.npz", "deeper", "m.onnx"]),
    "--calibration": st.sampled_from(["minmax", "percentile", "entropy", "x"]),
    "--percentile": st.sampled_from(["99.9", "0", "-5", "101", "nan", "inf", "x"]),
    "--qbits": st.sampled_from(["8", "16", "4", "x"]),
    "--qconfig": st.sampled_from(["q.toml", "notes.txt", "missing.toml", "deeper"]),
    "--input-shape": st.sampled_from(["input=1,2,5,5", "input=0,2,5,5", "input=-1", "x=1", "input=", "=", "input=a"]),
    "--input-range": st.sampled_from(["input=-1,1", "input=1,-1", "input=nan,1", "input=0,inf", "x=0,1", "bad"]),
    "--name": NAME,
    "--flash": st.sampled_from(["1k", "0", "-1", "1t", "x", "99999999999999999999"]),
    "--ram": st.sampled_from(["1", "64k", "x"]),
    "--prune": st.sampled_from(["magnitude", "l1-filter", "n:m", "x"]),
    "--sparsity": st.sampled_from(["0.5", "1", "1.5", "-0.1", "nan", "x"]),
    "--pattern": st.sampled_from(["2:4", "4:2", "0:0", "x", "1:1000000"]),
    "--exclude": st.sampled_from(["none", "conv", "fc,conv", ""]),
    "--prune-config": st.sampled_from(["q.toml", "notes.txt", "prune.toml"]),
    "--flash-budget": st.sampled_from(["1", "4k", "x"]),
    "--max-sqnr-drop": st.sampled_from(["1", "-1", "nan", "x"]),
    "--sparse-kernels": st.sampled_from(["auto", "nm", "x"]),
    "--inputs": st.sampled_from(["s.npz", "missing.npz", "m.onnx", "deeper"]),
}
FLAGS = ["--per-tensor", "--symmetric", "--bias-correction", "--force", "--refit", "--json", "--per-layer"]


@st.composite
def command_lines(draw) -> tuple[list[str], list[str]]:
    command = draw(st.sampled_from(["build", "build", "validate", "profile", "quantize", "prune", "run", "targets",
                                    "compare", "nope", ""]))
    argv = [command, draw(st.sampled_from(PATHS))] if command != "targets" else [command]
    allowed = []
    for opt in draw(st.lists(st.sampled_from(sorted(OPTIONS)), max_size=4, unique=True)):
        argv += [opt, draw(OPTIONS[opt])]
    argv += draw(st.lists(st.sampled_from(FLAGS), max_size=2, unique=True))
    if command in ("build", "validate", "profile", "compare") and draw(st.booleans()):
        out = draw(st.sampled_from(OUTS))
        argv += ["--out", out]
        allowed.append(str(Path("work") / out))
    if command in ("quantize", "prune", "run") and draw(st.booleans()):
        out = draw(st.sampled_from(OUTS + ["new.onnx", "new.npz"]))
        argv += ["-o" if command != "run" else "--output", out]
        allowed.append(str(Path("work") / out))
    if command == "build" and "--out" not in argv:
        allowed.append("work/build")  # the default output folder
    if command == "compare":
        argv += ["--grid", "grid.toml"]  # one float configuration: the default grid takes minutes
        if "--out" not in argv:
            allowed.append("work/compare-out")
    return argv, allowed


@FUZZ
@given(cmd=command_lines())
def test_fuzz_command_line(tmp_path_factory, cmd):
    argv, allowed = cmd
    if argv[0] in ("validate", "profile", "compare") and "--target" in argv and \
            argv[argv.index("--target") + 1] == "cortex-m7":
        argv[argv.index("--target") + 1] = "host"  # QEMU runs take too long for a fuzz example
    root = fresh_root(tmp_path_factory)
    work = root / "work"
    (work / "m.onnx").write_bytes(BASE)
    (work / "empty.onnx").write_bytes(b"")
    np.savez(work / "s.npz", input=np.random.default_rng(0).standard_normal((4, 1, 2, 5, 5)).astype(np.float32))
    (work / "q.toml").write_text('default = "int8"\n[layers]\nconv = "int16"\n')
    (work / "prune.toml").write_text("[sparsity]\nconv = 0.5\nfc = \"x\"\n")
    (work / "link").symlink_to("deeper")
    (work / "grid.toml").write_text('[[config]]\nname = "float32"\n')
    if argv[0] == "run" and len(argv) > 1 and argv[1] == "deeper":
        shutil.copytree(_prebuilt(tmp_path_factory), work / "deeper", dirs_exist_ok=True)
    code, _ = run_edgec("command line", root, argv, allowed)
    out = next((work / a[len("work/"):] for a in allowed if (work / a[len("work/"):] / "edgec.json").is_file()), None)
    if code == 0 and argv[0] == "build" and out is not None:
        COUNTS["command line"]["built"] += 1
        if COUNTS.setdefault("asan", Counter())["tried"] < ASAN_RUNS:
            COUNTS["asan"]["tried"] += 1
            asan_run(out)
