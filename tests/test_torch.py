"""edgec.torch: QAT whose forward is edgec's integer arithmetic, exported QDQ models that build bit-exactly, the
gradual pruning schedule and masks, and the digits example at a reduced size."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import needs_target

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from edgec.build import BuildOptions, build, prepare_graph, quantize_with  # noqa: E402
from edgec.errors import EdgecError  # noqa: E402
from edgec.prune import schedule  # noqa: E402
from edgec.quantize import prequantized_scheme  # noqa: E402
from edgec.runner import run_build  # noqa: E402
from edgec.torch import GradualPruner, Schedule, export, integer_outputs, prepare_qat  # noqa: E402
from edgec.validate import reference_outputs  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
torch.set_num_threads(1)  # tiny models: extra threads only spin


class SmallNet(nn.Module):
    """Conv+BN+ReLU, Conv+ReLU, MaxPool, flatten, Linear+ReLU, Linear: every fusion prepare_qat does."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, 6, 3, padding=1), nn.BatchNorm2d(6)
        self.conv2 = nn.Conv2d(6, 8, 3, padding=1, stride=2)
        self.pool = nn.MaxPool2d(2)
        self.fc1, self.fc2 = nn.Linear(8 * 2 * 2, 16), nn.Linear(16, 5)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.pool(torch.relu(self.conv2(x)))
        return self.fc2(F.relu(self.fc1(x.view(x.size(0), -1))))


SCHEMES = ["int8", "int4", "qformat", "int16"]


def _small_qat(seed: int = 0, scheme: str = "int8"):
    """A prepared SmallNet with non-trivial BatchNorm statistics, calibrated and then trained a few steps (so the
    ranges moved with the moving average and the weights changed)."""
    torch.manual_seed(seed)
    net = SmallNet()
    with torch.no_grad():
        net.bn1.running_mean.uniform_(-0.3, 0.3)
        net.bn1.running_var.uniform_(0.5, 2.0)
        net.bn1.weight.uniform_(0.5, 1.5)
        net.bn1.bias.uniform_(-0.2, 0.2)
    x = torch.rand(64, 1, 8, 8)
    q = prepare_qat(net, scheme, calib=x[:32])
    opt = torch.optim.Adam(q.parameters(), 1e-2)
    q.train()
    for i in range(4):
        opt.zero_grad()
        F.cross_entropy(q(x[i * 16:(i + 1) * 16]), torch.arange(16) % 5).backward()
        opt.step()
    with torch.no_grad():  # a channel far below one output step (Q-format caps its fractional bits)
        next(m for m in q.modules() if getattr(m, "source", "") == "conv2").layer.weight[0] *= 1e-6
    q.eval()
    return q, torch.rand(12, 1, 8, 8) * 1.2 - 0.1  # some inputs outside the calibrated range (clamping)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_fake_quant_forward_is_the_integer_reference(tmp_path, scheme):
    q, x = _small_qat(scheme=scheme)
    path = export(q, x[:1], tmp_path / "small.onnx")
    g = prepare_graph(path)
    assert prequantized_scheme(g) == scheme
    quantize_with(g, BuildOptions(path, quantize=scheme))
    samples = [{"input": xi[None].numpy()} for xi in x]
    ref = np.stack([r[g.outputs[0]].reshape(-1) for r in reference_outputs(g, samples)])
    mine = integer_outputs(q, x)
    np.testing.assert_array_equal(mine, ref)
    assert len(np.unique(mine)) > 10  # not a degenerate (saturated) output
    # the QAT model's float output is exactly the dequantized integer output
    with torch.no_grad():
        y = q(x).numpy()
    s, zp = g.tensors[g.outputs[0]].scale, g.tensors[g.outputs[0]].zero_point
    np.testing.assert_array_equal(y, ((mine.astype(np.float64) - zp) * s).astype(np.float32))


@pytest.mark.parametrize("scheme", ["int8", "int16"])
def test_fake_quant_gradient_is_straight_through(scheme):
    q, x = _small_qat(scheme=scheme)
    q.train()
    x = x.clone().requires_grad_(True)
    q(x).sum().backward()
    for name, p in q.named_parameters():
        if "bn1.running" not in name:
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert x.grad.abs().sum() > 0


@pytest.mark.parametrize("target", ["host", pytest.param("cortex-m7", marks=needs_target("cortex-m7"))])
@pytest.mark.parametrize("scheme", SCHEMES)
def test_exported_qdq_builds_bitexact(tmp_path, target, scheme):
    q, x = _small_qat(seed=1, scheme=scheme)
    path = export(q, x[:1], tmp_path / "small.onnx")
    out, meta, g = build(BuildOptions(path, target=target, out=tmp_path / "build"))
    assert meta["quantize"] == scheme  # edgec build picks the scheme the model was trained in
    res = run_build(out, [{"input": xi[None].numpy()} for xi in x])
    device = np.stack([r[g.outputs[0]].reshape(-1) for r in res.raw])
    np.testing.assert_array_equal(device, integer_outputs(q, x))


