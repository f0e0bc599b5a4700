"""Load an ONNX file: validate, convert old opsets, fix input shapes, fold constants, infer shapes, build the IR."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper, shape_inference, version_converter
from onnx.reference import ReferenceEvaluator

from ..errors import EdgecError
from ..ir import Graph, Node, Tensor
from .qoperator import qoperator_to_qdq

MIN_OPSET = 13  # older models are converted up to this opset with onnx's version converter
# Model metadata of a mixed QDQ model written by edgec quantize: JSON {node name: scheme} of every layer
LAYER_SCHEMES_KEY = "edgec.layer_schemes"


def parse_input_shapes(specs: list[str] | None) -> dict[str, tuple[int, ...]]:
    """Parse ['NAME=1,3,32,32', ...] into {NAME: (1, 3, 32, 32)}."""
    shapes: dict[str, tuple[int, ...]] = {}
    for spec in specs or []:
        name, sep, dims = spec.rpartition("=")
        try:
            shape = tuple(int(d) for d in dims.split(","))
        except ValueError:
            shape = ()
        if not sep or not name or not shape or min(shape) <= 0:
            raise EdgecError(f"--input-shape '{spec}' is not of the form NAME=1,3,32,32 with positive sizes")
        shapes[name] = shape
    return shapes


def read_model(path: Path) -> onnx.ModelProto:
    if not path.is_file():
        raise EdgecError(f"{path}: no such file")
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # protobuf raises several types for corrupt data
        raise EdgecError(f"{path}: not a readable ONNX model ({type(exc).__name__}: {exc}); "
                         "check that the file is a complete .onnx export") from None
    if not model.graph.node and not model.graph.output:
        raise EdgecError(f"{path}: not an ONNX model (no graph found); check that the file is a complete .onnx export")
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        first = str(exc).strip().splitlines()[0]
        raise EdgecError(f"{path}: invalid ONNX model: {first}") from None
    except UnicodeDecodeError:  # a name or string attribute that is not UTF-8 (protobuf strings must be)
        raise EdgecError(f"{path}: invalid ONNX model: a name or string in it is not UTF-8 text; the file is "
                         "damaged") from None
    return model


def _opset(model: onnx.ModelProto) -> int:
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx"):
            return imp.version
    return MIN_OPSET


def upgrade_opset(model: onnx.ModelProto, path: Path) -> onnx.ModelProto:
    """The model at opset MIN_OPSET or newer (onnx's version converter), semantics unchanged. Old exports (opset
    6-9) often need what the converter assumes: every initializer listed as a graph input, shapes on intermediate
    tensors (some adapters, e.g. Gemm-6's, read them), and for those shapes, constant shape computations (Shape ->
    Gather -> Concat -> Reshape) folded (a second attempt). The graph inputs stay the model's own.
    Also used by validate to run onnxruntime, which has no kernels for some old ops."""
    if _opset(model) >= MIN_OPSET:
        return model
    work = _listed_and_inferred(model)
    try:
        out = version_converter.convert_version(work, MIN_OPSET)
    except Exception:  # noqa: BLE001 - retried once with constant shape computations folded
        _fold_constants(work)
        try:
            out = version_converter.convert_version(_listed_and_inferred(work), MIN_OPSET)
        except Exception as exc:
            raise EdgecError(f"{path}: cannot convert opset {_opset(model)} to {MIN_OPSET} ({exc}); "
                             f"re-export the model with opset {MIN_OPSET} or newer") from None
    own = {i.name for i in model.graph.input}
    inits = {i.name for i in out.graph.initializer}
    was_init = {i.name for i in model.graph.initializer}
    kept = [i for i in out.graph.input if i.name in own and (i.name in inits or i.name not in was_init)]
    del out.graph.input[:]
    out.graph.input.extend(kept)
    return out


def _listed_and_inferred(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of the model with every initializer listed as a graph input and shapes inferred where onnx can."""
    work = onnx.ModelProto()
    work.CopyFrom(model)
    listed = {i.name for i in work.graph.input}
    work.graph.input.extend(onnx.helper.make_tensor_value_info(i.name, i.data_type, i.dims)
                            for i in work.graph.initializer if i.name not in listed)
    try:
        return shape_inference.infer_shapes(work, data_prop=True)
    except Exception:  # noqa: BLE001 - the converter reports what it cannot do without shapes
        return work


