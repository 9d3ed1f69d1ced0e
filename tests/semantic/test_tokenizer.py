import pytest
import torch

from audiolm.errors import FileError
from audiolm.semantic.encoder import MFCCEncoder
from audiolm.semantic.ssl import SSLConfig, SSLEncoder
from audiolm.semantic.tokenizer import SemanticTokenizer, expand_repeats, fit_tokenizer, load_encoder, remove_repeats

TINY = SSLConfig(conv_channels=(8, 8, 16, 16, 32), dim=32, num_layers=3, num_heads=2, pos_conv_groups=4, num_targets=10, dropout=0.0)


def _clips(count: int = 12, seconds: float = 1.0) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    t = torch.arange(int(seconds * 16000)) / 16000
    clips = []
    for i in range(count):
        f0 = 100 + 40 * i
        wav = sum(torch.sin(2 * torch.pi * f0 * h * t) / h for h in range(1, 4)) * 0.2 + 0.01 * torch.randn(t.shape, generator=generator)
        clips.append(wav[None, None])
    return clips


@pytest.fixture(scope="module")
def tokenizer() -> SemanticTokenizer:
    torch.manual_seed(0)
    return fit_tokenizer(SSLEncoder(TINY).eval(), 2, _clips(), k=8, iterations=20)


def test_tokenizer_is_deterministic_and_batch_independent(tokenizer):
    clips = _clips(2)
    ids = tokenizer(torch.cat(clips))
    assert ids.shape == (2, 25) and ids.dtype == torch.long and 0 <= ids.min() and ids.max() < 8
    assert torch.equal(ids, tokenizer(torch.cat(clips)))
    assert torch.equal(ids[1:], tokenizer(clips[1]))
    assert tokenizer.encoder.num_layers == 2 and len(tokenizer.encoder.blocks) == 2  # blocks past the layer are dropped


def test_tokenizer_round_trips_through_its_folder(tokenizer, tmp_path):
    clips = torch.cat(_clips(4))
    loaded = SemanticTokenizer.load(tokenizer.save(tmp_path / "tok"))
    assert torch.equal(loaded(clips), tokenizer(clips))
    half = SemanticTokenizer.load(tokenizer.save(tmp_path / "half", dtype=torch.float16))
    assert (half(clips) == tokenizer(clips)).float().mean() > 0.9
    assert (tmp_path / "half" / "model.safetensors").stat().st_size < (tmp_path / "tok" / "model.safetensors").stat().st_size


def test_mfcc_tokenizer_round_trips(tmp_path):
    mfcc = fit_tokenizer(MFCCEncoder(stack=2), 0, _clips(), k=6, iterations=10)
    loaded = SemanticTokenizer.load(mfcc.save(tmp_path / "mfcc"))
    assert loaded.frame_rate == 25 and loaded.codebook_size == 6
    assert torch.equal(loaded(_clips(1)[0]), mfcc(_clips(1)[0]))


def test_broken_tokenizer_folders_fail_with_the_file_named(tokenizer, tmp_path):
    folder = tokenizer.save(tmp_path / "tok")
    with pytest.raises(FileError, match="no such file"):
        SemanticTokenizer.load(tmp_path / "missing")
    (folder / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(FileError, match="model.safetensors"):
        SemanticTokenizer.load(folder)
    other = fit_tokenizer(MFCCEncoder(), 0, _clips(), k=5, iterations=5).save(tmp_path / "other")
    (folder / "model.safetensors").write_bytes((other / "model.safetensors").read_bytes())  # centroids of another tokenizer
    with pytest.raises(FileError, match="does not match|centroids"):
        SemanticTokenizer.load(folder)
    (folder / "config.json").write_text('{"kind": "codec"}')
    with pytest.raises(FileError, match="not a semantic tokenizer"):
        SemanticTokenizer.load(folder)


def test_load_encoder_by_name_and_folder(tmp_path):
    assert load_encoder("mfcc").frame_rate == 50 and load_encoder("mfcc-25hz").frame_rate == 25
    SSLEncoder(TINY).save(tmp_path / "run" / "model")
    assert isinstance(load_encoder(str(tmp_path / "run")), SSLEncoder)
    with pytest.raises(FileError, match="no such file"):
        load_encoder(str(tmp_path / "nothing"))


def test_remove_repeats_round_trip():
    ids = torch.tensor([3, 3, 3, 1, 1, 7, 3, 3, 0])
    units, lengths = remove_repeats(ids)
    assert units.tolist() == [3, 1, 7, 3, 0] and lengths.tolist() == [3, 2, 1, 2, 1]
    assert torch.equal(expand_repeats(units, lengths), ids)
    random = torch.randint(4, (500,), generator=torch.Generator().manual_seed(0))
    units, lengths = remove_repeats(random)
    assert (units[1:] != units[:-1]).all() and int(lengths.sum()) == 500
    assert torch.equal(expand_repeats(units, lengths), random)
    empty_units, empty_lengths = remove_repeats(torch.zeros(0, dtype=torch.long))
    assert empty_units.numel() == 0 and expand_repeats(empty_units, empty_lengths).numel() == 0
