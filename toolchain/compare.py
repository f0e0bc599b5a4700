"""edgec compare: a grid of quantization and pruning configurations, each built, run on the target and compared
with the float model; a table, CSV, JSON, plots and one self-contained HTML report.

Each configuration is an edgec build (the same code path as `edgec validate`), cached by a content hash of
everything that determines its result, so a rerun only redoes what changed. The configurations run in a local
process pool, or as tasks on a Dask cluster (run_grid's scheduler), with the same rows."""

from __future__ import annotations

import base64
import csv
import dataclasses
import hashlib
import json
import math
import shlex
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import ApiModule, __version__, console
from .console import quiet, stage
from .errors import EdgecError
from .outdir import claim_dir, write_file
from .paths import RUNTIME_DIR, TARGETS_DIR, TEMPLATES_DIR


@dataclass(frozen=True)
class Config:
    name: str
    quantize: str = "none"  # none or one of quantize.SCHEMES
    per_channel: bool = True
    calibration: str = "auto"
    bias_correction: bool = False
    weight_rounding: str = "nearest"  # nearest | gptq
    equalize: bool = False
    prune: str | None = None  # magnitude | l1-filter | l2-filter | n:m
    sparsity: float = 0.5
    pattern: str = "2:4"
    refit: bool = False

    def flags(self) -> list[str]:
        """The edgec command-line options that build this configuration."""
        out = ["--quantize", self.quantize]
        if self.quantize != "none":
            out += ["--calibration", self.calibration] + ([] if self.per_channel else ["--per-tensor"])
            out += ["--bias-correction"] if self.bias_correction else []
            out += ["--weight-rounding", self.weight_rounding] if self.weight_rounding != "nearest" else []
            out += ["--equalize"] if self.equalize else []
        if self.prune:
            out += ["--prune", self.prune]
            out += ["--pattern", self.pattern] if self.prune == "n:m" else ["--sparsity", str(self.sparsity)]
            out += ["--refit"] if self.refit else []
        return out


def _grid(*configs: Config) -> list[Config]:
    return list(configs)


DEFAULT_GRID = _grid(
    Config("float32"),
    Config("int8 per-tensor", "int8", per_channel=False),
    Config("int8 per-channel", "int8"),
    Config("int8 per-channel, minmax", "int8", calibration="minmax"),
    Config("Q-format q7", "qformat"),
    Config("16x8 (int16 activations)", "int16"),
    Config("int4 weights", "int4"),
    *(Config(f"unstructured {int(s * 100)}% + re-fit", prune="magnitude", sparsity=s, refit=True)
      for s in (0.5, 0.7, 0.9)),
    *(Config(f"filters {int(s * 100)}% + re-fit", prune="l1-filter", sparsity=s, refit=True) for s in (0.3, 0.5)),
    Config("2:4 + re-fit", prune="n:m", pattern="2:4", refit=True),
    Config("unstructured 70% + re-fit, int8", "int8", prune="magnitude", sparsity=0.7, refit=True),
    Config("2:4 + re-fit, int8", "int8", prune="n:m", pattern="2:4", refit=True),
    Config("filters 30% + re-fit, int8", "int8", prune="l1-filter", sparsity=0.3, refit=True),
    Config("unstructured 50% + re-fit, int4", "int4", prune="magnitude", sparsity=0.5, refit=True),
    Config("filters 30% + re-fit, int4", "int4", prune="l1-filter", sparsity=0.3, refit=True),
)
QUICK_GRID = _grid(Config("float32"), Config("int8 per-channel", "int8"),
                   Config("unstructured 70% + re-fit, int8", "int8", prune="magnitude", sparsity=0.7, refit=True),
                   Config("filters 30% + re-fit, int8", "int8", prune="l1-filter", sparsity=0.3, refit=True))


