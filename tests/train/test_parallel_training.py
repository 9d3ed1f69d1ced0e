"""The parallel acoustic stage through the shared loop on real (tiny) token shards at 25 Hz semantic / 50 Hz codes:
it learns, validates per level, exports a loadable stage with its fingerprints, resumes exactly, and DDP equals one
process."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from audiolm.cli.main import main
from audiolm.generation.maskgit import generate_parallel
from audiolm.lm.model import load_stage
from audiolm.train.lm import train_lm
from tests.helpers_ddp import assert_same_training
from tests.helpers_lm import tiny_token_corpus

ROOT = Path(__file__).resolve().parents[2]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return tiny_token_corpus(tmp_path_factory.mktemp("corpus"))["shards"]


def test_the_parallel_stage_learns_validates_per_level_and_exports(shards, tmp_path):
    overrides = [f"data.shards={shards}", "train.steps=40", "train.batch_size=8", "train.log_every=1", "train.valid_every=40",
                 "train.save_every=40", "train.warmup_steps=2", "optimizer.lr=3e-3", "train.num_threads=1"]
    result = train_lm("tiny", "parallel", tmp_path / "run", overrides, progress=False)
    losses = [r["lm/parallel/ce"] for r in result.logs if "lm/parallel/ce" in r]
    assert len(losses) == 40 and sum(losses[-5:]) / 5 < 0.8 * sum(losses[:5]) / 5
    valid = [r for r in result.logs if "valid/lm/parallel/ce" in r][-1]
    assert all(f"valid/lm/parallel/{name}_{level}" in valid for name in ("ce", "accuracy") for level in range(1, 5))
    assert "valid/lm/parallel/shuffled_ce_1" in valid
    model, spec, fingerprints = load_stage(tmp_path / "run" / "model")
    assert spec.stage == "parallel" and spec.target_levels == 4 and spec.ratio == 2 and not model.config.causal
    assert set(fingerprints) == {"semantic", "codec"}
    prompt = torch.randint(0, 32, (1, 4, 10))
    codes = generate_parallel(model, spec, torch.randint(0, 8, (1, 40)), prompt, 80, generator=torch.Generator().manual_seed(0))
    assert codes.shape == (1, 4, 80) and torch.equal(codes[:, :, :10], prompt) and int(codes.max()) < 32


def test_the_acoustic_only_baseline_from_the_cli(shards, tmp_path):
    code = main(["lm", "train", "--stage", "parallel", "--config", "tiny", "--shards", str(shards), "--acoustic-only",
                 "-o", str(tmp_path / "run"), "--quiet", "train.steps=3", "train.save_every=3", "train.num_threads=1"])
    assert code == 0
    model, spec, fingerprints = load_stage(tmp_path / "run" / "model")
    assert not spec.use_semantic and set(fingerprints) == {"codec"}
    assert model.embedding.num_embeddings == spec.vocab_size


def test_resume_after_a_kill_gives_the_same_weights(shards, tmp_path):
    common = [f"data.shards={shards}", "train.steps=6", "train.save_every=2", "train.num_threads=1", "train.valid_every=3"]
    train_lm("tiny", "parallel", tmp_path / "straight", common, progress=False)
    train_lm("tiny", "parallel", tmp_path / "killed", common, progress=False, stop_after=3)  # checkpoint at step 3, then "killed"
    assert (tmp_path / "killed" / "checkpoints" / "latest.txt").read_text().strip() == "step_00000003"
    train_lm("tiny", "parallel", tmp_path / "killed", common, progress=False)  # resumes from step 3
    for name in ("lm.safetensors",):
        a = load_file(str(tmp_path / "straight" / "checkpoints" / "step_00000006" / name))
        b = load_file(str(tmp_path / "killed" / "checkpoints" / "step_00000006" / name))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    assert torch.equal(load_file(str(tmp_path / "straight" / "model" / "model.safetensors"))["head.weight"],
                       load_file(str(tmp_path / "killed" / "model" / "model.safetensors"))["head.weight"])


def test_two_torchrun_processes_match_one_process(shards, tmp_path):
    common = ["train.steps=2", "train.batch_size=4", "train.save_every=1", "train.num_threads=1", "train.valid_every=1000",
              "model.dropout=0.0"]
    train_lm("tiny", "parallel", tmp_path / "one", [f"data.shards={shards}", *common], progress=False)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1", "--master_port",
               str(port), "-m", "audiolm.cli.main", "lm", "train", "--stage", "parallel", "--config", "tiny", "--shards", str(shards),
               "-o", str(tmp_path / "two"), "--quiet", *common]
    done = subprocess.run(command, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert_same_training(tmp_path / "one", tmp_path / "two", 2, ["lm.safetensors"])


def test_init_from_starts_a_run_from_a_model_and_level_weights_are_checked(shards, tmp_path):
    from audiolm.errors import AudiolmError, FileError
    from audiolm.formats.tensors import load_tensors

    common = [f"data.shards={shards}", "train.steps=2", "train.batch_size=4", "train.warmup_steps=1", "train.num_threads=1",
              "model.tie_embeddings=true"]
    train_lm("tiny", "parallel", tmp_path / "first", common, progress=False)
    trained = load_tensors(tmp_path / "first" / "model" / "model.safetensors")
    # one step at lr 1e-12 from the first run's weights: they come through (Adam moves each weight by about lr)
    train_lm("tiny", "parallel", tmp_path / "second", [*common, "train.steps=1", "optimizer.lr=1e-12",
                                                       f"init_from={tmp_path / 'first' / 'model'}"], progress=False)
    again = load_tensors(tmp_path / "second" / "model" / "model.safetensors")
    assert set(trained) == set(again)
    for key in trained:
        torch.testing.assert_close(again[key], trained[key], rtol=0, atol=1e-9)
    with pytest.raises(FileError, match="init_from"):
        train_lm("tiny", "parallel", tmp_path / "third", [*common, f"init_from={tmp_path / 'nothing'}"], progress=False)
    with pytest.raises(AudiolmError, match="level_weights"):
        train_lm("tiny", "parallel", tmp_path / "fourth", [*common, "parallel.level_weights=[1,1]"], progress=False)
