"""Config presets and overrides, and checkpoint files: every preset builds, unknown keys and corrupt files fail clearly."""

from pathlib import Path

import pytest
import torch
from torch import nn

from audiolm.codec.model import Codec
from audiolm.errors import AudiolmError, FileError
from audiolm.formats.config import load_config, to_dict
from audiolm.formats.tensors import load_module, save_module
from audiolm.train.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from audiolm.train.codec import CodecRunConfig, resolve_preset

PRESETS = sorted((Path(__file__).resolve().parents[2] / "configs" / "codec").glob("*.yaml"))


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.stem)
def test_every_codec_preset_builds_its_models(preset):
    config = load_config(CodecRunConfig, preset)
    codec = Codec(config.model)
    assert codec.config.frame_rate == 50
    assert config.train.batch_size % config.train.grad_accum == 0
    assert to_dict(config)["model"]["num_codebooks"] == config.model.num_codebooks


def test_presets_resolve_by_name_and_overrides_apply():
    config = load_config(CodecRunConfig, resolve_preset("tiny"), ["train.steps=7", "codec_optimizer.lr=1e-3", "model.strides=[4, 8]"])
    assert config.train.steps == 7 and config.codec_optimizer.lr == 1e-3 and config.model.strides == (4, 8)
    assert config.model.hop_length == 32


@pytest.mark.parametrize("override, words", [
    ("train.stepz=3", "unknown keys"),
    ("model.decoder=wavenet", "decoder must be"),
    ("train.steps=many", "expected int"),
    ("nonsense", "key=value"),
])
def test_bad_overrides_fail_with_one_line(override, words):
    with pytest.raises(AudiolmError, match=words):
        load_config(CodecRunConfig, resolve_preset("tiny"), [override])


def test_bad_yaml_files(tmp_path):
    (tmp_path / "bad.yaml").write_text("train: [unclosed\n")
    with pytest.raises(FileError, match="not valid YAML"):
        load_config(CodecRunConfig, tmp_path / "bad.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(FileError, match="mapping"):
        load_config(CodecRunConfig, tmp_path / "list.yaml")
    with pytest.raises(FileError, match="no such"):
        load_config(CodecRunConfig, tmp_path / "none.yaml")


def test_checkpoint_round_trip_restores_modules_optimizer_and_rng(tmp_path):
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model(torch.randn(5, 4)).sum().backward()
    optimizer.step()
    save_checkpoint(tmp_path, 1, {"model": model.state_dict()}, {"model": optimizer.state_dict()}, {"kind": "test"})
    expected = torch.randn(3)
    clone = nn.Linear(4, 3)
    clone_optimizer = torch.optim.AdamW(clone.parameters(), lr=1e-2)
    state = load_checkpoint(latest_checkpoint(tmp_path), {"model": clone}, {"model": clone_optimizer})
    assert state["step"] == 1
    assert torch.equal(torch.randn(3), expected)  # the RNG is back where it was when saved
    for a, b in zip(model.parameters(), clone.parameters()):
        assert torch.equal(a, b)
    assert torch.equal(optimizer.state_dict()["state"][0]["exp_avg"], clone_optimizer.state_dict()["state"][0]["exp_avg"])


def test_corrupt_and_mismatched_checkpoints_raise_file_errors(tmp_path):
    model = nn.Linear(4, 3)
    path = save_module(model, tmp_path / "m.safetensors")
    with pytest.raises(FileError, match="shape"):
        load_module(nn.Linear(4, 2), path)
    with pytest.raises(FileError, match="missing"):
        load_module(nn.Sequential(nn.Linear(4, 3)), path)
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(FileError, match="corrupt"):
        load_module(model, path)
    assert latest_checkpoint(tmp_path / "nothing") is None


def test_old_checkpoints_are_pruned(tmp_path):
    model = nn.Linear(2, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for step in (1, 2, 3, 4):
        save_checkpoint(tmp_path, step, {"model": model.state_dict()}, {"model": optimizer.state_dict()}, {}, keep=2)
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("step_*")) == ["step_00000003", "step_00000004"]
    assert latest_checkpoint(tmp_path).name == "step_00000004"
    assert not list((tmp_path / "checkpoints").glob(".step_*"))