def load_grid(path: Path) -> list[Config]:
    """A TOML grid: one [[config]] table per row with the fields of Config."""
    try:
        data = tomllib.loads(Path(path).read_text())
    except (OSError, ValueError, RecursionError) as exc:  # TOMLDecodeError, UnicodeDecodeError; deep nesting
        raise EdgecError(f"{path}: not a readable TOML grid ({exc})") from None
    known = {f.name for f in dataclasses.fields(Config)}
    grid = []
    rows = data.get("config", [])
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise EdgecError(f"{path}: 'config' must be [[config]] tables")
    for k, row in enumerate(rows):
        unknown = sorted(set(row) - known)
        if unknown or "name" not in row:
            raise EdgecError(f"{path}: config {k + 1}: " + (f"unknown keys {unknown}" if unknown else "needs a name"))
        _check_row(path, k + 1, row)
        grid.append(Config(**row))
    if not grid:
        raise EdgecError(f"{path}: no [[config]] tables")
    return grid


def _check_row(path: Path, k: int, row: dict) -> None:
    """A grid row's values: of the type of Config's field, and one edgec takes (before any row runs)."""
    from .calibrate import METHODS
    from .prune import METHODS as PRUNE_METHODS
    from .quantize import SCHEMES
    from .rounding import ROUNDINGS

    choices = {"quantize": ("none", *SCHEMES), "calibration": ("auto", *METHODS), "weight_rounding": ROUNDINGS,
               "prune": (None, *PRUNE_METHODS)}
    for f in dataclasses.fields(Config):
        if f.name not in row:
            continue
        v, default = row[f.name], f.default
        kind = float if isinstance(default, float) else bool if isinstance(default, bool) else str
        ok = (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) if kind is float
              else isinstance(v, kind)) and (f.name not in choices or v in choices[f.name])
        ok = ok and (f.name != "sparsity" or 0 <= v < 1) and (f.name != "name" or 0 < len(v) <= 200)
        if not ok:
            want = f"one of {', '.join(map(str, choices[f.name]))}" if f.name in choices else kind.__name__
            raise EdgecError(f"{path}: config {k}: {f.name} = {v!r}: give {want}"
                             + (" in [0, 1)" if f.name == "sparsity" else ""))


@dataclass
class Job:
    model: Path
    target: str
    calib: Path | None
    eval: Path | None
    labels: str | None
    config: Config
    work: Path
    input_shapes: dict = field(default_factory=dict)

    def command(self) -> str:
        """The edgec validate command that measures this configuration as the row does, quoted for the shell. On
        random samples (no evaluation file) it validates on other random samples than the row's."""
        cmd = ["edgec", "validate", str(self.model), "--target", self.target, *self.config.flags()]
        cmd += ["--calib", str(self.calib)] if self.calib else []
        cmd += ["--inputs", str(self.eval)] if self.eval else []
        for name, shape in self.input_shapes.items():
            cmd += ["--input-shape", f"{name}={','.join(map(str, shape))}"]
        return shlex.join(cmd)

    def key(self) -> str:
        """Content hash of everything that determines the row: files, configuration, edgec's own sources."""
        h = hashlib.sha256(json.dumps([dataclasses.asdict(self.config), self.target, self.labels,
                                       self.input_shapes, __version__], sort_keys=True).encode())
        for p in (self.model, self.calib, self.eval):
            h.update(p.read_bytes() if p else b"-")
        for folder in (Path(__file__).parent, RUNTIME_DIR, TARGETS_DIR, TEMPLATES_DIR):
            for f in sorted(folder.rglob("*")):
                if f.is_file() and f.suffix in (".py", ".c", ".h", ".j2", ".toml", ".ld", ".S"):
                    h.update(f.read_bytes())
        return h.hexdigest()[:20]


