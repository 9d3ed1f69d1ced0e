"""The recipe end to end at toy scale: from nothing to a bundle that continues a prompt, then a re-run that skips it all."""

import torch

from audiolm.cli.main import main
from audiolm.generation.pipeline import AudioLM


def test_recipe_builds_a_working_bundle_and_resumes(tmp_path, capsys):
    settings = ["hours=0.02", "workers=1", "codec_preset=tiny", "semantic_preset=tiny", "target_clusters=8", "tokenizer_layer=1",
                "tokenizer_clusters=8", "lm_preset=tiny", "fine_lm=true", "acoustic=both", "parallel_preset=tiny",
                "parallel_acoustic_overrides=[model.dim=16]", "overrides=[train.num_threads=1]"]
    assert main(["recipe", "speech", "--workdir", str(tmp_path / "work"), "-o", str(tmp_path / "bundle"), "--quiet", *settings]) == 0
    out = capsys.readouterr().out
    assert "bundle written" in out and "acoustic LM" in out and "parallel acoustic LM" in out
    audiolm = AudioLM.load(tmp_path / "bundle")
    assert audiolm.parallel is not None and audiolm.parallel_acoustic.model.config.dim == 16  # the baseline's own override
    result = audiolm.continue_audio(torch.randn(1, 1, 16000) * 0.1, 1.0, seed=0, acoustic="ar")
    assert abs(result.wav.shape[-1] / 16000 - result.prompt_seconds - 1.0) <= 0.04 and audiolm.acoustic is not None
    assert audiolm.fine is not None and result.codes.shape[1] == audiolm.num_levels
    parallel = audiolm.continue_audio(torch.randn(1, 1, 16000) * 0.1, 1.0, seed=0)  # the default: the parallel stage
    assert parallel.acoustic == "parallel" and parallel.codes.shape == result.codes.shape
    assert main(["recipe", "speech", "--workdir", str(tmp_path / "work"), "-o", str(tmp_path / "bundle"), "--quiet", *settings]) == 0
    again = capsys.readouterr().out
    assert "training" not in again and "k-means" not in again  # everything was done already


def test_recipe_rejects_unknown_settings(tmp_path, capsys):
    assert main(["recipe", "speech", "--workdir", str(tmp_path), "colour=blue"]) == 1
    assert "unknown keys ['colour']" in capsys.readouterr().err


def test_recipe_trains_on_an_existing_manifest_and_refuses_a_missing_one(tmp_path, capsys):
    assert main(["recipe", "speech", "--workdir", str(tmp_path), "--quiet", f"manifest={tmp_path / 'none.jsonl'}"]) == 1
    err = capsys.readouterr().err
    assert "none.jsonl" in err and "no such corpus manifest" in err


def test_piano_recipe_builds_a_bundle_without_a_fine_stage(tmp_path, capsys):
    settings = ["hours=0.02", "workers=1", "codec_preset=tiny", "semantic_preset=tiny", "target_clusters=8", "tokenizer_layer=1",
                "tokenizer_clusters=8", "lm_preset=tiny", "acoustic_only=false", "overrides=[train.num_threads=1]"]
    assert main(["recipe", "piano", "--workdir", str(tmp_path / "work"), "-o", str(tmp_path / "bundle"), "--quiet", *settings]) == 0
    assert "bundle written" in capsys.readouterr().out
    audiolm = AudioLM.load(tmp_path / "bundle")
    assert audiolm.fine is None and audiolm.acoustic is None and audiolm.num_levels == audiolm.coarse.spec.num_coarse
    result = audiolm.continue_audio(torch.randn(1, 1, 16000) * 0.1, 0.5, seed=0)
    assert abs(result.wav.shape[-1] / 16000 - result.prompt_seconds - 0.5) <= 0.04
