"""Render lowered kernel calls into a self-contained C project: <name>.h, <name>.c, the runtime kernels and headers
used, and the files that put it into a user's firmware (CMakeLists.txt, edgec.mk, example_main.c, README.md)."""

from __future__ import annotations

import hashlib
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import jinja2
import numpy as np

from edgec import __version__
from edgec.calls import Arg, Array, Buf, Call, Raw, Scratch, Struct
from edgec.errors import EdgecError
from edgec.ir import CTYPES, ELEM_BYTES, NUMPY_TYPES, Graph
from edgec.paths import RUNTIME_DIR, TEMPLATES_DIR

from .memory import Plan, scratch_name

# Strings from a model or the command line (node, tensor and file names) never reach the generated text as they are.
# In identifier positions they go through c_identifier; everywhere else (comments) every template expression is
# reduced to a safe character set by c_text, the environment's finalize, unless it is CCode, text that edgec
# generated itself (C expressions, array bodies). So a template cannot forget to escape a name.
MAX_IDENTIFIER = 63  # C99's guaranteed significant characters of an internal identifier
MAX_MODEL_NAME = 40  # <name>_output_bytes and the other external symbols stay well under 63
MAX_TEXT = 200
_CTYPE_BYTES = {"float": 4, "int32_t": 4, "uint32_t": 4, "int64_t": 8, "int16_t": 2}
C_SIZE_LIMIT = 2**31  # element and byte counts are int32_t/uint32_t in the runtime; a Cortex-M has 32-bit addresses
_TEXT_UNSAFE = re.compile(r"[^A-Za-z0-9 _.,:;/+=()\[\]{}<>#@!&|^~'$-]")
_C_KEYWORDS = frozenset("""
    auto break case char const continue default do double else enum extern float for goto if inline int long register
    restrict return short signed sizeof static struct switch typedef union unsigned void volatile while asm typeof
    typeof_unqual alignas alignof bool constexpr false nullptr static_assert thread_local true
    """.split())
# Model names that would make <name>.h shadow a header the generated C or the C library includes (the build folder
# is on the include path), or <name>.c clash with a runtime or harness source.
_RESERVED_HEADERS = frozenset("""
    assert complex ctype errno fenv float inttypes iso646 limits locale math setjmp signal stdalign stdarg stdatomic
    stdbit stdbool stdckdint stddef stdint stdio stdlib stdnoreturn string tgmath threads time uchar wchar wctype
    alloca byteswap dirent dlfcn endian fcntl features glob malloc memory poll pthread sched semaphore strings
    termios unistd ec firmware_main linux_main startup
    """.split())
_RESERVED_PREFIXES = ("edgec", "ec_", "arm_", "cmsis", "core_cm")


class CCode(str):
    """C text that edgec generated itself (expressions, array bodies): rendered as it is."""


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]


def c_identifier(text: str, max_len: int = MAX_IDENTIFIER) -> str:
    """A C identifier for any string: ASCII letters, digits and _ only, never a keyword nor reserved (no leading
    digit or _: an "m_" prefix then), at most max_len characters (a longer one keeps its start and gets a hash of
    the whole string, so different names stay different). Safe names are kept as they are."""
    ident = re.sub(r"[^A-Za-z0-9_]", "_", text)
    if not ident or ident[0].isdigit() or ident[0] == "_" or ident in _C_KEYWORDS:
        ident = f"m_{ident}"
    if len(ident) > max_len:
        ident = f"{ident[:max_len - 9]}_{_digest(text)}"
    return ident


def c_text(value: object, max_len: int = MAX_TEXT) -> str:
    """Any value as text that is safe in a C comment or string literal: printable ASCII without * \\ ? " % or
    backquote (so no */, no line splice, no trigraph, no format directive), other characters as _, at most max_len
    characters."""
    text = _TEXT_UNSAFE.sub("_", str(value))
    return text if len(text) <= max_len else text[:max_len - 3] + "..."


def _finalize(value: object) -> object:
    return value if isinstance(value, CCode) else c_text(value)


def model_name(text: str, origin: str) -> str:
    """The C name of a model (<name>.h, <name>_run): c_identifier in lower case. Refused when <name>.h would
    shadow a C library, compiler or edgec runtime header, or <name>.c a runtime or harness source (origin: where
    the name came from, for the message)."""
    name = c_identifier(text.lower(), MAX_MODEL_NAME)
    if name in _RESERVED_HEADERS or name.startswith(_RESERVED_PREFIXES) or name.endswith("intrin"):
        raise EdgecError(f"{origin}: the model name '{name}' would generate {name}.h and {name}.c, which would "
                         "shadow a C library or edgec runtime header or source; choose another with --name (names "
                         "starting with edgec, ec_, arm_ or cmsis and the C and POSIX header names are reserved)")
    return name


