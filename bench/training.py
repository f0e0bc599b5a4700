"""Benchmark: training-aware compression with edgec.torch on scikit-learn's digits, deployed to a Cortex-M7.

    .venv/bin/python bench/training.py [--models convnet,cnn] [--target cortex-m7] [--epochs 30] [--qat-epochs 10]
                                       [--finetune-epochs 15]

For the user's ConvNet (8x8 input) and a slightly larger BatchNorm CNN (examples/torch_digits.py): float, PTQ
(edgec build --quantize SCHEME --calib, 128 training images) against QAT (edgec.torch.prepare_qat) for int8, int4,
Q-format q7 and 16x8 (int16 activations); one-shot pruning (edgec prune magnitude + least-squares re-fit, no
training), one-shot pruning + fine-tuning, gradual pruning with fine-tuning (edgec.torch.GradualPruner) at 70% and
90%; gradual 90% + QAT (int8, int4, int16).

Every row is exported to ONNX, built for the target and run there on the 449 held-out images: 'device acc' is
measured from the firmware's outputs in QEMU, 'torch acc' in PyTorch (for QAT rows: the fake-quant model in eval
mode). 'same' is the share of images whose integer outputs (int8; 16x8: int16) are bit-identical between the
firmware and PyTorch. Flash is the model's (weights and code, from the link map), instructions are per inference
(QEMU -icount). Sparsity is over the pruned layers (all but the first; for the CNN also all but the last)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))

import torch_digits  # noqa: E402


def checks(rows: list[dict], model: str) -> list[str]:
    """The issue's done-means, as measured."""
    by = {r["name"]: r for r in rows}
    base = by["float"]["device_acc"]
    out = []
    for name in ("QAT int4", "gradual 90% + fine-tune"):
        if name in by:
            drop = 100 * (base - by[name]["device_acc"])
            out.append(f"{model}: {name} loses {drop:.2f} points against float (limit 1): "
                       f"{'ok' if drop <= 1.0 else 'MISSED'}")
    qat = [r for r in rows if "QAT" in r["name"]]
    equal = all(r["device_acc"] == r["torch_acc"] and r["same"] == 1.0 for r in qat)
    out.append(f"{model}: QEMU accuracy == PyTorch fake-quant accuracy, all integer outputs identical, in "
               f"{len(qat)} QAT rows: {'yes' if equal else 'NO'}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="convnet,cnn")
    ap.add_argument("--target", default="cortex-m7")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--qat-epochs", type=int, default=10)
    ap.add_argument("--finetune-epochs", type=int, default=30)
    ap.add_argument("--out", type=Path, default=None, help="folder for the ONNX files and builds")
    a = ap.parse_args()
    start = time.perf_counter()
    tables, notes = [], []
    for model in a.models.split(","):
        t0 = time.perf_counter()
        rows = torch_digits.run(model, a.epochs, a.qat_epochs, a.finetune_epochs, None, a.target,
                                work=a.out / model if a.out else None, log=lambda *x: print(*x, flush=True))
        tables.append(torch_digits.table(rows, model))
        notes += checks(rows, model)
        print(f"{model}: {time.perf_counter() - t0:.0f} s", flush=True)
    print(f"\ndigits (sklearn, 449 held-out images), target {a.target}, float {a.epochs} epochs, QAT {a.qat_epochs}, "
          f"pruning fine-tune {a.finetune_epochs}")
    for t in tables:
        print(t)
    for n in notes:
        print(n)
    print(f"wall time {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
