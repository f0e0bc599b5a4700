"""Render lowered kernel calls into a self-contained C project: <name>.h, <name>.c and the runtime kernels used."""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import jinja2
import numpy as np

from edgec import __version__
from edgec.calls import Arg, Array, Buf, Call, Raw, Scratch, Struct
from edgec.ir import CTYPES, ELEM_BYTES, NUMPY_TYPES, Graph
from edgec.paths import RUNTIME_DIR, TEMPLATES_DIR

from .memory import Plan, scratch_name

_ENV = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)), trim_blocks=True, lstrip_blocks=True,
                          undefined=jinja2.StrictUndefined, keep_trailing_newline=True)


def c_identifier(text: str) -> str:
    ident = re.sub(r"\W", "_", text)
    return ident if ident and not ident[0].isdigit() else f"m_{ident}"


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
    def __init__(self, g: Graph, plan: Plan, name: str) -> None:
        self.g, self.plan, self.name = g, plan, name
        self.out = _Out([], [], [])
        self.symbols: set[str] = set()
        self.inputs_used = False
        self.step = 0

    def unique(self, base: str) -> str:
        sym, k = c_identifier(base), 0
        while sym in self.symbols:
            k += 1
            sym = f"{c_identifier(base)}_{k}"
        self.symbols.add(sym)
        return sym

    def buf(self, b: Buf) -> str:
        g, plan = self.g, self.plan
        root = plan.root.get(b.tensor, b.tensor)
        const = "const " if b.const else ""
        if root in g.inputs:
            self.inputs_used = True
            return f"({const}{b.ctype} *)inputs[{g.inputs.index(root)}]"
        if root in g.outputs:
            return f"({const}{b.ctype} *)outputs[{g.outputs.index(root)}]"
        return f"({const}{b.ctype} *)({self.name}_arena + {plan.offsets[root]})"

    def array(self, a: Array) -> str:
        sym = self.unique(a.name)
        data = np.asarray(a.data)
        if data.dtype == object:  # pointers known only at run time: a local array
            items = ", ".join(self.arg(x) for x in data.ravel())
            self.out.locals.append(f"{a.ctype} const {sym}[{data.size}] = {{ {items} }};")
            return sym
        flat = data.ravel()
        per_line = 16 if a.ctype in ("int8_t", "uint8_t") else 8
        lines = [", ".join(_c_number(v, a.ctype) for v in flat[i:i + per_line]) for i in range(0, flat.size,
                                                                                                   per_line)]
        self.out.arrays.append({"ctype": a.ctype, "name": sym, "count": max(flat.size, 1),
                                "body": "    " + ",\n    ".join(lines) if lines else "    0"})
        return sym

    def struct(self, s: Struct) -> str:
        sym = self.unique(s.name)
        body = ", ".join(f".{k} = {self.arg(v)}" for k, v in s.fields.items())
        self.out.structs.append({"ctype": s.ctype, "name": sym, "body": body})
        return sym

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
            return f"(void *)({self.name}_arena + {self.plan.offsets[scratch_name(self.step)]})"
        if isinstance(a, list):
            return "{ " + ", ".join(self.arg(x) for x in a) + " }"
        if isinstance(a, float):
            return _c_number(a, "float")
        return _c_number(a, "int32_t")

    def call(self, c: Call, step: int) -> dict:
        self.step = step
        return {"comment": f"{c.node}: {c.kernel}", "text": f"{c.kernel}({', '.join(self.arg(a) for a in c.args)})"}


def element_type(g: Graph, tensor: str) -> tuple[str, int, type]:
    """A tensor's element type (toolchain/ir.py's tables): C type, bytes, numpy type."""
    dtype = g.tensors[tensor].dtype
    return CTYPES[dtype], ELEM_BYTES[dtype], NUMPY_TYPES[dtype]


def _with_dumps(em: Emitter, g: Graph, calls: list[tuple[int, Call]], name: str) -> list[dict]:
    """The calls with, after every node (step), its output buffer passed to <name>_dump_hook when that is set."""
    rendered: list[dict] = []
    for step, node in enumerate(g.nodes):
        rendered.extend(em.call(c, s) for s, c in calls if s == step)
        out = node.outputs[0]
        ctype, size, _ = element_type(g, out)
        nbytes = g.tensors[out].size * size
        rendered.append({"comment": f"tensor dump: {out}",
                         "text": f"if ({name}_dump_hook) {name}_dump_hook({step}u, {em.buf(Buf(out, ctype))}, "
                                 f"{nbytes}u)"})
    return rendered


def write_project(g: Graph, calls: list[tuple[int, Call]], plan: Plan, name: str, source: str, out_dir: Path,
                  io: dict, instrument: str | None = None) -> list[Path]:
    """Write <name>.h, <name>.c and runtime/ into out_dir; returns the C sources to compile.

    calls: (step index, call) in execution order; the step (node index) selects the call's scratch buffer.
    instrument "dump": a tensor dump build (see _with_dumps); any other value leaves the C as it is (a
    profiling build differs only in how the firmware is linked, see toolchain/firmware.py)."""
    em = Emitter(g, plan, name)
    if instrument == "dump":
        rendered = _with_dumps(em, g, calls, name)
    else:
        rendered = [em.call(c, step) for step, c in calls]
    types = sorted({g.tensors[t].dtype for t in g.activations()}, key=["int8", "int16", "float32"].index)
    mode = "float32" if not g.quantized else \
        f"quantized, weights int8, activations {' and '.join(types)} (see SCALE/ZERO_POINT)"
    ctx = dict(name=name, NAME=name.upper(), version=__version__, source=source, mode_comment=mode,
               arena_bytes=plan.arena_bytes, lower_bound=plan.lower_bound_bytes, inputs=io["inputs"],
               outputs=io["outputs"], input_bytes=[x["bytes"] for x in io["inputs"]],
               output_bytes=[x["bytes"] for x in io["outputs"]], arrays=em.out.arrays, structs=em.out.structs,
               locals=em.out.locals, calls=rendered, inputs_used=em.inputs_used,
               dump=instrument == "dump")
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{name}.h").write_text(render_template("model.h.j2", **ctx))
    (out_dir / f"{name}.c").write_text(render_template("model.c.j2", **ctx))
    rt = out_dir / "runtime"
    (rt / "include").mkdir(parents=True, exist_ok=True)
    for h in (RUNTIME_DIR / "include").glob("*.h"):
        shutil.copy(h, rt / "include" / h.name)
    sources = [out_dir / f"{name}.c"]
    for kernel in sorted({c.kernel for _, c in calls}):
        dst = rt / f"{kernel}.c"
        shutil.copy(RUNTIME_DIR / "src" / f"{kernel}.c", dst)
        sources.append(dst)
    return sources
