"""The output folder as a user's deliverable: CMakeLists.txt, edgec.mk and example_main.c build the model as a
library for the host and for Cortex-M with the user's tools, the example prints what `edgec run` computes, and
only the runtime headers the kernels include are copied."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import numpy as np
import onnx
import pytest

from edgec.cli import main
from edgec.examples import convnet, sample_inputs, simple_model

HAVE_CMAKE = shutil.which("cmake") is not None
HAVE_ARM_GCC = shutil.which("arm-none-eabi-gcc") is not None
needs_cmake = pytest.mark.skipif(not HAVE_CMAKE, reason="needs cmake")


def _build(tmp_path, model, target: str = "host", quantize: str = "int8"):
    path = tmp_path / f"{model.graph.name}.onnx"
    onnx.save(model, path)
    np.savez(tmp_path / "calib.npz", **sample_inputs(model, 16, seed=1))
    out = tmp_path / f"b-{target}"
    args = ["build", str(path), "--target", target, "--quantize", quantize, "--out", str(out)]
    assert main(args + (["--calib", str(tmp_path / "calib.npz")] if quantize != "none" else [])) == 0
    return out, json.loads((out / "edgec.json").read_text())


def _pattern_sample(meta: dict) -> dict[str, np.ndarray]:
    """The inputs example_main.c feeds: -1, -0.875, ..., 1 repeated; an integer input gets the quantize helper's
    integers (float32 division, rounded half to even), given to `edgec run` as the real values they represent."""
    sample = {}
    for io in meta["inputs"]:
        x = ((np.arange(io["size"]) % 17).astype(np.float32) - 8) / np.float32(8)
        if io["scale"] is not None:
            lo, hi = {"int8": (-128, 127), "int16": (-32768, 32767)}[io["dtype"]]
            q = np.clip(np.rint(x / np.float32(io["scale"])) + io["zero_point"], lo, hi)
            x = (q - io["zero_point"]) * io["scale"]
        sample[io["name"]] = x.reshape(io["shape"])[None].astype(np.float32)
    return sample


def _printed_outputs(text: str, meta: dict) -> dict[str, np.ndarray]:
    """example_main's lines "output<k>[i] = <stored> [<real>]" -> the stored values per output."""
    values: dict[int, list[float]] = {}
    for line in text.splitlines():
        m = re.fullmatch(r"output(\d+)\[(\d+)\] = (\S+)(?: (\S+))?", line)
        assert m, line
        values.setdefault(int(m.group(1)), []).append(float(m.group(3)))
    return {io["name"]: np.array(values[k]).reshape(io["shape"]) for k, io in enumerate(meta["outputs"])}


def _edgec_run(tmp_path, out, meta) -> dict[str, np.ndarray]:
    np.savez(tmp_path / "pattern.npz", **_pattern_sample(meta))
    assert main(["run", str(out), "--inputs", str(tmp_path / "pattern.npz"), "--output",
                 str(tmp_path / "ran.npz")]) == 0
    ran = np.load(tmp_path / "ran.npz")
    got = {}
    for io in meta["outputs"]:  # the stored integers of a quantized output, from the real values run writes
        v = ran[io["name"]][0]
        got[io["name"]] = v if io["scale"] is None else np.round(v / io["scale"]) + io["zero_point"]
    return got


