"""The CLI called in-process on files under tmp_path: commands, one-line errors, non-zero exits."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audiolm.cli.main import main
from audiolm.data.manifest import read_manifest
from tests.conftest import make_librispeech, write_sine
from tests.data.test_manifest import write_bad_corpus


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "audio" in out and "data" in out
    with pytest.raises(SystemExit):
        main(["data", "--help"])
    out = capsys.readouterr().out
    for command in ("manifest", "synth-speech", "synth-piano", "from-lhotse", "stats", "speakers"):
        assert command in out


def bad_files(tmp_path):
    """Each kind of bad input, with the words its error must contain."""
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"not audio at all")
    empty = tmp_path / "empty.wav"
    sf.write(str(empty), np.zeros((0, 1), np.float32), 16000)
    nan = tmp_path / "nan.wav"
    sf.write(str(nan), np.full(1600, np.nan, np.float32), 16000, subtype="FLOAT")
    silent = tmp_path / "silent.wav"
    sf.write(str(silent), np.zeros(16000, np.float32), 16000)
    return {
        tmp_path / "missing.wav": "no such file",
        garbage: "unreadable",
        empty: "empty",
        nan: "NaN",
        silent: "silent",
        tmp_path: "directory",
    }


def test_every_bad_input_gives_one_line_and_exit_1(tmp_path, capsys):
    for path, words in bad_files(tmp_path).items():
        code, out, err = run(capsys, "audio", "info", str(path))
        assert code == 1, path
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("audiolm: error: ")
        assert str(path) in lines[0] and words in lines[0]
    short = write_sine(tmp_path / "short.flac", seconds=0.2)
    code, _, err = run(capsys, "audio", "info", str(short), "--min-seconds", "1")
    assert code == 1 and "shorter than 1 s" in err


def test_convert_resamples_and_writes_atomically(tmp_path, capsys):
    source = write_sine(tmp_path / "in.ogg", seconds=1.0, sample_rate=44100, channels=2)
    code, out, _ = run(capsys, "audio", "convert", str(source), "-o", str(tmp_path / "out.wav"), "--normalize", "-20")
    assert code == 0
    data, rate = sf.read(str(tmp_path / "out.wav"))
    assert rate == 16000 and data.ndim == 1 and abs(len(data) - 16000) < 10
    code, _, err = run(capsys, "audio", "convert", str(tmp_path / "none.wav"), "-o", str(tmp_path / "x.wav"))
    assert code == 1 and not (tmp_path / "x.wav").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.ogg", "out.wav"]


def test_info_and_plot_on_good_audio(tmp_path, capsys):
    path = write_sine(tmp_path / "a.flac", seconds=1.0)
    code, out, _ = run(capsys, "audio", "info", str(path))
    info = json.loads(out)
    assert code == 0 and info["sample_rate"] == 16000 and info["duration"] == 1.0
    code, _, _ = run(capsys, "audio", "plot", str(path), "-o", str(tmp_path / "spec.png"))
    assert code == 0 and (tmp_path / "spec.png").read_bytes()[:4] == b"\x89PNG"


def test_manifest_of_a_librispeech_folder_with_a_broken_file(tmp_path, capsys):
    root = tmp_path / "LibriSpeech"
    texts = make_librispeech(root, speakers=("1", "2", "3", "4", "5", "6"))
    (root / "dev-clean" / "broken.flac").write_bytes(b"\x00" * 100)
    manifest = tmp_path / "m" / "manifest.jsonl"
    cuts = tmp_path / "cuts.jsonl.gz"
    code, out, err = run(capsys, "data", "manifest", str(root), "-o", str(manifest), "--quiet", "--lhotse-out", str(cuts))
    assert code == 0
    assert "1 unreadable files skipped" in err
    assert "broken.flac" in (tmp_path / "m" / "manifest.failed.txt").read_text()
    entries = read_manifest(manifest)
    assert {e.id.split("/")[-1] for e in entries} == set(texts)
    assert all(e.text == texts[e.id.split("/")[-1]] for e in entries)
    splits = {split: {e.speaker for e in read_manifest(tmp_path / "m" / f"manifest.{split}.jsonl")} for split in ("train", "valid", "test")}
    assert splits["test"] and splits["valid"] and not (splits["train"] & (splits["test"] | splits["valid"]))
    code, out, _ = run(capsys, "data", "from-lhotse", str(tmp_path / "cuts.jsonl.gz"), "-o", str(tmp_path / "back.jsonl"))
    assert code == 0 and len(read_manifest(tmp_path / "back.jsonl")) == len(entries)
    code, out, _ = run(capsys, "data", "stats", str(manifest))
    assert code == 0 and "utterances" in out


def test_manifest_errors_are_one_line(tmp_path, capsys):
    code, _, err = run(capsys, "data", "manifest", str(tmp_path / "nowhere"), "-o", str(tmp_path / "m.jsonl"))
    assert code == 1 and "no such folder" in err and len(err.strip().splitlines()) == 1
    (tmp_path / "empty").mkdir()
    code, _, err = run(capsys, "data", "manifest", str(tmp_path / "empty"), "-o", str(tmp_path / "m.jsonl"))
    assert code == 1 and "no readable audio" in err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "path": "a.wav", "duration": 1, "sample_rate": 16000}\n{oops\n')
    code, _, err = run(capsys, "data", "stats", str(bad))
    assert code == 1 and "line 2" in err and str(bad) in err
    assert not (tmp_path / "m.jsonl").exists()


def test_manifest_lists_bad_audio_in_the_failed_list_not_the_manifest(tmp_path, capsys):
    bad = write_bad_corpus(tmp_path / "corpus")
    manifest = tmp_path / "m" / "manifest.jsonl"

    code, _, err = run(capsys, "data", "manifest", str(tmp_path / "corpus"), "-o", str(manifest), "--quiet", "--workers", "2")

    assert code == 0 and f"{len(bad)} unreadable files skipped" in err
    assert [e.id for e in read_manifest(manifest)] == ["good"]
    lines = (tmp_path / "m" / "manifest.failed.txt").read_text().splitlines()
    problems = {Path(path).name: problem for path, problem in (line.split("\t") for line in lines)}
    assert set(problems) == set(bad)
    assert all(words in problems[name] for name, words in bad.items()), problems


def test_manifest_header_only_keeps_files_whose_samples_are_bad(tmp_path, capsys):
    write_bad_corpus(tmp_path / "corpus")
    manifest = tmp_path / "manifest.jsonl"

    code, _, _ = run(capsys, "data", "manifest", str(tmp_path / "corpus"), "-o", str(manifest), "--quiet", "--header-only")

    assert code == 0
    assert sorted(e.id for e in read_manifest(manifest)) == ["good", "inf", "nan", "silent"]
    failed = (tmp_path / "manifest.failed.txt").read_text()
    assert "empty.wav" in failed and "random.wav" in failed and "nan.wav" not in failed


def test_manifest_input_and_output_errors_are_one_line_and_write_nothing(tmp_path, capsys):
    corpus = tmp_path / "corpus"
    write_sine(corpus / "a.wav")
    (tmp_path / "no_audio").mkdir()
    (tmp_path / "no_audio" / "notes.txt").write_text("no audio here")
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    cases = [  # (folder, output, the path the error names, its words)
        (tmp_path / "no_audio", tmp_path / "out" / "m.jsonl", tmp_path / "no_audio", "no readable audio"),
        (tmp_path / "missing", tmp_path / "out" / "m.jsonl", tmp_path / "missing", "no such folder"),
        (corpus / "a.wav", tmp_path / "out" / "m.jsonl", corpus / "a.wav", "not a folder"),
        (corpus, a_file / "m.jsonl", a_file, "not a folder"),  # output paths are checked before any work (check_writable)
        (corpus, a_file / "sub" / "m.jsonl", a_file, "not a folder"),
        (corpus, corpus, corpus, "is a folder"),
    ]
    before = sorted(tmp_path.rglob("*"))
    for folder, output, named, words in cases:
        code, out, err = run(capsys, "data", "manifest", str(folder), "-o", str(output), "--quiet")
        lines = err.strip().splitlines()
        assert code == 1 and len(lines) == 1, (folder, output, err)
        assert lines[0].startswith(f"audiolm: error: {named}: ") and words in lines[0], lines[0]
        assert sorted(tmp_path.rglob("*")) == before, (folder, output)


def test_synth_speech_command_builds_a_corpus(tmp_path, capsys):
    out_dir = tmp_path / "corpus"
    code, out, _ = run(capsys, "data", "synth-speech", "--hours", "0.003", "-o", str(out_dir), "--speakers", "3",
                       "--valid-speakers", "1", "--test-speakers", "1", "--quiet")
    assert code == 0
    assert "train" in out and "speakers the engines can make" in out
    assert read_manifest(out_dir / "manifest.jsonl")
    code, _, err = run(capsys, "data", "synth-speech", "--hours", "0.003", "-o", str(out_dir), "--speakers", "4", "--quiet")
    assert code == 1 and "other settings" in err


def test_speakers_command_reports_the_inventory(capsys):
    code, out, _ = run(capsys, "data", "speakers")
    assert code == 0
    total = int(out.strip().splitlines()[-1].split()[1])
    assert total > 2000
