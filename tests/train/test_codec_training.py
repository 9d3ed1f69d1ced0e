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

from audiolm.errors import AudiolmError
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



def _tone_and_noise(folder: Path) -> Path:
    """Six 1 s clips alternating 0.25 s of a tone and of noise (the last clip in the valid split)."""
    import numpy as np

    from audiolm.audio.io import save_audio
    from audiolm.data.manifest import Entry, write_manifest

    rng, t, entries = np.random.default_rng(0), np.arange(16000) / 16000, []
    for i in range(6):
        tone, noise = 0.3 * np.sin(2 * np.pi * 220 * (1 + i / 8) * t), 0.1 * rng.standard_normal(16000)
        wav = np.where((np.arange(16000) // 4000) % 2 == i % 2, tone, noise).astype(np.float32)
        entries.append(Entry(id=f"c{i}", path=str(save_audio(folder / f"c{i}.wav", wav, 16000)), duration=1.0, sample_rate=16000,
                             speaker=f"s{i}", split="valid" if i == 5 else "train"))
    write_manifest(folder / "manifest.jsonl", entries)
    return folder / "manifest.jsonl"


def test_semantic_distillation_teaches_the_first_level_the_tokenizers_ids(tmp_path):
    """distill_tokenizer: the first level learns to predict a tokenizer's ids (tone or noise: the loss halves, the
    accuracy passes 85 %); the head lives in the checkpoints and never in the exported codec."""
    from audiolm.audio.io import load_audio
    from audiolm.codec.model import Codec
    from audiolm.data.manifest import read_manifest
    from audiolm.semantic.encoder import MFCCEncoder
    from audiolm.semantic.tokenizer import fit_tokenizer

    manifest = _tone_and_noise(tmp_path)
    clips = [load_audio(manifest.parent / e.path, 16000)[None] for e in read_manifest(manifest)]
    fit_tokenizer(MFCCEncoder(), 0, clips, k=2, iterations=10).save(tmp_path / "tok")
    overrides = [f"data.manifest={manifest}", "train.steps=30", "train.batch_size=8", "train.log_every=1", "train.valid_every=30",
                 "train.save_every=30", "train.warmup_steps=1", "codec_optimizer.lr=3e-3", "disc_start_step=1000", "train.num_threads=1",
                 f"distill_tokenizer={tmp_path / 'tok'}", "losses.distill=5.0"]
    result = train_codec("tiny", tmp_path / "run", overrides, progress=False)
    accuracy = [r["distill/accuracy"] for r in result.logs if "distill/accuracy" in r]
    losses = [r["codec/distill"] for r in result.logs if "codec/distill" in r]
    assert len(accuracy) == 30 and sum(losses[-5:]) < 0.7 * sum(losses[:5])
    assert sum(accuracy[-5:]) / 5 > 0.85
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert any(0 <= r.get("valid/distill/accuracy", -1) <= 1 for r in records)
    assert (tmp_path / "run" / "checkpoints" / "step_00000030" / "distill.safetensors").is_file()
    exported = load_file(str(tmp_path / "run" / "model" / "model.safetensors"))
    assert not any("distill" in k for k in exported) and Codec.load(tmp_path / "run" / "model").num_codebooks == 4
    with pytest.raises(AudiolmError, match="semantic distillation needs both"):
        train_codec("tiny", tmp_path / "bad", [f"data.manifest={manifest}", "losses.distill=1.0"], progress=False)


def test_distillation_reaches_the_encoder_and_repeats_slower_ids(tmp_path):
    """The loss's gradient reaches the encoder through the first level (straight-through); a 25 Hz tokenizer's ids
    are repeated to the codec's 50 Hz frames."""
    from audiolm.codec.distill import SemanticDistillation, distill_head
    from audiolm.codec.model import Codec, CodecConfig
    from audiolm.semantic.encoder import MFCCEncoder
    from audiolm.semantic.tokenizer import fit_tokenizer
    from tests.helpers_lm import TINY_CODEC

    wav = torch.randn(2, 1, 8000, generator=torch.Generator().manual_seed(0)) * 0.1
    tokenizer = fit_tokenizer(MFCCEncoder(stack=2), 0, [wav[:1], wav[1:]], k=4, iterations=3)
    torch.manual_seed(0)
    codec = Codec(CodecConfig(**TINY_CODEC)).train()
    distill = SemanticDistillation(tokenizer, frame_rate=codec.frame_rate, sample_rate=16000)
    targets = distill.targets(wav, 25)
    assert distill.ratio == 2 and targets.shape == (2, 25) and torch.equal(targets[:, :24:2], targets[:, 1::2])
    head = distill_head(codec.config.latent_dim, distill.num_ids)
    loss, accuracy = distill.loss(head, codec(wav).first, wav)
    loss.backward()
    assert 0 <= accuracy <= 1 and all(p.grad is not None and p.grad.abs().sum() > 0 for p in head.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in codec.encoder.parameters())
    assert all(p.grad is None for p in codec.decoder.parameters())  # the first level alone: the decoder is not in it
