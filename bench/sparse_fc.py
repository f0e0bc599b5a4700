"""Benchmark: ad01 (MLPerf Tiny anomaly detection, ten fully connected layers) with every Gemm's weights
magnitude-pruned to 90% (the smallest 90% of each layer's weights set to zero), int8 on an emulated target, with the
dense kernels and with the sparse ones.

    .venv/bin/python bench/sparse_fc.py [--target cortex-m7] [--sparsity 0.9] [--models ../shared/models]

Instructions per layer come from prefix models (the graph up to that layer's Relu): the difference of two
successive prefixes' instructions per inference (exact, QEMU -icount) is the layer's. Weight bytes are the int8
matrix (dense) and the row-sparse arrays (counts, indices, values) of the same quantized weights; biases and
requantization parameters are the same in both and not counted. The dense and the sparse builds must give identical
outputs (the same quantized graph). The last column is the kernel the cost model (toolchain/sparse.py) picks."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from edgec import sparse
from edgec.build import BuildOptions, build
from edgec.runner import run_build


def prune(model: onnx.ModelProto, sparsity: float) -> onnx.ModelProto:
    """Zero the smallest `sparsity` share (by magnitude) of every Gemm's weights, layer by layer."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    weights = {n.input[1] for n in model.graph.node if n.op_type == "Gemm"}
    for init in model.graph.initializer:
        if init.name in weights:
            w = numpy_helper.to_array(init).copy()
            w[np.abs(w) <= np.quantile(np.abs(w), sparsity)] = 0
            init.CopyFrom(numpy_helper.from_array(w, init.name))
    return model


def prefix(model: onnx.ModelProto, output: str) -> onnx.ModelProto:
    return onnx.utils.Extractor(model).extract_model([i.name for i in model.graph.input], [output])


def run(model: onnx.ModelProto, mode: str, target: str, models: Path, tmp: Path) -> tuple[int, np.ndarray, object, str]:
    """(instructions of one inference, raw int8 outputs of the first sample, graph, kernel of the last Gemm) with
    --sparse-kernels mode ("sparse": rows)."""
    path = tmp / "m.onnx"
    onnx.save(model, path)
    out, meta, g = build(BuildOptions(path, target=target, quantize="int8", calib=models / "ad01.calib.npz",
                                      out=tmp / f"b_{mode}", sparse_kernels={"sparse": "rows"}.get(mode, mode)))
    x = np.load(models / "ad01.inputs.npz")["input"][:1]
    res = run_build(out, [{"input": x[0]}])
    kernel = [layer["kernels"][0] for layer in meta["layers"] if layer["op"] == "Gemm"][-1]
    return res.instructions[0], next(iter(res.raw[0].values())), g, kernel


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--target", default="cortex-m7")
    p.add_argument("--sparsity", type=float, default=0.9)
    p.add_argument("--models", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "models")
    a = p.parse_args()
    model = prune(onnx.load(a.models / "ad01.onnx"), a.sparsity)
    gemms = [n for n in model.graph.node if n.op_type == "Gemm"]
    after = {n.input[0]: n.output[0] for n in model.graph.node if n.op_type == "Relu"}
    rows, previous, totals = [], {"dense": 0, "sparse": 0}, [0, 0, 0, 0]
    with tempfile.TemporaryDirectory() as tmp:
        for node in gemms:
            end = after.get(node.output[0], node.output[0])
            count, raw, kernel, g = {}, {}, {}, None
            for mode in ("dense", "sparse", "auto"):
                count[mode], raw[mode], g, kernel[mode] = run(prefix(model, end), mode, a.target, a.models, Path(tmp))
            if not np.array_equal(raw["dense"], raw["sparse"]) or not np.array_equal(raw["dense"], raw["auto"]):
                raise SystemExit(f"{node.name}: the sparse build's outputs differ from the dense build's")
            gn = next(n for n in g.nodes if n.op == "Gemm" and n.outputs[0] in (node.output[0], end))
            w = gn.q["w"]
            dense_bytes, sparse_bytes = w.size, sparse.encode_rows(w).nbytes
            layer = {m: count[m] - previous[m] for m in ("dense", "sparse")}
            previous = count
            rows.append((node.name, f"{w.shape[0]}x{w.shape[1]}", f"{1 - np.count_nonzero(w) / w.size:.1%}",
                         f"{layer['dense']:,}", f"{layer['sparse']:,}", f"{layer['dense'] / layer['sparse']:.2f}x",
                         f"{dense_bytes:,}", f"{sparse_bytes:,}", f"{sparse_bytes / dense_bytes:.1%}",
                         "sparse" if "sparse" in kernel["auto"] else "dense"))
            for i, v in enumerate((layer["dense"], layer["sparse"], dense_bytes, sparse_bytes)):
                totals[i] += v
    rows.append(("total", "", "", f"{totals[0]:,}", f"{totals[1]:,}", f"{totals[0] / totals[1]:.2f}x",
                 f"{totals[2]:,}", f"{totals[3]:,}", f"{totals[3] / totals[2]:.1%}", ""))
    head = ("layer", "N x K", "zeros", "instr dense", "instr sparse", "speed-up", "bytes dense", "bytes sparse",
            "sparse/dense", "cost model")
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    print(f"ad01, Gemm weights magnitude-pruned to {a.sparsity:.0%} per layer, int8 on {a.target} "
          f"(instructions per inference; dense and sparse outputs identical)")
    for row in (head, *rows):
        print("  ".join(str(x).rjust(w) for x, w in zip(row, widths)))


if __name__ == "__main__":
    main()
