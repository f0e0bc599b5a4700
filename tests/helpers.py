"""Shared test helpers: small ONNX graphs and the build-run-compare loop."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import CalibrationDataReader

from edgec.build import BuildOptions, build
from edgec.cli import main
from edgec.reference import QRANGE, quantize_feeds, run_graph
from edgec.runner import run_build
from edgec.target import list_targets, load_target

MODELS = Path(__file__).resolve().parents[2] / "shared" / "models"
HAVE_ARM = shutil.which("arm-none-eabi-gcc") is not None and shutil.which("qemu-system-arm") is not None
EMULATED_TARGETS = [t.name for t in list_targets() if t.kind != "host"]


def needs_target(name: str) -> pytest.MarkDecorator:
    """Skip unless the target's compiler and QEMU are installed."""
    t = load_target(name)
    missing = [tool for tool in (t.cc, t.qemu) if shutil.which(tool) is None]
    return pytest.mark.skipif(bool(missing), reason=f"needs {', '.join(missing)} ({t.apt_install})")


def make_model(nodes, inputs: dict[str, list[int]], outputs: dict[str, list[int] | None], inits: dict | None = None,
               opset: int = 17) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes, "test",
        [helper.make_tensor_value_info(k, TensorProto.FLOAT, v) for k, v in inputs.items()],
        [helper.make_tensor_value_info(k, TensorProto.FLOAT, v) for k, v in outputs.items()],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in (inits or {}).items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    # Outputs declared without a shape get the one onnx infers.
    inferred = onnx.shape_inference.infer_shapes(model)
    shapes = {v.name: v.type for v in list(inferred.graph.value_info) + list(inferred.graph.output)}
    for out in model.graph.output:
        if not out.type.tensor_type.HasField("shape") and out.name in shapes:
            out.type.CopyFrom(shapes[out.name])
    return model


def random_feeds(model: onnx.ModelProto, rng: np.random.Generator, scale: float = 1.0) -> dict[str, np.ndarray]:
    feeds = {}
    inits = {i.name for i in model.graph.initializer}
    for inp in model.graph.input:
        if inp.name in inits:
            continue
        shape = [d.dim_value for d in inp.type.tensor_type.shape.dim]
        feeds[inp.name] = (rng.standard_normal(shape) * scale).astype(np.float32)
    return feeds


def build_and_run(model: onnx.ModelProto, tmp: Path, quantize: str = "none", target: str = "host",
                  n_samples: int = 3, n_calib: int = 16, seed: int = 0, **build_options):
    """Build the model, run samples on the target; returns (samples, run result, graph, onnxruntime outputs)."""
    rng = np.random.default_rng(seed)
    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / "model.onnx"
    onnx.save(model, path)
    calib = None
    if quantize != "none" or build_options.get("qconfig"):
        cal = [random_feeds(model, rng) for _ in range(n_calib)]
        calib = tmp / "calib.npz"
        np.savez(calib, **{k: np.stack([c[k] for c in cal]) for k in cal[0]})
    out, meta, g = build(BuildOptions(path, target=target, quantize=quantize, calib=calib, out=tmp / "build",
                                      **build_options))
    samples = [random_feeds(model, rng) for _ in range(n_samples)]
    res = run_build(out, samples)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    want = [dict(zip(names, sess.run(None, s))) for s in samples]
    return samples, res, g, want


def assert_float_close(res, want, rel: float = 1e-4) -> None:
    for got, ref in zip(res.outputs, want):
        for name, r in ref.items():
            scale = max(float(np.abs(r).max()), 1e-3)
            np.testing.assert_allclose(got[name], r, rtol=0, atol=rel * scale, err_msg=name)


def assert_bitexact(g, samples, res) -> None:
    for s, raw in zip(samples, res.raw):
        values = run_graph(g, quantize_feeds(g, s), int8=True)
        for name in g.outputs:
            np.testing.assert_array_equal(raw[name], values[name], err_msg=f"{name} differs from the reference")


# Mean absolute error against onnxruntime's float output, over all samples, as a share of the output's span: about
# 2.5x the worst case measured over the test models of each scheme (host, December 2026; emulated targets are
# bit-exact with the same reference): int8 0.0221 (gemm, one of its test samples beyond the calibrated range),
# int16 0.0160, qformat 0.0049, int4 0.0601, q15 0.0020. The medians are 4-10x smaller.
SANE_REL_ERROR = {"int8": 0.05, "int16": 0.04, "qformat": 0.015, "int4": 0.15, "q15": 0.006}


def assert_int8_sane(res, want, scheme: str = "int8") -> None:
    """Quantized outputs track float: the mean error over the samples within SANE_REL_ERROR[scheme] of the output
    span (an independent oracle: a quantizer that agrees with its own reference but is wrong fails here)."""
    for name in want[0]:
        err = np.mean([np.abs(got[name] - ref[name]).mean() for got, ref in zip(res.outputs, want)])
        span = np.mean([max(float(np.ptp(ref[name])), float(np.abs(ref[name]).max()), 1e-3) for ref in want])
        assert err <= SANE_REL_ERROR[scheme] * span, (name, scheme, err / span)


def integer_samples(g, count: int, seed: int = 1) -> list[dict[str, np.ndarray]]:
    """count float samples of a quantized graph whose quantized values are random integers (the first: every value
    of the input's type in order, repeated)."""
    rng = np.random.default_rng(seed)
    samples = []
    for k in range(count):
        s = {}
        for name in g.inputs:
            t = g.tensors[name]
            lo, hi = QRANGE[t.dtype]
            q = np.resize(np.arange(lo, hi + 1), t.shape) if k == 0 else rng.integers(lo, hi + 1, size=t.shape)
            s[name] = ((q - t.zero_point) * t.scale).astype(np.float32)
        samples.append(s)
    return samples


class ConvGraph:
    """The nodes and weights of a random NCHW convolution graph built block by block (tests/test_inplace.py,
    tests/test_schedule.py): unique names, 3x3 (or size x size) convolutions with random weights and a Relu."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng, self.nodes, self.inits, self.k = rng, [], {}, 0

    def name(self, base: str) -> str:
        self.k += 1
        return f"{base}{self.k}"

    def conv(self, x: str, cin: int, cout: int, size: int = 3, group: int = 1, relu: bool = True,
             stride: int = 1) -> str:
        wname, bname, y = self.name("W"), self.name("B"), self.name("conv")
        self.inits[wname] = (self.rng.standard_normal((cout, cin // group, size, size)) * 0.3).astype(np.float32)
        self.inits[bname] = (self.rng.standard_normal(cout) * 0.1).astype(np.float32)
        self.nodes.append(helper.make_node("Conv", [x, wname, bname], [y], pads=[size // 2] * 4, group=group,
                                           strides=[stride, stride]))
        if not relu:
            return y
        r = self.name("relu")
        self.nodes.append(helper.make_node("Relu", [y], [r]))
        return r


def run_cli(capsys, *argv) -> tuple[int, str]:
    """edgec's command line in this process: (exit code, what it wrote on stderr)."""
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


class SampleReader(CalibrationDataReader):
    """onnxruntime quantize_static's calibration samples: x's rows fed as the input `name`."""

    def __init__(self, x: np.ndarray, name: str = "input") -> None:
        self.items = iter([{name: s} for s in x])

    def get_next(self):
        return next(self.items, None)