def drop_dropout_masks(model: onnx.ModelProto, path: Path) -> None:
    """Dropout is the identity at inference; its optional mask output (all ones then) is removed when nothing reads
    it. A mask that is read, or a Dropout switched to training mode by a constant, is refused."""
    graph = model.graph
    read = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
    inits = {i.name: i for i in graph.initializer}
    for n in graph.node:
        if n.op_type != "Dropout" or n.domain not in ("", "ai.onnx"):
            continue
        if len(n.input) > 2 and n.input[2] in inits and bool(numpy_helper.to_array(inits[n.input[2]]).any()):
            raise EdgecError(f"{path}: Dropout (node '{n.name}') runs in training mode (training_mode is true); "
                             "edgec compiles inference: export the model in eval mode")
        if len(n.output) > 1 and n.output[1]:
            if n.output[1] in read:
                raise EdgecError(f"{path}: Dropout (node '{n.name}'): its mask output '{n.output[1]}' is used; "
                                 "edgec compiles Dropout as the identity (inference) and does not compute the mask: "
                                 "export the model without using the mask")
            del n.output[1:]


# Element types of graph inputs that edgec casts at the boundary: the compiled model takes float32 values.
INTEGER_INPUTS = (onnx.TensorProto.INT8, onnx.TensorProto.UINT8, onnx.TensorProto.INT16, onnx.TensorProto.UINT16,
                  onnx.TensorProto.INT32, onnx.TensorProto.UINT32, onnx.TensorProto.INT64, onnx.TensorProto.UINT64)


def _cast_to(node: onnx.NodeProto) -> int | None:
    return next((a.i for a in node.attribute if a.name == "to"), None)


def float32_boundary(model: onnx.ModelProto, path: Path) -> dict[str, str]:
    """Make the model compute in float32 with float32 inputs and outputs; returns {input: its own element type}
    for the inputs whose type changed.

    float64 is computed in float32: float64 initializers, Constant/ConstantOfShape values, Cast(to=DOUBLE) and
    float64 inputs, outputs and value_info become float32. An integer input is given as float32 values (exact up to
    2^24) and must be cast to float by the model before any other use; that Cast is then the identity."""
    graph = model.graph
    double, flt = onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT
    for k, init in enumerate(graph.initializer):
        if init.data_type == double:
            graph.initializer[k].CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float32),
                                                                  init.name))
    for n in graph.node:
        for a in n.attribute:
            if a.type == onnx.AttributeProto.TENSOR and a.t.data_type == double:
                a.t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(a.t).astype(np.float32), a.t.name))
            if n.op_type == "Cast" and a.name == "to" and a.i == double:
                a.i = flt
    inits = {i.name for i in graph.initializer}
    changed = {}
    for vi in list(graph.input) + list(graph.output) + list(graph.value_info):
        tt = vi.type.tensor_type
        if vi.name in inits or tt.elem_type == flt:
            continue
        if tt.elem_type == double:
            if any(vi is i for i in graph.input):
                changed[vi.name] = "float64"
            tt.elem_type = flt
        elif tt.elem_type in INTEGER_INPUTS and any(vi is i for i in graph.input):
            users = [n for n in graph.node if vi.name in n.input]
            other = next((n for n in users if n.op_type != "Cast" or _cast_to(n) != flt), None)
            if other is not None:
                raise EdgecError(f"{path}: input '{vi.name}' is {onnx.TensorProto.DataType.Name(tt.elem_type)} and "
                                 f"{other.op_type} (node '{other.name}') uses it as such; edgec compiles float "
                                 "models: an integer input must go through a Cast to float before any other use")
            changed[vi.name] = onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type).name
            tt.elem_type = flt
    return changed


