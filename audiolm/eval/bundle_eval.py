"""`audiolm eval`: one command that measures a model bundle on held-out audio and writes a markdown report with
plots and example wavs (the paper's Tables II and III, its minimal pairs, and the codec's own metrics).

    results = evaluate_bundle("models/speech", "data/speech/manifest.jsonl", "reports/speech", EvalConfig())

Speech sections: continuation (speaker identification of continuations against enrolled held-out speakers, full
model against the acoustic-only baseline), intelligibility (Whisper WER of original audio, codec reconstruction and
acoustic resynthesis from the true semantic tokens), the semantic LM (perplexity on held-out tokens, lexical and
syntactic minimal pairs), the codec (PESQ-wb, STOI). Piano: continuations with spectrograms, perplexity, codec.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from audiolm.errors import AudiolmError

KINDS = ("speech", "piano")


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

    # --- sections ----------------------------------------------------------------------------------
    def continuation(self) -> None:
        """Continue held-out prompts with the full model and the acoustic-only baseline; who do the continuations sound like?"""
        from audiolm.audio.io import save_audio
        from audiolm.audio.plot import plot_spectrograms

        c = self.config
        long_enough = [e for e in self.held_out if e.duration >= c.prompt_seconds]
        prompts = _pick_round_robin(long_enough, c.prompts)
        if not prompts:
            raise AudiolmError(f"{self.manifest}: no {c.split} utterance is {c.prompt_seconds:g} s long for a prompt")
        systems = {"full": False} | ({"acoustic-only": True} if self.audiolm.acoustic is not None else {})
        speech = c.kind == "speech"
        embeddings: dict[str, list[np.ndarray]] = {"prompt": [], **{name: [] for name in systems}}
        seconds_per_second: dict[str, list[float]] = {name: [] for name in systems}
        examples = self.output / "examples"
        heard: list[dict] = []
        for i, entry in enumerate(self._bar(prompts, "continuations")):
            prompt = self._load(entry, c.prompt_seconds)
            who = f"{entry.speaker}, " if entry.speaker else ""
            pictures = {f"prompt ({who}{prompt.shape[-1] / self.sample_rate:.1f} s)": prompt[0]}
            if speech:
                embeddings["prompt"].append(self._embed(prompt))
            for name, acoustic_only in systems.items():
                began = time.perf_counter()
                out = self.audiolm.continue_audio(prompt, c.continue_seconds, seed=c.seed + i, acoustic_only=acoustic_only)
                seconds_per_second[name].append((time.perf_counter() - began) / c.continue_seconds)
                new = out.wav[..., round(out.prompt_seconds * self.sample_rate):]
                if speech:
                    embeddings[name].append(self._embed(new))
                if i < c.examples:
                    pictures[f"{name}: prompt + {c.continue_seconds:g} s continuation"] = out.wav[0]
                    save_audio(examples / f"prompt{i}-{name}.wav", out.wav[0], self.sample_rate)
                    if speech:  # what an ASR hears in the new audio: words, or babble
                        heard.append({"prompt": i, "system": name, "prompt_text": entry.text or "", "heard": self._transcribe(new)})
            if i < c.examples:
                save_audio(examples / f"prompt{i}.wav", prompt[0], self.sample_rate)
                png = plot_spectrograms(pictures, self.sample_rate, self.output / f"continuation{i}.png")
                self.figures.append((f"Prompt {i} and its continuations", png.name))
        section: dict = {"prompts": len(prompts), "seconds": c.continue_seconds,
                         "generation_seconds_per_second": {k: float(np.mean(v)) for k, v in seconds_per_second.items()}}
        if speech:
            from audiolm.eval.speaker import prompt_similarity, speaker_accuracy

            prompt_ids = {e.id for e in prompts}
            enrolled = []
            for speaker in sorted({e.speaker for e in prompts}):
                others = [e for e in self.held_out if e.speaker == speaker and e.id not in prompt_ids][: c.enrollment]
                enrolled += others or [e for e in prompts if e.speaker == speaker][:1]
            enrollment = np.stack([self._embed(self._load(e)) for e in self._bar(enrolled, "enrollment")])
            enrolled_speakers = [e.speaker for e in enrolled]
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

    def intelligibility(self) -> None:
        """Whisper WER of original audio, codec reconstructions and resynthesis from the true semantic tokens (Table II);
        PESQ-wb / STOI of the reconstructions."""
        from audiolm.audio.io import save_audio
        from audiolm.eval.asr import word_error_rate
        from audiolm.eval.codec_metrics import pesq_wb, stoi

        c = self.config
        utterances = _pick_round_robin([e for e in self.held_out if e.text], c.resynth)
        if not utterances:
            self.log("intelligibility: no held-out transcripts; skipped")
            return
        codec, levels = self.audiolm.codec, self.audiolm.num_levels
        systems = {"original": [], f"codec, {levels} levels (the LMs')": [], f"codec, {codec.num_codebooks} levels": [],
                   "resynthesis (true semantic tokens)": []}
        quality: dict[str, list[tuple[float, float]]] = {name: [] for name in list(systems)[1:3]}
        resynth_similarity = []
        for i, entry in enumerate(self._bar(utterances, "intelligibility")):
            wav = self._load(entry)
            with torch.inference_mode():
                few = codec.decode(codec.encode(wav, levels))
                every = codec.decode(codec.encode(wav))
            resynth = self.audiolm.resynthesize(wav, seed=c.seed + i).wav
            for name, audio in zip(systems, (wav, few, every, resynth)):
                systems[name].append(self._transcribe(audio))
            reference = wav.reshape(-1).numpy()
            for name, audio in zip(quality, (few, every)):
                quality[name].append((pesq_wb(reference, audio.reshape(-1).numpy()), stoi(reference, audio.reshape(-1).numpy())))
            resynth_similarity.append(float(self._embed(resynth) @ self._embed(wav)))
            if i < c.examples:
                save_audio(self.output / "examples" / f"resynth{i}-original.wav", wav[0], self.sample_rate)
                save_audio(self.output / "examples" / f"resynth{i}.wav", resynth[0], self.sample_rate)
        references = [e.text for e in utterances]
        self.results["intelligibility"] = {
            "asr": f"Whisper {c.asr}",
            "utterances": len(utterances),
            "wer": {name: word_error_rate(references, hyps) for name, hyps in systems.items()},
            "codec": {name: {"pesq_wb": float(np.mean([q[0] for q in rows])), "stoi": float(np.mean([q[1] for q in rows]))}
                      for name, rows in quality.items()},
            "resynthesis_speaker_similarity": float(np.mean(resynth_similarity)),
            "examples": [{"text": e.text, **{name: hyps[i] for name, hyps in systems.items()}} for i, e in enumerate(utterances[:3])],
        }

    def codec(self) -> None:
        """Log-mel distance of the codec's reconstructions (at the LMs' levels and at all levels) of held-out clips."""
        from audiolm.eval.codec_metrics import mel_distance

        codec, levels = self.audiolm.codec, self.audiolm.num_levels
        clips = _pick_round_robin(self.held_out, self.config.resynth)
        distances: dict[str, list[float]] = {f"{levels} levels (the LMs')": [], f"{codec.num_codebooks} levels": []}
        for entry in self._bar(clips, "codec"):
            wav = self._load(entry)
            with torch.inference_mode():
                for name, n in zip(distances, (levels, codec.num_codebooks)):
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

    def coarse_lm(self) -> None:
        """Cross-entropy per coarse level of held-out tokens under the coarse LM (given the true semantic tokens) and
        the acoustic-only LM: what the semantic conditioning buys, level by level."""
        from audiolm.lm.loss import LevelTotals, stage_loss

        systems = {"full": self.audiolm.coarse} | ({"acoustic-only": self.audiolm.acoustic} if self.audiolm.acoustic else {})
        totals = {name: LevelTotals() for name in systems}
        utterances = _pick_round_robin(self.held_out, max(self.config.resynth, 32))
        with torch.inference_mode():
            for entry in self._bar(utterances, "coarse LM"):
                ids, codes = self.audiolm.tokenize(self._load(entry))
                for name, stage in systems.items():
                    n = min(ids.shape[1], stage.spec.window_frames // stage.spec.ratio)  # the first window of the utterance
                    batch = stage.spec.example(ids[:, :n], codes[:, :, : n * stage.spec.ratio])
                    totals[name].add(stage_loss(stage.model, stage.spec, batch)[1])
        self.results["coarse_lm"] = {"utterances": len(utterances), "codebook_size": self.audiolm.coarse.spec.codebook_size,
                                     "systems": {name: {"ce": t.mean_ce(), "ce_per_level": [t.ce[k] / t.count[k] for k in sorted(t.count)],
                                                        "accuracy_per_level": [t.correct[k] / t.count[k] for k in sorted(t.count)]}
                                                 for name, t in totals.items()}}

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
        self.results["minutes"] = (time.perf_counter() - began) / 60
        from audiolm.eval.report import write_report
        from audiolm.formats.atomic import write_json

        write_json(self.output / "results.json", self.results)
        write_report(self.results, self.figures, self.output / "report.md")
        return self.results


def evaluate_bundle(models: str | Path, manifest: str | Path, output: str | Path, config: EvalConfig | None = None,
                    progress: bool = True, log: Callable[[str], None] = print) -> dict:
    return BundleEvaluation(models, manifest, output, config or EvalConfig(), progress, log).run()
