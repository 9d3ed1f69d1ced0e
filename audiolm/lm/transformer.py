"""The one decoder-only Transformer of the three stages, with a KV cache for generation.

    model = Transformer(TransformerConfig(vocab_size=V, dim=256, num_layers=4, num_heads=8))
    logits = model(tokens)                          # tokens [B, S] -> logits [B, S, V] (training: causal)
    cache = model.new_cache(batch=B, max_len=S_max)
    logits = model(prefix, cache)                   # prefill: fills cache positions 0..P-1
    logits = model(next_token[:, None], cache)      # one step: position P, attends to 0..P
    logits = model(prefix, cache, positions=p)      # explicit rotary positions p [P] (the coarse stage's aligned ones);
                                                    # later steps sit at p[-1] + 1, p[-1] + 2, .. (cache.offset)
    encoder = Transformer(TransformerConfig(vocab_size=V, causal=False))
    logits = encoder(frames)                        # frames [B, S, N] -> [B, S, V]: N ids per position, embeddings summed,
                                                    # every position attends to every other (no cache)

Pre-norm blocks (LayerNorm), rotary positions (so attention depends on relative offsets only: a window
generated at any offset sees what training saw), `scaled_dot_product_attention` (flash / memory-efficient
kernels on GPU), GELU (tanh) MLP. Generation takes one small step per token, so the decode path keeps the
number of tensor operations low (functional calls, one rotary call for q and k): on one CPU thread a step
costs about 3 ms at dim 256, depth 4; generation on the CPU takes its steps through the same arithmetic compiled
into one call (fused_step.py), about 1.4 ms (benchmarks/bench_generate.py).
`causal=False` (the parallel acoustic stage, lm/parallel.py) only drops the attention mask: the same blocks and
weights, no cache.
Shapes: B batch, S sequence, D dim, H heads, V vocabulary, N ids per position.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass(kw_only=True)
class TransformerConfig:
    vocab_size: int = 0  # set from the stage's token layout
    dim: int = 256
    num_layers: int = 4
    num_heads: int = 8
    ff_mult: float = 4.0
    dropout: float = 0.0
    max_seq_len: int = 8192  # longest sequence (rotary table)
    rope_base: float = 10000.0
    causal: bool = True  # False: bidirectional attention (the parallel stage), without a KV cache
    tie_embeddings: bool = False  # the head's rows are the input embeddings (half the weights where the vocabulary is large)

    def __post_init__(self) -> None:
        if self.dim % self.num_heads or (self.dim // self.num_heads) % 2:
            raise ValueError("dim must be divisible by num_heads, with an even head dimension")
        if self.num_layers < 1 or self.max_seq_len < 1:
            raise ValueError("need at least one layer and a positive max_seq_len")


class KVCache:
    """Keys and values of every layer for the tokens 0..length-1: `keys`, `values` `[num_layers, B, H, max_len, D / H]`,
    preallocated (`keys[layer]` is one layer's). The next token's rotary position is `length + offset` (offset 0 unless
    a chunk came with explicit positions)."""

    def __init__(self, config: TransformerConfig, batch: int, max_len: int, device: torch.device, dtype: torch.dtype) -> None:
        shape = (config.num_layers, batch, config.num_heads, max_len, config.dim // config.num_heads)
        self.keys = torch.zeros(shape, device=device, dtype=dtype)
        self.values = torch.zeros(shape, device=device, dtype=dtype)
        self.max_len = max_len
        self.length = 0
        self.offset = 0

    def reset(self) -> None:
        self.length = self.offset = 0


def rotate(x: torch.Tensor, rotation: torch.Tensor) -> torch.Tensor:
    """Rotary embedding of `x [..., S, Dh]`: each pair of channels (2i, 2i+1), read as a complex number, is
    multiplied by `rotation [S, Dh / 2]` (or `[B, 1, S, Dh / 2]`: unit complex numbers e^(i * position * frequency_i))."""
    pairs = torch.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2))  # [..., S, Dh / 2]
    return torch.view_as_real(pairs * rotation).flatten(-2).type_as(x)


class Block(nn.Module):
    """Pre-norm attention then MLP, each added back. The forward calls the functional ops on the parameters
    (no sub-module calls): a decode step is dominated by per-call overhead, not by arithmetic. The input
    projections are stored `[in, out]` (`x @ w`): one-token products run faster that way on CPU."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        hidden = int(config.ff_mult * config.dim)
        self.num_heads = config.num_heads
        self.dropout = config.dropout
        self.causal = config.causal
        self.attention_norm = nn.LayerNorm(config.dim, bias=False)
        self.qkv = nn.Parameter(torch.randn(config.dim, 3 * config.dim) * 0.02)  # [D, 3D]
        self.out = nn.Linear(config.dim, config.dim, bias=False)
        self.mlp_norm = nn.LayerNorm(config.dim, bias=False)
        self.up = nn.Parameter(torch.randn(config.dim, hidden) * 0.02)  # [D, 4D]
        self.down = nn.Linear(hidden, config.dim, bias=False)

    def attention(self, x: torch.Tensor, rotation: torch.Tensor, cache: KVCache | None, layer: int) -> torch.Tensor:
        B, S, D = x.shape
        qkv = (x @ self.qkv).view(B, S, 3, self.num_heads, D // self.num_heads).permute(2, 0, 3, 1, 4)  # [3, B, H, S, Dh]
        q, k = rotate(qkv[:2], rotation).unbind(0)  # q and k in one call
        v = qkv[2]
        start = 0
        if cache is not None:
            start = cache.length
            cache.keys[layer][:, :, start:start + S] = k
            cache.values[layer][:, :, start:start + S] = v
            k, v = cache.keys[layer][:, :, : start + S], cache.values[layer][:, :, : start + S]
        # no dropout on the attention weights (only on the residual branches): with it, CPU SDPA leaves its fused kernel, 4x slower
        if S == 1:  # one new position sees every cached one
            y = F.scaled_dot_product_attention(q, k, v)
        elif start == 0:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal)
        else:  # a chunk after cached positions: position start+i sees 0..start+i
            mask = torch.ones(S, start + S, dtype=torch.bool, device=x.device).tril(diagonal=start)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return F.linear(y.transpose(1, 2).reshape(B, S, D), self.out.weight)

    def forward(self, x: torch.Tensor, rotation: torch.Tensor, cache: KVCache | None, layer: int) -> torch.Tensor:
        D = x.shape[-1]
        y = self.attention(F.layer_norm(x, (D,), self.attention_norm.weight), rotation, cache, layer)
        x = x + (F.dropout(y, self.dropout) if self.dropout and self.training else y)
        y = F.linear(F.gelu(F.layer_norm(x, (D,), self.mlp_norm.weight) @ self.up, approximate="tanh"), self.down.weight)
        return x + (F.dropout(y, self.dropout) if self.dropout and self.training else y)


class TiedHead(nn.Module):
    """The output head of a Transformer with tied embeddings: `weight` is the embedding table (held without
    registering it again, so the weights are stored once)."""

    def __init__(self, embedding: nn.Embedding) -> None:
        super().__init__()
        self._table = [embedding]  # a list hides the module from registration (state_dict, parameters)

    @property
    def weight(self) -> torch.Tensor:
        return self._table[0].weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight)