def _eval_samples(job: Job, g) -> tuple[list[dict], np.ndarray | None]:
    from .data import load_samples, random_samples

    if job.eval is None:
        return random_samples(g, 16, seed=3), None
    labels = None
    if job.labels:
        with np.load(job.eval) as npz:
            if job.labels not in npz.files:
                raise EdgecError(f"{job.eval}: no array '{job.labels}' for --labels (arrays: {npz.files})")
            labels = npz[job.labels].reshape(-1)
            arrays = {k: npz[k] for k in npz.files if k != job.labels}
        tmp = job.work / "eval_inputs.npz"
        np.savez(tmp, **arrays)
        return load_samples(tmp, g, "evaluation"), labels
    return load_samples(job.eval, g, "evaluation"), None


def _build_options(job: Job):
    """The build options of a job's configuration."""
    from .build import BuildOptions
    from .prune import PruneOptions, parse_pattern
    from .quantize import QuantOptions

    c = job.config
    prune = None
    if c.prune:
        prune = PruneOptions(method=c.prune, sparsity=c.sparsity, pattern=parse_pattern(c.pattern), refit=c.refit)
    return BuildOptions(job.model, target=job.target, quantize=c.quantize, calib=job.calib,
                        calibration=c.calibration, input_shapes=job.input_shapes, out=job.work / "build",
                        quant=QuantOptions(per_channel=c.per_channel, bias_correction=c.bias_correction,
                                           weight_rounding=c.weight_rounding, equalize=c.equalize),
                        prune=prune)


def run_job(job: Job) -> dict:
    """Build, run and measure one configuration; errors become the row's 'error'. It prints no progress (the
    grid's is the parent's)."""
    with quiet():
        return _run_job(job)


def _run_job(job: Job) -> dict:
    from .build import build
    from .runner import run_build
    from .validate import bitexact_share, metrics, model_outputs, reference_outputs

    c = job.config
    row: dict = {"config": c.name, "command": job.command(), "float_reference": c.quantize == "none" and not c.prune}
    start = time.perf_counter()
    try:
        job.work.mkdir(parents=True, exist_ok=True)
        out, meta, g = build(_build_options(job))
        row["build_s"] = time.perf_counter() - start
        samples, labels = _eval_samples(job, g)
        res = run_build(out, samples)
        want = model_outputs(str(job.model), g, samples)
        row.update(metrics(res.outputs, want, g.outputs))
        if labels is not None:
            pred = [int(np.argmax(o[g.outputs[0]])) for o in res.outputs]
            row["accuracy"] = float(np.mean(np.array(pred) == labels[:len(pred)]))
            ref = [int(np.argmax(o[g.outputs[0]])) for o in want]
            row["float_accuracy"] = float(np.mean(np.array(ref) == labels[:len(ref)]))
        if g.quantized:
            row["bitexact"] = bitexact_share(res, reference_outputs(g, samples))
            from .analysis import quant_report

            rep = quant_report(g, samples[:4])
            ratios = [r["noise_var"] / r["noise_var_model"] for r in rep if r["noise_var_model"] > 0]
            row["noise_var_ratio"] = float(np.median(ratios)) if ratios else None
        elf = meta.get("elf") or {}
        row["flash_bytes"] = elf.get("model_flash") or meta["weight_bytes"]
        # RAM: the model's static data (the arena is one of its arrays) plus the stack of one inference
        row["ram_bytes"] = elf.get("model_ram", meta["arena_bytes"]) + (res.stack_bytes or 0)
        row["arena_bytes"] = meta["arena_bytes"]
        row["instructions"] = int(np.mean(res.instructions)) if res.instructions else None
        row["macs"] = meta["macs"]
        row["macs_executed"] = _executed_macs(meta)
        prune_report = meta.get("prune") or {}
        if prune_report:
            # against the dense model: removed filters count as removed weights
            total = prune_report["dense_weights"]
            nonzero = sum(x["nonzero"] for x in prune_report["layers"].values())
            row["sparsity"] = 1 - nonzero / total
            row["weights_removed"] = total - nonzero
        row["layers"] = meta["layers"]
    except EdgecError as exc:
        row["error"] = str(exc)
    except Exception as exc:  # noqa: BLE001 - one failed configuration must not stop the grid
        row["error"] = f"{type(exc).__name__}: {exc}"
    row["time_s"] = time.perf_counter() - start
    return row


