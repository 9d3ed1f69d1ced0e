"""The recipe end to end at toy scale: from nothing to a bundle that continues a prompt and holds its detector, then a
re-run that skips it all, and one with other parts that trains the detector again."""

import json

import torch

from audiolm.cli.main import main
from audiolm.detector.model import Detector
from audiolm.generation.bundle import part_fingerprints
from audiolm.generation.pipeline import AudioLM

# The detector step at toy scale: 4 + 1 utterances, a 3-step run of a tiny CNN without everyday processing.
TINY_DETECTOR = ["detector_train=4", "detector_valid=1", "detector_test=0", "detector_steps=3",
                 'detector_overrides=["model.channels=[4,8,8]", model.n_mels=32, model.window_seconds=0.5, train.batch_size=4, '
                 "train.warmup_steps=1, train.valid_every=3, train.save_every=3, augment_p=0, train.num_threads=1]"]


def trained_on(bundle) -> dict:
    return json.loads((bundle / "detector" / "config.json").read_text())["trained_on"]["parts"]


def test_recipe_builds_a_working_bundle_and_resumes(tmp_path, capsys):
    settings = ["hours=0.02", "workers=1", "codec_preset=tiny", "semantic_preset=tiny", "target_clusters=8", "tokenizer_layer=1",
                "tokenizer_clusters=8", "lm_preset=tiny", "fine_lm=true", "acoustic=both", "parallel_preset=tiny",
                "parallel_acoustic_overrides=[model.dim=16]", "overrides=[train.num_threads=1]", *TINY_DETECTOR]
    assert main(["recipe", "speech", "--workdir", str(tmp_path / "work"), "-o", str(tmp_path / "bundle"), "--quiet", *settings]) == 0
    out = capsys.readouterr().out
    assert "bundle written" in out and "acoustic LM" in out and "parallel acoustic LM" in out and "detector: trained" in out
    audiolm = AudioLM.load(tmp_path / "bundle")
    assert audiolm.parallel is not None and audiolm.parallel_acoustic.model.config.dim == 16  # the baseline's own override
    result = audiolm.continue_audio(torch.randn(1, 1, 16000) * 0.1, 1.0, seed=0, acoustic="ar")
    assert abs(result.wav.shape[-1] / 16000 - result.prompt_seconds - 1.0) <= 0.04 and audiolm.acoustic is not None
    assert audiolm.fine is not None and result.codes.shape[1] == audiolm.num_levels
    parallel = audiolm.continue_audio(torch.randn(1, 1, 16000) * 0.1, 1.0, seed=0)  # the default: the parallel stage
    assert parallel.acoustic == "parallel" and parallel.codes.shape == result.codes.shape
    bundle = tmp_path / "bundle"
    parts = part_fingerprints(bundle)
    assert trained_on(bundle) == parts and "fine-lm" in parts and "parallel-acoustic-lm" in parts
    assert 0.0 < Detector.load(bundle / "detector").probability(torch.randn(16000) * 0.1) < 1.0
    assert main(["recipe", "speech", "--workdir", str(tmp_path / "work"), "-o", str(tmp_path / "bundle"), "--quiet", *settings]) == 0
    again = capsys.readouterr().out
    assert "training" not in again and "k-means" not in again and "detector" not in again  # everything was done already
    assert trained_on(bundle) == parts
    fewer = [s for s in settings if s != "fine_lm=true"]  # the bundle loses its fine LM: the detector is trained again
    assert main(["recipe", "speech", "--workdir", str(tmp_path / "work"), "-o", str(tmp_path / "bundle"), "--quiet", *fewer]) == 0
    retrained = capsys.readouterr().out
    assert "parts changed" in retrained and "detector: training" in retrained  # write_bundle dropped the stale detector
    assert retrained.count("training (or resuming)") == 1  # the detector alone
    assert trained_on(bundle) == part_fingerprints(bundle) != parts and "fine-lm" not in trained_on(bundle)


def test_recipe_rejects_unknown_settings(tmp_path, capsys):
    assert main(["recipe", "speech", "--workdir", str(tmp_path), "colour=blue"]) == 1
    assert "unknown keys ['colour']" in capsys.readouterr().err


def test_recipe_trains_on_an_existing_manifest_and_refuses_a_missing_one(tmp_path, capsys):
    assert main(["recipe", "speech", "--workdir", str(tmp_path), "--quiet", f"manifest={tmp_path / 'none.jsonl'}"]) == 1
    err = capsys.readouterr().err
    assert "none.jsonl" in err and "no such corpus manifest" in err


def test_piano_recipe_builds_a_bundle_without_a_fine_stage(tmp_path, capsys):
    settings = ["hours=0.02", "workers=1", "codec_preset=tiny", "semantic_preset=tiny", "target_clusters=8", "tokenizer_layer=1",
                "tokenizer_clusters=8", "lm_preset=tiny", "acoustic_only=false", "overrides=[train.num_threads=1]", "detector=false"]
    assert main(["recipe", "piano", "--workdir", str(tmp_path / "work"), "-o", str(tmp_path / "bundle"), "--quiet", *settings]) == 0
    assert "bundle written" in capsys.readouterr().out
    assert not (tmp_path / "bundle" / "detector").exists() and not (tmp_path / "work" / "detector").exists()
    audiolm = AudioLM.load(tmp_path / "bundle")
    assert audiolm.fine is None and audiolm.acoustic is None and audiolm.num_levels == audiolm.coarse.spec.num_coarse
    result = audiolm.continue_audio(torch.randn(1, 1, 16000) * 0.1, 0.5, seed=0)
    assert abs(result.wav.shape[-1] / 16000 - result.prompt_seconds - 0.5) <= 0.04
