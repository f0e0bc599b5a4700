"""Benchmark: agreement of edgec's C with onnxruntime on models quantized by onnxruntime.quantization.

    .venv/bin/python bench/quantized_import.py [--models ../shared/models] [--only resnet8,ad01]
        [--target host|cortex-m7] [--calib-samples 64] [--per-layer]

For each MLPerf Tiny model, quantize_static (per channel, int8, MinMax on the first --calib-samples samples of
NAME.calib.npz) writes a QDQ and a QOperator model; edgec builds each for the target, runs NAME.inputs.npz on it
and compares with onnxruntime running the same quantized model. The unit is one step of the model's output scale.

--per-layer also compares every int8 layer of each QDQ model on its own: the layer's inputs are onnxruntime's int8
values for that layer (onnxruntime run with every QuantizeLinear output exposed, which can change which layers it
fuses), the output is edgec's integer reference. This shows where a divergence starts."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

from edgec.build import BuildOptions, build, prepare_graph, quantize_with
from edgec.ops import REGISTRY
from edgec.runner import run_build

MODELS = ["resnet8", "mobilenet_vww96", "dscnn_kws", "ad01"]
FORMATS = {"QDQ": QuantFormat.QDQ, "QOperator": QuantFormat.QOperator}


class _Reader(CalibrationDataReader):
    def __init__(self, x: np.ndarray) -> None:
        self.items = iter([{"input": s} for s in x])

    def get_next(self):
        return next(self.items, None)


def output_step(path: Path) -> float:
    """The scale of the DequantizeLinear that produces the model's output."""
    m = onnx.load(path)
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in m.graph.initializer}
    dq = next(n for n in m.graph.node if n.output[0] == m.graph.output[0].name)
    return float(inits[dq.input[1]])


def agreement(path: Path, target: str, samples: list[dict], out: Path) -> dict:
    build_dir, _, g = build(BuildOptions(path, target=target, quantize="int8", out=out))
    res = run_build(build_dir, samples)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    step = output_step(path)
    lsb = np.concatenate([np.abs(r[g.outputs[0]].astype(np.float64) - sess.run(None, s)[0]).ravel() / step
                          for r, s in zip(res.outputs, samples)])
    return {"values": lsb.size, "within1": np.mean(lsb <= 1.01), "equal": np.mean(lsb < 0.01), "max": lsb.max()}


def per_layer(path: Path, samples: list[dict], tmp: Path) -> list[tuple[str, str, int, int, int]]:
    """(node, op, values that differ from onnxruntime's, max |diff|, values) for each int8 layer, fed with
    onnxruntime's inputs."""
    model = onnx.load(path)
    zp_type = {i.name: i.data_type for i in model.graph.initializer}
    qnodes = [n for n in model.graph.node if n.op_type == "QuantizeLinear"]
    quant = {n.input[0]: n.output[0] for n in qnodes}
    exposed = {o.name for o in model.graph.output}
    for n in qnodes:
        if n.output[0] not in exposed:
            model.graph.output.append(onnx.helper.make_tensor_value_info(n.output[0], zp_type[n.input[2]], None))
    debug = tmp / "exposed.onnx"
    onnx.save(model, debug)
    sess = ort.InferenceSession(str(debug), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    g = prepare_graph(path, layout=False)
    quantize_with(g, BuildOptions(path, quantize="int8"))
    diffs: dict[str, list[np.ndarray]] = {}
    for s in samples:
        got = dict(zip(names, sess.run(None, s)))
        for node in g.nodes:
            ins = [i for i in node.inputs if i and g.const(i) is None]
            if node.outputs[0] not in quant or any(i not in quant for i in ins):
                continue
            xs = [got[quant[i]].reshape(g.shape(i)) if g.const(i) is None else g.const(i) for i in node.inputs if i]
            y = REGISTRY[node.op].ref_s8(node, g, xs).astype(np.int64).ravel()
            diffs.setdefault(node.name, []).append(y - got[quant[node.outputs[0]]].astype(np.int64).ravel())
    rows = []
    for node in g.nodes:
        if node.name in diffs:
            d = np.concatenate(diffs[node.name])
            rows.append((node.name, node.op, int(np.count_nonzero(d)), int(np.abs(d).max()), d.size))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "models")
    ap.add_argument("--only", default=",".join(MODELS))
    ap.add_argument("--target", default="host")
    ap.add_argument("--calib-samples", type=int, default=64)
    ap.add_argument("--per-layer", action="store_true")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        for name in args.only.split(","):
            calib = np.load(args.models / f"{name}.calib.npz")["input"][:args.calib_samples]
            samples = [{"input": s} for s in np.load(args.models / f"{name}.inputs.npz")["input"]]
            for fmt, qf in FORMATS.items():
                path = tmp / f"{name}.{fmt}.onnx"
                quantize_static(str(args.models / f"{name}.onnx"), str(path), _Reader(calib), quant_format=qf,
                                per_channel=True, activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
                r = agreement(path, args.target, samples, tmp / f"build_{name}_{fmt}")
                rows.append((name, fmt, r))
                if args.per_layer and fmt == "QDQ":
                    print(f"\n{name} QDQ, each layer on onnxruntime's inputs:")
                    print(f"  {'node':24s} {'op':18s} {'differ':>7s} {'of':>8s} {'max':>4s}")
                    for node, op, differ, mx, n in per_layer(path, samples, tmp):
                        print(f"  {node:24s} {op:18s} {differ:7d} {n:8d} {mx:4d}")
    print(f"\nedgec ({args.target}) vs onnxruntime on the same quantized model, in output steps "
          f"(quantize_static, per channel, {args.calib_samples} calibration samples)")
    print(f"{'model':18s} {'format':10s} {'values':>7s} {'within 1 LSB':>13s} {'equal':>8s} {'max LSB':>8s}")
    for name, fmt, r in rows:
        print(f"{name:18s} {fmt:10s} {r['values']:7d} {100 * r['within1']:12.2f}% {100 * r['equal']:7.2f}% "
              f"{r['max']:8.2f}")


if __name__ == "__main__":
    main()