class Transformer(nn.Module):
    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        if config.vocab_size < 1:
            raise ValueError("vocab_size must be set (from the stage's token layout)")
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.dim)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.num_layers))
        self.norm = nn.LayerNorm(config.dim, bias=False)
        self.head = TiedHead(self.embedding) if config.tie_embeddings else nn.Linear(config.dim, config.vocab_size, bias=False)
        head_dim = config.dim // config.num_heads
        inverse = 1.0 / config.rope_base ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
        angles = torch.outer(torch.arange(config.max_seq_len, dtype=torch.float64), inverse)  # [S_max, Dh / 2]
        self.register_buffer("rotation", torch.polar(torch.ones_like(angles), angles).to(torch.complex64), persistent=False)
        self.apply(self._init)
        for block in self.blocks:  # GPT-2: residual projections scaled by depth
            for linear in (block.out, block.down):
                nn.init.normal_(linear.weight, std=0.02 / math.sqrt(2 * config.num_layers))

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)

    def new_cache(self, batch: int, max_len: int | None = None) -> KVCache:
        if not self.config.causal:
            raise ValueError("a bidirectional Transformer has no KV cache")
        parameter = self.embedding.weight
        return KVCache(self.config, batch, max_len or self.config.max_seq_len, parameter.device, parameter.dtype)

    def forward(self, tokens: torch.Tensor, cache: KVCache | None = None, positions: torch.Tensor | None = None) -> torch.Tensor:
        """`tokens [B, S]` (or `[B, S, N]`: N ids per position, their embeddings summed) -> logits `[B, S, V]`; with
        `cache`, the tokens follow the cached ones and the cache grows by S. `positions`: see `features`."""
        return self.head(self.features(tokens, cache, positions))

    def features(self, tokens: torch.Tensor, cache: KVCache | None = None, positions: torch.Tensor | None = None) -> torch.Tensor:
        """The final hidden states `[B, S, D]` (`head` turns them into logits; training applies it to the
        predicted positions only). The tokens' rotary positions are `positions` (`[S]`, or `[B, S]` without a cache)
        when given, else their index in the sequence (after a cache's tokens: cache.length + cache.offset ..); with a
        cache, explicit positions set its offset so that the next token sits at positions[-1] + 1. Attention stays
        causal in sequence order whatever the positions."""
        B, S = tokens.shape[:2]
        if cache is not None and not self.config.causal:
            raise ValueError("a bidirectional Transformer takes no KV cache")
        start = cache.length if cache is not None else 0
        if start + S > min(cache.max_len if cache is not None else math.inf, self.config.max_seq_len):
            raise ValueError(f"sequence of {start + S} tokens is longer than the cache or max_seq_len")
        if positions is None:
            first = start + (cache.offset if cache is not None else 0)
            if first < 0 or first + S > self.config.max_seq_len:
                raise ValueError(f"positions {first}..{first + S - 1} are outside the rotary table (max_seq_len)")
            rotation = self.rotation[first:first + S]  # [S, Dh / 2]
        else:
            if positions.shape[-1] != S or positions.dim() > (1 if cache is not None else 2):
                raise ValueError(f"positions must be [{S}]{'' if cache is not None else f' or [{B}, {S}]'}, got {tuple(positions.shape)}")
            if positions.min() < 0 or positions.max() >= self.config.max_seq_len:
                raise ValueError(f"positions must be in [0, {self.config.max_seq_len}) (max_seq_len)")
            rotation = self.rotation[positions.to(self.rotation.device)]  # [S, Dh / 2] or [B, S, Dh / 2]
            if rotation.dim() == 3:
                rotation = rotation[:, None]  # [B, 1, S, Dh / 2]: shared by the heads
            if cache is not None:
                cache.offset = int(positions[-1]) + 1 - (start + S)
        x = self.embedding(tokens)  # [B, S, D] (or [B, S, N, D])
        if tokens.dim() == 3:
            x = x.sum(dim=2)  # several ids per position (the parallel stage's frames): [B, S, D]
        for layer, block in enumerate(self.blocks):
            x = block(x, rotation, cache, layer)
        if cache is not None:
            cache.length = start + S
        return self.norm(x)
