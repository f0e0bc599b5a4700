"""Training-aware compression with edgec.torch on scikit-learn's 8x8 digits, deployed to a Cortex-M7 in QEMU.

    .venv/bin/python examples/torch_digits.py [--model convnet|cnn] [--epochs 30] [--eval 449] [--target cortex-m7]

Two models: the user's ConvNet (Conv(1,4,3,p1) ReLU Conv(4,8,3,p1) ReLU flatten Linear(8*8*8, 10)) on 8x8 input,
and a slightly larger CNN with BatchNorm. Each row trains (or compresses) the float model, exports ONNX, builds it
with edgec for the target, runs the held-out split in the emulator and measures accuracy from the firmware's
outputs:
- float; PTQ (edgec build --quantize int8 --calib) against QAT (edgec.torch.prepare_qat), for every scheme
  edgec.torch.SCHEMES offers;
- one-shot pruning (edgec prune, magnitude, with least-squares re-fit), one-shot pruning + fine-tuning, and
  gradual pruning with fine-tuning (edgec.torch.GradualPruner) at 70% and 90%; gradual 90% + QAT (every scheme
  but qformat: int8, int4, int16).
'build' is the scheme edgec built (for QAT rows, recognized from the exported model). For QAT rows, 'same' is the
share of samples whose integer outputs (int8; 16x8: int16) from the firmware equal the PyTorch fake-quant model's,
bit for bit."""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edgec.build import BuildOptions, build
from edgec.digits import load_digits_split
from edgec.prune import PruneOptions
from edgec.runner import run_build
from edgec.torch import SCHEMES, GradualPruner, Schedule, export, integer_outputs, prepare_qat


