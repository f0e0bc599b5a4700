"""The Python API: edgec.build, edgec.validate and edgec.compare (see edgec/__init__.py), which the command line uses.

    import edgec
    b = edgec.build("model.onnx", target="cortex-m7", quantize="int8", calib="calib.npz", out="build/m")
    print(b.report["arena_bytes"], b.path / "m.h")
    outputs = b.run("samples.npz")            # or {"input": array with a leading sample axis}
    print(edgec.validate("model.onnx", quantize="int8", calib="calib.npz", inputs="samples.npz")["sqnr_db"])
"""

from __future__ import annotations

import dataclasses
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .build import BuildOptions
from .errors import EdgecError
from .ir import Graph, Tensor
from .quantize import QuantOptions

Inputs = str | Path | Mapping[str, np.ndarray]
_QUANT_FIELDS = {f.name for f in dataclasses.fields(QuantOptions)} - {"scheme", "layers"}
_BUILD_FIELDS = {f.name for f in dataclasses.fields(BuildOptions)} - {"model", "target", "quantize", "calib", "out",
                                                                      "quant", "instrument"}


def build_options(model: str | Path, target: str = "host", quantize: str = "none", calib: str | Path | None = None,
                  out: str | Path | None = None, **options) -> BuildOptions:
    """The BuildOptions of edgec.build's arguments. options: any other BuildOptions field (qconfig, calibration,
    percentile, input_shapes, name, force, flash_bytes, ram_bytes, prune, sparse_kernels, memory_budget, flash_budget,
    max_sqnr_drop) or QuantOptions field (per_channel, symmetric, bias_correction, input_ranges)."""
    unknown = sorted(set(options) - _QUANT_FIELDS - _BUILD_FIELDS)
    if unknown:
        known = ", ".join(sorted(_BUILD_FIELDS | _QUANT_FIELDS))
        raise TypeError(f"unknown option(s) {', '.join(unknown)}; known: {known}")
    quant = QuantOptions(**{k: v for k, v in options.items() if k in _QUANT_FIELDS})
    rest = {k: v for k, v in options.items() if k in _BUILD_FIELDS}
    if rest.get("qconfig") is not None:
        rest["qconfig"] = Path(rest["qconfig"])
    return BuildOptions(model=Path(model), target=target, quantize=quantize, calib=calib and Path(calib),
                        out=out and Path(out), quant=quant, **rest)


def io_graph(meta: dict) -> Graph:
    """A graph with just a build's input names and shapes (from edgec.json), for reading its samples."""
    tensors = {io["name"]: Tensor(io["name"], tuple(io["shape"]), dtype=io["dtype"], scale=io["scale"],
                                  zero_point=io["zero_point"]) for io in meta["inputs"]}
    return Graph(meta["name"], tensors, [], list(tensors), [])


def samples(inputs: Inputs, g: Graph, what: str = "input") -> list[dict[str, np.ndarray]]:
    """Samples from a .npz file or from {input name: array with a leading sample axis}."""
    from .data import load_samples, samples_from_arrays

    if isinstance(inputs, Mapping):
        return samples_from_arrays(inputs, g, what)
    return load_samples(Path(inputs), g, what)


@dataclass
class Build:
    """A build folder: the C project, its harness and its report (edgec.json)."""

    path: Path
    report: dict

    def run(self, inputs: Inputs) -> dict[str, np.ndarray]:
        """Run every sample on the build's target (the host library, or the firmware in QEMU); returns
        {output name: float32 array with a leading sample axis}, dequantized for integer outputs, as `edgec run`
        writes them.

        >>> b = edgec.build("model.onnx", quantize="int8", calib="calib.npz")
        >>> b.run({"input": x})["output"].shape     # x: (N, *input shape)
        """
        from .runner import run_build

        res = run_build(self.path, samples(inputs, io_graph(self.report)))
        return {io["name"]: np.stack([s[io["name"]] for s in res.outputs]) for io in self.report["outputs"]}

    @classmethod
    def load(cls, path: str | Path) -> Build:
        """An existing build folder (made by edgec build or edgec.build).

        >>> edgec.Build.load("build/m").run("samples.npz")
        """
        from .runner import read_meta

        return cls(Path(path), read_meta(Path(path)))

    @property
    def name(self) -> str:
        """The C name of the model: <name>.h, <name>_run()."""
        return self.report["name"]

    @property
    def header(self) -> Path:
        return self.path / f"{self.name}.h"


