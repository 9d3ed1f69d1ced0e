"""The codec model: shapes, causality, bitrates, save/load, the .codes file, and that a tiny one learns."""

import pytest
import torch

from audiolm.codec.codes_file import load_codes, save_codes
from audiolm.codec.model import Codec, CodecConfig
from audiolm.errors import FileError

TINY = dict(encoder_dim=16, encoder_layers=1, encoder_channels=4, latent_dim=16,
             num_codebooks=4, codebook_size=32, decoder_dim=32, decoder_layers=2)


@pytest.fixture(params=[("stft", "istft"), ("seanet", "seanet"), ("stft-phase", "istft")], ids=lambda p: "+".join(p))
def codec(request):
    torch.manual_seed(0)
    encoder, decoder = request.param
    phase = encoder == "stft-phase"
    return Codec(CodecConfig(**TINY, encoder=encoder.removesuffix("-phase"), encoder_phase=phase, decoder=decoder,
                             decoder_channels=4)).eval()


def test_phase_changes_the_fingerprint_only_when_on():
    """Codecs saved before `encoder_phase` existed (the bundled one) keep the fingerprint their codes carry."""
    from pathlib import Path

    from safetensors import safe_open

    bundled = Path(__file__).parents[2] / "models" / "speech" / "codec"
    with safe_open(str(bundled / "model.safetensors"), "pt") as f:
        saved_hash = f.metadata()["config_hash"]
    assert Codec.load(bundled).config.hash() == saved_hash
    assert CodecConfig(encoder_phase=True).hash() != CodecConfig().hash()


def test_shapes_rates_and_bitrates(codec):
    config = codec.config
    assert config.hop_length == 320 and config.frame_rate == 50
    assert config.bitrate(4) == 4 * 5 * 50  # 5 bits per code of 32
    assert CodecConfig().bitrate() == 6000 and CodecConfig().codebooks_for_bitrate(1.5) == 3
    wav = torch.randn(2, 1, 3200) * 0.1
    codes = codec.encode(wav)
    assert codes.shape == (2, 4, 10) and codes.dtype == torch.int64
    assert codec.encode(wav[..., :3000]).shape == (2, 4, 10)  # padded to whole frames
    assert codec.decode(codes).shape == (2, 1, 3200)
    assert codec.decode(codes[:, :2]).shape == (2, 1, 3200)
    with pytest.raises(ValueError):
        codec.decode(torch.full((1, 4, 5), 32))


def test_encoder_is_causal(codec):
    wav = torch.randn(1, 1, 6400) * 0.1
    full = codec.encoder(wav)
    prefix = codec.encoder(wav[..., :3200])
    torch.testing.assert_close(prefix, full[..., :10], atol=1e-5, rtol=1e-4)


def test_decoder_output_prefix_is_final_after_its_lookahead(codec):
    latents = torch.randn(1, 16, 20)
    full = codec.decoder(latents)
    prefix = codec.decoder(latents[..., :12])
    hop = codec.config.hop_length
    lookahead = hop * (codec.config.n_fft_multiple - 1) if codec.config.decoder == "istft" else 0
    exact = 12 * hop - lookahead
    torch.testing.assert_close(prefix[..., :exact], full[..., :exact], atol=1e-5, rtol=1e-4)


def test_save_load_round_trip_and_fp16(codec, tmp_path):
    wav = torch.randn(1, 1, 3200) * 0.1
    codes = codec.encode(wav)
    codec.save(tmp_path / "m")
    loaded = Codec.load(tmp_path / "m")
    torch.testing.assert_close(loaded.decode(codes), codec.decode(codes), atol=1e-5, rtol=1e-4)
    assert torch.equal(loaded.encode(wav), codes)
    codec.save(tmp_path / "half", dtype=torch.float16)
    assert (tmp_path / "half" / "model.safetensors").stat().st_size < 0.6 * (tmp_path / "m" / "model.safetensors").stat().st_size
    assert Codec.load(tmp_path / "half").codebook_fingerprint() == codec.codebook_fingerprint()


def test_corrupt_or_mismatched_model_files_fail_clearly(codec, tmp_path):
    codec.save(tmp_path / "m")
    (tmp_path / "m" / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(FileError, match="corrupt"):
        Codec.load(tmp_path / "m")
    Codec(CodecConfig(**{**TINY, "latent_dim": 8})).save(tmp_path / "other")
    (tmp_path / "other" / "config.json").write_text((tmp_path / "m" / "config.json").read_text())
    with pytest.raises(FileError, match="shape|match"):
        Codec.load(tmp_path / "other")


def test_codes_file_round_trip_and_mismatch_refusal(codec, tmp_path):
    wav = torch.randn(1, 1, 3000) * 0.1
    codes = codec.encode(wav, 3)
    path = save_codes(tmp_path / "x.codes", codes, codec, 3000)
    stored = load_codes(path)
    assert torch.equal(stored.codes, codes[0]) and stored.num_samples == 3000 and stored.num_codebooks == 3
    stored.check(codec, path)
    other = Codec(CodecConfig(**{**TINY, "codebook_size": 64}))
    with pytest.raises(FileError, match="other settings"):
        stored.check(other, path)
    retrained = Codec(codec.config)
    with pytest.raises(FileError, match="other codebooks"):
        stored.check(retrained, path)
    (tmp_path / "bad.codes").write_bytes(b"\x00" * 20)
    with pytest.raises(FileError, match="corrupt"):
        load_codes(tmp_path / "bad.codes")
    with pytest.raises(FileError, match="no such"):
        load_codes(tmp_path / "none.codes")
