"""edgec quantize: the QDQ model passes the checker, runs in onnxruntime and agrees with edgec's own int8 C."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from helpers import build_and_run
from test_ops import CASES

from edgec.cli import main
from edgec.examples import convnet, sample_inputs

EXPORT_CASES = ["conv2d_stride2_asym_pads", "depthwise_multiplier2_stride2", "conv_relu6", "gemm_transb0_alpha_beta",
                "residual_add_relu", "mul_const_nhwc_relu", "prelu", "sigmoid", "maxpool_pads_ceil",
                "avgpool_include_pad", "global_avgpool", "concat_channels", "pad_constant", "softmax_2d",
                "flatten_gemm_nhwc", "transpose_nhwc", "conv1d"]


def qdq_outputs(path, samples):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return [dict(zip(names, sess.run(None, s))) for s in samples]


@pytest.mark.parametrize("case", EXPORT_CASES)
def test_qdq_export_matches_edgec_int8(case, tmp_path):
    from edgec.export import export_qdq

    samples, res, g, _ = build_and_run(CASES[case](), tmp_path, quantize="int8")
    path = tmp_path / "q.onnx"
    export_qdq(g, path)
    onnx.checker.check_model(onnx.load(path), full_check=True)
    for ours, theirs in zip(res.outputs, qdq_outputs(path, samples)):
        for name in g.outputs:
            step = g.tensors[name].scale
            diff = np.abs(ours[name] - theirs[name]) / step
            # onnxruntime computes in float between Q/DQ pairs and rounds half to even: a few LSB apart at most
            assert diff.max() <= 4.01 and diff.mean() <= 0.5, (case, diff.max(), diff.mean())


def test_quantize_command(tmp_path, capsys):
    model = convnet()
    src, calib, out = tmp_path / "c.onnx", tmp_path / "calib.npz", tmp_path / "c.qdq.onnx"
    onnx.save(model, src)
    np.savez(calib, **sample_inputs(model, 16, seed=1))
    assert main(["quantize", str(src), "--calib", str(calib), "-o", str(out)]) == 0
    qdq = onnx.load(out)
    ops = {n.op_type for n in qdq.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv", "Gemm"} <= ops
    assert [o.name for o in qdq.graph.output] == ["output"]
    x = sample_inputs(model, 4, seed=2)["input"]
    want = [ort.InferenceSession(str(src)).run(None, {"input": x[i]})[0] for i in range(4)]
    got = qdq_outputs(out, [{"input": x[i]} for i in range(4)])
    for w, gt in zip(want, got):
        assert np.abs(w - gt["output"]).max() < 0.1 * np.abs(w).max()
