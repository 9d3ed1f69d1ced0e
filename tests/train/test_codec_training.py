"""The shared training loop on the tiny codec: it learns, resumes exactly, and DDP equals one process."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from audiolm.train.codec import train_codec
from tests.helpers_codec import tone_manifest
from tests.helpers_ddp import assert_same_training

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    return tone_manifest(tmp_path_factory.mktemp("tones"))


def weights(run_dir: Path, step: int) -> dict[str, torch.Tensor]:
    folder = run_dir / "checkpoints" / f"step_{step:08d}"
    discriminators = load_file(str(folder / "discriminators.safetensors"))
    return {**load_file(str(folder / "codec.safetensors")), **{f"d/{k}": v for k, v in discriminators.items()}}


def test_tiny_codec_lowers_its_reconstruction_loss(manifest, tmp_path):
    overrides = [f"data.manifest={manifest}", "train.steps=30", "train.batch_size=8", "train.log_every=1", "train.valid_every=30",
                 "train.save_every=30", "train.warmup_steps=1", "codec_optimizer.lr=3e-3", "disc_start_step=1000", "train.num_threads=1"]
    result = train_codec("tiny", tmp_path / "run", overrides, progress=False)
    mels = [r["codec/mel"] for r in result.logs if "codec/mel" in r]
    assert len(mels) == 30
    assert sum(mels[-5:]) / 5 < 0.7 * sum(mels[:5]) / 5
    assert (tmp_path / "run" / "model" / "model.safetensors").is_file()
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    valid = [r for r in records if "valid/vq/perplexity_1" in r]
    assert valid and valid[-1]["valid/vq/usage_1"] > 0


def test_resume_after_a_kill_gives_the_same_weights(manifest, tmp_path):
    common = [f"data.manifest={manifest}", "train.steps=6", "train.save_every=2", "disc_start_step=2", "train.num_threads=1"]
    train_codec("tiny", tmp_path / "straight", common, progress=False)
    train_codec("tiny", tmp_path / "killed", common, progress=False, stop_after=3)  # checkpoint at step 3, then "killed"
    assert (tmp_path / "killed" / "checkpoints" / "latest.txt").read_text().strip() == "step_00000003"
    train_codec("tiny", tmp_path / "killed", common, progress=False)  # resumes from step 3
    a, b = weights(tmp_path / "straight", 6), weights(tmp_path / "killed", 6)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_torchrun_processes_match_one_process(manifest, tmp_path):
    """Same weights up to rounding, which Adam can amplify to ~lr on weights with rounding-level gradients: compared
    per module against the last step's movement, plus the gradient norms (tests/helpers_ddp.py says why that still
    catches ignored data, missing all-reduce and summed gradients)."""
    common = [f"data.manifest={manifest}", "train.steps=2", "train.batch_size=4", "train.save_every=1", "disc_start_step=1",
              "train.num_threads=1", "train.valid_every=1000"]
    train_codec("tiny", tmp_path / "one", common, progress=False)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
               "--master_port", str(_free_port()), "-m", "audiolm.cli.main", "codec", "train", "--config", "tiny",
               "-o", str(tmp_path / "two"), "--quiet", *common]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert_same_training(tmp_path / "one", tmp_path / "two", 2, ["codec.safetensors", "discriminators.safetensors"])


def test_a_time_budget_checkpoints_and_the_run_can_be_evaluated(manifest, tmp_path):
    from audiolm.train.codec import load_codec_from_run

    common = [f"data.manifest={manifest}", "train.steps=50", "train.stop_after_minutes=0.0001", "train.num_threads=1"]
    result = train_codec("tiny", tmp_path / "run", common, progress=False)
    assert result.step == 1
    assert (tmp_path / "run" / "checkpoints" / "latest.txt").read_text().strip() == "step_00000001"
    assert not (tmp_path / "run" / "model").exists()  # unfinished: no export yet
    codec = load_codec_from_run(tmp_path / "run")
    assert codec.encode(torch.zeros(1, 1, 640)).shape == (1, 4, 2)


def test_init_from_an_exported_codec(manifest, tmp_path):
    from audiolm.codec.model import Codec

    common = [f"data.manifest={manifest}", "train.steps=2", "train.num_threads=1"]
    train_codec("tiny", tmp_path / "first", common, progress=False)
    exported = Codec.load(tmp_path / "first" / "model")
    train_codec("tiny", tmp_path / "second", [*common, f"init_from={tmp_path / 'first' / 'model'}", "train.steps=1",
                                               "codec_optimizer.lr=1e-12"], progress=False)
    state = load_file(str(tmp_path / "second" / "checkpoints" / "step_00000001" / "codec.safetensors"))
    for name, tensor in exported.encoder.state_dict().items():
        torch.testing.assert_close(state[f"encoder.{name}"], tensor, atol=1e-6, rtol=0)


def test_decoder_only_training_keeps_the_codes(manifest, tmp_path):
    """decoder_only: the encoder and codebooks stay bit-identical (codes keep their meaning), the decoder learns."""
    from audiolm.codec.model import Codec

    common = [f"data.manifest={manifest}", "train.steps=2", "train.num_threads=1"]
    train_codec("tiny", tmp_path / "first", common, progress=False)
    first = Codec.load(tmp_path / "first" / "model")
    train_codec("tiny", tmp_path / "second", [*common, f"init_from={tmp_path / 'first' / 'model'}", "decoder_only=true",
                                               "losses.stft=1.0", "train.steps=4", "codec_optimizer.lr=1e-2",
                                               "train.warmup_steps=1"], progress=False)
    second = Codec.load(tmp_path / "second" / "model")
    for part in ("encoder", "quantizer"):
        a, b = getattr(first, part).state_dict(), getattr(second, part).state_dict()
        for name in a:
            assert torch.equal(a[name], b[name]), f"{part}.{name}"
    assert second.codebook_fingerprint() == first.codebook_fingerprint()
    wav = torch.randn(1, 1, 3200, generator=torch.Generator().manual_seed(0)) * 0.1
    assert torch.equal(first.encode(wav), second.encode(wav))
    assert any(not torch.equal(a, b) for a, b in zip(first.decoder.state_dict().values(), second.decoder.state_dict().values()))
    logs = [json.loads(line) for line in (tmp_path / "second" / "log.jsonl").read_text().splitlines()]
    assert any("codec/stft" in r for r in logs)


def test_augmentation_changes_crops_reproducibly_and_keeps_the_other_draws(manifest):
    from audiolm.errors import AudiolmError
    from audiolm.formats.config import load_config
    from audiolm.train.codec import CodecRunConfig, CodecTask, resolve_preset

    def task(augment_p: float) -> CodecTask:
        return CodecTask(load_config(CodecRunConfig, resolve_preset("tiny"), [f"data.manifest={manifest}", f"augment_p={augment_p}"]))

    plain, augmented = task(0.0), task(1.0)
    a, b = augmented.batch(3, 0, 4), augmented.batch(3, 0, 4)
    assert torch.equal(a["wav"], b["wav"])  # the step's generator decides: resuming sees the same batch
    clean = plain.batch(3, 0, 4)
    assert a["wav"].shape == clean["wav"].shape and not torch.equal(a["wav"], clean["wav"])
    assert torch.equal(a["num_quantizers"], clean["num_quantizers"])
    assert a["wav"].abs().max() <= 1.0
    with pytest.raises(AudiolmError, match="augment_p must be in"):
        load_config(CodecRunConfig, resolve_preset("tiny"), ["augment_p=1.5"])