def _fix_inputs(model: onnx.ModelProto, shapes: dict[str, tuple[int, ...]], path: Path) -> None:
    graph = model.graph
    inits = {i.name for i in graph.initializer}
    real = [i for i in graph.input if i.name not in inits]
    # Initializers that are also listed as inputs are constants for us.
    del graph.input[:]
    graph.input.extend(real)
    real = list(graph.input)
    names = {i.name for i in real}
    for name in shapes:
        if name not in names:
            raise EdgecError(f"--input-shape names '{name}', but the model's inputs are: {', '.join(sorted(names))}")
    for inp in real:
        dims = inp.type.tensor_type.shape.dim
        current = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in dims]
        if inp.name in shapes:
            want = shapes[inp.name]
            if len(want) != len(current) or any(c is not None and c != w for c, w in zip(current, want)):
                raise EdgecError(f"--input-shape {inp.name}={','.join(map(str, want))} does not match the model's "
                                 f"shape {[c if c is not None else '?' for c in current]}")
            for d, w in zip(dims, want):
                d.ClearField("dim_param")
                d.dim_value = w
        elif any(c is None for c in current):
            shown = ",".join(d.dim_param or "?" if c is None else str(c) for d, c in zip(dims, current))
            raise EdgecError(f"{path}: input '{inp.name}' has a dynamic shape [{shown}]; give a fixed shape with "
                             f"--input-shape {inp.name}=" + ",".join("1" if c is None else str(c) for c in current))


def _forget_dynamic_shapes(model: onnx.ModelProto) -> None:
    """Drop symbolic output/value_info shapes so inference recomputes them from the fixed input shapes."""
    for vi in list(model.graph.output) + list(model.graph.value_info):
        tt = vi.type.tensor_type
        if tt.HasField("shape") and any(not d.HasField("dim_value") for d in tt.shape.dim):
            tt.ClearField("shape")


def _infer(model: onnx.ModelProto, path: Path) -> onnx.ModelProto:
    try:
        return shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    except Exception as exc:
        raise EdgecError(f"{path}: shape inference failed: {str(exc).strip().splitlines()[-1]}") from None


def _value_shapes(graph: onnx.GraphProto) -> dict[str, list[int]]:
    """The shapes of the inputs, value_info and outputs whose every dimension is known."""
    static_shapes = {}
    for vi in list(graph.input) + list(graph.value_info) + list(graph.output):
        dims = vi.type.tensor_type.shape.dim
        if dims and all(d.HasField("dim_value") for d in dims):
            static_shapes[vi.name] = [d.dim_value for d in dims]
    return static_shapes


