"""audiolm.semantic.interleave: a finer frame rate from shifted copies, and tokenizers built on it."""

import pytest
import torch

from audiolm.semantic.encoder import MFCCEncoder
from audiolm.semantic.interleave import Interleaved
from audiolm.semantic.ssl import SSLEncoder
from audiolm.semantic.tokenizer import SemanticTokenizer, fit_tokenizer
from tests.semantic.test_tokenizer import TINY, _clips


@pytest.fixture(scope="module")
def encoder() -> SSLEncoder:
    torch.manual_seed(0)
    return SSLEncoder(TINY).eval()


@pytest.mark.parametrize("length", [16000, 16000 + 100, 16000 + 320, 16000 + 500])
def test_frames_interleave_the_shifted_copies(encoder, length):
    wav = torch.randn(2, 1, length, generator=torch.Generator().manual_seed(1)) * 0.1
    fine = Interleaved(encoder, 2)
    assert fine.frame_rate == 2 * encoder.frame_rate and fine.num_layers == encoder.num_layers
    with torch.inference_mode():
        plain, shifted = encoder.layer_features(wav, 2), encoder.layer_features(wav[..., 320:], 2)
        features = fine.layer_features(wav, 2)
        states = fine.hidden_states(wav, max_layer=2)
    assert features.shape == (2, plain.shape[1] + shifted.shape[1], plain.shape[2])
    assert features.shape[1] == -(-length // 320)  # one frame per started half hop
    torch.testing.assert_close(features[:, 0::2], plain)
    torch.testing.assert_close(features[:, 1::2], shifted)
    assert len(states) == 3
    torch.testing.assert_close(states[2], features)


def test_the_factor_must_divide_the_hop(encoder):
    with pytest.raises(ValueError, match="divide"):
        Interleaved(encoder, 3)  # hop 640
    assert Interleaved(MFCCEncoder(), 4).frame_rate == 200


def test_an_interleaved_tokenizer_round_trips_through_its_folder(encoder, tmp_path):
    tokenizer = fit_tokenizer(Interleaved(encoder, 2), 1, _clips(), k=8, iterations=20)
    assert tokenizer.frame_rate == 50
    assert len(tokenizer.encoder.inner.blocks) == 1  # blocks past the layer are dropped inside the wrapper too
    clips = torch.cat(_clips(3))
    ids = tokenizer(clips)
    assert ids.shape == (3, 50)
    loaded = SemanticTokenizer.load(tokenizer.save(tmp_path / "tok"))
    assert isinstance(loaded.encoder, Interleaved) and loaded.frame_rate == 50
    assert torch.equal(loaded(clips), ids)
    assert loaded.fingerprint() == tokenizer.fingerprint()
    plain = fit_tokenizer(encoder, 1, _clips(), k=8, iterations=20)
    assert plain.fingerprint() != tokenizer.fingerprint()


def test_a_tokenizer_folder_lends_its_encoder_to_new_tokenizers(encoder, tmp_path):
    """fit-kmeans --encoder TOKENIZER: the bundled tokenizer's encoder (cut at its layer) refitted at 50 Hz."""
    from audiolm.semantic.tokenizer import load_encoder

    folder = fit_tokenizer(encoder, 1, _clips(), k=8, iterations=20).save(tmp_path / "tok")
    reused = load_encoder(str(folder))
    assert isinstance(reused, SSLEncoder) and reused.num_layers == 1
    wav = torch.cat(_clips(2))
    with torch.inference_mode():
        torch.testing.assert_close(reused.layer_features(wav, 1), encoder.layer_features(wav, 1))
    refit = fit_tokenizer(Interleaved(reused, 2), 1, _clips(), k=6, iterations=10)
    assert refit.frame_rate == 50 and refit(wav).shape == (2, 50)
    with pytest.raises(ValueError, match="out of range"):
        reused.layer_features(wav, 2)
