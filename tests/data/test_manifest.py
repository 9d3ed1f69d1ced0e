"""audiolm.data.manifest: scanning corpus folders, speaker-disjoint splits, JSONL manifests, summaries."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audiolm.data.manifest import (
    SPLITS,
    Entry,
    read_manifest,
    scan_folder,
    split_by_speaker,
    summarize,
    write_manifest,
    write_split_manifests,
)
from audiolm.errors import FileError


def make_entries(speakers: str = "abcdefghij", per_speaker: int = 3, duration: float = 2.0) -> list[Entry]:
    return [Entry(id=f"{s}-{i}", path=f"{s}/{i}.wav", duration=duration, sample_rate=16000, speaker=s)
            for s in speakers for i in range(per_speaker)]


def speakers_by_split(split: dict[str, list[Entry]]) -> dict[str, set]:
    return {name: {e.speaker or e.id for e in group} for name, group in split.items()}


def assert_speaker_disjoint(split: dict[str, list[Entry]]) -> None:
    by_split = speakers_by_split(split)
    for i, a in enumerate(SPLITS):
        for b in SPLITS[i + 1:]:
            assert not by_split[a] & by_split[b], f"speakers in both {a} and {b}: {by_split[a] & by_split[b]}"


# --- scanning ------------------------------------------------------------------------------------


@pytest.fixture
def corpus(tmp_path, librispeech, write_sine):
    """tmp_path/corpus: LibriSpeech/dev-clean (4 speakers x 2), a Libri-Light-style file and one garbage file."""
    root = tmp_path / "corpus"
    (root / "junk.wav").write_bytes(b"definitely not a wav file" * 20)
    light = write_sine(root / "librilight" / "7" / "some_book" / "chapter_01.flac", 0.5, 16000)
    light.with_suffix(".json").write_text(json.dumps({"speaker": "42", "book_meta": {"title": "x"}}), encoding="utf-8")
    return root, librispeech[1], light


def test_scan_finds_librispeech_speakers_and_transcripts(corpus):
    root, texts, light = corpus

    result = scan_folder(root, workers=4, progress=False)

    by_stem = {os.path.basename(e.path).rsplit(".", 1)[0]: e for e in result.entries}
    assert set(by_stem) == set(texts) | {"chapter_01"}
    for uid, text in texts.items():
        entry = by_stem[uid]
        assert entry.speaker == uid.split("-")[0]
        assert entry.text == text
        assert entry.duration == pytest.approx(0.5)
        assert entry.sample_rate == 16000 and entry.num_channels == 1
        assert entry.split is None
        assert entry.audio_path(root).is_file()
    assert len({e.id for e in result.entries}) == len(result.entries)


def test_scan_lists_unreadable_files_as_failures(corpus):
    root, texts, _ = corpus

    result = scan_folder(root, progress=False)

    assert len(result.failures) == 1
    path, problem = result.failures[0]
    assert path.endswith("junk.wav")
    assert "unreadable" in problem
    assert len(result.entries) == len(texts) + 1


def test_scan_reads_a_libri_light_sidecar_speaker(corpus):
    root, _, light = corpus

    entries = {os.path.basename(e.path): e for e in scan_folder(root, progress=False).entries}

    entry = entries[light.name]
    assert entry.speaker == "42"
    assert entry.text is None
    assert "book_meta" not in entry.extra


def test_scan_reads_a_synthetic_sidecar(tmp_path, write_sine):
    audio = write_sine(tmp_path / "spk1" / "utt.wav", 0.5)
    phones = [["h", 0.0, 0.2], ["i", 0.2, 0.5]]
    meta = {"speaker": 7, "text": "hi", "phones": phones, "split": "test", "engine": "espeak", "id": "custom-id"}
    audio.with_suffix(".json").write_text(json.dumps(meta), encoding="utf-8")

    [entry] = scan_folder(tmp_path, progress=False).entries

    assert (entry.id, entry.speaker, entry.text, entry.split, entry.phones) == ("custom-id", "7", "hi", "test", phones)
    assert entry.extra == {"engine": "espeak"}


def test_scan_of_a_missing_folder_raises(tmp_path):
    with pytest.raises(FileError) as error:
        scan_folder(tmp_path / "nope", progress=False)
    assert str(tmp_path / "nope") in str(error.value)


def test_scan_skips_zero_frame_files(tmp_path, write_sine):
    write_sine(tmp_path / "a" / "ok.wav", 0.2)
    sf.write(str(tmp_path / "a" / "empty.wav"), np.zeros((0, 1), np.float32), 16000)

    result = scan_folder(tmp_path, progress=False)

    assert [os.path.basename(e.path) for e in result.entries] == ["ok.wav"]
    assert [os.path.basename(p) for p, _ in result.failures] == ["empty.wav"]


# --- splits --------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(3))
def test_split_by_speaker_is_speaker_disjoint(seed):
    entries = make_entries()

    split = split_by_speaker(entries, valid_fraction=0.2, test_fraction=0.2, seed=seed)

    assert set(split) == set(SPLITS)
    assert sum(len(group) for group in split.values()) == len(entries)
    assert_speaker_disjoint(split)
    counts = {name: len(s) for name, s in speakers_by_split(split).items()}
    assert counts == {"train": 6, "valid": 2, "test": 2}
    assert all(e.split == name for name, group in split.items() for e in group)


def test_split_by_speaker_is_deterministic_per_seed():
    first = speakers_by_split(split_by_speaker(make_entries(), 0.2, 0.2, seed=1))
    again = speakers_by_split(split_by_speaker(make_entries(), 0.2, 0.2, seed=1))
    assert first == again
    others = [speakers_by_split(split_by_speaker(make_entries(), 0.2, 0.2, seed=s)) for s in range(2, 8)]
    assert any(other != first for other in others)


def test_split_by_speaker_holds_out_one_speaker_each_from_three():
    split = split_by_speaker(make_entries("abc"), 0.01, 0.01)
    assert {name: len(s) for name, s in speakers_by_split(split).items()} == {"train": 1, "valid": 1, "test": 1}


def test_split_by_speaker_entries_without_speaker_count_as_their_own():
    entries = make_entries("", 0) + [Entry(id=f"u{i}", path=f"{i}.wav", duration=1.0, sample_rate=16000) for i in range(10)]
    split = split_by_speaker(entries, 0.2, 0.2)
    assert [len(split[name]) for name in SPLITS] == [6, 2, 2]


def test_split_by_speaker_keeps_preset_splits():
    entries = make_entries()
    for e in entries:
        if e.speaker == "a":
            e.split = "test"
        if e.speaker == "b":
            e.split = "valid"

    split = split_by_speaker(entries, valid_fraction=0.2, test_fraction=0.2, seed=0)

    assert all(e.split == "test" for e in entries if e.speaker == "a")
    assert all(e.split == "valid" for e in entries if e.speaker == "b")
    assert {"a"} <= speakers_by_split(split)["test"]
    assert {"b"} <= speakers_by_split(split)["valid"]
    assert_speaker_disjoint(split)


def test_split_by_speaker_stays_disjoint_when_only_some_of_a_speakers_entries_are_preset():
    # One utterance of speaker "a" is preset to test: "whole speakers" means a's other utterances must not
    # land in train (or valid), or the test speaker leaks into training.
    entries = make_entries()
    entries[0].split = "test"
    assert entries[0].speaker == "a"

    split = split_by_speaker(entries, valid_fraction=0.2, test_fraction=0.2, seed=0)

    assert entries[0].split == "test"
    assert_speaker_disjoint(split)


def test_split_by_speaker_rejects_bad_fractions():
    with pytest.raises(ValueError):
        split_by_speaker(make_entries(), 0.6, 0.5)
    with pytest.raises(ValueError):
        split_by_speaker(make_entries(), -0.1, 0.1)


# --- reading and writing -------------------------------------------------------------------------


def test_manifest_round_trip_with_relative_paths_survives_a_move(tmp_path, corpus):
    root, _, _ = corpus
    entries = scan_folder(root, progress=False).entries
    split_by_speaker(entries, 0.25, 0.25)
    manifest = root / "manifest.jsonl"

    assert write_manifest(manifest, entries) == len(entries)

    records = [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines()]
    assert all(not os.path.isabs(r["path"]) for r in records)
    assert all("extra" not in r and None not in r.values() for r in records)
    read = read_manifest(manifest)
    assert [(e.id, e.duration, e.sample_rate, e.speaker, e.text, e.split) for e in read] == [
        (e.id, e.duration, e.sample_rate, e.speaker, e.text, e.split) for e in entries]
    assert [e.audio_path(root).resolve() for e in read] == [Path(e.path).resolve() for e in entries]

    moved = tmp_path / "elsewhere" / "moved_corpus"
    shutil.copytree(root, moved)
    shutil.rmtree(root)
    for entry in read_manifest(moved / "manifest.jsonl"):
        path = entry.audio_path(moved)
        assert path.is_file()
        assert moved in path.parents


def test_manifest_keeps_absolute_paths_outside_its_folder(tmp_path, write_sine):
    audio = write_sine(tmp_path / "audio" / "x.wav", 0.1)
    entry = Entry(id="x", path=str(audio), duration=0.1, sample_rate=16000)
    manifest = tmp_path / "manifests" / "m.jsonl"

    write_manifest(manifest, [entry])

    [read] = read_manifest(manifest)
    assert read.path == str(audio)
    assert read.audio_path(manifest.parent) == audio


def test_manifest_round_trips_phones_and_extra_fields(tmp_path):
    entry = Entry(id="u", path="u.wav", duration=0.5, sample_rate=24000, num_channels=2, speaker="s", text="a b",
                  split="valid", phones=[["a", 0.0, 0.2], ["b", 0.2, 0.5]], extra={"engine": "flite", "index": 3})
    manifest = tmp_path / "m.jsonl"

    write_manifest(manifest, [entry])

    assert read_manifest(manifest) == [entry]
    assert [p.name for p in tmp_path.iterdir()] == ["m.jsonl"]  # written atomically, nothing left beside it


def test_write_split_manifests(tmp_path):
    entries = make_entries()
    split_by_speaker(entries, 0.2, 0.2)

    written = write_split_manifests(tmp_path / "all.jsonl", entries)

    assert read_manifest(written["all"]) == entries
    for name in SPLITS:
        assert written[name] == tmp_path / f"all.{name}.jsonl"
        assert read_manifest(written[name]) == [e for e in entries if e.split == name]


def test_blank_lines_are_skipped(tmp_path):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text('\n{"id": "a", "path": "a.wav", "duration": 1.0, "sample_rate": 16000}\n\n', encoding="utf-8")
    assert [e.id for e in read_manifest(manifest)] == ["a"]


GOOD_LINE = '{"id": "a", "path": "a.wav", "duration": 1.0, "sample_rate": 16000}'


def assert_line_error(manifest, bad_line: str) -> None:
    manifest.write_text(f"{GOOD_LINE}\n{GOOD_LINE}\n{bad_line}\n{GOOD_LINE}\n", encoding="utf-8")

    with pytest.raises(FileError) as error:
        read_manifest(manifest)

    message = str(error.value)
    assert message.startswith(f"{manifest}: ")
    assert "line 3" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    "bad_line",
    ['{"id": "b", "path": ', '{"id": "b"}', '{"id": "b", "path": "b.wav", "duration": 1, "sample_rate": 16000, "bogus": }'],
    ids=["truncated", "missing-fields", "invalid-json"],
)
def test_malformed_line_raises_file_error_with_its_number(tmp_path, bad_line):
    assert_line_error(tmp_path / "broken.jsonl", bad_line)


def test_valid_json_that_is_not_an_object_raises_file_error_with_its_number(tmp_path):
    for bad_line in ("[1, 2]", "42", '"just a string"', "null"):
        assert_line_error(tmp_path / "broken.jsonl", bad_line)


def test_missing_manifest_raises_file_error(tmp_path):
    with pytest.raises(FileError) as error:
        read_manifest(tmp_path / "none.jsonl")
    assert str(tmp_path / "none.jsonl") in str(error.value)


# --- summaries -----------------------------------------------------------------------------------


def test_summarize_counts_hours_utterances_and_speakers():
    entries = make_entries("abcd", per_speaker=3, duration=600.0)  # 12 x 10 min = 2 h
    entries.append(Entry(id="anon", path="anon.wav", duration=1800.0, sample_rate=16000))  # no speaker
    for e in entries:
        e.split = "test" if e.speaker == "d" else "train"

    summary = summarize(entries)

    assert summary["all"] == {"hours": pytest.approx(2.5), "utterances": 13, "speakers": 4}
    assert summary["train"] == {"hours": pytest.approx(2.0), "utterances": 10, "speakers": 3}
    assert summary["test"] == {"hours": pytest.approx(0.5), "utterances": 3, "speakers": 1}
    assert "valid" not in summary


def test_summarize_a_scanned_corpus(corpus):
    root, texts, _ = corpus
    entries = scan_folder(root, progress=False).entries

    summary = summarize(entries)

    assert summary["all"]["utterances"] == len(texts) + 1
    assert summary["all"]["speakers"] == 5  # four LibriSpeech speakers and "42"
    assert summary["all"]["hours"] == pytest.approx((len(texts) + 1) * 0.5 / 3600, abs=1e-4)


def write_bad_corpus(root: Path) -> dict[str, str]:
    """A good wav and one of each bad kind under `root`: {file name: words its failure must contain}."""
    root.mkdir(parents=True, exist_ok=True)
    sf.write(str(root / "good.wav"), 0.5 * np.sin(np.linspace(0, 900, 8000, dtype=np.float32)), 16000)
    nan, inf = np.full(80000, 0.1, np.float32), np.full(80000, 0.1, np.float32)  # 5 s: more than one block
    nan[70000], inf[79999] = np.nan, np.inf
    sf.write(str(root / "nan.wav"), nan, 16000, subtype="FLOAT")
    sf.write(str(root / "inf.wav"), inf, 16000, subtype="FLOAT")
    sf.write(str(root / "empty.wav"), np.zeros((0, 1), np.float32), 16000)
    sf.write(str(root / "silent.wav"), np.zeros(8000, np.float32), 16000)
    (root / "random.wav").write_bytes(np.random.default_rng(0).bytes(4000))
    return {"nan.wav": "NaN or infinite", "inf.wav": "NaN or infinite", "empty.wav": "empty",
            "silent.wav": "silent", "random.wav": "unreadable"}


def test_scan_reads_samples_and_lists_bad_audio_as_failures(tmp_path):
    bad = write_bad_corpus(tmp_path)

    result = scan_folder(tmp_path, workers=2, progress=False)

    assert [os.path.basename(e.path) for e in result.entries] == ["good.wav"]
    assert result.entries[0].duration == pytest.approx(0.5)
    problems = {os.path.basename(path): problem for path, problem in result.failures}
    assert set(problems) == set(bad)
    for name, words in bad.items():
        assert words in problems[name], (name, problems[name])


def test_a_header_only_scan_misses_bad_samples(tmp_path):
    write_bad_corpus(tmp_path)

    result = scan_folder(tmp_path, workers=2, progress=False, header_only=True)

    assert sorted(os.path.basename(e.path) for e in result.entries) == ["good.wav", "inf.wav", "nan.wav", "silent.wav"]
    assert sorted(os.path.basename(p) for p, _ in result.failures) == ["empty.wav", "random.wav"]


def test_scan_of_a_file_instead_of_a_folder_raises(tmp_path, write_sine):
    audio = write_sine(tmp_path / "a.wav")
    with pytest.raises(FileError) as error:
        scan_folder(audio, progress=False)
    assert str(error.value) == f"{audio}: is a file, not a folder"