def _fold_constants(model: onnx.ModelProto) -> tuple[dict[str, tuple[np.ndarray, int]],
                                                     dict[str, tuple[np.ndarray, np.ndarray]], set[str]]:
    """Evaluate every node whose inputs are all known (Constant, ConstantOfShape, Shape of a static tensor, ...).

    Returns the scales of int8 weights dequantized with a zero zero point (a QDQ model's weights), by name:
    (scale per element of `axis`, axis), and the integers and scales of int32 constants dequantized with a zero
    zero point (a QDQ model's biases), by name, and the names of 8-bit constants dequantized with a non-zero zero
    point or from uint8 (asymmetric weights)."""
    graph = model.graph
    known = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    static_shapes = _value_shapes(graph)
    keep = []
    weight_scales: dict[str, tuple[np.ndarray, int]] = {}
    int_values: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    asymmetric: set[str] = set()
    opset = [o for o in model.opset_import]
    for node in graph.node:
        if node.domain not in ("", "ai.onnx"):
            keep.append(node)
            continue
        if node.op_type == "Shape" and node.input[0] in static_shapes and len(node.attribute) == 0:
            known[node.output[0]] = np.array(static_shapes[node.input[0]], dtype=np.int64)
            continue
        if node.op_type == "Size" and node.input[0] in static_shapes:
            known[node.output[0]] = np.array(np.prod(static_shapes[node.input[0]]), dtype=np.int64)
            continue
        inputs = [i for i in node.input if i]
        if all(i in known for i in inputs):
            single = onnx.helper.make_graph(
                [node], "fold",
                [onnx.helper.make_tensor_value_info(i, onnx.helper.np_dtype_to_tensor_dtype(known[i].dtype),
                                                    known[i].shape) for i in inputs],
                [onnx.helper.make_tensor_value_info(o, onnx.TensorProto.UNDEFINED, None) for o in node.output])
            outs = _evaluate(single, opset, {i: known[i] for i in inputs})
            if outs is not None:
                for o, v in zip(node.output, outs):
                    known[o] = np.asarray(v)
                q = known[node.input[0]] if node.op_type == "DequantizeLinear" else None  # (Constant: no input)
                kind = q.dtype.name if q is not None else None  # (int4: ml_dtypes' int4, edgec's int4 weights)
                if kind in ("int8", "uint8", "int32", "int4"):
                    zp = known[node.input[2]] if len(node.input) > 2 and node.input[2] else np.zeros(1)
                    zp = zp.astype(np.int32)
                    scale = known[node.input[1]].astype(np.float64).ravel()
                    axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
                    if kind in ("int8", "int4") and not np.any(zp):
                        weight_scales[node.output[0]] = (scale, axis)
                    elif q.dtype == np.int32 and not np.any(zp) and q.ndim == 1:
                        int_values[node.output[0]] = (q, scale)
                    elif kind != "int32":
                        asymmetric.add(node.output[0])
                continue
        keep.append(node)
    del graph.node[:]
    graph.node.extend(keep)
    used = {i for n in keep for i in n.input} | {o.name for o in graph.output}
    del graph.initializer[:]
    graph.initializer.extend(numpy_helper.from_array(v, k) for k, v in known.items() if k in used)
    return weight_scales, int_values, asymmetric


def _evaluate(graph: onnx.GraphProto, opset: list, feeds: dict[str, np.ndarray]) -> list | None:
    """Run a one-node graph with onnx's reference evaluator; it implements some ops only at newer opsets, whose
    semantics for folding are the same, so retry at the newest. None: it cannot be folded here."""
    newest = [onnx.helper.make_opsetid("", onnx.defs.onnx_opset_version())]
    for imports in (opset, newest):
        try:
            return ReferenceEvaluator(onnx.helper.make_model(graph, opset_imports=imports)).run(None, feeds)
        except Exception:  # noqa: BLE001 - any failure means "leave the node in the graph"
            continue
    return None


