"""The generated API with the inputs and outputs in the arena (<name>_input, <name>_invoke, <name>_output) against
the caller-buffer API (<name>_run), through cffi on the host."""

from __future__ import annotations

import shutil

import cffi
import numpy as np

from edgec.build import HARNESS_DIR, BuildOptions, build
from edgec.examples import convnet, sample_inputs
from edgec.runner import encode, run_build


def test_invoke_in_the_arena_equals_run(tmp_path):
    import onnx

    model = tmp_path / "net.onnx"
    onnx.save(convnet(), model)
    np.savez(tmp_path / "calib.npz", **sample_inputs(convnet(), 8, seed=1))
    out, meta, _ = build(BuildOptions(model, quantize="int8", calib=tmp_path / "calib.npz", out=tmp_path / "b"))
    samples = [{k: v[i] for k, v in sample_inputs(convnet(), 3, seed=2).items()} for i in range(3)]
    want = run_build(out, samples).raw  # through net_run(inputs, outputs)

    ffi = cffi.FFI()
    ffi.cdef("void *net_input(uint32_t k); void *net_output(uint32_t k); int net_invoke(void);")
    lib = tmp_path / "copy.so"  # dlopen caches by path: a private copy
    shutil.copy(out / HARNESS_DIR / "libnet.so", lib)
    dll = ffi.dlopen(str(lib))
    assert dll.net_input(1) == ffi.NULL and dll.net_output(1) == ffi.NULL
    base = int(ffi.cast("uintptr_t", dll.net_input(0)))
    assert base % 4 == 0 and int(ffi.cast("uintptr_t", dll.net_output(0))) % 4 == 0
    for sample, expected in zip(samples, want):
        (blob,) = encode(meta, sample)
        ffi.memmove(dll.net_input(0), blob, len(blob))
        assert dll.net_invoke() == 0
        io = meta["outputs"][0]
        got = np.frombuffer(ffi.buffer(dll.net_output(0), io["bytes"]), np.int8).reshape(io["shape"])
        np.testing.assert_array_equal(got, expected[io["name"]])
    ffi.dlclose(dll)
