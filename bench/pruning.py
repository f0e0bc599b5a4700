"""Benchmark: pruning on ad01 (fully connected) and resnet8 (convolutions), int8 on an emulated target, and the
accuracy of a digits CNN pruned the same ways.

    .venv/bin/python bench/pruning.py [--target cortex-m7] [--models ../shared/models] [--samples 20] [--jobs 1]
                                      [--no-cache]

Configurations: dense; unstructured magnitude pruning at 50/70/90% per layer; 2:4 along the input channels; L1
filter pruning at 30/50%; each without and with the least-squares re-fit (calibration data). The first and the last
weighted layer stay dense (edgec's default). Per configuration the pruned float model is exported, then built twice
in int8 with the same calibration: once with the kernels the cost model picks (dense, row-sparse or N:4 per layer,
toolchain/sparse.py) and once with dense kernels only. Both must give identical outputs (checked on the first 4
samples); the first build must be bit-exact with the numpy integer reference (column 'exact').

Columns: sparsity (zero or removed weights of the dense model's weighted layers); SQNR and top-1 agreement of the
target's int8 outputs against the dense float model in onnxruntime (ad01 reconstructs its input: top-1 does not
apply); flash bytes of every constant array (weights, biases, requantization) with dense kernels / as built;
arena bytes (dense kernels / as built, sparse kernels need scratch); instructions per inference (QEMU, exact, mean of
the first 4 samples) with dense kernels and as built; the layers that got a sparse kernel (rows: row-sparse, nm:
N:4). Rows are cached by a content hash of the model, the data, the configuration and edgec's sources."""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import onnx
from table import print_table

import edgec
from edgec.build import BuildOptions, build, prepare_graph
from edgec.export import export_float
from edgec.paths import RUNTIME_DIR, TARGETS_DIR, TEMPLATES_DIR
from edgec.prune import PruneOptions
from edgec.runner import run_build
from edgec.validate import bitexact_share, metrics, onnxruntime_outputs, reference_outputs

TIMED = 4  # samples whose instructions are counted with both kernel choices


@dataclass(frozen=True)
class Config:
    name: str
    method: str | None = None
    sparsity: float = 0.0
    refit: bool = False


CONFIGS = [Config("dense")] + [
    Config(f"{label}{' + re-fit' if refit else ''}", method, s, refit)
    for label, method, s in [("unstructured 50%", "magnitude", 0.5), ("unstructured 70%", "magnitude", 0.7),
                             ("unstructured 90%", "magnitude", 0.9), ("2:4", "n:m", 0.5),
                             ("filters 30%", "l1-filter", 0.3), ("filters 50%", "l1-filter", 0.5)]
    for refit in (False, True)]


@dataclass(frozen=True)
class Job:
    model: str  # a name in the table
    path: str
    calib: str
    inputs: str
    labels: str | None  # a .npy of labels (accuracy) or None
    target: str
    config: Config
    samples: int

    def key(self) -> str:
        h = hashlib.sha256(json.dumps(asdict(self) | {"path": None, "calib": None, "inputs": None, "labels": None},
                                      sort_keys=True).encode())
        for p in (self.path, self.calib, self.inputs, self.labels):
            h.update(Path(p).read_bytes() if p else b"-")
        here = Path(edgec.__file__).parent
        for folder in (here, RUNTIME_DIR, TARGETS_DIR, TEMPLATES_DIR, Path(__file__).parent):
            for f in sorted(folder.rglob("*")):
                if f.is_file() and f.suffix in (".py", ".c", ".h", ".j2", ".toml", ".ld", ".S"):
                    h.update(f.read_bytes())
        return h.hexdigest()[:20]


def _samples(path: str, count: int) -> list[dict[str, np.ndarray]]:
    with np.load(path) as npz:
        return [{k: npz[k][i] for k in npz.files} for i in range(min(count, len(npz[npz.files[0]])))]


def _build(model: Path, job: Job, out: Path, kernels: str):
    return build(BuildOptions(model, target=job.target, quantize="int8", calib=Path(job.calib), out=out,
                              sparse_kernels=kernels))


def _same(a: list[dict], b: list[dict], what: str) -> None:
    for x, y in zip(a, b):
        for name in x:
            if not np.array_equal(x[name], y[name]):
                raise RuntimeError(f"{what}: the kernels' outputs differ on {name}")


def run_job(job: Job) -> dict:
    """run_job_or_fail; a failure becomes the row's 'error' (the other rows go on)."""
    try:
        return run_job_or_fail(job)
    except Exception as exc:  # noqa: BLE001 - one failed configuration must not stop the table
        return {"model": job.model, "config": job.config.name, "error": f"{type(exc).__name__}: {exc}",
                "time_s": 0.0}


