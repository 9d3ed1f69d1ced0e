"""How likely the semantic LM finds a token sequence: per-token log-probabilities (the softmax over semantic ids, as
generation samples), for perplexity on held-out speech and for minimal pairs."""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from audiolm.lm.stages import StageSpec
from audiolm.lm.transformer import Transformer


@torch.inference_mode()
def semantic_logprobs(model: Transformer, spec: StageSpec, ids: torch.Tensor) -> torch.Tensor:
    """`ids [n]` -> `[n]` log p(s_t | BOS, s_<t); a sequence longer than the stage's window is scored in consecutive
    windows, each starting from BOS (as the LM was trained)."""
    assert spec.stage == "semantic", "semantic_logprobs scores the semantic stage"
    ids = ids.reshape(-1).long()
    lo, hi = spec.target_range(0)
    weight = model.head.weight[lo:hi]
    out = []
    for start in range(0, ids.numel(), spec.window_frames):
        chunk = ids[start:start + spec.window_frames].to(weight.device)
        inputs = torch.cat([torch.full((1,), spec.special, device=chunk.device), chunk[:-1]])[None]
        logits = model.features(inputs)[0] @ weight.T  # [m, Ks]
        out.append(F.log_softmax(logits.float(), dim=-1).gather(1, (chunk - lo)[:, None])[:, 0].cpu())
    return torch.cat(out) if out else torch.zeros(0)


def perplexity(logprobs: list[torch.Tensor]) -> float:
    """exp of the mean negative log-probability over all tokens of all sequences."""
    total = torch.cat(logprobs)
    return math.exp(-total.mean().item())


def unigram_perplexity(train: list[torch.Tensor], test: list[torch.Tensor], vocab: int) -> float:
    """The baseline an LM must beat: token frequencies of `train` (add-one) scored on `test`."""
    counts = torch.bincount(torch.cat(train).long(), minlength=vocab).double() + 1
    logp = (counts / counts.sum()).log()
    return math.exp(-logp[torch.cat(test).long()].mean().item())