_ENV = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)), trim_blocks=True, lstrip_blocks=True,
                          undefined=jinja2.StrictUndefined, keep_trailing_newline=True, finalize=_finalize)


def render_template(template: str, **kw) -> str:
    return _ENV.get_template(template).render(**kw)


def _c_number(x, ctype: str) -> str:
    if ctype == "float":
        v = float(x)
        if np.isinf(v):
            return "INFINITY" if v > 0 else "-INFINITY"
        text = f"{v:.9g}"
        return text + ("f" if any(ch in text for ch in ".e") else ".0f")
    if ctype == "uint32_t":
        return f"{int(x)}u"
    if ctype == "int32_t" and int(x) == -(2**31):
        return "INT32_MIN"
    if ctype == "int64_t":
        return f"INT64_C({int(x)})"
    return str(int(x))


@dataclass
class _Out:
    arrays: list[dict]
    structs: list[dict]
    locals: list[str]


class Emitter:
    def __init__(self, g: Graph, plan: Plan, name: str, source: str = "the model") -> None:
        self.g, self.plan, self.name, self.source = g, plan, name, source
        self.out = _Out([], [], [])
        # the names the templates define themselves: a constant named like one of them gets a suffix
        self.symbols: set[str] = {"inputs", "outputs", *(f"{name}_{s}" for s in (
            "arena", "run", "invoke", "input", "output", "input_bytes", "output_bytes", "dump_hook"))}
        self.step = 0
        self.shared: dict[tuple, str] = {}  # an array or struct emitted once for every call that passes it

    def unique(self, base: str) -> str:
        sym, k = c_identifier(base), 0
        while sym in self.symbols:
            k += 1
            sym = f"{c_identifier(base)}_{k}"
        self.symbols.add(sym)
        return sym

    def buf(self, b: Buf) -> str:
        """Every activation, the model's inputs and outputs included, lives in the arena."""
        const = "const " if b.const else ""
        return f"({const}{b.ctype} *)({self.name}_arena + {self.plan.offset(b.tensor)})"

    def refuse(self, what: str) -> EdgecError:
        """The error for a constant the C cannot hold, naming the node being emitted."""
        node = self.g.nodes[self.step]
        return EdgecError(f"{self.source}: node '{node.name}' ({node.op}): {what}; edgec does not emit it. Fix the "
                          "model's weights or attributes")

    def array(self, a: Array) -> str:
        data = np.asarray(a.data)
        if data.dtype == object:  # pointers known only at run time: a local array
            sym = self.unique(a.name)
            items = ", ".join(self.arg(x) for x in data.ravel())
            self.out.locals.append(CCode(f"{a.ctype} const {sym}[{data.size}] = {{ {items} }};"))
            return sym
        key = ("array", a.ctype, data.dtype.str, data.shape, data.tobytes())
        if key in self.shared:  # the same constants (the strips of a layer run in strips): one copy in flash
            return self.shared[key]
        sym = self.shared[key] = self.unique(a.name)
        flat = data.ravel()
        nbytes = flat.size * _CTYPE_BYTES.get(a.ctype, 1)
        if nbytes >= C_SIZE_LIMIT:
            raise self.refuse(f"constant {sym} has {flat.size} elements ({nbytes} bytes), beyond the "
                              f"{C_SIZE_LIMIT - 1} bytes edgec's C can address")
        if a.ctype == "float" and not np.isfinite(flat.astype(np.float64)).all():
            bad = int(np.count_nonzero(~np.isfinite(flat.astype(np.float64))))
            raise self.refuse(f"constant {sym} holds {bad} non-finite value(s) (NaN or infinity)")
        per_line = 16 if a.ctype in ("int8_t", "uint8_t") else 8
        lines = [", ".join(_c_number(v, a.ctype) for v in flat[i:i + per_line]) for i in range(0, flat.size,
                                                                                                   per_line)]
        self.out.arrays.append({"ctype": a.ctype, "name": sym, "count": max(flat.size, 1),
                                "body": CCode("    " + ",\n    ".join(lines) if lines else "    0")})
        return sym

    def struct(self, s: Struct) -> str:
        body = ", ".join(f".{k} = {self.arg(v)}" for k, v in s.fields.items())
        key = ("struct", s.ctype, body)
        if key not in self.shared:
            self.shared[key] = sym = self.unique(s.name)
            self.out.structs.append({"ctype": s.ctype, "name": sym, "body": CCode(body)})
        return self.shared[key]

    def arg(self, a: Arg) -> str:
        if isinstance(a, Buf):
            return self.buf(a)
        if isinstance(a, Array):
            return self.array(a)
        if isinstance(a, Struct):
            return "&" + self.struct(a)
        if isinstance(a, Raw):
            return a.text
        if isinstance(a, Scratch):
            return f"(void *)({self.name}_arena + {self.plan.offset(scratch_name(self.step))})"
        if isinstance(a, list):
            return "{ " + ", ".join(self.arg(x) for x in a) + " }"
        if isinstance(a, float):
            if np.isnan(a):
                raise self.refuse("a parameter is NaN")
            return _c_number(a, "float")
        return _c_number(a, "int32_t")

    def call(self, c: Call, step: int) -> dict:
        self.step = step
        return {"comment": f"{c.node}: {c.kernel}",
                "text": CCode(f"{c.kernel}({', '.join(self.arg(a) for a in c.args)})")}


