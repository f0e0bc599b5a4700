"""Inconsistent models are refused before anything is lowered (every op checks its shapes and attributes against
ONNX), valid edge-case shapes stay in bounds in C (the generated C run under AddressSanitizer and UBSan), and
non-finite, denormal and oversized values are refused or handled."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from helpers import assert_bitexact, assert_float_close, make_model, random_feeds, run_cli
from onnx import TensorProto, helper, numpy_helper

from edgec import host
from edgec.build import BuildOptions, build, compile_build
from edgec.calibrate import calibrate
from edgec.errors import EdgecError
from edgec.ir import Graph, Node, Tensor
from edgec.ops import REGISTRY
from edgec.passes.normalize import check_nodes
from edgec.quantize import quantize_graph
from edgec.runner import RunResult

RNG = np.random.default_rng(18)


def f32(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def node(op: str, inputs: list[str], name: str, **attrs) -> onnx.NodeProto:
    return helper.make_node(op, inputs, ["output"], name=name, **attrs)



# Models that onnx's checker and shape inference accept and that edgec used to build (or crash on): (nodes, input
# shape, initializers, the node's name, a phrase of the reason).
INCONSISTENT = {
    "conv_weights_for_1_channel": ([node("Conv", ["input", "W"], "c1")], [1, 16, 8, 8], {"W": f32(4, 1, 3, 3)},
                                   "c1", "input channels"),
    "conv_group_0": ([node("Conv", ["input", "W"], "c2", group=0)], [1, 4, 8, 8], {"W": f32(4, 4, 3, 3)},
                     "c2", "group=0"),
    "conv_scalar_bias": ([node("Conv", ["input", "W", "B"], "c3")], [1, 4, 8, 8],
                         {"W": f32(4, 4, 3, 3), "B": f32(1)}, "c3", "bias of shape [1]"),
    "conv_kernel_shape": ([node("Conv", ["input", "W"], "c4", kernel_shape=[5, 5])], [1, 4, 8, 8],
                          {"W": f32(4, 4, 3, 3)}, "c4", "kernel_shape"),
    "conv1d_channels": ([node("Conv", ["input", "W"], "c5")], [1, 8, 20], {"W": f32(4, 2, 3)}, "c5",
                        "input channels"),
    "depthwise_2_channels_per_group": ([node("Conv", ["input", "W"], "dw1", group=8)], [1, 8, 8, 8],
                                       {"W": f32(8, 2, 3, 3)}, "dw1", "input channels"),
    "depthwise_group_not_dividing": ([node("Conv", ["input", "W"], "dw2", group=3)], [1, 8, 8, 8],
                                     {"W": f32(3, 1, 3, 3)}, "dw2", "does not divide"),
    "depthwise_bias": ([node("Conv", ["input", "W", "B"], "dw3", group=8)], [1, 8, 8, 8],
                       {"W": f32(8, 1, 3, 3), "B": f32(16)}, "dw3", "bias of shape [16]"),
    "gemm_bias": ([node("Gemm", ["input", "W", "B"], "fc1")], [1, 16], {"W": f32(16, 4), "B": f32(3)}, "fc1",
                  "bias of shape [3]"),
    "gemm_bias_per_row": ([node("Gemm", ["input", "W", "B"], "fc2")], [2, 16], {"W": f32(16, 4), "B": f32(2, 4)},
                          "fc2", "bias of shape [2, 4]"),
    "gemm_transB_2": ([node("Gemm", ["input", "W"], "fc3", transB=2)], [1, 16], {"W": f32(4, 16)}, "fc3",
                      "transB=2"),
    "maxpool_pads_whole_kernel": ([node("MaxPool", ["input"], "mp", kernel_shape=[2, 2], pads=[2, 2, 2, 2])],
                                  [1, 4, 8, 8], {}, "mp", "pads"),
    "avgpool_pads_whole_kernel": ([node("AveragePool", ["input"], "ap", kernel_shape=[2, 2], pads=[3, 0, 3, 0])],
                                  [1, 4, 8, 8], {}, "ap", "pads"),
    "reshape_element_count": ([node("Reshape", ["input", "S"], "rs")], [1, 16], {"S": np.array([1, 32], np.int64)},
                              "rs", "32 elements"),
    "add_rank_7": ([node("Add", ["input", "K"], "add")], [1, 2, 1, 2, 1, 2, 2], {"K": f32(2, 1, 2, 1, 2, 1, 2)},
                   "add", "rank 7"),
    "transpose_rank_7": ([node("Transpose", ["input"], "tr")], [1, 2, 1, 2, 1, 2, 2], {}, "tr", "rank"),
    "prelu_slope": ([node("PRelu", ["input", "K"], "pr")], [1, 4, 8, 8], {"K": f32(3)}, "pr", "broadcast"),
    "clip_min_above_max": ([node("Clip", ["input", "lo", "hi"], "clip")], [1, 16],
                           {"lo": np.array(2.0, np.float32), "hi": np.array(1.0, np.float32)}, "clip", "above max"),
    "clip_vector_min": ([node("Clip", ["input", "lo"], "clip2")], [1, 16], {"lo": f32(16)}, "clip2", "one number"),
    "batchnorm_negative_variance": ([node("BatchNormalization", ["input", "s", "b", "m", "v"], "bn")], [1, 4, 8, 8],
                                    {"s": f32(4), "b": f32(4), "m": f32(4), "v": -np.ones(4, np.float32)}, "bn",
                                    "variance"),
    "div_by_zero": ([node("Div", ["input", "K"], "div")], [1, 4], {"K": np.array([1, 0, 2, 3], np.float32)}, "div",
                    "holds 0"),
}


@pytest.mark.parametrize("case", sorted(INCONSISTENT))
def test_inconsistent_model_refused(tmp_path, capsys, case):
    nodes, shape, inits, name, reason = INCONSISTENT[case]
    model = make_model(nodes, {"input": shape}, {"output": None}, inits)
    onnx.checker.check_model(model, full_check=True)  # onnx lets it through: edgec's own checks must catch it
    path, out = tmp_path / "m.onnx", tmp_path / "out"
    onnx.save(model, path)
    code, err = run_cli(capsys, "build", path, "--out", out)
    assert code == 2, err
    assert "Traceback" not in err
    assert f"(node '{name}')" in err and reason in err, err
    assert not out.exists()


# Defects onnx's shape inference finds when the model declares its shapes: still one clear message naming the node.
DECLARED = {
    "matmul_k": ([node("MatMul", ["input", "W"], "mm")], [1, 16], {"W": f32(8, 4)}, [1, 4]),
    "concat_other_dims": ([node("Concat", ["input", "K"], "cat", axis=1)], [1, 4, 8, 8], {"K": f32(1, 4, 4, 4)},
                          [1, 8, 8, 8]),
    "add_broadcast": ([node("Add", ["input", "K"], "add")], [1, 4, 8, 8], {"K": f32(3)}, [1, 4, 8, 8]),
    "pad_length": ([node("Pad", ["input", "P"], "pad")], [1, 4, 8, 8], {"P": np.array([1, 1], np.int64)},
                   [1, 4, 10, 10]),
    "transpose_repeated_perm": ([node("Transpose", ["input"], "tr", perm=[0, 0, 1, 2])], [1, 4, 8, 8], {},
                                [1, 1, 4, 8]),
    "conv_stride_0": ([node("Conv", ["input", "W"], "cs", strides=[0, 1])], [1, 4, 8, 8], {"W": f32(4, 4, 3, 3)},
                      [1, 4, 6, 6]),
}


@pytest.mark.parametrize("case", sorted(DECLARED))
def test_inconsistent_declared_model_refused(tmp_path, capsys, case):
    nodes, shape, inits, out_shape = DECLARED[case]
    path = tmp_path / "m.onnx"
    onnx.save(make_model(nodes, {"input": shape}, {"output": out_shape}, inits), path)
    code, err = run_cli(capsys, "build", path, "--out", tmp_path / "out")
    assert code == 2 and "Traceback" not in err, err
    name = nodes[0].name
    assert f"node '{name}'" in err or f"node name: {name})" in err, err


# ---- the op checks on IR graphs as a front end or a pass could make them (no onnx shape inference in between) ----


def ir_graph(op: str, ins: dict[str, tuple], out: tuple, consts: dict[str, np.ndarray] | None = None,
             **attrs) -> tuple[Graph, Node]:
    tensors = {k: Tensor(k, tuple(s)) for k, s in ins.items()}
    tensors.update({k: Tensor(k, v.shape, v) for k, v in (consts or {}).items()})
    tensors["y"] = Tensor("y", tuple(out))
    n = Node(op, "n0", [*ins, *(consts or {})], ["y"], dict(attrs))
    return Graph("t", tensors, [n], list(ins), ["y"]), n


IR_CASES = {
    "concat_other_dims": (ir_graph("Concat", {"a": (1, 4, 8, 8), "b": (1, 4, 4, 4)}, (1, 8, 8, 8), axis=1),
                          "does not fit"),
    "concat_axis": (ir_graph("Concat", {"a": (1, 4), "b": (1, 4)}, (1, 8), axis=2), "axis=2"),
    "concat_sizes": (ir_graph("Concat", {"a": (1, 4), "b": (1, 4)}, (1, 9), axis=1), "add up"),
    "add_broadcast": (ir_graph("Add", {"a": (1, 4, 8, 8), "b": (1, 3, 1, 1)}, (1, 4, 8, 8)), "do not broadcast"),
    "mul_output": (ir_graph("Mul", {"a": (1, 4, 8, 8), "b": (1, 4, 1, 1)}, (1, 4, 8, 9)), "broadcast shape"),
    "pad_length": (ir_graph("Pad", {"a": (1, 4)}, (3, 6), {"p": np.array([1, 1, 1], np.int64)}), "2 values"),
    "pad_output": (ir_graph("Pad", {"a": (1, 4)}, (3, 6), {"p": np.array([1, 1, 1, 0], np.int64)}), "padded"),
    "pad_value": (ir_graph("Pad", {"a": (1, 4)}, (1, 4), {"p": np.zeros(4, np.int64),
                                                         "v": np.array([np.nan], np.float32)}), "finite"),
    "transpose_perm": (ir_graph("Transpose", {"a": (1, 4, 8)}, (1, 4, 8), perm=[0, 2, 2]), "permutation"),
    "transpose_output": (ir_graph("Transpose", {"a": (1, 4, 8)}, (1, 4, 8), perm=[0, 2, 1]), "permuted"),
    "reshape_count": (ir_graph("Reshape", {"a": (2, 8)}, (4, 8)), "elements"),
    "softmax_axis": (ir_graph("Softmax", {"a": (1, 10)}, (1, 10), axis=2), "axis=2"),
    "gemm_k": (ir_graph("Gemm", {"a": (1, 16)}, (1, 4), {"w": f32(4, 8)}, transB=1), "columns"),
    "gemm_output": (ir_graph("Gemm", {"a": (1, 16)}, (1, 5), {"w": f32(4, 16)}, transB=1), "output shape"),
    "gemm_alpha_nan": (ir_graph("Gemm", {"a": (1, 16)}, (1, 4), {"w": f32(4, 16)}, transB=1, alpha=math.nan),
                       "finite"),
    "conv_output": (ir_graph("Conv", {"a": (1, 4, 8, 8)}, (1, 4, 7, 6), {"w": f32(4, 4, 3, 3)}), "output shape"),
    "conv_dilation_0": (ir_graph("Conv", {"a": (1, 4, 8, 8)}, (1, 4, 6, 6), {"w": f32(4, 4, 3, 3)},
                                 dilations=[0, 1]), "dilations"),
    "conv_negative_pads": (ir_graph("Conv", {"a": (1, 4, 8, 8)}, (1, 4, 6, 6), {"w": f32(4, 4, 3, 3)},
                                    pads=[-1, 0, 1, 0]), "pads"),
    "conv_auto_pad": (ir_graph("Conv", {"a": (1, 4, 8, 8)}, (1, 4, 8, 8), {"w": f32(4, 4, 3, 3)}, auto_pad="SAME"),
                      "auto_pad"),
    "conv_kernel_too_big": (ir_graph("Conv", {"a": (1, 4, 4, 4)}, (1, 4, 1, 1), {"w": f32(4, 4, 6, 6)}), "spans"),
    "conv_fused_clip_empty": (ir_graph("Conv", {"a": (1, 4, 8, 8)}, (1, 4, 6, 6), {"w": f32(4, 4, 3, 3)},
                                       act=(2.0, 1.0)), "activation range"),
    "maxpool_stride_0": (ir_graph("MaxPool", {"a": (1, 4, 8, 8)}, (1, 4, 4, 4), kernel_shape=[2, 2], strides=[0, 2]),
                         "strides"),
    "maxpool_no_kernel": (ir_graph("MaxPool", {"a": (1, 4, 8, 8)}, (1, 4, 4, 4)), "kernel_shape"),
    "avgpool_output": (ir_graph("AveragePool", {"a": (1, 4, 8, 8)}, (1, 4, 5, 4), kernel_shape=[2, 2],
                                strides=[2, 2]), "output shape"),
    "global_pool_output": (ir_graph("GlobalAveragePool", {"a": (1, 4, 8, 8)}, (1, 4, 2, 2)), "output shape"),
    "relu_output": (ir_graph("Relu", {"a": (1, 4)}, (1, 5)), "differs"),
    "matmul_k": (ir_graph("MatMul", {"a": (3, 16)}, (3, 4), {"w": f32(8, 4)}), "do not multiply"),
    "flatten_axis": (ir_graph("Flatten", {"a": (1, 4, 2)}, (1, 8), axis=4), "axis=4"),
    "batchnorm_params": (ir_graph("BatchNormalization", {"a": (1, 4, 2, 2)}, (1, 4, 2, 2),
                                  {k: np.ones(3, np.float32) for k in "sbmv"}), "one value per channel"),
    "missing_input": (ir_graph("Relu", {}, (1, 4)), "no known"),
}


@pytest.mark.parametrize("case", sorted(IR_CASES))
def test_ir_checks(case):
    (g, n), reason = IR_CASES[case]
    if n.op == "Relu" and not n.inputs:
        n.inputs = ["ghost"]  # an input no tensor describes
    with pytest.raises(EdgecError, match=f"{n.op} \\(node 'n0'\\).*{reason}"):
        check_nodes(g)


def test_ir_checks_accept_valid_forms():
    """The same ops in valid form pass (no check refuses what ONNX allows and edgec compiles)."""
    valid = [
        ir_graph("Concat", {"a": (1, 4, 8, 8), "b": (1, 2, 8, 8)}, (1, 6, 8, 8), axis=-3),
        ir_graph("Add", {"a": (1, 4, 8, 8), "b": (4, 1, 8)}, (1, 4, 8, 8)),
        ir_graph("Pad", {"a": (1, 4)}, (1, 7), {"p": np.array([0, 1, 0, 2], np.int64)}),
        ir_graph("Transpose", {"a": (1, 4, 8)}, (8, 4, 1)),
        ir_graph("Gemm", {"a": (2, 3, 16)}, (2, 3, 4), {"w": f32(16, 4), "b": f32(1, 4)}),
        ir_graph("Conv", {"a": (1, 4, 9, 9)}, (1, 8, 5, 7), {"w": f32(8, 1, 3, 3)}, group=4, strides=[2, 1],
                 pads=[1, 0, 1, 2], dilations=[1, 2]),
        ir_graph("Conv", {"a": (1, 4, 9, 9)}, (1, 4, 5, 5), {"w": f32(4, 4, 3, 3)}, auto_pad="SAME_LOWER",
                 strides=[2, 2]),
        ir_graph("MaxPool", {"a": (1, 4, 9, 9)}, (1, 4, 5, 5), kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1),
        ir_graph("MatMul", {"a": (16,)}, (4,), {"w": f32(16, 4)}),
        ir_graph("Clip", {"a": (1, 4)}, (1, 4), min=-1.0, max=1.0),
    ]
    for g, _ in valid:
        check_nodes(g)


# ---- the kernels stay in bounds: valid edge-case shapes, the generated C under AddressSanitizer and UBSan --------


def edge_case_model() -> onnx.ModelProto:
    """Every branch reads one of two inputs and writes its own output: stride above the kernel, dilations,
    asymmetric pads, depthwise (multiplier 1 and 2), grouped, 1x1, kernel == input, pooling with stride above the
    kernel, dilation and ceil_mode, 1-D convolution, Gemm, Softmax, broadcasting, Pad, Transpose, Concat."""
    branches = [
        ("Conv", {"strides": [3, 3]}, f32(6, 4, 2, 2)),
        ("Conv", {"dilations": [2, 3], "pads": [1, 0, 2, 3]}, f32(5, 4, 3, 3)),
        ("Conv", {"group": 4, "strides": [2, 1], "pads": [0, 1, 1, 0]}, f32(8, 1, 3, 3)),
        ("Conv", {"group": 4, "strides": [2, 2], "pads": [1, 1, 1, 1]}, f32(4, 1, 3, 3)),
        ("Conv", {"group": 2, "pads": [2, 2, 2, 2]}, f32(6, 2, 3, 3)),
        ("Conv", {}, f32(7, 4, 1, 1)),
        ("Conv", {}, f32(3, 4, 9, 9)),
        ("MaxPool", {"kernel_shape": [2, 2], "strides": [3, 3], "pads": [1, 0, 0, 1]}, None),
        ("MaxPool", {"kernel_shape": [2, 2], "dilations": [2, 2]}, None),
        ("AveragePool", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 2, 2]}, None),
        ("AveragePool", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [0, 2, 1, 0], "count_include_pad": 1},
         None),
        ("AveragePool", {"kernel_shape": [2, 2], "strides": [2, 2], "ceil_mode": 1}, None),
        ("GlobalAveragePool", {}, None),
    ]
    nodes, inits, outputs = [], {}, {}
    for k, (op, attrs, w) in enumerate(branches):
        ins = ["x"]
        if w is not None:
            inits[f"w{k}"], inits[f"b{k}"] = w, f32(w.shape[0])
            ins += [f"w{k}", f"b{k}"]
        nodes.append(helper.make_node(op, ins, [f"y{k}"], name=f"n{k}", **attrs))
        outputs[f"y{k}"] = None
    inits.update({"wc1": f32(4, 3, 5), "bc1": f32(4), "k": f32(1, 4, 1, 9), "p": np.array([0, 0, 1, 0, 0, 1, 0, 2]),
                  "wfc": f32(10, 324), "bfc": f32(10), "c": f32(1, 4, 2, 9)})
    nodes += [
        helper.make_node("Conv", ["s", "wc1", "bc1"], ["c1"], name="conv1d", strides=[4], dilations=[2], pads=[3, 1]),
        helper.make_node("Mul", ["x", "k"], ["bc"], name="mul_bcast"),
        helper.make_node("Pad", ["x", "p"], ["pd"], name="pad"),
        helper.make_node("Transpose", ["x"], ["tr"], name="transpose", perm=[0, 3, 1, 2]),
        helper.make_node("Concat", ["x", "c"], ["cat"], name="concat", axis=2),
        helper.make_node("Flatten", ["x"], ["flat"], name="flatten"),
        helper.make_node("Gemm", ["flat", "wfc", "bfc"], ["fc"], name="fc", transB=1),
        helper.make_node("Softmax", ["fc"], ["sm"], name="softmax"),
    ]
    outputs.update({n: None for n in ("c1", "bc", "pd", "tr", "cat", "sm")})
    return make_model(nodes, {"x": [1, 4, 9, 9], "s": [1, 3, 17]}, outputs, inits)


ASAN_FLAGS = ["-g", "-fno-omit-frame-pointer", "-fsanitize=address,undefined", "-fno-sanitize-recover=all"]
RUN_SCRIPT = """
import sys, numpy as np
from edgec.runner import run_build
data = np.load(sys.argv[2])
names = sorted({k.split(':', 1)[1] for k in data.files})
count = 1 + max(int(k.split(':', 1)[0]) for k in data.files)
samples = [{n: data[f'{i}:{n}'] for n in names} for i in range(count)]
res = run_build(sys.argv[1], samples)
np.savez(sys.argv[3], **{f'{kind}:{i}:{n}': v for kind, per in (('o', res.outputs), ('r', res.raw))
                         for i, s in enumerate(per) for n, v in s.items()})