def build(model: str | Path, target: str = "host", quantize: str = "none", calib: str | Path | None = None,
          out: str | Path | None = None, **options) -> Build:
    """Build the ONNX model into a C project in `out` (default build/<name>-<target>) and compile it for the
    target (`edgec build`); returns the Build. quantize: none, int8, qformat, int4, int16, q15 or auto; calib: a
    .npz of calibration samples. Other options: see build_options.

    >>> b = edgec.build("model.onnx", target="cortex-m7", quantize="int8", calib="calib.npz", out="build/m")
    >>> b.report["arena_bytes"], b.report["elf"]["flash"]
    """
    from .build import build as build_project

    path, meta, _ = build_project(build_options(model, target, quantize, calib, out, **options))
    return Build(path, meta)


@dataclass
class Validation:
    report: dict  # the metrics and sizes edgec validate prints
    failures: list[str]  # why it fails (empty: it passes): quantized, not bit-exact with the integer reference (or
    # TFLM's integers for a .tflite), or output SQNR not above SQNR_FLOOR_DB; float, error above FLOAT_REL_TOLERANCE
    graph: Graph
    meta: dict
    samples: list[dict[str, np.ndarray]]
    clipping: dict  # quantized: validate.input_clipping of the samples

    @property
    def passed(self) -> bool:
        return not self.failures


def _failures(report: dict, quantized: bool, output_range: float) -> list[str]:
    """Why a validation report fails (empty: it passes)."""
    from .validate import FLOAT_REL_TOLERANCE, SQNR_FLOOR_DB

    failures = []
    if quantized:
        if report["bitexact_vs_reference"] != 1.0:
            failures.append("outputs differ from the integer reference")
        if not report["sqnr_db"] > SQNR_FLOOR_DB:
            failures.append(f"output SQNR against float {report['sqnr_db']:.3g} dB is not above the "
                            f"{SQNR_FLOOR_DB:g} dB floor (the quantized model does not track float: check --calib and "
                            "--input-range)")
    elif not report["max_abs_err"] <= FLOAT_REL_TOLERANCE * max(output_range, 1e-12):
        failures.append("float error above 1e-3 of the output range")
    if report.get("bitexact_vs_tflm", 1.0) not in (1.0, None):  # a .tflite with its own scales: TFLM's integers
        failures.append("outputs differ from TFLM's")
    return failures


def run_validation(opts: BuildOptions, inputs: Inputs | None) -> Validation:
    """Build (into opts.out, or a temporary folder), run the samples on the target and in onnxruntime, and
    measure (edgec validate without --per-layer)."""
    from .build import build as build_project
    from .data import random_samples
    from .runner import run_build
    from .validate import (
        bitexact_share,
        input_clipping,
        metrics,
        model_outputs,
        reference_outputs,
        tflite_agreement,
    )

    with tempfile.TemporaryDirectory(prefix="edgec-validate-") as tmp:
        out, meta, g = build_project(dataclasses.replace(opts, out=opts.out or Path(tmp) / "build"))
        if inputs is not None:
            data = samples(inputs, g)
        else:
            print("warning: no --inputs; validating on 8 random normal samples", file=sys.stderr)
            data = random_samples(g, 8, seed=1)
        res = run_build(out, data)
    tflite = tflite_agreement(str(opts.model), g, data, res)
    want = tflite.pop("want") if tflite else model_outputs(str(opts.model), g, data)
    report = metrics(res.outputs, want, g.outputs)
    output_range = report.pop("output_range")
    clipping = {}
    if g.quantized:
        report["bitexact_vs_reference"] = bitexact_share(res, reference_outputs(g, data))
        clipping = input_clipping(g, data)
        if clipping:
            sizes = {n: g.tensors[n].size for n in clipping}
            report["input_clipped_share"] = sum(c["share"] * sizes[n] for n, c in clipping.items()) / sum(
                sizes.values())
    report.update(tflite)
    elf = meta.get("elf") or {}
    report.update({
        "flash_bytes": elf.get("flash", meta["weight_bytes"]),
        "ram_bytes": (elf["ram_static"] + (res.stack_bytes or 0)) if elf else meta["arena_bytes"],
        "tensor_ram_bytes": meta["tensor_ram_bytes"], "arena_bytes": meta["arena_bytes"],
        "arena_lower_bound_bytes": meta["arena_lower_bound_bytes"], "schedule": meta["schedule"],
        "instructions": res.instructions[0] if res.instructions else None,
        "macs": meta["macs"], "params": meta["params"],
    })
    if elf:
        report["model_flash_bytes"] = elf.get("model_flash")
        report["stack_bytes"] = res.stack_bytes
    failures = _failures(report, g.quantized, output_range)
    report["samples"] = len(data)
    report["target"] = meta["target"]
    report["quantize"] = meta["quantize"]
    return Validation(report, failures, g, meta, data, clipping)


