"""Precomputed semantic targets (`audiolm semantic targets`, `targets_dir`): the files round-trip the tokenizer's ids,
a re-run skips finished shards, corrupt files and unreadable audio are one line naming the file, training crops
start at whole target frames with their ids, and a tiny 50 Hz student learns from them."""

import os

import numpy as np
import pytest
import torch

from audiolm.audio.io import load_audio, save_audio
from audiolm.cli.main import main
from audiolm.data.manifest import Entry, write_manifest
from audiolm.errors import AudiolmError, FileError
from audiolm.formats.config import load_config
from audiolm.semantic.encoder import MFCCEncoder
from audiolm.semantic.ssl import SSLEncoder
from audiolm.semantic.targets import PrecomputedTargets, write_targets
from audiolm.semantic.tokenizer import SemanticTokenizer, fit_tokenizer
from audiolm.train.semantic import SemanticRunConfig, SemanticTask, resolve_preset, train_semantic

# a tiny encoder at hop 320 (student50.yaml's front end), for 50 Hz targets
STUDENT = ["model.conv_strides=[5,4,4,2,2]", "model.conv_kernels=[10,8,8,4,4]", "model.mask_length=10", "model.mask_prob=0.065"]


def _corpus(folder, count: int = 7) -> tuple:
    """Utterances of 0.6-2.1 s (lengths not whole frames) of noise through a per-50 ms random envelope and colour, two
    speakers, the last one in the valid split; and a K=8 MFCC tokenizer at 50 Hz fitted on them."""
    rng = np.random.default_rng(0)
    entries, clips = [], []
    for i in range(count):
        n = int(16000 * (0.6 + 0.25 * i)) + 37 * i
        envelope = np.repeat(rng.uniform(0.05, 1.0, n // 800 + 1), 800)[:n]
        noise = rng.standard_normal(n)
        if i % 2:
            noise = np.convolve(noise, np.ones(8) / 4, mode="same")  # a darker colour for one speaker
        wav = (0.2 * envelope * noise).astype(np.float32)
        path = save_audio(folder / f"u{i}.wav", wav, 16000)
        entries.append(Entry(id=f"spk{i % 2}/u{i}", path=path.name, duration=n / 16000, sample_rate=16000, speaker=f"s{i % 2}",
                             split="valid" if i == count - 1 else "train"))
        clips.append(load_audio(path, 16000)[None])
    manifest = folder / "manifest.jsonl"
    write_manifest(manifest, entries)
    tokenizer = fit_tokenizer(MFCCEncoder(), 0, clips, k=8, iterations=20).save(folder / "mfcc-km8")
    return manifest, tokenizer, entries


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return _corpus(tmp_path_factory.mktemp("utterances"))


def _as_training_reads(path) -> torch.Tensor:
    wav = load_audio(path, 16000)
    return torch.from_numpy((wav.numpy().clip(-1, 1) * 32767).astype(np.int16).astype(np.float32) / 32767)[None]  # [1, 1, L]


def test_targets_round_trip_the_tokenizer_ids_of_each_utterance(corpus, tmp_path, capsys):
    manifest, tokenizer_dir, entries = corpus
    argv = ["semantic", "targets", str(manifest), "--tokenizer", str(tokenizer_dir), "-o", str(tmp_path / "t"), "--shard-size", "2",
            "--quiet"]
    assert main(argv) == 0
    assert "7 utterances" in capsys.readouterr().out
    names = sorted(p.name for p in (tmp_path / "t").iterdir())
    assert names == ["targets.json", "train-00000.safetensors", "train-00001.safetensors", "train-00002.safetensors",
                     "valid-00000.safetensors"]
    targets = PrecomputedTargets.load(tmp_path / "t")
    tokenizer = SemanticTokenizer.load(tokenizer_dir)
    assert (targets.codebook_size, targets.frame_rate, targets.hop_length) == (8, 50.0, 320)
    assert set(targets.ids) == {e.id for e in entries}
    for entry in entries:
        ids = targets.ids[entry.id]
        assert ids.dtype == np.uint16
        expected = tokenizer(_as_training_reads(manifest.parent / entry.path))[0]
        assert torch.equal(torch.from_numpy(ids.astype(np.int64)), expected)


def test_a_rerun_skips_finished_shards_and_max_hours_takes_whole_shards(corpus, tmp_path):
    manifest, tokenizer_dir, _ = corpus
    out = tmp_path / "t"
    first = write_targets(manifest, tokenizer_dir, out, ("train",), max_hours=1.4 / 3600, shard_size=2, progress=False)
    assert (first["shards"], first["written"], first["utterances"]) == (1, 1, 2)  # 0.6 + 0.85 s: the first shard holds 1.4 s
    stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("*.safetensors")}
    second = write_targets(manifest, tokenizer_dir, out, ("train",), shard_size=2, progress=False)
    assert (second["shards"], second["written"], second["utterances"]) == (3, 2, 6)
    assert all((out / name).stat().st_mtime_ns == stamp for name, stamp in stamps.items())
    os.remove(out / "train-00001.safetensors")
    stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("*.safetensors")}
    (out / ".train-00001.abc.tmp.safetensors").write_bytes(b"half")  # what a killed run leaves
    assert len(PrecomputedTargets.load(out).ids) == 4  # read without it
    third = write_targets(manifest, tokenizer_dir, out, ("train",), shard_size=2, progress=False)
    assert third["written"] == 1 and (out / "train-00001.safetensors").is_file()
    assert all((out / name).stat().st_mtime_ns == stamp for name, stamp in stamps.items())
    assert not list(out.glob(".*tmp*"))
    with pytest.raises(FileError, match="targets.json: holds targets of another tokenizer, window cut or shard size"):
        write_targets(manifest, tokenizer_dir, out, ("train",), shard_size=3, progress=False)


