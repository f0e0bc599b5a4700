"""Benchmark: edgec's quantization choices (int8, Q-format q7, int4 weights, int16 activations) against
onnxruntime.quantization and the official int8 TFLite models, on the MLPerf Tiny models in ../shared/models
(fidelity to the float model on NAME.inputs.npz) and on a small CNN trained on scikit-learn's digits (accuracy).

    .venv/bin/pip install -e '.[bench]'   # ai-edge-litert, for the official int8 TFLite rows (optional)
    .venv/bin/python bench/quantization.py [--models ../shared/models] [--only resnet8,ad01] [--schemes 'auto mixed']

Every edgec row is built and run in C on the host (cffi); its integer outputs are compared bit for bit with the
integer reference (the bit-exact column). SQNR is in dB against onnxruntime's float outputs; top-1 is agreement
with float. onnxruntime's quantize_static runs with each calibration method, per channel and per tensor. "build s" is
wall time: an edgec host build from the model file (calibration statistics not cached; C compile included), or
onnxruntime's quantize_static. The digits CNN (edgec.digits, trained here on scikit-learn's digits) reports
accuracy on its 449 test images instead."""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from table import print_table

from edgec.build import BuildOptions, build
from edgec.data import load_samples
from edgec.quantize import QuantOptions
from edgec.runner import run_build
from edgec.validate import bitexact_share, metrics, onnxruntime_outputs, reference_outputs

MODELS = ["digits", "ad01", "resnet8", "dscnn_kws", "dscnn_kws_int8src", "mobilenet_vww96", "str_ww"]
# The official int8 KWS model was trained separately from dscnn_kws.onnx; its float twin is dscnn_kws_int8src.
TFLITE = {"ad01": "ad01_int8.tflite", "resnet8": "pretrainedResnet_quant.tflite", "dscnn_kws": None,
          "dscnn_kws_int8src": "kws_ref_model.tflite", "mobilenet_vww96": "vww_96_int8.tflite",
          "str_ww": "str_ww_ref_model.tflite", "digits": None}
SCHEMES = {
    "int8 per-channel, auto calibration (default)": {},
    "int8 per-channel, minmax": {"calibration": "minmax"},
    "int8 per-tensor, minmax": {"calibration": "minmax", "quant": QuantOptions(per_channel=False)},
    "int8 per-channel, symmetric act., minmax": {"calibration": "minmax", "quant": QuantOptions(symmetric=True)},
    "int8 per-channel, percentile 99.99": {"calibration": "percentile"},
    "int8 per-channel, entropy": {"calibration": "entropy"},
    "int8 per-channel, mse": {"calibration": "mse"},
    "int8 per-channel, output (clipping by layer-output error)": {"calibration": "output"},
    "int8 per-channel, output + bias corr.": {"calibration": "output", "quant": QuantOptions(bias_correction=True)},
    "int8 per-channel, minmax + bias corr.": {"calibration": "minmax", "quant": QuantOptions(bias_correction=True)},
    "int8 per-channel, percentile + bias corr.": {"calibration": "percentile",
                                                  "quant": QuantOptions(bias_correction=True)},
    "Q-format q7 (power-of-two, shift-only), auto calibration": {"quantize": "qformat"},
    "Q-format q7, minmax": {"quantize": "qformat", "calibration": "minmax"},
    "int4 weights per-channel, auto calibration": {"quantize": "int4"},
    "int4 weights per-channel, minmax": {"quantize": "int4", "calibration": "minmax"},
    "int16 act. + int8 weights (16x8), auto calibration": {"quantize": "int16"},
    "int16 act. + int8 weights (16x8), minmax": {"quantize": "int16", "calibration": "minmax"},
    "Q-format q15 (int16, power-of-two), auto calibration": {"quantize": "q15"},
    "auto mixed precision (per layer int8/int4 weights, int8/int16 act.), --max-sqnr-drop 1":
        {"quantize": "auto", "max_sqnr_drop": 1.0},
}


def accuracy(outputs: list[dict], labels: np.ndarray | None) -> float | None:
    if labels is None:
        return None
    return float(np.mean([np.argmax(next(iter(o.values()))) == y for o, y in zip(outputs, labels)]))


def edgec_row(model: Path, calib: Path, samples, want, out: Path, labels=None, quantize: str = "int8",
              **options) -> dict:
    """An edgec build for the host (calibration statistics computed afresh: the cache is a temporary folder) run in
    C; `seconds` is the build's wall time, C compile included."""
    with tempfile.TemporaryDirectory() as cache, _environ("XDG_CACHE_HOME", cache):
        start = time.perf_counter()
        build_dir, meta, g = build(BuildOptions(model, quantize=quantize, calib=calib, out=out, **options))
        seconds = time.perf_counter() - start
    res = run_build(build_dir, samples)
    row = metrics(res.outputs, want, g.outputs)
    row["accuracy"] = accuracy([{n: o[n] for n in g.outputs} for o in res.outputs], labels)
    row["bitexact"] = bitexact_share(res, reference_outputs(g, samples))
    row["weights"], row["arena"], row["seconds"] = meta["weight_bytes"], meta["arena_bytes"], seconds
    return row


@contextmanager
def _environ(key: str, value: str):
    old = os.environ.get(key)
    os.environ[key] = value
    try:
        yield
    finally:
        if old is None:
            del os.environ[key]
        else:
            os.environ[key] = old