def _executed_macs(meta: dict) -> int:
    """MACs the kernels perform: a sparse kernel only multiplies the nonzero weights."""
    density = {name: layer["nonzero"] / layer["weights"] for name, layer in
               ((meta.get("prune") or {}).get("layers") or {}).items()}
    total = 0
    for layer in meta["layers"]:
        sparse = any("_sparse_" in k or "_nm_" in k for k in layer["kernels"])
        total += int(layer["macs"] * (density.get(layer["node"], 1.0) if sparse else 1.0))
    return total


def _cached(job: Job, cache: Path) -> dict | None:
    path = cache / f"{job.key()}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def run_grid(jobs: list[Job], cache: Path, parallel: int, scheduler: str | None = None) -> list[dict]:
    """Rows in grid order; cached rows are reused, failures isolated; Ctrl-C keeps the finished rows. The jobs run
    in a local pool of `parallel` processes or, with scheduler (tcp://HOST:PORT), as tasks on that Dask cluster."""
    cache.mkdir(parents=True, exist_ok=True)
    rows: list[dict | None] = [None] * len(jobs)
    todo = []
    for k, job in enumerate(jobs):
        hit = _cached(job, cache)
        if hit is not None:
            hit["cached"] = True
            rows[k] = hit
        else:
            todo.append(k)
    try:
        with stage("compare grid", len(jobs), "configurations") as progress, _executor(parallel, scheduler) as (
                pool, task):
            progress.update(len(jobs) - len(todo))
            futures = {pool.submit(task, jobs[k]): k for k in todo}
            try:
                for fut in as_completed(futures):
                    k = futures[fut]
                    rows[k] = fut.result()
                    if "error" not in rows[k]:
                        (cache / f"{jobs[k].key()}.json").write_text(json.dumps(rows[k], default=_plain))
                    progress.update()
            except KeyboardInterrupt:
                for fut in futures:
                    fut.cancel()
                raise
    except KeyboardInterrupt:
        print("\ninterrupted: writing the finished rows", file=sys.stderr)
    return [r for r in rows if r is not None]


