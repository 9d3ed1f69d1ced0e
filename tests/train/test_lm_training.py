"""The stage LMs through the shared loop on real (tiny) token shards: each stage learns, exports, and the
exported stages run in the pipeline."""

import json

import pytest
import soundfile as sf
import torch

from audiolm.data.shards import TokenShards, tokenize_corpus
from audiolm.lm.model import load_stage
from audiolm.train.lm import TokenStreams, train_lm
from tests.helpers_lm import tiny_token_corpus

TINY_CODEC = dict(encoder_dim=16, encoder_layers=1, encoder_channels=4, latent_dim=16, num_codebooks=4, codebook_size=32,
                  decoder_dim=32, decoder_layers=1)


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return tiny_token_corpus(tmp_path_factory.mktemp("corpus"))["shards"]


def test_streams_join_a_speakers_utterances_with_aligned_frames(shards):
    tokens = TokenShards(shards)
    streams = TokenStreams(tokens, tokens.split("train"), ratio=2)
    assert len(streams) == len(tokens.by_speaker(tokens.split("train")))
    assert all(c.shape[1] == 2 * s.shape[0] for s, c in map(streams.stream, range(len(streams))))
    semantic, codes = streams.windows(5, 20, torch.Generator().manual_seed(0))
    assert semantic.shape == (5, 20) and codes.shape == (5, 4, 40)