def run_job_or_fail(job: Job) -> dict:
    """Prune, export, build with the cost model's kernels and with dense ones, run, measure."""
    c = job.config
    start = time.perf_counter()
    row: dict = {"model": job.model, "config": c.name}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        model = Path(job.path)
        if c.method:
            opts = PruneOptions(method=c.method, sparsity=c.sparsity, pattern=(2, 4), refit=c.refit)
            g = prepare_graph(model, prune=opts, calib=Path(job.calib), layout=False)
            model = tmp / "pruned.onnx"
            export_float(g, model)
            rep = g.info["prune"]
            row["sparsity"] = 1 - sum(x["nonzero"] for x in rep["layers"].values()) / rep["dense_weights"]
        else:
            row["sparsity"] = 0.0
        out, meta, g = _build(model, job, tmp / "auto", "auto")
        samples = _samples(job.inputs, job.samples)
        res = run_build(out, samples)
        want = onnxruntime_outputs(job.path, samples)
        m = metrics(res.outputs, want, g.outputs)
        row.update(sqnr_db=m["sqnr_db"], top1=m["top1_agreement"], exact=bitexact_share(res, reference_outputs(g,
                                                                                                              samples)))
        if job.labels:
            labels = np.load(job.labels)[:len(samples)]
            row["accuracy"] = float(np.mean([int(np.argmax(o[g.outputs[0]])) == y for o, y in zip(res.outputs,
                                                                                                 labels)]))
            row["float_accuracy"] = float(np.mean([int(np.argmax(o[g.outputs[0]])) == y for o, y in zip(want,
                                                                                                       labels)]))
            pruned = onnxruntime_outputs(str(model), samples)
            row["pruned_float_accuracy"] = float(np.mean([int(np.argmax(o[g.outputs[0]])) == y
                                                          for o, y in zip(pruned, labels)]))
        d_out, d_meta, _ = _build(model, job, tmp / "dense", "dense")
        d_res = run_build(d_out, samples[:TIMED])
        _same(res.raw[:TIMED], d_res.raw, f"{job.model} {c.name}")
        if c.method == "n:m":  # the N:4 kernels forced: the least flash
            n_out, n_meta, _ = _build(model, job, tmp / "nm", "nm")
            n_res = run_build(n_out, samples[:TIMED])
            _same(res.raw[:TIMED], n_res.raw, f"{job.model} {c.name} (N:4)")
            row.update(flash_nm=n_meta["weight_bytes"], arena_nm=n_meta["arena_bytes"],
                       instr_nm=float(np.mean(n_res.instructions)))
        row.update(flash_dense=d_meta["weight_bytes"], flash=meta["weight_bytes"], arena_dense=d_meta["arena_bytes"],
                   arena=meta["arena_bytes"], instr_dense=float(np.mean(d_res.instructions)),
                   instr=float(np.mean(res.instructions[:TIMED])))
        kinds = {"rows": 0, "nm": 0}
        for layer in meta["layers"]:
            kernel = " ".join(layer["kernels"])
            kinds["rows"] += "_sparse_" in kernel
            kinds["nm"] += "_nm_" in kernel
        row["sparse_layers"] = ", ".join(f"{v} {k}" for k, v in kinds.items() if v) or "-"
    row["time_s"] = time.perf_counter() - start
    return row


def run_all(jobs: list[Job], cache: Path | None, workers: int) -> list[dict]:
    rows: list[dict | None] = [None] * len(jobs)
    todo = []
    for i, job in enumerate(jobs):
        hit = cache / f"{job.key()}.json" if cache else None
        if hit and hit.is_file():
            rows[i] = json.loads(hit.read_text())
        else:
            todo.append(i)
    print(f"{len(jobs) - len(todo)} of {len(jobs)} rows cached; running {len(todo)}", file=sys.stderr, flush=True)
    with ProcessPoolExecutor(max_workers=max(1, workers)) as pool:
        for i, row in zip(todo, pool.map(run_job, [jobs[i] for i in todo])):
            rows[i] = row
            if cache and "error" not in row:
                cache.mkdir(parents=True, exist_ok=True)
                (cache / f"{jobs[i].key()}.json").write_text(json.dumps(row))
            print(f"  {row['model']}: {row['config']} ({row['time_s']:.0f} s)", file=sys.stderr, flush=True)
    return [r for r in rows if r is not None]


