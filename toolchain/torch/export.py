"""ONNX export of trained models: QDQ for a model prepared with prepare_qat (edgec builds exactly the integer model
that was trained), float with the pruned weights as zeros otherwise."""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

import onnx
import torch
from torch import nn

from .qat import is_prepared, set_mode

OPSET = 17


def export(model: nn.Module, example_input: torch.Tensor, path: str | Path) -> Path:
    """Write `model` as ONNX for `edgec build`, with one input 'input' of example_input's shape and one output
    'output'. A prepared (QAT) model is written with QuantizeLinear/DequantizeLinear pairs carrying the scales and
    zero points it trained with, and its folded int8 weights behind DequantizeLinear."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    was_training = model.training
    model.eval()
    prepared = is_prepared(model)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        if prepared:
            set_mode(model, "export")
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (example_input,), tmp, dynamo=False, opset_version=OPSET,
                              input_names=["input"], output_names=["output"], do_constant_folding=True)
        onnx.checker.check_model(onnx.load(tmp), full_check=True)
        os.replace(tmp, path)
    finally:
        if prepared:
            set_mode(model, "qat")
        model.train(was_training)
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
