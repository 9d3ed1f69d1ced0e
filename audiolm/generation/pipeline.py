"""AudioLM end to end: prompt wav -> semantic ids -> coarse codes -> fine codes -> wav.

    audiolm = AudioLM.load("models/speech")
    out = audiolm.continue_audio(prompt_wav, seconds=7, seed=0)        # keeps the prompt's voice
    out = audiolm.generate(seconds=10, seed=0)                         # unconditional
    out = audiolm.resynthesize(wav, seed=3)                            # true semantic ids, a new voice per seed
    out = audiolm.continue_audio(prompt_wav, 7, acoustic_only=True)    # the baseline without semantic tokens

A bundle folder holds `semantic/` (tokenizer), `codec/`, `semantic-lm/`, `coarse-lm/`, optionally `fine-lm/`
(without it, as in the paper's piano model, the coarse levels alone are decoded) and `coarse-acoustic-lm/` (the
acoustic-only baseline). Each LM records the fingerprints of the
tokenizer and codec it was trained on; a bundle whose parts disagree is refused.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from audiolm import limits
from audiolm.codec.model import Codec
from audiolm.errors import AudiolmError, FileError
from audiolm.generation.generate import generate_coarse, generate_fine, generate_semantic
from audiolm.generation.sampling import Sampling
from audiolm.lm.model import load_stage
from audiolm.lm.stages import StageSpec
from audiolm.lm.transformer import Transformer
from audiolm.semantic.tokenizer import SemanticTokenizer

PARTS = {"semantic": "semantic-lm", "coarse": "coarse-lm", "fine": "fine-lm", "acoustic": "coarse-acoustic-lm"}
BUNDLED_DIR = Path(__file__).resolve().parents[2] / "models"  # models/speech, models/piano in a source checkout
BUNDLED = ("speech", "piano")
OPTIONAL = ("fine", "acoustic")  # without a fine LM (as the paper's piano model) the codec decodes the coarse levels alone


@dataclass(kw_only=True)
class StageSampling:
    """Per-stage sampling (AudioLM: temperatures 0.6 / 0.8 / 0.6)."""

    semantic: Sampling = field(default_factory=lambda: Sampling(temperature=0.6))
    coarse: Sampling = field(default_factory=lambda: Sampling(temperature=0.8))
    fine: Sampling = field(default_factory=lambda: Sampling(temperature=0.6))


@dataclass
class Generation:
    wav: torch.Tensor  # [1, 1, L]: the prompt's part (codec-decoded) then the new audio
    sample_rate: int
    prompt_seconds: float  # where the new audio starts
    semantic: torch.Tensor  # [1, Ts]
    codes: torch.Tensor  # [1, Q, Ta]
    seconds_per_stage: dict[str, float]


@dataclass
class Stage:
    model: Transformer
    spec: StageSpec
    fingerprints: dict


def bundle_folder(folder: str | Path) -> Path:
    """`folder` itself, or for the name of a bundled model (`speech`, `piano`) without such a folder here, its folder."""
    folder = Path(folder)
    return BUNDLED_DIR / str(folder) if not folder.is_dir() and str(folder) in BUNDLED else folder


class AudioLM:
    def __init__(self, tokenizer: SemanticTokenizer, codec: Codec, semantic: Stage, coarse: Stage, fine: Stage | None = None,
                 acoustic: Stage | None = None) -> None:
        self.tokenizer, self.codec = tokenizer, codec
        self.semantic, self.coarse, self.fine, self.acoustic = semantic, coarse, fine, acoustic
        expected = {"semantic": tokenizer.fingerprint(), "codec": codec.codebook_fingerprint()}
        for name, stage in (("semantic", semantic), ("coarse", coarse), ("fine", fine), ("acoustic", acoustic)):
            if stage is None:
                continue
            for key, value in stage.fingerprints.items():
                if key in expected and value != expected[key]:
                    raise AudiolmError(f"the {name} LM was trained on other {key} tokens than this bundle's {key} model")
        if fine is not None and (coarse.spec.num_coarse != fine.spec.num_coarse or coarse.spec.ratio != fine.spec.ratio):
            raise AudiolmError("the coarse and fine LMs disagree on the coarse levels")
        self.num_levels = coarse.spec.num_coarse + (fine.spec.num_fine if fine is not None else 0)  # no fine LM: coarse levels only
        if self.num_levels > codec.num_codebooks:
            raise AudiolmError(f"the LMs use {self.num_levels} codec levels; the codec has {codec.num_codebooks}")

    @classmethod
    def load(cls, folder: str | Path = "speech", device: str | torch.device = "cpu") -> AudioLM:
        """A bundle folder, or the name of a bundled one (`speech`, the default, or `piano`)."""
        folder = bundle_folder(folder)
        if not folder.is_dir():
            raise FileError(folder, "no such model bundle folder")
        stages = {}
        for name, part in PARTS.items():
            if name in OPTIONAL and not (folder / part).is_dir():
                continue
            stages[name] = Stage(*load_stage(folder / part, device))
        tokenizer = SemanticTokenizer.load(folder / "semantic")
        codec = Codec.load(folder / "codec", device)
        return cls(tokenizer.to(device), codec, stages["semantic"], stages["coarse"], stages.get("fine"), stages.get("acoustic"))

    @property
    def sample_rate(self) -> int:
        return self.codec.sample_rate

    @property
    def vocabularies(self) -> dict[str, int]:
        """The ids each stage draws one token from: semantic ids, or one codec level's codes."""
        size = self.coarse.spec.codebook_size
        return {"semantic": self.semantic.spec.semantic_vocab, "coarse": size, "fine": size}

    def _device(self) -> torch.device:
        return next(self.semantic.model.parameters()).device

    def _check(self, sampling: StageSampling, wav: torch.Tensor | None = None, max_seconds: float = 0.0, what: str = "") -> None:
        """Refuse sampling settings and an input `wav [1, 1, L]` longer than `max_seconds` before any work
        (`audiolm.limits`)."""
        for stage, vocabulary in self.vocabularies.items():
            s = getattr(sampling, stage)
            limits.check_number(f"{stage} temperature", s.temperature, 0.0, limits.MAX_TEMPERATURE)
            limits.check_count(f"{stage} top_k", s.top_k, 0, vocabulary)
            limits.check_number(f"{stage} top_p", s.top_p, 0.0, 1.0, above_low=True)
        if wav is not None:
            length = wav.shape[-1] / self.sample_rate
            if length > max_seconds + 1 / self.codec.frame_rate:  # a resampled cut may end a sample or two late
                raise AudiolmError(f"{what}: must be at most {max_seconds:g} s long (got {length:.1f} s)")
            if what == "prompt" and length < limits.MIN_PROMPT_SECONDS:
                raise AudiolmError(f"{what}: must be at least {limits.MIN_PROMPT_SECONDS:g} s long (got {length:.3f} s)")

    @torch.inference_mode()
    def tokenize(self, wav: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """`wav [1, 1, L]` -> aligned semantic ids `[1, n]` and codes `[1, Q, n * ratio]` (the LMs' levels)."""
        wav = wav.to(self._device())
        ids = self.tokenizer(wav)
        codes = self.codec.encode(wav, self.num_levels)
        ratio = self.coarse.spec.ratio
        n = min(ids.shape[1], codes.shape[2] // ratio)
        return ids[:, :n], codes[:, :, : n * ratio]

    def _finish(self, semantic: torch.Tensor, coarse: torch.Tensor, known_fine: torch.Tensor, sampling: StageSampling,
                generator: torch.Generator, timings: dict[str, float], prompt_frames: int) -> Generation:
        began = time.perf_counter()
        codes = coarse
        if self.fine is not None:
            fine = generate_fine(self.fine.model, self.fine.spec, coarse, sampling.fine, generator, start=known_fine.shape[2])
            codes = torch.cat([coarse, torch.cat([known_fine, fine], dim=2)], dim=1)  # [1, Q, Ta]
        timings["fine"] = time.perf_counter() - began
        began = time.perf_counter()
        wav = self.codec.decode(codes)
        timings["codec"] = time.perf_counter() - began
        return Generation(wav, self.sample_rate, prompt_frames / self.codec.frame_rate, semantic, codes, timings)

    @torch.inference_mode()
    def continue_audio(self, prompt: torch.Tensor, seconds: float, seed: int = 0, sampling: StageSampling | None = None,
                       acoustic_only: bool = False) -> Generation:
        """Continue `prompt [1, 1, L]` by `seconds`, from its semantic and acoustic tokens (or, with
        `acoustic_only`, from its acoustic tokens alone with the acoustic-only coarse LM). Limits: `seconds` in
        (0, MAX_GENERATE_SECONDS], a prompt of at most MAX_PROMPT_SECONDS (`audiolm.limits`)."""
        limits.check_number("seconds", seconds, 0.0, limits.MAX_GENERATE_SECONDS, above_low=True)
        sampling = sampling or StageSampling()
        self._check(sampling, prompt, limits.MAX_PROMPT_SECONDS, "prompt")
        generator = torch.Generator(self._device()).manual_seed(seed)
        timings: dict[str, float] = {}
        began = time.perf_counter()
        ids, codes = self.tokenize(prompt)
        if ids.shape[1] == 0:
            raise AudiolmError("the prompt is shorter than one semantic frame")
        timings["tokenize"] = time.perf_counter() - began
        Q = self.coarse.spec.num_coarse
        total = ids.shape[1] + max(1, round(seconds * self.semantic.spec.semantic_rate))
        frames = total * self.coarse.spec.ratio
        began = time.perf_counter()
        if acoustic_only:
            if self.acoustic is None:
                raise AudiolmError("this bundle has no acoustic-only coarse LM (coarse-acoustic-lm/)")
            semantic = ids
            timings["semantic"] = 0.0
            began = time.perf_counter()
            coarse = generate_coarse(self.acoustic.model, self.acoustic.spec, None, codes[:, :Q], frames, sampling.coarse, generator)
        else:
            semantic = generate_semantic(self.semantic.model, self.semantic.spec, ids, total, sampling.semantic, generator)
            timings["semantic"] = time.perf_counter() - began
            began = time.perf_counter()
            coarse = generate_coarse(self.coarse.model, self.coarse.spec, semantic, codes[:, :Q], frames, sampling.coarse, generator)
        timings["coarse"] = time.perf_counter() - began
        return self._finish(semantic, coarse, codes[:, Q:], sampling, generator, timings, codes.shape[2])

    @torch.inference_mode()
    def generate(self, seconds: float, seed: int = 0, sampling: StageSampling | None = None) -> Generation:
        """Unconditional: `seconds` (in (0, MAX_GENERATE_SECONDS]) of audio from nothing."""
        limits.check_number("seconds", seconds, 0.0, limits.MAX_GENERATE_SECONDS, above_low=True)
        sampling = sampling or StageSampling()
        self._check(sampling)
        device = self._device()
        generator = torch.Generator(device).manual_seed(seed)
        total = max(1, round(seconds * self.semantic.spec.semantic_rate))
        timings: dict[str, float] = {"tokenize": 0.0}
        began = time.perf_counter()
        semantic = generate_semantic(self.semantic.model, self.semantic.spec, torch.zeros(1, 0, dtype=torch.long, device=device),
                                     total, sampling.semantic, generator)
        timings["semantic"] = time.perf_counter() - began
        return self._from_semantic(semantic, sampling, generator, timings)

    @torch.inference_mode()
    def resynthesize(self, wav: torch.Tensor, seed: int = 0, sampling: StageSampling | None = None) -> Generation:
        """New acoustic tokens for `wav`'s true semantic ids: the same words, a voice drawn by `seed`; `wav [1, 1, L]`
        of at most MAX_GENERATE_SECONDS (`audiolm.limits`)."""
        sampling = sampling or StageSampling()
        self._check(sampling, wav, limits.MAX_GENERATE_SECONDS, "wav")
        generator = torch.Generator(self._device()).manual_seed(seed)
        began = time.perf_counter()
        semantic, _ = self.tokenize(wav)
        timings = {"tokenize": time.perf_counter() - began, "semantic": 0.0}
        return self._from_semantic(semantic, sampling, generator, timings)

    def _from_semantic(self, semantic: torch.Tensor, sampling: StageSampling, generator: torch.Generator,
                       timings: dict[str, float]) -> Generation:
        Q, ratio = self.coarse.spec.num_coarse, self.coarse.spec.ratio
        began = time.perf_counter()
        empty = torch.zeros(1, Q, 0, dtype=torch.long, device=semantic.device)
        coarse = generate_coarse(self.coarse.model, self.coarse.spec, semantic, empty, semantic.shape[1] * ratio, sampling.coarse,
                                 generator)
        timings["coarse"] = time.perf_counter() - began
        no_fine = torch.zeros(1, self.num_levels - Q, 0, dtype=torch.long, device=semantic.device)
        return self._finish(semantic, coarse, no_fine, sampling, generator, timings, 0)
