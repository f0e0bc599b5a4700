"""Compare a build's outputs on its target with onnxruntime (float) and with the numpy integer reference."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort

from . import ApiModule
from .errors import EdgecError
from .frontends.onnx import read_model, upgrade_opset
from .ir import Graph
from .ops import REGISTRY
from .reference import QRANGE, dequantize, quantize_feeds, represented_range, run_graph, run_samples
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


# Quantized builds: output SQNR against float at or below this fails validation even when the C matches the integer
# reference bit for bit. At 0 dB the error is as large as the signal (an all-zero output scores exactly 0 dB).
SQNR_FLOOR_DB = 0.0


def onnxruntime_outputs(model: str, samples: list[dict[str, np.ndarray]]) -> list[dict]:
    """onnxruntime's outputs for the samples, each input fed in the model's own element type (edgec's float32
    values cast at the boundary: float64, or integers for an integer input). A model onnxruntime refuses (edgec
    may accept it: duplicate node names, say) is a user error naming the model."""
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    try:
        sess = ort.InferenceSession(oracle_model(model), opts, providers=["CPUExecutionProvider"])
        names = [o.name for o in sess.get_outputs()]
        types = {i.name: ORT_TYPES.get(i.type, np.float32) for i in sess.get_inputs()}
        outs = [dict(zip(names, sess.run(None, {k: np.asarray(v).astype(types.get(k, np.float32))
                                                 for k, v in s.items()}))) for s in samples]
    except Exception as exc:  # onnxruntime raises its own classes (Fail, InvalidGraph, ...), all plain Exceptions
        if isinstance(exc, EdgecError):
            raise
        raise _refused(model, "onnxruntime, the float reference", exc) from None
    for k, out in enumerate(outs):
        bad = next((n for n, v in out.items() if np.asarray(v).dtype.kind == "f" and not np.isfinite(v).all()), None)
        if bad is not None:
            raise EdgecError(f"{model}: the float model's output '{bad}' is not finite (NaN or infinity) on sample "
                             f"{k + 1}, in onnxruntime too: it overflows on these inputs, and validate cannot "
                             "measure an error against it; check the inputs or the model")
    return outs


def _refused(model: str, what: str, exc: Exception) -> EdgecError:
    """A reference runtime's own exception (onnxruntime's Fail, TFLM's RuntimeError, LiteRT's ValueError, ...) as a
    user error: the model may still build."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return EdgecError(f"{model}: {what}, cannot run this model ({first[:200]}); validate cannot check it (edgec "
                      "build still can)")


