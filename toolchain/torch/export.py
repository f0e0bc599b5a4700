"""ONNX export of trained models: QDQ for a model prepared with prepare_qat (edgec builds exactly the integer model
that was trained), float otherwise, with pruned weights as zeros and pruned filters removed."""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from ..build import prepare_graph
from ..export import export_float
from ..prune import prune_filters, weighted_layers
from .qat import ActQuant, is_prepared, set_mode

OPSET = 17
OPSET_INT16 = 21  # QuantizeLinear/DequantizeLinear take int16 from opset 21


def export(model: nn.Module, example_input: torch.Tensor, path: str | Path, remove_filters: bool = True) -> Path:
    """Write `model` as ONNX for `edgec build`, with one input 'input' of example_input's shape and one output
    'output'. A prepared (QAT) model is written with QuantizeLinear/DequantizeLinear pairs carrying the scales and
    zero points it trained with, and its folded int8 weights behind DequantizeLinear (16x8: int16 activation pairs
    with zero point 0, opset 21). In a float model, filters
    that are entirely zero (weights and bias after BatchNorm folding, as GradualPruner's filter structure leaves
    them) are removed with the channels they feed (edgec.prune.prune_filters), when remove_filters."""
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
        if prepared and any(m.dtype == "int16" for m in model.modules() if isinstance(m, ActQuant)):
            _widen_activation_qdq(Path(tmp))
        onnx.checker.check_model(onnx.load(tmp), full_check=True)
        if remove_filters and not prepared:
            _remove_zero_filters(Path(tmp))
        os.replace(tmp, path)
    finally:
        if prepared:
            set_mode(model, "qat")
        model.train(was_training)
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def _remove_zero_filters(path: Path) -> None:
    """Rewrite the float model at path without its all-zero filters (outputs unchanged: those channels are 0)."""
    g = prepare_graph(path, layout=False)
    sparsity = {}
    for node in weighted_layers(g):
        w = g.const(node.inputs[1])
        b = g.const(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] else np.zeros(w.shape[0])
        zero = ~np.any(w.reshape(w.shape[0], -1), axis=1)
        dead = int(zero.sum())
        if dead and not np.any(b[zero]):  # (a zero filter with a bias is a constant channel: kept)
            sparsity[node.name] = (dead + 0.5) / w.shape[0]  # prune_filters removes floor(s * channels)
    if sparsity:
        prune_filters(g, [n for n in weighted_layers(g) if n.name in sparsity], sparsity, norm=2)
        export_float(g, path)


def _widen_activation_qdq(path: Path) -> None:
    """Make every activation Q/DQ pair of the exported model int16 with zero point 0 (torch.onnx writes only 8-bit
    pairs; the scales are already the int16 ones) and raise the opset to OPSET_INT16. Weight pairs (on constants)
    stay int8."""
    m = onnx.load(str(path))
    g = m.graph
    consts = {i.name for i in g.initializer} | {o for n in g.node if n.op_type == "Constant" for o in n.output}
    zp16 = "edgec_int16_zero_point"
    g.initializer.append(onnx.numpy_helper.from_array(np.zeros((), np.int16), zp16))
    for q in [n for n in g.node if n.op_type == "QuantizeLinear" and n.input[0] not in consts]:
        for n in [q] + [d for d in g.node if d.op_type == "DequantizeLinear" and d.input[0] == q.output[0]]:
            if len(n.input) < 3:
                n.input.append(zp16)
            else:
                n.input[2] = zp16
    used = {i for n in g.node for i in n.input}
    kept = [i for i in g.initializer if i.name in used]  # (the int8 zero points the pairs no longer read)
    del g.initializer[:]
    g.initializer.extend(kept)
    for imp in m.opset_import:
        if imp.domain in ("", "ai.onnx"):
            imp.version = OPSET_INT16
    m.ir_version = max(m.ir_version, 10)  # (opset 21 needs IR version 10)
    onnx.save(m, str(path))
