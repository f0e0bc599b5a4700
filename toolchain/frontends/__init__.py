"""Front ends: one module per model format, each turning a file into the same IR (toolchain/ir.py).

load_model picks the importer by the file's content (a TFLite flatbuffer carries the TFL3 identifier), then by its
suffix; a file of any other kind goes to the ONNX importer, which names the file in its error. A new format is one
module here and one entry in IMPORTERS."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..ir import Graph
from .onnx import load_onnx, parse_input_shapes, require_static_shapes
from .tflite import is_tflite, load_tflite

# file suffix -> importer(path, input_shapes)
IMPORTERS: dict[str, Callable[..., Graph]] = {".onnx": load_onnx, ".tflite": load_tflite}

__all__ = ["IMPORTERS", "load_model", "parse_input_shapes", "require_static_shapes"]


def load_model(path: Path, input_shapes: dict[str, tuple[int, ...]] | None = None) -> Graph:
    """The load stage: a model file -> IR graph (static shapes where input_shapes fixes them)."""
    path = Path(path)
    if is_tflite(path):
        return load_tflite(path, input_shapes)
    return IMPORTERS.get(path.suffix.lower(), load_onnx)(path, input_shapes)
