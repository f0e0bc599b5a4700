"""The host target: the generated C compiled as a shared library with gcc and called through cffi."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import cffi

from .console import stage, track
from .errors import EdgecError

HOST_CFLAGS = ["-std=c99", "-O2", "-fPIC", "-shared", "-Wall", "-Wextra", "-Werror"]


def build_shared(sources: list[Path], include_dirs: list[Path], out: Path, cc: str = "gcc") -> Path:
    if shutil.which(cc) is None:
        raise EdgecError(f"the host C compiler '{cc}' is not installed; install it with: apt-get install -y gcc")
    cmd = [cc, *HOST_CFLAGS, *(f"-I{d}" for d in include_dirs), *map(str, sources), "-lm", "-o", str(out)]
    with stage("compiling C for the host"):
        proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise EdgecError(f"compiling the generated C for the host failed:\n{proc.stderr.strip()}")
    return out


def run_shared(lib: Path, name: str, samples: list[list[bytes]], output_bytes: list[int],
               dumps: list[list[tuple[int, bytes]]] | None = None) -> list[list[bytes]]:
    """Run <name>_run once per sample; samples[i][k] holds input k's bytes.

    dumps: for a tensor dump build, a list that receives per sample the (layer, bytes) of every layer's output."""
    ffi = cffi.FFI()
    ffi.cdef(f"int {name}_run(const void *const inputs[], void *const outputs[]);")
    if dumps is not None:
        ffi.cdef(f"extern void (*{name}_dump_hook)(uint32_t layer, const void *data, uint32_t bytes);")
    # dlopen caches by path: load a private copy so a rebuilt library at the same path is really reloaded.
    with tempfile.TemporaryDirectory() as tmp:
        private = Path(tmp) / lib.name
        try:
            shutil.copy(lib, private)
            dll = ffi.dlopen(str(private))
        except OSError as exc:
            raise EdgecError(f"{lib}: cannot load the host library ({exc}); rebuild with edgec build") from None
    if not hasattr(dll, f"{name}_run"):
        raise EdgecError(f"{lib}: has no function {name}_run; rebuild with edgec build")
    run = getattr(dll, f"{name}_run")
    if dumps is not None:
        @ffi.callback("void(uint32_t, const void *, uint32_t)")
        def hook(layer: int, data, nbytes: int) -> None:
            dumps[-1].append((int(layer), bytes(ffi.buffer(data, nbytes))))

        setattr(dll, f"{name}_dump_hook", hook)
    results = []
    for sample in track(samples, "running on the host", "samples"):
        if dumps is not None:
            dumps.append([])
        ins = [ffi.from_buffer(b) for b in sample]
        outs = [ffi.new("char[]", n) for n in output_bytes]
        in_ptrs = ffi.new("void *[]", [ffi.cast("void *", x) for x in ins])
        out_ptrs = ffi.new("void *[]", [ffi.cast("void *", x) for x in outs])
        if run(in_ptrs, out_ptrs) != 0:
            raise EdgecError(f"{name}_run returned an error")
        results.append([bytes(ffi.buffer(o, n)) for o, n in zip(outs, output_bytes)])
    ffi.dlclose(dll)
    return results
