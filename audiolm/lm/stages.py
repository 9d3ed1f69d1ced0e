"""What each of AudioLM's stages reads and predicts: one `StageSpec`, one token layout, one Transformer.

    semantic:  [BOS] s_1 .. s_Ts                                   predicts s
               (dedup=True: s with consecutive repeats removed, the window in units not frames)
    coarse:    s_1 .. s_Ts [SEP] c_(1,1) .. c_(1,Q') c_(2,1) ..    predicts the coarse levels 1..Q'
               (acoustic-only baseline, use_semantic=False: [SEP] c_(1,1) ..)
               aligned_positions=True: rotary positions aligned in time, not the sequence index (`positions`)
    fine:      c_(1,1) .. c_(Ta,Q') [SEP] f_(1,Q'+1) .. f_(Ta,Q)   predicts the fine levels Q'+1..Q
    parallel:  one position per acoustic frame: its aligned semantic id + its Q = Q' + (Q - Q') codes (or MASK),
               embeddings summed; bidirectional; predicts the masked codes of one level (SoundStorm, lm/parallel.py)
               (acoustic-only baseline, use_semantic=False: the codes alone)

Each stream gets its own id range: semantic ids 0..Ks-1, then the special token (BOS / SEP: one id,
`special`), then one range of `codebook_size` ids per acoustic level (frame by frame, see `tokens.py`). The parallel
stage has no special token: semantic ids 0..Ks-1, then per level `codebook_size` code ids and that level's MASK id.
A training window holds `window_seconds` of aligned semantic ids (semantic_rate) and codes (acoustic_rate).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from audiolm.lm.tokens import flatten_codes, unflatten_codes

STAGES = ("semantic", "coarse", "fine", "parallel")
DEFAULT_WINDOW = {"semantic": 10.0, "coarse": 4.0, "fine": 3.0, "parallel": 4.0}  # seconds (paper: 30, 10, 3; ours sized for CPU)


@dataclass(kw_only=True)
class StageSpec:
    stage: str
    semantic_vocab: int = 1024
    codebook_size: int = 1024
    num_coarse: int = 4  # Q'
    num_fine: int = 8  # Q - Q'
    semantic_rate: float = 25.0
    acoustic_rate: float = 50.0
    window_seconds: float = 0.0  # 0: the stage's default (DEFAULT_WINDOW)
    use_semantic: bool = True  # coarse and parallel stages: False is the acoustic-only baseline
    aligned_positions: bool = False  # coarse stage with semantic ids: rotary positions aligned in time (`positions`); False elsewhere
    dedup: bool = False  # semantic stage: windows of ids with consecutive repeats removed (the paper's); a measurement only,
    #                      since the acoustic stages read one id per frame and generation needs raw ids

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise ValueError(f"stage must be one of {', '.join(STAGES)}, got {self.stage!r}")
        if self.num_coarse < 1 or self.num_fine < 0 or (self.stage == "fine" and self.num_fine < 1):
            raise ValueError("need at least one coarse level (and one fine level for the fine stage)")
        if self.acoustic_rate % self.semantic_rate:
            raise ValueError("the acoustic frame rate must be a multiple of the semantic one")
        if not self.window_seconds:
            self.window_seconds = DEFAULT_WINDOW[self.stage]
        if self.dedup and self.stage != "semantic":
            raise ValueError(f"dedup: only the semantic stage's ids can have their repeats removed, not the {self.stage} stage's")
        # only the coarse stage with semantic ids has positions to align (a preset may name it for every stage)
        self.aligned_positions = self.aligned_positions and self.stage == "coarse" and self.use_semantic

    # --- the id layout ---------------------------------------------------------------------------
    @property
    def special(self) -> int:
        """BOS (semantic stage) / SEP (coarse, fine): the id just after the conditioning ids."""
        return self.semantic_vocab if self.stage != "fine" else self.num_coarse * self.codebook_size

    @property
    def target_levels(self) -> int:
        return {"semantic": 1, "coarse": self.num_coarse, "fine": self.num_fine,
                "parallel": self.num_coarse + self.num_fine}[self.stage]

    @property
    def target_offset(self) -> int:
        """First id of the predicted stream (level 0 of it)."""
        return {"semantic": 0, "parallel": self.semantic_vocab}.get(self.stage, self.special + 1)

    @property
    def level_stride(self) -> int:
        """Ids per predicted level: its codes, and for the parallel stage its MASK id."""
        return self.codebook_size + (self.stage == "parallel")

    @property
    def vocab_size(self) -> int:
        if self.stage == "semantic":
            return self.semantic_vocab + 1
        return self.target_offset + self.target_levels * self.level_stride

    def target_range(self, index: int) -> tuple[int, int]:
        """Ids allowed for the `index`-th token of the predicted stream (its level's range; the parallel stage's
        MASK id of that level is the id just past it)."""
        if self.stage == "semantic":
            return 0, self.semantic_vocab
        level = index % self.target_levels
        start = self.target_offset + level * self.level_stride
        return start, start + self.codebook_size

    # --- windows ---------------------------------------------------------------------------------
    @property
    def ratio(self) -> int:
        """Acoustic frames per semantic frame."""
        return int(self.acoustic_rate // self.semantic_rate)

    @property
    def window_frames(self) -> int:
        """Frames of the stage's own stream per window (semantic frames for the semantic stage, acoustic otherwise),
        a whole number of semantic frames."""
        semantic = max(1, round(self.window_seconds * self.semantic_rate))
        return semantic if self.stage == "semantic" else semantic * self.ratio

    @property
    def max_seq_len(self) -> int:
        """Tokens in a full window's sequence."""
        frames = self.window_frames
        if self.stage == "semantic":
            return frames + 1
        if self.stage == "coarse":
            return (frames // self.ratio if self.use_semantic else 0) + 1 + frames * self.num_coarse
        if self.stage == "parallel":
            return frames
        return frames * (self.num_coarse + self.num_fine) + 1

    # --- sequences (the autoregressive stages; the parallel stage's frames: lm/parallel.py) ---------
    def prefix(self, semantic: torch.Tensor | None = None, coarse: torch.Tensor | None = None) -> torch.Tensor:
        """The conditioning part of a window, special token included: `[B, P]`.

        semantic stage: [BOS]; coarse: semantic ids `[B, Ts]` then SEP; fine: coarse codes `[B, Q', Ta]` then SEP."""
        assert self.stage != "parallel", "the parallel stage reads frames, not sequences (lm/parallel.py)"
        if self.stage == "semantic":
            return torch.full((1, 1), self.special, dtype=torch.long)
        if self.stage == "coarse":
            assert self.use_semantic == (semantic is not None), "the coarse stage takes semantic ids iff use_semantic"
            batch = semantic.shape[0] if semantic is not None else 1
            sep = torch.full((batch, 1), self.special, dtype=torch.long, device=None if semantic is None else semantic.device)
            return sep if semantic is None else torch.cat([semantic, sep], dim=1)
        assert coarse is not None and coarse.shape[1] == self.num_coarse, "the fine stage takes the Q' coarse levels [B, Q', Ta]"
        sep = torch.full((coarse.shape[0], 1), self.special, dtype=torch.long, device=coarse.device)
        return torch.cat([flatten_codes(coarse, self.codebook_size), sep], dim=1)

    def targets(self, semantic: torch.Tensor | None = None, codes: torch.Tensor | None = None) -> torch.Tensor:
        """The predicted stream as tokens: semantic ids `[B, Ts]` as they are; coarse / fine levels of `codes [B, K, Ta]`
        flattened into their ranges."""
        assert self.stage != "parallel", "the parallel stage reads frames, not sequences (lm/parallel.py)"
        if self.stage == "semantic":
            return semantic
        levels = codes[:, : self.num_coarse] if self.stage == "coarse" else codes[:, self.num_coarse: self.num_coarse + self.num_fine]
        assert levels.shape[1] == self.target_levels, f"need {self.target_levels} {self.stage} levels, got {levels.shape[1]}"
        return flatten_codes(levels, self.codebook_size, self.target_offset)

    def decode_targets(self, tokens: torch.Tensor) -> torch.Tensor:
        """Inverse of `targets`: `[B, n]` -> semantic ids `[B, n]` or codes `[B, levels, n / levels]`."""
        if self.stage == "semantic":
            return tokens
        return unflatten_codes(tokens, self.target_levels, self.codebook_size, self.target_offset)

    def positions(self, num_semantic: int, length: int) -> torch.Tensor | None:
        """Rotary positions `[length]` of the first `length` tokens of a coarse sequence that starts with `num_semantic`
        semantic ids, or None (the sequence index) unless `aligned_positions`. Aligned: SEP at 0, coarse token (frame f, level l)
        at 1 + f * Q' + l, semantic id t at 1 + t * ratio * Q' (its first aligned frame's first token), so a coarse
        token sits a small constant distance from its semantic id whatever f (the causal mask stays in sequence order)."""
        if not self.aligned_positions:
            return None
        semantic = 1 + torch.arange(num_semantic) * (self.ratio * self.num_coarse)
        return torch.cat([semantic, torch.arange(max(length - num_semantic, 0))])[:length]  # SEP 0, then the coarse tokens 1, 2, ..

    def example(self, semantic: torch.Tensor | None, codes: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """A training window -> inputs `[B, S-1]`, next-token targets `[B, S-1]`, loss mask `[B, S-1]` (True on the
        predicted stream only), each target's level `[B, S-1]` (-1 outside the predicted stream) and, with `aligned_positions`,
        the inputs' rotary positions `[B, S-1]` (one row repeated, so that a batch slices like the rest)."""
        coarse = codes[:, : self.num_coarse] if codes is not None and self.stage == "fine" else None
        prefix = self.prefix(semantic if self.stage == "coarse" and self.use_semantic else None, coarse)
        stream = self.targets(semantic, codes)
        if prefix.shape[0] != stream.shape[0]:
            prefix = prefix.expand(stream.shape[0], -1)
        sequence = torch.cat([prefix.to(stream.device), stream], dim=1)  # [B, S]
        P, n = prefix.shape[1], stream.shape[1]
        levels = torch.full_like(sequence, -1)
        levels[:, P:] = torch.arange(n, device=stream.device) % self.target_levels
        example = {"inputs": sequence[:, :-1], "targets": sequence[:, 1:], "mask": levels[:, 1:] >= 0, "levels": levels[:, 1:]}
        positions = self.positions(P - 1, sequence.shape[1] - 1)  # P - 1 semantic ids before SEP
        if positions is not None:
            example["positions"] = positions.to(stream.device).repeat(sequence.shape[0], 1)  # [B, S-1]
        return example
