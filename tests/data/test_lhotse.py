"""audiolm.data.lhotse_interop: our manifests to lhotse CutSets and back, and lhotse's LibriSpeech recipe."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest

from audiolm.data.lhotse_interop import from_recipe, read_lhotse, recipe_names, write_cuts
from audiolm.data.manifest import Entry
from audiolm.errors import AudiolmError, FileError

PHONES = [["a", 0.0, 0.2], ["b", 0.2, 0.5]]


@pytest.fixture
def entries(tmp_path, write_sine) -> list[Entry]:
    """Three entries with relative paths under tmp_path/corpus, one with phones and two with texts."""
    root = tmp_path / "corpus"
    write_sine(root / "s1" / "u1.wav", 0.5, 16000)
    write_sine(root / "s1" / "u2.flac", 0.75, 16000)
    write_sine(root / "s2" / "u3.wav", 0.4, 24000, channels=2)
    return [
        Entry(id="s1/u1", path="s1/u1.wav", duration=0.5, sample_rate=16000, speaker="s1", text="a b", split="train",
              phones=PHONES),
        Entry(id="s1/u2", path="s1/u2.flac", duration=0.75, sample_rate=16000, speaker="s1", text="hello world"),
        Entry(id="s2/u3", path="s2/u3.wav", duration=0.4, sample_rate=24000, num_channels=2, speaker="s2", split="test"),
    ]


@pytest.mark.parametrize("name", ["cuts.jsonl.gz", "cuts.jsonl"])
def test_cuts_round_trip_paths_durations_speakers_texts_and_phones(tmp_path, entries, name):
    root = tmp_path / "corpus"
    out = tmp_path / "lhotse" / name

    assert write_cuts(entries, root, out) == out
    read = read_lhotse(out)

    assert len(read) == len(entries)
    for got, want in zip(read, entries, strict=True):
        assert Path(got.path).resolve() == want.audio_path(root).resolve()
        assert os.path.isfile(got.path)
        assert got.duration == pytest.approx(want.duration)
        assert got.sample_rate == want.sample_rate
        assert got.num_channels == want.num_channels
        assert got.speaker == want.speaker
        assert got.text == want.text
        assert got.split == want.split
    assert read[0].phones == PHONES
    assert read[1].phones is None and read[2].phones is None


def test_cuts_round_trip_ids(tmp_path, entries):
    out = tmp_path / "cuts.jsonl.gz"

    write_cuts(entries, tmp_path / "corpus", out)

    assert [e.id for e in read_lhotse(out)] == [e.id for e in entries]


def test_write_cuts_is_gzipped_and_atomic(tmp_path, entries):
    folder = tmp_path / "lhotse"
    write_cuts(entries, tmp_path / "corpus", folder / "cuts.jsonl.gz")
    write_cuts(entries[:1], tmp_path / "corpus", folder / "cuts.jsonl.gz")  # overwrite

    assert os.listdir(folder) == ["cuts.jsonl.gz"]
    with gzip.open(folder / "cuts.jsonl.gz", "rt", encoding="utf-8") as f:
        assert len(f.read().splitlines()) == 1
    assert len(read_lhotse(folder / "cuts.jsonl.gz")) == 1


def test_write_cuts_rejects_other_suffixes(tmp_path, entries):
    with pytest.raises(AudiolmError, match="jsonl"):
        write_cuts(entries, tmp_path / "corpus", tmp_path / "cuts.json")
    assert not (tmp_path / "cuts.json").exists()


# --- lhotse's LibriSpeech recipe -----------------------------------------------------------------


def test_librispeech_recipe_gives_texts_speakers_and_valid_split(librispeech):
    corpus_dir, texts = librispeech  # the LibriSpeech folder that holds dev-clean

    entries = from_recipe("librispeech", corpus_dir)

    assert len(entries) == len(texts)
    by_stem = {Path(e.path).stem: e for e in entries}
    assert set(by_stem) == set(texts)
    for uid, text in texts.items():
        entry = by_stem[uid]
        assert entry.text == text
        assert entry.speaker == uid.split("-")[0]
        assert entry.split == "valid"
        assert entry.duration == pytest.approx(0.5)
        assert entry.sample_rate == 16000
        assert Path(entry.path).is_file()


def test_librispeech_recipe_keeps_utterance_ids(librispeech):
    corpus_dir, texts = librispeech

    entries = from_recipe("librispeech", corpus_dir)

    assert sorted(e.id for e in entries) == sorted(texts)


def test_librispeech_recipe_splits_from_part_names(tmp_path, make_librispeech):
    corpus_dir = tmp_path / "LibriSpeech"
    make_librispeech(corpus_dir, "test-clean", ("61",), utterances=1)
    make_librispeech(corpus_dir, "train-clean-100", ("103",), utterances=1)

    splits = {e.speaker: e.split for e in from_recipe("librispeech", corpus_dir)}

    assert splits == {"61": "test", "103": "train"}


def test_recipe_on_a_folder_without_the_corpus_raises_file_error(tmp_path):
    with pytest.raises(FileError) as error:
        from_recipe("librispeech", tmp_path)
    assert str(tmp_path) in str(error.value)


def test_unknown_recipe_raises(tmp_path):
    with pytest.raises(AudiolmError, match="no_such_corpus") as error:
        from_recipe("no_such_corpus", tmp_path)
    assert "librispeech" in str(error.value)  # lists the known ones
    assert "librispeech" in recipe_names()


# --- reading bad manifests -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content"),
    [("cuts.jsonl.gz", b"this is not gzip"), ("cuts.jsonl", b"{not json\n"), ("cuts.jsonl.gz", gzip.compress(b"\x00\xff" * 50))],
    ids=["not-gzip", "not-json", "gzipped-garbage"],
)
def test_read_lhotse_on_garbage_raises_file_error(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)

    with pytest.raises(FileError) as error:
        read_lhotse(path)

    assert str(error.value).startswith(f"{path}: ")
    assert "\n" not in str(error.value)


def test_read_lhotse_on_a_missing_file_raises_file_error(tmp_path):
    with pytest.raises(FileError, match="no such lhotse manifest"):
        read_lhotse(tmp_path / "missing.jsonl.gz")
