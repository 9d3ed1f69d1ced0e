"""`audiolm lm | codec | semantic train --dry-run` in-process: exit 0, the figures printed, nothing read or written."""

import pytest

from audiolm.cli.main import main


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_lm_dry_run_prints_parameters_tokens_and_memory_and_writes_nothing(tmp_path, capsys):
    code, out, _ = run(capsys, "lm", "train", "--stage", "coarse", "--config", "paper", "--shards", tmp_path / "no-shards",
                       "-o", tmp_path / "run", "--dry-run", "--world-size", "16")
    assert code == 0
    assert "161,508,352" in out and "lm.blocks (12 x Block) | 151,019,520" in out  # parameters, total and per module
    assert "256 examples x 2,251 tokens = 576,256 tokens" in out  # global batch x the 10 s window
    assert "16 examples per GPU" in out
    assert "| DDP | 16 |" in out and "| FSDP | 16 |" in out and "checkpointed" in out
    assert list(tmp_path.iterdir()) == []  # no run folder, and the shards were never looked for


@pytest.mark.parametrize("family, figures", [("codec", ["codec.encoder (SEANetEncoder)", "128 examples x 50 frames", "6 kbps"]),
                                             ("semantic", ["encoder.blocks (24 x TransformerEncoderLayer)", "64 x 8 s = 512 s"])])
def test_codec_and_semantic_dry_runs_take_the_world_size_from_the_environment(family, figures, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "8")
    code, out, _ = run(capsys, family, "train", "--config", "paper", "--manifest", tmp_path / "none.jsonl", "-o", tmp_path / "run",
                       "--dry-run")
    assert code == 0 and "| DDP | 8 |" in out and "| FSDP | 8 |" in out
    assert all(figure in out for figure in figures), out
    assert list(tmp_path.iterdir()) == []


def test_a_batch_that_does_not_split_over_the_gpus_fails_with_one_line(tmp_path, capsys):
    code, _, err = run(capsys, "lm", "train", "--stage", "fine", "--config", "paper", "-o", tmp_path / "run", "--dry-run",
                       "--world-size", "3")
    assert code == 1 and "must divide" in err and len(err.strip().splitlines()) == 1
    code, _, err = run(capsys, "lm", "train", "--stage", "fine", "-o", tmp_path / "run", "--dry-run", "--world-size", "0")
    assert code == 1 and "--world-size" in err
    assert list(tmp_path.iterdir()) == []