# A kernel source built from another one (runtime_c/src/<kernel>_tflm.c): the file it includes.
INCLUDED_SOURCE = re.compile(r'^#include "(ec_\w+\.c)"$', re.MULTILINE)


def element_type(g: Graph, tensor: str) -> tuple[str, int, type]:
    """A tensor's element type (toolchain/ir.py's tables): C type, bytes, numpy type."""
    dtype = g.tensors[tensor].dtype
    return CTYPES[dtype], ELEM_BYTES[dtype], NUMPY_TYPES[dtype]


def check_sizes(g: Graph, plan: Plan, source: str) -> None:
    """Refuse, before any C is written, a tensor or arena whose element or byte count the generated C cannot hold
    (int32_t sizes and offsets, uint32_t byte counts, 32-bit targets)."""
    for t in g.tensors.values():
        if t.size >= C_SIZE_LIMIT or t.nbytes >= C_SIZE_LIMIT:
            raise EdgecError(f"{source}: tensor '{t.name}' {list(t.shape)} has {t.size} elements ({t.nbytes} bytes); "
                             f"edgec's C handles tensors below {C_SIZE_LIMIT} elements and bytes. Check the model's "
                             "shapes or --input-shape")
    for name in (*g.inputs, *g.outputs):
        scale = g.tensors[name].scale
        if scale is not None and not np.isfinite(np.asarray(scale, np.float64)).all():
            raise EdgecError(f"{source}: the quantization scale of '{name}' is not finite ({scale}); check the "
                             "calibration data")
    if plan.arena_bytes >= C_SIZE_LIMIT:
        raise EdgecError(f"{source}: the arena needs {plan.arena_bytes} bytes, beyond a 32-bit address space "
                         f"({C_SIZE_LIMIT} bytes at most). Check the model's shapes or --input-shape")


def _with_dumps(em: Emitter, g: Graph, calls: list[tuple[int, Call]], name: str) -> list[dict]:
    """The calls with, after every node (step), its output buffer passed to <name>_dump_hook when that is set."""
    rendered: list[dict] = []
    for step, node in enumerate(g.nodes):
        rendered.extend(em.call(c, s) for s, c in calls if s == step)
        out = node.outputs[0]
        ctype, size, _ = element_type(g, out)
        nbytes = g.tensors[out].size * size
        rendered.append({"comment": f"tensor dump: {out}",
                         "text": CCode(f"if ({name}_dump_hook) {name}_dump_hook({step}u, "
                                       f"{em.buf(Buf(out, ctype))}, {nbytes}u)")})
    return rendered


# Runtime headers that <name>.c includes only when the model calls a kernel (or uses a type) they declare.
OPTIONAL_HEADERS = ("edgec_lowbit.h", "edgec_sparse.h", "edgec_tflm_kernels.h")
_INCLUDE = re.compile(r'^[ \t]*#[ \t]*include[ \t]+"([^"]+)"', re.MULTILINE)
# A declared function "ec_x(" or a typedef'd struct or enum "} ec_x;".
_DECLARED = re.compile(r"\b(ec_\w+)\s*\(|}\s*(ec_\w+)\s*;")
# Target names CMake reserves (policy CMP0037): a model with one of these names gets the library <name>_model.
_CMAKE_RESERVED = {"all", "clean", "help", "install", "test", "package", "package_source", "edit_cache",
                   "rebuild_cache", "depend", "preinstall", "list_install_components"}
# Integer element types: the bounds the quantize helpers in <name>.h clamp to.
_INT_RANGES = {"int8_t": (-128, 127), "int16_t": (-32768, 32767)}


def optional_headers(used: set[str]) -> list[str]:
    """The OPTIONAL_HEADERS that declare one of the used kernels or types."""
    found = []
    for header in OPTIONAL_HEADERS:
        declared = {a or b for a, b in _DECLARED.findall((RUNTIME_DIR / "include" / header).read_text())}
        if declared & used:
            found.append(header)
    return found


