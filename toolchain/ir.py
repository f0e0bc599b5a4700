"""The graph IR: ONNX semantics (logical NCHW shapes), static shapes, constants folded into tensors."""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# Element types of activations: the C type and bytes per element of each.
CTYPES = {"float32": "float", "int8": "int8_t", "int16": "int16_t"}
ELEM_BYTES = {"float32": 4, "int8": 1, "int16": 2}
NUMPY_TYPES = {"float32": np.float32, "int8": np.int8, "int16": np.int16}


def unique_name(base: str, taken: Container[str]) -> str:
    """base, or base_1, base_2, ... : the first that is not taken."""
    name, k = base, 0
    while name in taken:
        k += 1
        name = f"{base}_{k}"
    return name


@dataclass
class Tensor:
    name: str
    shape: tuple[int, ...]
    data: np.ndarray | None = None  # set for constants (weights, folded values)
    # Physical storage, set by the layout pass: the bytes are data.reshape(view).transpose(perm), row-major.
    view: tuple[int, ...] | None = None  # None: the logical shape
    perm: tuple[int, ...] | None = None  # None: identity (logical order)
    # Element type of an activation ("float32", "int8", "int16"), set by the quantizer; constants stay float.
    dtype: str = "float32"
    # Integer activations, set by the quantizer: real = scale * (q - zero_point).
    scale: float | None = None
    zero_point: int | None = None
    # Scale and zero point that came with the model (an imported QDQ model); they win over calibration.
    fixed_quant: tuple[float, int] | None = None
    fixed_dtype: str = "int8"  # the element type of fixed_quant's Q/DQ pair: "int8" or "int16" (zero point 0)
    # Other formats a mixed QDQ model converts this tensor to (a DQ -> Q pair): (scale, zero point, element type)
    fixed_converts: list[tuple[float, int, str]] = field(default_factory=list)
    # Weights: symmetric int8 scales that came with the model, (scale per index of axis, axis).
    weight_scales: tuple[np.ndarray, int] | None = None
    # An int32 constant dequantized in the model (a QDQ bias): its integers and their scales (per element of axis 0
    # or one). Used as they are while data still equals their dequantized values.
    int_values: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def is_const(self) -> bool:
        return self.data is not None

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def ctype(self) -> str:
        return CTYPES[self.dtype]

    @property
    def nbytes(self) -> int:
        return self.size * ELEM_BYTES[self.dtype]

    @property
    def storage_view(self) -> tuple[int, ...]:
        return self.view if self.view is not None else self.shape

    @property
    def storage_perm(self) -> tuple[int, ...]:
        return self.perm if self.perm is not None else tuple(range(len(self.storage_view)))

    def to_storage(self, x: np.ndarray) -> np.ndarray:
        """Logical array -> flat array in this tensor's physical order."""
        return np.ascontiguousarray(x.reshape(self.storage_view).transpose(self.storage_perm)).ravel()


@dataclass
class Node:
    op: str
    name: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)
    # Integer parameters, set by the quantizer: the op's own dataclass (a subclass of ops/params.py Params: for
    # Conv/Gemm a Stage of ops/output_stage.py, weights and the typed output stage); None for a float node.
    q: Any = None
    scheme: str = "int8"  # the quantization scheme of this node (QuantOptions.scheme), set by the quantizer
    # The element type this node computes in ("float32", "int8", "int16"), set by the quantizer. Its activation
    # inputs and output have this type; a Convert node (toolchain/ops/convert.py) joins tensors of two types.
    dtype: str = "float32"


@dataclass
class Graph:
    name: str
    tensors: dict[str, Tensor]
    nodes: list[Node]
    inputs: list[str]
    outputs: list[str]
    quantized: bool = False  # some tensors are integers (a per-tensor element type says which)
    info: dict[str, Any] = field(default_factory=dict)  # what passes report (e.g. pruning), for the build report
    # The integer arithmetic every quantized op computes: "edgec" (edgec's own, one rounding per requantization)
    # or "tflm" (TensorFlow Lite Micro's reference kernels bit for bit: set by the TFLite front end).
    arithmetic: str = "edgec"

    def const(self, name: str) -> np.ndarray | None:
        t = self.tensors.get(name)
        return None if t is None else t.data

    def shape(self, name: str) -> tuple[int, ...]:
        return self.tensors[name].shape

    def consumers(self, name: str) -> list[Node]:
        return [n for n in self.nodes if name in n.inputs]

    def producer(self, name: str) -> Node | None:
        for n in self.nodes:
            if name in n.outputs:
                return n
        return None

    def add_const(self, name: str, data: np.ndarray) -> str:
        name = unique_name(name, self.tensors)
        self.tensors[name] = Tensor(name, tuple(data.shape), np.ascontiguousarray(data))
        return name

    def fresh_name(self, base: str) -> str:
        return unique_name(base, self.tensors)

    def rename_tensor(self, old: str, new: str) -> None:
        t = self.tensors.pop(old)
        t.name = new
        self.tensors[new] = t
        for n in self.nodes:
            n.inputs = [new if i == old else i for i in n.inputs]
            n.outputs = [new if o == old else o for o in n.outputs]
        self.inputs = [new if i == old else i for i in self.inputs]
        self.outputs = [new if o == old else o for o in self.outputs]

    def remove_unused(self) -> None:
        """Drop constants and tensors that no node or graph boundary refers to."""
        used = set(self.inputs) | set(self.outputs)
        for n in self.nodes:
            used.update(i for i in n.inputs if i)
            used.update(n.outputs)
        self.tensors = {k: v for k, v in self.tensors.items() if k in used}

    def activations(self) -> list[str]:
        """Non-constant tensors in execution order (graph inputs first)."""
        seen = list(self.inputs)
        for n in self.nodes:
            seen.extend(o for o in n.outputs if o not in seen)
        return seen
