"""Choosing the next token: temperature, top-k, top-p (nucleus), from a seeded generator.

    ids = sample(logits, Sampling(temperature=0.8, top_k=250), generator)   # logits [B, V] -> ids [B]

Temperature 0 is greedy (argmax), and then no random number is drawn.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(kw_only=True)
class Sampling:
    temperature: float = 1.0
    top_k: int = 0  # 0: no limit
    top_p: float = 1.0  # 1: no limit

    def __post_init__(self) -> None:
        if self.temperature < 0 or self.top_k < 0 or not 0 < self.top_p <= 1:
            raise ValueError("temperature and top_k must be >= 0 and top_p in (0, 1]")


def sample(logits: torch.Tensor, sampling: Sampling, generator: torch.Generator | None = None) -> torch.Tensor:
    """`logits [B, V]` -> ids `[B]` (int64)."""
    return Sampler(sampling, generator, block=1)(logits)


class Sampler:
    """`sample` for a run of steps, cheaper per step: the noise is drawn `block` steps at a time, and uniform noise
    (6x cheaper to draw than exponential), so a step is three small tensor operations without top-k / top-p (on one
    CPU thread those, not the arithmetic, are the cost).

        sampler = Sampler(Sampling(temperature=0.8), generator)
        ids = sampler(logits)                                   # logits [B, V] -> ids [B], V the same each call

    A draw is argmax(logits / temperature + Gumbel noise) over the ids top-k and top-p keep (the Gumbel-max trick:
    the same distribution as softmax then a categorical draw)."""

    def __init__(self, sampling: Sampling, generator: torch.Generator | None = None, block: int = 64) -> None:
        self.sampling, self.generator, self.block = sampling, generator, block
        self.noise: torch.Tensor | None = None  # [block, B, V] Gumbel noise
        self.used = 0

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        sampling = self.sampling
        if sampling.temperature == 0:
            return logits.argmax(dim=-1)
        logits = logits.float() / sampling.temperature
        if sampling.top_k and sampling.top_k < logits.shape[-1]:
            kth = logits.topk(sampling.top_k, dim=-1).values[:, -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        if sampling.top_p < 1:
            sorted_logits, order = logits.sort(dim=-1, descending=True)
            probs = sorted_logits.softmax(dim=-1)
            drop = probs.cumsum(dim=-1) - probs >= sampling.top_p  # keep the smallest set reaching top_p
            logits = logits.scatter(-1, order, sorted_logits.masked_fill(drop, float("-inf")))
        if self.noise is None or self.used == self.block or self.noise.shape[1:] != logits.shape:
            uniform = torch.empty(self.block, *logits.shape, device=logits.device).uniform_(generator=self.generator)
            self.noise = uniform.clamp_min_(torch.finfo(torch.float32).tiny).log_().neg_().log_().neg_()  # -log(-log(U)): Gumbel
            self.used = 0
        self.used += 1
        return (logits + self.noise[self.used - 1]).argmax(dim=-1)
