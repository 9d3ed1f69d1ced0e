"""`audiolm tokenize` on tiny saved models: a summary line and exit 0, or one error line and exit 1."""

import torch

from audiolm.cli.main import main
from audiolm.codec.model import Codec, CodecConfig
from audiolm.data.shards import TokenShards
from audiolm.semantic.encoder import MFCCEncoder
from audiolm.semantic.tokenizer import fit_tokenizer
from tests.helpers_codec import tone_manifest

TINY = dict(encoder_dim=16, encoder_layers=1, encoder_channels=4, latent_dim=16,
            num_codebooks=4, codebook_size=32, decoder_dim=32, decoder_layers=1)


def test_tokenize_writes_shards_and_refuses_other_models(tmp_path, capsys):
    torch.manual_seed(0)
    codec = Codec(CodecConfig(**TINY)).save(tmp_path / "codec")
    other = Codec(CodecConfig(**TINY)).save(tmp_path / "other")
    clips = [torch.sin(torch.arange(8000) / 16000 * 2 * torch.pi * f)[None, None] * 0.3 for f in (150, 300, 450)]
    tokenizer = fit_tokenizer(MFCCEncoder(stack=2), 0, clips, k=8, iterations=5).save(tmp_path / "tok")
    manifest = tone_manifest(tmp_path / "corpus", count=3, seconds=0.5)
    base = ["tokenize", manifest, "-o", tmp_path / "shards", "--semantic", tokenizer, "--quiet"]

    code = main([str(a) for a in [*base, "--codec", codec, "--num-codebooks", "2", "--shard-size", "2"]])
    out, err = capsys.readouterr()
    assert code == 0 and "tokenized 3 utterances" in out and "2 shards" in out and "skipped 0" in out
    assert len(TokenShards(tmp_path / "shards")) == 3 and TokenShards(tmp_path / "shards").num_codebooks == 2

    code = main([str(a) for a in [*base, "--codec", other, "--num-codebooks", "2", "--shard-size", "2"]])
    out, err = capsys.readouterr()
    assert code == 1 and err.startswith("audiolm: error: ") and "index.json: holds tokens of" in err
    assert len(err.strip().splitlines()) == 1

    code = main([str(a) for a in [*base, "--codec", tmp_path / "none"]])
    _, err = capsys.readouterr()
    assert code == 1 and "no such file" in err and len(err.strip().splitlines()) == 1