def load_onnx(path: Path, input_shapes: dict[str, tuple[int, ...]] | None = None) -> Graph:
    """The load stage: file -> checked, upgraded, folded and shape-inferred IR graph."""
    path = Path(path)
    model = read_model(path)
    inits, consts = constant_arrays(model, path)
    check_finite(inits, path, "initializer")
    check_finite(consts, path, "constant")
    model = upgrade_opset(model, path)
    qoperator_to_qdq(model, path)
    drop_dropout_masks(model, path)
    _fix_inputs(model, input_shapes or {}, path)
    input_types = float32_boundary(model, path)
    _forget_dynamic_shapes(model)
    model = _infer(model, path)
    check_sizes(_static_shapes(model), path)
    weight_scales, int_values, asymmetric = _fold_constants(model)
    imported, converts = _strip_qdq(model, path)
    check_scales({**{k: np.array([v[0]]) for k, v in imported.items()},
                  **{k: np.array([c[0] for c in v]) for k, v in converts.items()},
                  **{k: v[0] for k, v in weight_scales.items()}}, path)
    schemes = _layer_schemes(model, path)
    model = _infer(model, path)
    g = _to_ir(model, path)
    check_finite({n: t.data for n, t in g.tensors.items() if t.is_const}, path, "constant")
    check_sizes({n: t.shape for n, t in g.tensors.items()}, path)
    for name, (scale, zp, dtype) in imported.items():
        if name in g.tensors:
            g.tensors[name].fixed_quant, g.tensors[name].fixed_dtype = (scale, zp), dtype
    for name, params in converts.items():
        if name in g.tensors:
            g.tensors[name].fixed_converts = params
    if schemes:
        g.info["layer_schemes"] = schemes
    if input_types:
        g.info["input_types"] = input_types  # the model's own element type of inputs given as float32
    widths = {dtype for _, _, dtype in imported.values()}
    if len(widths) > 1 and not schemes:
        raise EdgecError(f"{path}: the model quantizes some activations to 8 bits and others to int16; edgec imports "
                         "one activation width per QDQ model (or a mixed model written by edgec quantize, which "
                         "names each layer's scheme): quantize every activation as int8 (or uint8), or every one as "
                         "int16 (16x8)")
    for n in g.nodes:
        if n.op in ("Conv", "Gemm", "MatMul") and len(n.inputs) > 1 and n.inputs[1] in asymmetric:
            raise EdgecError(f"{path}: {n.op} (node '{n.name}'): its weights are quantized with a non-zero zero point, "
                             "as uint8 (asymmetric) or with 16 bits; edgec's kernels (int8 and 16x8) take symmetric "
                             "int8 weights: quantize with weight_type=QInt8")
    for name, (scales, axis) in weight_scales.items():
        if name in g.tensors:
            g.tensors[name].weight_scales = (scales, axis)
    for name, ints in int_values.items():
        if name in g.tensors:
            g.tensors[name].int_values = ints
    return g


def _layer_schemes(model: onnx.ModelProto, path: Path) -> dict[str, str]:
    """The per-layer schemes a mixed model written by edgec quantize names in its metadata ({} if none)."""
    text = next((p.value for p in model.metadata_props if p.key == LAYER_SCHEMES_KEY), None)
    if text is None:
        return {}
    try:
        schemes = json.loads(text)
    except ValueError:
        schemes = None
    if not isinstance(schemes, dict) or not all(isinstance(v, str) for v in schemes.values()):
        raise EdgecError(f"{path}: metadata {LAYER_SCHEMES_KEY} is not a JSON object of layer name: scheme; "
                         "write the model again with edgec quantize or remove the entry")
    return schemes


