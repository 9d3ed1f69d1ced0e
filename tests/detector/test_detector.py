"""The generated-speech detector: its windows and gain invariance, its files, the detection corpus a bundle makes,
a tiny detector that learns, and the everyday processing it trains under."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from audiolm.audio.everyday import mp3, opus, random_processing, resampled
from audiolm.data.manifest import read_manifest, write_manifest
from audiolm.detector.data import build_detection_corpus
from audiolm.detector.metrics import binary_metrics
from audiolm.detector.model import Detector, DetectorConfig
from audiolm.errors import AudiolmError, FileError
from audiolm.generation.pipeline import AudioLM
from audiolm.train.detector import train_detector
from tests.helpers_codec import tone_manifest
from tests.helpers_lm import tiny_bundle

SMALL = DetectorConfig(channels=(4, 8, 8), n_mels=32, window_seconds=0.5)


def speech_manifest(folder):
    """Eight 1.5 s tones of eight speakers: five train, one valid, two test."""
    manifest = tone_manifest(folder, count=8, seconds=1.5)
    entries = read_manifest(manifest)
    for i, entry in enumerate(entries):
        entry.split = "train" if i < 5 else "valid" if i == 5 else "test"
    write_manifest(manifest, entries)
    return manifest


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("detect")
    manifest = speech_manifest(folder / "speech")
    model = AudioLM.load(tiny_bundle(folder / "bundle", parallel=True))
    path = build_detection_corpus(model, [manifest], folder / "corpus", {"train": 5, "valid": 1, "test": 2}, progress=False)
    return manifest, path, model


def test_windows_cover_a_clip_and_gain_changes_nothing():
    torch.manual_seed(0)
    detector = Detector(SMALL).eval()
    wav = torch.randn(int(1.3 * 16000)) * 0.1
    windows = detector.windows(wav)
    assert windows.shape == (5, 1, 8000)  # starts 0, 0.25, 0.5, 0.75 s and flush with the end (0.8 s)
    assert torch.equal(windows[-1, 0], wav[-8000:]) and torch.equal(windows[0, 0], wav[:8000])
    assert detector.windows(wav[:100]).shape == (1, 1, 8000)
    quiet = detector.logit(wav * 0.1)
    assert abs(detector.logit(wav) - quiet) < 1e-3 * max(1.0, abs(quiet))  # log-mel minus its mean
    assert 0.0 < detector.probability(wav) < 1.0


def test_save_load_round_trip_and_refusals(tmp_path):
    torch.manual_seed(0)
    detector = Detector(SMALL).eval()
    wav = torch.randn(16000) * 0.1
    detector.save(tmp_path / "d", dtype=torch.float16, metadata={"bundle": "tiny"})
    loaded = Detector.load(tmp_path / "d")
    assert loaded.config == SMALL
    assert abs(loaded.logit(wav) - detector.logit(wav)) < 0.05 * max(1.0, abs(detector.logit(wav)))  # fp16 weights
    config = json.loads((tmp_path / "d" / "config.json").read_text())
    assert config["trained_on"] == {"bundle": "tiny"}
    (tmp_path / "d" / "config.json").write_text(json.dumps({**config, "kind": "codec"}))
    with pytest.raises(FileError, match="is not a detector config"):
        Detector.load(tmp_path / "d")
    (tmp_path / "d" / "config.json").write_text(json.dumps(config))
    (tmp_path / "d" / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(FileError, match="corrupt or unreadable safetensors"):
        Detector.load(tmp_path / "d")


def test_corpus_pairs_each_original_with_a_generated_item_of_its_length_and_split(corpus):
    manifest, path, model = corpus
    originals = {e.id: e for e in read_manifest(manifest)}
    items = read_manifest(path)
    assert len(items) == 2 * 8
    generated = [e for e in items if e.extra["label"] == 1]
    kinds = [e.extra["kind"] for e in generated]
    # the tiny codec has 4 levels: of the codec kinds only 1.5 kbps (3 levels); the five train items take the kinds in turn
    assert kinds[:5] == ["codec-1.5kbps", "continue-parallel", "continue-ar", "continue-acoustic-only", "resynth"]
    for item in items:
        original = originals[item.extra["original"]]
        assert item.split == original.split
        assert abs(item.duration - original.duration) < 1e-3  # every kind as long as its original
        assert item.speaker == (None if item.extra["kind"] == "generate" else f"speech/{original.speaker}")
        assert item.extra["label"] == int(item.extra["kind"] != "original")
    split_files = {s: read_manifest(path.with_name(f"manifest.{s}.jsonl")) for s in ("train", "valid", "test")}
    assert [len(v) for v in split_files.values()] == [10, 2, 4]
    before = {p: p.stat().st_mtime_ns for p in (path.parent / "audio").rglob("*.wav")}
    build_detection_corpus(model, [manifest], path.parent, {"train": 5, "valid": 1, "test": 2}, progress=False)
    assert {p: p.stat().st_mtime_ns for p in (path.parent / "audio").rglob("*.wav")} == before  # a re-run makes nothing twice


def test_corpus_refuses_a_kind_the_bundle_cannot_make(tmp_path):
    model = AudioLM.load(tiny_bundle(tmp_path / "bundle"))  # no parallel stage
    with pytest.raises(AudiolmError, match="cannot make continue-parallel"):
        build_detection_corpus(model, [speech_manifest(tmp_path / "s")], tmp_path / "c", {"train": 1}, ["continue-parallel"])


@pytest.mark.usefixtures("one_thread")
def test_a_tiny_detector_learns_to_tell_the_bundles_outputs_from_originals(corpus, tmp_path):
    _, path, _ = corpus
    overrides = [f"data.manifest={path}", "model.channels=[4,8,8]", "model.n_mels=32", "model.window_seconds=0.5",
                 "train.steps=60", "train.batch_size=8", "train.warmup_steps=5", "train.valid_every=60", "train.log_every=10",
                 "augment_p=0.25"]
    result = train_detector(None, tmp_path / "run", overrides, progress=False)
    train_logs = [r for r in result.logs if "detector/bce" in r]
    assert np.mean([r["detector/bce"] for r in train_logs[-2:]]) < 0.5 * train_logs[0]["detector/bce"]
    valid = [r for r in result.logs if "valid/detector/auc" in r][-1]
    assert valid["valid/detector/auc"] == 1.0 and valid["valid/detector/accuracy"] == 1.0
    detector = Detector.load(tmp_path / "run" / "model")
    test = [e for e in read_manifest(path) if e.split == "test"]
    from audiolm.audio.io import load_audio

    scores = [detector.logit(load_audio(e.audio_path(path.parent), 16000)[0]) for e in test]
    assert binary_metrics(np.array(scores), np.array([e.extra["label"] for e in test])).auc == 1.0


def test_binary_metrics():
    m = binary_metrics(np.array([-2.0, -1.0, 1.0, 3.0]), np.array([0, 0, 1, 1]))
    assert (m.accuracy, m.eer, m.auc, m.count) == (1.0, 0.0, 1.0, 4)
    flipped = binary_metrics(np.array([2.0, 1.0, -1.0, -3.0]), np.array([0, 0, 1, 1]))
    assert (flipped.accuracy, flipped.auc) == (0.0, 0.0)
    with pytest.raises(ValueError, match="both"):
        binary_metrics(np.array([1.0]), np.array([1]))


def test_everyday_processing_keeps_length_and_is_seeded():
    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    x = (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t)) / 2 + 0.01 * rng.standard_normal(16000)).astype(np.float32)
    for y in (opus(x, 16), mp3(x, 32), resampled(x, 8000)):
        assert y.shape == x.shape and y.dtype == np.float32 and np.isfinite(y).all()
        assert 0 < np.abs(y - x).max() and np.abs(y).max() < 1.0
    assert np.abs(np.fft.rfft(resampled(x + 0.1 * np.sin(2 * np.pi * 6000 * t), 8000))[6000]) < 50  # above 4 kHz: gone
    a, name_a = random_processing(x, np.random.default_rng(7), p=1.0)
    b, name_b = random_processing(x, np.random.default_rng(7), p=1.0)
    assert name_a == name_b != "" and np.array_equal(a, b)
    assert random_processing(x, np.random.default_rng(7), p=0.0) == (x, "")