def test_utterances_without_a_speaker_are_streams_of_their_own(shards, tmp_path):
    from dataclasses import replace

    from audiolm.data.manifest import read_manifest, write_manifest

    folder = shards.parent
    source = folder / "audio" / "manifest.jsonl"
    entries = [replace(e, speaker=None, path=str(e.audio_path(folder / "audio"))) for e in read_manifest(source)]
    write_manifest(tmp_path / "manifest.jsonl", entries)
    tokenize_corpus(tmp_path / "manifest.jsonl", folder / "semantic", folder / "codec", tmp_path / "shards", progress=False)
    tokens = TokenShards(tmp_path / "shards")
    train = tokens.split("train")
    streams = TokenStreams(tokens, train, ratio=2)
    assert len(streams) == len(train) > 1  # one stream per clip: no window joins two pieces
    lengths = [min(tokens.semantic(i).shape[0], tokens.codes(i).shape[1] // 2) for i in sorted(train)]
    assert streams.lengths.tolist() == lengths


@pytest.mark.parametrize("stage", ["semantic", "coarse", "fine"])
def test_each_stage_learns_its_tokens(shards, tmp_path, stage):
    overrides = [f"data.shards={shards}", "train.steps=40", "train.batch_size=8", "train.log_every=1", "train.valid_every=40",
                 "train.save_every=40", "train.warmup_steps=2", "optimizer.lr=3e-3", "train.num_threads=1"]
    result = train_lm("tiny", stage, tmp_path / "run", overrides, progress=False)
    losses = [r[f"lm/{stage}/ce"] for r in result.logs if f"lm/{stage}/ce" in r]
    assert len(losses) >= 40 and sum(losses[-5:]) / 5 < 0.8 * sum(losses[:5]) / 5
    model, spec, fingerprints = load_stage(tmp_path / "run" / "model")
    assert spec.stage == stage and spec.codebook_size == 32 and spec.semantic_vocab == 8
    reads = {"semantic": {"semantic"}, "coarse": {"semantic", "codec"}, "fine": {"codec"}}[stage]
    assert set(fingerprints) == reads  # only the vocabularies the stage reads
    if stage != "semantic":
        assert f"lm/{stage}/accuracy_2" in result.logs[-1] or any(f"lm/{stage}/accuracy_2" in r for r in result.logs)


def test_two_torchrun_processes_match_one_process(shards, tmp_path):
    """Same weights up to rounding, which Adam can amplify to ~lr on weights with rounding-level gradients: compared
    per module against the last step's movement, plus the gradient norms (tests/helpers_ddp.py says why that still
    catches ignored data, missing all-reduce and summed gradients)."""
    import os
    import socket
    import subprocess
    import sys
    from pathlib import Path

    from tests.helpers_ddp import assert_same_training

    common = ["train.steps=2", "train.batch_size=4", "train.save_every=1", "train.num_threads=1", "train.valid_every=1000",
              "model.dropout=0.0"]
    train_lm("tiny", "coarse", tmp_path / "one", [f"data.shards={shards}", *common], progress=False)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1", "--master_port",
               str(port), "-m", "audiolm.cli.main", "lm", "train", "--stage", "coarse", "--config", "tiny", "--shards", str(shards),
               "-o", str(tmp_path / "two"), "--quiet", *common]
    done = subprocess.run(command, cwd=Path(__file__).resolve().parents[2], env={**os.environ, "OMP_NUM_THREADS": "1"},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert_same_training(tmp_path / "one", tmp_path / "two", 2, ["lm.safetensors"])


def test_bundle_from_runs_then_continue(shards, tmp_path):
    from audiolm.cli.main import main
    from audiolm.generation.pipeline import AudioLM

    runs = {}
    for stage, extra in (("semantic", []), ("coarse", []), ("fine", []), ("acoustic", ["stage.use_semantic=false"])):
        overrides = [f"data.shards={shards}", "train.steps=3", "train.save_every=3", "train.num_threads=1", *extra]
        train_lm("tiny", "coarse" if stage == "acoustic" else stage, tmp_path / stage, overrides, progress=False,
                 stop_after=2 if stage == "fine" else None)  # the fine run is unfinished: read from its checkpoint
        runs[stage] = tmp_path / stage
    corpus = shards.parent
    assert main(["bundle", "-o", str(tmp_path / "bundle"), "--tokenizer", str(corpus / "semantic"), "--codec", str(corpus / "codec"),
                 "--semantic-lm", str(runs["semantic"]), "--coarse-lm", str(runs["coarse"]), "--fine-lm", str(runs["fine"]),
                 "--acoustic-lm", str(runs["acoustic"])]) == 0
    audiolm = AudioLM.load(tmp_path / "bundle")
    out = audiolm.continue_audio(torch.randn(1, 1, 16000) * 0.1, 1.0, seed=0)
    assert out.codes.shape[1] == 4 and abs(out.wav.shape[-1] / 16000 - out.prompt_seconds - 1.0) <= 0.04
    assert audiolm.acoustic is not None
    # again, coarse only and with prompts: the folder's parts are replaced, the prompts cut from held-out clips
    assert main(["bundle", "-o", str(tmp_path / "bundle"), "--tokenizer", str(corpus / "semantic"), "--codec", str(corpus / "codec"),
                 "--semantic-lm", str(runs["semantic"]), "--coarse-lm", str(runs["coarse"]), "--prompts-from",
                 str(corpus / "audio" / "manifest.jsonl"), "--prompt-splits", "train", "--prompt-count", "2",
                 "--prompt-seconds", "1.5"]) == 0
    prompts = json.loads((tmp_path / "bundle" / "prompts" / "prompts.json").read_text())
    assert len(prompts) == 2 and len({p["speaker"] for p in prompts}) == 2
    assert all(sf.info(str(tmp_path / "bundle" / "prompts" / p["file"])).frames == 24000 for p in prompts)
    assert not (tmp_path / "bundle" / "fine-lm").exists() and AudioLM.load(tmp_path / "bundle").fine is None  # no stale LM
    code = main(["bundle", "-o", str(tmp_path / "bad"), "--tokenizer", str(corpus / "semantic"), "--codec", str(corpus / "codec"),
                 "--semantic-lm", str(runs["semantic"]), "--coarse-lm", str(tmp_path / "nowhere"), "--fine-lm", str(runs["fine"])])
    assert code == 1 and not (tmp_path / "bad").exists()


def test_aligned_coarse_training_measures_its_use_of_the_semantic_ids(shards, tmp_path):
    overrides = [f"data.shards={shards}", "train.steps=4", "train.valid_every=4", "train.save_every=4", "train.num_threads=1",
                 "stage.aligned_positions=true"]
    result = train_lm("tiny", "coarse", tmp_path / "coarse", overrides, progress=False)
    valid = [r for r in result.logs if "valid/lm/coarse/shuffled_ce_1" in r]
    assert valid and valid[-1]["valid/lm/coarse/shuffled_ce_1"] > 0 and "valid/lm/coarse/ce_1" in valid[-1]
    assert load_stage(tmp_path / "coarse" / "model")[1].aligned_positions
    train_lm("tiny", "semantic", tmp_path / "semantic", [*overrides[:-1], "stage.aligned_positions=true"], progress=False)
    assert not load_stage(tmp_path / "semantic" / "model")[1].aligned_positions  # only the coarse stage aligns its positions


def test_dedup_windows_keep_units_their_frames_and_pad_short_rows():
    from audiolm.train.lm import dedup_windows

    raw = torch.tensor([[3, 3, 5, 5, 5, 1, 2, 2], [7, 7, 7, 7, 7, 7, 4, 4]])
    units, real, frames = dedup_windows(raw, 3)
    assert units.tolist() == [[3, 5, 1], [7, 4, 4]]  # the second row has two units, padded with its last
    assert real.tolist() == [3, 2] and frames.tolist() == [6, 8]
    assert all((u[:n][1:] != u[:n][:-1]).all() for u, n in zip(units, real))  # no repeats left


def test_a_semantic_lm_learns_ids_without_repeats_and_reports_nats_a_second(shards, tmp_path):
    overrides = [f"data.shards={shards}", "stage.dedup=true", "stage.window_seconds=0.5", "train.steps=40",
                 "train.batch_size=8", "train.log_every=1", "train.valid_every=20", "train.save_every=40",
                 "train.warmup_steps=2", "optimizer.lr=3e-3", "train.num_threads=1"]
    result = train_lm("tiny", "semantic", tmp_path / "run", overrides, progress=False)
    losses = [r["lm/semantic/ce"] for r in result.logs if "lm/semantic/ce" in r]
    assert sum(losses[-5:]) / 5 < 0.8 * sum(losses[:5]) / 5
    valid = [r for r in result.logs if "valid/lm/semantic/nats_per_second" in r]
    assert len(valid) == 2 and all(r["valid/lm/semantic/nats_per_second"] > 0 for r in valid)
    model, spec, _ = load_stage(tmp_path / "run" / "model")
    assert spec.dedup and spec.stage == "semantic"


def test_generation_refuses_a_semantic_lm_trained_without_repeats(tmp_path):
    from audiolm.errors import AudiolmError
    from audiolm.generation.pipeline import AudioLM
    from tests.helpers_lm import tiny_bundle

    folder = tiny_bundle(tmp_path / "bundle")
    config = json.loads((folder / "semantic-lm" / "config.json").read_text())
    config["stage"]["dedup"] = True
    (folder / "semantic-lm" / "config.json").write_text(json.dumps(config))
    with pytest.raises(AudiolmError, match="deduplicated"):
        AudioLM.load(folder)
