"""Residual vector quantizer with quantizer dropout (SoundStream).

Shapes: latents `x [B, D, T]`; codes `[B, K, T]` int64 (K levels, level 0 first); per-example level counts `[B]`.

Level k quantizes the residual `x - sum_{j<k} q_j`. Quantizer dropout: `forward` takes the number of levels each
example uses (the training sampler draws it, so the random state lives outside this module). For an example with
n_q levels:
- `quantized` is the sum of its first n_q levels only (straight-through: the gradient goes to `x` unchanged);
- `codes` still holds all K levels: the residual chain runs to the end, so `codes` are the full-rate codes, equal to
  `encode(x)` in eval mode whatever n_q is, and `codes[:, :n]` always decodes to the n-level reconstruction;
- levels k >= n_q get a mask that keeps the example out of their EMA statistics, k-means init, dead-code restart
  candidates and commitment loss.
Every level runs for every example, so in distributed training all ranks take part in every level's collectives.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from audiolm.quantization.vq import VectorQuantizer


@dataclass
class QuantizerOutput:
    """The result of `ResidualVQ.forward`.

    quantized: `[B, D, T]` sum of each example's first n_q levels, straight-through.
    codes: `[B, K, T]` int64, all K levels (also those beyond an example's n_q; see the module docstring).
    commit_loss: scalar, mean over the levels that at least one example uses of each level's commitment loss
        (mean squared error between its residual and its codes over the examples that use it). The residual is
        `x - sum_{j<k} q_j.detach()`, so every level's term reaches `x`.
    num_quantizers: `[B]` int64, the levels each example used.
    num_restarted: dead codes restarted by this forward over all levels (0 in eval mode).
    first: `[B, D, T]` the first level's codes alone, straight-through (gradients reach `x`): what a loss on the
        first level alone (semantic distillation) reads.
    """

    quantized: torch.Tensor
    codes: torch.Tensor
    commit_loss: torch.Tensor
    num_quantizers: torch.Tensor
    num_restarted: int = 0
    first: torch.Tensor | None = None


class ResidualVQ(nn.Module):
    """`num_quantizers` `VectorQuantizer`s of `codebook_size` codes on the successive residuals of `[B, D, T]` latents.

    `vq_kwargs` go to every `VectorQuantizer` (decay, epsilon, threshold_dead, kmeans_iters, seed); level k gets
    `seed + k` so that the levels make different random choices.
    """

    def __init__(self, dim: int, num_quantizers: int, codebook_size: int, **vq_kwargs: float | int) -> None:
        super().__init__()
        if num_quantizers < 1:
            raise ValueError(f"num_quantizers must be positive, got {num_quantizers}")
        seed = int(vq_kwargs.pop("seed", 0))
        self.dim = dim
        self.num_quantizers = num_quantizers
        self.codebook_size = codebook_size
        self.layers = nn.ModuleList(
            VectorQuantizer(dim, codebook_size, seed=seed + k, **vq_kwargs) for k in range(num_quantizers)  # type: ignore[arg-type]
        )

    def _levels_per_example(self, num_quantizers: torch.Tensor | int | None, batch: int, device: torch.device) -> torch.Tensor:
        """`None` (all levels), an int, or `[B]` ints -> `[B]` int64, each in [1, K]."""
        if num_quantizers is None:
            num_quantizers = self.num_quantizers
        if isinstance(num_quantizers, int):
            levels = torch.full((batch,), num_quantizers, dtype=torch.long, device=device)
        else:
            assert num_quantizers.shape == (batch,), f"num_quantizers must be [B] = [{batch}], got {tuple(num_quantizers.shape)}"
            levels = num_quantizers.to(device=device, dtype=torch.long)
        if levels.numel() and not (1 <= int(levels.min()) and int(levels.max()) <= self.num_quantizers):
            raise ValueError(f"num_quantizers must be in [1, {self.num_quantizers}], got {levels.tolist()}")
        return levels

    def forward(self, x: torch.Tensor, num_quantizers: torch.Tensor | int | None = None) -> QuantizerOutput:
        """Quantize `x [B, D, T]` with `num_quantizers` levels per example (`[B]`, one int for all, or None for all K).

        In training mode each level's codebook is updated from the examples that use it.
        """
        assert x.ndim == 3 and x.shape[1] == self.dim, f"expected [B, {self.dim}, T], got {tuple(x.shape)}"
        B, D, T = x.shape
        levels = self._levels_per_example(num_quantizers, B, x.device)  # [B]
        residual = x
        total = torch.zeros_like(x)  # [B, D, T], sum of the used levels' codes
        codes, losses = [], []
        num_restarted = 0
        for k, layer in enumerate(self.layers):
            used = levels > k  # [B]
            out = layer(residual, mask=used[:, None].expand(B, T))
            q = out.quantized.detach()  # [B, D, T]
            if k == 0:
                first = q
            total = total + q * used[:, None, None].to(q.dtype)
            residual = residual - q
            codes.append(out.ids)
            losses.append(out.commit_loss)
            num_restarted += out.num_restarted
        max_levels = int(levels.max()) if B else 1
        return QuantizerOutput(
            quantized=x + (total - x).detach(),
            codes=torch.stack(codes, 1),  # [B, K, T]
            commit_loss=torch.stack(losses[:max_levels]).mean(),
            num_quantizers=levels,
            num_restarted=num_restarted,
            first=x + (first - x).detach(),
        )

    @torch.no_grad()
    def encode(self, x: torch.Tensor, num_quantizers: int | None = None) -> torch.Tensor:
        """Latents `[B, D, T]` -> codes `[B, K', T]` of the first K' = num_quantizers (default K) levels."""
        assert x.ndim == 3 and x.shape[1] == self.dim, f"expected [B, {self.dim}, T], got {tuple(x.shape)}"
        count = self.num_quantizers if num_quantizers is None else num_quantizers
        if not 1 <= count <= self.num_quantizers:
            raise ValueError(f"num_quantizers must be in [1, {self.num_quantizers}], got {count}")
        residual = x
        codes = []
        for layer in self.layers[:count]:
            ids = layer.encode(residual)  # [B, T]
            residual = residual - layer.decode(ids).to(residual.dtype)
            codes.append(ids)
        return torch.stack(codes, 1)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes `[B, K', T]` (K' <= K, the first K' levels) -> latents `[B, D, T]`, the sum of the K' levels."""
        assert codes.ndim == 3 and 1 <= codes.shape[1] <= self.num_quantizers, (
            f"expected codes [B, K' <= {self.num_quantizers}, T], got {tuple(codes.shape)}"
        )
        return sum(layer.decode(codes[:, k]) for k, layer in enumerate(self.layers[: codes.shape[1]]))  # type: ignore[return-value]

    def codebook_stats(self, codes: torch.Tensor) -> list[dict[str, float]]:
        """Per level of `codes [B, K', T]`: `usage` (fraction of the codebook used) and `perplexity` (exp of the
        entropy of the code histogram, between 1 and codebook_size). Negative ids are ignored; a level with no ids
        gets 0 for both."""
        assert codes.ndim == 3, f"expected codes [B, K, T], got {tuple(codes.shape)}"
        stats = []
        for k in range(codes.shape[1]):
            ids = codes[:, k].reshape(-1)
            ids = ids[ids >= 0]
            if ids.numel() == 0:
                stats.append({"usage": 0.0, "perplexity": 0.0})
                continue
            histogram = torch.bincount(ids, minlength=self.codebook_size).double()
            probs = histogram[histogram > 0] / histogram.sum()
            entropy = float(-(probs * probs.log()).sum())
            stats.append({"usage": float((histogram > 0).sum()) / self.codebook_size, "perplexity": math.exp(entropy)})
        return stats
