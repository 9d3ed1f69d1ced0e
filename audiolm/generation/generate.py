"""KV-cached generation for one stage, and the sliding windows that take each stage past its training window.

    tokens = generate_tokens(model, spec, prefix, steps, sampling, generator)       # one window
    ids = generate_semantic(model, spec, known_ids, total, sampling, generator)     # [B, total] semantic ids
    coarse = generate_coarse(model, spec, semantic, known_coarse, total, ...)       # [B, Q', total] codes
    fine = generate_fine(model, spec, coarse, ...)                                  # [B, Q - Q', T] codes

Every sampled token is drawn from its level's id range only. Windows: the semantic and coarse stages
slide by half a window (the later half of the previous window is the next one's context), so the cost
per generated second stays flat however long the output; the fine stage runs on non-overlapping
windows, all of equal length decoded as one batch. Each window's sequence starts its positions afresh, as in
training (the coarse stage's aligned positions: `StageSpec.positions`).
"""

from __future__ import annotations

import os
from functools import partial

import torch
from torch.nn import functional as F

from audiolm.generation.sampling import Sampler, Sampling
from audiolm.lm.stages import StageSpec
from audiolm.lm.transformer import KVCache, Transformer

FUSED_AFTER_STEPS = 800  # "auto": take the fused CPU step once a process has asked for this many steps (see below)
_steps_asked = 0


def expect_steps(steps: int) -> None:
    """Tell the "auto" choice below that this process will ask for `steps` more KV-cached steps later (the pipeline
    announces its AR acoustic stages before the semantic LM runs, so that every stage takes the fused step)."""
    global _steps_asked
    _steps_asked += steps


def _fused_wanted(steps: int) -> bool:
    """Whether to take the fused CPU step (lm/fused_step.py) for `steps` more tokens. It saves about 1.5 ms a step on
    one thread but costs about 0.8 s once per process (numba's import and compiled-code cache, which loads SciPy's
    BLAS), so under `AUDIOLM_FUSED_STEP=auto` (the default) a process takes it only once it has asked for
    FUSED_AFTER_STEPS steps: a 7 s continuation by the parallel stage (350 semantic steps) stays in PyTorch, the AR
    stages' thousands of steps go fused. `1`: always, `0`: never."""
    expect_steps(steps)
    mode = os.environ.get("AUDIOLM_FUSED_STEP", "auto")
    return mode == "1" or (mode != "0" and _steps_asked >= FUSED_AFTER_STEPS)


@torch.inference_mode()
def generate_tokens(model: Transformer, spec: StageSpec, prefix: torch.Tensor, steps: int, sampling: Sampling,
                    generator: torch.Generator | None = None, start_index: int = 0, positions: torch.Tensor | None = None) -> torch.Tensor:
    """Continue `prefix [B, P]` by `steps` tokens `[B, steps]`; the first new token is the predicted stream's
    `start_index`-th (which fixes its level). `positions [P]`: the prefix's rotary positions (None: 0..P-1); the new
    tokens follow the last one's."""
    B = prefix.shape[0]
    out = torch.empty(B, steps, dtype=torch.long, device=prefix.device)
    if steps == 0:
        return out
    cache = model.new_cache(B, prefix.shape[1] + steps)
    hidden = model.features(prefix, cache, positions)[:, -1]  # [B, D]: the prefill, one matrix product per weight
    step = None
    if _fused_wanted(steps):
        from audiolm.lm.fused_step import fused_step  # numba is imported only here

        step = fused_step(model, cache)
    step = step or partial(_step, model, cache)  # one token at a time: fused on CPU
    sampler = Sampler(sampling, generator)
    lo, hi = spec.target_range(start_index)
    logits = F.linear(hidden, model.head.weight[lo:hi])  # only the next token's level: [B, hi - lo]
    for i in range(steps):
        token = sampler(logits) + lo
        out[:, i] = token
        if i + 1 < steps:
            lo, hi = spec.target_range(start_index + i + 1)
            logits = step(token, lo, hi)
    return out


