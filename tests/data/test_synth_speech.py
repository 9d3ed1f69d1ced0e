"""A tiny synthetic speech corpus: manifests, held-out speakers, alignments, resume."""

import json

import pytest
import soundfile as sf

from audiolm.data.manifest import read_manifest
from audiolm.data.synth_speech import SpeechCorpusConfig, build_speech_corpus
from audiolm.errors import AudiolmError

CONFIG = dict(num_speakers=6, valid_speakers=2, test_speakers=2, seed=1)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("speech")
    summary = build_speech_corpus(out, SpeechCorpusConfig(hours=0.01, **CONFIG), workers=2, progress=False)
    return out, summary


def test_corpus_reaches_its_hours_with_all_splits(corpus):
    out, summary = corpus
    assert 0.01 <= summary["all"]["hours"] < 0.03
    assert summary["failed"] == 0
    assert summary["train"]["speakers"] == 6
    assert {"train", "valid", "test"} <= set(summary)
    for name in ("manifest.jsonl", "manifest.train.jsonl", "manifest.valid.jsonl", "manifest.test.jsonl", "corpus.json"):
        assert (out / name).is_file()


def test_held_out_speakers_never_appear_in_train(corpus):
    out, _ = corpus
    speakers = {split: {e.speaker for e in read_manifest(out / f"manifest.{split}.jsonl")} for split in ("train", "valid", "test")}
    assert speakers["valid"] and speakers["test"]
    assert not speakers["train"] & speakers["valid"]
    assert not speakers["train"] & speakers["test"]


def test_every_utterance_is_16khz_with_text_and_an_alignment_covering_it(corpus):
    out, _ = corpus
    entries = read_manifest(out / "manifest.jsonl")
    assert len(entries) >= 8
    for e in entries:
        info = sf.info(str(e.audio_path(out)))
        assert info.samplerate == 16000 and info.channels == 1
        assert e.duration == pytest.approx(info.frames / 16000)
        assert e.text and len(e.text.split()) >= 4
        phones = e.phones
        assert phones[0][1] == 0.0
        assert phones[-1][2] == pytest.approx(e.duration, abs=1e-3)
        assert all(abs(a[2] - b[1]) < 1e-3 for a, b in zip(phones, phones[1:]))
        assert e.extra["phone_set"] in {"espeak-ipa", "cmu-arpabet", "festival-radio"}


def test_rerun_resumes_without_rewriting(corpus, tmp_path):
    out, summary = corpus
    wavs = sorted((out / "audio").glob("*/*.wav"))
    before = {p: p.stat().st_mtime_ns for p in wavs}
    again = build_speech_corpus(out, SpeechCorpusConfig(hours=0.01, **CONFIG), workers=1, progress=False)
    assert again["all"] == summary["all"]
    assert {p: p.stat().st_mtime_ns for p in wavs} == before
    more = build_speech_corpus(out, SpeechCorpusConfig(hours=0.02, **CONFIG), workers=2, progress=False)
    assert more["all"]["hours"] >= 0.02 and more["all"]["utterances"] > summary["all"]["utterances"]
    assert all(p.stat().st_mtime_ns == t for p, t in before.items())


def test_other_settings_in_the_same_folder_are_refused(corpus):
    out, _ = corpus
    with pytest.raises(AudiolmError, match="other settings"):
        build_speech_corpus(out, SpeechCorpusConfig(hours=0.01, **{**CONFIG, "seed": 2}), progress=False)


def test_a_deleted_utterance_is_made_again_identically(corpus):
    out, _ = corpus
    meta_path = sorted((out / "audio").glob("*/*.json"))[0]
    wav_path = meta_path.with_suffix(".wav")
    meta = json.loads(meta_path.read_text())
    hours = json.loads((out / "summary.json").read_text())["all"]["hours"]
    meta_path.unlink()
    wav_path.unlink()
    # The corpus is now short of its hours; the lowest missing utterance is made first.
    build_speech_corpus(out, SpeechCorpusConfig(hours=hours, **CONFIG), workers=1, progress=False)
    again = json.loads(meta_path.read_text())
    assert {k: again[k] for k in ("speaker", "text", "split", "voice")} == {k: meta[k] for k in ("speaker", "text", "split", "voice")}
    assert again["duration"] == pytest.approx(meta["duration"], abs=0.05)  # espeak keeps a few samples of state
    assert [p[0] for p in again["phones"]] == [p[0] for p in meta["phones"]]
    assert wav_path.is_file()
