"""A one-token decode step of the Transformer as one compiled CPU function (numba), for generation on CPU.

    step = fused_step(model, cache)          # None where it does not apply: GPU, not float32, numba missing
    logits = step(token_ids, lo, hi)         # token_ids [B] in slot cache.length, at rotary position length + offset -> [B, hi - lo]

Why: at the sizes we generate with (dim 256, depth 4) a KV-cached step is 17 matrix-vector products and over a
hundred small tensor operations. On one CPU thread PyTorch spends most of a step's ~3 ms dispatching the small
operations, not computing. This computes the same step (`Transformer.features` with one token, then the head rows
lo..hi) in one call: the products stream each weight row once for the whole batch and the rest is a few loops
(1.3-1.5 ms a step at 400 cached positions, 2.3-2.6x faster; benchmarks/bench_generate.py measures both paths).
The prefill (many tokens at once) stays in PyTorch, where it is a matrix product. numba compiles the kernel on its
first use for a given depth (about 8 s) and caches it on disk (`cache=True`).
Build the step after the prefill and then step only through it: it keeps a copy of the keys laid out by channel
(so attention scores for all positions come from one vectorised loop), and writes every new key and value into
both that copy and the cache.
Shapes: B batch, D dim, H heads, Dh = D / H, F the MLP's hidden size, N layers, M the cache's max_len.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable

import numpy as np
import torch

from audiolm.lm.transformer import KVCache, Transformer

try:
    import numba
except ImportError:  # numba is a dependency; should it not import, generation takes PyTorch's step
    numba = None

LAYER_NORM_EPS = 1e-5  # F.layer_norm's default, as the Transformer uses it


def available() -> bool:
    return numba is not None


def fused_step(model: Transformer, cache: KVCache) -> Callable[[torch.Tensor, int, int], torch.Tensor] | None:
    """The fused decode step for `model` writing into `cache`, or None where it does not apply (weights not float32
    on the CPU, numba not importable, gradients wanted, or the AUDIOLM_FUSED_STEP=0 environment switch)."""
    weight = model.embedding.weight
    if (numba is None or os.environ.get("AUDIOLM_FUSED_STEP", "1") == "0" or weight.device.type != "cpu"
            or weight.dtype != torch.float32 or torch.is_grad_enabled() or model.training):
        return None
    blocks = model.blocks
    array = lambda tensor: np.ascontiguousarray(tensor.detach().numpy())  # no copy when contiguous
    layers = lambda get: tuple(array(get(block)) for block in blocks)  # one array per layer
    weights = (array(model.embedding.weight),
               layers(lambda b: b.attention_norm.weight),  # [D] each
               layers(lambda b: b.qkv),  # [D, 3D] (in, out)
               layers(lambda b: b.out.weight),  # [D, D] (out, in)
               layers(lambda b: b.mlp_norm.weight),  # [D]
               layers(lambda b: b.up),  # [D, F] (in, out)
               layers(lambda b: b.down.weight),  # [D, F] (out, in)
               array(model.norm.weight), array(model.head.weight))
    keys, values = cache.keys.numpy(), cache.values.numpy()  # [N, B, H, M, Dh], shared with the cache
    keys_by_channel = np.ascontiguousarray(keys.transpose(0, 1, 2, 4, 3))  # [N, B, H, Dh, M]: q . k for all positions at once
    longest = min(cache.max_len, model.config.max_seq_len)
    rotation = model.rotation
    cos, sin = rotation.real.contiguous().numpy(), rotation.imag.contiguous().numpy()  # [max_seq_len, Dh / 2]
    num_heads = model.config.num_heads
    batch, vocab = keys.shape[1], weights[0].shape[0]
    expected = cache.length  # the by-channel copy holds the keys of exactly these positions

    def step(token_ids: torch.Tensor, lo: int, hi: int) -> torch.Tensor:
        nonlocal expected
        position = cache.length
        if position != expected:
            raise ValueError("the cache changed outside this fused step: build a new one after a prefill")
        if position >= longest:
            raise ValueError(f"sequence of {position + 1} tokens is longer than the cache or max_seq_len")
        row = position + cache.offset  # the rotary position (the sequence index unless a prefill set explicit positions)
        if not 0 <= row < cos.shape[0]:
            raise ValueError(f"position {row} is outside the rotary table (max_seq_len)")
        if token_ids.shape != (batch,) or not 0 <= lo < hi <= vocab:
            raise ValueError(f"need token_ids [{batch}] and 0 <= lo < hi <= {vocab}, got {tuple(token_ids.shape)}, {lo}, {hi}")
        ids = token_ids.numpy()
        if ids.min() < 0 or ids.max() >= vocab:
            raise ValueError(f"token ids must be in [0, {vocab})")
        logits = np.empty((batch, hi - lo), dtype=np.float32)
        _decode(ids, position, *weights, lo, hi, cos[row], sin[row], keys, keys_by_channel, values, num_heads, logits)
        cache.length = expected = position + 1
        return torch.from_numpy(logits)

    return step


FAST_MATH = {"contract", "reassoc", "arcp", "nsz", "afn"}  # vectorised reductions; not "nnan" / "ninf": -inf and NaN stay IEEE


def _compiled(function):
    return numba.njit(cache=True, fastmath=FAST_MATH, nogil=True)(function) if numba is not None else function


@_compiled
def _layer_norm(x, weight, out):
    """out[b] = LayerNorm(x[b]) * weight (no bias), for x [B, D]."""
    B, D = x.shape
    for b in range(B):
        mean = np.float32(0.0)
        for i in range(D):
            mean += x[b, i]
        mean /= np.float32(D)
        var = np.float32(0.0)
        for i in range(D):
            d = x[b, i] - mean
            var += d * d
        scale = np.float32(1.0) / np.sqrt(var / np.float32(D) + np.float32(LAYER_NORM_EPS))
        for i in range(D):
            out[b, i] = (x[b, i] - mean) * scale * weight[i]


@_compiled
def _matvec_in_out(x, w, out):
    """out = x @ w for x [B, D_in], w [D_in, D_out] (rows of w streamed once for the whole batch)."""
    B, d_in = x.shape
    out[:] = 0
    for i in range(d_in):
        for b in range(B):
            xi = x[b, i]
            for j in range(w.shape[1]):
                out[b, j] += xi * w[i, j]


@_compiled
def _matvec_out_in(x, w, out):
    """out = x @ w.T for x [B, D_in], w [D_out, D_in] (nn.Linear's layout)."""
    B, d_in = x.shape
    for j in range(w.shape[0]):
        for b in range(B):
            acc = np.float32(0.0)
            for i in range(d_in):
                acc += w[j, i] * x[b, i]
            out[b, j] = acc


@_compiled
def _attend(q, k_by_channel, v, length, scale, scores, out):
    """out = softmax(q @ k_by_channel[:, :length] * scale) @ v[:length] for one head: q [Dh], k_by_channel [Dh, M],
    v [M, Dh]."""
    scores[:length] = 0
    for d in range(q.shape[0]):  # over positions in the inner loop: vectorised, no reduction per position
        qd = q[d] * scale
        for t in range(length):
            scores[t] += qd * k_by_channel[d, t]
    top = scores[0]
    for t in range(1, length):
        top = max(top, scores[t])
    total = np.float32(0.0)
    for t in range(length):
        scores[t] = np.exp(scores[t] - top)
        total += scores[t]
    out[:] = 0
    for t in range(length):
        weight = scores[t] / total
        for d in range(out.shape[0]):
            out[d] += weight * v[t, d]


@_compiled
def _decode(token_ids, position, embedding, attention_norm, qkv, out, mlp_norm, up, down, final_norm, head, lo, hi, cos, sin,
            keys, keys_by_channel, values, num_heads, logits):
    """One token per row of the batch at cache slot `position` (rotated by `cos`, `sin`: its rotary position's row):
    writes its keys and values into the cache and the logits of head rows lo..hi into `logits [B, hi - lo]`. The same
    arithmetic as Transformer.features + head."""
    B = token_ids.shape[0]
    N, D, F = len(up), up[0].shape[0], up[0].shape[1]
    Dh = D // num_heads
    scale = np.float32(1.0 / math.sqrt(Dh))
    x = np.empty((B, D), dtype=np.float32)
    for b in range(B):
        x[b] = embedding[token_ids[b]]
    h = np.empty((B, D), dtype=np.float32)
    projected = np.empty((B, 3 * D), dtype=np.float32)
    attended = np.empty((B, D), dtype=np.float32)
    y = np.empty((B, D), dtype=np.float32)
    hidden = np.empty((B, F), dtype=np.float32)
    scores = np.empty(position + 1, dtype=np.float32)
    for n in range(N):
        _layer_norm(x, attention_norm[n], h)
        _matvec_in_out(h, qkv[n], projected)  # [B, 3D]: q, k, v, each heads x Dh
        for b in range(B):
            for head_index in range(num_heads):
                base = head_index * Dh
                for i in range(Dh // 2):  # rotary: channel pairs (2i, 2i+1) times e^(i * position * frequency_i)
                    for part in range(2):  # q, then k
                        at = part * D + base + 2 * i
                        re, im = projected[b, at], projected[b, at + 1]
                        projected[b, at] = re * cos[i] - im * sin[i]
                        projected[b, at + 1] = re * sin[i] + im * cos[i]
                k, v = projected[b, D + base:D + base + Dh], projected[b, 2 * D + base:2 * D + base + Dh]
                keys[n, b, head_index, position] = k
                keys_by_channel[n, b, head_index, :, position] = k
                values[n, b, head_index, position] = v
                _attend(projected[b, base:base + Dh], keys_by_channel[n, b, head_index], values[n, b, head_index], position + 1, scale,
                        scores, attended[b, base:base + Dh])
        _matvec_out_in(attended, out[n], y)
        x += y
        _layer_norm(x, mlp_norm[n], h)
        _matvec_in_out(h, up[n], hidden)
        for b in range(B):
            for j in range(F):  # GELU, tanh approximation
                g = hidden[b, j]
                inner = np.float32(0.7978845608028654) * (g + np.float32(0.044715) * g * g * g)  # sqrt(2 / pi) (g + 0.044715 g^3)
                hidden[b, j] = np.float32(0.5) * g * (np.float32(1.0) + np.tanh(inner))
        _matvec_out_in(hidden, down[n], y)
        x += y
    _layer_norm(x, final_norm, h)
    _matvec_out_in(h, head[lo:hi], logits)
