"""Models quantized by onnxruntime.quantization (QDQ) compile with their own scales and integer weights."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from helpers import assert_bitexact
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

from edgec.build import BuildOptions, build
from edgec.examples import convnet, sample_inputs
from edgec.runner import run_build


class _Reader(CalibrationDataReader):
    def __init__(self, x: np.ndarray) -> None:
        self.items = iter([{"input": s} for s in x])

    def get_next(self):
        return next(self.items, None)


@pytest.mark.parametrize("activation_type", [QuantType.QInt8, QuantType.QUInt8])
def test_onnxruntime_qdq_model(tmp_path, activation_type):
    model = convnet()
    src, qdq = tmp_path / "convnet.onnx", tmp_path / "convnet.qdq.onnx"
    onnx.save(model, src)
    quantize_static(str(src), str(qdq), _Reader(sample_inputs(model, 16, seed=1)["input"]),
                    quant_format=QuantFormat.QDQ, per_channel=True, activation_type=activation_type,
                    weight_type=QuantType.QInt8)
    out, meta, g = build(BuildOptions(qdq, quantize="int8", out=tmp_path / "b"))
    assert meta["quantize"] == "int8"
    x = sample_inputs(model, 6, seed=2)["input"]
    samples = [{"input": x[i]} for i in range(len(x))]
    res = run_build(out, samples)
    assert_bitexact(g, samples, res)
    # The scales are onnxruntime's: its input scale, and weights equal to its int8 values.
    init = {i.name: onnx.numpy_helper.to_array(i) for i in onnx.load(qdq).graph.initializer}
    assert g.tensors["input"].scale == pytest.approx(float(init["input_scale"]))
    sess = ort.InferenceSession(str(qdq), providers=["CPUExecutionProvider"])
    step = g.tensors["output"].scale
    lsb = np.concatenate([np.abs(r["output"] - sess.run(None, s)[0]).ravel() / step
                          for r, s in zip(res.outputs, samples)])
    # onnxruntime requantizes in float with round-half-to-even; edgec in fixed point like TFLite: 1 LSB apart at most
    # in each layer, which can add up to a few LSB at the output.
    assert np.mean(lsb <= 1.01) >= 0.9 and lsb.max() <= 4.01
