"""`audiolm eval`: one command that measures a model bundle on held-out audio and writes a markdown report with
plots and example wavs (the paper's Tables II and III, its minimal pairs, and the codec's own metrics).

    results = evaluate_bundle("models/speech", "data/speech/manifest.jsonl", "reports/speech", EvalConfig())

Speech sections: continuation (speaker identification of continuations against enrolled held-out speakers, full
model against the acoustic-only baseline), intelligibility (Whisper WER of original audio, codec reconstruction and
acoustic resynthesis from the true semantic tokens), the semantic LM (perplexity on held-out tokens, lexical and
syntactic minimal pairs), the acoustic LMs (per-level cross-entropy), the codec (PESQ-wb, STOI). Piano: continuations
with spectrograms, perplexity, codec.

A bundle with both acoustic stages (the autoregressive coarse LM, "AR", and the parallel one) is measured with each,
on the same prompts, utterances and seeds: systems are then named by stage ("full (AR)", "acoustic-only (parallel)");
with one stage they keep the plain names ("full", "acoustic-only"). Each section method takes the `System`s to run,
so that benchmarks (benchmarks/bench_acoustic.py) measure other settings with the same code.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from tqdm import tqdm

from audiolm.errors import AudiolmError

if TYPE_CHECKING:
    from audiolm.generation.pipeline import Generation, StageSampling

KINDS = ("speech", "piano")
LABELS = {"ar": "AR", "parallel": "parallel"}  # the acoustic stages as the report names them
MASK_SEED = 1234  # the parallel stage's masks in the acoustic-LM section (as its trainer's validation)


@dataclass(kw_only=True)
class EvalConfig:
    kind: str = "speech"
    split: str = "test"  # held-out utterances to draw prompts and references from
    prompts: int = 16  # continuations per system
    prompt_seconds: float = 3.0
    continue_seconds: float = 4.0
    enrollment: int = 3  # utterances per speaker (not prompts) that define its voice
    resynth: int = 16  # utterances for intelligibility and codec metrics
    pairs: int = 40  # minimal pairs of each kind
    examples: int = 2  # prompts whose audio and spectrograms go into the report
    seed: int = 0
    asr: str | None = None  # Whisper model for WER: "tiny.en" or "base"; None: base where installed, else tiny.en

    def __post_init__(self) -> None:
        from audiolm.eval.asr import MODELS, default_model

        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if self.asr is None:
            self.asr = default_model()
        if self.asr not in MODELS:
            raise ValueError(f"asr must be one of {', '.join(MODELS)}, got {self.asr!r}")


@dataclass
class System:
    """One way to make acoustic tokens: the `acoustic` stage ("ar" or "parallel"), with semantic tokens or without
    (`acoustic_only`, its baseline), decoding `levels` codec levels (the parallel stage's choice; None: all of the
    stage's) with `sampling` (None: the defaults); in resynthesis, `keep_levels` keeps the input's own codes at the
    first levels (an oracle: what the later levels cost)."""

    name: str
    acoustic: str
    acoustic_only: bool = False
    levels: int | None = None
    sampling: StageSampling | None = None
    keep_levels: int = 0


def _mask_generator(seed: int, index: int, level: int) -> torch.Generator:
    """The generator of the masks of utterance `index` at `level` (-1: the semantic shuffle): fixed by `seed`."""
    return torch.Generator().manual_seed(MASK_SEED + seed * 1_000_003 + index * 101 + level + 1)


def _pick_round_robin(entries: list, count: int) -> list:
    """Up to `count` entries, speakers taken in turn (so every held-out speaker is represented)."""
    by_speaker: dict[str, list] = {}
    for entry in entries:
        by_speaker.setdefault(entry.speaker or "", []).append(entry)
    queues, picked = [list(v) for _, v in sorted(by_speaker.items())], []
    while len(picked) < count and any(queues):
        for queue in queues:
            if queue and len(picked) < count:
                picked.append(queue.pop(0))
    return picked


def _slug(name: str, lead: str = "") -> str:
    """A system's name as part of a file name: "full (AR)" -> "full-ar" (`lead` before it, if any)."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return f"{lead}{slug}" if slug else ""


def _shown(path: str | Path) -> str:
    """A path as the report shows it: relative to the working directory when it lies inside it."""
    path = Path(path).resolve()
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path)


