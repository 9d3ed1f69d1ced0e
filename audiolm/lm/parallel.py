"""The parallel acoustic stage (SoundStorm, Borsos et al. 2023): frames in, the masked codes of one level out.

    ids = frame_ids(spec, codes, semantic)                      # codes [B, Q, T] (MASK where unknown) -> ids [B, T, N]
    hidden = model.features(ids)                                # the one Transformer, bidirectional: [B, T, D]
    logits = level_logits(model, spec, hidden, level)           # [B, T, C]: that level's codes only
    batch = masked_example(spec, semantic, codes, generator)    # a training window, masked as below
    loss, totals = parallel_loss(model, spec, batch)

A frame's input is the sum of the embeddings of its Q codes (each level its own id range, plus a MASK id) and of
its time-aligned semantic id (repeated `ratio` times when semantic ids come at a lower rate; absent for the
acoustic-only baseline), so the conditioning is local by construction and rotary positions serve both streams.
One head row range per level (`StageSpec.target_range`).

Training (SoundStorm): per window, a level q (uniformly, or by `level_weights`: a small budget spends more windows on
level 1, which every later level and the output's content rest on); a prompt prefix of uniform length 0..T-1 stays whole; after
it, a cosine-schedule share cos(pi / 2 * u), u ~ U[0, 1), of the frames at level q is masked (at least one), and
every level above q is masked; the levels below q stay. The loss is the cross-entropy of the masked level-q codes
(each window's mean, averaged over the windows).
Generation (generation/maskgit.py) fills the levels in the same order: level 1 over a few confidence-ranked
iterations, each later level from the finished ones below it.
Shapes: B batch, Q levels, T frames, Ts semantic frames, N = Q (+1 with semantic ids) ids per frame, C codebook size.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from audiolm.lm.loss import LevelTotals
from audiolm.lm.stages import StageSpec
from audiolm.lm.transformer import Transformer


def mask_code(spec: StageSpec) -> int:
    """The code value that stands for "unknown" in codes `[B, Q, T]` (one past the last code)."""
    return spec.codebook_size


def align_semantic(spec: StageSpec, semantic: torch.Tensor, frames: int) -> torch.Tensor:
    """Semantic ids `[B, >= frames / ratio]` -> one per acoustic frame `[B, frames]` (each repeated `ratio` times)."""
    aligned = semantic.repeat_interleave(spec.ratio, dim=1)[:, :frames]
    assert aligned.shape[1] == frames, f"need semantic ids for {frames} acoustic frames, got {semantic.shape[1]} ids"
    return aligned


def frame_ids(spec: StageSpec, codes: torch.Tensor, semantic: torch.Tensor | None) -> torch.Tensor:
    """codes `[B, Q, T]` (values 0..C, C = MASK) and, with `use_semantic`, semantic ids `[B, >= T / ratio]` -> the
    Transformer's input ids `[B, T, N]`: each level in its own range (its MASK id last), the semantic id first."""
    B, Q, T = codes.shape
    assert Q == spec.target_levels, f"the parallel stage reads {spec.target_levels} levels, got codes {tuple(codes.shape)}"
    assert spec.use_semantic == (semantic is not None), "the parallel stage takes semantic ids iff use_semantic"
    offsets = spec.target_offset + torch.arange(Q, device=codes.device) * spec.level_stride  # [Q]
    ids = (codes + offsets[:, None]).transpose(1, 2)  # [B, T, Q]
    if semantic is None:
        return ids
    return torch.cat([align_semantic(spec, semantic, T)[:, :, None], ids], dim=2)  # [B, T, Q + 1]


def level_logits(model: Transformer, spec: StageSpec, hidden: torch.Tensor, level: int) -> torch.Tensor:
    """Hidden states `[..., D]` -> logits over level `level`'s codes `[..., C]` (its rows of the head only)."""
    lo, hi = spec.target_range(level)
    return F.linear(hidden, model.head.weight[lo:hi])


def cosine_share(u: torch.Tensor) -> torch.Tensor:
    """The masking schedule: u in [0, 1) -> the share of frames masked, cos(pi / 2 * u) in (0, 1] (MaskGIT)."""
    return torch.cos(math.pi / 2 * u)