def reference_outputs(g: Graph, samples: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
    """The numpy integer reference's raw outputs for each sample (quantized builds only)."""
    return run_samples(g, samples, int8=True, label="integer reference")


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


# A float output (a float last layer in a mixed build) within this many float32 steps of its largest value counts
# as equal.
FLOAT_ULPS = 8


def bitexact_share(result: RunResult, reference: list[dict]) -> float:
    """The share of output values equal to the integer reference's. Integer outputs must be equal; a float output
    (`--qconfig softmax=float`, say) within FLOAT_ULPS float32 steps: the C's expf is not numpy's exp (they
    differed by one step on resnet8's softmax, and validate failed a build whose every layer matched)."""
    total = same = 0
    for raw, ref in zip(result.raw, reference):
        for name, r in ref.items():
            total += r.size
            if r.dtype.kind == "f":
                step = np.spacing(np.float32(np.abs(r).max(initial=0)))  # (of the output's largest value)
                same += int(np.sum(np.abs(raw[name].astype(np.float64) - r) <= FLOAT_ULPS * step))
            else:
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


# ---- a .tflite model's own runtimes: TFLM (the tflite-micro package) and LiteRT's reference kernels -------------

_TFLITE_EXTRA = "pip install 'edgec[tflite]' (the tflite-micro and ai-edge-litert packages)"


def _file_input(x: np.ndarray, dtype, shape, scale: float, zp: int) -> np.ndarray:
    """A float sample in a .tflite input's own type: quantized with its scale and zero point where it is integer."""
    x = np.asarray(x, np.float64).reshape(tuple(int(d) for d in shape))
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return np.clip(np.round(x / scale) + zp, info.min, info.max).astype(dtype)
    return x.astype(dtype)


def tflm_interpreter(model: str, preserve: bool = False):
    """TFLM's Python interpreter (reference kernels) on the file; preserve keeps every tensor for GetTensor."""
    try:
        from tflite_micro.python.tflite_micro import runtime
    except ImportError:
        return None
    config = runtime.InterpreterConfig
    config = config.kPreserveAllTensors if preserve else config.kAllocationRecording
    return runtime.Interpreter.from_file(str(model), intrepreter_config=config)


def _set_inputs(it, g: Graph, sample: dict[str, np.ndarray]) -> None:
    """Feed a TFLM interpreter a sample in each input's own type."""
    for k, name in enumerate(g.inputs):
        d = it.get_input_details(k)
        q = d["quantization_parameters"]
        scale, zp = (float(q["scales"][0]), int(q["zero_points"][0])) if len(q["scales"]) else (1.0, 0)
        it.set_input(_file_input(sample[name], d["dtype"], d["shape"], scale, zp), k)




def tflm_outputs(model: str, g: Graph, samples: list[dict[str, np.ndarray]]) -> list[dict] | None:
    """TFLM's outputs for each sample in the file's own dtype, keyed like g.outputs (None without tflite-micro)."""
    try:
        return _tflm_outputs(model, g, samples)
    except Exception as exc:  # (tflite-micro raises plain RuntimeErrors)
        raise _refused(model, "TFLM, the reference for .tflite files", exc) from None


def litert_outputs(model: str, g: Graph, samples: list[dict[str, np.ndarray]]) -> list[dict] | None:
    """LiteRT's outputs with its reference kernels (BUILTIN_REF), in the file's dtype (None without LiteRT)."""
    try:
        return _litert_outputs(model, g, samples)
    except Exception as exc:
        raise _refused(model, "LiteRT, the reference for .tflite files", exc) from None


def _tflm_outputs(model: str, g: Graph, samples: list[dict[str, np.ndarray]]) -> list[dict] | None:
    it = tflm_interpreter(model)
    if it is None:
        return None
    out = []
    for s in samples:
        _set_inputs(it, g, s)
        it.invoke()
        out.append({name: np.array(it.get_output(k)) for k, name in enumerate(g.outputs)})
    return out


def _litert_outputs(model: str, g: Graph, samples: list[dict[str, np.ndarray]]) -> list[dict] | None:
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
    except ImportError:
        return None
    it = Interpreter(model_path=str(model), experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    it.allocate_tensors()
    ins, outs = it.get_input_details(), it.get_output_details()
    result = []
    for s in samples:
        for name, d in zip(g.inputs, ins):
            scale, zp = d["quantization"]
            it.set_tensor(d["index"], _file_input(s[name], d["dtype"], d["shape"], scale, zp))
        it.invoke()
        result.append({name: it.get_tensor(d["index"]).copy() for name, d in zip(g.outputs, outs)})
    return result


def as_float(outputs: list[dict], g: Graph) -> list[dict]:
    """Integer outputs of the file dequantized with the build's output scales (the file's own)."""
    res = []
    for s in outputs:
        res.append({n: dequantize(v, g.tensors[n].scale, g.tensors[n].zero_point)
                    if np.issubdtype(v.dtype, np.integer) else v.astype(np.float32) for n, v in s.items()})
    return res


def raw_share(result: RunResult, want: list[dict]) -> float:
    """Share of output elements the build computes exactly as the other runtime (integers, or float32 values)."""
    total = same = 0
    for raw, real, ref in zip(result.raw, result.outputs, want):
        for name, r in ref.items():
            got = raw[name] if np.issubdtype(r.dtype, np.integer) else real[name]  # (a DEQUANTIZE output: floats)
            total += r.size
            same += int(np.sum(got.reshape(r.shape) == r))
    return same / total if total else 1.0


def tflm_divergence(model: str, g: Graph, sample: dict[str, np.ndarray]) -> list[dict] | None:
    """Per TFLite tensor, in execution order: the share of elements the integer reference computes as TFLM does
    (TFLM's intermediate tensors, kept with kPreserveAllTensors), and the largest difference. None without
    tflite-micro or for a build that is not quantized."""
    it = tflm_interpreter(model, preserve=True)
    index = g.info.get("tflite_tensors", {})
    if it is None or not g.quantized:
        return None
    _set_inputs(it, g, sample)
    it.invoke()
    values = run_graph(g, quantize_feeds(g, sample), int8=True)

    def tflm(name: str) -> np.ndarray:  # TFLM's tensor in the IR's logical shape
        v = np.asarray(it.GetTensor(index[name], 0)["tensor_data"])
        shape = g.shape(name)
        return v.reshape(shape[0], shape[2], shape[3], shape[1]).transpose(0, 3, 1, 2) if len(shape) == 4 \
            else v.reshape(shape)

    alone = dict(values)  # each op fed TFLM's own inputs where TFLM has them
    rows = []
    for node in g.nodes:
        xs = [tflm(i) if i in index and i not in g.inputs else alone[i] if i in alone else g.const(i)
              for i in node.inputs if i]
        alone[node.outputs[0]] = np.asarray(REGISTRY[node.op].ref_s8(node, g, xs)).reshape(g.shape(node.outputs[0]))
        name = node.outputs[0]
        if name not in index or np.asarray(it.GetTensor(index[name], 0)["tensor_data"]).dtype.kind == "f":
            continue  # (a DEQUANTIZE's float output: the build keeps the integers)
        want = tflm(name).astype(np.int64)
        chained = np.abs(values[name].astype(np.int64) - want)
        single = np.abs(alone[name].astype(np.int64) - want)
        rows.append({"node": node.name, "op": node.op, "tensor": name, "equal": float(np.mean(chained == 0)),
                     "max_diff": int(chained.max()), "equal_alone": float(np.mean(single == 0)),
                     "max_diff_alone": int(single.max())})
    return rows


def model_outputs(model: str, g: Graph, samples: list[dict[str, np.ndarray]]) -> list[dict]:
    """The model file's own float outputs: onnxruntime for ONNX; for a .tflite, LiteRT's reference kernels (TFLM
    where LiteRT is missing), integer outputs dequantized with their scales."""
    if g.info.get("source_format") != "tflite":
        return onnxruntime_outputs(model, samples)
    outs = litert_outputs(model, g, samples)
    if outs is None:
        outs = tflm_outputs(model, g, samples)
    if outs is None:
        raise EdgecError(f"{model}: comparing a .tflite model with its own runtime needs LiteRT or TFLM: "
                         f"{_TFLITE_EXTRA}")
    return as_float(outs, g)


def tflite_agreement(model: str, g: Graph, samples: list, res: RunResult) -> dict:
    """For a .tflite model: its outputs in TFLM and in LiteRT's reference kernels ("want": the float outputs to
    compare with) and, for a build with the file's own integer arithmetic (scales), the share of output elements
    equal to each (bitexact_vs_tflm, bitexact_vs_litert; None where the runtime is not installed). {} for ONNX."""
    if g.info.get("source_format") != "tflite":
        return {}
    tflm, litert = tflm_outputs(model, g, samples), litert_outputs(model, g, samples)
    if tflm is None and litert is None:
        raise EdgecError(f"{model}: validating a .tflite model runs it in TFLM and LiteRT: {_TFLITE_EXTRA}")
    for name, outs in (("tflite-micro (TFLM)", tflm), ("ai-edge-litert (LiteRT)", litert)):
        if outs is None:
            print(f"warning: {name} is not installed; {_TFLITE_EXTRA}", file=sys.stderr)
    report: dict = {"want": as_float(tflm if g.arithmetic == "tflm" and tflm is not None else litert or tflm, g)}
    if g.arithmetic == "tflm":
        report["bitexact_vs_tflm"] = None if tflm is None else raw_share(res, tflm)
        report["bitexact_vs_litert"] = None if litert is None else raw_share(res, litert)
    return report


sys.modules[__name__].__class__ = ApiModule  # calling this module calls edgec.api.validate (see edgec/__init__.py)
