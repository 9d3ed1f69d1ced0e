"""Semantic distillation into the codec's first level (Mimi, Défossez et al. 2024; SpeechTokenizer): while the codec
trains, a linear head reads each frame's first-level code (straight-through, so the gradient reaches the encoder)
and predicts the id a semantic tokenizer gives that frame. The first level then carries what the semantic tokens
carry, so the acoustic stage's hardest step, semantic ids -> level-1 codes, becomes close to a lookup.

    distill = SemanticDistillation(SemanticTokenizer.load(folder), frame_rate=50.0, sample_rate=16000)
    head = distill_head(latent_dim, distill.num_ids)              # trained with the codec
    loss, accuracy = distill.loss(head, first, wav)               # first [B, D, T] (CodecOutput.first), wav [B, 1, L]

The tokenizer runs without gradients on the very crop the codec encodes (augmented or not); its ids come at the
codec's frame rate or a whole fraction of it (each id then repeated). The head is trained with the codec and kept in
its checkpoints, never in the exported codec.
Shapes: B batch, D latent dim, T codec frames, K the tokenizer's ids.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from audiolm.errors import AudiolmError


def distill_head(latent_dim: int, num_ids: int) -> nn.Module:
    """The head: a first-level code `[.., D]` -> logits over the tokenizer's ids `[.., K]`; layer-normalised first,
    so that it reads the code's direction whatever the latents' scale."""
    return nn.Sequential(nn.LayerNorm(latent_dim), nn.Linear(latent_dim, num_ids))


class SemanticDistillation:
    """The targets (a semantic tokenizer, frozen) and the loss; the head is the caller's module (`distill_head`)."""

    def __init__(self, tokenizer: nn.Module, frame_rate: float, sample_rate: int) -> None:
        if tokenizer.sample_rate != sample_rate:
            raise AudiolmError(f"distill_tokenizer: reads {tokenizer.sample_rate} Hz audio, the codec {sample_rate} Hz")
        ratio = frame_rate / tokenizer.frame_rate
        if abs(ratio - round(ratio)) > 1e-6 or round(ratio) < 1:
            raise AudiolmError(f"distill_tokenizer: {tokenizer.frame_rate:g} ids a second do not divide the codec's {frame_rate:g} frames")
        self.tokenizer = tokenizer.eval().requires_grad_(False)
        self.ratio = round(ratio)
        self.num_ids = tokenizer.codebook_size

    def targets(self, wav: torch.Tensor, frames: int) -> torch.Tensor:
        """`wav [B, 1, L]` -> the tokenizer's ids at the codec's frame rate `[B, T']`, T' <= `frames`."""
        with torch.no_grad():
            ids = self.tokenizer.to(wav.device)(wav)  # [B, Ts]
        return ids.clone().repeat_interleave(self.ratio, dim=1)[:, :frames]  # a normal tensor (not an inference one)

    def loss(self, head: nn.Module, first: torch.Tensor, wav: torch.Tensor) -> tuple[torch.Tensor, float]:
        """Cross-entropy of the ids from the first level `first [B, D, T]` of the codec's pass over `wav [B, 1, L]`,
        and the top-1 accuracy."""
        targets = self.targets(wav, first.shape[2])  # [B, T']
        logits = head(first[:, :, : targets.shape[1]].transpose(1, 2))  # [B, T', K]
        loss = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten())
        accuracy = float((logits.argmax(-1) == targets).float().mean()) if targets.numel() else 0.0
        return loss, accuracy