class BundleEvaluation:
    def __init__(self, models: str | Path, manifest: str | Path, output: str | Path, config: EvalConfig, progress: bool = True,
                 log: Callable[[str], None] = print) -> None:
        from audiolm.data.manifest import read_manifest
        from audiolm.generation.pipeline import AudioLM, bundle_folder

        self.config, self.progress, self.log = config, progress, log
        self.output = Path(output)
        self.manifest = Path(manifest)
        self.root = self.manifest.parent
        self.entries = read_manifest(self.manifest)
        self.held_out = [e for e in self.entries if e.split == config.split]
        if not self.held_out:
            raise AudiolmError(f"{manifest}: no entries in split {config.split!r} to evaluate on")
        self.audiolm = AudioLM.load(models)
        self.sample_rate = self.audiolm.sample_rate
        self.results: dict = {"config": asdict(config), "models": _shown(bundle_folder(models)), "manifest": _shown(manifest)}
        self.figures: list[tuple[str, str]] = []
        self._speaker_encoder = None
        self._transcriber = None

    # --- helpers -----------------------------------------------------------------------------------
    def _load(self, entry, seconds: float | None = None) -> torch.Tensor:
        from audiolm.audio.io import load_audio

        wav = load_audio(entry.audio_path(self.root), self.sample_rate)[:1]  # [1, L]
        if seconds is not None:
            wav = wav[:, : int(seconds * self.sample_rate)]
        return wav[None]  # [1, 1, L]

    def _embed(self, wav: torch.Tensor) -> np.ndarray:
        if self._speaker_encoder is None:
            from audiolm.eval.speaker import SpeakerEncoder

            self._speaker_encoder = SpeakerEncoder()
        return self._speaker_encoder.embed(wav.reshape(-1).numpy(), self.sample_rate)

    def _transcribe(self, wav: torch.Tensor) -> str:
        if self._transcriber is None:
            from audiolm.eval.asr import Transcriber

            self._transcriber = Transcriber(self.config.asr)
        return self._transcriber.transcribe(wav.reshape(-1).numpy(), self.sample_rate)

    def _bar(self, items, desc: str):
        return tqdm(items, desc=desc, unit="clip", disable=not self.progress)

    # --- acoustic stages ---------------------------------------------------------------------------
    @property
    def acoustics(self) -> list[str]:
        """The bundle's acoustic stages: "ar" (the coarse LM) and / or "parallel"."""
        return [a for a, stage in (("ar", self.audiolm.coarse), ("parallel", self.audiolm.parallel)) if stage is not None]

    def _named(self, name: str, acoustic: str) -> str:
        """`name`, with its acoustic stage where the bundle has two."""
        return f"{name} ({LABELS[acoustic]})" if len(self.acoustics) > 1 else name

    def continuation_systems(self) -> list[System]:
        """Per acoustic stage, the full model and (where the bundle has it) its acoustic-only baseline."""
        systems = []
        for acoustic in self.acoustics:
            systems.append(System(name=self._named("full", acoustic), acoustic=acoustic))
            if (self.audiolm.acoustic if acoustic == "ar" else self.audiolm.parallel_acoustic) is not None:
                systems.append(System(name=self._named("acoustic-only", acoustic), acoustic=acoustic, acoustic_only=True))
        return systems

    def resynthesis_systems(self) -> list[System]:
        """Resynthesis from the true semantic tokens with each acoustic stage."""
        if len(self.acoustics) == 1:
            return [System(name="resynthesis (true semantic tokens)", acoustic=self.acoustics[0])]
        return [System(name=f"resynthesis (true semantic tokens, {LABELS[a]})", acoustic=a) for a in self.acoustics]

    def stage_levels(self) -> dict[str, int]:
        """The codec levels each acoustic stage decodes."""
        return {a: self.audiolm.num_levels if a == "ar" else self.audiolm.parallel_levels for a in self.acoustics}

    def codec_levels(self) -> dict[str, int]:
        """The codec reconstructions to measure, by name: at each acoustic stage's levels, then at all levels."""
        stages_at: dict[int, list[str]] = {}
        for acoustic, n in self.stage_levels().items():
            stages_at.setdefault(n, []).append(LABELS[acoustic])
        if len(self.acoustics) == 1:
            names = {f"{n} levels (the LMs')": n for n in stages_at}
        else:
            names = {f"{n} levels (the {' and '.join(w)} " + ("stages')" if len(w) > 1 else "stage's)"): n for n, w in stages_at.items()}
        return names | {f"{self.audiolm.codec.num_codebooks} levels": self.audiolm.codec.num_codebooks}

    def describe_stages(self) -> dict[str, dict]:
        """What each acoustic stage is, for the report: its parts, levels and (parallel) default iterations."""
        from audiolm.generation.pipeline import StageSampling

        stages = {}
        for acoustic, levels in self.stage_levels().items():
            if acoustic == "ar":
                parts = "coarse LM" + (" + fine LM" if self.audiolm.fine is not None else "")
                stages[LABELS[acoustic]] = {"acoustic": acoustic, "levels": levels, "model": f"autoregressive {parts}",
                                            "baseline": self.audiolm.acoustic is not None}
            else:
                stages[LABELS[acoustic]] = {"acoustic": acoustic, "levels": levels, "model": "parallel (SoundStorm-style, masked)",
                                            "iterations": list(StageSampling().parallel.iterations),
                                            "baseline": self.audiolm.parallel_acoustic is not None}
        return stages

    def generate(self, system: System, wav: torch.Tensor, seed: int, seconds: float | None = None) -> tuple[Generation, float, float]:
        """Continue `wav [1, 1, L]` by `seconds` (None: resynthesize it) with `system` -> the generation, the seconds it
        took per generated second, and the acoustic stage's forward passes per generated second (the AR stage: one
        KV-cached step per acoustic token)."""
        began = time.perf_counter()
        if seconds is None:
            assert not system.acoustic_only, "resynthesis reads the true semantic tokens"
            out = self.audiolm.resynthesize(wav, seed=seed, sampling=system.sampling, acoustic=system.acoustic, levels=system.levels,
                                            keep_levels=system.keep_levels)
        else:
            out = self.audiolm.continue_audio(wav, seconds, seed=seed, sampling=system.sampling, acoustic_only=system.acoustic_only,
                                              acoustic=system.acoustic, levels=system.levels)
        elapsed = time.perf_counter() - began
        generated = max(out.wav.shape[-1] / self.sample_rate - out.prompt_seconds, 1e-9)
        new_frames = out.codes.shape[2] - round(out.prompt_seconds * self.audiolm.codec.frame_rate)
        passes = out.forward_passes if out.acoustic == "parallel" else new_frames * out.codes.shape[1]
        return out, elapsed / generated, passes / generated

    def _speakers_enrolled(self, prompts: list) -> tuple[np.ndarray, list[str]]:
        """Speaker vectors `[N, 256]` of up to `enrollment` other held-out utterances of each prompt's speaker (the
        prompt itself where there is none), and their speakers."""
        prompt_ids = {e.id for e in prompts}
        enrolled = []
        for speaker in sorted({e.speaker for e in prompts}):
            others = [e for e in self.held_out if e.speaker == speaker and e.id not in prompt_ids][: self.config.enrollment]
            enrolled += others or [e for e in prompts if e.speaker == speaker][:1]
        return np.stack([self._embed(self._load(e)) for e in self._bar(enrolled, "enrollment")]), [e.speaker for e in enrolled]

    # --- sections ----------------------------------------------------------------------------------
    def continuation(self, systems: list[System] | None = None) -> dict:
        """Continue held-out prompts with each system (default: each acoustic stage's full model and acoustic-only
        baseline, `continuation_systems`), all from the same seeds; who do the continuations sound like?"""
        from audiolm.audio.io import save_audio
        from audiolm.audio.plot import plot_spectrograms

        c = self.config
        systems = systems or self.continuation_systems()
        long_enough = [e for e in self.held_out if e.duration >= c.prompt_seconds]
        prompts = _pick_round_robin(long_enough, c.prompts)
        if not prompts:
            raise AudiolmError(f"{self.manifest}: no {c.split} utterance is {c.prompt_seconds:g} s long for a prompt")
        speech = c.kind == "speech"
        embeddings: dict[str, list[np.ndarray]] = {"prompt": [], **{s.name: [] for s in systems}}
        seconds_per_second: dict[str, list[float]] = {s.name: [] for s in systems}
        passes: dict[str, list[float]] = {s.name: [] for s in systems}
        examples = self.output / "examples"
        heard: list[dict] = []
        for i, entry in enumerate(self._bar(prompts, "continuations")):
            prompt = self._load(entry, c.prompt_seconds)
            who = f"{entry.speaker}, " if entry.speaker else ""
            pictures = {f"prompt ({who}{prompt.shape[-1] / self.sample_rate:.1f} s)": prompt[0]}
            if speech:
                embeddings["prompt"].append(self._embed(prompt))
            for system in systems:
                name = system.name
                out, rate, per_second = self.generate(system, prompt, c.seed + i, c.continue_seconds)
                seconds_per_second[name].append(rate)
                passes[name].append(per_second)
                new = out.wav[..., round(out.prompt_seconds * self.sample_rate):]
                if speech:
                    embeddings[name].append(self._embed(new))
                if i < c.examples:
                    pictures[f"{name}: prompt + {c.continue_seconds:g} s continuation"] = out.wav[0]
                    save_audio(examples / f"prompt{i}-{_slug(name)}.wav", out.wav[0], self.sample_rate)
                    if speech:  # what an ASR hears in the new audio: words, or babble
                        heard.append({"prompt": i, "system": name, "prompt_text": entry.text or "", "heard": self._transcribe(new)})
            if i < c.examples:
                save_audio(examples / f"prompt{i}.wav", prompt[0], self.sample_rate)
                png = plot_spectrograms(pictures, self.sample_rate, self.output / f"continuation{i}.png")
                self.figures.append((f"Prompt {i} and its continuations", png.name))
        section: dict = {"prompts": len(prompts), "seconds": c.continue_seconds,
                         "acoustic": {s.name: s.acoustic for s in systems},
                         "generation_seconds_per_second": {k: float(np.mean(v)) for k, v in seconds_per_second.items()},
                         "forward_passes_per_second": {k: float(np.mean(v)) for k, v in passes.items()}}
        if speech:
            from audiolm.eval.speaker import prompt_similarity, speaker_accuracy

            enrollment, enrolled_speakers = self._speakers_enrolled(prompts)
            speakers = [e.speaker for e in prompts]
            rows = {}
            for name, vectors in embeddings.items():
                vectors = np.stack(vectors)
                row = speaker_accuracy(vectors, speakers, enrollment, enrolled_speakers)
                if name != "prompt":
                    row |= prompt_similarity(vectors, np.stack(embeddings["prompt"]), speakers)
                rows[name] = row
            section["speaker"] = rows
            section["heard"] = heard
        self.results["continuation"] = section
        return section

    def intelligibility(self, systems: list[System] | None = None, codec_levels: dict[str, int] | None = None,
                        wer: bool = True) -> dict:
        """Whisper WER of original audio, codec reconstructions (`codec_levels`: name -> levels, default
        `codec_levels()`) and resynthesis from the true semantic tokens by each system (default
        `resynthesis_systems()`) (Table II); PESQ-wb / STOI of the reconstructions; speaker similarity of each
        resynthesis to its original; time and forward passes per generated second. Without `wer`, no ASR (and
        utterances need no transcripts)."""
        from audiolm.audio.io import save_audio
        from audiolm.eval.asr import word_error_rate
        from audiolm.eval.codec_metrics import pesq_wb, stoi

        c = self.config
        systems = systems or self.resynthesis_systems()
        codec_levels = {f"codec, {name}": n for name, n in (codec_levels or self.codec_levels()).items()}
        utterances = _pick_round_robin([e for e in self.held_out if e.text or not wer], c.resynth)
        if not utterances:
            self.log("intelligibility: no held-out transcripts; skipped")
            return {}
        codec = self.audiolm.codec
        heard: dict[str, list[str]] = {"original": [], **{name: [] for name in codec_levels}, **{s.name: [] for s in systems}}
        quality: dict[str, list[tuple[float, float]]] = {name: [] for name in codec_levels}
        similarity: dict[str, list[float]] = {s.name: [] for s in systems}
        seconds_per_second: dict[str, list[float]] = {s.name: [] for s in systems}
        passes: dict[str, list[float]] = {s.name: [] for s in systems}
        by_stage = len({s.acoustic for s in systems}) == len(systems)  # example files: resynth0.wav, or -ar, -parallel, or by name
        tags = {s.name: "" if len(systems) == 1 else f"-{s.acoustic}" if by_stage else _slug(s.name, "-") for s in systems}
        for i, entry in enumerate(self._bar(utterances, "intelligibility")):
            wav = self._load(entry)
            reference = wav.reshape(-1).numpy()
            audio = {"original": wav}
            with torch.inference_mode():
                decoded = {n: codec.decode(codec.encode(wav, n)) for n in sorted(set(codec_levels.values()))}
            for name, n in codec_levels.items():
                audio[name] = decoded[n]
                quality[name].append((pesq_wb(reference, decoded[n].reshape(-1).numpy()), stoi(reference, decoded[n].reshape(-1).numpy())))
            original = self._embed(wav)
            for system in systems:
                out, rate, per_second = self.generate(system, wav, c.seed + i)
                audio[system.name] = out.wav
                similarity[system.name].append(float(self._embed(out.wav) @ original))
                seconds_per_second[system.name].append(rate)
                passes[system.name].append(per_second)
                if i < c.examples:
                    save_audio(self.output / "examples" / f"resynth{i}{tags[system.name]}.wav", out.wav[0], self.sample_rate)
            if wer:
                for name, hyps in heard.items():
                    hyps.append(self._transcribe(audio[name]))
            if i < c.examples:
                save_audio(self.output / "examples" / f"resynth{i}-original.wav", wav[0], self.sample_rate)
        section = {
            "utterances": len(utterances),
            "acoustic": {s.name: s.acoustic for s in systems},
            "codec": {name: {"pesq_wb": float(np.mean([q[0] for q in rows])), "stoi": float(np.mean([q[1] for q in rows]))}
                      for name, rows in quality.items()},
            "codec_levels": codec_levels,
            "resynthesis_speaker_similarity": {k: float(np.mean(v)) for k, v in similarity.items()},
            "generation_seconds_per_second": {k: float(np.mean(v)) for k, v in seconds_per_second.items()},
            "forward_passes_per_second": {k: float(np.mean(v)) for k, v in passes.items()},
        }
        if wer:
            references = [e.text for e in utterances]
            section |= {"asr": f"Whisper {c.asr}", "wer": {name: word_error_rate(references, hyps) for name, hyps in heard.items()},
                        "examples": [{"text": e.text, **{name: hyps[i] for name, hyps in heard.items()}}
                                     for i, e in enumerate(utterances[:3])]}
        self.results["intelligibility"] = section
        return section

    def codec(self) -> None:
        """Log-mel distance of the codec's reconstructions (at each acoustic stage's levels and at all levels) of held-out clips."""
        from audiolm.eval.codec_metrics import mel_distance

        codec, levels = self.audiolm.codec, self.codec_levels()
        clips = _pick_round_robin(self.held_out, self.config.resynth)
        distances: dict[str, list[float]] = {name: [] for name in levels}
        for entry in self._bar(clips, "codec"):
            wav = self._load(entry)
            with torch.inference_mode():
                for name, n in levels.items():
                    distances[name].append(mel_distance(wav.reshape(-1).numpy(), codec.decode(codec.encode(wav, n)).reshape(-1).numpy()))
        self.results["codec"] = {"clips": len(clips), "mel_distance": {k: float(np.mean(v)) for k, v in distances.items()}}

    def semantic_lm(self) -> None:
        """Perplexity of held-out semantic tokens under the semantic LM, against their own unigram distribution."""
        from audiolm.eval.likelihood import perplexity, semantic_logprobs, unigram_perplexity

        stage = self.audiolm.semantic
        utterances = _pick_round_robin(self.held_out, max(self.config.resynth, 32))
        ids = [self.audiolm.tokenizer(self._load(e))[0] for e in self._bar(utterances, "semantic tokens")]
        logprobs = [semantic_logprobs(stage.model, stage.spec, x) for x in ids if x.numel()]
        vocab = stage.spec.semantic_vocab
        self.results["semantic_lm"] = {"utterances": len(ids), "tokens": int(sum(x.numel() for x in ids)), "vocab": vocab,
                                       "perplexity": perplexity(logprobs), "unigram_perplexity": unigram_perplexity(ids, ids, vocab)}

    def coarse_lm(self) -> dict:
        """Cross-entropy and top-1 accuracy per level of held-out acoustic tokens (each utterance's first window),
        teacher-forced, under each acoustic stage's LM (given the true semantic tokens) and its acoustic-only baseline:
        what the semantic conditioning buys, level by level. The AR coarse LM predicts each token from those before
        it; the parallel stage predicts the masked codes of one level (`lm/parallel.py`: masks drawn per utterance
        and level from `MASK_SEED` and the seed, the same for both of its systems, as its trainer validates), and,
        reading semantic tokens shuffled in time, level 1 again (`shuffled_ce_1`)."""
        from audiolm.lm.loss import LevelTotals, stage_loss
        from audiolm.lm.parallel import masked_example, parallel_loss

        seed = self.config.seed
        stages = {"ar": (self.audiolm.coarse, self.audiolm.acoustic), "parallel": (self.audiolm.parallel, self.audiolm.parallel_acoustic)}
        systems = {s.name: (s, stages[s.acoustic][s.acoustic_only]) for s in self.continuation_systems()}
        totals = {name: LevelTotals() for name in systems}
        shuffled = {name: LevelTotals() for name in systems}
        utterances = _pick_round_robin(self.held_out, max(self.config.resynth, 32))
        with torch.inference_mode():
            for i, entry in enumerate(self._bar(utterances, "acoustic LMs")):
                ids, codes = self.audiolm.tokenize(self._load(entry))
                for name, (system, stage) in systems.items():
                    spec = stage.spec
                    n = min(ids.shape[1], spec.window_frames // spec.ratio)  # the first window of the utterance
                    if n == 0:
                        continue
                    semantic, window = ids[:, :n], codes[:, :, : n * spec.ratio]
                    if system.acoustic == "ar":
                        totals[name].add(stage_loss(stage.model, spec, spec.example(semantic, window))[1])
                        continue
                    window, semantic = window[:, : spec.target_levels], semantic if spec.use_semantic else None
                    for level in range(spec.target_levels):
                        batch = masked_example(spec, semantic, window, _mask_generator(seed, i, level), level=level)
                        totals[name].add(parallel_loss(stage.model, spec, batch)[1])
                    if semantic is not None:
                        order = torch.rand(semantic.shape, generator=_mask_generator(seed, i, -1)).argsort(dim=1)  # [1, n]
                        batch = masked_example(spec, semantic.gather(1, order), window, _mask_generator(seed, i, 0), level=0)
                        shuffled[name].add(parallel_loss(stage.model, spec, batch)[1])
        rows = {}
        for name, t in totals.items():
            system = systems[name][0]
            rows[name] = {"acoustic": system.acoustic, "acoustic_only": system.acoustic_only,
                          "objective": "next-token" if system.acoustic == "ar" else "masked", "ce": t.mean_ce(),
                          "ce_per_level": [t.ce[k] / t.count[k] for k in sorted(t.count)],
                          "accuracy_per_level": [t.correct[k] / t.count[k] for k in sorted(t.count)]}
            if shuffled[name].count:
                rows[name]["shuffled_ce_1"] = shuffled[name].ce[0] / shuffled[name].count[0]
        size = (self.audiolm.coarse or self.audiolm.parallel).spec.codebook_size
        section = {"utterances": len(utterances), "codebook_size": size, "systems": rows}
        self.results["coarse_lm"] = section
        return section

    def minimal_pairs(self) -> None:
        """Lexical (word / non-word) and syntactic (sentence / swapped words) pairs in held-out voices, scored by the
        semantic LM's log-likelihood."""
        from audiolm.data.speakers import choose_speakers, speaker_inventory
        from audiolm.eval.likelihood import semantic_logprobs
        from audiolm.eval.minimal_pairs import lexical_pairs, pair_accuracy, render_pairs, syntactic_pairs

        c = self.config
        texts = [e.text for e in self.entries if e.text and e.split == "train"]
        if not texts:
            self.log("minimal pairs: no training transcripts to draw words from; skipped")
            return
        voices = self._held_out_voices(choose_speakers, speaker_inventory)
        stage = self.audiolm.semantic
        section = {"voices": [v.id for v in voices]}
        for kind, pairs in (("lexical", lexical_pairs(texts, c.pairs, c.seed)), ("syntactic", syntactic_pairs(texts, c.pairs, c.seed))):
            scores = {"sum": ([], []), "mean": ([], [])}
            for real, fake in self._bar(render_pairs(pairs, voices, self.sample_rate, c.seed), f"{kind} pairs"):
                for side, wav in enumerate((real, fake)):
                    ids = self.audiolm.tokenizer(torch.from_numpy(np.asarray(wav, np.float32))[None, None])[0]
                    logp = semantic_logprobs(stage.model, stage.spec, ids)
                    scores["sum"][side].append(float(logp.sum()))
                    scores["mean"][side].append(float(logp.mean()) if logp.numel() else 0.0)
            section[kind] = {"pairs": len(pairs), "accuracy": pair_accuracy(*scores["sum"]),
                             "accuracy_per_token": pair_accuracy(*scores["mean"]),
                             "examples": [(p.real, p.fake) for p in pairs[:3]]}
        self.results["minimal_pairs"] = section

    def _held_out_voices(self, choose_speakers, speaker_inventory) -> list:
        """The corpus's held-out TTS voices (from its corpus.json), else the default held-out voices."""
        corpus = self.root / "corpus.json"
        wanted: list[str] = []
        if corpus.is_file():
            wanted = json.loads(corpus.read_text()).get("speakers", {}).get(self.config.split, [])
        inventory = {s.id: s for s in speaker_inventory()}
        voices = [inventory[w] for w in wanted if w in inventory]
        return voices or choose_speakers(100, 8, 8, seed=0)["test"]

    # --- the report --------------------------------------------------------------------------------
    def run(self) -> dict:
        self.output.mkdir(parents=True, exist_ok=True)
        began = time.perf_counter()
        sections = [self.continuation, self.semantic_lm, self.coarse_lm]
        sections += [self.intelligibility, self.minimal_pairs] if self.config.kind == "speech" else [self.codec]
        for section in sections:
            self.log(f"eval: {section.__name__.replace('_', ' ')}")
            section()
        self.results["acoustic_stages"] = self.describe_stages()
        self.results["minutes"] = (time.perf_counter() - began) / 60
        from audiolm.eval.report import write_report
        from audiolm.formats.atomic import write_json

        write_json(self.output / "results.json", self.results)
        write_report(self.results, self.figures, self.output / "report.md")
        return self.results


def evaluate_bundle(models: str | Path, manifest: str | Path, output: str | Path, config: EvalConfig | None = None,
                    progress: bool = True, log: Callable[[str], None] = print) -> dict:
    return BundleEvaluation(models, manifest, output, config or EvalConfig(), progress, log).run()