def test_int16_qdq_import(tmp_path):
    """The exported 16x8 model has int16 activation pairs (opset 21) that onnxruntime runs; zero points other than
    0 and models mixing int8 and int16 activations are refused with a message."""
    import onnx
    import onnxruntime as ort

    q, x = _small_qat(seed=2, scheme="int16")
    path = export(q, x[:1], tmp_path / "small16.onnx")
    m = onnx.load(str(path))
    zps = {i.name: onnx.numpy_helper.to_array(i) for i in m.graph.initializer}
    zps |= {n.output[0]: onnx.numpy_helper.to_array(n.attribute[0].t) for n in m.graph.node if n.op_type == "Constant"}
    quants = [n for n in m.graph.node if n.op_type == "QuantizeLinear"]
    kinds = sorted({str(zps[n.input[2]].dtype) for n in quants})
    assert kinds == ["int16", "int8"] and m.opset_import[0].version == 21  # int16 activations, int8 weights
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        y = q(x).numpy()
    step = prepare_graph(path).tensors["output"].fixed_quant[0]
    got = np.concatenate([sess.run(None, {"input": xi[None].numpy()})[0] for xi in x])
    assert np.abs(got - y).max() < 0.05 * np.abs(y).max() and np.abs(got - y).max() > 0.5 * step  # float vs int
    act = next(n for n in quants if zps[n.input[2]].dtype == np.int16)
    for value, message in ((np.array(5, np.int16), "int16 with zero point 5"),
                           (np.array(0, np.int8), "8 bits and others to int16")):
        bad = onnx.load(str(path))
        bad.graph.initializer.append(onnx.numpy_helper.from_array(value, "bad_zp"))
        for n in bad.graph.node:
            if n.op_type in ("QuantizeLinear", "DequantizeLinear") and n.input[0] in (act.input[0], act.output[0]):
                n.input[2] = "bad_zp"
        onnx.save(bad, str(tmp_path / "bad.onnx"))
        with pytest.raises(EdgecError, match=message):
            prepare_graph(tmp_path / "bad.onnx")


