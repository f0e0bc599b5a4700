"""The build pipeline: load -> passes -> calibrate/quantize -> lower -> plan memory -> emit C -> compile."""

from __future__ import annotations

import dataclasses
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from edgec.codegen.emit import model_name, write_project
from edgec.codegen.memory import Plan, Step

from . import ApiModule, host, inplace, outdir
from .calls import Array, Call, Lowered
from .console import json_text
from .data import load_samples, random_samples
from .errors import EdgecError
from .frontends import load_model, require_static_shapes
from .ir import Graph, Node
from .ops import REGISTRY, tflm
from .ops.base import LowerContext
from .passes.fold import fold_batchnorm
from .passes.fuse import fuse_activations
from .passes.layout import assign_layout
from .passes.normalize import NORMALIZED, normalize
from .prune import PruneOptions, prune_graph
from .quantize import (
    SCHEMES,
    QuantOptions,
    is_prequantized,
    load_qconfig,
    needs_calibration,
    prequantized_layers,
    prequantized_scheme,
    qformat_name,
    quantize_calibrated,
    quantize_graph,
)
from .rounding import ROUNDINGS
from .schedule import Schedule
from .schedule import choose as choose_schedule
from .target import Target, load_target

RANDOM_CALIB_SAMPLES = 8
RANDOM_CALIB = "random"  # BuildOptions.calib (--calib random): calibrate on random normal data, on request only
META_FILE = "edgec.json"
HARNESS_DIR = "harness"  # edgec's own test program in a build: firmware (QEMU) or host library (cffi)


@dataclass
class BuildOptions:
    model: Path
    target: str = "host"
    quantize: str = "none"  # none or one of quantize.SCHEMES (with --qconfig: for the layers it does not name)
    qconfig: Path | None = None  # TOML: per-layer schemes (toolchain/quantize.py load_qconfig)
    flash_budget: int | None = None  # --quantize auto: the weight bytes allowed (toolchain/autoquant.py)
    max_sqnr_drop: float | None = None  # --quantize auto: dB of output SQNR below all-int8 allowed
    calib: Path | str | None = None  # .npz samples, or RANDOM_CALIB; None: an error for schemes that calibrate
    calibration: str = "auto"
    percentile: float = 99.99
    quant: QuantOptions = field(default_factory=QuantOptions)
    prune: PruneOptions | None = None
    input_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    out: Path | None = None
    force: bool = False
    name: str | None = None
    flash_bytes: int | None = None  # override the target's flash limit
    ram_bytes: int | None = None  # override the target's RAM limit
    # None: the normal build. "profile": the normal C and, on Cortex-M, firmware whose kernel calls go through
    # timing wrappers (per-layer instruction counts; toolchain/firmware.py); "dump": every layer's output passed
    # to a hook (per-layer divergence; codegen/emit.py).
    instrument: str | None = None
    sparse_kernels: str = "auto"  # auto (cost model) | dense | rows | gather (row-group) | nm (N:4) | block
    # Tensor RAM allowed (bytes): the fastest schedule that fits, row strips included (toolchain/schedule.py);
    # None: layer by layer.
    memory_budget: int | None = None


def prepare_graph(model: Path, input_shapes: dict[str, tuple[int, ...]] | None = None,
                  prune: PruneOptions | None = None, calib: Path | None = None, layout: bool = True) -> Graph:
    """Load and run the graph passes (pruning too, when asked); every unsupported op is reported in one message.
    layout=False stops before the channels-last layout (for writing the graph back as ONNX)."""
    g = load_model(model, input_shapes)
    supported = set(REGISTRY) | set(NORMALIZED)
    problems = [f"{n.op} (node '{n.name}')" for n in g.nodes if n.op not in supported]
    if problems:
        raise EdgecError(f"{model}: unsupported ops: {'; '.join(problems)}. Supported: "
                         f"{', '.join(sorted(supported - {'LayoutCast'}))}")
    require_static_shapes(g, model)
    normalize(g)
    fold_batchnorm(g)
    fuse_activations(g)
    problems = []
    for n in g.nodes:
        reason = REGISTRY[n.op].check(n, g) if n.op in REGISTRY else NORMALIZED[n.op]
        if reason:
            problems.append(f"{n.op} (node '{n.name}'): {reason}")
    if problems:
        raise EdgecError(f"{model}: unsupported: {'; '.join(problems)}")
    if prune is not None:
        samples = load_samples(calib, g, "calibration") if calib and calib != RANDOM_CALIB else None
        g.info["prune"] = prune_graph(g, prune, samples)
    if layout:
        assign_layout(g)
    g.remove_unused()
    return g


