"""Causal 1-D convolutions: an output frame never depends on later input.

`CausalConv1d` pads on the left by `(kernel - 1) * dilation`, so output sample t sees inputs <= t
(with a stride, output frame t sees inputs < (t + 1) * stride). `CausalConvTranspose1d` trims the
right overhang of a transposed convolution, so output sample n depends on inputs <= n // stride.
Both carry weight normalisation, as in SEANet / EnCodec; `remove_weight_norm` folds it for inference.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import weight_norm


class CausalConv1d(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, dilation: int = 1,
                 groups: int = 1, bias: bool = True, norm: bool = True) -> None:
        super().__init__()
        conv = nn.Conv1d(in_channels, out_channels, kernel_size, stride=stride, dilation=dilation, groups=groups, bias=bias)
        self.conv = weight_norm(conv) if norm else conv
        self.padding = (kernel_size - 1) * dilation - (stride - 1)
        if self.padding < 0:
            raise ValueError(f"kernel {kernel_size} is shorter than stride {stride}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """`[B, C_in, L]` -> `[B, C_out, L // stride]` (L a multiple of the stride)."""
        return self.conv(F.pad(x, (self.padding, 0)))


class CausalConvTranspose1d(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int, norm: bool = True) -> None:
        super().__init__()
        conv = nn.ConvTranspose1d(in_channels, out_channels, kernel_size, stride=stride)
        self.conv = weight_norm(conv) if norm else conv
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """`[B, C_in, T]` -> `[B, C_out, T * stride]`."""
        return self.conv(x)[..., : x.shape[-1] * self.stride]


def remove_weight_norm(module: nn.Module) -> nn.Module:
    """Fold every weight-norm parametrisation into a plain weight (faster inference); returns `module`."""
    for m in module.modules():
        if parametrize.is_parametrized(m, "weight"):
            parametrize.remove_parametrizations(m, "weight", leave_parametrized=True)
    return module
