"""Benchmark: ad01 (MLPerf Tiny anomaly detection, ten fully connected layers) with every Gemm's weights
magnitude-pruned to 90% (the smallest 90% of each layer's weights set to zero; --method block: the 90% of its
RxC blocks of smallest L2 norm, --pattern 4x4), int8 on an emulated target, with the dense kernels and with the
sparse ones; and the crossover sparsity per core.

    .venv/bin/python bench/sparse_fc.py [--target cortex-m7] [--sparsity 0.9] [--method magnitude|block]
        [--pattern 4x4] [--models ../shared/models]
    .venv/bin/python bench/sparse_fc.py --crossover [--cores cortex-m4,cortex-m7,cortex-m33,cortex-m55,cortex-a53]

--crossover: for ad01's largest layer shape (128 x 640, int8, one input row, random Gaussian weights with a share
of zeros) on each core, the instructions of the dense kernel the core uses and of each int8 sparse kernel (forced:
row-sparse ec_fully_connected_sparse_s8, row-group ec_fully_connected_sparse_gather_s8; block-sparse
ec_fully_connected_block_sparse_s8 with random 4x4 tiles kept instead of single weights) at densities 10%, 30% and
50%; a sparse kernel's count is linear in its nonzeros, so a line through the three gives the sparsity at which it
starts to need fewer instructions than dense (the crossover). Counts are of one inference of the one-layer model
(QEMU, exact), the harness's input and output conversions included in both.

Instructions per layer come from prefix models (the graph up to that layer's Relu): the difference of two
successive prefixes' instructions per inference (exact, QEMU -icount) is the layer's, with every layer dense, every
layer row-sparse (--sparse-kernels rows), every layer row-group (gather), every layer block-sparse (block) and as
the cost model picks (auto; speed-up is dense over auto). Weight bytes are the int8 matrix (dense), the row-sparse
arrays (counts, indices, values), the row-group stream less the biases and output stage (which dense stores too, 12
bytes per row) and the block-sparse stream of the same quantized weights. All builds must give identical outputs
(the same quantized graph). The last column is the kernel the cost model (toolchain/sparse.py) picks."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper
from table import print_table

from edgec import sparse
from edgec.build import BuildOptions, build
from edgec.prune import block_norms, parse_block
from edgec.runner import run_build


def prune(model: onnx.ModelProto, sparsity: float, block: tuple[int, int] | None = None) -> onnx.ModelProto:
    """Zero the smallest `sparsity` share (by magnitude) of every Gemm's weights, layer by layer; with block (rows x
    input columns): the share of blocks of smallest L2 norm (edgec.prune.block_norms), as --prune block does."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    weights = {n.input[1]: next((a.i for a in n.attribute if a.name == "transB"), 0)
               for n in model.graph.node if n.op_type == "Gemm"}
    for init in model.graph.initializer:
        if init.name in weights:
            w = numpy_helper.to_array(init).copy()
            if block is None:
                w[np.abs(w) <= np.quantile(np.abs(w), sparsity)] = 0
            else:
                m = w if weights[init.name] else w.T  # [N][K]
                norms = block_norms(m, block)
                keep = np.ones(norms.size, bool)
                keep[np.argsort(norms, axis=None, kind="stable")[:int(sparsity * norms.size)]] = False
                m *= np.repeat(np.repeat(keep.reshape(norms.shape), block[0], 0), block[1], 1)
            init.CopyFrom(numpy_helper.from_array(w, init.name))
    return model


def prefix(model: onnx.ModelProto, output: str) -> onnx.ModelProto:
    return onnx.utils.Extractor(model).extract_model([i.name for i in model.graph.input], [output])


def run(model: onnx.ModelProto, mode: str, target: str, models: Path, tmp: Path) -> tuple[int, np.ndarray, object, str]:
    """(instructions of one inference, raw int8 outputs of the first sample, graph, kernel of the last Gemm) with
    --sparse-kernels mode ("sparse": rows, "gather": row-group)."""
    path = tmp / "m.onnx"
    onnx.save(model, path)
    out, meta, g = build(BuildOptions(path, target=target, quantize="int8", calib=models / "ad01.calib.npz",
                                      out=tmp / f"b_{mode}", sparse_kernels={"sparse": "rows"}.get(mode, mode)))
    x = np.load(models / "ad01.inputs.npz")["input"][:1]
    res = run_build(out, [{"input": x[0]}])
    kernel = [layer["kernels"][0] for layer in meta["layers"] if layer["op"] == "Gemm"][-1]
    return res.instructions[0], next(iter(res.raw[0].values())), g, kernel