ORT_METHODS = ("MinMax", "Percentile", "Entropy")


def onnxruntime_row(model: Path, calib: Path, samples, want, tmp: Path, labels=None, method: str = "MinMax",
                    per_channel: bool = True) -> dict:
    """onnxruntime's quantize_static (QDQ, int8 weights and activations) with one calibration method; `seconds` is
    its wall time."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    x = np.load(calib)
    name = ort.InferenceSession(str(model)).get_inputs()[0].name
    data = x[x.files[0]]

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter([{name: d.reshape(samples[0][name].shape)} for d in data])

        def get_next(self):
            return next(self.it, None)

    out = tmp / f"ort_{method}_{per_channel}.onnx"
    start = time.perf_counter()
    quantize_static(str(model), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=per_channel,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                    calibrate_method=getattr(CalibrationMethod, method))
    seconds = time.perf_counter() - start
    got = onnxruntime_outputs(str(out), samples)
    row = metrics(got, want, list(want[0]))
    row["accuracy"] = accuracy(got, labels)
    row["weights"] = sum(int(np.prod(i.dims)) for i in onnx.load(out).graph.initializer if i.data_type == 3)
    row["seconds"] = seconds
    return row


def tflite_row(path: Path | None, samples, want) -> dict | None:
    if path is None:
        return None
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        return None
    interp = Interpreter(model_path=str(path))
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    got = []
    for s in samples:
        x = next(iter(s.values()))
        if x.ndim == 4 and tuple(inp["shape"]) != x.shape:
            x = x.transpose(0, 2, 3, 1)  # NCHW -> NHWC
        s_in, zp_in = inp["quantization"]
        q = np.clip(np.round(x / s_in) + zp_in, -128, 127).astype(inp["dtype"]).reshape(inp["shape"])
        interp.set_tensor(inp["index"], q)
        interp.invoke()
        s_out, zp_out = out["quantization"]
        y = (interp.get_tensor(out["index"]).astype(np.float32) - zp_out) * s_out
        got.append({k: y.reshape(v.shape) for k, v in want[0].items()})
    row = metrics(got, want, list(want[0]))
    row["weights"] = path.stat().st_size
    return row


HEAD = ("scheme", "SQNR dB", "top-1", "bit-exact", "weight bytes", "arena bytes", "build s")


def fmt(row: dict | None, label: str) -> tuple:
    if row is None:
        return (label, "-", "-", "-", "-", "-", "-")
    top1 = f"{row['accuracy']:.4f}" if row.get("accuracy") is not None else f"{row['top1_agreement']:.2f}"
    return (label, f"{row['sqnr_db']:.2f}", top1, f"{row['bitexact']:.2f}" if "bitexact" in row else "-",
            f"{row['weights']:,}", f"{row['arena']:,}" if "arena" in row else "-",
            f"{row['seconds']:.1f}" if "seconds" in row else "-")


def digits_model(tmp: Path) -> tuple[Path, Path, list[dict], np.ndarray]:
    """The CNN of edgec.digits trained on scikit-learn's digits: model, calibration file (200 training images),
    the test images as samples and their labels."""
    from edgec.digits import digits_cnn_onnx, load_digits_split, train_digits_cnn

    params, _ = train_digits_cnn()
    model, calib = tmp / "digits.onnx", tmp / "digits.calib.npz"
    onnx.save(digits_cnn_onnx(params), model)
    xtr, _, xte, yte = load_digits_split()
    np.savez(calib, input=xtr[:200])
    return model, calib, [{"input": x[None]} for x in xte], yte


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--models", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "models")
    p.add_argument("--only", help="comma-separated model names")
    p.add_argument("--schemes", help="only the edgec rows whose label contains this text (e.g. 'auto mixed')")
    a = p.parse_args()
    schemes = {k: v for k, v in SCHEMES.items() if not a.schemes or a.schemes in k}
    names = a.only.split(",") if a.only else MODELS
    for name in names:
        model, calib = a.models / f"{name}.onnx", a.models / f"{name}.calib.npz"
        with tempfile.TemporaryDirectory() as tmp:
            from edgec.build import prepare_graph

            labels = None
            if name == "digits":
                model, calib, samples, labels = digits_model(Path(tmp))
            else:
                samples = load_samples(a.models / f"{name}.inputs.npz", prepare_graph(model), "input")
            want = onnxruntime_outputs(str(model), samples)
            rows = []
            if labels is not None:
                rows.append(("float32 (onnxruntime)", "-", f"{accuracy(want, labels):.4f}", "-", "-", "-", "-"))
            rows += [fmt(edgec_row(model, calib, samples, want, Path(tmp) / str(k), labels, **opts), f"edgec {label}")
                     for k, (label, opts) in enumerate(schemes.items())]
            rows += [fmt(onnxruntime_row(model, calib, samples, want, Path(tmp), labels, m, pc),
                         f"onnxruntime quantize_static (QDQ, {'per-channel' if pc else 'per-tensor'}, {m})")
                     for pc in (True, False) for m in ORT_METHODS]
            tfl = a.models / TFLITE[name] if TFLITE[name] else None
            rows.append(fmt(tflite_row(tfl, samples, want), "official int8 TFLite (file bytes)"))
        print(f"\n{name} ({len(samples)} test inputs{'; top-1 column: accuracy' if labels is not None else ''})")
        print_table(HEAD, rows, left=(0,))

if __name__ == "__main__":
    main()
