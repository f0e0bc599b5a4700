"""TFLM's integer arithmetic (toolchain/ops/tflm.py) against TensorFlow Lite Micro itself.

Every operator of the official MLPerf Tiny .tflite models in ../shared/models runs in TFLM's Python interpreter
(the tflite-micro package, reference kernels) with all tensors kept; each one's output is recomputed from its
inputs with the numpy twins and must equal TFLM's bit for bit. The twins' fixed-point primitives are also checked
against a plain transcription of gemmlowp's definitions on extreme values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgec.ops import tflm

MODELS = Path(__file__).resolve().parents[1] / ".." / "shared" / "models"
OFFICIAL = ["ad01_int8", "kws_ref_model", "pretrainedResnet_quant", "str_ww_ref_model", "vww_96_int8"]
ACT = {0: (-np.inf, np.inf), 1: (0.0, np.inf), 2: (-1.0, 1.0), 3: (0.0, 6.0)}  # TFLite's fused activations

I32_MIN, I32_MAX = -(2**31), 2**31 - 1


# ---- the primitives against their definitions (Python integers, C division) ------------------------------------------


def c_div(a: int, b: int) -> int:
    """C integer division (truncating toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def srdhm_def(a: int, b: int) -> int:
    if a == b == I32_MIN:
        return I32_MAX
    ab = a * b
    return c_div(ab + ((1 << 30) if ab >= 0 else 1 - (1 << 30)), 1 << 31)


def rdbpot_def(x: int, e: int) -> int:
    mask = (1 << e) - 1
    return (x >> e) + (1 if (x & mask) > (mask >> 1) + (1 if x < 0 else 0) else 0)


def requantize_def(x: int, m: int, shift: int) -> int:
    left, right = max(shift, 0), max(-shift, 0)
    xs = ((x << left) + 2**31) % 2**32 - 2**31  # int32 wrap of x * (1 << left)
    return rdbpot_def(srdhm_def(xs, m), right)


def extreme_cases(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r = np.random.default_rng(seed)
    edge = np.array([I32_MIN, I32_MIN + 1, -(2**30), -65536, -3, -2, -1, 0, 1, 2, 3, 2**30, I32_MAX - 1, I32_MAX])
    x = np.concatenate([np.repeat(edge, 12), r.integers(I32_MIN, I32_MAX, n, endpoint=True),
                        r.integers(-5000, 5000, n)])
    m = np.concatenate([np.tile([I32_MIN, 1 << 30, I32_MAX, (1 << 30) + 1, 0, 1],
                                len(edge) * 2), r.integers(1 << 30, I32_MAX, 2 * n, endpoint=True)])
    s = np.concatenate([np.tile(np.arange(-31, 31, 5), len(edge))[:len(edge) * 12],
                        r.integers(-31, 8, 2 * n)])
    return x, m, s


def test_primitives_equal_their_definitions():
    x, m, s = extreme_cases(4000)
    np.testing.assert_array_equal(tflm.srdhm(x, m), [srdhm_def(int(a), int(b)) for a, b in zip(x, m)])
    e = np.abs(s) % 32
    np.testing.assert_array_equal(tflm.rdbpot(x, e), [rdbpot_def(int(a), int(b)) for a, b in zip(x, e)])
    ok = m >= 0  # TFLM's multipliers are never negative
    got = tflm.requantize(x[ok], m[ok], s[ok])
    np.testing.assert_array_equal(got, [requantize_def(int(a), int(b), int(c)) for a, b, c in
                                        zip(x[ok], m[ok], s[ok])])
    # exact ties: x * m / 2^31 = k + 1/2, then a division by 2^e exactly halfway, both signs
    for k in (-7, -6, -1, 0, 5, 6):
        assert int(tflm.srdhm((2 * k + 1), 1 << 30)) == srdhm_def(2 * k + 1, 1 << 30)
        for e in (1, 2, 5):
            v = (2 * k + 1) << (e - 1)
            assert int(tflm.rdbpot(v, e)) == rdbpot_def(v, e) == (k + (1 if k >= 0 else 0))


def test_quantize_multiplier():
    for real in (1.0, 0.5, 0.75, 1e-3, 3.9e-10, 2.0**-31, 2.0**-32, 0.9999999999, 123.456, 2.0**29):
        mult, shift = tflm.quantize_multiplier(real)
        if real < 2.0**-32:
            assert (mult, shift) == (0, 0)
            continue
        assert (1 << 30) <= mult < (1 << 31)
        assert abs(mult * 2.0**shift / 2**31 - real) <= real * 2.0**-30
    assert tflm.quantize_multiplier(0.0) == (0, 0)
    # the fraction rounds half away from zero: 0.5 + 2^-32 is exactly halfway between two multipliers
    assert tflm.quantize_multiplier(0.5 + 2.0**-32) == ((1 << 30) + 1, 0)  # Python round() gives 2^30


def test_avgpool_divide_rounds_half_away_from_zero():
    acc = np.array([5, -5, 3, -3, 7, -7, 0, 1, -1])
    np.testing.assert_array_equal(tflm.avgpool_divide(acc, 2), [3, -3, 2, -2, 4, -4, 0, 1, -1])
    np.testing.assert_array_equal(tflm.avgpool_divide(acc, 4), [1, -1, 1, -1, 2, -2, 0, 0, 0])


# ---- every operator of the official models against TFLM --------------------------------------------------------------


def _options(op, cls):
    table = op.BuiltinOptions()
    opt = cls()
    opt.Init(table.Bytes, table.Pos)
    return opt


def _quant(sg, index: int) -> tuple[np.ndarray, np.ndarray]:
    q = sg.Tensors(index).Quantization()
    return q.ScaleAsNumpy().astype(np.float64), q.ZeroPointAsNumpy().astype(np.int64)


def _same_pads(size: int, k: int, stride: int, dil: int, out: int) -> int:
    return max((out - 1) * stride + (k - 1) * dil + 1 - size, 0) // 2


def _conv(x, w, b, opt, depthwise: bool, out_shape):
    """int64 accumulators of a TFLite (depthwise) convolution, NHWC; x already has the input offset applied."""
    import tflite

    _, h, wd, c = x.shape
    _, oh, ow, oc = out_shape
    kh, kw = w.shape[1:3]
    sh, sw, dh, dw = opt.StrideH(), opt.StrideW(), opt.DilationHFactor(), opt.DilationWFactor()
    same = opt.Padding() == tflite.Padding.SAME
    pt = _same_pads(h, kh, sh, dh, oh) if same else 0
    pl = _same_pads(wd, kw, sw, dw, ow) if same else 0
    xp = np.pad(x, [(0, 0), (pt, kh * dh + oh * sh), (pl, kw * dw + ow * sw), (0, 0)])  # zeros: padding adds nothing
    acc = np.zeros((x.shape[0], oh, ow, oc), np.int64) + (0 if b is None else b)
    for ky in range(kh):
        for kx in range(kw):
            tap = xp[:, ky * dh:ky * dh + (oh - 1) * sh + 1:sh, kx * dw:kx * dw + (ow - 1) * sw + 1:sw, :]
            if depthwise:
                acc += np.repeat(tap, oc // c, axis=3) * w[0, ky, kx, :]
            else:
                acc += tap @ w[:, ky, kx, :].T
    return acc


def _recompute(model, sg, op, ins: list, out_index: int):
    import tflite

    code = model.OperatorCodes(op.OpcodeIndex())
    kind = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
    inputs = list(op.InputsAsNumpy())
    s_out, zp_out = (v[0] for v in _quant(sg, out_index))
    B = tflite.BuiltinOperator
    if kind in (B.CONV_2D, B.DEPTHWISE_CONV_2D, B.FULLY_CONNECTED):
        s_in, zp_in = (v[0] for v in _quant(sg, inputs[0]))
        s_w, _ = _quant(sg, inputs[1])
        x = ins[0].astype(np.int64) - zp_in
        w = ins[1].astype(np.int64)
        b = ins[2].astype(np.int64) if len(inputs) > 2 and inputs[2] >= 0 else None
        if kind == B.FULLY_CONNECTED:
            opt = _options(op, tflite.FullyConnectedOptions)
            acc = x.reshape(-1, w.shape[1]) @ w.T + (0 if b is None else b)
            scale = tflm.fc_scale if s_w.size == 1 else tflm.conv_scale
        else:
            depthwise = kind == B.DEPTHWISE_CONV_2D
            opt = _options(op, tflite.DepthwiseConv2DOptions if depthwise else tflite.Conv2DOptions)
            acc = _conv(x, w, b, opt, depthwise, sg.Tensors(out_index).ShapeAsNumpy())
            scale = tflm.conv_scale
        ms = [tflm.quantize_multiplier(scale(s_in, float(s), s_out)) for s in np.broadcast_to(s_w, acc.shape[-1:])]
        y = tflm.requantize(acc, np.array([m for m, _ in ms]), np.array([s for _, s in ms])) + zp_out
        lo, hi = tflm.quant_bounds(*ACT[opt.FusedActivationFunction()], s_out, zp_out)
        return np.clip(y, lo, hi)
    if kind == B.ADD:
        (sa, za), (sb, zb) = ((v[0] for v in _quant(sg, i)) for i in inputs)
        p = tflm.add_params(sa, sb, s_out)
        ra = tflm.requantize((ins[0].astype(np.int64) - za) << p["left_shift"], p["a_mult"], p["a_shift"])
        rb = tflm.requantize((ins[1].astype(np.int64) - zb) << p["left_shift"], p["b_mult"], p["b_shift"])
        y = tflm.requantize(ra + rb, p["out_mult"], p["out_shift"]) + zp_out
        lo, hi = tflm.quant_bounds(*ACT[_options(op, tflite.AddOptions).FusedActivationFunction()], s_out, zp_out)
        return np.clip(y, lo, hi)
    if kind == B.AVERAGE_POOL_2D:
        opt = _options(op, tflite.Pool2DOptions)
        x = ins[0].astype(np.int64)
        ones = np.ones_like(x)
        fake = type("O", (), {"StrideH": opt.StrideH, "StrideW": opt.StrideW, "DilationHFactor": lambda: 1,
                              "DilationWFactor": lambda: 1, "Padding": opt.Padding})
        w = np.zeros((x.shape[3], opt.FilterHeight(), opt.FilterWidth(), x.shape[3]), np.int64)
        for c in range(x.shape[3]):
            w[c, :, :, c] = 1
        shape = sg.Tensors(out_index).ShapeAsNumpy()
        acc, count = _conv(x, w, None, fake, False, shape), _conv(ones, w, None, fake, False, shape)
        lo, hi = tflm.quant_bounds(*ACT[opt.FusedActivationFunction()], s_out, zp_out)
        return np.clip(tflm.avgpool_divide(acc, count), lo, hi)
    if kind == B.SOFTMAX:
        s_in, _ = (v[0] for v in _quant(sg, inputs[0]))
        mult, shift, diff_min = tflm.softmax_params(_options(op, tflite.SoftmaxOptions).Beta(), s_in)
        return tflm.softmax_s8(ins[0], -1, mult, shift, diff_min)
    if kind == B.RESHAPE:
        return ins[0]
    raise AssertionError(f"operator {kind} has no recomputation here")


@pytest.mark.parametrize("name", OFFICIAL)
def test_every_operator_equals_tflm(name):
    tflite = pytest.importorskip("tflite")
    runtime = pytest.importorskip("tflite_micro.python.tflite_micro.runtime")
    path = MODELS / f"{name}.tflite"
    if not path.exists():
        pytest.skip(f"{path} is not here")
    buf = path.read_bytes()
    model = tflite.Model.GetRootAsModel(buf, 0)
    sg = model.Subgraphs(0)
    interp = runtime.Interpreter.from_bytes(buf, intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors)
    sample = np.load(MODELS / f"{name}.inputs.npz")
    x = sample[sample.files[0]][:1]
    interp.set_input(x.reshape(interp.get_input_details(0)["shape"]).astype(np.int8), 0)
    interp.invoke()
    checked = set()
    for i in range(sg.OperatorsLength()):
        op = sg.Operators(i)
        ins = [interp.GetTensor(int(t), 0)["tensor_data"] if t >= 0 else None for t in op.InputsAsNumpy()]
        out = int(op.OutputsAsNumpy()[0])
        want = interp.GetTensor(out, 0)["tensor_data"]
        got = _recompute(model, sg, op, ins, out)
        np.testing.assert_array_equal(np.asarray(got).reshape(want.shape), want,
                                      err_msg=f"{name}: operator {i} differs from TFLM")
        code = model.OperatorCodes(op.OpcodeIndex())
        checked.add(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()))
    assert checked  # every operator was recomputed


# ---- single operators on generated .tflite files against TFLM --------------------------------------------------------


def tiny_model(op: str, inputs: list[tuple], output: tuple, options: dict | None = None,
               const: np.ndarray | None = None) -> bytes:
    """A .tflite file of one operator whose inputs are the model's inputs: each tensor (shape, type, scale, zp)
    with type "int8" or "float32" (scale None: no quantization), then the int32 constant `const` if given (MEAN's
    axes). options: the builtin options' fields."""
    import flatbuffers
    import tflite

    b = flatbuffers.Builder(1024)

    def vector(start, values, prepend):
        start(b, len(values))
        for v in reversed(values):
            prepend(v)
        return b.EndVector()

    tensors = []
    if const is not None:
        tflite.BufferStartDataVector(b, const.nbytes)
        for byte in reversed(const.astype("<i4").tobytes()):
            b.PrependByte(byte)
        data = b.EndVector()
        tflite.BufferStart(b)
        tflite.BufferAddData(b, data)
        const_buf = tflite.BufferEnd(b)
        cshape = vector(tflite.TensorStartShapeVector, [const.size], b.PrependInt32)
        cname = b.CreateString("axes")
        tflite.TensorStart(b)
        tflite.TensorAddShape(b, cshape)
        tflite.TensorAddType(b, tflite.TensorType.INT32)
        tflite.TensorAddBuffer(b, 1)
        tflite.TensorAddName(b, cname)
        const_tensor = tflite.TensorEnd(b)
    for i, (shape, kind, scale, zp) in enumerate([*inputs, output]):
        name = b.CreateString(f"t{i}")
        shp = vector(tflite.TensorStartShapeVector, list(shape), b.PrependInt32)
        quant = None
        if scale is not None:
            sc = vector(tflite.QuantizationParametersStartScaleVector, [scale], b.PrependFloat32)
            zpv = vector(tflite.QuantizationParametersStartZeroPointVector, [zp], b.PrependInt64)
            tflite.QuantizationParametersStart(b)
            tflite.QuantizationParametersAddScale(b, sc)
            tflite.QuantizationParametersAddZeroPoint(b, zpv)
            quant = tflite.QuantizationParametersEnd(b)
        tflite.TensorStart(b)
        tflite.TensorAddShape(b, shp)
        tflite.TensorAddType(b, tflite.TensorType.INT8 if kind == "int8" else tflite.TensorType.FLOAT32)
        tflite.TensorAddBuffer(b, 0)
        tflite.TensorAddName(b, name)
        if quant is not None:
            tflite.TensorAddQuantization(b, quant)
        tensors.append(tflite.TensorEnd(b))
    opt_name = {"ADD": "AddOptions", "SUB": "SubOptions", "MUL": "MulOptions", "SOFTMAX": "SoftmaxOptions",
                "LEAKY_RELU": "LeakyReluOptions", "AVERAGE_POOL_2D": "Pool2DOptions", "MEAN": "ReducerOptions"}.get(op)
    opt = None
    if opt_name:
        getattr(tflite, f"{opt_name}Start")(b)
        for field, value in (options or {}).items():
            getattr(tflite, f"{opt_name}Add{field}")(b, value)
        opt = getattr(tflite, f"{opt_name}End")(b)
    n_in = len(inputs)
    op_ins = list(range(n_in)) + ([n_in + 1] if const is not None else [])
    if const is not None:
        tensors.append(const_tensor)
    ins = vector(tflite.OperatorStartInputsVector, op_ins, b.PrependInt32)
    outs = vector(tflite.OperatorStartOutputsVector, [n_in], b.PrependInt32)
    tflite.OperatorStart(b)
    tflite.OperatorAddOpcodeIndex(b, 0)
    tflite.OperatorAddInputs(b, ins)
    tflite.OperatorAddOutputs(b, outs)
    if opt is not None:
        tflite.OperatorAddBuiltinOptionsType(b, getattr(tflite.BuiltinOptions, opt_name))
        tflite.OperatorAddBuiltinOptions(b, opt)
    operator = tflite.OperatorEnd(b)
    tvec = vector(tflite.SubGraphStartTensorsVector, tensors, b.PrependUOffsetTRelative)
    sg_in = vector(tflite.SubGraphStartInputsVector, list(range(n_in)), b.PrependInt32)
    sg_out = vector(tflite.SubGraphStartOutputsVector, [n_in], b.PrependInt32)
    ops = vector(tflite.SubGraphStartOperatorsVector, [operator], b.PrependUOffsetTRelative)
    tflite.SubGraphStart(b)
    tflite.SubGraphAddTensors(b, tvec)
    tflite.SubGraphAddInputs(b, sg_in)
    tflite.SubGraphAddOutputs(b, sg_out)
    tflite.SubGraphAddOperators(b, ops)
    sg = tflite.SubGraphEnd(b)
    code = getattr(tflite.BuiltinOperator, op)
    tflite.OperatorCodeStart(b)
    tflite.OperatorCodeAddBuiltinCode(b, code)
    tflite.OperatorCodeAddDeprecatedBuiltinCode(b, min(code, 127))
    tflite.OperatorCodeAddVersion(b, 1)
    opcode = tflite.OperatorCodeEnd(b)
    tflite.BufferStart(b)
    buf = tflite.BufferEnd(b)
    codes = vector(tflite.ModelStartOperatorCodesVector, [opcode], b.PrependUOffsetTRelative)
    sgs = vector(tflite.ModelStartSubgraphsVector, [sg], b.PrependUOffsetTRelative)
    bufs = vector(tflite.ModelStartBuffersVector, [buf] + ([const_buf] if const is not None else []),
                  b.PrependUOffsetTRelative)
    tflite.ModelStart(b)
    tflite.ModelAddVersion(b, 3)
    tflite.ModelAddOperatorCodes(b, codes)
    tflite.ModelAddSubgraphs(b, sgs)
    tflite.ModelAddBuffers(b, bufs)
    b.Finish(tflite.ModelEnd(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def run_tflm(model: bytes, *xs: np.ndarray) -> np.ndarray:
    runtime = pytest.importorskip("tflite_micro.python.tflite_micro.runtime")
    interp = runtime.Interpreter.from_bytes(model, arena_size=1 << 20)
    for i, x in enumerate(xs):
        interp.set_input(x, i)
    interp.invoke()
    return interp.get_output(0)


ALL_INT8 = np.arange(-128, 128, dtype=np.int8).reshape(1, 256)


def random_quant(r: np.random.Generator, lo: float = -3.0, hi: float = 0.5) -> tuple[float, int]:
    return float(np.float32(10.0 ** r.uniform(lo, hi))), int(r.integers(-128, 128))


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("op", ["Relu", "Relu6", "Sigmoid", "Tanh", "LeakyRelu", "HardSwish"])
def test_activation_tables_equal_tflm(op, seed):
    """The int8 tables of RELU, RELU6, LOGISTIC, TANH, LEAKY_RELU and HARD_SWISH over every input, for random
    scales."""
    pytest.importorskip("tflite")
    r = np.random.default_rng(seed)
    s_in, zp_in = random_quant(r, -2.5, -0.5)
    s_out, zp_out = {"Sigmoid": (1.0 / 256, -128), "Tanh": (1.0 / 128, 0), "Relu6": (s_in, zp_in)}.get(
        op, random_quant(r, -2.5, -0.5))
    name = {"Relu": "RELU", "Relu6": "RELU6", "Sigmoid": "LOGISTIC", "Tanh": "TANH", "LeakyRelu": "LEAKY_RELU",
            "HardSwish": "HARD_SWISH"}[op]
    alpha = float(np.float32(r.choice([0.01, 0.2, 0.3, -0.5])))
    options = {"Alpha": alpha} if op == "LeakyRelu" else None
    model = tiny_model(name, [((1, 256), "int8", s_in, zp_in)], ((1, 256), "int8", s_out, zp_out), options)
    attrs = {"min": 0.0, "max": 6.0} if op == "Relu6" else {"alpha": alpha}
    table = tflm.unary_table("Clip" if op == "Relu6" else op, attrs, s_in, zp_in, s_out, zp_out)
    np.testing.assert_array_equal(table[ALL_INT8.astype(np.int64) + 128], run_tflm(model, ALL_INT8))


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("op", ["ADD", "SUB", "MUL"])
def test_binary_equal_tflm(op, seed):
    """ADD, SUB and MUL of every pair of a random int8 sample, random scales and fused activations."""
    pytest.importorskip("tflite")
    r = np.random.default_rng(seed)
    (sa, za), (sb, zb), (so, zo) = random_quant(r), random_quant(r), random_quant(r, -2.0, 1.0)
    act = int(r.choice([0, 1, 3]))
    a = r.integers(-128, 128, (1, 512)).astype(np.int8)
    b = r.integers(-128, 128, (1, 512)).astype(np.int8)
    model = tiny_model(op, [((1, 512), "int8", sa, za), ((1, 512), "int8", sb, zb)], ((1, 512), "int8", so, zo),
                       {"FusedActivationFunction": act})
    x, y = a.astype(np.int64) - za, b.astype(np.int64) - zb
    if op == "MUL":
        mult, shift = tflm.quantize_multiplier(tflm.mul_scale(sa, sb, so))
        out = tflm.requantize(x * y, mult, shift)
    else:
        p = tflm.add_params(sa, sb, so)
        ra = tflm.requantize(x << p["left_shift"], p["a_mult"], p["a_shift"])
        rb = tflm.requantize(y << p["left_shift"], p["b_mult"], p["b_shift"])
        out = tflm.requantize(ra + rb if op == "ADD" else ra - rb, p["out_mult"], p["out_shift"])
    lo, hi = tflm.quant_bounds(*ACT[act], so, zo)
    np.testing.assert_array_equal(np.clip(out + zo, lo, hi), run_tflm(model, a, b))


@pytest.mark.parametrize("seed", range(6))
def test_quantize_equals_tflm(seed):
    """QUANTIZE float -> int8 (ties included) and int8 -> int8."""
    pytest.importorskip("tflite")
    r = np.random.default_rng(seed)
    s, zp = random_quant(r)
    x = np.concatenate([r.normal(0, 200 * s, 500), (np.arange(-40, 40) + 0.5) * s]).astype(np.float32)[None]
    model = tiny_model("QUANTIZE", [((1, x.size), "float32", None, 0)], ((1, x.size), "int8", s, zp))
    np.testing.assert_array_equal(tflm.quantize_float(x, s, zp), run_tflm(model, x))
    s2, zp2 = random_quant(r)
    model = tiny_model("QUANTIZE", [((1, 256), "int8", s, zp)], ((1, 256), "int8", s2, zp2))
    mult, shift = tflm.quantize_multiplier(tflm.ratio_scale(s, s2))
    want = np.clip(tflm.requantize(ALL_INT8.astype(np.int64) - zp, mult, shift) + zp2, -128, 127)
    np.testing.assert_array_equal(want, run_tflm(model, ALL_INT8))


@pytest.mark.parametrize("seed", range(8))
def test_softmax_equals_tflm(seed):
    """SOFTMAX over rows of random length, random input scales and betas."""
    pytest.importorskip("tflite")
    r = np.random.default_rng(seed)
    rows, n = int(r.integers(1, 6)), int(r.integers(2, 300))
    s_in, zp = random_quant(r, -3.0, 0.0)
    beta = float(np.float32(r.choice([1.0, 0.5, 2.5])))
    x = r.integers(-128, 128, (rows, n)).astype(np.int8)
    model = tiny_model("SOFTMAX", [((rows, n), "int8", s_in, zp)], ((rows, n), "int8", 1.0 / 256, -128),
                       {"Beta": beta})
    mult, shift, diff_min = tflm.softmax_params(beta, s_in)
    np.testing.assert_array_equal(tflm.softmax_s8(x, -1, mult, shift, diff_min), run_tflm(model, x))


@pytest.mark.parametrize("seed", range(6))
def test_mean_equals_tflm(seed):
    """MEAN over H and W (keep_dims), int8, random sizes and scales: the sum requantized with 1 / count folded."""
    pytest.importorskip("tflite")
    r = np.random.default_rng(seed)
    h, w, c = (int(v) for v in r.integers(1, 12, 3))
    (s_in, zp_in), (s_out, zp_out) = random_quant(r), random_quant(r)
    x = r.integers(-128, 128, (1, h, w, c)).astype(np.int8)
    model = tiny_model("MEAN", [((1, h, w, c), "int8", s_in, zp_in)], ((1, 1, 1, c), "int8", s_out, zp_out),
                       {"KeepDims": True}, const=np.array([1, 2], np.int32))
    mult, shift = tflm.mean_params(s_in, s_out, h * w)
    acc = (x.astype(np.int64) - zp_in).sum(axis=(1, 2), keepdims=True)
    want = np.clip(tflm.requantize(acc, mult, shift) + zp_out, -128, 127)
    np.testing.assert_array_equal(want, run_tflm(model, x))


@pytest.mark.parametrize("seed", range(6))
def test_average_pool_equals_tflm(seed):
    """AVERAGE_POOL_2D with SAME padding (fewer taps at the borders), strides and a fused activation."""
    import tflite

    r = np.random.default_rng(seed)
    h, w, c = (int(v) for v in r.integers(2, 12, 3))
    k, stride = int(r.integers(2, 5)), int(r.integers(1, 3))
    s, zp = random_quant(r)
    oh, ow = -(-h // stride), -(-w // stride)
    x = r.integers(-128, 128, (1, h, w, c)).astype(np.int8)
    act = int(r.choice([0, 1, 3]))
    model = tiny_model("AVERAGE_POOL_2D", [((1, h, w, c), "int8", s, zp)], ((1, oh, ow, c), "int8", s, zp),
                       {"Padding": tflite.Padding.SAME, "StrideW": stride, "StrideH": stride, "FilterWidth": k,
                        "FilterHeight": k, "FusedActivationFunction": act})
    pt, pl = _same_pads(h, k, stride, 1, oh), _same_pads(w, k, stride, 1, ow)
    acc = np.zeros((1, oh, ow, c), np.int64)
    count = np.zeros((1, oh, ow, 1), np.int64)
    for y in range(oh):
        for xx in range(ow):
            y0, x0 = y * stride - pt, xx * stride - pl
            win = x[:, max(y0, 0):max(y0 + k, 0), max(x0, 0):max(x0 + k, 0)]
            acc[:, y, xx] = win.astype(np.int64).sum(axis=(1, 2))
            count[:, y, xx] = win.shape[1] * win.shape[2]
    lo, hi = tflm.quant_bounds(*ACT[act], s, zp)
    np.testing.assert_array_equal(np.clip(tflm.avgpool_divide(acc, count), lo, hi), run_tflm(model, x))