def test_corrupt_targets_and_unreadable_audio_are_one_line_naming_the_file(corpus, tmp_path, capsys):
    manifest, tokenizer_dir, entries = corpus
    out = tmp_path / "t"
    write_targets(manifest, tokenizer_dir, out, ("train",), shard_size=2, progress=False)
    shard = out / "train-00001.safetensors"
    shard.write_bytes(shard.read_bytes()[:40])
    with pytest.raises(FileError, match="train-00001.safetensors: corrupt or unreadable"):
        PrecomputedTargets.load(out)
    argv = ["semantic", "train", "--config", "tiny", "--manifest", str(manifest), "--targets-dir", str(out), "-o", str(tmp_path / "run"),
            *STUDENT, "model.num_targets=8", "--quiet"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "train-00001.safetensors: corrupt or unreadable" in err
    with pytest.raises(FileError, match="train-00001.safetensors: corrupt or unreadable"):  # a resumed run stops on it too
        write_targets(manifest, tokenizer_dir, out, ("train",), shard_size=2, progress=False)
    # unreadable audio: one line naming the file, no shard written for it
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "u0.wav").write_bytes(b"RIFF not audio")
    write_manifest(broken / "manifest.jsonl", [Entry(id="u0", path="u0.wav", duration=1.0, sample_rate=16000, split="train")])
    argv = ["semantic", "targets", str(broken / "manifest.jsonl"), "--tokenizer", str(tokenizer_dir), "-o", str(broken / "t"), "--quiet"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "u0.wav" in err and not list((broken / "t").glob("*.safetensors"))


def _task(manifest, targets_dir, *overrides: str) -> SemanticTask:
    config = load_config(SemanticRunConfig, resolve_preset("tiny"),
                         [f"data.manifest={manifest}", f"targets_dir={targets_dir}", "model.num_targets=8", *STUDENT, *overrides])
    return SemanticTask(config, PrecomputedTargets.load(targets_dir))


def test_crops_start_at_whole_target_frames_and_carry_those_frames_ids(corpus, tmp_path):
    manifest, tokenizer_dir, entries = corpus
    write_targets(manifest, tokenizer_dir, tmp_path / "t", shard_size=4, progress=False)
    clips = PrecomputedTargets.load(tmp_path / "t").clips(manifest, "train")
    tokenizer = SemanticTokenizer.load(tokenizer_dir)
    wav, ids, valid = clips.crops(24, 40, torch.Generator().manual_seed(0))
    assert wav.shape == (24, 1, 40 * 320) and ids.shape == valid.shape == (24, 40)
    starts = set()
    for row in range(24):
        # the crop is utterance audio from a whole frame f, and its ids are the utterance's ids f..
        head = (wav[row, 0, :4000].numpy() * 32767).round().astype(np.int16)  # the crop's first 250 ms, as stored
        matches = [(i, f) for i, clip in enumerate(clips.clips) for f in range(len(clips.ids[i]))
                   if np.array_equal(clip[f * 320:f * 320 + 4000], head[: len(clip[f * 320:f * 320 + 4000])])]
        assert len(matches) == 1
        i, f = matches[0]
        starts.add(f)
        taken = clips.ids[i][f:f + 40]
        assert valid[row].sum() == len(taken) and torch.equal(ids[row, : len(taken)], torch.from_numpy(taken.astype(np.int64)))
        # and they are the ids the tokenizer gives the crop itself, away from the crop's edges (MFCC deltas see 4 frames)
        own = tokenizer(wav[row:row + 1])[0]
        inner = slice(5, len(taken) - 5)
        assert (own[inner] == ids[row, inner]).float().mean() > 0.95
    assert len(starts) > 5  # crops start all over their utterances


def test_batches_and_validation_read_precomputed_targets_and_augment_keeps_them(corpus, tmp_path):
    manifest, tokenizer_dir, _ = corpus
    write_targets(manifest, tokenizer_dir, tmp_path / "t", shard_size=4, progress=False)
    clean, augmented = _task(manifest, tmp_path / "t").batch(3, 0, 4), _task(manifest, tmp_path / "t", "augment_p=1.0").batch(3, 0, 4)
    assert torch.equal(augmented["targets"], clean["targets"]) and torch.equal(augmented["mask"], clean["mask"])
    assert not torch.equal(augmented["wav"], clean["wav"])
    task = _task(manifest, tmp_path / "t", "data.crop_seconds=1.5")  # 75 frames, longer than some utterances
    batch = task.batch(0, 0, 4)
    assert batch["wav"].shape == (4, 1, 75 * 320) and batch["targets"].shape == batch["mask"].shape == (4, 75)
    assert batch["mask"].any(dim=1).all()
    valid = torch.arange(75)[None].expand(2, 75) < 3  # utterances of 3 frames: spans fall past their end, one is kept
    example = task._example(torch.zeros(2, 1, 75 * 320), torch.Generator().manual_seed(0), ids=torch.zeros(2, 75, dtype=torch.long),
                            valid=valid)
    assert example["mask"].any(dim=1).all() and not (example["mask"] & ~valid).any()
    assert len(task.valid_clips) == 1  # the valid split's utterance
    metrics = task.validate({"encoder": task.encoder.eval()}, 0)
    assert np.isfinite(metrics["ssl/ce"]) and 0 <= metrics["ssl/accuracy"] <= 1
    with pytest.raises(AudiolmError, match="8 ids at 50 Hz.*25 Hz"):  # a 25 Hz encoder cannot learn 50 Hz targets
        SemanticTask(load_config(SemanticRunConfig, resolve_preset("tiny"), [f"data.manifest={manifest}", "model.num_targets=8"]),
                     PrecomputedTargets.load(tmp_path / "t"))
    with pytest.raises(AudiolmError, match="not both"):
        train_semantic("tiny", tmp_path / "run", [f"data.manifest={manifest}", f"targets_dir={tmp_path / 't'}", f"targets={tokenizer_dir}"],
                       progress=False)


def test_a_tiny_50_hz_student_learns_precomputed_targets(corpus, tmp_path):
    manifest, tokenizer_dir, _ = corpus
    assert main(["semantic", "targets", str(manifest), "--tokenizer", str(tokenizer_dir), "-o", str(tmp_path / "t"), "--quiet"]) == 0
    overrides = [f"data.manifest={manifest}", f"targets_dir={tmp_path / 't'}", *STUDENT, "train.steps=40", "train.batch_size=8",
                 "train.log_every=1", "train.valid_every=40", "train.save_every=40", "train.warmup_steps=5", "optimizer.lr=3e-3",
                 "train.num_threads=1"]
    result = train_semantic("tiny", tmp_path / "run", overrides, progress=False)
    losses = [r["ssl/ce"] for r in result.logs if "ssl/ce" in r and "step" in r and "valid/ssl/ce" not in r]
    assert len(losses) >= 40
    assert sum(losses[-5:]) / 5 < 0.8 * sum(losses[:5]) / 5
    encoder = SSLEncoder.load(tmp_path / "run" / "model")
    assert encoder.frame_rate == 50 and encoder.config.num_targets == 8


def test_every_semantic_preset_builds_and_the_student_runs_at_whisper_rate():
    from pathlib import Path

    for preset in sorted((Path(__file__).resolve().parents[2] / "configs" / "semantic").glob("*.yaml")):
        config = load_config(SemanticRunConfig, preset)
        with torch.device("meta"):
            SSLEncoder(config.model)
    student = load_config(SemanticRunConfig, resolve_preset("student50")).model
    small = load_config(SemanticRunConfig, resolve_preset("small")).model
    assert (student.hop_length, student.frame_rate, student.mask_length) == (320, 50.0, 10)
    assert (student.dim, student.num_layers, student.conv_channels) == (small.dim, small.num_layers, small.conv_channels)
