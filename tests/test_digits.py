"""A CNN trained on scikit-learn's digits: real accuracy, float and int8, on the host and on the Cortex-M7."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from helpers import HAVE_ARM, assert_bitexact

from edgec.build import BuildOptions, build
from edgec.digits import digits_cnn_onnx, load_digits_split, train_digits_cnn
from edgec.runner import run_build


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("digits")
    params, accuracy = train_digits_cnn()
    path = tmp / "digits.onnx"
    onnx.save(digits_cnn_onnx(params), path)
    xtr, _, xte, yte = load_digits_split()
    calib = tmp / "calib.npz"
    np.savez(calib, input=xtr[:200])
    return path, calib, xte, yte, accuracy


def accuracy(build_dir, x, y) -> tuple[float, list, object]:
    samples = [{"input": xi[None]} for xi in x]
    res = run_build(build_dir, samples)
    pred = np.array([o["output"].argmax() for o in res.outputs])
    return float(np.mean(pred == y)), samples, res


@pytest.mark.parametrize("target", ["host", pytest.param("cortex-m7", marks=pytest.mark.skipif(
    not HAVE_ARM, reason="needs arm-none-eabi-gcc and qemu-system-arm"))])
def test_digits_accuracy_float_and_int8(digits, tmp_path, target):
    path, calib, xte, yte, trained = digits
    assert trained > 0.95
    if target != "host":  # QEMU: a subset keeps the test short
        xte, yte = xte[:120], yte[:120]
    f_dir, _, _ = build(BuildOptions(path, target=target, out=tmp_path / "f"))
    acc_f, _, _ = accuracy(f_dir, xte, yte)
    if target == "host":
        assert acc_f == pytest.approx(trained, abs=1e-9)  # float C: the same predictions as the trained model
    q_dir, _, g = build(BuildOptions(path, target=target, quantize="int8", calib=calib, out=tmp_path / "q"))
    acc_q, samples, res = accuracy(q_dir, xte, yte)
    assert acc_q >= acc_f - 0.01  # int8 costs at most one point of accuracy
    assert_bitexact(g, samples[:50], type(res)(res.outputs[:50], res.raw[:50]))


@pytest.mark.parametrize("scheme", ["qformat", "int4"])
def test_digits_accuracy_lowbit(digits, tmp_path, scheme):
    """Q-format q7 and int4 weights on the host: at most 2 points of accuracy below float, bit-exact."""
    path, calib, xte, yte, trained = digits
    q_dir, meta, g = build(BuildOptions(path, quantize=scheme, calib=calib, out=tmp_path / "q"))
    acc_q, samples, res = accuracy(q_dir, xte, yte)
    assert acc_q >= trained - 0.02
    assert_bitexact(g, samples[:50], type(res)(res.outputs[:50], res.raw[:50]))