@needs_cmake
@pytest.mark.parametrize("model, quantize", [(convnet(), "int8"), (simple_model(), "none")], ids=["int8", "float"])
def test_cmake_example_prints_what_edgec_run_computes(tmp_path, model, quantize):
    out, meta = _build(tmp_path, model, quantize=quantize)
    build_dir = tmp_path / "cmake-build"
    subprocess.run(["cmake", "-S", str(out), "-B", str(build_dir)], check=True, capture_output=True)
    made = subprocess.run(["cmake", "--build", str(build_dir), "--verbose"], check=True, capture_output=True,
                          text=True)
    assert "warning" not in (made.stdout + made.stderr).lower() and "-Wextra" in made.stdout
    assert (build_dir / f"lib{meta['name']}.a").is_file()
    printed = subprocess.run([str(build_dir / f"{meta['name']}_example")], check=True, capture_output=True,
                             text=True).stdout
    got, want = _printed_outputs(printed, meta), _edgec_run(tmp_path, out, meta)
    for io in meta["outputs"]:
        if quantize == "none":
            np.testing.assert_allclose(got[io["name"]], want[io["name"]], rtol=1e-6, atol=1e-7)
        else:  # the integers the C computed are the ones edgec run computed, exactly
            assert np.array_equal(got[io["name"]], want[io["name"]])
            assert len(set(got[io["name"]].ravel())) > 3  # the pattern drives the model, not a constant output


def test_makefile_fragment_builds_the_example(tmp_path):
    out, meta = _build(tmp_path, convnet())
    NAME = meta["name"].upper()
    (tmp_path / "Makefile").write_text(
        f"include {out}/edgec.mk\n"
        f"example: {out}/example_main.c $({NAME}_SRCS)\n"
        f"\tgcc $({NAME}_CFLAGS) $({NAME}_TARGET_FLAGS) -Wall -Wextra -Werror $^ -lm -o $@\n")
    subprocess.run(["make", "-C", str(tmp_path), "example"], check=True, capture_output=True)
    printed = subprocess.run([str(tmp_path / "example")], check=True, capture_output=True, text=True).stdout
    assert np.array_equal(_printed_outputs(printed, meta)["output"], _edgec_run(tmp_path, out, meta)["output"])


@needs_cmake
@pytest.mark.skipif(not HAVE_ARM_GCC, reason="needs arm-none-eabi-gcc")
@pytest.mark.parametrize("target, flag, kernel", [("cortex-m4", "-mfpu=fpv4-sp-d16", "ec_conv2d_gather_s8"),
                                                  ("cortex-m55", "-mcpu=cortex-m55", "ec_conv2d_gather_mve_s8")])
def test_cmake_cross_build_without_warnings(tmp_path, target, flag, kernel):
    out, meta = _build(tmp_path, convnet(), target)
    build_dir = tmp_path / "cmake-build"
    subprocess.run(["cmake", "-S", str(out), "-B", str(build_dir), "-DCMAKE_SYSTEM_NAME=Generic",
                    "-DCMAKE_C_COMPILER=arm-none-eabi-gcc", "-DCMAKE_TRY_COMPILE_TARGET_TYPE=STATIC_LIBRARY"],
                   check=True, capture_output=True)
    made = subprocess.run(["cmake", "--build", str(build_dir), "--verbose"], check=True, capture_output=True,
                          text=True)
    log = made.stdout + made.stderr
    assert "warning" not in log.lower() and flag in log and "-Wextra" in log and f"{kernel}.c" in log
    library = build_dir / f"lib{meta['name']}.a"
    symbols = subprocess.run(["arm-none-eabi-nm", str(library)], check=True, capture_output=True, text=True).stdout
    assert f"T {meta['name']}_run" in symbols and f"T {kernel}" in symbols
    assert not (build_dir / f"{meta['name']}_example").exists()  # no example when cross compiling
    assert meta["compiler"]["cc"] == "arm-none-eabi-gcc" and flag in meta["compiler"]["cflags"]
    assert flag in (out / f"{meta['name']}.h").read_text()  # the header states the flags


