"""The self-supervised encoder through the shared loop: it learns its masked prediction, and its
tokenizer can be fitted on the result (the second HuBERT iteration)."""

import shutil

import pytest
import soundfile as sf
import torch

from audiolm.errors import AudiolmError
from audiolm.semantic.encoder import MFCCEncoder
from audiolm.semantic.tokenizer import SemanticTokenizer, fit_from_manifest, fit_tokenizer, load_encoder
from audiolm.train.semantic import train_semantic
from tests.helpers_codec import tone_manifest


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tones")
    manifest = tone_manifest(folder, count=8, seconds=2.0)
    clips = [torch.from_numpy(sf.read(str(p), dtype="float32")[0]).float()[None, None] for p in sorted(folder.glob("*.wav"))]
    targets = fit_tokenizer(MFCCEncoder(stack=2), 0, clips, k=8, iterations=20).save(folder / "mfcc-km8")
    return manifest, targets


def test_tiny_encoder_learns_masked_prediction(corpus, tmp_path):
    manifest, targets = corpus
    overrides = [f"data.manifest={manifest}", f"targets={targets}", "train.steps=60", "train.batch_size=8", "train.log_every=1",
                 "train.valid_every=60", "train.save_every=60", "train.warmup_steps=5", "optimizer.lr=3e-3", "train.num_threads=1"]
    result = train_semantic("tiny", tmp_path / "run", overrides, progress=False)
    losses = [r["ssl/ce"] for r in result.logs if "ssl/ce" in r and "step" in r and "valid/ssl/ce" not in r]
    assert len(losses) >= 60
    assert sum(losses[-10:]) / 10 < 0.7 * sum(losses[:5]) / 5
    assert (tmp_path / "run" / "model" / "model.safetensors").is_file()
    # the second iteration's targets: k-means on a layer of the trained encoder
    second = fit_from_manifest(str(tmp_path / "run"), 1, 4, manifest, max_frames=400, iterations=5, progress=False)
    second.save(tmp_path / "iter2")
    assert SemanticTokenizer.load(tmp_path / "iter2").frame_rate == 25
    # a run that has not finished is read from its latest checkpoint
    final = load_encoder(str(tmp_path / "run"))
    shutil.rmtree(tmp_path / "run" / "model")
    wav = torch.randn(1, 1, 8000) * 0.1
    assert torch.allclose(load_encoder(str(tmp_path / "run")).layer_features(wav, 2), final.layer_features(wav, 2), atol=1e-6)


def test_targets_must_match_the_encoder_rate(corpus, tmp_path):
    manifest, _ = corpus
    clips = [torch.randn(1, 1, 16000) * 0.1 for _ in range(4)]
    fifty_hz = fit_tokenizer(MFCCEncoder(), 0, clips, k=4, iterations=2).save(tmp_path / "mfcc50")
    with pytest.raises(AudiolmError, match="50 Hz.*25 Hz"):
        train_semantic("tiny", tmp_path / "run", [f"data.manifest={manifest}", f"targets={fifty_hz}"], progress=False)
    with pytest.raises(AudiolmError, match="no targets"):
        train_semantic("tiny", tmp_path / "run", [f"data.manifest={manifest}"], progress=False)


def test_augmented_inputs_keep_the_clean_targets(corpus, tmp_path):
    from audiolm.formats.config import load_config
    from audiolm.train.semantic import SemanticRunConfig, SemanticTask, resolve_preset

    manifest, targets = corpus
    common = [f"data.manifest={manifest}", f"targets={targets}", "model.num_targets=8"]

    def task(*overrides: str) -> SemanticTask:
        return SemanticTask(load_config(SemanticRunConfig, resolve_preset("tiny"), [*common, *overrides]), SemanticTokenizer.load(targets))

    clean, augmented = task().batch(3, 0, 4), task("augment_p=1.0").batch(3, 0, 4)
    assert torch.equal(augmented["targets"], clean["targets"]) and torch.equal(augmented["mask"], clean["mask"])
    assert augmented["wav"].shape == clean["wav"].shape and not torch.equal(augmented["wav"], clean["wav"])
    with pytest.raises(AudiolmError, match="shift_p"):
        task("augment_p=0.5", "augment.shift_p=0.3")
