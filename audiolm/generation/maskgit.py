"""Decoding the parallel acoustic stage: level by level, MaskGIT's confidence-ranked iterations (SoundStorm).

    codes = generate_parallel(model, spec, semantic, prompt, num_frames, ParallelSampling(), generator)
    # semantic [B, >= T / ratio] (None for the acoustic-only stage), prompt codes [B, Q, P] -> codes [B, Q, T], T = num_frames

The prompt's codes stay as they are (they are how the voice is kept). The frames after them are filled in windows
of the stage's `window_frames`: each window starts with `overlap` of a window of frames already known (the prompt
or the previous windows, all levels: a prompt as in training) and fills the rest, level 1 first. A level takes
`iterations[level]` forward passes (the last entry stands for every later level; SoundStorm: 16, then 1): each
pass draws a code for every still-masked frame (temperature, top-k, top-p: `sampling.sample`, one seeded
generator), keeps the most confident draws (log-probability plus Gumbel noise scaled by `choice_temperature`
and annealed to 0) and masks the rest again, so that after pass i a share cos(pi / 2 * (i + 1) / n) of the
level's frames remains masked (none after the last). The levels above the current one stay masked, as in training.
Forward passes per window: sum of the levels' iterations (27 for 12 levels at 16, 1); `ParallelStats` counts them.
With `guidance` > 0 and the acoustic-only stage passed as `unconditional`, each pass of the first `guidance_levels`
levels also runs that stage and draws from the guided distribution (`guided`: classifier-free guidance). `given`
codes of the first levels stay as they are throughout, and only the later levels are decoded.
Shapes: B batch, Q levels, T frames, P prompt frames, W window frames, C codebook size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from audiolm.generation.sampling import Sampling, sample
from audiolm.lm.parallel import frame_ids, level_logits, mask_code
from audiolm.lm.stages import StageSpec
from audiolm.lm.transformer import Transformer


@dataclass(kw_only=True)
class ParallelSampling:
    iterations: tuple[int, ...] = (16, 1)  # forward passes per level; the last entry stands for the later levels
    first: Sampling = field(default_factory=lambda: Sampling(temperature=0.8))  # level 1's draws
    rest: Sampling = field(default_factory=lambda: Sampling(temperature=0.0))  # the later levels' (SoundStorm: greedy)
    choice_temperature: float = 1.0  # Gumbel noise on the confidences that rank the draws (0: by confidence alone)
    overlap: float = 0.25  # share of a window that known frames fill when the output runs past a window (1 s of 4)
    guidance: float = 0.0  # classifier-free guidance weight w against the acoustic-only stage (0: none; see `guided`)
    guidance_levels: int = 1  # the levels guided (from level 1; the later ones are read off the finished levels below)

    def __post_init__(self) -> None:
        if not self.iterations or any(type(n) is not int or n < 1 for n in self.iterations):
            raise ValueError(f"iterations must be one or more positive whole numbers, got {self.iterations!r}")
        if self.choice_temperature < 0 or not 0 <= self.overlap < 1:
            raise ValueError("choice_temperature must be >= 0 and overlap in [0, 1)")
        if self.guidance < 0 or type(self.guidance_levels) is not int or self.guidance_levels < 0:
            raise ValueError("guidance must be >= 0 and guidance_levels a whole number >= 0")

    def level_iterations(self, level: int) -> int:
        return self.iterations[min(level, len(self.iterations) - 1)]


@dataclass
class ParallelStats:
    """What a `generate_parallel` call cost: windows and forward passes (each over one window of the whole batch)."""

    windows: int = 0
    forward_passes: int = 0


def unmasking_schedule(frames: int, iterations: int) -> list[int]:
    """How many of `frames` masked frames each of `iterations` passes unmasks: frames still masked after pass i are
    floor(frames * cos(pi / 2 * (i + 1) / iterations)); the counts sum to `frames` (a pass may unmask none)."""
    left = [math.floor(frames * math.cos(math.pi / 2 * (i + 1) / iterations)) for i in range(iterations - 1)] + [0]
    before = [frames, *left[:-1]]
    return [b - a for b, a in zip(before, left)]


Unconditional = tuple[Transformer, StageSpec]  # the acoustic-only stage (no semantic ids), for guidance


def guided(conditional: torch.Tensor, unconditional: torch.Tensor, weight: float) -> torch.Tensor:
    """Classifier-free guidance (Ho & Salimans 2022) with a separately trained unconditional model, as in contrastive
    decoding: logits `[..., C]` of the stage given the semantic ids and of the acoustic-only stage ->
    log p_c + w (log p_c - log p_u) (unnormalised log-probabilities): codes that the semantic ids make likelier than
    the acoustic context alone does gain weight. w = 0 is the conditional stage itself."""
    conditional, unconditional = conditional.log_softmax(-1), unconditional.log_softmax(-1)
    return conditional + weight * (conditional - unconditional)


@torch.inference_mode()
def decode_window(model: Transformer, spec: StageSpec, semantic: torch.Tensor | None, codes: torch.Tensor, known: int,
                  sampling: ParallelSampling, generator: torch.Generator | None = None, num_levels: int | None = None,
                  stats: ParallelStats | None = None, unconditional: Unconditional | None = None, given: int = 0) -> torch.Tensor:
    """Fill frames known.. of one window: `codes [B, Q, W]` (frames 0..known-1 known at every level, and every frame
    of the first `given` levels), semantic ids `[B, >= W / ratio]` aligned with the window (or None) -> codes
    `[B, Q, W]` with levels given..num_levels-1 filled (the rest MASK after `known`). With `unconditional` (the
    acoustic-only stage) and `sampling.guidance` > 0, the first `guidance_levels` levels draw from the guided
    distribution (`guided`)."""
    B, Q, W = codes.shape
    num_levels = Q if num_levels is None else num_levels
    codes = codes.clone()
    codes[:, given:, known:] = mask_code(spec)
    frames = W - known
    for level in range(given, num_levels):
        level_sampling = sampling.first if level == 0 else sampling.rest
        steps = unmasking_schedule(frames, sampling.level_iterations(level))
        for i, count in enumerate(steps):
            if count == 0:
                continue
            hidden = model.features(frame_ids(spec, codes, semantic))[:, known:]  # [B, W - known, D]
            logits = level_logits(model, spec, hidden, level).float()  # [B, F, C]
            passes = 1
            if unconditional is not None and sampling.guidance > 0 and level < sampling.guidance_levels:
                free, free_spec = unconditional
                free_hidden = free.features(frame_ids(free_spec, codes, None))[:, known:]
                logits = guided(logits, level_logits(free, free_spec, free_hidden, level).float(), sampling.guidance)
                passes = 2
            if stats is not None:
                stats.forward_passes += passes
            drawn = sample(logits.flatten(0, 1), level_sampling, generator).view(B, frames)  # [B, F]
            current = codes[:, level, known:]  # [B, F]
            still = current == mask_code(spec)
            if count < frames and int(still[0].sum()) > count:  # rank the draws: keep the `count` most confident
                confidence = logits.log_softmax(-1).gather(-1, drawn[..., None])[..., 0]  # [B, F]
                anneal = sampling.choice_temperature * (1 - (i + 1) / len(steps))
                if anneal > 0:
                    uniform = torch.rand(confidence.shape, generator=generator, device=confidence.device)
                    confidence = confidence + anneal * -torch.log(-torch.log(uniform.clamp_min(1e-20)))
                chosen = confidence.masked_fill(~still, -math.inf).topk(count, dim=1).indices  # [B, count]
                take = torch.zeros_like(still).scatter_(1, chosen, True)
            else:
                take = still
            codes[:, level, known:] = torch.where(take, drawn, current)
    return codes


@torch.inference_mode()
def generate_parallel(model: Transformer, spec: StageSpec, semantic: torch.Tensor | None, prompt: torch.Tensor, num_frames: int,
                      sampling: ParallelSampling | None = None, generator: torch.Generator | None = None,
                      num_levels: int | None = None, stats: ParallelStats | None = None,
                      unconditional: Unconditional | None = None, given: torch.Tensor | None = None) -> torch.Tensor:
    """Codes `[B, Q, num_frames]` that start with `prompt [B, Q, P]` (P may be 0), conditioned on semantic ids
    `[B, >= num_frames / ratio]` (None for the acoustic-only stage); with `num_levels`, only levels 0..num_levels-1
    are decoded (`[B, num_levels, num_frames]`; a window then reads the previous windows' frames with their later
    levels masked, which training never shows: prompts there are whole). `unconditional`, the acoustic-only stage,
    guides the draws where `sampling.guidance` > 0 (`guided`). `given [B, G, num_frames]`: the codes of the first G
    levels throughout (from the input itself: only the later levels are generated)."""
    sampling = sampling or ParallelSampling()
    B, Q, P = prompt.shape
    assert Q == spec.target_levels and spec.stage == "parallel", f"the parallel stage takes prompt codes [B, {spec.target_levels}, P]"
    assert spec.use_semantic == (semantic is not None), "the parallel stage takes semantic ids iff use_semantic"
    num_levels = Q if num_levels is None else num_levels
    assert 1 <= num_levels <= Q and num_frames >= P, "need 1..Q levels and num_frames >= the prompt's frames"
    if unconditional is not None:
        free = unconditional[1]
        assert not free.use_semantic and (free.target_levels, free.codebook_size, free.ratio, free.window_frames) == \
            (spec.target_levels, spec.codebook_size, spec.ratio, spec.window_frames), "guidance needs the stage's acoustic-only twin"
    if semantic is not None and semantic.shape[1] * spec.ratio < num_frames:
        raise ValueError(f"{num_frames} frames need {-(-num_frames // spec.ratio)} semantic ids, got {semantic.shape[1]}")
    window, ratio = spec.window_frames, spec.ratio  # the window: a whole number of semantic frames
    keep = min(int(window * sampling.overlap), window - ratio)
    total = -(-num_frames // ratio) * ratio  # windows start at whole semantic frames: decode whole ones, then cut
    codes = torch.full((B, Q, total), mask_code(spec), dtype=torch.long, device=prompt.device)
    codes[:, :, :P] = prompt
    G = 0 if given is None else given.shape[1]
    if given is not None:
        assert given.shape[0] == B and given.shape[2] == num_frames and G < num_levels, "given: codes [B, G < num_levels, num_frames]"
        codes[:, :G, :num_frames] = given
    done = P
    while done < num_frames:
        start = max(0, min(done - keep, total - window)) // ratio * ratio  # then start + window > done
        end = min(start + window, total)
        condition = None if semantic is None else semantic[:, start // ratio: -(-end // ratio)]
        codes[:, :, start:end] = decode_window(model, spec, condition, codes[:, :, start:end], done - start, sampling, generator,
                                               num_levels, stats, unconditional, G)
        if stats is not None:
            stats.windows += 1
        done = end
    return codes[:, :num_levels, :num_frames]
