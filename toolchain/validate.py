"""Compare a build's outputs on its target with onnxruntime (float) and with the numpy integer reference."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort

from . import ApiModule
from .frontends.onnx import read_model, upgrade_opset
from .ir import Graph
from .reference import QRANGE, quantize_feeds, represented_range, run_graph
from .runner import RunResult

FLOAT_REL_TOLERANCE = 1e-3  # float builds: max abs error / output range
# onnxruntime's input type names -> the numpy type a sample is cast to (toolchain/frontends/onnx.py float32_boundary)
ORT_TYPES = {f"tensor({k})": v for k, v in (("float", np.float32), ("double", np.float64), ("int8", np.int8),
                                             ("uint8", np.uint8), ("int16", np.int16), ("uint16", np.uint16),
                                             ("int32", np.int32), ("uint32", np.uint32), ("int64", np.int64),
                                             ("uint64", np.uint64))}


def oracle_model(path: str) -> bytes:
    """The model onnxruntime runs as the reference: the file converted to edgec's minimum opset (onnxruntime has no
    kernels for some ops of old opsets, e.g. BatchNormalization-6, Gemm-6, AveragePool-1); same semantics."""
    return upgrade_opset(read_model(Path(path)), Path(path)).SerializeToString()


def onnxruntime_outputs(model: str, samples: list[dict[str, np.ndarray]]) -> list[dict]:
    """onnxruntime's outputs for the samples, each input fed in the model's own element type (edgec's float32
    values cast at the boundary: float64, or integers for an integer input)."""
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(oracle_model(model), opts, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    types = {i.name: ORT_TYPES.get(i.type, np.float32) for i in sess.get_inputs()}
    return [dict(zip(names, sess.run(None, {k: np.asarray(v).astype(types.get(k, np.float32))
                                             for k, v in s.items()}))) for s in samples]


def reference_outputs(g: Graph, samples: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
    """The numpy integer reference's raw outputs for each sample (quantized builds only)."""
    out = []
    for s in samples:
        values = run_graph(g, quantize_feeds(g, s), int8=True)
        out.append({n: values[n] for n in g.outputs})
    return out


def metrics(got: list[dict], want: list[dict], names: list[str]) -> dict:
    a = np.concatenate([np.concatenate([s[n].ravel() for n in names]) for s in got]).astype(np.float64)
    b = np.concatenate([np.concatenate([s[n].ravel() for n in names]) for s in want]).astype(np.float64)
    err = np.abs(a - b)
    noise = float(((a - b) ** 2).sum())
    signal = float((b**2).sum())
    first = names[0]
    top1 = [np.argmax(x[first].reshape(-1)) == np.argmax(y[first].reshape(-1)) for x, y in zip(got, want)]
    denom = float(np.linalg.norm(a) * np.linalg.norm(b))
    return {
        "max_abs_err": float(err.max()),
        "mean_abs_err": float(err.mean()),
        "cosine": float(a @ b / denom) if denom else 1.0,
        "sqnr_db": float(10 * np.log10(signal / noise)) if noise > 0 else float("inf"),
        "top1_agreement": float(np.mean(top1)),
        "output_range": float(b.max() - b.min()),
    }


def bitexact_share(result: RunResult, reference: list[dict]) -> float:
    total = same = 0
    for raw, ref in zip(result.raw, reference):
        for name, r in ref.items():
            total += r.size
            same += int(np.sum(raw[name] == r))
    return same / total if total else 1.0


def input_clipping(g: Graph, samples: list[dict[str, np.ndarray]]) -> dict[str, dict]:
    """For each integer model input: the share of the samples' values that its quantization clips (those that
    round beyond the type's bounds, as in quantize_input), the range it represents and the range of the samples."""
    out = {}
    for name in g.inputs:
        t = g.tensors[name]
        if t.dtype == "float32":
            continue
        x = np.stack([np.asarray(s[name], np.float64).reshape(t.shape) for s in samples])
        lo, hi = QRANGE[t.dtype]
        q = np.round(x / t.scale) + t.zero_point
        out[name] = {"share": float(np.mean((q < lo) | (q > hi))),
                     "represents": represented_range(t.scale, t.zero_point, t.dtype),
                     "seen": (float(x.min()), float(x.max()))}
    return out


sys.modules[__name__].__class__ = ApiModule  # calling this module calls edgec.api.validate (see edgec/__init__.py)