def quantize_with(g: Graph, opts: BuildOptions, target: Target | None = None) -> None:
    """Calibrate (on --calib, or random data with a warning for --calib random) and quantize g with opts.quantize
    and --qconfig (auto: per-layer schemes for the target, toolchain/autoquant.py)."""
    unknown = sorted(set(opts.quant.input_ranges) - set(g.inputs))
    if unknown:
        raise EdgecError(f"--input-range {', '.join(unknown)}: {opts.model} has no such input; its inputs are "
                         f"{', '.join(g.inputs)}")
    if opts.quantize == "auto":
        _quantize_auto(g, opts, target or load_target(opts.target))
        return
    layers = {}
    if opts.qconfig is not None:
        default, layers = load_qconfig(opts.qconfig, g)
        if opts.quantize == "none":  # the command line wins over the file's default
            if default is None:
                raise EdgecError(f"--qconfig {opts.qconfig}: give --quantize, or `default = \"int8\"` in the file "
                                 "(the scheme of the layers it does not name)")
            opts.quantize = default
    calib = opts.calib
    quant = dataclasses.replace(opts.quant, scheme=opts.quantize, layers=layers)
    if quant.weight_rounding not in ROUNDINGS:
        raise EdgecError(f"weight rounding {quant.weight_rounding!r}: choose one of {', '.join(ROUNDINGS)}")
    own = prequantized_scheme(g) if is_prequantized(g) else None  # (int8 reads int4 weights, not int16 scales)
    own_layers = prequantized_layers(g) if own is not None else {}  # a mixed model's, from edgec quantize
    if own is not None and (layers or quant.input_ranges or quant.scheme not in (
            {own} if own in ("int16", "q15") or own_layers else {"int8", own})):
        raise EdgecError(f"{opts.model} is already quantized (QDQ, {'mixed, mostly ' if own_layers else ''}{own}): "
                         f"--quantize {quant.scheme}, --qconfig and --input-range need a float model; use --quantize "
                         f"{own} (or leave it out) to build it with its own scales")
    if own is not None and (quant.equalize or quant.weight_rounding != "nearest"):
        raise EdgecError(f"{opts.model} is already quantized (QDQ, {own}): its weights are the model's; --equalize "
                         "and --weight-rounding need a float model")
    if own_layers:
        quant.layers = own_layers
    if calib is None and not needs_calibration(g, quant.layers):
        quantize_graph(g, {}, quant)
        return
    if calib is None:
        raise EdgecError(f"--quantize {quant.scheme} calibrates activation ranges on sample inputs: pass --calib "
                         "samples.npz with real inputs (or --calib random to calibrate on random normal data, for a "
                         "build whose accuracy means nothing)")
    if calib == RANDOM_CALIB:
        print("warning: --calib random: calibrating ranges on random normal data, so the accuracy of this "
              "build is not meaningful. Pass --calib samples.npz with real inputs.", file=sys.stderr)
        samples = random_samples(g, RANDOM_CALIB_SAMPLES)
        # choosing a calibration method by fidelity on random data would mean nothing
        method = "minmax" if opts.calibration == "auto" else opts.calibration
    else:
        samples = load_samples(calib, g, "calibration")
        method = opts.calibration
    g.info["calibration"], _ = quantize_calibrated(g, samples, method, opts.percentile, quant)


def _quantize_auto(g: Graph, opts: BuildOptions, target: Target) -> None:
    from .autoquant import choose_schemes

    if opts.qconfig is not None:
        raise EdgecError("--quantize auto chooses every layer's scheme itself; leave out --qconfig")
    if is_prequantized(g):
        raise EdgecError(f"{opts.model} is already quantized (QDQ): --quantize auto needs a float model")
    if opts.calib is None or opts.calib == RANDOM_CALIB:
        raise EdgecError("--quantize auto measures each layer's sensitivity on real inputs: give --calib samples.npz")
    samples = load_samples(opts.calib, g, "calibration")
    g.info["auto"] = choose_schemes(g, samples, opts.quant, opts.calibration, opts.percentile,
                                    lambda g: _const_bytes(lower_graph(g, target)[0]), opts.flash_budget,
                                    opts.max_sqnr_drop)


