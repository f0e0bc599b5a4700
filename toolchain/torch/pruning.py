"""Gradual pruning during training (Zhu & Gupta): the sparsity follows edgec.prune.schedule
s_t = s_f + (s_i - s_f) (1 - (t - t0) / (n dt))^3, recomputed every dt steps from t0 to t0 + n dt; between those
steps the masks are fixed (masked gradients, and the weights re-masked after every optimizer step)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.fx as fx
from torch import nn

from ..errors import EdgecError
from ..prune import parse_pattern, schedule
from .qat import QLayer

STRUCTURES = ("unstructured", "filter", "N:M (e.g. 2:4)")
CRITERIA = ("magnitude", "taylor")


@dataclass(frozen=True)
class Schedule:
    """Pruning steps at t0, t0 + dt, ..., t0 + n dt (t counts optimizer steps from 0); n = 0 is one-shot at t0."""

    t0: int = 0
    n: int = 10
    dt: int = 100

    def sparsity(self, t: int, s_initial: float, s_final: float) -> float:
        """The target sparsity in force after step t (0 before t0)."""
        if t < self.t0:
            return 0.0
        if self.n == 0:
            return s_final
        k = min((t - self.t0) // self.dt, self.n)
        return schedule(self.t0 + k * self.dt, self.n * self.dt, s_initial, s_final, self.t0)

    def is_pruning_step(self, t: int) -> bool:
        return t >= self.t0 and (t - self.t0) % self.dt == 0 and (t - self.t0) // self.dt <= self.n

    @property
    def end(self) -> int:
        return self.t0 + self.n * self.dt


def _batchnorm_after(model: nn.Module) -> dict[str, nn.BatchNorm2d]:
    """Conv name -> the BatchNorm2d that alone consumes its output (for zeroing a pruned filter's channel)."""
    try:
        gm = fx.symbolic_trace(model)
    except Exception:  # noqa: BLE001 - a model fx cannot trace: its BatchNorms are not found, nothing else changes
        return {}
    mods = dict(gm.named_modules())
    found = {}
    for node in gm.graph.nodes:
        users = list(node.users)
        if (node.op == "call_module" and isinstance(mods.get(node.target), nn.Conv2d) and len(users) == 1
                and users[0].op == "call_module" and isinstance(mods.get(users[0].target), nn.BatchNorm2d)):
            found[node.target] = mods[users[0].target]
    return found


class GradualPruner:
    """Prune the weights of `model`'s Conv2d/Linear layers to `final_sparsity` along `schedule`.

    structure: "unstructured" (single weights), "filter" (whole output channels, with their bias and BatchNorm
    entries, so the channel is exactly zero and can be removed), or "N:M" (at most N of every M consecutive weights
    along the input axis; the final sparsity is then 1 - N/M). criterion: "magnitude" (|w|, filters by L2 norm) or
    "taylor" (first-order Taylor |w * dL/dw|, summed over the steps since the last pruning step).
    layers: module names to prune; by default every Conv2d/Linear except the first and the last (as edgec prune).

    Call step() after every optimizer.step()."""

    def __init__(self, model: nn.Module, final_sparsity: float, schedule: Schedule | None = None,
                 structure: str = "unstructured", criterion: str = "magnitude", initial_sparsity: float = 0.0,
                 layers: list[str] | None = None) -> None:
        self.schedule = schedule or Schedule()
        self.nm = None
        if ":" in structure:
            self.nm = parse_pattern(structure)
            final_sparsity = 1.0 - self.nm[0] / self.nm[1]
        elif structure not in ("unstructured", "filter"):
            raise EdgecError(f"edgec.torch: pruning structure '{structure}': choose one of {', '.join(STRUCTURES)}")
        if criterion not in CRITERIA:
            raise EdgecError(f"edgec.torch: pruning criterion '{criterion}': choose one of {', '.join(CRITERIA)}")
        for s, what in ((final_sparsity, "final_sparsity"), (initial_sparsity, "initial_sparsity")):
            if not 0.0 <= s < 1.0:
                raise EdgecError(f"edgec.torch: {what} {s}: a sparsity must be in [0, 1)")
        if self.schedule.dt <= 0 or self.schedule.n < 0:
            raise EdgecError(f"edgec.torch: schedule {self.schedule}: need dt > 0 and n >= 0")
        self.structure, self.criterion = structure, criterion
        self.s_final, self.s_initial = final_sparsity, initial_sparsity
        # a prepared (QAT) model's layers are named as in the float model
        source = {id(m.layer): m.source for m in model.modules() if isinstance(m, QLayer)}
        weighted = [(source.get(id(m), n), m) for n, m in model.named_modules()
                    if isinstance(m, (nn.Conv2d, nn.Linear))]
        if layers is None:
            chosen = weighted[1:-1]
        else:
            known = dict(weighted)
            unknown = sorted(set(layers) - set(known))
            if unknown:
                raise EdgecError(f"edgec.torch: layers {', '.join(unknown)} are not Conv2d/Linear modules of the "
                                 f"model; those are: {', '.join(known)}")
            chosen = [(n, known[n]) for n in layers]
        if not chosen:
            raise EdgecError("edgec.torch: no layer to prune (give layers=[...])")
        self.layers: dict[str, nn.Module] = dict(chosen)
        self.bn = {}
        if structure == "filter":
            self.bn = {source.get(id(m.layer), n): m.bn for n, m in model.named_modules()
                       if isinstance(m, QLayer) and m.bn is not None} or _batchnorm_after(model)
        # weights that are already exactly zero (a model pruned before) count as pruned
        self.masks = {n: m.weight.detach() != 0 for n, m in self.layers.items()}
        self.scores = {n: torch.zeros_like(m.weight) for n, m in self.layers.items()}
        self.t = 0
        for name, m in self.layers.items():
            m.weight.register_hook(lambda g, name=name: g * self.masks[name])

    def current_sparsity(self) -> float:
        return self.schedule.sparsity(self.t - 1, self.s_initial, self.s_final) if self.t else 0.0

    def _score(self, name: str, m: nn.Module) -> torch.Tensor:
        w = m.weight.detach()
        return self.scores[name].clone() if self.criterion == "taylor" else w.abs()

    def _mask(self, score: torch.Tensor, s: float, old: torch.Tensor) -> torch.Tensor:
        score = torch.where(old, score, torch.full_like(score, -1.0))  # what is pruned stays pruned
        if self.structure == "filter":
            per = score.reshape(score.shape[0], -1)
            per = per.norm(dim=1) if self.criterion == "magnitude" else per.sum(dim=1)
            per = torch.where(old.reshape(old.shape[0], -1).any(dim=1), per, torch.full_like(per, -1.0))
            k = min(int(math.floor(s * score.shape[0])), score.shape[0] - 1)
            keep = torch.ones(score.shape[0], dtype=torch.bool)
            keep[torch.argsort(per, stable=True)[:k]] = False
            return keep.reshape((-1,) + (1,) * (score.dim() - 1)).expand_as(score).clone()
        candidates = torch.ones_like(old)
        if self.nm is not None:
            candidates = ~self._nm_keep(score)
        k = int(math.floor(s * score.numel()))
        order = torch.argsort(torch.where(candidates, score, torch.full_like(score, math.inf)).flatten(), stable=True)
        mask = torch.ones(score.numel(), dtype=torch.bool)
        mask[order[:k]] = False
        return mask.reshape(score.shape)

    def _nm_keep(self, score: torch.Tensor) -> torch.Tensor:
        """The N largest of every M consecutive scores along the input axis (axis 1), as edgec.prune.nm_masks."""
        n_keep, m = self.nm
        k = score.shape[1]
        if k % m:
            raise EdgecError(f"edgec.torch: N:M {n_keep}:{m} does not divide the {k} inputs of a layer of shape "
                             f"{tuple(score.shape)}; leave it out of layers=[...]")
        moved = score.movedim(1, -1)
        groups = moved.reshape(moved.shape[:-1] + (k // m, m))
        rank = torch.argsort(torch.argsort(-groups, dim=-1, stable=True), dim=-1, stable=True)
        return (rank < n_keep).reshape(moved.shape).movedim(-1, 1)

    @torch.no_grad()
    def apply(self) -> None:
        """Zero the pruned weights (and, for filters, the channel's bias and BatchNorm scale and shift)."""
        for name, m in self.layers.items():
            mask = self.masks[name]
            m.weight.mul_(mask)
            if self.structure == "filter":
                alive = mask.reshape(mask.shape[0], -1).any(dim=1)
                if m.bias is not None:
                    m.bias.mul_(alive)
                bn = self.bn.get(name)
                if bn is not None:
                    bn.weight.mul_(alive)
                    bn.bias.mul_(alive)

    @torch.no_grad()
    def step(self) -> None:
        """After optimizer.step(): accumulate Taylor scores, prune on a pruning step, re-apply the masks."""
        t = self.t
        self.t += 1
        if self.criterion == "taylor":
            for name, m in self.layers.items():
                if m.weight.grad is not None:
                    self.scores[name] += (m.weight.detach() * m.weight.grad).abs()
        if self.schedule.is_pruning_step(t):
            s = self.schedule.sparsity(t, self.s_initial, self.s_final)
            for name, m in self.layers.items():
                self.masks[name] = self._mask(self._score(name, m), s, self.masks[name])
                self.scores[name].zero_()
        self.apply()

    def sparsity(self) -> dict[str, float]:
        """Share of zero weights per pruned layer, and over all of them ('total')."""
        out, zeros, total = {}, 0, 0
        for name, m in self.layers.items():
            z = int((m.weight == 0).sum())
            out[name] = z / m.weight.numel()
            zeros, total = zeros + z, total + m.weight.numel()
        out["total"] = zeros / total
        return out
