"""Hostile names and output paths (issue 18): no string from a model or the command line reaches the generated C
unescaped, no header is shadowed, non-finite or oversized constants are refused before C is written, and nothing
edgec writes deletes or overwrites a file it did not create."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import onnx
import pytest
from helpers import build_and_run, make_model, run_cli
from onnx import helper

from edgec.build import lower_graph, prepare_graph
from edgec.cli import main
from edgec.codegen.emit import c_identifier, c_text, model_name, write_project
from edgec.codegen.memory import plan_memory
from edgec.errors import EdgecError
from edgec.examples import simple_model
from edgec.outdir import MARKER
from edgec.target import load_target

INJECTION = 'a */ extern int system(const char *); system("touch pwned.txt"); /*'
SKIP_LAYER = "*/ return 0; /*"
HOSTILE = [INJECTION, SKIP_LAYER, "line\nbreak */ int x; /*", "back\\", "tri??/", "??= ??( ??/ ??'", "ümlaut-模型",
           "%s%n\"quoted\"", "x" * 300, "", "int", "_Reserved", "9lives", "// c++ comment", "\x00nul\x7f"]



def assert_user_error(code: int, err: str, *needles: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err and err.startswith("edgec: error: ")
    for needle in needles:
        assert needle in err, (needle, err)


def convnet(names: dict[str, str], seed: int = 0) -> onnx.ModelProto:
    """Conv -> Relu -> Conv on a 1x2x6x6 input, every node and tensor name from names (keys: input, conv1, c1,
    relu, r1, conv2, output, w1, w2)."""
    rng = np.random.default_rng(seed)
    n = {k: names.get(k, k) for k in ("input", "conv1", "c1", "relu", "r1", "conv2", "output", "w1", "w2")}
    nodes = [helper.make_node("Conv", [n["input"], n["w1"]], [n["c1"]], pads=[1, 1, 1, 1], name=n["conv1"]),
             helper.make_node("Relu", [n["c1"]], [n["r1"]], name=n["relu"]),
             helper.make_node("Conv", [n["r1"], n["w2"]], [n["output"]], name=n["conv2"])]
    return make_model(nodes, {n["input"]: [1, 2, 6, 6]}, {n["output"]: None},
                      {n["w1"]: rng.standard_normal((4, 2, 3, 3)).astype(np.float32),
                       n["w2"]: rng.standard_normal((3, 4, 3, 3)).astype(np.float32)})


def generated_text(out: Path) -> str:
    return "".join(p.read_text(encoding="ascii") for p in sorted(out.glob("*.[ch]")))  # ASCII only, or it raises


def code_only(c: str) -> str:
    """C without its comments (as the compiler's translation phase 3 sees it, no string literal holding one)."""
    return re.sub(r"//[^\n]*", "", re.sub(r"/\*.*?\*/", " ", c, flags=re.S))


# ---- names ---------------------------------------------------------------------------------------------------------

def test_injected_system_call_does_not_run(tmp_path, capsys, monkeypatch):
    """The issue's payload as a Conv node name: validate compiles and runs the C on the host; pwned.txt must not
    appear and the comment must not be closed by the name."""
    path = tmp_path / "m.onnx"
    onnx.save(convnet({"conv1": INJECTION, "c1": INJECTION + " out"}), path)
    monkeypatch.chdir(tmp_path)
    code = main(["validate", "m.onnx", "--target", "host", "--out", "b"])
    assert code == 0, capsys.readouterr().err
    assert not (tmp_path / "pwned.txt").exists()
    c = generated_text(tmp_path / "b")
    assert "system" in c and not re.search(r"\bsystem\b", code_only(c))  # in comments and identifiers only


@pytest.mark.parametrize("quantize", ["none", "int8"])
def test_comment_closing_name_skips_no_layer(tmp_path, quantize):
    """'*/ return 0; /*' as the first node's name would return before any layer runs: outputs stay those of
    onnxruntime (float) or of the int8 reference (build_and_run compares; here float within 1e-5)."""
    model = convnet({"conv1": SKIP_LAYER, "relu": SKIP_LAYER + " ", "c1": SKIP_LAYER})
    samples, res, g, want = build_and_run(model, tmp_path, quantize=quantize)
    out_name = g.outputs[0]
    for got, ref in zip(res.outputs, want):
        err = np.abs(got[out_name] - ref["output"]).max()
        assert err < (1e-5 if quantize == "none" else 0.1 * np.abs(ref["output"]).max()), err
    hostile = code_only((tmp_path / "build" / "model.c").read_text(encoding="ascii"))
    build_and_run(convnet({}), tmp_path / "benign", quantize=quantize)
    benign = code_only((tmp_path / "benign" / "build" / "model.c").read_text(encoding="ascii"))
    assert len(re.findall(r"\breturn\b", hostile)) == len(re.findall(r"\breturn\b", benign))
    assert len(re.findall(r"\bec_\w+\(", hostile)) == len(re.findall(r"\bec_\w+\(", benign))


@pytest.mark.parametrize("name", HOSTILE[2:], ids=lambda s: repr(s[:20]))
def test_hostile_names_everywhere(tmp_path, name):
    """Each hostile string as every node, tensor and graph input/output name (with a suffix to keep them apart):
    the C compiles with -Wall -Werror, is ASCII, has no comment longer than 300 characters and computes the
    model."""
    names = {k: f"{name}{k}" for k in ("input", "conv1", "c1", "relu", "r1", "conv2", "output", "w1", "w2")}
    samples, res, g, want = build_and_run(convnet(names), tmp_path)
    for got, ref in zip(res.outputs, want):
        assert np.abs(got[names["output"]] - ref[names["output"]]).max() < 1e-5
    text = generated_text(tmp_path / "build")
    comments = re.findall(r"/\*.*?\*/", text, flags=re.S)
    assert max(len(line) for comment in comments for line in comment.splitlines()) <= 300
    assert "??" not in text and "\\" not in text.replace("\\n", "")


def test_names_equal_after_sanitising_stay_apart(tmp_path):
    """'a b' and 'a_b' (and two 300-character names with the same start) map to distinct symbols."""
    long_a, long_b = "n" * 299 + "a", "n" * 299 + "b"
    model = convnet({"conv1": "a b", "conv2": "a_b", "w1": long_a, "w2": long_b, "relu": "a?b"})
    samples, res, g, want = build_and_run(model, tmp_path)
    for got, ref in zip(res.outputs, want):
        assert np.abs(got["output"] - ref["output"]).max() < 1e-5
    assert c_identifier(long_a) != c_identifier(long_b) and len(c_identifier(long_a)) == 63


def test_c_identifier_and_text():
    assert c_identifier("conv_1") == "conv_1"  # safe names unchanged (the generated C stays the same)
    assert c_identifier("/conv1/Conv") == "m__conv1_Conv"
    for keyword in ("int", "return", "static", "_Bool", "bool", "true"):
        assert c_identifier(keyword) == f"m_{keyword}"
    assert c_identifier("_Foo").startswith("m_") and c_identifier("__x").startswith("m_")
    assert c_identifier("模型").isascii() and c_identifier("模型").isidentifier()
    assert c_text("a */ b /* c \\ d ?? e \n f \" % `") == "a _/ b /_ c _ d __ e _ f _ _ _"
    assert len(c_text("y" * 300)) == 200


@pytest.mark.parametrize("name", ["stdint", "math", "edgec", "string", "edgec_internal", "ec_conv2d_s8", "stdio",
                                  "firmware_main", "arm_neon", "STDINT"])
def test_reserved_model_names_refused(tmp_path, capsys, name):
    path = tmp_path / "m.onnx"
    onnx.save(simple_model(), path)
    code, err = run_cli(capsys, "build", path, "--name", name, "--out", tmp_path / "b")
    assert_user_error(code, err, f"--name {name}", "--name")
    assert not (tmp_path / "b").exists()


def test_reserved_model_file_name_refused(tmp_path, capsys):
    path = tmp_path / "math.onnx"
    onnx.save(simple_model(), path)
    code, err = run_cli(capsys, "build", path, "--out", tmp_path / "b")
    assert_user_error(code, err, str(path), "math.h", "--name")


@pytest.mark.parametrize("stem", ["модель ü", "y" * 200, "int", "9lives", "a b.c"])
def test_odd_model_file_names_build_and_run(tmp_path, capsys, stem):
    """Non-ASCII, long (the C name is cut to 40 characters with a hash), keyword and odd file names: a C name
    cffi can load, files the file system can hold."""
    path = tmp_path / f"{stem}.onnx"
    onnx.save(simple_model(), path)
    np.savez(tmp_path / "in.npz", input=np.ones((2, 1, 4), np.float32))
    code, err = run_cli(capsys, "build", path, "--out", tmp_path / "b")
    assert code == 0, err
    meta = json.loads((tmp_path / "b" / "edgec.json").read_text())
    assert meta["name"].isidentifier() and meta["name"].isascii() and len(meta["name"]) <= 40
    assert run_cli(capsys, "run", tmp_path / "b", "--inputs", tmp_path / "in.npz", "--output",
                   tmp_path / "o.npz")[0] == 0
    assert np.load(tmp_path / "o.npz")["output"].shape == (2, 1, 3)


def test_model_name_function():
    assert model_name("Resnet8", "x") == "resnet8"
    assert model_name("int", "x") == "m_int"
    with pytest.raises(EdgecError, match="--name"):
        model_name("Edgec_DSP", "x")


# ---- non-finite and oversized constants ------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_emitter_refuses_non_finite_constants(tmp_path, bad):
    """The emitter is the last line of defence: a weight that became non-finite after loading is refused with
    the node's name, and no C file is written."""
    path = tmp_path / "m.onnx"
    onnx.save(simple_model(), path)
    g = prepare_graph(path)
    node = next(n for n in g.nodes if n.op == "Gemm")
    weight = next(i for i in node.inputs[1:] if g.const(i) is not None)
    g.tensors[weight].data = g.const(weight).copy()
    g.tensors[weight].data.flat[0] = bad
    calls, steps, _ = lower_graph(g, load_target("host"))
    plan = plan_memory(steps, {n: t.nbytes for n, t in g.tensors.items()}, inputs=g.inputs, outputs=g.outputs)
    out = tmp_path / "c"
    with pytest.raises(EdgecError, match=f"node '{node.name}'.*non-finite"):
        write_project(g, calls, plan, "m", "m.onnx", out, {"inputs": [], "outputs": []})
    assert not out.exists()


def test_tensor_of_2_31_elements_refused(tmp_path, capsys):
    model = make_model([helper.make_node("Relu", ["input"], ["output"], name="relu")], {"input": [1, 2**31]},
                       {"output": None})
    path = tmp_path / "big.onnx"
    onnx.save(model, path)
    code, err = run_cli(capsys, "build", path, "--out", tmp_path / "b")
    assert_user_error(code, err, "2147483648 elements")
    assert not (tmp_path / "b").exists() and not list(tmp_path.glob(".b.*"))


# ---- output folders --------------------------------------------------------------------------------------------------

@pytest.fixture
def model_path(tmp_path):
    path = tmp_path / "simple.onnx"
    onnx.save(simple_model(), path)
    return path


def listing(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("command", ["build", "validate", "profile"])
def test_user_folder_with_a_file_survives(tmp_path, capsys, model_path, command):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("three years of work")
    code, err = run_cli(capsys, command, model_path, "--out", out)
    assert_user_error(code, err, str(out), "did not write")
    assert listing(out) == {"thesis.tex": b"three years of work"}


@pytest.mark.parametrize("spec", [".", "..", "~", "HOME", "/", "here/.."])
def test_cwd_parents_and_home_refused(tmp_path, capsys, model_path, monkeypatch, spec):
    work = tmp_path / "work" / "here"
    work.mkdir(parents=True)
    (work / "keep.txt").write_text("k")
    monkeypatch.chdir(work)
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / ".bashrc").write_text("b")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    before = listing(tmp_path)
    out = str(tmp_path / "home") if spec == "HOME" else spec
    code, err = run_cli(capsys, "build", model_path, "--out", out)
    assert_user_error(code, err, out)
    assert listing(tmp_path) == before


def test_file_symlink_and_unwritable_refused(tmp_path, capsys, model_path):
    afile = tmp_path / "notes.txt"
    afile.write_text("n")
    code, err = run_cli(capsys, "build", model_path, "--out", afile)
    assert_user_error(code, err, "is a file")
    assert afile.read_text() == "n"
    built = tmp_path / "built"
    assert run_cli(capsys, "build", model_path, "--out", built)[0] == 0
    link = tmp_path / "link"
    link.symlink_to(built)
    before = listing(built)
    code, err = run_cli(capsys, "build", model_path, "--out", link)
    assert_user_error(code, err, "symbolic link")
    assert listing(built) == before
    code, err = run_cli(capsys, "build", model_path, "--out", "/proc/edgec-out")
    assert_user_error(code, err, "/proc")
    code, err = run_cli(capsys, "build", model_path, "--out", afile / "sub")
    assert_user_error(code, err, "not a folder")


def test_rebuild_replaces_only_edgecs_files(tmp_path, capsys, model_path):
    out = tmp_path / "b"
    assert run_cli(capsys, "build", model_path, "--name", "first", "--out", out)[0] == 0
    marked = json.loads((out / MARKER).read_text())["files"]
    assert "first.c" in marked and "edgec.json" in marked
    (out / "main.c").write_text("int main(void) { return 0; }\n")
    (out / "runtime" / "mine.h").write_text("/* mine */\n")
    assert run_cli(capsys, "build", model_path, "--name", "second", "--out", out)[0] == 0
    assert not (out / "first.c").exists() and not (out / "libfirst.so").exists() and (out / "second.c").exists()
    assert (out / "main.c").read_text() == "int main(void) { return 0; }\n"
    assert (out / "runtime" / "mine.h").read_text() == "/* mine */\n"
    assert "main.c" not in json.loads((out / MARKER).read_text())["files"]
    # a file of the user's where edgec would write one: refused, untouched
    (out / MARKER).write_text((out / MARKER).read_text().replace('"second.c",', ""))
    code, err = run_cli(capsys, "build", model_path, "--name", "second", "--out", out)
    assert_user_error(code, err, "second.c", "not written by edgec")
    assert (out / "second.c").exists()


def test_failed_build_leaves_previous_output(tmp_path, capsys, model_path):
    out = tmp_path / "b"
    assert run_cli(capsys, "build", model_path, "--out", out)[0] == 0
    before = listing(out)
    bad = tmp_path / "bad.onnx"
    bad.write_text("not a model")
    assert run_cli(capsys, "build", bad, "--out", out)[0] == 2
    assert listing(out) == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


@pytest.mark.parametrize("marker", ["garbage", json.dumps({"kind": "edgec output folder", "files": ["../victim"]}),
                                    json.dumps({"kind": "something else", "files": []}),
                                    "[" * 100000 + "]" * 100000,  # (RecursionError)
                                    json.dumps({"kind": "edgec output folder", "files": ["a" * 10000]}),  # (OSError)
                                    json.dumps({"kind": "edgec output folder", "files": ["a\0b"]}), "fifo"])
def test_forged_or_damaged_marker_refused(tmp_path, capsys, model_path, marker):
    """Refused before anything is written: the file names a marker lists must be plain relative names the file
    system can hold (a 10,000-character one raised OSError after the new files were moved in), and a FIFO in the
    marker's place is not read (it would block)."""
    victim = tmp_path / "victim"
    victim.write_text("v")
    out = tmp_path / "b"
    out.mkdir()
    if marker == "fifo":
        os.mkfifo(out / MARKER)
    else:
        (out / MARKER).write_text(marker)
    code, err = run_cli(capsys, "build", model_path, "--out", out)
    assert_user_error(code, err, MARKER)
    assert victim.read_text() == "v" and sorted(p.name for p in out.iterdir()) == [MARKER]


def test_empty_folder_accepted(tmp_path, capsys, model_path):
    out = tmp_path / "empty"
    out.mkdir()
    assert run_cli(capsys, "build", model_path, "--out", out)[0] == 0
    assert (out / "simple.c").exists() and (out / MARKER).exists()


def test_compare_refuses_user_folder(tmp_path, capsys, model_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "results.csv").write_text("my results")
    code, err = run_cli(capsys, "compare", model_path, "--quick", "--out", out)
    assert_user_error(code, err, "did not write")
    assert listing(out) == {"results.csv": b"my results"}


# ---- single output files -------------------------------------------------------------------------------------------

@pytest.fixture
def built(tmp_path, capsys, model_path):
    out = tmp_path / "b"
    assert run_cli(capsys, "build", model_path, "--out", out)[0] == 0
    np.savez(tmp_path / "in.npz", input=np.ones((2, 1, 4), np.float32))
    return out, tmp_path / "in.npz"


def test_run_output_paths(tmp_path, capsys, built):
    out, inputs = built
    folder = tmp_path / "folder"
    folder.mkdir()
    target = tmp_path / "target.npz"
    target.write_bytes(b"precious")
    link = tmp_path / "link.npz"
    link.symlink_to(target)
    for bad, needle in ((folder, "a folder"), (link, "symbolic link"), (tmp_path / "missing" / "o.npz", "create it"),
                        (inputs, "input")):
        code, err = run_cli(capsys, "run", out, "--inputs", inputs, "--output", bad)
        assert_user_error(code, err, str(bad), needle)
    assert target.read_bytes() == b"precious" and list(folder.iterdir()) == []
    assert np.load(inputs)["input"].shape == (2, 1, 4)
    # an existing regular file named as the output is replaced, like gcc -o; no temporary file is left
    code, err = run_cli(capsys, "run", out, "--inputs", inputs, "--output", target)
    assert code == 0, err
    assert np.load(target)["output"].shape == (2, 1, 3)
    plain = tmp_path / "plain"  # exactly the file named, no .npz added
    assert run_cli(capsys, "run", out, "--inputs", inputs, "--output", plain)[0] == 0
    assert np.load(plain)["output"].shape == (2, 1, 3)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith((".target", ".plain", "plain."))]