def lower_graph(g: Graph, target: Target, sparse_kernels: str = "auto") -> tuple[list[tuple[int, Call]], list[Step],
                                                                               list[dict]]:
    """Kernel calls tagged with their step (node index), the steps for memory planning, and a per-layer report.
    sparse_kernels: BuildOptions.sparse_kernels."""
    calls, steps, layers = [], [], []
    ctx = LowerContext(target, sparse_kernels)
    for i, node in enumerate(g.nodes):
        low = lower_node(node, g, ctx)
        ins = [i for i in node.inputs if i and g.const(i) is None]
        scratch = max((c.scratch_bytes for c in low.calls), default=0)
        steps.append(Step(ins, node.outputs[:1], low.alias, scratch, inplace.candidates(node, g, low.calls),
                          inplace.scratch_over(low.calls)))
        calls.extend((i, c) for c in low.calls)
        layers.append({"node": node.name, "op": node.op, "dtype": node.dtype,
                       "kernels": [c.kernel for c in low.calls],
                       "macs": REGISTRY[node.op].macs(node, g), "scratch_bytes": scratch, "note": low.note,
                       "weight_bytes": _const_bytes([(i, c) for c in low.calls]), "output": node.outputs[0],
                       **_formats(g, node)})
    return calls, steps, layers


def lower_node(node: Node, g: Graph, ctx: LowerContext) -> Lowered:
    low = REGISTRY[node.op].lower(node, g, ctx)
    if tflm.is_tflm(g):  # a TFLite model: every integer kernel computes TFLM's arithmetic
        low = tflm.retarget(node, low)
    return low


def plan_schedule(g: Graph, calls: list[tuple[int, Call]], steps: list[Step], layers: list[dict], target: Target,
                  opts: BuildOptions) -> tuple[Schedule, Plan, dict]:
    """The schedule (toolchain/schedule.py: layer by layer, or under --memory-budget the fastest that fits), its
    memory plan and its entry in the build report; marks the layers written in place."""
    if opts.memory_budget is not None and opts.instrument == "dump":
        raise EdgecError("--memory-budget and the tensor dumps of validate --per-layer do not go together: a dump "
                         "needs every layer's whole output")
    ctx = LowerContext(target, opts.sparse_kernels)
    schedule, plan = choose_schedule(g, Schedule(calls, steps, g, {}), opts.memory_budget,
                                     lambda node, g2: lower_node(node, g2, ctx))
    for layer in layers:
        if layer["output"] in plan.inplace:
            layer["inplace"] = plan.inplace[layer["output"]]  # the input it overwrites
    patch = schedule.patch
    report = {"kind": schedule.describe(), "memory_budget": opts.memory_budget,
              "tensor_ram_bytes": plan.tensor_ram_bytes, "lower_bound_bytes": plan.lower_bound_bytes,
              "extra_macs": patch.extra_macs if patch else 0,
              "patch": dataclasses.asdict(patch) if patch else None}
    return schedule, plan, report


def _formats(g: Graph, node) -> dict:
    """Q-format builds: the Qm.n of the node's output and, for Conv/Gemm, of its weights (per channel: the range)."""
    if not g.quantized or node.scheme not in ("qformat", "q15"):
        return {}
    out = g.tensors[node.outputs[0]]
    f = {"format": qformat_name(out.scale, out.zero_point, 16 if out.dtype == "int16" else 8)}
    if node.q and "w_scale" in node.q:
        names = sorted({qformat_name(float(s), 0) for s in node.q["w_scale"]}, key=lambda x: int(x.split(".")[1]))
        f["weight_format"] = names[0] if len(names) == 1 else f"{names[0]}..{names[-1]}"
    return f


def _io(g: Graph) -> dict:
    def desc(name: str, kind: str, k: int) -> dict:
        t = g.tensors[name]
        return {"name": name, "kind": kind, "macro": f"{kind.upper()}{k}", "shape": list(t.shape), "size": t.size,
                "bytes": t.nbytes, "ctype": t.ctype, "dtype": t.dtype, "scale": t.scale, "zero_point": t.zero_point}

    return {"inputs": [desc(n, "input", k) for k, n in enumerate(g.inputs)],
            "outputs": [desc(n, "output", k) for k, n in enumerate(g.outputs)]}


def _const_bytes(calls: list[tuple[int, Call]]) -> int:
    total = 0
    for _, c in calls:
        stack = list(c.args)
        while stack:
            a = stack.pop()
            if isinstance(a, Array) and a.data.dtype != object:
                total += a.data.nbytes if a.ctype != "float" else a.data.size * 4
            elif hasattr(a, "fields"):
                stack.extend(a.fields.values())
    return total