@contextmanager
def _executor(parallel: int, scheduler: str | None) -> Iterator[tuple[Executor, Callable[[Job], dict]]]:
    """(executor, the function each job runs in): a local process pool, or a Dask cluster's workers, where each
    task builds in a temporary folder of its worker and returns the row (the client writes the cache)."""
    if scheduler is None:
        with ProcessPoolExecutor(max_workers=max(1, parallel)) as pool:
            yield pool, run_job
        return
    try:
        from distributed import Client
    except ImportError:
        raise EdgecError("--scheduler runs the grid on a Dask cluster, which needs Dask's distributed package: pip "
                         "install 'edgec[distributed]'") from None
    try:
        client = Client(scheduler, timeout="20s", set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise EdgecError(f"--scheduler {scheduler}: cannot connect to a Dask scheduler there ({exc}); start one "
                         "with `dask scheduler` and workers with `dask worker ADDRESS`") from None
    with client, client.get_executor(pure=False) as pool:
        yield pool, run_job_in_temp


def run_job_in_temp(job: Job) -> dict:
    """run_job in a temporary folder (a Dask task: its worker may be on another machine than the compare's
    output folder); the row is the same as run_job's in job.work."""
    with tempfile.TemporaryDirectory(prefix="edgec-compare-") as tmp:
        return run_job(dataclasses.replace(job, work=Path(tmp)))


def _plain(x):
    if isinstance(x, np.generic):
        return x.item()
    raise TypeError(type(x))


# ---- outputs ---------------------------------------------------------------------------------------------------

COLUMNS = [("config", "configuration", None), ("accuracy", "accuracy", "max"), ("top1_agreement", "top-1 agr.", "max"),
           ("sqnr_db", "SQNR dB", "max"), ("cosine", "cosine", "max"), ("flash_bytes", "flash", "min"),
           ("ram_bytes", "RAM", "min"), ("instructions", "instructions", "min"), ("macs_executed", "MACs exec.", "min"),
           ("sparsity", "sparsity", None), ("noise_var_ratio", "noise/(D^2/12)", None), ("bitexact", "bit-exact", None),
           ("build_s", "build s", None)]


def fidelity(row: dict) -> float | None:
    """What the Pareto front trades against cost: accuracy when labels exist, else SQNR."""
    v = row.get("accuracy", row.get("sqnr_db"))
    return None if v is None or (isinstance(v, float) and math.isinf(v)) else v


def pareto(rows: list[dict], cost: str) -> list[dict]:
    """Rows not dominated in (higher fidelity, lower cost)."""
    ok = [r for r in rows if "error" not in r and fidelity(r) is not None and r.get(cost) is not None]
    return [r for r in ok if not any(fidelity(o) >= fidelity(r) and o[cost] <= r[cost]
                                     and (fidelity(o) > fidelity(r) or o[cost] < r[cost]) for o in ok)]


def _cell(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return "inf" if math.isinf(v) else f"{v:.4g}" if abs(v) < 1000 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


# Columns shown in KiB and in millions in report.html and the plots.
_KIB = {"flash_bytes", "ram_bytes", "arena_bytes"}
_MILLIONS = {"instructions", "macs_executed", "macs"}


def _unit_cell(key: str, v) -> str:
    """A cell of report.html: bytes in KiB, instructions and MACs in millions."""
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        if key in _KIB:
            return f"{v / 1024:,.1f} KiB"
        if key in _MILLIONS:
            return f"{v / 1e6:,.3g} M"
    return _cell(v)


def _best(rows: list[dict], cols: list[tuple]) -> dict:
    """The best value of each column that has a direction (max or min), over the finished rows but float32 (the
    reference the others are measured against)."""
    best = {}
    for key, _, how in cols:
        vals = [r[key] for r in rows if "error" not in r and not r.get("float_reference")
                and isinstance(r.get(key), (int, float))]
        if how and vals:
            best[key] = max(vals) if how == "max" else min(vals)
    return best


def table(rows: list[dict], highlight: bool) -> str:
    """The printed table: the best value per column starred (bold with highlight), failed rows below it."""
    cols = [c for c in COLUMNS if any(c[0] in r for r in rows)]
    best = _best(rows, cols)
    body = []
    failed = []
    for r in rows:
        if "error" in r:
            failed.append(f"{r['config']}: FAILED: {r['error'].splitlines()[0][:160]}")
            continue
        line = []
        for key, _, _ in cols:
            text = _cell(r.get(key))
            if key in best and r.get(key) == best[key]:
                text = f"\033[1m{text}*\033[0m" if highlight else f"{text}*"
            line.append(text)
        body.append(line)
    return "\n".join([console.table(body, header=[h for _, h, _ in cols], right=range(1, len(cols)), indent=0),
                      *failed])


def write_csv(rows: list[dict], path: Path) -> None:
    keys = [k for k, _, _ in COLUMNS] + ["arena_bytes", "macs", "weights_removed", "float_accuracy", "time_s",
                                         "cached", "error", "command"]
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow(r)


def _point_labels(rows: list[dict], cost: str, scale: float) -> list[tuple[str, float, float]]:
    """(text, x, y) per plotted position: the configurations' numbers (1-based, as in report.html's table), those
    of configurations at the same position joined ("2,5"), so that no two labels are drawn over each other."""
    at: dict[tuple[float, float], list[str]] = {}
    for k, r in enumerate(rows, 1):
        if not r.get("float_reference") and "error" not in r and r.get(cost) is not None and \
                fidelity(r) is not None:
            at.setdefault((r[cost] / scale, fidelity(r)), []).append(str(k))
    return [(",".join(ks), x, y) for (x, y), ks in at.items()]


def plots(rows: list[dict], out: Path) -> list[Path]:
    """Fidelity against flash, instructions and RAM: the configurations as numbered points, the Pareto front,
    and float32 as a dashed reference line (a point at its large cost would squash the axis)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("note: no matplotlib, so no plots (pip install matplotlib)", file=sys.stderr)
        return []
    paths = []
    ylabel = "accuracy" if any("accuracy" in r for r in rows) else "SQNR vs float (dB)"
    references = [r for r in rows if r.get("float_reference") and "error" not in r and fidelity(r) is not None]
    for cost, label, scale in (("flash_bytes", "flash (KiB)", 1024), ("instructions", "instructions per "
                               "inference (millions)", 1e6), ("ram_bytes", "RAM (KiB)", 1024)):
        pts = [r for r in rows if "error" not in r and r.get(cost) is not None and fidelity(r) is not None
               and not r.get("float_reference")]
        if not pts:
            continue
        front = sorted(pareto(pts, cost), key=lambda r: r[cost])
        fig, ax = plt.subplots(figsize=(7, 4.5))
        ax.scatter([r[cost] / scale for r in pts], [fidelity(r) for r in pts], color="tab:blue")
        for text, x, y in _point_labels(rows, cost, scale):
            ax.annotate(text, (x, y), fontsize=8, xytext=(4, 4), textcoords="offset points")
        ax.plot([r[cost] / scale for r in front], [fidelity(r) for r in front], color="tab:red",
                label="Pareto front")
        for r in references:
            cost_text = f", {_unit_cell(cost, r[cost])}" if r.get(cost) is not None else ""
            ax.axhline(fidelity(r), color="gray", linestyle="--", label=f"{r['config']}{cost_text}")
        ax.set_xlabel(label)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = out / f"{ylabel.split()[0].lower()}_vs_{cost.split('_')[0]}.png"
        write_file(path, lambda p, fig=fig: fig.savefig(p, dpi=110), "--out")
        plt.close(fig)
        paths.append(path)
    return paths


def recommend(rows: list[dict], target: str) -> str:
    """One line: within the target's flash and RAM limits, the configuration within 1 dB (accuracy: 1 point) of
    the best fidelity that fits, with the fewest instructions, then the least flash."""
    from .target import load_target

    t = load_target(target)
    budget = f"{target} ({t.flash_bytes // 1024:,} KiB flash, {t.ram_bytes // 1024:,} KiB RAM)" if t.flash_bytes \
        else target
    fits = [r for r in rows if "error" not in r and fidelity(r) is not None and r.get("flash_bytes") is not None
            and (not t.flash_bytes or r["flash_bytes"] <= t.flash_bytes)
            and (not t.ram_bytes or r.get("ram_bytes", 0) <= t.ram_bytes)]
    if not fits:
        return f"Recommendation for {budget}: no measured configuration fits."
    accuracy = any("accuracy" in r for r in rows)
    slack = 0.01 if accuracy else 1.0
    top = max(fidelity(r) for r in fits)
    near = [r for r in fits if fidelity(r) >= top - slack]
    pick = min(near, key=lambda r: (r.get("instructions") or 0, r["flash_bytes"]))
    if accuracy:
        what, within = f"accuracy {pick['accuracy']:.1%}", f"within 1 point of the best accuracy that fits ({top:.1%})"
    else:
        what, within = f"SQNR {pick['sqnr_db']:.1f} dB", f"within 1 dB of the best SQNR that fits ({top:.1f} dB)"
    speed = f", {_unit_cell('instructions', pick['instructions'])} instructions" if pick.get("instructions") else ""
    rule = "the fewest instructions, then the least flash" if pick.get("instructions") else "the least flash"
    return (f"Recommendation for {budget}: {pick['config']}: {what}, {_unit_cell('flash_bytes', pick['flash_bytes'])}"
            f" flash, {_unit_cell('ram_bytes', pick['ram_bytes'])} RAM{speed}; {within}, {rule}.")


def verdict(rows: list[dict]) -> str:
    parts = []
    for cost, label in (("flash_bytes", "flash"), ("instructions", "instructions"), ("ram_bytes", "RAM")):
        front = sorted(pareto(rows, cost), key=lambda r: r[cost])
        if front:
            parts.append(f"Against {label}, the Pareto front is: " + ", ".join(r["config"] for r in front) + ".")
    failed = [r["config"] for r in rows if "error" in r]
    if failed:
        parts.append(f"Failed: {', '.join(failed)}.")
    return " ".join(parts) or "No configuration finished."


def html_report(rows: list[dict], images: list[Path], title: str, path: Path, target: str = "host") -> None:
    """report.html, self-contained (the plots inlined), from codegen/templates/compare_report.html.j2."""
    import jinja2

    cols = [c for c in COLUMNS if any(c[0] in r for r in rows)]
    best = _best(rows, cols)
    front = {r["config"] for r in pareto(rows, "flash_bytes")}
    shown = []
    for k, r in enumerate(rows, 1):
        cells = [{"text": _unit_cell(key, r.get(key)), "best": key in best and r.get(key) == best[key]}
                 for key, _, _ in cols]
        shown.append({"number": k, "config": r["config"], "error": r.get("error"), "front": r["config"] in front,
                      "cells": cells, "command": r["command"]})
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    page = env.get_template("compare_report.html.j2").render(
        title=title, recommendation=recommend(rows, target), verdict=verdict(rows),
        columns=[{"header": h} for _, h, _ in cols], rows=shown,
        images=[{"alt": p.stem, "data": base64.b64encode(p.read_bytes()).decode()} for p in images],
        layers=[r for r in pareto(rows, "flash_bytes") if r.get("layers")][:3],
        reproducible=all("--inputs" in r["command"] for r in rows), version=__version__,
        reference_line=any(r.get("float_reference") and fidelity(r) is not None for r in rows))
    write_file(path, lambda p: p.write_text(page), "--out")


def compare(model: Path, target: str, calib: Path | None, eval_npz: Path | None, labels: str | None, out: Path,
            grid: list[Config], parallel: int, input_shapes: dict | None = None, scheduler: str | None = None
            ) -> list[dict]:
    """Run the grid (in `parallel` local processes, or on the Dask cluster at scheduler, tcp://HOST:PORT) and
    write results.csv, results.json, the plots and report.html into out."""
    plots_ = [f"{y}_vs_{c}.png" for y in ("accuracy", "sqnr") for c in ("flash", "instructions", "ram")]
    claim_dir(out, ["results.json", "results.csv", "report.html", *plots_], ["cache", "work"])
    jobs = [Job(Path(model).resolve(), target, calib and Path(calib).resolve(), eval_npz and Path(eval_npz).resolve(),
                labels, c, out / "work" / f"{k:02d}", input_shapes or {}) for k, c in enumerate(grid)]
    start = time.perf_counter()
    rows = run_grid(jobs, out / "cache", parallel, scheduler)
    write_file(out / "results.json", lambda p: p.write_text(json.dumps(rows, indent=1, default=_plain)), "--out")
    write_file(out / "results.csv", lambda p: write_csv(rows, p), "--out")
    images = plots(rows, out)
    html_report(rows, images, f"edgec compare: {Path(model).name} on {target}", out / "report.html", target)
    print(table(rows, sys.stdout.isatty()))
    print(verdict(rows))
    print(recommend(rows, target))
    print(f"{len(rows)} configurations in {time.perf_counter() - start:.0f} s; wrote {out}/report.html, "
          f"results.csv, results.json" + (f" and {len(images)} plots" if images else ""))
    return rows


sys.modules[__name__].__class__ = ApiModule  # calling this module calls edgec.api.compare (see edgec/__init__.py)