def test_unsupported_op_is_named():
    class Residual(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(2, 2, 3, padding=1)

        def forward(self, x):
            return self.conv(x) + x

    with pytest.raises(EdgecError, match="'add'.*not supported"):
        prepare_qat(Residual(), "int8")
    with pytest.raises(EdgecError, match="scheme 'int3'"):
        prepare_qat(SmallNet(), "int3")


def test_schedule_values():
    sch = Schedule(t0=10, n=4, dt=5)
    s_i, s_f = 0.1, 0.8
    assert sch.sparsity(9, s_i, s_f) == 0.0
    assert sch.sparsity(10, s_i, s_f) == pytest.approx(0.1)
    assert sch.sparsity(14, s_i, s_f) == pytest.approx(0.1)  # fixed between pruning steps
    assert sch.sparsity(15, s_i, s_f) == pytest.approx(0.8 - 0.7 * 0.75**3)
    assert sch.sparsity(20, s_i, s_f) == pytest.approx(0.8 - 0.7 * 0.5**3)
    assert sch.sparsity(25, s_i, s_f) == pytest.approx(0.8 - 0.7 * 0.25**3)
    assert sch.sparsity(30, s_i, s_f) == pytest.approx(0.8)
    assert sch.sparsity(1000, s_i, s_f) == pytest.approx(0.8)
    assert [t for t in range(40) if sch.is_pruning_step(t)] == [10, 15, 20, 25, 30]
    assert sch.sparsity(17, s_i, s_f) == pytest.approx(schedule(15, 20, s_i, s_f, 10))
    assert Schedule(3, 0, 1).sparsity(3, 0.0, 0.9) == 0.9  # one-shot


def _train_with(pruner: GradualPruner, model: nn.Module, steps: int, check) -> None:
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    x = torch.rand(16, 1, 8, 8)
    for _ in range(steps):
        opt.zero_grad()
        model(x).square().mean().backward()
        opt.step()
        pruner.step()
        check()


@pytest.mark.parametrize("criterion", ["magnitude", "taylor"])
def test_masks_stay_applied_through_optimizer_steps(criterion):
    torch.manual_seed(0)
    model = SmallNet()
    pruner = GradualPruner(model, 0.75, Schedule(t0=2, n=3, dt=4), criterion=criterion, layers=["conv2", "fc1"])
    seen = []

    def check():
        t = pruner.t - 1
        for name, m in pruner.layers.items():
            assert bool((m.weight[~pruner.masks[name]] == 0).all()), name  # pruned weights are exactly zero
        want = pruner.schedule.sparsity(t, 0.0, 0.75)
        for name, m in pruner.layers.items():
            assert int((~pruner.masks[name]).sum()) == int(np.floor(want * m.weight.numel())), (name, t)
        seen.append({n: pruner.masks[n].clone() for n in pruner.layers})

    _train_with(pruner, model, 20, check)
    for t in range(1, 20):  # masks change only on pruning steps, and what was pruned stays pruned
        for name in pruner.layers:
            if not pruner.schedule.is_pruning_step(t):
                assert torch.equal(seen[t][name], seen[t - 1][name])
            assert not (seen[t][name] & ~seen[t - 1][name]).any()
    assert pruner.sparsity()["total"] >= 0.74


def test_filter_and_nm_structures():
    torch.manual_seed(0)
    model = SmallNet()
    pruner = GradualPruner(model, 0.5, Schedule(0, 0, 1), structure="filter", layers=["conv1", "conv2"])
    _train_with(pruner, model, 3, lambda: None)
    dead = (model.conv1.weight.reshape(6, -1) == 0).all(dim=1)
    assert int(dead.sum()) == 3
    assert bool((model.conv1.bias[dead] == 0).all() and (model.bn1.weight[dead] == 0).all()
                and (model.bn1.bias[dead] == 0).all())
    assert int((model.conv2.weight.reshape(8, -1) == 0).all(dim=1).sum()) == 4
    model = SmallNet()
    pruner = GradualPruner(model, 0.0, Schedule(0, 2, 2), structure="2:4", criterion="taylor", layers=["fc1"])
    _train_with(pruner, model, 6, lambda: None)
    groups = (model.fc1.weight != 0).reshape(16, 8, 4).sum(-1)
    assert int(groups.max()) <= 2 and pruner.sparsity()["fc1"] == 0.5
    with pytest.raises(EdgecError, match="does not divide"):
        GradualPruner(SmallNet(), 0.0, Schedule(0, 0, 1), structure="4:5", layers=["fc1"]).step()


def test_filter_pruned_export_removes_the_filters(tmp_path):
    import onnx
    import onnxruntime as ort

    torch.manual_seed(0)
    model = SmallNet()
    pruner = GradualPruner(model, 0.5, Schedule(0, 0, 1), structure="filter", layers=["conv1", "conv2"])
    _train_with(pruner, model, 2, lambda: None)
    model.eval()
    x = torch.rand(1, 1, 8, 8)
    path = export(model, x, tmp_path / "filters.onnx")
    m = onnx.load(str(path))
    shapes = sorted(tuple(i.dims) for i in m.graph.initializer if len(i.dims) == 4)
    assert shapes == [(3, 1, 3, 3), (4, 3, 3, 3)]  # 6 -> 3 filters, 8 -> 4, and conv2 lost 3 input channels
    matrices = sorted(tuple(i.dims) for i in m.graph.initializer if len(i.dims) == 2)
    assert matrices == [(5, 16), (16, 16)]  # fc1 lost the flatten columns of conv2's 4 removed channels (32 -> 16)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        np.testing.assert_allclose(sess.run(None, {"input": x.numpy()})[0], model(x).numpy(), rtol=1e-4, atol=1e-5)


def test_pruned_export_shrinks_the_build(tmp_path):
    from torch_digits import ConvNet

    torch.manual_seed(0)
    dense = ConvNet()
    sizes = {}
    for name, s in (("dense", None), ("pruned", 0.9)):
        model = ConvNet()
        model.load_state_dict(dense.state_dict())
        if s:
            pruner = GradualPruner(model, s, Schedule(0, 0, 1), layers=["fc"])
            pruner.step()
        path = export(model, torch.rand(1, 1, 8, 8), tmp_path / f"{name}.onnx")
        sizes[name] = build(BuildOptions(path, out=tmp_path / name))[1]["weight_bytes"]
    assert sizes["pruned"] < 0.4 * sizes["dense"], sizes


def test_digits_example_reduced(tmp_path):
    import torch_digits

    rows = torch_digits.run("convnet", epochs=3, qat_epochs=1, finetune_epochs=1, n_eval=40, target="host",
                            sparsities=(0.9,), schemes=("int8",), work=tmp_path, log=lambda *_: None)
    by = {r["name"]: r for r in rows}
    assert by["float"]["torch_acc"] > 0.8 and by["float"]["device_acc"] == by["float"]["torch_acc"]
    assert by["QAT int8"]["same"] == 1.0 and by["QAT int8"]["device_acc"] == by["QAT int8"]["torch_acc"]
    assert by["gradual 90% + QAT int8"]["same"] == 1.0
    assert by["gradual 90% + fine-tune"]["sparsity"] == pytest.approx(0.9, abs=0.01)
    assert all(r["name"] in torch_digits.table(rows, "convnet") for r in rows)
