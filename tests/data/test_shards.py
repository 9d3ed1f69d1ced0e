"""Token shards: round trip against direct tokenization, resume, skipped audio, refusals, helpers, workers and ranks."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from audiolm.audio.io import load_audio, save_audio
from audiolm.codec.model import Codec, CodecConfig
from audiolm.data.manifest import Entry, read_manifest, write_manifest
from audiolm.data.shards import TokenShards, tokenize_corpus
from audiolm.errors import FileError
from audiolm.semantic.encoder import MFCCEncoder
from audiolm.semantic.tokenizer import SemanticTokenizer, fit_tokenizer
from tests.helpers_codec import tone_manifest

TINY = dict(encoder_dim=16, encoder_layers=1, encoder_channels=4, latent_dim=16,
            num_codebooks=4, codebook_size=32, decoder_dim=32, decoder_layers=1)
SPEAKERS = ["a", "b", "a", "c", "b", "a"]


def _clips(count: int = 6) -> list[torch.Tensor]:
    t = torch.arange(8000) / 16000
    return [(0.3 * torch.sin(2 * torch.pi * (120 + 50 * i) * t))[None, None] for i in range(count)]


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    codec = Codec(CodecConfig(**TINY)).save(folder / "codec")
    other_codec = Codec(CodecConfig(**TINY)).save(folder / "other_codec")  # same settings, other codebooks
    tokenizer = fit_tokenizer(MFCCEncoder(stack=2), 0, _clips(), k=8, iterations=5).save(folder / "tokenizer")
    other_tokenizer = fit_tokenizer(MFCCEncoder(stack=2), 0, _clips(), k=8, iterations=5, seed=1).save(folder / "other_tokenizer")
    return {"codec": codec, "other_codec": other_codec, "tokenizer": tokenizer, "other_tokenizer": other_tokenizer}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """6 tones (speakers a, b, a, c, b, a; the last valid), one of an odd length, then a corrupt and an empty file."""
    folder = tmp_path_factory.mktemp("corpus")
    entries = read_manifest(tone_manifest(folder, count=6, seconds=0.5))
    for entry, speaker in zip(entries, SPEAKERS):
        entry.speaker = speaker
    save_audio(folder / "tone2.wav", load_audio(folder / "tone2.wav")[:, :5001], 16000)  # ceil(5001 / 320) = 16, ceil(5001 / 640) = 8
    (folder / "junk.wav").write_bytes(b"not audio")
    save_audio(folder / "empty.wav", torch.zeros(1, 0), 16000)
    entries.insert(3, Entry(id="junk", path="junk.wav", duration=1.0, sample_rate=16000, speaker="c", split="train"))
    entries.append(Entry(id="empty", path="empty.wav", duration=0.0, sample_rate=16000, speaker="a", split="train"))
    write_manifest(folder / "manifest.jsonl", entries)
    return folder / "manifest.jsonl"


def _tokenize(corpus: Path, models: dict, out: Path, **kwargs) -> dict:
    kwargs = {"shard_size": 3, "progress": False, **kwargs}
    return tokenize_corpus(corpus, kwargs.pop("tokenizer", models["tokenizer"]), kwargs.pop("codec", models["codec"]), out, **kwargs)


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_round_trip_equals_direct_tokenization(corpus, models, tmp_path):
    summary = _tokenize(corpus, models, tmp_path / "tok")
    assert summary["complete"] and summary["shards"] == 3 and summary["utterances"] == 6 and summary["skipped"] == 2
    shards = TokenShards(tmp_path / "tok")
    codec, tokenizer = Codec.load(models["codec"]), SemanticTokenizer.load(models["tokenizer"])
    shards.check(tokenizer, codec)
    utterances = [shards.utterance(i) for i in range(len(shards))]
    assert len(shards) == 6 and [u.id for u in utterances] == [f"tone{i}" for i in range(6)]
    assert [u.shard for u in utterances] == [0, 0, 0, 1, 1, 2] and shards.utterance(-1) == utterances[-1]
    assert (shards.num_codebooks, shards.codebook_size, shards.semantic_vocab) == (4, 32, 8)
    assert (shards.semantic_frame_rate, shards.acoustic_frame_rate) == (25, 50)
    for i, utterance in enumerate(utterances):
        wav = load_audio(corpus.parent / f"{utterance.id}.wav")[None]  # [1, 1, L]
        semantic, codes = shards.semantic(i), shards.codes(i)
        assert semantic.dtype == codes.dtype == torch.int64
        assert codes.shape == (4, math.ceil(wav.shape[-1] / 320)) and semantic.shape == (math.ceil(wav.shape[-1] / 640),)
        assert torch.equal(codes, codec.encode(wav)[0]) and torch.equal(semantic, tokenizer(wav)[0])
        assert utterance.duration == pytest.approx(wav.shape[-1] / 16000)
    assert shards.codes(2).shape == (4, 16) and shards.semantic(2).shape == (8,)
    tensors = load_file(str(tmp_path / "tok" / "shard_00000.safetensors"))
    assert tensors["semantic"].dtype == tensors["codes"].dtype == torch.uint16 and tensors["codes"].shape == (4, 25 + 25 + 16)
    index = TokenShards(tmp_path / "tok").index
    assert index["totals"]["skipped"] == 2 and index["totals"]["utterances"] == 6
    assert index["totals"]["hours"] == pytest.approx((5 * 8000 + 5001) / 16000 / 3600, abs=1e-6)
    skipped = {s["id"]: s for s in index["skipped"]}
    assert set(skipped) == {"junk", "empty"} and "unreadable" in skipped["junk"]["error"] and "empty" in skipped["empty"]["error"]
    assert skipped["junk"]["path"].endswith("junk.wav")


def test_fewer_levels_are_the_first_levels(corpus, models, tmp_path):
    _tokenize(corpus, models, tmp_path / "all")
    _tokenize(corpus, models, tmp_path / "two", num_codebooks=2)
    full, two = TokenShards(tmp_path / "all"), TokenShards(tmp_path / "two")
    assert two.num_codebooks == 2 and all(torch.equal(two.codes(i), full.codes(i)[:2]) for i in range(len(full)))


def test_resume_rewrites_only_missing_shards_with_identical_bytes(corpus, models, tmp_path):
    out = tmp_path / "tok"
    _tokenize(corpus, models, out)
    before = _files(out)
    (out / "shard_00001.safetensors").unlink()
    (out / "shard_00002.json").unlink()
    summary = _tokenize(corpus, models, out)
    assert summary["tokenized"] == 2 and summary["complete"] and _files(out) == before
    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert _tokenize(corpus, models, out)["tokenized"] == 0
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.name != "index.json"} == {
        k: v for k, v in stamps.items() if k != "index.json"}


def test_corrupt_or_missing_shard_is_one_line_error_naming_it(corpus, models, tmp_path):
    out = tmp_path / "tok"
    _tokenize(corpus, models, out)
    (out / "shard_00001.safetensors").write_bytes(b"junk" * 10)
    with pytest.raises(FileError, match="shard_00001.safetensors") as error:
        TokenShards(out)
    assert "\n" not in str(error.value)
    (out / "shard_00001.safetensors").unlink()
    with pytest.raises(FileError, match="shard_00001.safetensors: no such shard file"):
        TokenShards(out)
    (out / "shard_00002.json").write_text("{", encoding="utf-8")
    (out / "shard_00001.json").unlink()
    with pytest.raises(FileError, match="shard_00001.json"):
        TokenShards(out)


def test_other_models_are_refused(corpus, models, tmp_path):
    out = tmp_path / "tok"
    _tokenize(corpus, models, out)
    for change in ({"codec": models["other_codec"]}, {"tokenizer": models["other_tokenizer"]}, {"num_codebooks": 2}, {"shard_size": 2}):
        with pytest.raises(FileError, match="index.json: holds tokens of"):
            _tokenize(corpus, models, out, **change)
    fewer = corpus.with_name("fewer.jsonl")  # another manifest: shard 1 would hold other utterances
    write_manifest(fewer, [e for e in read_manifest(corpus) if e.id != "tone3"])
    with pytest.raises(FileError, match="shard_00001.json: holds other utterances"):
        tokenize_corpus(fewer, models["tokenizer"], models["codec"], out, shard_size=3, progress=False)
    (out / "index.json").unlink()  # a partial folder: the shards themselves say which models wrote them
    with pytest.raises(FileError, match="shard_00000.json: holds tokens of another tokenizer, codec"):
        _tokenize(corpus, models, out, codec=models["other_codec"])
    assert not (out / "index.json").exists()
    _tokenize(corpus, models, out)
    shards = TokenShards(out)
    with pytest.raises(FileError, match="index.json: was written by another semantic tokenizer"):
        shards.check(tokenizer=SemanticTokenizer.load(models["other_tokenizer"]))
    with pytest.raises(FileError, match="index.json: was written by a codec with other codebooks"):
        shards.check(codec=Codec.load(models["other_codec"]))


def test_split_and_by_speaker(corpus, models, tmp_path):
    _tokenize(corpus, models, tmp_path / "tok")
    shards = TokenShards(tmp_path / "tok")
    assert shards.split("train").tolist() == [0, 1, 2, 3, 4] and shards.split("valid").tolist() == [5]
    assert shards.split("test").tolist() == [] and shards.split(None).tolist() == []
    assert shards.by_speaker(shards.split("train")) == {"a": [0, 2], "b": [1, 4], "c": [3]}
    assert shards.by_speaker([5, 1, 0]) == {"a": [0, 5], "b": [1]}


def test_workers_and_ranks_give_the_same_files(corpus, models, tmp_path, monkeypatch):
    _tokenize(corpus, models, tmp_path / "one")
    _tokenize(corpus, models, tmp_path / "two", workers=2)
    assert _files(tmp_path / "two") == _files(tmp_path / "one")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    first = _tokenize(corpus, models, tmp_path / "ranks")
    assert first["tokenized"] == 1 and not first["complete"] and not (tmp_path / "ranks" / "index.json").exists()
    monkeypatch.setenv("RANK", "0")
    assert _tokenize(corpus, models, tmp_path / "ranks")["complete"]  # the last rank to finish writes the index
    assert _files(tmp_path / "ranks") == _files(tmp_path / "one")
