"""audiolm.data.audio_shards: a manifest's audio in lhotse Shar shards (round trip, resumable writing), and the
training stream that splits them over processes and resumes exactly from its saved position."""

from __future__ import annotations

import gzip
import json
import shutil

import numpy as np
import pytest
import torch

from audiolm.audio.io import load_audio
from audiolm.cli.main import main
from audiolm.data.audio_shards import AudioStream, load_clips, read_index, read_shard, split_shards, write_shards
from audiolm.errors import FileError
from tests.helpers_codec import tone_manifest


@pytest.fixture(scope="module")
def tones(tmp_path_factory):
    """9 one-second tones (speakers s0..s8), tone8 in the valid split."""
    return tone_manifest(tmp_path_factory.mktemp("tones"), count=9)


@pytest.fixture(scope="module")
def shards(tones, tmp_path_factory):
    """The tones in one-cut shards: 8 train shards, 1 valid."""
    out = tmp_path_factory.mktemp("shards") / "shar"
    write_shards(tones, out, shard_size=1)
    return out


def test_shards_round_trip_audio_and_metadata_and_lhotse_reads_them(tones, tmp_path):
    from lhotse import CutSet

    summary = write_shards(tones, tmp_path / "shar", shard_size=2, max_seconds=0.4, seed=3)
    # each 1 s tone is cut into 3 pieces of 1/3 s: 24 train pieces in 12 shards, 3 valid pieces in 2
    assert {s: (v["shards"], v["cuts"]) for s, v in summary.splits.items()} == {"train": (12, 24), "valid": (2, 3)}
    assert summary.written == 14 and not summary.failures
    pieces = {}
    for split in ("train", "valid"):
        for cut in CutSet.from_shar(in_dir=tmp_path / "shar" / split):  # plain lhotse reads the folder
            assert cut.supervisions[0].custom["split"] == split and cut.sampling_rate == 16000
            pieces[cut.id] = (cut.supervisions[0].speaker, cut.custom["source_offset"], cut.load_audio()[0])
    assert len(pieces) == 27
    for i in range(9):
        original = load_audio(tones.parent / f"tone{i}.wav", 16000)[0].numpy()
        parts = [pieces[f"tone{i}_{k:04d}"] for k in range(3)]
        assert [p[0] for p in parts] == [f"s{i}"] * 3 and [p[1] for p in parts] == pytest.approx([0, 5333 / 16000, 10667 / 16000], abs=1e-6)
        joined = np.concatenate([p[2] for p in parts])
        assert len(joined) == len(original) and np.abs(joined - original).max() <= 1 / 32768 + 1e-7  # 16-bit FLAC
    # pieces are shuffled over the shards (a shard holds many speakers): not in manifest order
    first = [c.id for c in CutSet.from_shar(in_dir=tmp_path / "shar" / "train")]
    assert first != sorted(first)
    clips = load_clips(tmp_path / "shar", "valid", 16000)
    assert len(clips) == 3 and clips.speakers == ["s8"] * 3


def test_a_rerun_finishes_a_killed_run_and_refuses_other_settings(tones, tmp_path):
    out = tmp_path / "shar"
    write_shards(tones, out, shard_size=3)
    index = (out / "index.json").read_text()
    # a kill while shard 1 was renamed into place: its recording is there, its cuts are not; a temporary folder too
    (out / "index.json").unlink()
    (out / "train" / "cuts.000001.jsonl.gz").unlink()
    (out / ".tmp-train-000002-x").mkdir()
    (out / ".tmp-train-000002-x" / "recording.000002.tar").write_bytes(b"half")
    with pytest.raises(FileError, match="unfinished audio shards"):
        AudioStream(out, "train", 16000, 3200)
    summary = write_shards(tones, out, shard_size=3, workers=2)
    assert summary.written == 1 and (out / "index.json").read_text() == index
    assert not list(out.glob(".tmp-*"))
    with pytest.raises(FileError, match="settings.json: .*other settings \\(shard_size differ\\)"):
        write_shards(tones, out, shard_size=2)


def test_two_processes_read_disjoint_shards_that_cover_the_split(shards):
    index = read_index(shards)
    all_ids = {json.loads(line)["id"] for s in split_shards(index, shards, "train")
               for line in gzip.open(s["cuts_file"], "rt")}
    assert len(all_ids) == 8
    for epoch in range(3):
        seen = []
        for rank in range(2):
            stream = AudioStream(shards, "train", 16000, 3200, seed=5, rank=rank, world=2)
            seen.append({cut.id for i in stream.my_shards(epoch) for cut, _ in read_shard(stream.shards[i])})
            stream.close()
        assert not seen[0] & seen[1] and seen[0] | seen[1] == all_ids and len(seen[0]) == len(seen[1]) == 4
    orders = [AudioStream(shards, "train", 16000, 3200, seed=5, rank=0, world=2).my_shards(e) for e in range(3)]
    assert orders[0] != orders[1] or orders[1] != orders[2]  # a new shard order each epoch


def test_the_stream_resumes_exactly_from_its_state(shards):
    def stream(rank: int = 0, world: int = 1) -> AudioStream:
        # 1.5 s blocks: a block is two cuts, and 40 crops of 0.2 s cross blocks and epochs (5 crops a cut, 40 an epoch)
        return AudioStream(shards, "train", 16000, 3200, seed=1, shuffle_seconds=1.5, rank=rank, world=world)

    straight = stream()
    head = straight.crops(7)
    saved = json.loads(json.dumps(straight.state()))  # as the checkpoint holds it
    tail = straight.crops(90)
    assert head.shape == (7, 1, 3200) and tail.abs().amax(dim=-1).min() > 0.01  # every crop holds audio
    resumed = stream()
    resumed.load_state([saved])
    assert torch.equal(resumed.crops(90), tail)
    assert resumed.state() == straight.state() and straight.state()["epoch"] >= 2
    other_rank = stream(rank=1, world=2)
    with pytest.warns(UserWarning, match="for 1 processes, this run has 2: the audio stream restarts at epoch 3"):
        other_rank.load_state([straight.state()])
    assert other_rank.state()["epoch"] == 3


def test_a_corrupt_or_truncated_shard_is_one_line_naming_the_file(shards, tmp_path, capsys):
    broken = tmp_path / "broken"
    shutil.copytree(shards, broken)
    tar = broken / "train" / "recording.000000.tar"
    tar.write_bytes(tar.read_bytes()[: tar.stat().st_size // 3])
    cuts = broken / "train" / "cuts.000001.jsonl.gz"
    cuts.write_bytes(cuts.read_bytes()[:20])
    index = read_index(broken)
    for shard, path in ((split_shards(index, broken, "train")[0], tar), (split_shards(index, broken, "train")[1], cuts)):
        with pytest.raises(FileError) as error:
            list(read_shard(shard))
        assert str(error.value).startswith(f"{path}: corrupt shard") and "\n" not in str(error.value)
    # the trainer says so in one line, naming the file, whichever shard its stream reads first
    code = main(["codec", "train", "--config", "tiny", "--audio-shards", str(broken), "-o", str(tmp_path / "run"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith("audiolm: error: ") and f"{broken}/train/" in err and "corrupt shard" in err
