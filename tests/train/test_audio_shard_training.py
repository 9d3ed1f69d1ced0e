"""Codec and semantic-encoder training streamed from audio shards (`data.audio_shards`): a run stopped and resumed
ends with exactly the weights of an uninterrupted one, because the loop keeps each process's stream position in
the checkpoint."""

import json

import pytest
import soundfile as sf
import torch
from safetensors.torch import load_file

from audiolm.data.audio_shards import write_shards
from audiolm.train.codec import train_codec
from tests.helpers_codec import tone_manifest


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tones")
    manifest = tone_manifest(folder, count=7)
    write_shards(manifest, folder / "shar", shard_size=2)  # 3 train shards, 1 valid
    return manifest, folder / "shar"


def checkpoint(run, step: int) -> tuple[dict[str, torch.Tensor], dict]:
    folder = run / "checkpoints" / f"step_{step:08d}"
    tensors = {f"{f.stem}/{k}": v for f in sorted(folder.glob("*.safetensors")) if f.stem != "trainer_state"
               for k, v in load_file(str(f)).items()}
    return tensors, json.loads((folder / "trainer_state.json").read_text())


def test_codec_from_shards_stopped_and_resumed_equals_an_uninterrupted_run(corpus, tmp_path):
    _, shards = corpus
    # 1.5 s blocks (2 cuts, 10 crops of 0.2 s): 8 crops a step cross blocks, shards, and an epoch (6 s, 30 crops)
    common = [f"data.audio_shards={shards}", "data.shuffle_seconds=1.5", "train.steps=6", "train.batch_size=8", "train.save_every=2",
              "train.valid_every=6", "disc_start_step=2", "train.num_threads=1"]
    train_codec("tiny", tmp_path / "straight", common, progress=False)
    train_codec("tiny", tmp_path / "killed", common, progress=False, stop_after=3)
    assert (tmp_path / "killed" / "checkpoints" / "latest.txt").read_text().strip() == "step_00000003"
    train_codec("tiny", tmp_path / "killed", common, progress=False)
    (a, state_a), (b, state_b) = checkpoint(tmp_path / "straight", 6), checkpoint(tmp_path / "killed", 6)
    assert a.keys() == b.keys() and a
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert state_a["data"] == state_b["data"] and len(state_a["data"]) == 1  # one process's stream position
    assert state_a["data"][0]["epoch"] == 1  # 48 crops: the second epoch
    assert (tmp_path / "straight" / "model" / "model.safetensors").is_file()


def test_semantic_encoder_trains_from_shards(corpus, tmp_path):
    from audiolm.semantic.encoder import MFCCEncoder
    from audiolm.semantic.tokenizer import fit_tokenizer
    from audiolm.train.semantic import train_semantic

    manifest, shards = corpus
    clips = [torch.from_numpy(sf.read(str(p), dtype="float32")[0])[None, None] for p in sorted(manifest.parent.glob("*.wav"))]
    targets = fit_tokenizer(MFCCEncoder(stack=2), 0, clips, k=8, iterations=5).save(tmp_path / "mfcc-km8")
    overrides = [f"data.audio_shards={shards}", f"targets={targets}", "train.steps=2", "train.grad_accum=2", "train.save_every=2",
                 "train.valid_every=2", "train.log_every=1", "train.num_threads=1"]
    result = train_semantic("tiny", tmp_path / "run", overrides, progress=False)
    assert result.step == 2 and any("valid/ssl/ce" in r for r in result.logs)
    _, state = checkpoint(tmp_path / "run", 2)
    assert state["data"][0]["taken"] > 0 or state["data"][0]["cut"] > 0  # 8 crops of 1 s taken from the stream


def test_two_torchrun_processes_each_save_their_own_stream_position(corpus, tmp_path):
    """Each process reads its own shards; the checkpoint holds both positions, each where that process's stream is
    after the steps done (gathered from both processes)."""
    import os
    import socket
    import subprocess
    import sys
    from pathlib import Path

    from audiolm.data.audio_shards import AudioStream

    _, shards = corpus
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
               "--master_port", str(port), "-m", "audiolm.cli.main", "codec", "train", "--config", "tiny", "--audio-shards",
               str(shards), "-o", str(tmp_path / "two"), "--quiet", "--stop-after", "3", "data.shuffle_seconds=1.5",
               "train.batch_size=8", "train.valid_every=1000", "train.num_threads=1"]
    done = subprocess.run(command, cwd=Path(__file__).resolve().parents[2], env={**os.environ, "OMP_NUM_THREADS": "1"},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    _, state = checkpoint(tmp_path / "two", 3)
    for rank in range(2):
        stream = AudioStream(shards, "train", 16000, 3200, seed=0, shuffle_seconds=1.5, rank=rank, world=2)
        stream.crops(3 * 4)  # 3 steps of 4 examples (8 over 2 processes)
        assert state["data"][rank] == stream.state()
    assert state["data"][0] != state["data"][1]
