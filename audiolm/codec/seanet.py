"""SEANet encoder and decoder (SoundStream): causal strided convolutions with residual units.

Encoder: conv(7) -> C, then per stride s a block of residual units (dilations 1, 3, 9) at the block's
channels followed by ELU and a strided conv(2s) that doubles the channels; ELU, conv(3) -> D.
Decoder: the mirror image with transposed convolutions. ELU activations, no normalisation layers.
"""

from __future__ import annotations

import torch
from torch import nn

from audiolm.codec.conv import CausalConv1d, CausalConvTranspose1d

DILATIONS = (1, 3, 9)


class ResidualUnit(nn.Module):
    def __init__(self, channels: int, dilation: int, kernel_size: int = 7) -> None:
        super().__init__()
        hidden = max(1, channels // 2)
        self.block = nn.Sequential(
            nn.ELU(), CausalConv1d(channels, hidden, kernel_size, dilation=dilation),
            nn.ELU(), CausalConv1d(hidden, channels, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class SEANetEncoder(nn.Module):
    """`wav [B, 1, L]` -> latents `[B, D, L / prod(strides)]`."""

    def __init__(self, channels: int = 32, dim: int = 128, strides: tuple[int, ...] = (2, 4, 5, 8), residual_units: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = [CausalConv1d(1, channels, 7)]
        c = channels
        for stride in strides:
            layers += [ResidualUnit(c, d) for d in DILATIONS[:residual_units]]
            layers += [nn.ELU(), CausalConv1d(c, 2 * c, 2 * stride, stride=stride)]
            c *= 2
        layers += [nn.ELU(), CausalConv1d(c, dim, 3)]
        self.net = nn.Sequential(*layers)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        return self.net(wav)


class SEANetDecoder(nn.Module):
    """latents `[B, D, T]` -> `wav [B, 1, T * prod(strides)]` through transposed convolutions."""

    def __init__(self, channels: int = 32, dim: int = 128, strides: tuple[int, ...] = (2, 4, 5, 8), residual_units: int = 3) -> None:
        super().__init__()
        c = channels * 2 ** len(strides)
        layers: list[nn.Module] = [CausalConv1d(dim, c, 7)]
        for stride in reversed(strides):
            layers += [nn.ELU(), CausalConvTranspose1d(c, c // 2, 2 * stride, stride)]
            c //= 2
            layers += [ResidualUnit(c, d) for d in DILATIONS[:residual_units]]
        layers += [nn.ELU(), CausalConv1d(c, 1, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        return self.net(latents)
