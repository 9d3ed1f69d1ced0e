"""A frame-rate decoder with an inverse-STFT head (Vocos): all the work happens at the codec's frame
rate, and the waveform comes from one inverse FFT per frame, which makes decoding cheap on CPU.

Blocks are ConvNeXt with causal depthwise convolutions, so a frame never sees later frames. The
inverse STFT's frame t spans samples [(t + 1) * hop - n_fft, (t + 1) * hop): the output is aligned
with the input, and a sample is final once the `n_fft // hop - 1` frames after it have arrived
(a streaming latency of `n_fft - hop` samples).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from audiolm.codec.conv import CausalConv1d


class ConvNeXtBlock(nn.Module):
    def __init__(self, dim: int, expansion: int = 3, kernel_size: int = 7) -> None:
        super().__init__()
        self.depthwise = CausalConv1d(dim, dim, kernel_size, groups=dim, norm=False)
        self.norm = nn.LayerNorm(dim)
        self.up = nn.Linear(dim, expansion * dim)
        self.down = nn.Linear(expansion * dim, dim)
        self.scale = nn.Parameter(torch.full((dim,), 0.1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """`[B, D, T]` -> `[B, D, T]`."""
        h = self.depthwise(x).transpose(1, 2)  # [B, T, D]
        h = self.down(F.gelu(self.up(self.norm(h))))
        return x + (self.scale * h).transpose(1, 2)


class CausalISTFT(nn.Module):
    """Complex spectra `[B, n_fft // 2 + 1, T]` -> waveform `[B, 1, T * hop]`, frames ending at (t + 1) * hop."""

    def __init__(self, n_fft: int, hop_length: int) -> None:
        super().__init__()
        if n_fft % hop_length:
            raise ValueError("n_fft must be a multiple of hop_length")
        self.n_fft, self.hop_length = n_fft, hop_length
        self.register_buffer("window", torch.hann_window(n_fft, periodic=True), persistent=False)

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        B, _, T = spec.shape
        frames = torch.fft.irfft(spec, n=self.n_fft, dim=1) * self.window[None, :, None]  # [B, n_fft, T]
        total = (T - 1) * self.hop_length + self.n_fft
        out = F.fold(frames, (1, total), kernel_size=(1, self.n_fft), stride=(1, self.hop_length))[:, 0, 0]  # [B, total]
        envelope = F.fold(self.window.square()[None, :, None].expand(1, -1, T), (1, total),
                          kernel_size=(1, self.n_fft), stride=(1, self.hop_length))[:, 0, 0]
        out = out / envelope.clamp_min(1e-3)
        return out[:, self.n_fft - self.hop_length:].unsqueeze(1)  # drop the samples before time 0


class VocosDecoder(nn.Module):
    """latents `[B, D, T]` -> `wav [B, 1, T * hop_length]` via ConvNeXt blocks and an inverse STFT."""

    def __init__(self, latent_dim: int = 128, dim: int = 384, layers: int = 8, hop_length: int = 320, n_fft: int = 1280) -> None:
        super().__init__()
        self.embed = CausalConv1d(latent_dim, dim, 7, norm=False)
        self.norm = nn.LayerNorm(dim)
        self.blocks = nn.ModuleList(ConvNeXtBlock(dim) for _ in range(layers))
        self.final_norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, n_fft + 2)
        self.istft = CausalISTFT(n_fft, hop_length)

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        x = self.embed(latents)
        x = self.norm(x.transpose(1, 2)).transpose(1, 2)
        for block in self.blocks:
            x = block(x)
        h = self.head(self.final_norm(x.transpose(1, 2))).transpose(1, 2)  # [B, n_fft + 2, T]
        log_magnitude, phase = h.chunk(2, dim=1)
        magnitude = torch.exp(log_magnitude).clamp(max=1e2)
        spec = torch.polar(magnitude, phase)  # [B, n_fft // 2 + 1, T] complex
        return self.istft(spec)
