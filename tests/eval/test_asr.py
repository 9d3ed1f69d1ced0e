"""Word error rate and the real Whisper tiny.en transcriber on synthesized speech."""

import numpy as np
import pytest

from audiolm.data.speakers import Speaker
from audiolm.data.tts import synthesize
from audiolm.eval.asr import Transcriber, normalize_text, word_error_rate


def test_normalisation_and_corpus_level_wer():
    assert normalize_text("Hello, World! It's a well-known fact.") == "hello world it's a well known fact"
    assert word_error_rate(["hello world"], ["Hello, word."]) == 0.5
    assert word_error_rate(["a b c d", "e f"], ["", "e f"]) == pytest.approx(4 / 6)  # nothing heard: all deleted
    assert word_error_rate(["one two"], ["one two three four"]) == 1.0  # insertions count
    with pytest.raises(ValueError):
        word_error_rate(["!!"], ["x"])


def test_whisper_transcribes_synthesized_speech():
    text = "the weather is nice today and the children play outside"
    clip = synthesize([(Speaker("espeak", "en-us", 50), text)], 16000)[0]
    heard = Transcriber().transcribe(clip.wav, 16000)
    assert word_error_rate([text], [heard]) < 0.5, heard


def test_whisper_is_deterministic_on_hard_audio():
    """Noisy speech made Whisper fall back to sampling (a different text each time); now the same clip gives the same text."""
    rng = np.random.default_rng(0)
    text = "seven ships sailed over the quiet northern sea"
    clip = synthesize([(Speaker("espeak", "en-us", 50), text)], 16000)[0].wav
    noisy = clip + 0.3 * np.abs(clip).max() * rng.standard_normal(len(clip)).astype(np.float32)
    asr = Transcriber()
    assert len({asr.transcribe(noisy, 16000) for _ in range(3)}) == 1