def _strip_qdq(model: onnx.ModelProto, path: Path) -> tuple[dict[str, tuple[float, int, str]],
                                                           dict[str, list[tuple[float, int, str]]]]:
    """Remove QuantizeLinear -> DequantizeLinear pairs on activations (a QDQ model, e.g. from onnxruntime's
    quantize_static) and return their scale, zero point and element type (int8: int8 or uint8 pairs; int16:
    symmetric int16 pairs, opset 21) by float tensor name. Quantized constants were already folded into float
    initializers whose values sit exactly on their integer grid.

    A pair that quantizes the output of another pair's DequantizeLinear again (DQ -> Q: a conversion between two
    integer formats in a mixed model) is returned apart, in the second dict, as one of the source tensor's other
    formats; readers of its DequantizeLinear read the source tensor."""
    graph = model.graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    qparams: dict[str, tuple[float, int, str]] = {}
    converts: dict[str, list[tuple[float, int, str]]] = {}
    chained: set[str] = set()  # outputs of QuantizeLinear nodes that read a removed DequantizeLinear's output
    for q in [n for n in graph.node if n.op_type == "QuantizeLinear"]:
        users = [n for n in graph.node if q.output[0] in n.input]
        other = next((u for u in users if u.op_type != "DequantizeLinear"), None)
        if other is not None:
            raise EdgecError(f"{path}: {other.op_type} (node '{other.name}') works on the quantized tensor "
                             f"'{q.output[0]}' of QuantizeLinear node '{q.name}', which edgec cannot import; edgec "
                             "imports QDQ models (a QuantizeLinear/DequantizeLinear pair on each quantized activation) "
                             "and the operator form (QLinearConv, ...)")
        if not users or len(q.input) < 2:
            raise EdgecError(f"{path}: QuantizeLinear node '{q.name}' is not followed by DequantizeLinear; "
                             "edgec imports QDQ models with a Q/DQ pair on each quantized activation")
        scale = inits.get(q.input[1])
        zp = inits.get(q.input[2]) if len(q.input) > 2 and q.input[2] else np.zeros((), np.uint8)
        if scale is None or zp is None or scale.size != 1 or zp.size != 1:
            raise EdgecError(f"{path}: QuantizeLinear node '{q.name}' needs constant per-tensor scale and zero "
                             "point for an activation")
        if zp.dtype == np.int16 and int(zp.reshape(())) != 0:
            raise EdgecError(f"{path}: QuantizeLinear node '{q.name}' quantizes to int16 with zero point "
                             f"{int(zp.reshape(()))}; edgec's 16x8 arithmetic takes symmetric int16 activations: "
                             "quantize them with zero point 0")
        if zp.dtype not in (np.int8, np.uint8, np.int16):
            raise EdgecError(f"{path}: QuantizeLinear node '{q.name}' quantizes to {zp.dtype}; edgec imports int8, "
                             "uint8 and (with zero point 0) int16 activations")
        # uint8 with zero point z is int8 with zero point z - 128 on the same grid
        params = (float(scale.reshape(())), int(zp.reshape(())) - (128 if zp.dtype == np.uint8 else 0),
                  "int16" if zp.dtype == np.int16 else "int8")
        if q.output[0] in chained:
            converts.setdefault(q.input[0], []).append(params)
        else:
            qparams[q.input[0]] = params
        for u in users:
            for n in graph.node:
                for k, name in enumerate(n.input):
                    if name == u.output[0]:
                        n.input[k] = q.input[0]
                        if n.op_type == "QuantizeLinear":
                            chained.add(n.output[0])
            for out in graph.output:
                if out.name == u.output[0]:
                    graph.node.append(onnx.helper.make_node("Identity", [q.input[0]], [u.output[0]]))
                    qparams[u.output[0]] = params
            graph.node.remove(u)
        graph.node.remove(q)
    return qparams, converts


def _to_ir(model: onnx.ModelProto, path: Path) -> Graph:
    g = model.graph
    tensors: dict[str, Tensor] = {}
    for init in g.initializer:
        arr = numpy_helper.to_array(init)
        tensors[init.name] = Tensor(init.name, tuple(arr.shape), arr)
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        if vi.name in tensors:
            continue
        tt = vi.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else -1 for d in tt.shape.dim] if tt.HasField("shape") else None
        if dims is None or min(dims, default=1) <= 0:
            continue
        if tt.elem_type != onnx.TensorProto.FLOAT:
            if vi in g.input:
                raise EdgecError(f"{path}: input '{vi.name}' has element type "
                                 f"{onnx.TensorProto.DataType.Name(tt.elem_type)}; edgec compiles float32 models")
            continue  # an integer shape computation that folding removed; remaining uses are reported later
        tensors[vi.name] = Tensor(vi.name, tuple(dims))
    nodes = []
    for k, n in enumerate(g.node):
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
        attrs = {k2: (v.decode() if isinstance(v, bytes) else v) for k2, v in attrs.items()}
        nodes.append(Node(n.op_type if n.domain in ("", "ai.onnx") else f"{n.domain}.{n.op_type}",
                          n.name or f"{n.op_type}_{k}", list(n.input), list(n.output), attrs))
    return Graph(g.name or path.stem, tensors, nodes, [i.name for i in g.input], [o.name for o in g.output])


