"""Model importers: each reads one file format into the IR. load_model chooses by the file's content."""

from __future__ import annotations

from pathlib import Path

from ..ir import Graph
from .tflite import is_tflite, load_tflite


def load_model(path: Path, input_shapes: dict[str, tuple[int, ...]] | None = None) -> Graph:
    """The load stage: a .tflite flatbuffer (recognised by its TFL3 identifier, or named .tflite) or ONNX."""
    path = Path(path)
    if is_tflite(path) or path.suffix.lower() == ".tflite":
        return load_tflite(path, input_shapes)
    from ..load import load_onnx

    return load_onnx(path, input_shapes)


__all__ = ["load_model"]