def crossover(cores: list[str]) -> None:
    from sparse_cost import block_random, gemm_model, instructions, random_weights  # bench/, beside this script

    n, k, densities = 128, 640, (0.1, 0.3, 0.5)
    head = ("core", "dense kernel", "dense", "row-sparse 90%", "row-group 90%", "block 90%", "crossover row-sparse",
            "crossover row-group", "crossover block")
    rows = []
    for core in cores:
        rng = np.random.default_rng(0)
        ws = {d: (random_weights(rng, (n, k), d), rng.standard_normal(n) * 0.1) for d in densities}
        wb = {d: (block_random(rng, (n, k), d), rng.standard_normal(n) * 0.1) for d in densities}
        dense, kernel = instructions(gemm_model(*ws[0.5]), core, "int8", "dense")
        cells: list[str] = []
        at90 = []
        for mode in ("rows", "gather", "block"):
            counts = [instructions(gemm_model(*(wb if mode == "block" else ws)[d]), core, "int8", mode)[0]
                      for d in densities]
            slope, icpt = np.polyfit(densities, counts, 1)
            at90.append(f"{slope * 0.1 + icpt:,.0f}")
            d = (dense - icpt) / slope  # density at which the line meets dense
            cells.append("never" if d <= 0 else ("always" if d >= 1 else f"{1 - d:.0%}"))
            print(f"{core} {mode}: densities {densities} -> {counts}; dense {dense}", flush=True)
        rows.append((core, kernel, f"{dense:,}", *at90, *cells))
    print(f"Crossover sparsity per core: int8 fully connected {n}x{k}, one input row (the sparsity above which the "
          "sparse kernel needs fewer instructions than dense; instructions of one inference, 90% from the fit)")
    print_table(head, rows)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--target", default="cortex-m7")
    p.add_argument("--sparsity", type=float, default=0.9)
    p.add_argument("--models", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "models")
    p.add_argument("--crossover", action="store_true", help="the crossover sparsity per core instead")
    p.add_argument("--method", default="magnitude", choices=["magnitude", "block"])
    p.add_argument("--pattern", default="4x4", help="block rows x input columns for --method block")
    p.add_argument("--cores", default="cortex-m4,cortex-m7,cortex-m33,cortex-m55,cortex-a53")
    a = p.parse_args()
    if a.crossover:
        crossover(a.cores.split(","))
        return
    block = parse_block(a.pattern) if a.method == "block" else None
    model = prune(onnx.load(a.models / "ad01.onnx"), a.sparsity, block)
    gemms = [n for n in model.graph.node if n.op_type == "Gemm"]
    after = {n.input[0]: n.output[0] for n in model.graph.node if n.op_type == "Relu"}
    modes = ("dense", "sparse", "gather", "block", "auto")
    rows, previous, totals = [], dict.fromkeys(modes, 0), [0] * 9
    with tempfile.TemporaryDirectory() as tmp:
        for node in gemms:
            end = after.get(node.output[0], node.output[0])
            count, raw, kernel, g = {}, {}, {}, None
            for mode in modes:
                count[mode], raw[mode], g, kernel[mode] = run(prefix(model, end), mode, a.target, a.models, Path(tmp))
            if any(not np.array_equal(raw["dense"], raw[m]) for m in modes):
                raise SystemExit(f"{node.name}: a sparse build's outputs differ from the dense build's")
            gn = next(n for n in g.nodes if n.op == "Gemm" and n.outputs[0] in (node.output[0], end))
            w = gn.q["w"]
            sizes = (w.size, sparse.encode_rows(w).nbytes, sparse.gather_bytes(w) - 48 * ((w.shape[0] + 3) // 4),
                     sparse.block_bytes(w))
            layer = {m: count[m] - previous[m] for m in modes}
            previous = count
            # ec_fully_connected_block4_s8 is dense (4 rows at a time): match the sparse kernels' own name parts
            chosen = next((label for key, label in (("sparse_gather", "row-group"), ("block_sparse", "block-sparse"),
                                                    ("sparse", "row-sparse")) if key in kernel["auto"]), "dense")
            rows.append((node.name, f"{w.shape[0]}x{w.shape[1]}", f"{1 - np.count_nonzero(w) / w.size:.1%}",
                         *(f"{layer[m]:,}" for m in modes), f"{layer['dense'] / layer['auto']:.2f}x",
                         *(f"{b:,}" for b in sizes), chosen))
            for i, v in enumerate((*(layer[m] for m in modes), *sizes)):
                totals[i] += v
    rows.append(("total", "", "", *(f"{t:,}" for t in totals[:5]), f"{totals[0] / totals[4]:.2f}x",
                 *(f"{t:,}" for t in totals[5:]), ""))
    head = ("layer", "N x K", "zeros", "dense", "row-sparse", "row-group", "block", "auto", "speed-up", "bytes dense",
            "bytes row-sparse", "bytes row-group", "bytes block", "auto's kernel")
    how = "magnitude-pruned" if block is None else f"block-pruned ({block[0]}x{block[1]})"
    print(f"ad01, Gemm weights {how} to {a.sparsity:.0%} per layer, int8 on {a.target} "
          f"(instructions per inference per layer; every build's outputs identical to dense)")
    print_table(head, rows)

if __name__ == "__main__":
    main()
