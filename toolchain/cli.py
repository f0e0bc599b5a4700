"""The edgec command line: build, run, validate, targets."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from . import console
from .calibrate import METHODS
from .console import quiet
from .errors import EdgecError
from .prune import METHODS as PRUNE_METHODS
from .quantize import SCHEMES, layer_schemes
from .rounding import ROUNDINGS

EXIT_USER_ERROR = 2
DUMP_SAMPLES = 8  # validate --per-layer: samples whose every layer output is compared on the target


def _build_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", type=Path, help="ONNX or int8 .tflite model file")
    p.add_argument("--target", default="host", help="target name (see 'edgec targets'); default host")
    p.add_argument("--quantize", default="none", choices=["none", *SCHEMES, "auto"],
                   help="none = float32; int8; qformat = Q-format q7 (power-of-two scales, shift-only "
                   "requantization; --qbits 16 for q15); int4 = int4 weights, int8 activations; int16 = int16 "
                   "activations, int8 weights (16x8); q15 = int16 with Q-format scales; auto = per layer by "
                   "measured sensitivity (--flash-budget or --max-sqnr-drop)")
    p.add_argument("--flash-budget", type=_size, metavar="BYTES",
                   help="--quantize auto: weight bytes allowed, e.g. 64k (int4 weights where they cost least)")
    p.add_argument("--max-sqnr-drop", type=float, metavar="DB",
                   help="--quantize auto: output SQNR allowed below the all-int8 model's, in dB")
    p.add_argument("--qbits", type=int, default=8, choices=[8, 16],
                   help="with --quantize qformat: 8 = q7 (default), 16 = q15 (int16 activations, the same as "
                   "--quantize q15)")
    p.add_argument("--qconfig", type=Path, metavar="TOML",
                   help="per-layer schemes: [layers] name = \"int8\" | \"int16\" | \"qformat\" | \"q15\" | "
                   "\"int4\" | \"float\" (see README)")
    p.add_argument("--calib", type=_calib, metavar="NPZ|random",
                   help=".npz calibration samples (one array per input, leading sample axis); integer schemes need "
                   "it, or 'random' to calibrate on random normal data (a build whose accuracy means nothing; a "
                   "file named random is ./random)")
    p.add_argument("--calibration", default="auto", choices=["auto", *METHODS],
                   help="how activation ranges are chosen from the calibration data; auto (default) tries minmax "
                   "and percentile, each with and without bias correction, and percentile 99.9 with it, and keeps "
                   "the one closest to float on the calibration data")
    p.add_argument("--percentile", type=float, default=99.99, help="for --calibration percentile (default 99.99)")
    p.add_argument("--per-tensor", action="store_true", help="int8 weights with one scale per tensor "
                   "(default: per output channel)")
    p.add_argument("--symmetric", action="store_true", help="int8 activations with zero point 0")
    p.add_argument("--bias-correction", action="store_true",
                   help="shift int8 biases so each layer's mean output matches float on the calibration data")
    p.add_argument("--weight-rounding", default="nearest", choices=list(ROUNDINGS),
                   help="int8 weights: nearest (default), or gptq: rounded column by column, each rounding error "
                   "compensated in the weights not yet rounded, on the calibration inputs (same scales)")
    p.add_argument("--equalize", action="store_true",
                   help="cross-layer equalization before calibration: per-channel weight ranges of consecutive "
                   "layers joined by a ReLU (depthwise -> pointwise) evened out; the float model is unchanged")
    p.add_argument("--input-shape", action="append", metavar="NAME=D0,D1,...", help="fix a dynamic input shape")
    p.add_argument("--input-range", action="append", metavar="NAME=LO,HI",
                   help="quantize input NAME over [LO, HI] instead of its calibrated range (the range the sensor or "
                   "feature front end delivers)")
    p.add_argument("--name", help="C identifier prefix (default: model file name)")
    p.add_argument("--force", action="store_true", help="write the C even if the model does not fit the target")
    p.add_argument("--flash", type=_size, metavar="BYTES", help="flash of the part, e.g. 1m (default: the target's)")
    p.add_argument("--ram", type=_size, metavar="BYTES", help="RAM of the part, e.g. 64k (default: the target's)")
    p.add_argument("--memory-budget", type=_size, metavar="BYTES",
                   help="tensor RAM allowed, e.g. 32k: the fastest schedule that fits, running the first layers in "
                   "row strips where needed (recomputing their halo rows); default: layer by layer")
    p.add_argument("--prune", metavar="METHOD", choices=list(PRUNE_METHODS),
                   help=f"prune before quantizing: {', '.join(PRUNE_METHODS)}")
    p.add_argument("--sparse-kernels", default="auto", choices=["auto", "dense", "rows", "gather", "nm", "block"],
                   help="kernels for layers with zero weights: auto (the cost model: fewest instructions), dense, "
                   "rows (row-sparse), gather (row-group for int8 fully connected layers, the fewest instructions "
                   "per nonzero, 6 bytes each) or nm (N:4 where the weights fit it, the least flash)")
    _prune_args(p)


def _prune_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sparsity", type=float, default=0.5,
                   help="share of weights (magnitude) or filters (l1/l2-filter) to remove per layer (default 0.5)")
    p.add_argument("--pattern", help="N:M pattern for n:m pruning (default 2:4); rows x input columns for block "
                   "pruning (default 4x4)")
    p.add_argument("--scope", default="layer", choices=["layer", "global"], help="magnitude threshold scope")
    p.add_argument("--exclude", help="layers kept dense, comma-separated, or 'none' (default: first and last)")
    p.add_argument("--prune-config", type=Path, help="TOML file: [sparsity] layer_name = 0.8 per layer")
    p.add_argument("--refit", action="store_true", help="least-squares re-fit of the remaining weights (--calib)")


def _prune_options(a: argparse.Namespace, method: str | None):
    from .errors import EdgecError
    from .prune import PruneOptions, parse_pattern

    if method is None:
        if getattr(a, "prune_config", None):
            raise EdgecError(f"--prune-config {a.prune_config}: give --prune METHOD too (e.g. --prune magnitude); "
                             "without it nothing is pruned")
        return None
    per_layer = {}
    if a.prune_config:
        import tomllib

        try:
            table = tomllib.loads(a.prune_config.read_text()).get("sparsity", {})
        except (OSError, ValueError, RecursionError) as exc:  # (RecursionError: tables nested deeply)
            raise EdgecError(f"{a.prune_config}: not a readable TOML sparsity config ({exc})") from None
        if not isinstance(table, dict):
            raise EdgecError(f"{a.prune_config}: 'sparsity' must be a table: [sparsity] layer_name = 0.8")
        for k, v in table.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < 1:
                raise EdgecError(f"{a.prune_config}: [sparsity] {k} = {v!r}: give a number in [0, 1), the share of "
                                 "the layer's weights to remove")
            per_layer[str(k)] = float(v)
    exclude = None if a.exclude is None else ([] if a.exclude == "none" else a.exclude.split(","))
    return PruneOptions(method=method, sparsity=a.sparsity, pattern=parse_pattern(a.pattern, method), scope=a.scope,
                        exclude=exclude, per_layer=per_layer, refit=a.refit)


def _calib(text: str) -> Path | str:
    from .build import RANDOM_CALIB

    return RANDOM_CALIB if text == RANDOM_CALIB else Path(text)


def _size(text: str) -> int:
    """A byte count for --flash/--ram: a whole number with an optional k (KiB) or m (MiB) suffix."""
    units = {"": 1, "k": 1024, "m": 1024 * 1024}
    number, unit = text.strip().lower(), ""
    if number[-1:] in ("k", "m"):
        number, unit = number[:-1], number[-1]
    if not number.isdigit() or int(number) == 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size in bytes (like 262144, 256k or 1m)")
    return int(number) * units[unit]


def _options(a: argparse.Namespace, out: Path | None):
    from .build import BuildOptions
    from .frontends import parse_input_shapes
    from .quantize import QuantOptions, parse_input_ranges

    quantize = a.quantize
    if a.qbits == 16:
        if quantize not in ("qformat", "q15"):
            from .errors import EdgecError

            raise EdgecError(f"--qbits 16 goes with --quantize qformat (Q15), not --quantize {quantize}")
        quantize = "q15"
    return BuildOptions(model=a.model, target=a.target, quantize=quantize, qconfig=a.qconfig, calib=a.calib,
                        calibration=a.calibration, percentile=a.percentile,
                        quant=QuantOptions(per_channel=not a.per_tensor, symmetric=a.symmetric,
                                           bias_correction=a.bias_correction,
                                           weight_rounding=a.weight_rounding, equalize=a.equalize,
                                           input_ranges=parse_input_ranges(a.input_range)),
                        input_shapes=parse_input_shapes(a.input_shape), out=out, force=a.force, name=a.name,
                        flash_bytes=a.flash, ram_bytes=a.ram, prune=_prune_options(a, a.prune),
                        flash_budget=a.flash_budget, max_sqnr_drop=a.max_sqnr_drop,
                        sparse_kernels=a.sparse_kernels, memory_budget=a.memory_budget)


def _calibration_text(info: dict | None) -> str:
    """How activation ranges were chosen, for reports: 'percentile + bias correction (auto)'."""
    if not info:
        return "ranges from the model"
    text = info["calibration"] + (" + bias correction" if info["bias_correction"] else "") + (
        " + gptq weight rounding" if info.get("weight_rounding") == "gptq" else "")
    return text + (" (auto)" if "auto_sqnr_db" in info else "")


def _fmt_bytes(n: int | None) -> str:
    return "-" if n is None else f"{n:,}"


def _summary(meta: dict) -> list[tuple[str, str]]:
    from .reference import represented_range

    rows = [("target", meta["target"]), ("quantize", meta["quantize"])]
    if meta.get("calibration"):
        rows.append(("calibration", _calibration_text(meta["calibration"])))
    for io in meta["inputs"]:
        if io["dtype"] != "float32":
            s, zp = io["scale"], io["zero_point"]
            lo, hi = represented_range(s, zp, io["dtype"])
            rows.append((f"input '{io['name']}'", f"{io['ctype']}, scale {s:.6g}, zero point {zp}: represents "
                         f"[{lo:.6g}, {hi:.6g}]"))
    rows += [("MACs", f"{meta['macs']:,}"),
            ("parameters", f"{meta['params']:,}"), ("weights (flash)", _fmt_bytes(meta["weight_bytes"])),
            ("tensor RAM", _fmt_bytes(meta["tensor_ram_bytes"])),
            ("arena (RAM)", _fmt_bytes(meta["arena_bytes"])),
            ("arena lower bound", _fmt_bytes(meta["arena_lower_bound_bytes"]))]
    sched = meta.get("schedule")
    if sched:
        rows.append(("schedule", f"{sched['kind']}: tensor RAM {sched['tensor_ram_bytes']:,}, lower bound "
                     f"{sched['lower_bound_bytes']:,}, extra MACs {sched['extra_macs']:,}"))
    elf = meta.get("elf")
    if elf:
        rows += [("flash code (text)", _fmt_bytes(elf["text"])),
                 ("flash constants (rodata)", _fmt_bytes(elf["rodata"])),
                 ("flash total (text+rodata+data)", _fmt_bytes(elf["flash"])),
                 ("flash model+kernels", _fmt_bytes(elf.get("model_flash"))),
                 ("RAM static (data+bss, arena included)", _fmt_bytes(elf["ram_static"])),
                 ("stack estimate (gcc -fstack-usage)", _fmt_bytes(elf.get("stack_estimate")))]
    return rows


def cmd_build(a: argparse.Namespace) -> int:
    from .build import build

    out, meta, _ = build(_options(a, a.out))
    print(f"wrote {out}/")
    print(console.table(_summary(meta)))
    auto = meta.get("auto")
    if auto:
        print(f"  auto: output SQNR {auto['sqnr_db']} dB (all int8: {auto['int8_sqnr_db']}), weights "
              f"{auto['weight_bytes']:,} bytes (all int8: {auto['int8_weight_bytes']:,}); "
              + ", ".join(f"{k} {v}" for k, v in auto["layers"].items()))
    formats = meta.get("formats")
    if formats:
        for io in meta["inputs"]:
            print(f"    input {io['name']:<22} {formats[io['name']]}")
    rows, notes = [], []
    for layer in meta["layers"]:
        if layer["kernels"]:
            fmt = ""
            if "format" in layer:
                fmt = f"out {layer['format']}" + (f", weights {layer['weight_format']}" if "weight_format" in layer
                                                  else "")
            rows.append((layer["node"], ", ".join(layer["kernels"]), f"{layer['macs']:,} MACs", fmt))
            if layer.get("note"):
                notes.append(f"    {layer['node']}: {layer['note']}")
    if rows:
        print("\n".join([console.table(rows, right=[2], indent=4), *notes]))
    return 0


def cmd_run(a: argparse.Namespace) -> int:
    from .api import Build, io_graph, samples
    from .outdir import check_file, write_file
    from .runner import run_build

    check_file(a.output, "--output", (a.inputs,))
    b = Build.load(a.build_dir)
    data = samples(a.inputs, io_graph(b.report))
    res = run_build(a.build_dir, data)
    native = set(b.report.get("integer_outputs", []))  # a .tflite model's integer outputs: written as its integers
    out = {io["name"]: np.stack([(r if io["name"] in native else s)[io["name"]] for s, r in zip(res.outputs, res.raw)])
           for io in b.report["outputs"]}
    write_file(a.output, lambda tmp: _savez(tmp, out), "--output", (a.inputs,))
    msg = f"ran {len(data)} samples on {b.report['target']}; wrote {a.output}"
    if res.instructions:
        msg += f"; instructions per inference: {res.instructions[0]:,}"
    print(msg)
    return 0


def _savez(path: Path, arrays: dict) -> None:
    """An .npz at exactly path (np.savez would add .npz to a name without it)."""
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def cmd_validate(a: argparse.Namespace) -> int:
    from .api import run_validation

    opts = _options(a, a.out)
    v = run_validation(opts, a.inputs)
    report, failures, g, meta, samples = v.report, v.failures, v.graph, v.meta, v.samples
    if g.quantized:
        _warn_clipping(v.clipping, g, a.inputs, set(opts.quant.input_ranges))
    layers = prof = div = None
    if a.per_layer:
        from .profile import dump_divergence, profile

        prof = profile(_options(a, None), samples[:1])
        report["profile"] = prof
    if a.per_layer and g.quantized:
        from .analysis import quant_report

        layers = quant_report(g, samples)
        report["per_layer"] = layers
        div = dump_divergence(_options(a, None), samples[:DUMP_SAMPLES])
        report["divergence"] = div
        if div["first"] is not None:
            failures.append("layers differ from the integer reference")
    ok = not failures
    tflm_layers = None
    if a.per_layer and g.arithmetic == "tflm":
        from .validate import tflm_divergence

        tflm_layers = tflm_divergence(str(a.model), g, samples[0])
        report["tflm_layers"] = tflm_layers
    if a.json:
        print(console.json_text({**report, "failures": failures}))
    else:
        rows = [(k, f"{v:.6g}" if isinstance(v, float) else ("-" if v is None else f"{v:,}" if isinstance(v, int)
                                                              else str(v))) for k, v in report.items()]
        print(f"validation of {a.model} on {meta['target']} ({len(samples)} samples, {meta['quantize']})")
        print(console.table([r for r in rows if r[0] not in ("per_layer", "profile", "divergence", "tflm_layers")]))
        if layers is not None:
            from .analysis import format_report

            print("quantization error per tensor, worst first:")
            print(format_report(layers))
        if prof is not None:
            from .profile import format_profile

            print(f"instructions per layer on {meta['target']} (profiling build, sample 0):")
            print(format_profile(prof))
        if div is not None:
            from .profile import format_divergence

            print("per-layer divergence (tensor dump build):")
            print(format_divergence(div, meta["target"]))
        if tflm_layers:
            print("each TFLite operator's output against TFLM's (sample 0; alone: fed TFLM's own inputs):")
            print(console.table([(r["node"], r["op"], f"equal {r['equal']:.4f} (max {r['max_diff']} LSB)",
                                  f"alone {r['equal_alone']:.4f} (max {r['max_diff_alone']} LSB)")
                                 for r in tflm_layers]))
        print("PASS" if ok else "FAIL: " + "; ".join(failures))
    return 0 if ok else 1


def _warn_clipping(clipping: dict[str, dict], g, inputs: Path | None, given: set[str]) -> None:
    """Say which inputs the samples overflow: their quantization clips those values before inference, so the
    comparison with float includes that clipping. given: the inputs whose range --input-range set."""
    source = inputs or "the random samples"
    for name, c in clipping.items():
        if c["share"] > 0:
            how = "set by --input-range" if name in given else "calibrated"
            print(f"warning: {c['share']:.2%} of the values of input '{name}' in {source} lie outside "
                  f"[{c['represents'][0]:.6g}, {c['represents'][1]:.6g}], the range its {g.tensors[name].dtype} "
                  f"quantization represents ({how}); they reach [{c['seen'][0]:.6g}, {c['seen'][1]:.6g}] and are "
                  "clipped before inference, so the comparison with float includes that clipping. Calibrate on data "
                  f"that covers them, or give the range the input really has with --input-range {name}=LO,HI.",
                  file=sys.stderr)


def cmd_profile(a: argparse.Namespace) -> int:
    from .build import prepare_graph
    from .data import load_samples, random_samples
    from .profile import format_profile, profile

    opts = _options(a, a.out)
    g = prepare_graph(opts.model, opts.input_shapes)  # for the input names and shapes
    samples = load_samples(a.inputs, g, "input")[:1] if a.inputs else random_samples(g, 1, seed=1)
    p = profile(opts, samples)
    if a.json:
        print(json.dumps(p))
        return 0
    print(f"instructions per layer of {a.model} on {p['target']} ({p['quantize']}, "
          f"{'first sample of ' + str(a.inputs) if a.inputs else 'one random sample'}):")
    print(format_profile(p))
    return 0


def _input_files(a: argparse.Namespace) -> tuple[Path | None, ...]:
    """Every file the command reads (model, samples, configs): an output path must be none of them."""
    return tuple(getattr(a, k, None) for k in ("model", "calib", "inputs", "qconfig", "prune_config"))


def cmd_quantize(a: argparse.Namespace) -> int:
    from .build import RANDOM_CALIB, prepare_graph, quantize_with
    from .export import export_qdq
    from .outdir import check_file

    check_file(a.output, "--output", _input_files(a))
    opts = _options(a, None)
    if opts.quantize == "auto":
        raise EdgecError("edgec quantize does not write --quantize auto models; choose the layers' schemes with "
                         "--qconfig (edgec build --quantize auto reports the ones it picks)")
    if opts.quantize == "none" and opts.qconfig is None:
        opts.quantize = "int8"
    g = prepare_graph(opts.model, opts.input_shapes, opts.prune, opts.calib, layout=False)
    quantize_with(g, opts)
    source = samples = None
    if a.report:  # (the report's samples are checked before anything is written)
        from .data import load_samples, random_samples

        source = a.inputs or (opts.calib if opts.calib != RANDOM_CALIB else None)
        samples = load_samples(source, g, "input") if source else random_samples(g, 8, seed=1)
    export_qdq(g, a.output)
    schemes = layer_schemes(g)
    what = {"int8": "int8", "qformat": "Q-format q7, power-of-two scales", "int4": "int4 weights (ONNX INT4), int8 "
            "activations", "int16": "int16 activations (ONNX INT16, 16x8)", "q15": "Q-format q15, power-of-two "
            "scales, int16 activations"}[schemes[0]] if len(schemes) == 1 else f"mixed {'/'.join(schemes)}"
    weights = "per-tensor" if a.per_tensor else "per-channel"
    print(f"wrote {a.output} (QDQ, {what}: {weights} weights, per-tensor activations, "
          f"{_calibration_text(g.info.get('calibration'))})")
    if samples is not None:
        from .analysis import format_report, quant_report

        print(f"\nquantization error per tensor on {source or '8 random samples'}, worst first:")
        print(format_report(quant_report(g, samples)))
    return 0


def cmd_prune(a: argparse.Namespace) -> int:
    from .build import prepare_graph
    from .data import load_samples, random_samples
    from .export import export_float
    from .frontends import parse_input_shapes
    from .outdir import check_file
    from .prune import allocate, sensitivity, weighted_layers

    for path, what in ((a.output, "--output"), (a.plot, "--plot")):
        if path is not None:
            check_file(path, what, _input_files(a))
    if a.plot is not None:
        try:
            _plot_format(a.plot)
        except ImportError:
            raise EdgecError("--plot needs matplotlib: pip install matplotlib") from None
    shapes = parse_input_shapes(a.input_shape)
    opts = _prune_options(a, a.method)
    if a.analyze or a.criterion == "sensitivity":
        dense = prepare_graph(a.model, shapes, layout=False)
        if a.calib:
            samples = load_samples(a.calib, dense, "calibration")[:16]
        else:
            print("warning: no --calib; measuring sensitivity on random normal samples", file=sys.stderr)
            samples = random_samples(dense, 8)
        layers = [n for n in weighted_layers(dense) if opts.exclude is None or n.name not in opts.exclude]
        table = sensitivity(dense, layers, samples)
        levels = sorted(next(iter(table.values()))) if table else []
        print("output SQNR (dB) with one layer magnitude-pruned alone:")
        print(console.table([(k, *(f"{min(v[lv], 999):.1f}" for lv in levels)) for k, v in table.items()],
                            header=["layer", *(f"{lv:.0%}" for lv in levels)], right=range(1, len(levels) + 1)))
        if a.plot:
            _plot_sensitivity(table, a.plot)
            print(f"wrote {a.plot}")
        if a.criterion == "sensitivity":
            opts.per_layer = allocate(dense, [n for n in layers if n.name in table], table, a.sparsity)
            print("allocated sparsities: " + ", ".join(f"{k}={v:.0%}" for k, v in opts.per_layer.items()))
    if not a.output:
        return 0
    g = prepare_graph(a.model, shapes, opts, a.calib, layout=False)
    report = g.info["prune"]
    rows = []
    for name, layer in report["layers"].items():
        fit = report.get("refit", {}).get(name)
        rows.append((name, f"{layer['nonzero']:,}/{layer['weights']:,} ({layer['sparsity']:.0%} zero)"
                     + (f", re-fit error {fit[0]:.3g} -> {fit[1]:.3g}" if fit else "")))
    print(console.table(rows))
    export_float(g, a.output)
    print(f"wrote {a.output}")
    return 0


def _plot_format(path: Path) -> str:
    """The image format of a --plot file, from its suffix (png without one)."""
    from matplotlib.figure import Figure

    fmt, known = path.suffix[1:].lower() or "png", Figure().canvas.get_supported_filetypes()
    if fmt not in known:
        raise EdgecError(f"--plot {path}: matplotlib writes {', '.join(sorted(known))} files, not .{fmt}")
    return fmt


def _plot_sensitivity(table: dict, path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise EdgecError("--plot needs matplotlib: pip install matplotlib") from None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, curve in table.items():
        levels = sorted(curve)
        ax.plot([100 * lv for lv in levels], [min(curve[lv], 100) for lv in levels], marker="o", label=name)
    ax.set_xlabel("sparsity of the layer (%)")
    ax.set_ylabel("output SQNR vs dense (dB)")
    ax.set_title("pruning sensitivity, one layer at a time")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    from .outdir import write_file

    write_file(path, lambda tmp: fig.savefig(tmp, dpi=120, format=_plot_format(path)), "--plot")
    plt.close(fig)


def cmd_compare(a: argparse.Namespace) -> int:
    from .compare import DEFAULT_GRID, QUICK_GRID, compare, load_grid
    from .frontends import parse_input_shapes

    grid = load_grid(a.grid) if a.grid else (QUICK_GRID if a.quick else DEFAULT_GRID)
    if a.labels and not a.eval:
        raise EdgecError("--labels names an array of the --inputs file; give --inputs too")
    for option, path in (("model", a.model), ("--calib", a.calib), ("--inputs", a.eval)):
        if path is not None and not path.is_file():
            raise EdgecError(f"{option} {path}: no such file")
    if a.jobs < 1:
        raise EdgecError(f"--jobs {a.jobs}: give 1 or more worker processes")
    rows = compare(a.model, a.target, a.calib, a.eval, a.labels, a.out, grid, a.jobs,
                   parse_input_shapes(a.input_shape), a.scheduler)
    return 0 if any("error" not in r for r in rows) else 1


def cmd_targets(a: argparse.Namespace) -> int:
    from .target import list_targets

    rows = []
    for t in list_targets():
        mem = f"flash {t.flash_bytes // 1024} KiB, RAM {t.ram_bytes // 1024} KiB" if t.flash_bytes else "no limits"
        feats = ", ".join(t.features) or "-"
        where = {"qemu-system": f"QEMU {t.machine}", "qemu-user": f"{t.qemu} -cpu {t.machine}"}.get(t.kind, "cffi")
        rows += [(t.name, t.description), ("", f"{where}; {mem}; features: {feats}")]
    print(console.table(rows, indent=0))
    return 0


def _compare_parser(sub) -> None:
    cp = sub.add_parser("compare", help="quantization and pruning configurations measured on the target")
    cp.add_argument("model", type=Path, help="ONNX model file")
    cp.add_argument("--target", default="host", help="target name (see 'edgec targets')")
    cp.add_argument("--calib", type=Path, help=".npz calibration samples")
    cp.add_argument("--inputs", "--eval", dest="eval", type=Path,
                    help=".npz evaluation samples (default: 16 random samples)")
    cp.add_argument("--labels", help="array of --inputs holding class labels: report accuracy")
    cp.add_argument("-o", "--out", type=Path, default=Path("compare-out"), help="output folder (default compare-out)")
    cp.add_argument("--grid", type=Path, help="TOML grid: [[config]] tables (see edgec.compare.Config)")
    cp.add_argument("--quick", action="store_true", help="a handful of configurations")
    cp.add_argument("--jobs", type=int, default=2, help="parallel worker processes (default 2; not with --scheduler)")
    cp.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                    help="run each configuration as a task on this Dask cluster (pip install 'edgec[distributed]'; "
                    "see README) instead of local processes")
    cp.add_argument("--input-shape", action="append", metavar="NAME=D0,D1,...", help="fix a dynamic input shape")
    cp.set_defaults(func=cmd_compare)


def _prune_parser(sub: argparse._SubParsersAction) -> None:
    pr = sub.add_parser("prune", help="prune a model and write it as ONNX; --analyze for per-layer sensitivity")
    pr.add_argument("model", type=Path, help="ONNX model file")
    pr.add_argument("--method", default="magnitude", choices=list(PRUNE_METHODS),
                    help=f"what to remove: {', '.join(PRUNE_METHODS)} (default magnitude)")
    _prune_args(pr)
    pr.add_argument("--criterion", default="magnitude", choices=["magnitude", "sensitivity"],
                    help="sensitivity: choose per-layer sparsities from measured sensitivity to reach --sparsity")
    pr.add_argument("--calib", type=Path, help=".npz calibration samples (re-fit, sensitivity)")
    pr.add_argument("--input-shape", action="append", metavar="NAME=D0,D1,...", help="fix a dynamic input shape")
    pr.add_argument("--analyze", action="store_true", help="print the per-layer sensitivity table")
    pr.add_argument("--plot", type=Path, help="with --analyze: write the sensitivity curves as PNG")
    pr.add_argument("-o", "--out", "--output", dest="output", type=Path, help="pruned ONNX model to write")
    pr.set_defaults(func=cmd_prune)


def parser() -> argparse.ArgumentParser:
    from . import __version__

    p = argparse.ArgumentParser(prog="edgec", description="Compile ONNX and TFLite models to C for microcontrollers.")
    p.add_argument("--version", action="version", version=f"edgec {__version__}")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars or progress lines on stderr "
                   "(warnings and errors are still printed)")
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="write a C project (and firmware for emulated targets)")
    _build_args(b)
    b.add_argument("-o", "--out", type=Path, help="output directory (default build/<name>-<target>)")
    b.set_defaults(func=cmd_build)
    r = sub.add_parser("run", help="run a build on its target")
    r.add_argument("build_dir", type=Path, help="a folder written by edgec build")
    r.add_argument("--inputs", type=Path, required=True, help=".npz with one array per input")
    r.add_argument("-o", "--out", "--output", dest="output", type=Path, required=True,
                   help=".npz to write: one array per output, a leading sample axis")
    r.set_defaults(func=cmd_run)
    v = sub.add_parser("validate", help="build, run on the target and compare with onnxruntime")
    _build_args(v)
    v.add_argument("--inputs", type=Path, help=".npz test samples (default: 8 random samples)")
    v.add_argument("-o", "--out", type=Path, help="keep the build in this directory")
    v.add_argument("--json", action="store_true", help="print one JSON object")
    v.add_argument("--per-layer", action="store_true",
                   help="add per-layer instructions (profiling build) and, for quantized builds, the per-tensor "
                        "quantization error analysis and each layer's divergence from the integer reference on the "
                        "target")
    v.set_defaults(func=cmd_validate)
    pf = sub.add_parser("profile", help="instructions, MACs, scratch and weight bytes of every layer on the target")
    _build_args(pf)
    pf.add_argument("--inputs", type=Path, help=".npz samples: profile the first (default: one random sample)")
    pf.add_argument("-o", "--out", type=Path, help="keep the profiling build in this directory")
    pf.add_argument("--json", action="store_true", help="print one JSON object")
    pf.set_defaults(func=cmd_profile)
    q = sub.add_parser("quantize", help="quantize and write a QDQ ONNX model that onnxruntime runs")
    _build_args(q)
    q.add_argument("-o", "--out", "--output", dest="output", type=Path, required=True,
                   help="QDQ .onnx file to write")
    q.add_argument("--report", action="store_true", help="print the per-tensor quantization error analysis")
    q.add_argument("--inputs", type=Path, help=".npz samples for --report (default: the calibration data)")
    q.set_defaults(func=cmd_quantize)
    _prune_parser(sub)
    _compare_parser(sub)
    t = sub.add_parser("targets", help="list targets")
    t.set_defaults(func=cmd_targets)
    for command in sub.choices.values():  # --quiet also after the command's name
        command.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                             help="no progress on stderr (the same as edgec --quiet)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        with quiet(args.quiet):
            return args.func(args)
    except EdgecError as exc:
        print(f"edgec: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("edgec: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
