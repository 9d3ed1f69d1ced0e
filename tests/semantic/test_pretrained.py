"""HFEncoder on tiny random HuBERT, wav2vec 2.0 and w2v-BERT 2.0 models saved with save_pretrained under tmp_path."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest
import torch

transformers = pytest.importorskip("transformers")

from audiolm.errors import FileError  # noqa: E402
from audiolm.semantic.encoder import FeatureEncoder  # noqa: E402
from audiolm.semantic.pretrained import HFEncoder  # noqa: E402

TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
TINY_CONV = dict(conv_dim=(32,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)
NUM_SAMPLES = 6500  # not a multiple of the 320-sample hop


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models gain nothing from threads, and lose much when the cores are busy."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_model(kind: str) -> tuple[torch.nn.Module, object]:
    """A random model of `kind` and the feature extractor its checkpoints ship with."""
    torch.manual_seed(0)
    if kind == "hubert":
        model = transformers.HubertModel(transformers.HubertConfig(**TINY, **TINY_CONV))
    elif kind == "wav2vec2":
        model = transformers.Wav2Vec2Model(transformers.Wav2Vec2Config(**TINY, **TINY_CONV))
    elif kind == "wav2vec2-stable":  # the large models' layout: layer norms first, a final one after the blocks
        config = transformers.Wav2Vec2Config(**TINY, **TINY_CONV, do_stable_layer_norm=True, feat_extract_norm="layer")
        model = transformers.Wav2Vec2Model(config)
    else:
        model = transformers.Wav2Vec2BertModel(transformers.Wav2Vec2BertConfig(**TINY, conv_depthwise_kernel_size=3))
        return model.eval(), transformers.SeamlessM4TFeatureExtractor()
    return model.eval(), transformers.Wav2Vec2FeatureExtractor(do_normalize=True)


@pytest.fixture(scope="module", params=["hubert", "wav2vec2", "wav2vec2-stable", "wav2vec2-bert"])
def checkpoint(request, tmp_path_factory) -> tuple[Path, torch.nn.Module, object]:
    model, extractor = tiny_model(request.param)
    folder = tmp_path_factory.mktemp(request.param)
    model.save_pretrained(folder)
    extractor.save_pretrained(folder)
    return folder, model, extractor


def waves(batch: int = 2, num_samples: int = NUM_SAMPLES) -> torch.Tensor:
    return 0.3 * torch.randn(batch, 1, num_samples, generator=torch.Generator().manual_seed(1))


def reference_outputs(model, extractor, wav: torch.Tensor):
    """The HF way: the feature extractor on numpy, then the model with output_hidden_states."""
    inputs = extractor(list(wav[:, 0].numpy()), sampling_rate=16000, return_tensors="pt")
    inputs = {k: v for k, v in inputs.items() if k in ("input_values", "input_features", "attention_mask")}
    if "input_values" in inputs:
        inputs.pop("attention_mask", None)
    with torch.no_grad():
        return model(**inputs, output_hidden_states=True)


def test_matches_hf_hidden_states(checkpoint):
    folder, model, extractor = checkpoint
    encoder = HFEncoder.from_folder(folder)
    assert isinstance(encoder, FeatureEncoder)
    assert (encoder.sample_rate, encoder.frame_rate, encoder.num_layers, encoder.hidden_size) == (16000, 50.0, 2, 32)
    assert not encoder.training
    wav = waves()
    outputs = reference_outputs(model, extractor, wav)
    assert len(outputs.hidden_states) == encoder.num_layers + 1
    for layer in range(encoder.num_layers + 1):
        feats = encoder.layer_features(wav, layer)
        assert feats.shape[0] == 2 and feats.shape[2] == 32
        assert abs(feats.shape[1] - NUM_SAMPLES * encoder.frame_rate / encoder.sample_rate) <= 2
        assert not feats.requires_grad
        expected = outputs.hidden_states[layer]
        if layer == encoder.num_layers and model.config.model_type == "wav2vec2" and model.config.do_stable_layer_norm:
            # The top block's output, before the encoder's final layer norm (transformers < 5 put it after, in hidden_states)
            with torch.no_grad():
                feats, expected = model.encoder.layer_norm(feats), outputs.last_hidden_state
        torch.testing.assert_close(feats, expected, atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="out of range"):
        encoder.layer_features(wav, 3)


def test_deterministic_and_batch_independent(checkpoint):
    encoder = HFEncoder.from_folder(checkpoint[0])
    wav = waves()
    feats = encoder.layer_features(wav, 2)
    assert torch.equal(feats, encoder.layer_features(wav, 2))
    torch.testing.assert_close(encoder.layer_features(wav[1:], 2), feats[1:], atol=1e-4, rtol=1e-4)
    assert not torch.allclose(feats[0], feats[1])  # different utterances, different features


def test_max_layer_drops_blocks_and_keeps_features(checkpoint):
    full = HFEncoder.from_folder(checkpoint[0])
    short = HFEncoder.from_folder(checkpoint[0], max_layer=1)
    assert short.num_layers == 1 and len(short.model.encoder.layers) == 1
    wav = waves()
    for layer in (0, 1):
        torch.testing.assert_close(short.layer_features(wav, layer), full.layer_features(wav, layer), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="out of range"):
        short.layer_features(wav, 2)
    with pytest.raises(FileError, match="max_layer 3 out of range"):
        HFEncoder.from_folder(checkpoint[0], max_layer=3)


def test_waveform_normalisation_follows_preprocessor_config(tmp_path):
    # conv biases and layer norms: unlike a GroupNorm front end, not blind to the waveform's offset and scale
    model = transformers.Wav2Vec2Model(transformers.Wav2Vec2Config(**TINY, **TINY_CONV, conv_bias=True, feat_extract_norm="layer"))
    model.eval().save_pretrained(tmp_path)
    transformers.Wav2Vec2FeatureExtractor(do_normalize=False).save_pretrained(tmp_path)
    wav = waves() + 0.2
    normalised_wav = (wav - wav.mean(-1, keepdim=True)) / wav.std(-1, unbiased=False, keepdim=True)
    with torch.no_grad():
        expected_raw, expected_normalised = (model(w[:, 0], output_hidden_states=True).hidden_states[1] for w in (wav, normalised_wav))
    assert not torch.allclose(expected_raw, expected_normalised, atol=1e-2)

    torch.testing.assert_close(HFEncoder.from_folder(tmp_path).layer_features(wav, 1), expected_raw)
    settings = json.loads((tmp_path / "preprocessor_config.json").read_text())
    (tmp_path / "preprocessor_config.json").write_text(json.dumps({**settings, "do_normalize": True}))
    torch.testing.assert_close(HFEncoder.from_folder(tmp_path).layer_features(wav, 1), expected_normalised, atol=1e-4, rtol=1e-4)
    (tmp_path / "preprocessor_config.json").unlink()  # without one, Wav2Vec2FeatureExtractor's default: normalise
    torch.testing.assert_close(HFEncoder.from_folder(tmp_path).layer_features(wav, 1), expected_normalised, atol=1e-4, rtol=1e-4)


def test_refuses_pickled_weights(tmp_path):
    model, _ = tiny_model("hubert")
    model.config.save_pretrained(tmp_path)
    torch.save(model.state_dict(), tmp_path / "pytorch_model.bin")
    with pytest.raises(FileError, match="convert it to model.safetensors") as error:
        HFEncoder.from_folder(tmp_path)
    assert str(tmp_path) in str(error.value) and "\n" not in str(error.value)
    (tmp_path / "pytorch_model.bin").unlink()
    with pytest.raises(FileError, match="no model.safetensors"):
        HFEncoder.from_folder(tmp_path)


def test_folder_errors(tmp_path):
    with pytest.raises(FileError, match="no such checkpoint folder"):
        HFEncoder.from_folder(tmp_path / "missing")
    with pytest.raises(FileError, match="no config.json"):
        HFEncoder.from_folder(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "whisper"}))
    with pytest.raises(FileError, match="unsupported model_type 'whisper': supported are hubert, wav2vec2, wav2vec2-bert"):
        HFEncoder.from_folder(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(FileError, match="cannot read JSON"):
        HFEncoder.from_folder(tmp_path)


def test_without_transformers(tmp_path, monkeypatch):
    model, _ = tiny_model("hubert")
    model.save_pretrained(tmp_path)
    monkeypatch.setitem(sys.modules, "transformers", None)  # `import transformers` now raises ImportError
    monkeypatch.delitem(sys.modules, "audiolm.semantic.pretrained")
    module = importlib.import_module("audiolm.semantic.pretrained")  # importing the library needs no transformers
    with pytest.raises(FileError, match=r"pip install 'audiolm\[hf\]'"):
        module.HFEncoder.from_folder(tmp_path)
