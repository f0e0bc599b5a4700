"""The official MLPerf Tiny .tflite models on the emulated targets: built from the file (its own quantization, TFLM's
arithmetic), `edgec run` on the model's own int8 inputs reproduces TFLM's reference outputs
(../shared/models/<name>.outputs.npz, made with the tflite-micro package) exactly, on the first samples (a QEMU run
of resnet8 or vww takes a while). On host, tests/test_tflite.py checks all samples of all five."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import needs_target
from test_tflite import OFFICIAL, _official, cli_run, needs_models

SAMPLES = {"pretrainedResnet_quant": 2, "vww_96_int8": 2}  # the others: 3

CASES = [(t, n) for t in ("cortex-m7", "cortex-m55") for n in OFFICIAL] + [("cortex-a53", "kws_ref_model")]


@needs_models
@pytest.mark.qemu
@pytest.mark.parametrize("target,name", [pytest.param(t, n, marks=needs_target(t)) for t, n in CASES])
def test_targets_equal_tflm(target, name, tmp_path):
    count = SAMPLES.get(name, 3)
    _, _, outputs = _official(name)
    got, _ = cli_run(tmp_path, name, target=target, count=count)
    want = next(iter(outputs.values()))[:count]
    np.testing.assert_array_equal(got, want.reshape(got.shape))