def require_static_shapes(graph: Graph, path: Path) -> None:
    for n in graph.nodes:
        for name in n.outputs:
            if name and name not in graph.tensors and n.op == "Cast":
                raise EdgecError(f"{path}: Cast (node '{n.name}') casts to a type other than float; edgec compiles "
                                 "float computations (only a Cast to float is supported)")
            if name and name not in graph.tensors:
                raise EdgecError(f"{path}: the shape of '{name}' (output of node '{n.name}', {n.op}) could not be "
                                 "inferred statically; give fixed input shapes with --input-shape")


# The largest tensor edgec compiles: the C kernels index elements and bytes with 32-bit integers, and every tensor is
# also held as float32 (the float reference, calibration): 2^31 - 1 bytes of float32.
MAX_TENSOR_ELEMENTS = (2**31 - 1) // 4


def constant_arrays(model: onnx.ModelProto, path: Path) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Every initializer, and every Constant node's value (by its output's name), as an array; one whose stored
    data does not fit its declared type and shape (a damaged or hostile file) is refused naming it, before any pass
    reads it."""
    inits = [(i.name, i) for i in model.graph.initializer]
    consts = [(n.output[0] if n.output else n.name, a.t) for n in model.graph.node for a in n.attribute
              if a.type == onnx.AttributeProto.TENSOR]
    found: tuple[dict[str, np.ndarray], dict[str, np.ndarray]] = ({}, {})
    for arrays, kind, tensors in zip(found, ("initializer", "constant"), (inits, consts)):
        for name, t in tensors:
            try:
                arrays[name] = numpy_helper.to_array(t)
            except Exception as exc:  # noqa: BLE001 - onnx raises ValueError, TypeError, KeyError... for bad data
                raise EdgecError(f"{path}: {kind} '{name}' holds data that does not match its type {t.data_type} "
                                 f"and shape {list(t.dims)} ({type(exc).__name__}); the model file is "
                                 "damaged") from None
    return found


def check_finite(arrays: dict[str, np.ndarray], path: Path, kind: str) -> None:
    """Refuse NaN and infinity in the model's float constants (weights are compiled into C as numbers)."""
    for name, a in arrays.items():
        if a.dtype.kind not in "fc" or a.size == 0:
            continue
        bad = ~np.isfinite(a)
        if bad.any():
            first = np.unravel_index(int(np.argmax(bad)), a.shape) if a.ndim else ()
            raise EdgecError(f"{path}: {kind} '{name}' holds {int(bad.sum())} non-finite value(s) (first: "
                             f"{a[first]} at index {list(map(int, first))}); edgec compiles finite numbers only: "
                             "fix or re-export the model")


def _static_shapes(model: onnx.ModelProto) -> dict[str, tuple[int, ...]]:
    shapes = {i.name: tuple(i.dims) for i in model.graph.initializer}
    for vi in list(model.graph.input) + list(model.graph.value_info) + list(model.graph.output):
        dims = vi.type.tensor_type.shape.dim
        if all(d.HasField("dim_value") for d in dims):
            shapes[vi.name] = tuple(d.dim_value for d in dims)
    return shapes


def check_sizes(shapes: dict[str, tuple[int, ...]], path: Path) -> None:
    """Refuse tensors too large for the C kernels' 32-bit indexing before anything is computed or generated."""
    for name, shape in shapes.items():
        n = int(np.prod(shape, dtype=object)) if shape else 1
        if n > MAX_TENSOR_ELEMENTS:
            raise EdgecError(f"{path}: tensor '{name}' of shape {list(shape)} has {n} elements; edgec compiles "
                             f"tensors of at most {MAX_TENSOR_ELEMENTS} elements (2 GiB of float32, indexed with "
                             "32-bit integers in C): give smaller input shapes (--input-shape)")


def check_scales(scales: dict[str, np.ndarray], path: Path) -> None:
    """The scales of a quantized model's Q/DQ pairs are positive finite numbers (they are divided by)."""
    for name, v in scales.items():
        if not np.all(np.isfinite(v) & (v > 0)):
            raise EdgecError(f"{path}: tensor '{name}' is quantized with scale {np.asarray(v).tolist()[:8]}; "
                             "quantization scales must be positive finite numbers")