def build(opts: BuildOptions) -> tuple[Path, dict, Graph]:
    """Build a C project (and firmware for an emulated target) into opts.out; returns (dir, metadata, graph)."""
    target = _with_limits(load_target(opts.target), opts)
    if opts.instrument not in (None, "profile", "dump"):
        raise EdgecError(f"instrument={opts.instrument!r}: choose None, 'profile' or 'dump'")
    if opts.quantize not in ("none", *SCHEMES, "auto"):
        raise EdgecError(f"--quantize {opts.quantize}: choose none, {', '.join(SCHEMES)}, auto")
    if (opts.flash_budget is not None or opts.max_sqnr_drop is not None) and opts.quantize != "auto":
        raise EdgecError("--flash-budget and --max-sqnr-drop go with --quantize auto")
    if opts.quant.input_ranges and opts.quantize == "none" and opts.qconfig is None:
        raise EdgecError("--input-range sets how a quantized build's input is quantized: give --quantize too")
    name = model_name(opts.name, f"--name {opts.name}") if opts.name else model_name(opts.model.stem, str(opts.model))
    out = Path(opts.out or f"build/{name}-{target.name}")
    outdir.check_dir(out)  # before the work: refuse a folder edgec must not write
    g = prepare_graph(opts.model, opts.input_shapes, opts.prune, opts.calib)
    if opts.quantize == "none" and is_prequantized(g):
        opts.quantize = prequantized_scheme(g)
        kind = "TFLite" if g.arithmetic == "tflm" else "QDQ"
        print(f"note: {opts.model} is a quantized ({kind}) model: building {opts.quantize} with its scales",
              file=sys.stderr)
    if opts.quantize != "none" or opts.qconfig is not None:
        quantize_with(g, opts, target)
    calls, steps, layers = lower_graph(g, target, opts.sparse_kernels)
    weights = _const_bytes(calls)
    schedule, plan, sched_report = plan_schedule(g, calls, steps, layers, target, opts)
    params = sum(t.size for t in g.tensors.values() if t.is_const)
    meta = {"name": name, "model": str(Path(opts.model).resolve()), "target": target.name,
            "quantize": opts.quantize, **_io(g), "tensor_ram_bytes": plan.tensor_ram_bytes,
            "arena_bytes": plan.arena_bytes,
            "arena_lower_bound_bytes": plan.lower_bound_bytes, "schedule": sched_report, "weight_bytes": weights,
            "macs": sum(layer["macs"] for layer in layers), "params": int(params), "layers": layers,
            "input_shapes": {k: list(v) for k, v in opts.input_shapes.items()}, "prune": g.info.get("prune"),
            "calibration": g.info.get("calibration"), "auto": g.info.get("auto"), "equalize": g.info.get("equalize"),
            "limits": {"flash_bytes": target.flash_bytes, "ram_bytes": target.ram_bytes},
            "instrument": opts.instrument, "source_format": g.info.get("source_format", "onnx"),
            "integer_outputs": [n for n in g.info.get("integer_outputs", []) if g.tensors[n].dtype != "float32"]}
    if opts.quantize in ("qformat", "q15"):
        meta["formats"] = {n: qformat_name(t.scale, t.zero_point, 16 if t.dtype == "int16" else 8)
                           for n, t in ((n, g.tensors[n]) for n in g.activations())}
    meta["compiler"] = compiler_flags(target)
    fits = _check_fit(target, meta, opts)
    tmp = outdir.temp_dir(out)
    try:
        sources = write_project(schedule.graph, schedule.calls, plan, name, opts.model.name, tmp, _io(g),
                                opts.instrument, meta["compiler"])
        meta["sources"] = [str(s.relative_to(tmp)) for s in sources]
        if target.kind == "host" or fits:
            compile_build(tmp, meta, target)
        if "elf" in meta:
            _check_fit_linked(target, meta, opts)
        (tmp / META_FILE).write_text(json_text(meta, indent=1))
        outdir.publish(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out, meta, g


def compiler_flags(target: Target) -> dict:
    """How edgec compiles a model's C for the target: the compiler and flags (stated in the header and
    edgec.json), and the target's own flags (CPU, FPU, optimization) that CMakeLists.txt and edgec.mk offer."""
    if target.kind == "host":
        cflags = [f for f in host.HOST_CFLAGS if f != "-shared"]
    else:
        from .firmware import CFLAGS

        cflags = [*target.cflags, target.opt, *CFLAGS]
    return {"target": target.name, "cc": target.cc, "cflags": cflags, "target_flags": [*target.cflags, target.opt]}


def compile_build(out: Path, meta: dict, target: Target | None = None) -> None:
    """Compile the C project in out (meta["sources"]) into out/harness: the host's shared library, or the firmware
    (and its sizes in meta["elf"]). Also recompiles a build directory whose C was edited, e.g. by a test."""
    target = target or load_target(meta["target"])
    sources = [out / s for s in meta["sources"]]
    includes = [out, out / "runtime" / "include"]
    harness = out / HARNESS_DIR
    harness.mkdir(exist_ok=True)
    if target.kind == "host":
        host.build_shared(sources, includes, harness / f"lib{meta['name']}.so")
        return
    from .firmware import build_firmware, elf_sizes

    kernels = [k for layer in meta["layers"] for k in layer["kernels"]] if meta.get("instrument") == "profile" \
        else []
    elf = build_firmware(target, meta["name"], sources, includes, harness, profile_kernels=sorted(set(kernels)),
                         profile_calls=len(kernels), dump=meta.get("instrument") == "dump")
    meta["elf"] = elf_sizes(elf, target, [s.name for s in sources])


def _with_limits(target: Target, opts: BuildOptions) -> Target:
    """The target with --flash/--ram applied."""
    for value, what in ((opts.flash_bytes, "--flash"), (opts.ram_bytes, "--ram")):
        if value is not None and value <= 0:
            raise EdgecError(f"{what} {value}: must be a positive number of bytes")
    return dataclasses.replace(target, flash_bytes=opts.flash_bytes or target.flash_bytes,
                               ram_bytes=opts.ram_bytes or target.ram_bytes)


def _refuse(target: Target, problems: list[str], opts: BuildOptions) -> None:
    if problems and not opts.force:
        raise EdgecError(f"{opts.model}: does not fit {target.name}: {'; '.join(problems)}. Try --quantize int8, "
                         "--flash/--ram for a larger part, or --force to emit the C anyway")


def _check_fit(target: Target, meta: dict, opts: BuildOptions) -> bool:
    """Whether the model fits the target's limits before compiling: weights in flash, the arena in RAM (a limit
    of 0 is no limit). Without --force a misfit is an error."""
    problems = []
    if target.flash_bytes and meta["weight_bytes"] > target.flash_bytes:
        problems.append(f"weights need {meta['weight_bytes']} bytes of flash, {target.name} has "
                        f"{target.flash_bytes} ({meta['weight_bytes'] - target.flash_bytes} too many)")
    if target.ram_bytes and meta["arena_bytes"] > target.ram_bytes:
        problems.append(f"the arena needs {meta['arena_bytes']} bytes of RAM, {target.name} has {target.ram_bytes} "
                        f"({meta['arena_bytes'] - target.ram_bytes} too many)")
    _refuse(target, problems, opts)
    if problems:
        print(f"warning: {'; '.join(problems)}; --force: writing the C project without firmware", file=sys.stderr)
    return not problems


def _check_fit_linked(target: Target, meta: dict, opts: BuildOptions) -> None:
    """After the link: the model's flash (weights + model and kernel code, from the link map) and RAM (arena and
    other static data + gcc's stack estimate) against the limits. The test harness (C library, semihosting) is
    not counted: a device has its own."""
    elf = meta["elf"]
    problems = []
    if target.flash_bytes and elf["model_flash"] > target.flash_bytes:
        problems.append(f"weights and code need {elf['model_flash']} bytes of flash, {target.name} has "
                        f"{target.flash_bytes} ({elf['model_flash'] - target.flash_bytes} too many)")
    ram = elf["model_ram"] + elf["stack_estimate"]
    if target.ram_bytes and ram > target.ram_bytes:
        problems.append(f"arena, static data and stack need {ram} bytes of RAM, {target.name} has "
                        f"{target.ram_bytes} ({ram - target.ram_bytes} too many)")
    _refuse(target, problems, opts)
    if problems:
        print(f"warning: {'; '.join(problems)}; --force: built anyway", file=sys.stderr)


sys.modules[__name__].__class__ = ApiModule  # calling this module calls edgec.api.build (see edgec/__init__.py)