def test_quantize_and_prune_outputs(tmp_path, capsys, model_path):
    calib = tmp_path / "calib.npz"
    np.savez(calib, input=np.random.default_rng(0).standard_normal((8, 1, 4)).astype(np.float32))
    before = model_path.read_bytes()
    code, err = run_cli(capsys, "quantize", model_path, "--calib", calib, "-o", model_path)
    assert_user_error(code, err, "input")
    code, err = run_cli(capsys, "quantize", model_path, "--calib", calib, "-o", tmp_path)
    assert_user_error(code, err, "a folder")
    link = tmp_path / "p.onnx"
    link.symlink_to(tmp_path / "elsewhere.onnx")
    code, err = run_cli(capsys, "prune", model_path, "-o", link)
    assert_user_error(code, err, "symbolic link")
    assert model_path.read_bytes() == before and not (tmp_path / "elsewhere.onnx").exists()
    assert run_cli(capsys, "quantize", model_path, "--calib", calib, "-o", tmp_path / "q.onnx")[0] == 0
    onnx.checker.check_model(onnx.load(tmp_path / "q.onnx"))
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".q.onnx")]


def test_constant_named_like_a_symbol_of_the_template(tmp_path):
    """Model 'w' has an arena w_arena and a run function w_run; Conv nodes 'arena' and 'run' have weights w_arena
    and w_run: the constants get other names and the C compiles and computes the model."""
    samples, res, g, want = build_and_run(convnet({"conv1": "arena", "conv2": "run", "relu": "inputs"}), tmp_path,
                                          name="w")
    for got, ref in zip(res.outputs, want):
        assert np.abs(got["output"] - ref["output"]).max() < 1e-5
    c = (tmp_path / "build" / "w.c").read_text()
    assert "static uint8_t w_arena[" in c and "static const float w_arena_1[" in c


