"""AudioLM end to end: prompt wav -> semantic ids -> acoustic codes -> wav.

    audiolm = AudioLM.load("models/speech")
    out = audiolm.continue_audio(prompt_wav, seconds=7, seed=0)        # keeps the prompt's voice
    out = audiolm.generate(seconds=10, seed=0)                         # unconditional
    out = audiolm.resynthesize(wav, seed=3)                            # true semantic ids, a new voice per seed
    out = audiolm.continue_audio(prompt_wav, 7, acoustic_only=True)    # the baseline without semantic tokens
    out = audiolm.continue_audio(prompt_wav, 7, acoustic="ar")         # the paper's coarse + fine LMs

The acoustic tokens come from one of two acoustic stages: `"ar"`, the paper's autoregressive coarse LM (then the
fine LM), or `"parallel"`, SoundStorm's masked, level-by-level decoder of every codec level (lm/parallel.py,
maskgit.py). `acoustic="auto"` (the default) takes the parallel stage where the bundle has one.

A bundle folder holds `semantic/` (tokenizer), `codec/`, `semantic-lm/`, and `coarse-lm/` (optionally `fine-lm/`;
without it, as in the paper's piano model, the coarse levels alone are decoded) or `parallel-lm/`, or both; each
acoustic stage may come with its acoustic-only baseline (`coarse-acoustic-lm/`, `parallel-acoustic-lm/`). Each LM
records the fingerprints of the tokenizer and codec it was trained on; a bundle whose parts disagree is refused.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from audiolm import limits
from audiolm.codec.model import Codec
from audiolm.errors import AudiolmError, FileError
from audiolm.generation.generate import expect_steps, generate_coarse, generate_fine, generate_semantic
from audiolm.generation.maskgit import ParallelSampling, ParallelStats, generate_parallel
from audiolm.generation.sampling import Sampling
from audiolm.lm.model import load_stage
from audiolm.lm.stages import StageSpec
from audiolm.lm.transformer import Transformer
from audiolm.semantic.tokenizer import SemanticTokenizer
from audiolm.watermark import embed as embed_watermark

PARTS = {"semantic": "semantic-lm", "coarse": "coarse-lm", "fine": "fine-lm", "acoustic": "coarse-acoustic-lm",
         "parallel": "parallel-lm", "parallel_acoustic": "parallel-acoustic-lm"}
BUNDLED_DIR = Path(__file__).resolve().parents[2] / "models"  # models/speech, models/piano in a source checkout
BUNDLED = ("speech", "piano")
OPTIONAL = ("coarse", "fine", "acoustic", "parallel", "parallel_acoustic")  # a bundle needs coarse or parallel
ACOUSTIC = ("auto", "parallel", "ar")  # the acoustic stage: auto = parallel where the bundle has one


@dataclass(kw_only=True)
class StageSampling:
    """Per-stage sampling (AudioLM: temperatures 0.6 / 0.8 / 0.6)."""

    semantic: Sampling = field(default_factory=lambda: Sampling(temperature=0.6))
    coarse: Sampling = field(default_factory=lambda: Sampling(temperature=0.8))
    fine: Sampling = field(default_factory=lambda: Sampling(temperature=0.6))
    parallel: ParallelSampling = field(default_factory=ParallelSampling)  # the parallel stage (SoundStorm's settings)


@dataclass
class Generation:
    wav: torch.Tensor  # [1, 1, L]: the prompt's part (codec-decoded) then the new audio
    sample_rate: int
    prompt_seconds: float  # where the new audio starts
    semantic: torch.Tensor  # [1, Ts]
    codes: torch.Tensor  # [1, Q, Ta]
    seconds_per_stage: dict[str, float]
    acoustic: str = "ar"  # the acoustic stage that made the codes: "ar" or "parallel"
    forward_passes: int = 0  # the parallel stage's forward passes (0 for the AR stages)
    watermarked: bool = False  # `wav` carries the watermark (audiolm/watermark.py): the whole of it, the prompt's part too


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
    def __init__(self, tokenizer: SemanticTokenizer, codec: Codec, semantic: Stage, coarse: Stage | None = None,
                 fine: Stage | None = None, acoustic: Stage | None = None, parallel: Stage | None = None,
                 parallel_acoustic: Stage | None = None) -> None:
        self.tokenizer, self.codec = tokenizer, codec
        self.semantic, self.coarse, self.fine, self.acoustic = semantic, coarse, fine, acoustic
        self.parallel, self.parallel_acoustic = parallel, parallel_acoustic
        if semantic.spec.dedup:
            raise AudiolmError("the semantic LM was trained on deduplicated ids (stage.dedup, a measurement); generation "
                               "needs one over raw ids, a frame each")
        if coarse is None and parallel is None:
            raise AudiolmError("a bundle needs an acoustic stage: a coarse LM (coarse-lm/) or a parallel one (parallel-lm/)")
        if coarse is None and (fine is not None or acoustic is not None):
            raise AudiolmError("a fine or acoustic-only coarse LM needs the coarse LM (coarse-lm/)")
        if parallel is None and parallel_acoustic is not None:
            raise AudiolmError("an acoustic-only parallel stage needs the parallel stage (parallel-lm/)")
        expected = {"semantic": tokenizer.fingerprint(), "codec": codec.codebook_fingerprint()}
        for name, stage in self.stages().items():
            for key, value in stage.fingerprints.items():
                if key in expected and value != expected[key]:
                    raise AudiolmError(f"the {name} LM was trained on other {key} tokens than this bundle's {key} model")
        if fine is not None and (coarse.spec.num_coarse != fine.spec.num_coarse or coarse.spec.ratio != fine.spec.ratio):
            raise AudiolmError("the coarse and fine LMs disagree on the coarse levels")
        ratios = {stage.spec.ratio for stage in (coarse, parallel) if stage is not None}
        if len(ratios) > 1:
            raise AudiolmError("the acoustic stages disagree on acoustic frames per semantic frame")
        self.num_levels = coarse.spec.num_coarse + (fine.spec.num_fine if fine is not None else 0) if coarse is not None else 0
        for name, levels in (("AR", self.num_levels), ("parallel", self.parallel_levels)):
            if levels > codec.num_codebooks:
                raise AudiolmError(f"the {name} acoustic stage uses {levels} codec levels; the codec has {codec.num_codebooks}")

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
        if "coarse" not in stages and "parallel" not in stages:
            raise FileError(folder, "bundle has no acoustic stage (coarse-lm/ or parallel-lm/)")
        tokenizer = SemanticTokenizer.load(folder / "semantic")
        codec = Codec.load(folder / "codec", device)
        return cls(tokenizer.to(device), codec, **stages)

    def stages(self) -> dict[str, Stage]:
        """The bundle's stage LMs by part name (`PARTS`), those it has."""
        return {name: getattr(self, name) for name in PARTS if getattr(self, name) is not None}

    @property
    def sample_rate(self) -> int:
        return self.codec.sample_rate

    @property
    def parallel_levels(self) -> int:
        """Codec levels the parallel stage decodes (0 without one)."""
        return self.parallel.spec.target_levels if self.parallel is not None else 0

    @property
    def ratio(self) -> int:
        """Acoustic frames per semantic frame (of the stages that read both; the acoustic-only ones read codes alone)."""
        return (self.coarse or self.parallel).spec.ratio

    @property
    def vocabularies(self) -> dict[str, int]:
        """The ids each stage draws one token from: semantic ids, or one codec level's codes."""
        size = (self.coarse or self.parallel).spec.codebook_size
        return {"semantic": self.semantic.spec.semantic_vocab, "coarse": size, "fine": size}

    def acoustic_stage(self, acoustic: str = "auto") -> str:
        """`"ar"` or `"parallel"`: the acoustic stage that `acoustic` ("auto", "parallel", "ar") picks in this bundle."""
        if acoustic not in ACOUSTIC:
            raise AudiolmError(f"acoustic stage must be one of {', '.join(ACOUSTIC)}, got {acoustic!r}")
        if acoustic == "auto":
            return "parallel" if self.parallel is not None else "ar"
        if acoustic == "parallel" and self.parallel is None:
            raise AudiolmError("this bundle has no parallel acoustic stage (parallel-lm/)")
        if acoustic == "ar" and self.coarse is None:
            raise AudiolmError("this bundle has no autoregressive acoustic stage (coarse-lm/)")
        return acoustic

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
        for name in ("first", "rest"):
            s = getattr(sampling.parallel, name)
            limits.check_number(f"parallel temperature ({name})", s.temperature, 0.0, limits.MAX_TEMPERATURE)
        for n in sampling.parallel.iterations:
            limits.check_count("parallel iterations", n, 1, limits.MAX_PARALLEL_ITERATIONS)
        limits.check_number("parallel guidance", sampling.parallel.guidance, 0.0, limits.MAX_GUIDANCE)
        if wav is not None:
            length = wav.shape[-1] / self.sample_rate
            if length > max_seconds + 1 / self.codec.frame_rate:  # a resampled cut may end a sample or two late
                raise AudiolmError(f"{what}: must be at most {max_seconds:g} s long (got {length:.1f} s)")
            if what == "prompt" and length < limits.MIN_PROMPT_SECONDS:
                raise AudiolmError(f"{what}: must be at least {limits.MIN_PROMPT_SECONDS:g} s long (got {length:.3f} s)")

    def _levels(self, acoustic: str, levels: int | None) -> int:
        """Codec levels to decode: the AR stages' own, or 1..all of the parallel stage's (`levels`, default all)."""
        if acoustic == "ar":
            if levels is not None and levels != self.num_levels:
                raise AudiolmError(f"the AR acoustic stage decodes {self.num_levels} levels; --levels is for the parallel stage")
            return self.num_levels
        if levels is None:
            return self.parallel_levels
        limits.check_count("levels", levels, 1, self.parallel_levels)
        return levels

    @torch.inference_mode()
    def tokenize(self, wav: torch.Tensor, levels: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """`wav [1, 1, L]` -> aligned semantic ids `[1, n]` and codes `[1, Q, n * ratio]` (Q = `levels`, default the
        most any of the bundle's acoustic stages reads)."""
        wav = wav.to(self._device())
        ids = self.tokenizer(wav)
        codes = self.codec.encode(wav, levels or max(self.num_levels, self.parallel_levels))
        ratio = self.ratio
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
        return self._decode(semantic, codes, timings, prompt_frames)

    def _decode(self, semantic: torch.Tensor, codes: torch.Tensor, timings: dict[str, float], prompt_frames: int,
                acoustic: str = "ar", passes: int = 0) -> Generation:
        began = time.perf_counter()
        wav = self.codec.decode(codes)
        timings["codec"] = time.perf_counter() - began
        return Generation(wav, self.sample_rate, prompt_frames / self.codec.frame_rate, semantic, codes, timings, acoustic, passes)

    def _output(self, out: Generation, watermark: bool) -> Generation:
        """`out`, its whole wav watermarked unless `watermark` is False (`audiolm.watermark`; timed as "watermark")."""
        if watermark:
            began = time.perf_counter()
            out.wav = embed_watermark(out.wav, out.sample_rate)
            out.seconds_per_stage["watermark"] = time.perf_counter() - began
            out.watermarked = True
        return out

    def _parallel(self, semantic: torch.Tensor, prompt: torch.Tensor, frames: int, levels: int, sampling: StageSampling,
                  generator: torch.Generator, timings: dict[str, float], acoustic_only: bool = False,
                  given: torch.Tensor | None = None) -> Generation:
        """All `levels` of `frames` acoustic frames from the parallel stage (or its acoustic-only baseline), after the
        prompt's codes `[1, Q, P]` (every level of the stage; P may be 0), the first levels' codes `given` throughout."""
        stage = self.parallel_acoustic if acoustic_only else self.parallel
        unconditional = None
        if sampling.parallel.guidance > 0 and not acoustic_only:
            if self.parallel_acoustic is None:
                raise AudiolmError("guidance needs the acoustic-only parallel stage (parallel-acoustic-lm/), which this bundle lacks")
            unconditional = (self.parallel_acoustic.model, self.parallel_acoustic.spec)
        stats = ParallelStats()
        began = time.perf_counter()
        codes = generate_parallel(stage.model, stage.spec, None if acoustic_only else semantic, prompt, frames, sampling.parallel,
                                  generator, num_levels=levels, stats=stats, unconditional=unconditional, given=given)
        timings["parallel"] = time.perf_counter() - began
        return self._decode(semantic, codes, timings, prompt.shape[2], "parallel", stats.forward_passes)

    @torch.inference_mode()
    def continue_audio(self, prompt: torch.Tensor, seconds: float, seed: int = 0, sampling: StageSampling | None = None,
                       acoustic_only: bool = False, acoustic: str = "auto", levels: int | None = None,
                       watermark: bool = True) -> Generation:
        """Continue `prompt [1, 1, L]` by `seconds`, from its semantic and acoustic tokens (or, with
        `acoustic_only`, from its acoustic tokens alone with the acoustic stage's acoustic-only baseline). `acoustic`
        picks the acoustic stage (`acoustic_stage`); `levels` how many codec levels the parallel stage decodes (default
        all). Limits: `seconds` in (0, MAX_GENERATE_SECONDS], a prompt of at most MAX_PROMPT_SECONDS (`audiolm.limits`).
        Every method's output is watermarked (`audiolm.watermark`) unless `watermark=False`."""
        limits.check_number("seconds", seconds, 0.0, limits.MAX_GENERATE_SECONDS, above_low=True)
        sampling = sampling or StageSampling()
        acoustic = self.acoustic_stage(acoustic)
        levels = self._levels(acoustic, levels)
        if acoustic_only and (self.parallel_acoustic if acoustic == "parallel" else self.acoustic) is None:
            raise AudiolmError(f"this bundle has no acoustic-only {acoustic} stage "
                               f"({PARTS['parallel_acoustic' if acoustic == 'parallel' else 'acoustic']}/)")
        self._check(sampling, prompt, limits.MAX_PROMPT_SECONDS, "prompt")
        generator = torch.Generator(self._device()).manual_seed(seed)
        timings: dict[str, float] = {}
        began = time.perf_counter()
        ids, codes = self.tokenize(prompt, self.parallel_levels if acoustic == "parallel" else self.num_levels)
        if ids.shape[1] == 0:
            raise AudiolmError("the prompt is shorter than one semantic frame")
        timings["tokenize"] = time.perf_counter() - began
        total = ids.shape[1] + max(1, round(seconds * self.semantic.spec.semantic_rate))
        frames = total * self.ratio
        if acoustic == "ar":
            expect_steps((frames - codes.shape[2]) * self.num_levels)
        began = time.perf_counter()
        if acoustic_only:
            semantic = ids
            timings["semantic"] = 0.0
        else:
            semantic = generate_semantic(self.semantic.model, self.semantic.spec, ids, total, sampling.semantic, generator)
            timings["semantic"] = time.perf_counter() - began
        if acoustic == "parallel":
            return self._output(self._parallel(semantic, codes, frames, levels, sampling, generator, timings, acoustic_only), watermark)
        Q = self.coarse.spec.num_coarse
        began = time.perf_counter()
        stage = self.acoustic if acoustic_only else self.coarse
        coarse = generate_coarse(stage.model, stage.spec, None if acoustic_only else semantic, codes[:, :Q], frames, sampling.coarse,
                                 generator)
        timings["coarse"] = time.perf_counter() - began
        return self._output(self._finish(semantic, coarse, codes[:, Q:], sampling, generator, timings, codes.shape[2]), watermark)

    @torch.inference_mode()
    def generate(self, seconds: float, seed: int = 0, sampling: StageSampling | None = None, acoustic: str = "auto",
                 levels: int | None = None, watermark: bool = True) -> Generation:
        """Unconditional: `seconds` (in (0, MAX_GENERATE_SECONDS]) of audio from nothing."""
        limits.check_number("seconds", seconds, 0.0, limits.MAX_GENERATE_SECONDS, above_low=True)
        sampling = sampling or StageSampling()
        acoustic = self.acoustic_stage(acoustic)
        levels = self._levels(acoustic, levels)
        self._check(sampling)
        device = self._device()
        generator = torch.Generator(device).manual_seed(seed)
        total = max(1, round(seconds * self.semantic.spec.semantic_rate))
        if acoustic == "ar":
            expect_steps(total * self.ratio * self.num_levels)
        timings: dict[str, float] = {"tokenize": 0.0}
        began = time.perf_counter()
        semantic = generate_semantic(self.semantic.model, self.semantic.spec, torch.zeros(1, 0, dtype=torch.long, device=device),
                                     total, sampling.semantic, generator)
        timings["semantic"] = time.perf_counter() - began
        return self._output(self._from_semantic(semantic, sampling, generator, timings, acoustic, levels), watermark)

    @torch.inference_mode()
    def resynthesize(self, wav: torch.Tensor, seed: int = 0, sampling: StageSampling | None = None, acoustic: str = "auto",
                     levels: int | None = None, watermark: bool = True, keep_levels: int = 0) -> Generation:
        """New acoustic tokens for `wav`'s true semantic ids: the same words, a voice drawn by `seed`; `wav [1, 1, L]`
        of at most MAX_GENERATE_SECONDS (`audiolm.limits`). `keep_levels` (the parallel stage): keep `wav`'s own codes
        at the first `keep_levels` codec levels and generate only the later ones (what those levels decide, e.g. an
        oracle for level 1)."""
        sampling = sampling or StageSampling()
        acoustic = self.acoustic_stage(acoustic)
        levels = self._levels(acoustic, levels)
        if keep_levels and (acoustic != "parallel" or not 0 < keep_levels < levels):
            raise AudiolmError(f"keep_levels needs the parallel stage and fewer levels than it decodes ({levels}), got {keep_levels}")
        self._check(sampling, wav, limits.MAX_GENERATE_SECONDS, "wav")
        generator = torch.Generator(self._device()).manual_seed(seed)
        began = time.perf_counter()
        semantic, codes = self.tokenize(wav, max(keep_levels, 1))
        timings = {"tokenize": time.perf_counter() - began, "semantic": 0.0}
        given = codes if keep_levels else None
        return self._output(self._from_semantic(semantic, sampling, generator, timings, acoustic, levels, given), watermark)

    def _from_semantic(self, semantic: torch.Tensor, sampling: StageSampling, generator: torch.Generator,
                       timings: dict[str, float], acoustic: str, levels: int, given: torch.Tensor | None = None) -> Generation:
        frames = semantic.shape[1] * self.ratio
        if acoustic == "parallel":
            empty = torch.zeros(1, self.parallel_levels, 0, dtype=torch.long, device=semantic.device)
            return self._parallel(semantic, empty, frames, levels, sampling, generator, timings, given=given)
        Q = self.coarse.spec.num_coarse
        began = time.perf_counter()
        empty = torch.zeros(1, Q, 0, dtype=torch.long, device=semantic.device)
        coarse = generate_coarse(self.coarse.model, self.coarse.spec, semantic, empty, frames, sampling.coarse, generator)
        timings["coarse"] = time.perf_counter() - began
        no_fine = torch.zeros(1, self.num_levels - Q, 0, dtype=torch.long, device=semantic.device)
        return self._finish(semantic, coarse, no_fine, sampling, generator, timings, 0)
