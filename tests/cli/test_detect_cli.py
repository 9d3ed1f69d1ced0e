"""`audiolm detect FILE...`: one JSON line per file (the bundle's detector's probability, null without one, and the
watermark); a bad file gets the one-line error and the others their line; `continue | generate | resynth` outputs are
marked unless `--no-watermark`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from audiolm.cli.main import main
from audiolm.detector.model import Detector, DetectorConfig
from audiolm.watermark import THRESHOLD, embed
from tests.helpers_lm import tiny_bundle
from tests.test_watermark import speechlike

SR = 16000
FIELDS = ["path", "generated", "watermark", "watermark_score"]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return tiny_bundle(tmp_path_factory.mktemp("bundle"))


@pytest.fixture(scope="module")
def with_detector(tmp_path_factory):
    folder = tiny_bundle(tmp_path_factory.mktemp("bundle"))
    torch.manual_seed(0)
    Detector(DetectorConfig(channels=(4, 8, 8), n_mels=32, window_seconds=0.5)).save(folder / "detector")
    return folder


def detect_lines(capsys, *paths, models=None) -> tuple[int, list[dict], list[str]]:
    code = main(["detect", *map(str, paths), *(["--models", str(models)] if models else [])])
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines()], err.splitlines()


def test_detect_prints_one_json_line_per_file(bundle, tmp_path, capsys):
    x = speechlike(2.0, seed=1)
    sf.write(str(tmp_path / "plain.wav"), x, SR)
    sf.write(str(tmp_path / "marked.flac"), embed(x, SR), SR)
    sf.write(str(tmp_path / "marked-44k-stereo.wav"), np.stack([embed(speechlike(2.0, 2, 44100), 44100)] * 2, axis=1), 44100)
    paths = [tmp_path / "plain.wav", tmp_path / "marked.flac", tmp_path / "marked-44k-stereo.wav"]
    code, lines, err = detect_lines(capsys, *paths, models=bundle)
    assert code == 0 and err == []
    assert [line["path"] for line in lines] == [str(tmp_path / n) for n in ("plain.wav", "marked.flac", "marked-44k-stereo.wav")]
    for line in lines:
        assert list(line) == FIELDS and line["generated"] is None  # a bundle without detector/: null, never a made-up probability
        assert isinstance(line["watermark_score"], float) and line["watermark"] == (line["watermark_score"] > THRESHOLD)
    assert [line["watermark"] for line in lines] == [False, True, True]


def test_the_bundles_detector_gives_a_probability_per_file(with_detector, tmp_path, capsys):
    sf.write(str(tmp_path / "plain.wav"), speechlike(2.0, seed=1), SR)
    sf.write(str(tmp_path / "short.wav"), speechlike(0.2, seed=2), SR)
    code, lines, err = detect_lines(capsys, tmp_path / "plain.wav", tmp_path / "short.wav", models=with_detector)
    assert code == 0 and err == []
    detector = Detector.load(with_detector / "detector")
    for line, name in zip(lines, ("plain.wav", "short.wav")):
        assert list(line) == FIELDS and 0.0 < line["generated"] < 1.0
        expected = detector.probability(torch.from_numpy(sf.read(str(tmp_path / name), dtype="float32")[0]))
        assert line["generated"] == pytest.approx(expected, abs=1e-4)  # the file's windows, averaged in logits


def test_a_missing_bundle_is_one_error_line(tmp_path, capsys):
    sf.write(str(tmp_path / "plain.wav"), speechlike(1.0, seed=1), SR)
    code, lines, err = detect_lines(capsys, tmp_path / "plain.wav", models=tmp_path / "nowhere")
    assert code == 1 and lines == [] and len(err) == 1 and "nowhere" in err[0] and "no such model bundle folder" in err[0]


def test_a_bad_file_gets_one_error_line_and_the_others_their_line(bundle, tmp_path, capsys):
    sf.write(str(tmp_path / "marked.wav"), embed(speechlike(1.5, seed=3), SR), SR)
    (tmp_path / "garbage.wav").write_bytes(b"not audio at all")
    sf.write(str(tmp_path / "silent.wav"), np.zeros(SR, np.float32), SR)
    paths = [tmp_path / "missing.wav", tmp_path / "marked.wav", tmp_path / "garbage.wav", tmp_path / "silent.wav"]
    code, lines, err = detect_lines(capsys, *paths, models=bundle)
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
    code, lines, _ = detect_lines(capsys, tmp_path / "marked.wav", tmp_path / "plain.wav", models=bundle)
    assert code == 0 and [line["watermark"] for line in lines] == [True, False]
