"""Training windows from memory-mapped token shards are exactly those of the eager loader they replace (every shard in
memory, each speaker's stream joined with torch.cat): same values, same draws from the generator, for semantic ids and
codes, windows crossing utterance and shard boundaries. Resumed and distributed runs rest on it."""

from __future__ import annotations

import json
import pickle
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from audiolm.data.manifest import read_manifest, write_manifest
from audiolm.data.shards import INDEX, TokenShards, _write_index, tokenize_corpus, write_shard
from audiolm.errors import FileError
from audiolm.train.lm import TokenStreams
from tests.helpers_lm import tiny_token_corpus

IDENTITY = {"tokenizer": {"fingerprint": "t" * 16, "codebook_size": 500, "frame_rate": 25.0, "sample_rate": 16000},
            "codec": {"config_hash": "c" * 16, "codebook_fingerprint": "f" * 16, "num_codebooks": 3, "codebook_size": 1024,
                      "frame_rate": 50.0, "sample_rate": 16000},
            "sample_rate": 16000, "shard_size": 5}


class EagerStreams:
    """The loader before memory maps (kept as the reference): every shard read whole, streams joined with torch.cat."""

    def __init__(self, folder: Path, split: str, ratio: int) -> None:
        records, semantic, codes = [], [], []
        for shard in json.loads((folder / INDEX).read_text())["shards"]:
            tensors = load_file(str(folder / f"{shard['name']}.safetensors"))
            for r in json.loads((folder / f"{shard['name']}.json").read_text())["utterances"]:
                records.append(r)
                semantic.append(tensors["semantic"][r["semantic_offset"]:r["semantic_offset"] + r["semantic_length"]].long())
                codes.append(tensors["codes"][:, r["codes_offset"]:r["codes_offset"] + r["codes_length"]].long())
        by_speaker: dict[str | None, list[int]] = {}
        for i, r in enumerate(records):
            if r["split"] == split:
                by_speaker.setdefault(r["speaker"], []).append(i)
        streams: dict[str, list[int]] = {}
        for speaker, utterances in by_speaker.items():
            if speaker is None:
                streams.update({f"utterance {i:09d}": [i] for i in utterances})
            else:
                streams[f"speaker {speaker}"] = utterances
        self.ratio, self.semantic, self.codes = ratio, [], []
        for _, utterances in sorted(streams.items()):
            n = [min(semantic[i].shape[0], codes[i].shape[1] // ratio) for i in utterances]
            self.semantic.append(torch.cat([semantic[i][:k] for i, k in zip(utterances, n)]))
            self.codes.append(torch.cat([codes[i][:, :k * ratio] for i, k in zip(utterances, n)], dim=1))
        self.lengths = torch.tensor([s.shape[0] for s in self.semantic])

    def windows(self, count: int, length: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        room = (self.lengths - length + 1).clamp_min(0).double()
        picks = torch.multinomial(room, count, replacement=True, generator=generator).tolist()
        semantic, codes = [], []
        for stream in picks:
            start = int(torch.randint(0, int(room[stream]), (1,), generator=generator))
            semantic.append(self.semantic[stream][start:start + length])
            codes.append(self.codes[stream][:, start * self.ratio:(start + length) * self.ratio])
        return torch.stack(semantic), torch.stack(codes)


def random_shards(folder: Path, seed: int = 0) -> Path:
    """Four shards of random tokens written as `tokenize_corpus` writes them: five speakers (a valid one), clips
    without a speaker, an empty utterance and codes a frame longer or shorter than twice the semantic ids."""
    generator = torch.Generator().manual_seed(seed)
    sidecars, number = [], 0
    for shard in range(4):
        records, semantic, codes = [], [], []
        for _ in range(5):
            frames = int(torch.randint(0, 40, (1,), generator=generator)) if number != 7 else 0
            extra = int(torch.randint(-1, 2, (1,), generator=generator)) if frames else 0
            speaker = None if number % 6 == 5 else f"v{number % 4}" if number % 9 else "held"
            records.append({"id": f"u{number}", "speaker": speaker, "split": "valid" if speaker == "held" else "train",
                            "duration": frames / 25, "semantic_offset": sum(s.shape[0] for s in semantic), "semantic_length": frames,
                            "codes_offset": sum(c.shape[1] for c in codes), "codes_length": 2 * frames + extra})
            semantic.append(torch.randint(0, 500, (frames,), generator=generator))
            codes.append(torch.randint(0, 1024, (3, 2 * frames + extra), generator=generator))
            number += 1
        sidecars.append(write_shard(folder, shard, IDENTITY, records, torch.cat(semantic), torch.cat(codes, dim=1)))
    _write_index(folder, IDENTITY, sidecars)
    return folder


@pytest.fixture(scope="module")
def tiny_shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny corpus's real tokens re-sharded by 3, its 8 clips of 2 s (50 semantic frames) now of 3 speakers and one
    without, so that streams join several utterances across shards."""
    corpus = tiny_token_corpus(tmp_path_factory.mktemp("corpus"))
    folder = corpus["manifest"].parent
    entries = read_manifest(corpus["manifest"])
    entries = [replace(e, path=str(e.audio_path(folder)), speaker=None if i == 4 else "abc"[i % 3], split="train")
               for i, e in enumerate(entries)]
    write_manifest(folder / "joined.jsonl", entries)
    out = folder.parent / "joined"
    tokenize_corpus(folder / "joined.jsonl", corpus["semantic"], corpus["codec"], out, shard_size=3, progress=False)
    return out


@pytest.mark.parametrize("max_open", [1, 16])
def test_windows_equal_the_eager_loaders_on_real_tokens(tiny_shards: Path, max_open: int) -> None:
    shards = TokenShards(tiny_shards, max_open=max_open)
    assert len(shards.names) == 3 and len(shards) == 8
    eager, streams = EagerStreams(tiny_shards, "train", ratio=2), TokenStreams(shards, shards.split("train"), ratio=2)
    assert torch.equal(streams.lengths, eager.lengths) and streams.lengths.tolist() == [150, 100, 100, 50]
    for length in (1, 20, 49, 51, 120):  # 51 and 120 always cross a boundary of 50-frame clips
        for seed in range(4):
            want = eager.windows(16, length, torch.Generator().manual_seed(seed))
            got = streams.windows(16, length, torch.Generator().manual_seed(seed))
            assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
    assert len(shards._maps) <= max_open


@pytest.mark.parametrize("ratio", [1, 2])
def test_windows_equal_the_eager_loaders_on_random_tokens(tmp_path: Path, ratio: int) -> None:
    folder = random_shards(tmp_path)
    shards = TokenShards(folder, max_open=2)
    for split in ("train", "valid"):
        eager, streams = EagerStreams(folder, split, ratio), TokenStreams(shards, shards.split(split), ratio)
        assert torch.equal(streams.lengths, eager.lengths)
        for s in range(len(streams)):
            semantic, codes = streams.stream(s)
            assert torch.equal(semantic, eager.semantic[s]) and torch.equal(codes, eager.codes[s])
        for length in (1, 7, 33, 90):
            if length > int(eager.lengths.max()):
                continue
            for seed in range(3):
                generator, reference = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed)
                for _ in range(2):  # and the generator left where the eager loader leaves it
                    got, want = streams.windows(8, length, generator), eager.windows(8, length, reference)
                    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])


def test_opening_reads_no_tokens_and_reading_checks_them(tmp_path: Path) -> None:
    folder = random_shards(tmp_path)
    shards = TokenShards(folder, max_open=2)
    assert not shards._maps  # nothing mapped until read
    tensors = load_file(str(folder / "shard_00001.safetensors"))
    u = shards.utterance(6)
    assert (u.id, u.shard) == ("u6", 1)
    assert torch.equal(shards.semantic(6), tensors["semantic"][u.semantic_offset:u.semantic_offset + u.semantic_length].long())
    assert torch.equal(shards.codes(6, 2, 5), tensors["codes"][:, u.codes_offset + 2:u.codes_offset + 5].long())
    assert list(shards._maps) == [1]
    for i in range(len(shards)):
        shards.codes(i)
    assert list(shards._maps) == [2, 3]  # the most recently read
    copy = pickle.loads(pickle.dumps(shards))  # as a spawned worker gets it: maps again
    assert not copy._maps and torch.equal(copy.codes(6), shards.codes(6))
    with pytest.raises(IndexError):
        shards.semantic(6, 0, u.semantic_length + 1)
    bad = dict(tensors, semantic=tensors["semantic"].clone().fill_(500))  # one past the vocabulary
    sidecar = json.loads((folder / "shard_00001.json").read_text())
    write_shard(folder, 1, IDENTITY, sidecar["utterances"], bad["semantic"], bad["codes"])
    reopened = TokenShards(folder)  # opens: the header is well-formed
    with pytest.raises(FileError, match="shard_00001.safetensors: holds tokens beyond the vocabularies"):
        reopened.semantic(6)