"""


def run_sanitized(out: Path, samples: list[dict[str, np.ndarray]], monkeypatch, tmp: Path) -> RunResult:
    """Recompile the build's C with AddressSanitizer and UBSan and run it in a fresh Python that preloads libasan
    (any out-of-bounds access or undefined behaviour aborts the run)."""
    meta = json.loads((out / "edgec.json").read_text())
    monkeypatch.setattr(host, "HOST_CFLAGS", host.HOST_CFLAGS + ASAN_FLAGS)
    compile_build(out, meta)
    libasan = subprocess.run(["gcc", "-print-file-name=libasan.so"], capture_output=True, text=True).stdout.strip()
    assert Path(libasan).is_file(), f"gcc has no libasan ({libasan}): apt-get install -y gcc"
    np.savez(tmp / "in.npz", **{f"{i}:{n}": v for i, s in enumerate(samples) for n, v in s.items()})
    env = {**os.environ, "LD_PRELOAD": libasan, "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=0",
           "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"}
    proc = subprocess.run([sys.executable, "-c", RUN_SCRIPT, str(out), str(tmp / "in.npz"), str(tmp / "res.npz")],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0 and "Sanitizer" not in proc.stderr, proc.stderr[:3000]
    data = np.load(tmp / "res.npz")
    res = RunResult([{} for _ in samples], [{} for _ in samples])
    for key in data.files:
        kind, i, name = key.split(":", 2)
        (res.outputs if kind == "o" else res.raw)[int(i)][name] = data[key]
    return res


@pytest.mark.parametrize("quantize", ["none", "int8"])
def test_edge_case_shapes_stay_in_bounds(tmp_path, monkeypatch, quantize):
    import onnxruntime as ort

    model = edge_case_model()
    path = tmp_path / "edge.onnx"
    onnx.save(model, path)
    calib = None
    if quantize != "none":
        cal = [random_feeds(model, RNG) for _ in range(16)]
        calib = tmp_path / "calib.npz"
        np.savez(calib, **{k: np.stack([c[k] for c in cal]) for k in cal[0]})
    out, _, g = build(BuildOptions(path, quantize=quantize, calib=calib, out=tmp_path / "build"))
    samples = [random_feeds(model, RNG) for _ in range(2)]
    res = run_sanitized(out, samples, monkeypatch, tmp_path)
    if quantize == "none":
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        names = [o.name for o in sess.get_outputs()]
        assert_float_close(res, [dict(zip(names, sess.run(None, s))) for s in samples])
    else:
        assert_bitexact(g, samples, res)


# ---- non-finite, denormal and oversized values ----------------------------------------------------------------


def conv_model(w: np.ndarray) -> onnx.ModelProto:
    return make_model([node("Conv", ["input", "W", "B"], "conv")], {"input": [1, 4, 6, 6]}, {"output": None},
                      {"W": w, "B": np.zeros(w.shape[0], np.float32)})


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_weight_refused(tmp_path, capsys, bad):
    w = f32(4, 4, 3, 3)
    w[2, 1, 0, 2] = bad
    path = tmp_path / "m.onnx"
    onnx.save(conv_model(w), path)
    code, err = run_cli(capsys, "build", path, "--out", tmp_path / "out")
    assert code == 2 and "Traceback" not in err, err
    assert "initializer 'W'" in err and "[2, 1, 0, 2]" in err, err
    assert not (tmp_path / "out").exists()


def test_non_finite_constant_node_refused(tmp_path, capsys):
    k = helper.make_node("Constant", [], ["k"], name="konst",
                         value=numpy_helper.from_array(np.array([1.0, np.nan, 2.0, 3.0], np.float32)))
    path = tmp_path / "m.onnx"
    onnx.save(make_model([k, node("Add", ["input", "k"], "add")], {"input": [1, 4]}, {"output": None}), path)
    code, err = run_cli(capsys, "build", path, "--out", tmp_path / "out")
    assert code == 2 and "Traceback" not in err, err
    assert "constant 'k'" in err, err


@pytest.mark.parametrize("shape", [[1, 65536, 32768], [1, 2**31], [8, 1024, 1024, 64]])
def test_huge_tensor_refused(tmp_path, capsys, shape):
    graph = helper.make_graph([helper.make_node("Relu", ["input"], ["output"], name="r")], "big",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, shape)])
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    code, err = run_cli(capsys, "build", path, "--out", tmp_path / "out")
    assert code == 2 and "Traceback" not in err, err
    assert "tensor 'input'" in err and "elements" in err, err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("quantize", ["int8", "int16", "int4"])
@pytest.mark.parametrize("tiny", [1e-40, 1e-45])
def test_denormal_weights_quantize(tmp_path, quantize, tiny):
    """Weights of denormal size used to give a scale of 0 (ZeroDivisionError) or an int64 bias gcc refused; now
    their scale is the smallest normal float32 and the build matches its integer reference bit for bit."""
    w = (f32(4, 4, 3, 3) * np.float32(tiny)).astype(np.float32)
    w[0] = f32(4, 3, 3)  # one ordinary channel next to denormal ones
    model = conv_model(w)
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    cal = [random_feeds(model, RNG) for _ in range(8)]
    np.savez(tmp_path / "calib.npz", **{k: np.stack([c[k] for c in cal]) for k in cal[0]})
    out, _, g = build(BuildOptions(path, quantize=quantize, calib=tmp_path / "calib.npz", calibration="minmax",
                                   out=tmp_path / "build"))
    from edgec.runner import run_build

    samples = [random_feeds(model, RNG) for _ in range(2)]
    assert_bitexact(g, samples, run_build(out, samples))


def test_denormal_only_layer_quantizes(tmp_path):
    """A layer whose every weight and output is denormal: the output quantizes to its zero point, no crash."""
    model = make_model([node("Mul", ["input", "K"], "mul")], {"input": [1, 16]}, {"output": None},
                       {"K": np.full((1, 16), 1e-44, np.float32)})
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    cal = [random_feeds(model, RNG) for _ in range(4)]
    np.savez(tmp_path / "calib.npz", **{k: np.stack([c[k] for c in cal]) for k in cal[0]})
    out, _, g = build(BuildOptions(path, quantize="int8", calib=tmp_path / "calib.npz", out=tmp_path / "build"))
    from edgec.runner import run_build

    samples = [random_feeds(model, RNG)]
    res = run_build(out, samples)
    assert_bitexact(g, samples, res)
    assert np.abs(res.outputs[0]["output"]).max() < 1e-30


def test_calibration_refuses_non_finite_activations():
    g = Graph("t", {"a": Tensor("a", (1, 4)), "y": Tensor("y", (1, 4))}, [Node("Relu", "r", ["a"], ["y"])],
              ["a"], ["y"])
    with pytest.raises(EdgecError, match="tensor 'a'.*non-finite"):
        calibrate(g, [{"a": np.array([[0.0, np.nan, 1.0, 2.0]], np.float32)}])


def test_quantizer_refuses_non_finite_range_and_weights():
    g = Graph("t", {"a": Tensor("a", (1, 4)), "y": Tensor("y", (1, 4))}, [Node("Relu", "r", ["a"], ["y"])],
              ["a"], ["y"])
    with pytest.raises(EdgecError, match="tensor 'a'.*range"):
        quantize_graph(g, {"a": (-np.inf, 1.0), "y": (0.0, 1.0)})
    w = f32(2, 4)
    w[1, 1] = np.nan
    g = Graph("t", {"a": Tensor("a", (1, 4)), "w": Tensor("w", (2, 4), w), "y": Tensor("y", (1, 2))},
              [Node("Gemm", "fc", ["a", "w"], ["y"], {"transB": 1})], ["a"], ["y"])
    with pytest.raises(EdgecError, match="node 'fc'.*'w'"):
        quantize_graph(g, {"a": (-1.0, 1.0), "y": (-1.0, 1.0)})


def test_zero_qdq_scale_refused(tmp_path, capsys):
    nodes = [helper.make_node("QuantizeLinear", ["input", "s", "z"], ["q"], name="q"),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["d"], name="dq"),
             node("Relu", ["d"], "relu")]
    model = make_model(nodes, {"input": [1, 4]}, {"output": [1, 4]},
                       {"s": np.array(0.0, np.float32), "z": np.array(0, np.int8)})
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    code, err = run_cli(capsys, "build", path, "--out", tmp_path / "out")
    assert code == 2 and "Traceback" not in err, err
    assert "tensor 'input'" in err and "scale" in err, err


def test_op_checks_cover_every_op():
    """Every op edgec compiles has a check of its own (not the default of Op) except our own Convert, which the
    quantizer inserts after the checks, and LayoutCast (Transpose's check)."""
    from edgec.ops.base import Op

    missing = sorted(t for t, op in REGISTRY.items() if type(op).check is Op.check and t != "Convert")
    assert not missing, missing


def test_pass_output_satisfies_checks(tmp_path):
    """What normalize, BatchNormalization folding, activation fusion and the layout pass make (canonical Gemm,
    depthwise Conv from a standalone BatchNormalization, Mul from Div, GlobalAveragePool from ReduceMean, fused
    Relu/Clip, LayoutCast) passes every op's check again."""
    from edgec.build import prepare_graph

    c = 4
    bn = {f"{k}{j}": (np.abs(f32(c)) + 0.5) if k == "v" else f32(c) for j in (1, 2) for k in "sbmv"}
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c", "s1", "b1", "m1", "v1"], ["bn"], name="bn1"),
        helper.make_node("Relu", ["bn"], ["r"], name="relu"),
        helper.make_node("BatchNormalization", ["r", "s2", "b2", "m2", "v2"], ["bn2"], name="bn2"),
        helper.make_node("Div", ["bn2", "d"], ["dv"], name="div"),
        helper.make_node("Clip", ["dv", "lo", "hi"], ["cl"], name="clip"),
        helper.make_node("ReduceMean", ["cl"], ["rm"], name="mean", axes=[2, 3], keepdims=0),
        helper.make_node("MatMul", ["rm", "mw"], ["mm"], name="matmul"),
        helper.make_node("Gemm", ["mm", "gw", "gb"], ["fc"], name="fc", alpha=0.5, beta=2.0),
        helper.make_node("Relu", ["fc"], ["y"], name="relu2"),
    ]
    inits = {"w": f32(c, 3, 3, 3), "b": f32(c), **bn, "d": np.array(2.0, np.float32),
             "lo": np.array(-1.0, np.float32), "hi": np.array(1.0, np.float32), "mw": f32(c, 6), "gw": f32(6, 5),
             "gb": f32(5)}
    path = tmp_path / "m.onnx"
    onnx.save(make_model(nodes, {"x": [1, 3, 8, 8]}, {"y": None}, inits, opset=17), path)
    g = prepare_graph(path)
    ops = {n.op for n in g.nodes}
    assert {"Conv", "Gemm", "GlobalAveragePool", "Mul"} <= ops and "BatchNormalization" not in ops, ops
    assert any(n.op == "Conv" and n.attrs.get("group", 1) == c for n in g.nodes)  # bn2 became a depthwise Conv
    assert all(REGISTRY[n.op].check(n, g) is None for n in g.nodes), [
        (n.name, REGISTRY[n.op].check(n, g)) for n in g.nodes]
