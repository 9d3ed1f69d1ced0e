import pytest
import torch

from audiolm.errors import FileError
from audiolm.semantic.encoder import FeatureEncoder, MFCCEncoder
from audiolm.semantic.ssl import SSLConfig, SSLEncoder, span_mask, ssl_loss

TINY = SSLConfig(conv_channels=(8, 8, 16, 16, 32), dim=32, num_layers=3, num_heads=2, pos_conv_groups=4, num_targets=10, dropout=0.0)


def _wav(seconds: float = 1.0, batch: int = 1, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, 1, int(seconds * 16000), generator=torch.Generator().manual_seed(seed)) * 0.1


@pytest.mark.parametrize("samples, frames", [(16000, 25), (16001, 26), (640, 1), (1000, 2)])
def test_encoder_gives_one_frame_per_640_samples_on_every_layer(samples, frames):
    encoder = SSLEncoder(TINY).eval()
    assert isinstance(encoder, FeatureEncoder) and encoder.frame_rate == 25
    states = encoder.hidden_states(torch.randn(2, 1, samples))
    assert len(states) == TINY.num_layers + 1
    assert all(s.shape == (2, frames, TINY.dim) for s in states)


def test_truncated_encoder_gives_the_same_features_and_round_trips_through_files(tmp_path):
    torch.manual_seed(0)
    encoder = SSLEncoder(TINY).eval()
    wav = _wav()
    expected = encoder.layer_features(wav, 2)
    assert torch.allclose(encoder.truncated(2).layer_features(wav, 2), expected, atol=1e-5)
    with pytest.raises(ValueError, match="layers 0..2"):
        encoder.truncated(2).layer_features(wav, 3)
    loaded = SSLEncoder.load(encoder.save(tmp_path / "enc"))
    assert torch.allclose(loaded.layer_features(wav, 2), expected, atol=1e-6)
    (tmp_path / "enc" / "config.json").write_text('{"kind": "codec"}')
    with pytest.raises(FileError, match="config.json"):
        SSLEncoder.load(tmp_path / "enc")


def test_span_mask_covers_about_the_expected_fraction_in_whole_spans():
    mask = span_mask(64, 200, 0.13, 5, torch.Generator().manual_seed(0))
    assert mask.shape == (64, 200) and mask.any(dim=1).all()
    expected = 1 - (1 - 0.13) ** 5
    assert abs(mask.float().mean().item() - expected) < 0.05
    # masked runs are at least one span long (except where they touch the end of the row)
    for row in mask:
        values, counts = torch.unique_consecutive(row, return_counts=True)
        assert all(n >= 5 for value, n in zip(values[:-1], counts[:-1]) if value)
    assert torch.equal(mask, span_mask(64, 200, 0.13, 5, torch.Generator().manual_seed(0)))
    assert span_mask(3, 10, 0.0, 4, torch.Generator().manual_seed(0)).any(dim=1).all()  # at least one span per row


def test_loss_counts_masked_frames_only_and_the_mask_changes_the_input():
    torch.manual_seed(0)
    encoder = SSLEncoder(TINY).eval()
    wav = _wav(batch=2)
    mask = span_mask(2, 25, 0.2, 3, torch.Generator().manual_seed(1))
    targets = torch.randint(10, (2, 25))
    logits = encoder(wav, mask)
    assert logits.shape == (2, 25, 10)
    assert not torch.allclose(logits, encoder(wav, torch.zeros_like(mask)))
    changed = logits.clone()
    changed[~mask] = torch.randn_like(changed[~mask])
    assert torch.allclose(ssl_loss(changed, targets, mask)[0], ssl_loss(logits, targets, mask)[0])


def test_mfcc_encoder_frames_and_stacking():
    wav = _wav(1.0)
    plain, stacked = MFCCEncoder(), MFCCEncoder(stack=2)
    a, b = plain.layer_features(wav), stacked.layer_features(wav)
    assert a.shape == (1, 50, 39) and b.shape == (1, 25, 78) and stacked.frame_rate == 25
    assert torch.allclose(b[0, 3, :39], a[0, 6]) and torch.allclose(b[0, 3, 39:], a[0, 7])
    assert MFCCEncoder().layer_features(torch.zeros(1, 1, 100)).shape == (1, 1, 39)