def runtime_headers(c_files: Iterable[Path]) -> list[str]:
    """The runtime headers (runtime_c/include) that the C files include, directly or through each other."""
    seen: set[str] = set()
    texts = [Path(f).read_text() for f in c_files]
    while texts:
        for header in _INCLUDE.findall(texts.pop()):
            path = RUNTIME_DIR / "include" / header
            if header not in seen and path.is_file():
                seen.add(header)
                texts.append(path.read_text())
    return sorted(seen)


def write_project(g: Graph, calls: list[tuple[int, Call]], plan: Plan, name: str, source: str, out_dir: Path,
                  io: dict, instrument: str | None = None, compiler: dict | None = None) -> list[Path]:
    """Write <name>.h, <name>.c and runtime/ into out_dir; returns the C sources to compile.

    calls: (step index, call) in execution order; the step (node index) selects the call's scratch buffer.
    instrument "dump": a tensor dump build (see _with_dumps); any other value leaves the C as it is (a
    profiling build differs only in how the firmware is linked, see toolchain/firmware.py).
    compiler: {"target", "cc", "cflags", "target_flags"} (toolchain/build.py compiler_flags), stated in the
    header; with it the integration files are written too (write_integration)."""
    if c_identifier(name, MAX_MODEL_NAME) != name:
        raise ValueError(f"model name {name!r} is not a C identifier: make it with model_name()")
    check_sizes(g, plan, source)
    em = Emitter(g, plan, name, source)
    if instrument == "dump":
        rendered = _with_dumps(em, g, calls, name)
    else:
        rendered = [em.call(c, step) for step, c in calls]
    types = sorted({g.tensors[t].dtype for t in g.activations()}, key=["int8", "int16", "float32"].index)
    mode = "float32" if not g.quantized else \
        f"quantized, weights int8, activations {' and '.join(types)} (see SCALE/ZERO_POINT)"
    kernels = sorted({c.kernel for _, c in calls})
    used = set(kernels) | {s["ctype"] for s in em.out.structs} | {a["ctype"] for a in em.out.arrays}
    ctx = dict(name=name, NAME=name.upper(), version=__version__, source=source, mode_comment=mode,
               arena_bytes=plan.arena_bytes, lower_bound=plan.lower_bound_bytes, inputs=io["inputs"],
               outputs=io["outputs"], input_bytes=[x["bytes"] for x in io["inputs"]],
               output_bytes=[x["bytes"] for x in io["outputs"]], arrays=em.out.arrays, structs=em.out.structs,
               locals=em.out.locals, calls=rendered, input_offsets=[plan.offset(t) for t in g.inputs],
               output_offsets=[plan.offset(t) for t in g.outputs],
               dump=instrument == "dump", optional_headers=optional_headers(used), compiler=compiler,
               int_ranges=_INT_RANGES)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{name}.h").write_text(render_template("model.h.j2", **ctx))
    (out_dir / f"{name}.c").write_text(render_template("model.c.j2", **ctx))
    rt = out_dir / "runtime"
    (rt / "include").mkdir(parents=True, exist_ok=True)
    sources, included = [out_dir / f"{name}.c"], []
    for kernel in kernels:
        dst = rt / f"{kernel}.c"
        shutil.copy(RUNTIME_DIR / "src" / f"{kernel}.c", dst)
        sources.append(dst)
        for base in INCLUDED_SOURCE.findall(dst.read_text()):  # <kernel>_tflm.c builds <kernel>.c (not a source)
            shutil.copy(RUNTIME_DIR / "src" / base, rt / base)
            included.append(rt / base)
    headers = runtime_headers(sources + included)  # only the headers the model and its kernels include
    if not any("tflm" in k for k in kernels):  # the runtime includes edgec_tflm.h only where EC_TFLM is defined
        headers = [h for h in headers if h != "edgec_tflm.h"]
    for h in headers:
        shutil.copy(RUNTIME_DIR / "include" / h, rt / "include" / h)
    if compiler is not None:
        write_integration(out_dir, ctx, sources)
    return sources


def write_integration(out_dir: Path, ctx: dict, sources: list[Path]) -> None:
    """The files that put the model into a user's project: CMakeLists.txt (a static library named after the
    model), edgec.mk (a Makefile fragment), example_main.c (fills the inputs, runs, prints the outputs) and
    README.md (how to call and link it)."""
    name = ctx["name"]
    ctx = dict(ctx, sources=[s.relative_to(out_dir).as_posix() for s in sources],
               lib=f"{name}_model" if name in _CMAKE_RESERVED else name)
    for template, filename in (("CMakeLists.txt.j2", "CMakeLists.txt"), ("edgec.mk.j2", "edgec.mk"),
                               ("example_main.c.j2", "example_main.c"), ("README.md.j2", "README.md")):
        (out_dir / filename).write_text(render_template(template, **ctx))
