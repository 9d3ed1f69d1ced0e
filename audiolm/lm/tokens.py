"""Codes <-> flat LM tokens: frame by frame, each level with its own id range (AudioLM section III-C).

    tokens = flatten_codes(codes, offset)            # codes [B, K, T] -> tokens [B, T * K]
    codes = unflatten_codes(tokens, K, offset)       # and back

Token of frame t, level k: `offset + k * codebook_size + codes[b, k, t]`, at position `t * K + k`.
"""

from __future__ import annotations

import torch
from einops import rearrange


def level_offsets(num_levels: int, codebook_size: int, offset: int = 0, device: torch.device | None = None) -> torch.Tensor:
    """`[K]`: the first id of each level's range."""
    return offset + torch.arange(num_levels, device=device) * codebook_size


def flatten_codes(codes: torch.Tensor, codebook_size: int, offset: int = 0) -> torch.Tensor:
    """`codes [B, K, T]` (values in 0..codebook_size-1) -> tokens `[B, T * K]`, frame-major."""
    assert codes.dim() == 3, f"expected codes [B, K, T], got {tuple(codes.shape)}"
    shifted = codes + level_offsets(codes.shape[1], codebook_size, offset, codes.device)[:, None]
    return rearrange(shifted, "b k t -> b (t k)")


def unflatten_codes(tokens: torch.Tensor, num_levels: int, codebook_size: int, offset: int = 0) -> torch.Tensor:
    """Inverse of `flatten_codes`: tokens `[B, T * K]` -> codes `[B, K, T]`; ids outside their level's range raise."""
    assert tokens.dim() == 2 and tokens.shape[1] % num_levels == 0, f"expected tokens [B, T * {num_levels}], got {tuple(tokens.shape)}"
    codes = rearrange(tokens, "b (t k) -> b k t", k=num_levels) - level_offsets(num_levels, codebook_size, offset, tokens.device)[:, None]
    if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= codebook_size):
        raise ValueError("tokens fall outside their level's id range")
    return codes