class ConvNet(nn.Module):
    """The user's ConvNet, adapted to 8x8 input."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 8, 3, padding=1)
        self.fc = nn.Linear(8 * 8 * 8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        return self.fc(x.flatten(1))


class DigitsCNN(nn.Module):
    """A slightly larger CNN: three Conv-BatchNorm-ReLU blocks, two max pools, two fully connected layers."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16)
        self.conv2, self.bn2 = nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32)
        self.conv3, self.bn3 = nn.Conv2d(32, 32, 3, padding=1), nn.BatchNorm2d(32)
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(32 * 2 * 2, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.pool(F.relu(self.bn2(self.conv2(x))))
        x = self.pool(F.relu(self.bn3(self.conv3(x))))
        return self.fc2(F.relu(self.fc1(x.flatten(1))))


# These models are tiny: one thread is faster than several (23x on a busy 2-core machine, where the extra
# threads spin).
torch.set_num_threads(1)

MODELS = {"convnet": ConvNet, "cnn": DigitsCNN}
# Layers pruned: all but the first (the ConvNet's last layer holds 94% of its weights); the CNN: edgec's default,
# all but the first and the last.
PRUNED = {"convnet": ["conv2", "fc"], "cnn": ["conv2", "conv3", "fc1"]}


@dataclass
class Data:
    xtr: torch.Tensor
    ytr: torch.Tensor
    xte: torch.Tensor
    yte: torch.Tensor


def digits(n_eval: int | None = None) -> Data:
    xtr, ytr, xte, yte = load_digits_split()
    n = len(xte) if n_eval is None else n_eval
    return Data(torch.tensor(xtr), torch.tensor(ytr), torch.tensor(xte[:n]), torch.tensor(yte[:n]))


def train(model: nn.Module, d: Data, epochs: int, lr: float, pruner: GradualPruner | None = None,
          seed: int = 0) -> nn.Module:
    """Adam on cross-entropy, batches of 32; the pruner steps after every optimizer step."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr)
    model.train()
    for _ in range(epochs):
        for batch in torch.randperm(len(d.xtr), generator=gen).split(32):
            opt.zero_grad()
            F.cross_entropy(model(d.xtr[batch]), d.ytr[batch]).backward()
            opt.step()
            if pruner is not None:
                pruner.step()
    model.eval()
    return model


@torch.no_grad()
def torch_accuracy(model: nn.Module, d: Data) -> float:
    model.eval()
    return float(np.mean(model(d.xte).argmax(1).numpy() == d.yte.numpy()))


def deploy(onnx_path: Path, d: Data, target: str, work: Path, quantize: str = "none", calib: Path | None = None,
           prune: PruneOptions | None = None) -> dict:
    """Build for the target, run the held-out samples there; accuracy from the firmware's outputs."""
    out, meta, g = build(BuildOptions(onnx_path, target=target, quantize=quantize, calib=calib, prune=prune,
                                      out=work / f"build-{onnx_path.stem}"))
    res = run_build(out, [{"input": x[None].numpy()} for x in d.xte])
    pred = np.array([o["output"].argmax() for o in res.outputs])
    elf = meta.get("elf") or {}
    return {"device_acc": float(np.mean(pred == d.yte.numpy())),
            "raw": np.stack([r["output"].reshape(-1) for r in res.raw]),
            "flash": elf.get("model_flash", meta["weight_bytes"]),
            "instructions": int(np.mean(res.instructions)) if res.instructions else None,
            "prune": meta.get("prune"), "quantize": meta["quantize"]}


def sparsity(model: nn.Module, layers: list[str]) -> float:
    mods = dict(model.named_modules())
    zeros = sum(int((mods[n].weight == 0).sum()) for n in layers)
    return zeros / sum(mods[n].weight.numel() for n in layers)


def qat_row(name: str, model: nn.Module, d: Data, scheme: str, epochs: int, work: Path, target: str,
            masks_from: list[str] | None = None) -> dict:
    """QAT from a trained float model; masks_from keeps an already pruned model's zeros (fixed masks)."""
    q = prepare_qat(model, scheme, calib=d.xtr[:512])
    pruner = None
    if masks_from:
        s = sparsity(model, masks_from)
        pruner = GradualPruner(q, s, Schedule(0, 0, 1), layers=masks_from)
    train(q, d, epochs, 5e-4, pruner)
    path = export(q, d.xte[:1], work / f"{name}.onnx")
    row = deploy(path, d, target, work)  # edgec build recognizes the scheme from the exported scales
    fake = integer_outputs(q, d.xte).reshape(len(d.xte), -1)
    row["torch_acc"] = float(np.mean(fake.argmax(1) == d.yte.numpy()))
    row["same"] = float(np.mean(np.all(fake == row["raw"], axis=1)))
    if masks_from:
        row["sparsity"] = pruner.sparsity()["total"]
    return row


def run(model_name: str, epochs: int, qat_epochs: int, finetune_epochs: int, n_eval: int | None, target: str,
        sparsities: tuple[float, ...] = (0.7, 0.9), schemes: tuple[str, ...] | None = None,
        work: Path | None = None, log=print) -> list[dict]:
    """Every row of the comparison for one model; each row a dict with name, torch_acc, device_acc, same,
    flash, instructions, sparsity."""
    work = Path(work or tempfile.mkdtemp(prefix="edgec-torch-digits-"))
    work.mkdir(parents=True, exist_ok=True)
    d = digits(n_eval)
    torch.manual_seed(0)
    base = train(MODELS[model_name](), d, epochs, 3e-3)
    float_path = export(base, d.xte[:1], work / "float.onnx")
    calib = work / "calib.npz"  # for PTQ and the re-fit: 128 training images
    np.savez(calib, input=d.xtr[:128].numpy())
    layers = PRUNED[model_name]
    rows = []

    def add(name: str, row: dict) -> None:
        row["name"] = name
        rows.append(row)
        log(f"  {model_name:8s} {name:34s} torch {row.get('torch_acc', float('nan')):.4f}  "
            f"device {row['device_acc']:.4f}")

    row = deploy(float_path, d, target, work)
    row["torch_acc"] = torch_accuracy(base, d)
    add("float", row)
    for scheme in schemes or tuple(SCHEMES):
        add(f"PTQ {scheme}", deploy(float_path, d, target, work, quantize=scheme, calib=calib))
        add(f"QAT {scheme}", qat_row(f"qat_{scheme}", base, d, scheme, qat_epochs, work, target))
    onnx_names = _onnx_layer_names(float_path)
    exclude = [n for n in onnx_names if not any(n.startswith(f"/{layer}/") for layer in layers)]
    for s in sparsities:
        pct = int(round(s * 100))
        row = deploy(float_path, d, target, work,
                     prune=PruneOptions(method="magnitude", sparsity=s, exclude=exclude, refit=True), calib=calib)
        rep = row["prune"]["layers"]
        pruned = [n for n in rep if n not in exclude]
        row["sparsity"] = 1 - sum(rep[n]["nonzero"] for n in pruned) / sum(rep[n]["weights"] for n in pruned)
        add(f"one-shot {pct}% (edgec prune, re-fit)", row)
        for label, sched in (("one-shot", Schedule(0, 0, 1)),
                             ("gradual", Schedule(0, 10, max(1, finetune_epochs * len(d.xtr) // 32 // 20)))):
            model = MODELS[model_name]()
            model.load_state_dict(base.state_dict())
            pruner = GradualPruner(model, s, sched, layers=layers)
            train(model, d, finetune_epochs, 3e-3, pruner, seed=1)
            path = export(model, d.xte[:1], work / f"{label}_{pct}.onnx")
            row = deploy(path, d, target, work)
            row["torch_acc"], row["sparsity"] = torch_accuracy(model, d), pruner.sparsity()["total"]
            add(f"{label} {pct}% + fine-tune", row)
            if label == "gradual" and s == max(sparsities):
                for scheme in [x for x in schemes or tuple(SCHEMES) if x != "qformat"]:
                    add(f"gradual {pct}% + QAT {scheme}",
                        qat_row(f"gradual_{pct}_qat_{scheme}", model, d, scheme, qat_epochs, work, target,
                                masks_from=layers))
    return rows


def _onnx_layer_names(path: Path) -> list[str]:
    import onnx

    return [n.name for n in onnx.load(str(path)).graph.node if n.op_type in ("Conv", "Gemm", "MatMul")]


def table(rows: list[dict], model_name: str) -> str:
    head = (f"| {'model':8s} | {'configuration':34s} | build   | torch acc | device acc | same | {'flash B':>8s} | "
            f"{'instructions':>12s} | sparsity |")
    lines = [head, "|" + "|".join("-" * (len(c)) for c in head.split("|")[1:-1]) + "|"]
    for r in rows:
        torch_acc = f"{100 * r['torch_acc']:9.2f}" if "torch_acc" in r else f"{'-':>9s}"
        same = f"{100 * r['same']:4.0f}" if "same" in r else f"{'-':>4s}"
        sp = f"{100 * r['sparsity']:7.1f}%" if "sparsity" in r else f"{'-':>8s}"
        ins = f"{r['instructions']:12,d}" if r.get("instructions") is not None else f"{'-':>12s}"
        lines.append(f"| {model_name:8s} | {r['name']:34s} | {r['quantize']:7s} | {torch_acc} | "
                     f"{100 * r['device_acc']:10.2f} | {same} | {r['flash']:8,d} | {ins} | {sp} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=sorted(MODELS), default="cnn")
    ap.add_argument("--epochs", type=int, default=30, help="float training epochs")
    ap.add_argument("--qat-epochs", type=int, default=10)
    ap.add_argument("--finetune-epochs", type=int, default=30, help="epochs of fine-tuning while/after pruning")
    ap.add_argument("--eval", type=int, default=None, help="held-out samples to run (default: all 449)")
    ap.add_argument("--target", default="cortex-m7")
    ap.add_argument("--out", type=Path, default=None, help="folder for the ONNX files and builds")
    a = ap.parse_args()
    start = time.perf_counter()
    rows = run(a.model, a.epochs, a.qat_epochs, a.finetune_epochs, a.eval, a.target, work=a.out)
    print(table(rows, a.model))
    print(f"wall time {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