def test_output_folder_holds_the_model_and_only_the_headers_it_includes(tmp_path):
    out, meta = _build(tmp_path, convnet())
    headers = sorted(p.name for p in (out / "runtime" / "include").iterdir())
    assert headers == ["edgec.h", "edgec_conv2d_direct.h", "edgec_internal.h"]
    c = (out / "convnet.c").read_text()
    assert '#include "edgec_lowbit.h"' not in c and '#include "edgec_sparse.h"' not in c
    assert sorted(p.name for p in (out / "harness").iterdir()) == ["libconvnet.so"]
    for name in ("CMakeLists.txt", "edgec.mk", "example_main.c", "README.md"):
        assert (out / name).is_file(), name
    readme = (out / "README.md").read_text()
    for text in ('#include "convnet.h"', "convnet_input(k)", "convnet_invoke()", "convnet_output(k)",
                 "convnet_run(inputs, outputs)", "CONVNET_ARENA_BYTES", str(meta["arena_bytes"]),
                 "target_link_libraries", "edgec.mk"):
        assert text in readme, text
    out4, meta4 = _build(tmp_path, convnet(), quantize="int4")
    c4 = (out4 / "convnet.c").read_text()
    assert '#include "edgec_lowbit.h"' in c4 and '#include "edgec_sparse.h"' not in c4
    assert "edgec_lowbit.h" in {p.name for p in (out4 / "runtime" / "include").iterdir()}


@needs_cmake
def test_user_project_links_the_library_and_places_weights_and_arena(tmp_path):
    """A user's CMake project: add_subdirectory of the output folder, the section macros set for the model's C,
    the example as the user's program."""
    out, meta = _build(tmp_path, convnet())
    app = tmp_path / "app"
    app.mkdir()
    (app / "sections.h").write_text('#define EC_WEIGHTS_SECTION __attribute__((section(".my_weights")))\n'
                                    '#define EC_ARENA_SECTION __attribute__((section(".my_arena")))\n')
    (app / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.15)\nproject(app C)\n"
        f"add_subdirectory({out.as_posix()} convnet)\n"
        "target_compile_options(convnet PRIVATE -include ${CMAKE_CURRENT_SOURCE_DIR}/sections.h)\n"
        f"add_executable(app {out.as_posix()}/example_main.c)\ntarget_link_libraries(app PRIVATE convnet)\n")
    build_dir = tmp_path / "app-build"
    subprocess.run(["cmake", "-S", str(app), "-B", str(build_dir)], check=True, capture_output=True)
    made = subprocess.run(["cmake", "--build", str(build_dir), "--verbose"], check=True, capture_output=True,
                          text=True)
    assert "warning" not in (made.stdout + made.stderr).lower()
    assert not (build_dir / "convnet" / "convnet_example").exists()  # not the top-level project: no example
    printed = subprocess.run([str(build_dir / "app")], check=True, capture_output=True, text=True).stdout
    assert np.array_equal(_printed_outputs(printed, meta)["output"], _edgec_run(tmp_path, out, meta)["output"])
    objdump = subprocess.run(["objdump", "-h", str(build_dir / "app")], check=True, capture_output=True,
                             text=True).stdout
    sections = {line.split()[1]: int(line.split()[2], 16) for line in objdump.splitlines()
                if re.match(r"\s+\d+ \.my_", line)}
    assert sections[".my_arena"] == meta["arena_bytes"]
    assert sections[".my_weights"] >= meta["weight_bytes"] * 9 // 10  # the weight arrays (the structs stay)


@needs_cmake
def test_model_named_like_a_reserved_cmake_target(tmp_path):
    """CMake reserves target names such as "all": such a model's library is <name>_model."""
    path = tmp_path / "all.onnx"
    onnx.save(simple_model(), path)
    assert main(["build", str(path), "-o", str(tmp_path / "b")]) == 0
    subprocess.run(["cmake", "-S", str(tmp_path / "b"), "-B", str(tmp_path / "c")], check=True, capture_output=True)
    subprocess.run(["cmake", "--build", str(tmp_path / "c")], check=True, capture_output=True)
    assert (tmp_path / "c" / "liball_model.a").is_file()
    printed = subprocess.run([str(tmp_path / "c" / "all_example")], check=True, capture_output=True, text=True)
    assert printed.stdout.startswith("output0[0] = ")
    assert "target_link_libraries(your_app PRIVATE all_model)" in (tmp_path / "b" / "README.md").read_text()
