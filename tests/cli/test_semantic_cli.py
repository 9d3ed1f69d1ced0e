"""`audiolm semantic fit-kmeans | tokenize` in-process on files under tmp_path."""

import json

from audiolm.cli.main import main
from tests.conftest import write_sine
from tests.helpers_codec import tone_manifest


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_fit_kmeans_then_tokenize_with_and_without_repeats(tmp_path, capsys):
    manifest = tone_manifest(tmp_path / "tones", count=5, seconds=1.0)
    code, out, _ = run(capsys, "semantic", "fit-kmeans", "--encoder", "mfcc-25hz", "-k", "4", "--manifest", manifest,
                       "-o", tmp_path / "tok", "--quiet")
    assert code == 0 and "K=4" in out and (tmp_path / "tok" / "model.safetensors").is_file()
    wav = write_sine(tmp_path / "a.wav", seconds=1.0, sample_rate=22050)
    code, out, _ = run(capsys, "semantic", "tokenize", wav, "--tokenizer", tmp_path / "tok")
    record = json.loads(out)
    assert code == 0 and len(record["ids"]) == 25 and record["frame_rate"] == 25
    code, _, _ = run(capsys, "semantic", "tokenize", wav, wav, "--tokenizer", tmp_path / "tok", "--dedup", "-o", tmp_path / "ids.jsonl")
    records = [json.loads(line) for line in (tmp_path / "ids.jsonl").read_text().splitlines()]
    assert code == 0 and len(records) == 2 and sum(records[0]["lengths"]) == 25
    assert all(a != b for a, b in zip(records[0]["ids"], records[0]["ids"][1:]))


def test_bad_inputs_fail_with_one_line(tmp_path, capsys):
    code, _, err = run(capsys, "semantic", "tokenize", tmp_path / "missing.wav", "--tokenizer", tmp_path / "nothing")
    assert code == 1 and err.count("\n") == 1 and "nothing" in err
    manifest = tone_manifest(tmp_path / "tones", count=2, seconds=0.5)
    code, _, err = run(capsys, "semantic", "fit-kmeans", "--encoder", "mfcc", "-k", "1000", "--manifest", manifest, "-o", tmp_path / "t",
                       "--quiet")
    assert code == 1 and "at least k = 1000" in err and not (tmp_path / "t").exists()
    code, _, err = run(capsys, "semantic", "fit-kmeans", "--encoder", "mfcc", "--layer", "3", "--manifest", manifest, "-o", tmp_path / "t")
    assert code == 1 and "layer 3 out of range" in err
