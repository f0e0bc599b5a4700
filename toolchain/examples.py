"""The user's two example models, built with onnx.helper (seeded random weights), and sample data for them."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17


def _model(name: str, nodes: list, x_shape: list[int], y_shape: list[int], weights: dict) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, name, [helper.make_tensor_value_info("input", TensorProto.FLOAT, x_shape)],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, y_shape)],
                              [numpy_helper.from_array(v.astype(np.float32), k) for k, v in weights.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    onnx.checker.check_model(model, full_check=True)
    return model


def _init(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    fan_in = int(np.prod(shape[1:]))
    return rng.uniform(-1, 1, shape) * np.sqrt(3.0 / fan_in)


def simple_model(seed: int = 0) -> onnx.ModelProto:
    """SimpleModel: Linear(4, 6) -> ReLU -> Linear(6, 3)."""
    rng = np.random.default_rng(seed)
    w = {"fc1_W": _init(rng, (6, 4)), "fc1_B": rng.uniform(-0.5, 0.5, 6),
         "fc2_W": _init(rng, (3, 6)), "fc2_B": rng.uniform(-0.5, 0.5, 3)}
    nodes = [helper.make_node("Gemm", ["input", "fc1_W", "fc1_B"], ["h"], transB=1, name="fc1"),
             helper.make_node("Relu", ["h"], ["h_relu"], name="relu1"),
             helper.make_node("Gemm", ["h_relu", "fc2_W", "fc2_B"], ["output"], transB=1, name="fc2")]
    return _model("simple_model", nodes, [1, 4], [1, 3], w)


def convnet(seed: int = 0) -> onnx.ModelProto:
    """ConvNet: 1x1x28x28 -> Conv(1,4,3,p1) -> ReLU -> Conv(4,8,3,p1) -> ReLU -> flatten -> Linear(8*28*28, 10)."""
    rng = np.random.default_rng(seed)
    w = {"conv1_W": _init(rng, (4, 1, 3, 3)), "conv1_B": rng.uniform(-0.1, 0.1, 4),
         "conv2_W": _init(rng, (8, 4, 3, 3)), "conv2_B": rng.uniform(-0.1, 0.1, 8),
         "fc_W": _init(rng, (10, 8 * 28 * 28)), "fc_B": rng.uniform(-0.1, 0.1, 10)}
    nodes = [helper.make_node("Conv", ["input", "conv1_W", "conv1_B"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             helper.make_node("Conv", ["r1", "conv2_W", "conv2_B"], ["c2"], pads=[1, 1, 1, 1], name="conv2"),
             helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
             helper.make_node("Flatten", ["r2"], ["flat"], name="flatten"),
             helper.make_node("Gemm", ["flat", "fc_W", "fc_B"], ["output"], transB=1, name="fc")]
    return _model("convnet", nodes, [1, 1, 28, 28], [1, 10], w)


def sample_inputs(model: onnx.ModelProto, count: int, seed: int) -> dict[str, np.ndarray]:
    """Uniform [0, 1) samples for every input, with a leading sample axis."""
    rng = np.random.default_rng(seed)
    out = {}
    for inp in model.graph.input:
        shape = [d.dim_value for d in inp.type.tensor_type.shape.dim]
        out[inp.name] = rng.uniform(0, 1, [count, *shape]).astype(np.float32)
    return out