def _step(model: Transformer, cache: KVCache, token_ids: torch.Tensor, lo: int, hi: int) -> torch.Tensor:
    """`token_ids [B]` after the cached tokens -> the logits of head rows lo..hi `[B, hi - lo]` (PyTorch)."""
    return F.linear(model.features(token_ids[:, None], cache)[:, -1], model.head.weight[lo:hi])


def _window_start(done: int, total: int, window: int, step: int) -> int:
    """Start of the window that continues `done` known frames towards `total`: half a window of context,
    but never past `total - window`; a multiple of `step`."""
    keep = window // 2
    start = max(0, min(done - keep, total - window))
    return start // step * step


def generate_semantic(model: Transformer, spec: StageSpec, known: torch.Tensor, total: int, sampling: Sampling,
                      generator: torch.Generator | None = None) -> torch.Tensor:
    """Semantic ids `[B, total]` starting with `known [B, n]` (n may be 0)."""
    ids = known
    window = spec.window_frames
    while ids.shape[1] < total:
        done = ids.shape[1]
        start = _window_start(done, total, window, 1)
        end = min(start + window, total)
        prefix = torch.cat([spec.prefix().to(ids.device).expand(ids.shape[0], -1), ids[:, start:]], dim=1)
        new = generate_tokens(model, spec, prefix, end - done, sampling, generator, start_index=done - start)
        ids = torch.cat([ids, spec.decode_targets(new)], dim=1)
    return ids


def generate_coarse(model: Transformer, spec: StageSpec, semantic: torch.Tensor | None, known: torch.Tensor, total: int,
                    sampling: Sampling, generator: torch.Generator | None = None) -> torch.Tensor:
    """Coarse codes `[B, Q', total]` starting with `known [B, Q', n]`, conditioned on `semantic [B, >= total / ratio]`
    (None for the acoustic-only stage)."""
    codes = known
    window, ratio = spec.window_frames, spec.ratio
    while codes.shape[2] < total:
        done = codes.shape[2]
        start = _window_start(done, total, window, ratio)
        end = min(start + window, total)
        condition = None
        if spec.use_semantic:
            condition = semantic[:, start // ratio: -(-end // ratio)]
        prefix = spec.prefix(condition) if condition is not None else spec.prefix().to(codes.device).expand(codes.shape[0], -1)
        prefix = torch.cat([prefix, spec.targets(codes=codes[:, :, start:])], dim=1)
        positions = spec.positions(condition.shape[1] if condition is not None else 0, prefix.shape[1])  # afresh per window
        new = generate_tokens(model, spec, prefix, (end - done) * spec.num_coarse, sampling, generator,
                              start_index=(done - start) * spec.num_coarse, positions=positions)
        codes = torch.cat([codes, spec.decode_targets(new)], dim=2)
    return codes


def generate_fine(model: Transformer, spec: StageSpec, coarse: torch.Tensor, sampling: Sampling, generator: torch.Generator | None = None,
                  start: int = 0) -> torch.Tensor:
    """Fine codes `[B, Q - Q', T - start]` for the frames start.. of `coarse [B, Q', T]`, in windows of
    `window_frames` from `start`; windows of equal length are decoded together as one batch."""
    B, _, T = coarse.shape
    window = spec.window_frames
    bounds = [(a, min(a + window, T)) for a in range(start, T, window)]
    pieces: dict[tuple[int, int], torch.Tensor] = {}
    for length in sorted({b - a for a, b in bounds}, reverse=True):
        group = [(a, b) for a, b in bounds if b - a == length]
        batch = torch.cat([coarse[:, :, a:b] for a, b in group], dim=0)  # [len(group) * B, Q', length]
        new = generate_tokens(model, spec, spec.prefix(coarse=batch), length * spec.num_fine, sampling, generator)
        fine = spec.decode_targets(new)  # [len(group) * B, Q - Q', length]
        for i, bound in enumerate(group):
            pieces[bound] = fine[i * B:(i + 1) * B]
    if not bounds:
        return coarse.new_zeros(B, spec.num_fine, 0)
    return torch.cat([pieces[bound] for bound in bounds], dim=2)