@pytest.mark.parametrize("name", ["x" * 300, "../../evil", "ü/模型", "a\nb", "int"])
def test_odd_name_option(tmp_path, capsys, model_path, name):
    """--name is reduced to a C name too: no path outside --out, no file name the file system refuses."""
    code, err = run_cli(capsys, "build", model_path, "--name", name, "--out", tmp_path / "b")
    assert code == 0, err
    meta = json.loads((tmp_path / "b" / "edgec.json").read_text())
    assert meta["name"].isidentifier() and meta["name"].isascii() and len(meta["name"]) <= 40
    assert (tmp_path / "b" / f"{meta['name']}.h").is_file() and not (tmp_path.parent / "evil.h").exists()


def test_prune_plot_paths(tmp_path, capsys, model_path):
    code, err = run_cli(capsys, "prune", model_path, "--analyze", "--plot", tmp_path)
    assert_user_error(code, err, "--plot", "a folder")
    code, err = run_cli(capsys, "prune", model_path, "--analyze", "--plot", tmp_path / "s.xyz")
    assert_user_error(code, err, "--plot", ".xyz")
    assert run_cli(capsys, "prune", model_path, "--analyze", "--plot", tmp_path / "curves")[0] == 0
    assert (tmp_path / "curves").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curves", "simple.onnx"]
