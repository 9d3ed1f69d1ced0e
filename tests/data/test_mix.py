"""audiolm.data.mix and `audiolm data mix`: sources namespaced, splits speaker-disjoint, weights honoured by the sampler."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from audiolm.audio.io import save_audio
from audiolm.cli.main import main
from audiolm.data.datasets import AudioClips
from audiolm.data.manifest import Entry, read_manifest, write_manifest
from audiolm.data.mix import MixSource, mix, parse_source, summarize_sources
from audiolm.errors import AudiolmError, FileError
from tests.helpers_codec import tone_manifest

SR = 16000


def constant_corpus(folder: Path, level: float, speakers: int = 3, clips: int = 2, splits: bool = True) -> Path:
    """`speakers` x `clips` one-second clips holding the constant `level` (so a crop tells which corpus it came from);
    speakers s0, s1, ...; the last speaker is the test split (without `splits`: no splits at all)."""
    entries = []
    for s in range(speakers):
        for c in range(clips):
            path = save_audio(folder / f"s{s}" / f"{c}.wav", np.full(SR, level, np.float32), SR)
            split = ("test" if s == speakers - 1 else "train") if splits else None
            entries.append(Entry(id=f"s{s}-{c}", path=str(path), duration=1.0, sample_rate=SR, speaker=f"s{s}", split=split))
    manifest = folder / "manifest.jsonl"
    write_manifest(manifest, entries)
    return manifest


def test_mixes_two_corpora_with_namespaced_speakers_and_resolvable_paths(tmp_path):
    a, b = tone_manifest(tmp_path / "a", count=4, seconds=0.25), tone_manifest(tmp_path / "b", count=3, seconds=0.25)
    out = tmp_path / "mixed" / "manifest.jsonl"
    out.parent.mkdir()

    entries = mix([MixSource(a, 1.0), MixSource(b, 2.5)], out)
    write_manifest(out, entries)
    back = read_manifest(out)

    assert len(back) == 7
    assert {e.speaker for e in back} == {"a/s0", "a/s1", "a/s2", "a/s3", "b/s0", "b/s1", "b/s2"}  # two s1, never merged
    assert len({e.id for e in back}) == 7
    assert {e.extra["corpus"] for e in back} == {"a", "b"} and all(e.extra["source"] == e.extra["corpus"] for e in back)
    assert {e.extra["corpus"]: e.extra["weight"] for e in back} == {"a": 1.0, "b": 2.5}
    for entry in back:
        assert not Path(entry.path).is_absolute() and entry.path.startswith("..")  # relative to the new manifest's folder
        assert entry.audio_path(out.parent).is_file()
    assert [e.split for e in back if e.speaker in ("a/s3", "b/s2")] == ["valid", "valid"]  # each source's own splits kept


def test_a_mixed_folder_moves_as_a_whole(tmp_path):
    a = tone_manifest(tmp_path / "corpora" / "a", count=2, seconds=0.25)
    out = tmp_path / "corpora" / "mixed" / "manifest.jsonl"
    write_manifest(out, mix([MixSource(a)], out))
    (tmp_path / "corpora").rename(tmp_path / "moved")
    moved = tmp_path / "moved" / "mixed" / "manifest.jsonl"
    assert all(e.audio_path(moved.parent).is_file() for e in read_manifest(moved))


def test_splits_are_speaker_disjoint_across_sources(tmp_path):
    held = constant_corpus(tmp_path / "held", 0.25, speakers=4)  # its own splits: s3 is test
    plain = constant_corpus(tmp_path / "plain", -0.25, speakers=20, splits=False)  # no splits: split here, by speaker
    out = tmp_path / "mixed.jsonl"

    entries = mix([MixSource(held), MixSource(plain)], out, seed=3, valid_fraction=0.1, test_fraction=0.1)

    split_of: dict[str, set] = {}
    for entry in entries:
        split_of.setdefault(entry.speaker, set()).add(entry.split)
    assert all(len(splits) == 1 for splits in split_of.values())  # no speaker in two splits
    assert split_of["held/s3"] == {"test"} and split_of["held/s0"] == {"train"}  # held-out speakers stay held out
    plain_splits = [next(iter(split_of[f"plain/s{i}"])) for i in range(20)]
    assert plain_splits.count("test") == 2 and plain_splits.count("valid") == 2


def test_refuses_a_source_with_one_speaker_in_two_splits(tmp_path):
    manifest = constant_corpus(tmp_path / "a", 0.25, speakers=2)
    entries = read_manifest(manifest)
    entries[0].split = "test"  # s0's first clip in test, its second in train
    write_manifest(manifest, entries)
    with pytest.raises(FileError, match="'s0' is in both"):
        mix([MixSource(manifest)], tmp_path / "out.jsonl")


def test_keeps_an_entrys_own_source_and_multiplies_an_existing_weight(tmp_path):
    manifest = constant_corpus(tmp_path / "real", 0.25, speakers=2)
    entries = read_manifest(manifest)
    for entry in entries:
        entry.extra.update(source="some-game", weight=0.5)
    write_manifest(manifest, entries)
    mixed = mix([MixSource(manifest, 3.0)], tmp_path / "out.jsonl")
    assert {e.extra["source"] for e in mixed} == {"some-game"} and {e.extra["weight"] for e in mixed} == {1.5}
    assert {e.extra["corpus"] for e in mixed} == {"real"}


def test_sources_are_interleaved_so_a_prefix_holds_each(tmp_path):
    a = constant_corpus(tmp_path / "a", 0.25, speakers=2, clips=2)  # 4 entries
    b = constant_corpus(tmp_path / "b", -0.25, speakers=4, clips=3)  # 12 entries
    entries = mix([MixSource(a), MixSource(b)], tmp_path / "out.jsonl")
    first = [e.extra["corpus"] for e in entries[:4]]
    assert "a" in first and "b" in first
    assert [e.extra["corpus"] for e in entries].count("a") == 4


def test_a_corpus_being_built_is_read_from_its_complete_items(tmp_path):
    folder = tmp_path / "kokoro"
    (folder / "audio" / "k1").mkdir(parents=True)
    (folder / "corpus.json").write_text("{}")
    for index in range(3):
        save_audio(folder / "audio" / "k1" / f"k1-{index}.wav", np.full(SR // 2, 0.1, np.float32), SR)
        if index < 2:  # the third is still being written: no sidecar yet
            meta = {"id": f"k1-{index}", "index": index, "speaker": "k1", "split": "train", "duration": 0.5, "text": "hi"}
            (folder / "audio" / "k1" / f"k1-{index}.json").write_text(json.dumps(meta))

    entries = mix([MixSource(folder, 2.0)], tmp_path / "mixed.jsonl")

    assert sorted(e.id for e in entries) == ["kokoro/k1-0", "kokoro/k1-1"]
    assert {e.speaker for e in entries} == {"kokoro/k1"} and {e.extra["weight"] for e in entries} == {2.0}


@pytest.mark.parametrize("weights", [(1.0, 1.0), (1.0, 3.0), (0.5, 4.0)])
def test_the_sampler_honours_the_weights(tmp_path, weights):
    a = constant_corpus(tmp_path / "a", 0.25, speakers=2, clips=2)  # training: s0, 2 s
    b = constant_corpus(tmp_path / "b", -0.25, speakers=3, clips=2)  # training: s0 and s1, 4 s
    out = tmp_path / "mixed" / "manifest.jsonl"
    out.parent.mkdir()
    write_manifest(out, mix([MixSource(a, weights[0]), MixSource(b, weights[1])], out))
    clips = AudioClips(out, SR, split="train")

    crops = clips.crops(4000, 800, torch.Generator().manual_seed(0))  # [4000, 1, 800]

    share_b = float((crops[:, 0, 0] < 0).float().mean())
    expected = 4 * weights[1] / (2 * weights[0] + 4 * weights[1])
    assert share_b == pytest.approx(expected, abs=0.025)
    assert share_b == pytest.approx(float(summarize_sources(read_manifest(out))["b"]["train_share"]), abs=0.025)


def test_without_weights_the_sampler_draws_by_length_as_before(tmp_path):
    manifest = tone_manifest(tmp_path / "a", count=3, seconds=0.5)
    clips = AudioClips(manifest, SR)
    np.testing.assert_array_equal(clips.weights, np.full(3, 1 / 3))


def test_the_sampler_refuses_a_bad_weight(tmp_path):
    manifest = constant_corpus(tmp_path / "a", 0.25, speakers=1)
    entries = read_manifest(manifest)
    entries[0].extra["weight"] = "heavy"
    write_manifest(manifest, entries)
    with pytest.raises(FileError, match="weight must be a non-negative number"):
        AudioClips(manifest, SR)


def test_stats_per_source(tmp_path):
    a = constant_corpus(tmp_path / "a", 0.25, speakers=3, clips=2)
    b = constant_corpus(tmp_path / "b", -0.25, speakers=2, clips=1)
    entries = mix([MixSource(a, 1.0), MixSource(b, 2.0)], tmp_path / "out.jsonl")

    stats = summarize_sources(entries)

    assert set(stats) == {"a", "b"}
    assert stats["a"]["all"] == {"hours": round(6 / 3600, 4), "utterances": 6, "speakers": 3}
    assert stats["a"]["train"]["speakers"] == 2 and stats["a"]["test"]["speakers"] == 1
    assert stats["b"]["train"] == {"hours": round(1 / 3600, 4), "utterances": 1, "speakers": 1}
    assert stats["a"]["train_share"] == pytest.approx(4 / 6) and stats["b"]["train_share"] == pytest.approx(2 / 6)


def test_parse_source():
    assert parse_source("data/real/manifest.jsonl:2.5") == MixSource(Path("data/real/manifest.jsonl"), 2.5)
    assert parse_source("data/real") == MixSource(Path("data/real"), 1.0)
    assert parse_source("games=data/real:0.5") == MixSource(Path("data/real"), 0.5, "games")
    for bad in ("data/real:0", "data/real:-1", "data/real:abc", "data/real:inf", "data/real:1e9", ":2"):
        with pytest.raises(AudiolmError, match="--source"):
            parse_source(bad)


def test_refuses_a_source_given_twice_and_two_sources_of_one_name(tmp_path):
    a = constant_corpus(tmp_path / "x" / "c", 0.25)
    b = constant_corpus(tmp_path / "y" / "c", 0.25)
    with pytest.raises(FileError, match="given twice"):
        mix([MixSource(a), MixSource(a.parent)], tmp_path / "out.jsonl")
    with pytest.raises(AudiolmError, match="two sources are named 'c'"):
        mix([MixSource(a), MixSource(b)], tmp_path / "out.jsonl")
    assert len(mix([MixSource(a), MixSource(b, name="c2")], tmp_path / "out.jsonl")) == 12


# --- the CLI -------------------------------------------------------------------------------------


def test_cli_mix_then_stats(tmp_path, capsys):
    a, b = tone_manifest(tmp_path / "a", count=3, seconds=0.25), tone_manifest(tmp_path / "b", count=3, seconds=0.25)
    out = tmp_path / "mixed" / "manifest.jsonl"

    assert main(["data", "mix", "--source", f"{a}:1", "--source", f"{b.parent}:2", "-o", str(out)]) == 0

    printed = capsys.readouterr().out
    assert "train share" in printed and "wrote" in printed
    assert [p.name for p in sorted(out.parent.iterdir())] == ["manifest.jsonl", "manifest.test.jsonl", "manifest.train.jsonl",
                                                             "manifest.valid.jsonl"]
    assert main(["data", "stats", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = [line.split() for line in lines if line.startswith(("a ", "b "))]
    assert [(r[0], r[1], r[3], r[4]) for r in rows] == [("a", "all", "3", "3"), ("b", "all", "3", "3")]


@pytest.mark.parametrize("source, problem", [
    ("{tmp}/none.jsonl", "none.jsonl: no such manifest file"),
    ("{tmp}/a/manifest.jsonl:0", "the weight must be above 0"),
    ("{tmp}/a/manifest.jsonl:-2", "the weight must be above 0"),
    ("{tmp}/a/manifest.jsonl:heavy", "must be a number"),
    ("{tmp}/a/manifest.jsonl:nan", "the weight must be above 0"),
    ("{tmp}", "is a folder without manifest.jsonl"),
])
def test_cli_mix_bad_sources_are_one_line_errors(tmp_path, capsys, source, problem):
    tone_manifest(tmp_path / "a", count=2, seconds=0.25)
    out = tmp_path / "mixed" / "manifest.jsonl"

    code = main(["data", "mix", "--source", source.format(tmp=tmp_path), "-o", str(out)])

    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and err[0].startswith("audiolm: error: ") and problem in err[0], err
    assert not out.exists()
