"""Compare a build's outputs on its target with onnxruntime (float) and with the numpy integer reference."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

from .errors import EdgecError
from .ir import Graph
from .reference import QRANGE, quantize_feeds, represented_range, run_graph
from .runner import RunResult

FLOAT_REL_TOLERANCE = 1e-3  # float builds: max abs error / output range
# Quantized builds: output SQNR against float at or below this fails validation even when the C matches the integer
# reference bit for bit. At 0 dB the error is as large as the signal (an all-zero output scores exactly 0 dB).
SQNR_FLOOR_DB = 0.0


def onnxruntime_outputs(model: str, samples: list[dict[str, np.ndarray]]) -> list[dict]:
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    try:
        sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
        names = [o.name for o in sess.get_outputs()]
        return [dict(zip(names, sess.run(None, s))) for s in samples]
    except Exception as exc:  # onnxruntime raises its own classes (Fail, InvalidGraph, ...), all plain Exceptions
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise EdgecError(f"{model}: onnxruntime, the float reference, cannot run this model ({first})") from None


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
    return {
        "max_abs_err": float(err.max()),
        "mean_abs_err": float(err.mean()),
        "cosine": cosine(a, b),
        "sqnr_db": float(10 * np.log10(signal / noise)) if noise > 0 and signal > 0 else
        float("inf") if noise == 0 else float("-inf"),
        "top1_agreement": float(np.mean(top1)),
        "output_range": float(b.max() - b.min()),
    }


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity; 1.0 when both are all zero, 0.0 when only one is (it says nothing about the other)."""
    ma, mb = float(np.abs(a).max(initial=0)), float(np.abs(b).max(initial=0))
    if ma == 0 or mb == 0:
        return 1.0 if ma == mb else 0.0
    a, b = a / ma, b / mb  # scaled to 1 first, so that huge values do not overflow
    return float(np.clip(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)), -1.0, 1.0))


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