def masked_example(spec: StageSpec, semantic: torch.Tensor | None, codes: torch.Tensor, generator: torch.Generator,
                   level: int | None = None, level_weights: list[float] | tuple[float, ...] = ()) -> dict[str, torch.Tensor]:
    """Training windows (semantic `[B, Ts]` or None, codes `[B, Q, T]`) -> {"inputs" `[B, T, N]` ids, "targets" `[B, T]`
    level-q codes, "mask" `[B, T]` (the masked level-q frames: the loss's), "levels" `[B]` q}; q drawn per window,
    uniformly or in proportion to `level_weights` (Q weights), unless `level` is given. Every draw comes from
    `generator`."""
    B, Q, T = codes.shape
    if level is not None:
        q = torch.full((B,), level, dtype=torch.long)
    elif level_weights:
        assert len(level_weights) == Q, f"need one weight per level ({Q}), got {len(level_weights)}"
        q = torch.multinomial(torch.tensor(level_weights, dtype=torch.double), B, replacement=True, generator=generator)
    else:
        q = torch.randint(0, Q, (B,), generator=generator)
    prompt = torch.randint(0, T, (B, 1), generator=generator)  # frames 0..prompt-1 stay whole
    share = cosine_share(torch.rand(B, 1, generator=generator))
    count = (share * (T - prompt)).ceil().clamp_min(1)  # [B, 1] frames masked at level q
    time = torch.arange(T)
    order = torch.rand(B, T, generator=generator).masked_fill(time < prompt, 2.0).argsort(dim=1).argsort(dim=1)  # rank [B, T]
    masked = order < count  # [B, T]: `count` random frames after the prompt
    levels = torch.arange(Q)[None, :, None]  # [1, Q, 1]
    unknown = (levels > q[:, None, None]) & (time >= prompt)[:, None, :] | (levels == q[:, None, None]) & masked[:, None, :]
    inputs = codes.masked_fill(unknown.to(codes.device), mask_code(spec))  # [B, Q, T]
    targets = codes.gather(1, q[:, None, None].expand(B, 1, T).to(codes.device))[:, 0]  # [B, T]
    return {"inputs": frame_ids(spec, inputs, semantic), "targets": targets, "mask": masked.to(codes.device),
            "levels": q.to(codes.device)}


def parallel_loss(model: nn.Module, spec: StageSpec, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, LevelTotals]:
    """The cross-entropy of the masked level-q codes of `batch` (from `masked_example`), averaged per window then over
    the windows (so that every window weighs the same however many frames it masks: micro-batches and processes
    then average to the whole batch's loss exactly), and per-level totals.

    A bare Transformer applies only level q's head rows, at the masked frames only; a wrapped model (DDP, whose
    forward synchronises gradients; FSDP, whose forward gathers the weights) gives all logits."""
    mask = batch["mask"]  # [B, T]
    levels = batch["levels"][:, None].expand_as(mask)[mask]  # [M]
    targets = batch["targets"][mask]  # [M]
    weights = (1.0 / mask.sum(dim=1).clamp_min(1))[:, None].expand_as(mask)[mask]  # [M]: 1 / the window's masked frames
    if type(model) is Transformer:  # not FSDP's subclass of it
        hidden, weight = model.features(batch["inputs"])[mask], model.head.weight  # [M, D]
    else:
        hidden, weight = model(batch["inputs"])[mask], None  # [M, V]
    total, totals = hidden.new_zeros(()), LevelTotals()
    for level in levels.unique().tolist():
        picked = levels == level
        lo, hi = spec.target_range(level)
        logits = hidden[picked] @ weight[lo:hi].T if weight is not None else hidden[picked, lo:hi]  # [m, C]
        ce = F.cross_entropy(logits.float(), targets[picked], reduction="none")  # [m]
        total = total + (ce * weights[picked]).sum()
        totals.ce[level], totals.count[level] = ce.sum().item(), int(picked.sum())
        totals.correct[level] = int((logits.argmax(-1) == targets[picked]).sum())
    return total / max(mask.shape[0], 1), totals