def _fmt(v, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def print_results(rows: list[dict], accuracy: bool) -> None:
    fidelity = ["float acc", "int8 acc"] if accuracy else ["SQNR dB", "top-1"]
    head = ["model", "configuration", "sparsity", *fidelity] + [
        "exact", "flash dense", "flash built", "arena dense", "arena built", "instr dense", "instr built", "speed-up",
        "sparse layers"]
    body = []
    for r in rows:
        if "error" in r:
            body.append([r["model"], r["config"], "failed:", r["error"]] + [""] * (len(head) - 4))
            continue
        fid = [_fmt(r.get("pruned_float_accuracy"), ".1%"), _fmt(r.get("accuracy"), ".1%")] if accuracy else [
            _fmt(r["sqnr_db"], ".1f"), "n/a" if r["model"] == "ad01" else _fmt(r["top1"], ".0%")]
        body.append([r["model"], r["config"], f"{r['sparsity']:.0%}", *fid, f"{r['exact']:.0%}",
                     f"{r['flash_dense']:,}", f"{r['flash']:,}", f"{r['arena_dense']:,}", f"{r['arena']:,}",
                     f"{r['instr_dense']:,.0f}", f"{r['instr']:,.0f}", f"{r['instr_dense'] / r['instr']:.2f}x",
                     r["sparse_layers"]])
    print_table(head, body, left={0, 1, len(head) - 1})


def print_forced(rows: list[dict]) -> None:
    head = ["model", "configuration", "flash dense", "flash N:4", "N:4/dense", "arena N:4", "instr dense",
            "instr N:4", "speed-up"]
    body = [[r["model"], r["config"], f"{r['flash_dense']:,}", f"{r['flash_nm']:,}",
             f"{r['flash_nm'] / r['flash_dense']:.1%}", f"{r['arena_nm']:,}", f"{r['instr_dense']:,.0f}",
             f"{r['instr_nm']:,.0f}", f"{r['instr_dense'] / r['instr_nm']:.2f}x"] for r in rows]
    print_table(head, body, left={0, 1})


def digits_files(folder: Path) -> tuple[Path, Path, Path, Path, float]:
    """Train the digits CNN (seeded) and write model, calibration (64 training images), test images and labels."""
    from edgec.digits import digits_cnn_onnx, load_digits_split, train_digits_cnn

    params, accuracy = train_digits_cnn()
    xtr, _, xte, yte = load_digits_split()
    folder.mkdir(parents=True, exist_ok=True)
    paths = folder / "digits.onnx", folder / "calib.npz", folder / "test.npz", folder / "labels.npy"
    onnx.save(digits_cnn_onnx(params), paths[0])
    np.savez(paths[1], input=xtr[:64, None])
    np.savez(paths[2], input=xte[:, None])
    np.save(paths[3], yte)
    return (*paths, accuracy)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--target", default="cortex-m7")
    p.add_argument("--models", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "models")
    p.add_argument("--samples", type=int, default=20, help="evaluation samples per MLPerf Tiny model")
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--no-cache", action="store_true")
    p.add_argument("--only", nargs="+", choices=["ad01", "resnet8", "digits"], default=["ad01", "resnet8", "digits"])
    p.add_argument("--configs", type=int, help="only the first N configurations (a quick check)")
    a = p.parse_args()
    cache = None if a.no_cache else Path.home() / ".cache" / "edgec" / "bench-pruning"
    start = time.perf_counter()
    jobs = [Job(name, str(a.models / f"{name}.onnx"), str(a.models / f"{name}.calib.npz"),
                str(a.models / f"{name}.inputs.npz"), None, a.target, c, a.samples)
            for name in ("ad01", "resnet8") if name in a.only for c in CONFIGS[:a.configs]]
    with tempfile.TemporaryDirectory() as tmp:
        model, calib, test, labels, trained = digits_files(Path(tmp) / "digits")
        n_test = len(np.load(labels))
        if "digits" in a.only:
            jobs += [Job("digits", str(model), str(calib), str(test), str(labels), a.target, c, n_test)
                     for c in CONFIGS[:a.configs]]
        rows = run_all(jobs, cache, a.jobs)
    print(f"int8 on {a.target}; MLPerf Tiny models on {a.samples} samples of <model>.inputs.npz against the dense "
          f"float model (onnxruntime)")
    print_results([r for r in rows if r["model"] != "digits"], accuracy=False)
    forced = [r for r in rows if "instr_nm" in r and "error" not in r]
    if forced:
        print("\n2:4 rows with the N:4 kernels forced (--sparse-kernels nm) instead of the cost model's choice")
        print_forced(forced)
    digits = [r for r in rows if r["model"] == "digits"]
    if digits and "error" not in digits[0]:
        print(f"\ndigits CNN (toolchain/digits.py), accuracy on the {n_test} test images; float dense model "
              f"{digits[0]['float_accuracy']:.1%} (numpy training: {trained:.1%})")
        print_results(digits, accuracy=True)
    print(f"\nwall time {time.perf_counter() - start:.0f} s ({sum(r['time_s'] for r in rows):.0f} s of jobs, "
          f"{len(jobs)} rows, --jobs {a.jobs})")


if __name__ == "__main__":
    main()