def validate(model: str | Path, target: str = "host", quantize: str = "none", calib: str | Path | None = None,
             inputs: Inputs | None = None, out: str | Path | None = None, **options) -> dict:
    """Build, run the samples (`inputs`: .npz or arrays; default 8 random samples) on the target and compare
    with onnxruntime, as `edgec validate --json` does; returns its report with "passed" and "failures" added
    (quantized: bit-exact with the integer reference, and with TFLM for a .tflite, and output SQNR against float
    above 0 dB; float: max error within 1e-3 of the output range).

    >>> r = edgec.validate("model.onnx", target="cortex-m4", quantize="int8", calib="calib.npz",
    ...                    inputs="test.npz")
    >>> r["sqnr_db"], r["bitexact_vs_reference"], r["instructions"], r["passed"]
    """
    v = run_validation(build_options(model, target, quantize, calib, out, **options), inputs)
    return {**v.report, "passed": v.passed, "failures": v.failures}


def compare(model: str | Path, target: str = "host", calib: str | Path | None = None,
            inputs: str | Path | None = None, labels: str | None = None, out: str | Path = "compare-out",
            grid: str | Path | list | None = None, jobs: int = 2,
            input_shapes: dict[str, tuple[int, ...]] | None = None, scheduler: str | None = None) -> list[dict]:
    """Build, run and measure a grid of quantization and pruning configurations (`edgec compare`); writes
    results.json, results.csv, plots and report.html into `out` and returns the rows. grid: "quick", "default"
    (None), a TOML grid file or a list of edgec.compare.Config; inputs: .npz evaluation samples (default 16
    random samples), with `labels` naming its array of class labels for accuracy. The configurations run in `jobs`
    local processes or, with scheduler ("tcp://HOST:PORT", needs the `distributed` extra), as tasks on that Dask
    cluster, with the same rows.

    >>> rows = edgec.compare("model.onnx", calib="calib.npz", inputs="test.npz", grid="quick")
    >>> [(r["config"], r["sqnr_db"]) for r in rows]
    >>> rows = edgec.compare("model.onnx", calib="calib.npz", grid="quick", scheduler="tcp://10.0.0.5:8786")
    """
    from .compare import DEFAULT_GRID, QUICK_GRID, load_grid
    from .compare import compare as run_compare

    if labels and not inputs:
        raise EdgecError("labels names an array of the evaluation inputs; give inputs too")
    if grid is None or grid == "default":
        configs = DEFAULT_GRID
    elif grid == "quick":
        configs = QUICK_GRID
    elif isinstance(grid, list):
        configs = grid
    else:
        configs = load_grid(Path(grid))
    return run_compare(Path(model), target, calib and Path(calib), inputs and Path(inputs), labels, Path(out),
                       configs, jobs, input_shapes or {}, scheduler)
