"""The stage LMs' objective: cross-entropy of each predicted token against its own level's ids only (the softmax
that generation samples from), with sums per level so that training logs and evaluation read the same numbers."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from audiolm.lm.stages import StageSpec
from audiolm.lm.transformer import Transformer


@dataclass
class LevelTotals:
    """Per level of the predicted stream: summed cross-entropy (nats), token count, correct argmax predictions."""

    ce: dict[int, float] = field(default_factory=dict)
    count: dict[int, int] = field(default_factory=dict)
    correct: dict[int, int] = field(default_factory=dict)

    def add(self, other: LevelTotals) -> LevelTotals:
        for level in other.count:
            self.ce[level] = self.ce.get(level, 0.0) + other.ce[level]
            self.count[level] = self.count.get(level, 0) + other.count[level]
            self.correct[level] = self.correct.get(level, 0) + other.correct[level]
        return self

    def mean_ce(self) -> float:
        return sum(self.ce.values()) / max(sum(self.count.values()), 1)

    def logs(self, prefix: str) -> dict[str, float]:
        out = {f"{prefix}/ce": self.mean_ce()}
        for level in sorted(self.count):
            out[f"{prefix}/ce_{level + 1}"] = self.ce[level] / self.count[level]  # later RVQ levels are far less predictable
            out[f"{prefix}/accuracy_{level + 1}"] = self.correct[level] / self.count[level]
        return out


def stage_loss(model: nn.Module, spec: StageSpec, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, LevelTotals]:
    """Mean cross-entropy over the predicted positions of `batch` (from `StageSpec.example`) and per-level totals.

    A bare Transformer applies its head per level to that level's `codebook_size` rows only, at the predicted
    positions only; a wrapped model (DDP, whose forward is what synchronises gradients; FSDP, whose forward gathers
    the weights) gives all logits."""
    mask, positions = batch["mask"], batch.get("positions")  # positions: the aligned coarse stage's (StageSpec.positions)
    targets, levels = batch["targets"][mask], batch["levels"][mask]
    if type(model) is Transformer:  # not FSDP's subclass of it
        hidden, weight = model.features(batch["inputs"], positions=positions)[mask], model.head.weight
    else:
        hidden, weight = model(batch["inputs"], positions=positions)[mask], None
    total, totals = hidden.new_zeros(()), LevelTotals()
    for level in range(spec.target_levels):
        picked = levels == level
        if not picked.any():
            continue
        lo, hi = spec.target_range(level)
        logits = hidden[picked] @ weight[lo:hi].T if weight is not None else hidden[picked, lo:hi]
        level_targets = targets[picked] - lo
        level_loss = F.cross_entropy(logits.float(), level_targets, reduction="sum")
        total = total + level_loss
        totals.ce[level], totals.count[level] = level_loss.item(), int(picked.sum())
        totals.correct[level] = int((logits.argmax(-1) == level_targets).sum())
    return total / max(targets.numel(), 1), totals
