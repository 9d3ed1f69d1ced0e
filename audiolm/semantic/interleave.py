"""A finer frame rate from any encoder without retraining it: run it on copies of the input shifted by a
fraction of its hop and interleave the frames.

    encoder = Interleaved(ssl_encoder, factor=2)     # a 25 Hz encoder -> 50 Hz features
    features = encoder.layer_features(wav, layer)   # [B, T * 2 (about), D]

Copy i drops the first i * hop / factor samples, so its frame t sits at (t + i / factor) hops; frame
t * factor + i of the result is copy i's frame t. Each copy is a normal input to the encoder, so every
layer stays in the distribution it was trained on; for a convolutional front end this equals running its
last strided layer at a finer stride. Costs `factor` encoder passes. Phones of synthetic speech last
2-3 frames at 25 Hz, and ABX on them (benchmarks/bench_semantic.py) prefers 50 Hz frames.
"""

from __future__ import annotations

import torch
from torch import nn

from audiolm.semantic.encoder import FeatureEncoder, check_layer


class Interleaved(nn.Module):
    def __init__(self, inner: FeatureEncoder, factor: int = 2) -> None:
        super().__init__()
        hop = inner.sample_rate / inner.frame_rate
        if factor < 1 or hop != int(hop) or int(hop) % factor:
            raise ValueError(f"factor {factor} must divide the encoder's hop of {hop:g} samples")
        self.inner = inner
        self.factor = factor
        self.shift = int(hop) // factor
        self.sample_rate = inner.sample_rate
        self.frame_rate = inner.frame_rate * factor
        self.num_layers = inner.num_layers

    def _interleave(self, runs: list[torch.Tensor]) -> torch.Tensor:
        """Runs `[B, T_i, D]` (T_0 >= T_1 >= ... >= T_0 - 1) -> `[B, sum T_i, D]` in time order."""
        longest = runs[0].shape[1]
        padded = [torch.nn.functional.pad(r, (0, 0, 0, longest - r.shape[1])) for r in runs]  # padding lands past the end
        stacked = torch.stack(padded, dim=2).flatten(1, 2)  # [B, T_0 * factor, D]
        return stacked[:, : sum(r.shape[1] for r in runs)]

    def truncated(self, layer: int) -> Interleaved:
        """The same with the inner encoder cut after `layer` (what a tokenizer on `layer` needs)."""
        return Interleaved(self.inner.truncated(layer), self.factor)

    def _shifted(self, wav: torch.Tensor) -> list[torch.Tensor]:
        return [wav[..., i * self.shift:] for i in range(self.factor)]

    def layer_features(self, wav: torch.Tensor, layer: int) -> torch.Tensor:
        check_layer(self, layer)
        return self._interleave([self.inner.layer_features(w, layer) for w in self._shifted(wav)])

    def hidden_states(self, wav: torch.Tensor, max_layer: int | None = None) -> list[torch.Tensor]:
        """Layers 0..max_layer, as `SSLEncoder.hidden_states` (encoders without it: one call per layer)."""
        max_layer = self.num_layers if max_layer is None else max_layer
        if hasattr(self.inner, "hidden_states"):
            per_run = [self.inner.hidden_states(w, max_layer=max_layer) for w in self._shifted(wav)]
        else:
            per_run = [[self.inner.layer_features(w, layer) for layer in range(max_layer + 1)] for w in self._shifted(wav)]
        return [self._interleave([states[layer] for states in per_run]) for layer in range(max_layer + 1)]
