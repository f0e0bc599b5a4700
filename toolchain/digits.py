"""A small CNN trained on scikit-learn's bundled 8x8 digits, in numpy, exported to ONNX: a model whose accuracy
can really be measured (the MLPerf Tiny test sets here are synthetic or tiny).

Architecture: Conv(1->8, 3x3, pad 1) ReLU MaxPool2 -> Conv(8->16, 3x3, pad 1) ReLU MaxPool2 -> Flatten -> Gemm(64->10).
Training: Adam on softmax cross-entropy, seeded, a few seconds on one core."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def load_digits_split(seed: int = 0, test_fraction: float = 0.25) -> tuple[np.ndarray, ...]:
    """(x_train, y_train, x_test, y_test); x is float32 [N, 1, 8, 8] in [0, 1]."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = int(len(x) * test_fraction)
    test, train = order[:n_test], order[n_test:]
    return x[train], d.target[train], x[test], d.target[test]


def _im2col(x: np.ndarray) -> np.ndarray:
    """[N, C, H, W] -> [N, H, W, C*9] patches of a 3x3, pad-1 convolution."""
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    cols = [xp[:, :, i:i + h, j:j + w] for i in range(3) for j in range(3)]
    return np.stack(cols, axis=2).reshape(n, c * 9, h, w).transpose(0, 2, 3, 1)


def _col2im(dcols: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    n, c, h, w = shape
    d = dcols.transpose(0, 3, 1, 2).reshape(n, c, 9, h, w)
    dx = np.zeros((n, c, h + 2, w + 2), dcols.dtype)
    for k, (i, j) in enumerate((i, j) for i in range(3) for j in range(3)):
        dx[:, :, i:i + h, j:j + w] += d[:, :, k]
    return dx[:, :, 1:-1, 1:-1]


def _conv(x, w, b):
    cols = _im2col(x)
    return (cols @ w.reshape(w.shape[0], -1).T + b).transpose(0, 3, 1, 2), cols


def _pool(x):
    n, c, h, w = x.shape
    v = x.reshape(n, c, h // 2, 2, w // 2, 2)
    out = v.max(axis=(3, 5))
    mask = v == out[:, :, :, None, :, None]
    return out, mask


def _forward(p: dict, x: np.ndarray):
    c1, cols1 = _conv(x, p["W1"], p["B1"])
    r1 = np.maximum(c1, 0)
    p1, m1 = _pool(r1)
    c2, cols2 = _conv(p1, p["W2"], p["B2"])
    r2 = np.maximum(c2, 0)
    p2, m2 = _pool(r2)
    f = p2.reshape(len(x), -1)
    return f @ p["W3"].T + p["B3"], (x, cols1, c1, m1, p1, cols2, c2, m2, p2, f)


def _backward(p: dict, cache, dlogits: np.ndarray) -> dict:
    x, cols1, c1, m1, p1, cols2, c2, m2, p2, f = cache
    g = {"W3": dlogits.T @ f, "B3": dlogits.sum(0)}
    dp2 = (dlogits @ p["W3"]).reshape(p2.shape)
    dr2 = (m2 * dp2[:, :, :, None, :, None]).reshape(c2.shape) * (c2 > 0)
    d2 = dr2.transpose(0, 2, 3, 1)
    g["W2"] = np.einsum("nhwo,nhwk->ok", d2, cols2).reshape(p["W2"].shape)
    g["B2"] = d2.sum((0, 1, 2))
    dp1 = _col2im(d2 @ p["W2"].reshape(p["W2"].shape[0], -1), p1.shape)
    dr1 = (m1 * dp1[:, :, :, None, :, None]).reshape(c1.shape) * (c1 > 0)
    d1 = dr1.transpose(0, 2, 3, 1)
    g["W1"] = np.einsum("nhwo,nhwk->ok", d1, cols1).reshape(p["W1"].shape)
    g["B1"] = d1.sum((0, 1, 2))
    return g


def train_digits_cnn(epochs: int = 15, seed: int = 0) -> tuple[dict, float]:
    """Trained parameters and test accuracy."""
    xtr, ytr, xte, yte = load_digits_split(seed)
    rng = np.random.default_rng(seed)
    p = {"W1": rng.normal(0, np.sqrt(2 / 9), (8, 1, 3, 3)), "B1": np.zeros(8),
         "W2": rng.normal(0, np.sqrt(2 / 72), (16, 8, 3, 3)), "B2": np.zeros(16),
         "W3": rng.normal(0, np.sqrt(1 / 64), (10, 64)), "B3": np.zeros(10)}
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v = {k: np.zeros_like(val) for k, val in p.items()}
    lr, step = 3e-3, 0
    for _ in range(epochs):
        for batch in np.array_split(rng.permutation(len(xtr)), len(xtr) // 32):
            logits, cache = _forward(p, xtr[batch].astype(np.float64))
            e = np.exp(logits - logits.max(1, keepdims=True))
            prob = e / e.sum(1, keepdims=True)
            prob[np.arange(len(batch)), ytr[batch]] -= 1
            grads = _backward(p, cache, prob / len(batch))
            step += 1
            for k in p:  # Adam
                m[k] = 0.9 * m[k] + 0.1 * grads[k]
                v[k] = 0.999 * v[k] + 0.001 * grads[k] ** 2
                p[k] -= lr * (m[k] / (1 - 0.9**step)) / (np.sqrt(v[k] / (1 - 0.999**step)) + 1e-8)
    accuracy = float(np.mean(_forward(p, xte.astype(np.float64))[0].argmax(1) == yte))
    return p, accuracy


def digits_cnn_onnx(params: dict) -> onnx.ModelProto:
    w = {k: numpy_helper.from_array(v.astype(np.float32), k) for k, v in params.items()}
    nodes = [helper.make_node("Conv", ["input", "W1", "B1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2], name="pool1"),
             helper.make_node("Conv", ["p1", "W2", "B2"], ["c2"], pads=[1, 1, 1, 1], name="conv2"),
             helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
             helper.make_node("MaxPool", ["r2"], ["p2"], kernel_shape=[2, 2], strides=[2, 2], name="pool2"),
             helper.make_node("Flatten", ["p2"], ["flat"], name="flatten"),
             helper.make_node("Gemm", ["flat", "W3", "B3"], ["output"], transB=1, name="fc")]
    graph = helper.make_graph(nodes, "digits_cnn",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 1, 8, 8])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 10])], list(w.values()))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model, full_check=True)
    return model
