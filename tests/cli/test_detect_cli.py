"""`audiolm detect FILE...`: one JSON line per file; a bad file gets the one-line error and the others their line;
`continue | generate | resynth` outputs are marked unless `--no-watermark`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from audiolm.cli.main import main
from audiolm.watermark import THRESHOLD, embed
from tests.helpers_lm import tiny_bundle
from tests.test_watermark import speechlike

SR = 16000
FIELDS = ["path", "generated", "watermark", "watermark_score"]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return tiny_bundle(tmp_path_factory.mktemp("bundle"))


def detect_lines(capsys, *paths) -> tuple[int, list[dict], list[str]]:
    code = main(["detect", *map(str, paths)])
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines()], err.splitlines()


def test_detect_prints_one_json_line_per_file(tmp_path, capsys):
    x = speechlike(2.0, seed=1)
    sf.write(str(tmp_path / "plain.wav"), x, SR)
    sf.write(str(tmp_path / "marked.flac"), embed(x, SR), SR)
    sf.write(str(tmp_path / "marked-44k-stereo.wav"), np.stack([embed(speechlike(2.0, 2, 44100), 44100)] * 2, axis=1), 44100)
    code, lines, err = detect_lines(capsys, tmp_path / "plain.wav", tmp_path / "marked.flac", tmp_path / "marked-44k-stereo.wav")
    assert code == 0 and err == []
    assert [line["path"] for line in lines] == [str(tmp_path / n) for n in ("plain.wav", "marked.flac", "marked-44k-stereo.wav")]
    for line in lines:
        assert list(line) == FIELDS and line["generated"] is None  # no classifier yet: null, never a made-up probability
        assert isinstance(line["watermark_score"], float) and line["watermark"] == (line["watermark_score"] > THRESHOLD)
    assert [line["watermark"] for line in lines] == [False, True, True]


def test_a_bad_file_gets_one_error_line_and_the_others_their_line(tmp_path, capsys):
    sf.write(str(tmp_path / "marked.wav"), embed(speechlike(1.5, seed=3), SR), SR)
    (tmp_path / "garbage.wav").write_bytes(b"not audio at all")
    sf.write(str(tmp_path / "silent.wav"), np.zeros(SR, np.float32), SR)
    paths = [tmp_path / "missing.wav", tmp_path / "marked.wav", tmp_path / "garbage.wav", tmp_path / "silent.wav"]
    code, lines, err = detect_lines(capsys, *paths)
    assert code == 1
    assert [line["path"] for line in lines] == [str(paths[1]), str(paths[3])]
    assert lines[0]["watermark"] and not lines[1]["watermark"] and lines[1]["watermark_score"] == 0.0
    assert len(err) == 2 and all(e.startswith("audiolm: error: ") for e in err)
    assert str(paths[0]) in err[0] and str(paths[2]) in err[1]


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("command", [["continue", "{prompt}", "--seconds", "0.5"], ["generate", "--seconds", "1"],
                                     ["resynth", "{prompt}"]])
def test_outputs_are_marked_unless_no_watermark(bundle, tmp_path, capsys, command):
    sf.write(str(tmp_path / "prompt.wav"), speechlike(1.0, seed=4), SR)
    argv = [a.format(prompt=tmp_path / "prompt.wav") for a in command] + ["--models", str(bundle), "--threads", "1"]
    assert main([*argv, "-o", str(tmp_path / "marked.wav")]) == 0
    assert main([*argv, "-o", str(tmp_path / "plain.wav"), "--no-watermark"]) == 0
    assert "watermark" in capsys.readouterr().out.splitlines()[0]  # its time is reported with the other stages'
    code, lines, _ = detect_lines(capsys, tmp_path / "marked.wav", tmp_path / "plain.wav")
    assert code == 0 and [line["watermark"] for line in lines] == [True, False]
