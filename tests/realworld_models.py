"""Small but structurally faithful versions of classic ImageNet networks, written with onnx.helper the way old
converters exported them (old opsets, initializers listed as graph inputs, Dropout with a mask output, flattening
through Shape/Gather/Concat, Gemm weights behind a Transpose, ...). Random weights; sizes kept small."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


class Net:
    """Accumulates nodes and initializers; each layer method returns its output's name."""

    def __init__(self, name: str, opset: int, seed: int = 0) -> None:
        self.name, self.opset = name, opset
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: dict[str, np.ndarray] = {}
        self.count = 0

    def fresh(self, base: str) -> str:
        self.count += 1
        return f"{base}_{self.count}"

    def const(self, base: str, value: np.ndarray) -> str:
        name = self.fresh(base)
        self.inits[name] = value
        return name

    def weight(self, base: str, *shape: int, gain: float = 1.0) -> str:
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else shape[0]
        return self.const(base, (self.rng.standard_normal(shape) * gain * np.sqrt(2.0 / fan_in)).astype(np.float32))

    def node(self, op: str, inputs: list[str], n_out: int = 1, **attrs) -> str:
        outs = [self.fresh(op.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op, inputs, outs, name=outs[0], **attrs))
        return outs[0]

    def conv(self, x: str, c_in: int, c_out: int, k: int, stride: int = 1, pad: int = 0, group: int = 1,
             bias: bool = True) -> str:
        ins = [x, self.weight("W", c_out, c_in // group, k, k)]
        if bias:
            ins.append(self.const("B", (self.rng.standard_normal(c_out) * 0.1).astype(np.float32)))
        return self.node("Conv", ins, kernel_shape=[k, k], strides=[stride, stride], pads=[pad] * 4, group=group)

    def bn(self, x: str, c: int) -> str:
        r = self.rng
        params = [(1.0 + 0.1 * r.standard_normal(c)), 0.1 * r.standard_normal(c), 0.1 * r.standard_normal(c),
                  0.5 + r.random(c)]
        ins = [x] + [self.const(k, v.astype(np.float32)) for k, v in zip(("gamma", "beta", "mean", "var"), params)]
        attrs = {"epsilon": 1e-5}
        if self.opset < 7:
            attrs["is_test"] = 1
        if self.opset < 9:
            attrs["spatial"] = 1
        return self.node("BatchNormalization", ins, **attrs)

    def relu(self, x: str) -> str:
        return self.node("Relu", [x])

    def maxpool(self, x: str, k: int, stride: int, pad: int = 0) -> str:
        return self.node("MaxPool", [x], kernel_shape=[k, k], strides=[stride, stride], pads=[pad] * 4)

    def avgpool(self, x: str, k: int, stride: int, pad: int = 0, count_include_pad: int = 0) -> str:
        attrs = {"count_include_pad": count_include_pad} if self.opset >= 7 else {}
        return self.node("AveragePool", [x], kernel_shape=[k, k], strides=[stride, stride], pads=[pad] * 4, **attrs)

    def dropout(self, x: str) -> str:
        """A Dropout with its (unused) mask output, as exporters write it."""
        attrs = {"is_test": 1} if self.opset < 7 else {}
        return self.node("Dropout", [x], n_out=2, ratio=0.5, **attrs) if self.opset < 12 else \
            self.node("Dropout", [x, self.const("ratio", np.array(0.5, np.float32))], n_out=2)

    def flatten_by_shape(self, x: str) -> str:
        """PyTorch's old flatten: Shape -> Gather(0) -> Unsqueeze -> Concat with -1 -> Reshape."""
        shape = self.node("Shape", [x])
        batch = self.node("Gather", [shape, self.const("idx", np.array(0, np.int64))], axis=0)
        if self.opset < 13:
            batch1 = self.node("Unsqueeze", [batch], axes=[0])
        else:
            batch1 = self.node("Unsqueeze", [batch, self.const("axes", np.array([0], np.int64))])
        target = self.node("Concat", [batch1, self.const("minus1", np.array([-1], np.int64))], axis=0)
        return self.node("Reshape", [x, target])

    def gemm(self, x: str, k: int, n: int) -> str:
        attrs = {"broadcast": 1} if self.opset < 7 else {}
        return self.node("Gemm", [x, self.weight("fcW", n, k), self.const("fcB", np.zeros(n, np.float32) + 0.05)],
                         transB=1, **attrs)

    def gemm_transposed_weight(self, x: str, k: int, n: int) -> str:
        """Gemm without bias whose weight [n, k] goes through a Transpose node (opset 11+: C is optional)."""
        wt = self.node("Transpose", [self.weight("fcW", n, k)], perm=[1, 0])
        return self.node("Gemm", [x, wt])

    def model(self, x_shape: list[int], out: str, inits_as_inputs: bool, ir_version: int) -> onnx.ModelProto:
        inputs = [helper.make_tensor_value_info("data", TensorProto.FLOAT, x_shape)]
        if inits_as_inputs:  # old exports list every initializer as a graph input too
            inputs += [helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
                       for k, v in self.inits.items()]
        self.nodes.append(helper.make_node("Identity", [out], ["prob"], name="prob"))
        output = helper.make_tensor_value_info("prob", TensorProto.FLOAT, [1, 10])
        graph = helper.make_graph(self.nodes, self.name, inputs, [output],
                                  [numpy_helper.from_array(v, k) for k, v in self.inits.items()])
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", self.opset)],
                              producer_name="old-converter")
        m.ir_version = ir_version
        onnx.checker.check_model(m)
        return m


def alexnet() -> onnx.ModelProto:
    """Conv 11x11/4, LRN, MaxPool 3/2, Conv 5x5, LRN, three 3x3 Convs, Dropout, Gemm; the classifier's last Gemm has
    no bias and a transposed weight (opset 11, the initializers listed as inputs)."""
    n = Net("alexnet", 11, seed=1)
    x = n.relu(n.conv("data", 3, 8, 11, stride=4, pad=2))  # 63 -> 15
    x = n.node("LRN", [x], size=5, alpha=1e-4, beta=0.75, bias=1.0)
    x = n.maxpool(x, 3, 2)  # 7
    x = n.relu(n.conv(x, 8, 12, 5, pad=2))
    x = n.node("LRN", [x], size=5, alpha=1e-4, beta=0.75, bias=1.0)
    x = n.maxpool(x, 3, 2)  # 3
    x = n.relu(n.conv(x, 12, 16, 3, pad=1))
    x = n.relu(n.conv(x, 16, 16, 3, pad=1))
    x = n.relu(n.conv(x, 16, 12, 3, pad=1))
    x = n.maxpool(x, 3, 2)  # 1
    x = n.flatten_by_shape(x)
    x = n.relu(n.gemm(n.dropout(x), 12, 32))
    x = n.relu(n.gemm(n.dropout(x), 32, 32))
    x = n.gemm_transposed_weight(x, 32, 10)
    return n.model([1, 3, 63, 63], x, inits_as_inputs=True, ir_version=6)


def vgg() -> onnx.ModelProto:
    """Stacks of 3x3 Conv + Relu, MaxPool 2/2, Flatten, Gemm + Relu + Dropout, Gemm, Softmax (opset 8, IR 3)."""
    n = Net("vgg", 8, seed=2)
    x, c = "data", 3
    for width, reps in ((8, 2), (16, 2), (24, 3)):
        for _ in range(reps):
            x, c = n.relu(n.conv(x, c, width, 3, pad=1)), width
        x = n.maxpool(x, 2, 2)  # 16 -> 8 -> 4 -> 2
    x = n.node("Flatten", [x], axis=1)
    x = n.dropout(n.relu(n.gemm(x, 24 * 2 * 2, 32)))
    x = n.dropout(n.relu(n.gemm(x, 32, 32)))
    x = n.node("Softmax", [n.gemm(x, 32, 10)], axis=1)
    return n.model([1, 3, 16, 16], x, inits_as_inputs=True, ir_version=3)


def resnet50() -> onnx.ModelProto:
    """Stem Conv 7x7/2 + BN + Relu + MaxPool, bottleneck blocks (1x1-3x3-1x1 with BatchNormalization, projection
    shortcut where the shape changes, residual Add + Relu), GlobalAveragePool, flatten via Shape, Gemm (opset 6:
    BatchNormalization-6 with is_test and Gemm-6 with broadcast, IR 3)."""
    n = Net("resnet50", 6, seed=3)
    x = n.maxpool(n.relu(n.bn(n.conv("data", 3, 8, 7, stride=2, pad=3, bias=False), 8)), 3, 2, pad=1)  # 32->16->8
    c = 8
    for mid, out, stride in ((4, 16, 1), (4, 16, 1), (8, 32, 2), (8, 32, 1)):
        y = n.relu(n.bn(n.conv(x, c, mid, 1, bias=False), mid))
        y = n.relu(n.bn(n.conv(y, mid, mid, 3, stride=stride, pad=1, bias=False), mid))
        y = n.bn(n.conv(y, mid, out, 1, bias=False), out)
        short = x if (c == out and stride == 1) else n.bn(n.conv(x, c, out, 1, stride=stride, bias=False), out)
        x, c = n.relu(n.node("Add", [y, short])), out
    x = n.flatten_by_shape(n.node("GlobalAveragePool", [x]))
    return n.model([1, 3, 32, 32], n.gemm(x, c, 10), inits_as_inputs=True, ir_version=3)


def squeezenet() -> onnx.ModelProto:
    """Conv + Relu + MaxPool stem, Fire modules (squeeze 1x1, Concat of expand 1x1 and 3x3), Dropout, final Conv,
    GlobalAveragePool, Flatten, Softmax (opset 7, IR 3)."""
    n = Net("squeezenet", 7, seed=4)
    x = n.maxpool(n.relu(n.conv("data", 3, 16, 3, stride=2)), 3, 2)  # 33 -> 16 -> 7
    c = 16

    def fire(x: str, c: int, s: int, e: int) -> tuple[str, int]:
        sq = n.relu(n.conv(x, c, s, 1))
        return n.node("Concat", [n.relu(n.conv(sq, s, e, 1)), n.relu(n.conv(sq, s, e, 3, pad=1))], axis=1), 2 * e

    x, c = fire(x, c, 4, 8)
    x, c = fire(x, c, 4, 8)
    x = n.maxpool(x, 3, 2)  # 3
    x, c = fire(x, c, 6, 12)
    x = n.relu(n.conv(n.dropout(x), c, 10, 1))
    x = n.node("Flatten", [n.node("GlobalAveragePool", [x])], axis=1)
    return n.model([1, 3, 33, 33], n.node("Softmax", [x], axis=1), inits_as_inputs=True, ir_version=3)


def inception() -> onnx.ModelProto:
    """GoogLeNet-style: stem with LRN, Inception modules (1x1; 1x1 -> 3x3; 1x1 -> 5x5; MaxPool 3/1 -> 1x1) joined by
    Concat, AveragePool with count_include_pad=1 (Caffe2's exports), Dropout, Gemm (opset 9, IR 4)."""
    n = Net("inception", 9, seed=5)
    x = n.maxpool(n.relu(n.conv("data", 3, 16, 7, stride=2, pad=3)), 3, 2, pad=1)  # 32 -> 16 -> 8
    x = n.node("LRN", [x], size=5, alpha=1e-4, beta=0.75)
    c = 16

    def module(x: str, c: int, b1: int, b3: tuple[int, int], b5: tuple[int, int], bp: int) -> tuple[str, int]:
        y1 = n.relu(n.conv(x, c, b1, 1))
        y3 = n.relu(n.conv(n.relu(n.conv(x, c, b3[0], 1)), b3[0], b3[1], 3, pad=1))
        y5 = n.relu(n.conv(n.relu(n.conv(x, c, b5[0], 1)), b5[0], b5[1], 5, pad=2))
        yp = n.relu(n.conv(n.maxpool(x, 3, 1, pad=1), c, bp, 1))
        return n.node("Concat", [y1, y3, y5, yp], axis=1), b1 + b3[1] + b5[1] + bp

    x, c = module(x, c, 8, (6, 8), (2, 4), 4)
    x, c = module(x, c, 8, (8, 12), (4, 6), 6)
    x = n.maxpool(x, 3, 2, pad=1)  # 4
    x, c = module(x, c, 12, (8, 12), (4, 6), 6)
    x = n.avgpool(x, 3, 1, pad=1, count_include_pad=1)  # 4
    x = n.avgpool(x, 4, 1)  # 1
    x = n.node("Flatten", [n.dropout(x)], axis=1)
    return n.model([1, 3, 32, 32], n.gemm(x, c, 10), inits_as_inputs=False, ir_version=4)


def densenet() -> onnx.ModelProto:
    """Dense blocks (BN -> Relu -> 1x1 Conv -> BN -> Relu -> 3x3 Conv, each layer's output concatenated to its
    input), transitions (BN -> Relu -> 1x1 Conv -> AveragePool 2/2), final BN + Relu + GlobalAveragePool, Gemm
    (opset 9, IR 3)."""
    n = Net("densenet", 9, seed=6)
    x = n.maxpool(n.relu(n.bn(n.conv("data", 3, 8, 3, pad=1, bias=False), 8)), 2, 2)  # 16 -> 8
    c, growth = 8, 4
    for block in range(2):
        for _ in range(3):
            y = n.conv(n.relu(n.bn(x, c)), c, 2 * growth, 1, bias=False)
            y = n.conv(n.relu(n.bn(y, 2 * growth)), 2 * growth, growth, 3, pad=1, bias=False)
            x, c = n.node("Concat", [x, y], axis=1), c + growth
        if block == 0:
            x = n.avgpool(n.conv(n.relu(n.bn(x, c)), c, c // 2, 1, bias=False), 2, 2)  # 4
            c //= 2
    x = n.node("GlobalAveragePool", [n.relu(n.bn(x, c))])
    x = n.node("Flatten", [x], axis=1)
    return n.model([1, 3, 16, 16], n.gemm(x, c, 10), inits_as_inputs=True, ir_version=3)


def shufflenet() -> onnx.ModelProto:
    """ShuffleNet v1/v2 units: grouped 1x1 Conv + BN + Relu, channel shuffle (Reshape -> Transpose -> Reshape),
    depthwise 3x3 Conv + BN, grouped 1x1 Conv + BN, residual Add or AveragePool/Concat downsampling, ReduceMean
    over H, W (keepdims=0), Gemm (opset 13, IR 7)."""
    n = Net("shufflenet", 13, seed=7)
    x = n.maxpool(n.relu(n.bn(n.conv("data", 3, 12, 3, stride=2, pad=1, bias=False), 12)), 3, 2, pad=1)  # 32->16->8
    c, groups = 12, 3
    hw = 8

    def shuffle(x: str, c: int, hw: int) -> str:
        y = n.node("Reshape", [x, n.const("s5", np.array([1, groups, c // groups, hw, hw], np.int64))])
        y = n.node("Transpose", [y], perm=[0, 2, 1, 3, 4])
        return n.node("Reshape", [y, n.const("s4", np.array([1, c, hw, hw], np.int64))])

    for out, stride in ((24, 2), (24, 1), (24, 1)):
        branch = out - c if stride == 2 else out
        mid = out // 4 // groups * groups
        y = n.relu(n.bn(n.conv(x, c, mid, 1, group=groups, bias=False), mid))
        y = shuffle(y, mid, hw)
        y = n.bn(n.conv(y, mid, mid, 3, stride=stride, pad=1, group=mid, bias=False), mid)
        y = n.bn(n.conv(y, mid, branch, 1, group=groups, bias=False), branch)
        if stride == 2:
            hw //= 2
            x = n.relu(n.node("Concat", [n.avgpool(x, 3, 2, pad=1), y], axis=1))
        else:
            x = n.relu(n.node("Add", [x, y]))
        c = out
    x = n.node("ReduceMean", [x], axes=[2, 3], keepdims=0)
    return n.model([1, 3, 32, 32], n.gemm(x, c, 10), inits_as_inputs=False, ir_version=7)


ARCHITECTURES = {"alexnet": alexnet, "vgg": vgg, "resnet50": resnet50, "squeezenet": squeezenet,
                 "inception": inception, "densenet": densenet, "shufflenet": shufflenet}
