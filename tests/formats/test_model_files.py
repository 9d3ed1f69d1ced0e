"""Every model folder a user hands us (`config.json` + weights: codec, stage LM, LM training run, SSL encoder, semantic
tokenizers) loads or raises `AudiolmError` naming the folder, whatever its files hold; see `strategies.py`.
Configs of huge sizes are refused before any tensor is allocated (`build_module`), so they cannot exhaust memory."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from audiolm.codec.model import Codec, CodecConfig
from audiolm.errors import FileError
from audiolm.formats.atomic import write_json
from audiolm.formats.tensors import build_module, load_tensors, save_module
from audiolm.generation.bundle import load_stage_from
from audiolm.lm.model import build_model, load_stage, save_stage
from audiolm.lm.stages import StageSpec
from audiolm.lm.transformer import TransformerConfig
from audiolm.semantic.encoder import MFCCEncoder
from audiolm.semantic.ssl import SSLConfig, SSLEncoder
from audiolm.semantic.tokenizer import SemanticTokenizer
from audiolm.train.checkpoint import LATEST
from audiolm.train.lm import LMRunConfig
from tests.formats.strategies import (
    damaged,
    fuzz,
    json_bytes,
    loads_or_refuses,
    safetensors_boundaries,
    structures,
    tensor_dicts,
    write_safetensors,
)
from tests.helpers_lm import TINY_CODEC

TINY_SSL = SSLConfig(conv_channels=(8, 16), conv_kernels=(10, 8), conv_strides=(5, 4), dim=16, num_layers=2, num_heads=2, ff_mult=2,
                     pos_conv_kernel=4, pos_conv_groups=2, num_targets=4)
SPEC = StageSpec(stage="coarse", semantic_vocab=8, codebook_size=32, num_coarse=2, num_fine=2, window_seconds=1.0)
TINY_LM = TransformerConfig(dim=32, num_layers=1, num_heads=2)
RUN_STEP = Path("checkpoints") / "step_00000001"

# kind: (loader, config file, weights file), paths relative to the model folder
KINDS = {
    "codec": (Codec.load, "config.json", "model.safetensors"),
    "stage": (load_stage, "config.json", "model.safetensors"),
    "run": (load_stage_from, str(RUN_STEP / "config.json"), str(RUN_STEP / "lm.safetensors")),
    "ssl": (SSLEncoder.load, "config.json", "model.safetensors"),
    "tokenizer-mfcc": (SemanticTokenizer.load, "config.json", "model.safetensors"),
    "tokenizer-ssl": (SemanticTokenizer.load, "config.json", "model.safetensors"),
}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A valid folder of each kind, and a token index for the run's vocabulary (`tokens/`)."""
    root = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    Codec(CodecConfig(**TINY_CODEC)).save(root / "codec")
    save_stage(root / "stage", build_model(SPEC, TINY_LM), SPEC, {"semantic": "s" * 16, "codec": "c" * 16})
    identity = {"tokenizer": {"fingerprint": "t" * 16}, "codec": {"codebook_fingerprint": "f" * 16}}
    write_json(root / "tokens" / "index.json", {"identity": identity})
    run = LMRunConfig(stage=SPEC, model=TINY_LM)
    run.data.shards = str(root / "tokens")
    write_json(root / "run" / RUN_STEP / "config.json", {"kind": "lm-run", **asdict(run)})
    save_module(build_model(SPEC, TINY_LM), root / "run" / RUN_STEP / "lm.safetensors")
    (root / "run" / "checkpoints" / LATEST).write_text(RUN_STEP.name + "\n")
    SSLEncoder(TINY_SSL).save(root / "ssl")
    SemanticTokenizer(MFCCEncoder(stack=2), 0, torch.zeros(78), torch.ones(78), torch.randn(8, 78)).save(root / "tokenizer-mfcc")
    SemanticTokenizer(SSLEncoder(TINY_SSL), 1, torch.zeros(16), torch.ones(16), torch.randn(8, 16)).save(root / "tokenizer-ssl")
    for kind, (load, _, _) in KINDS.items():
        load(root / kind)  # each loads as written
    return {kind: root / kind for kind in KINDS} | {"tokens": root / "tokens"}


def _load_damaged(models: dict[str, Path], kind: str, relative: str, content: bytes | dict[str, torch.Tensor]) -> None:
    """Copy the valid `kind` folder, replace one file (bytes, or tensors to write as safetensors), load the copy."""
    load = KINDS[kind][0]
    with tempfile.TemporaryDirectory(prefix="fuzz-") as scratch:
        folder = Path(shutil.copytree(models[kind], Path(scratch) / kind))
        if isinstance(content, bytes):
            (folder / relative).write_bytes(content)
        else:
            write_safetensors(folder / relative, content)
        loads_or_refuses(lambda: load(folder), folder)


@pytest.mark.parametrize("kind", sorted(KINDS))
@fuzz(25)
@given(data=st.data())
def test_config_structures(models: dict[str, Path], kind: str, data: st.DataObject) -> None:
    relative = KINDS[kind][1]
    valid = json.loads((models[kind] / relative).read_text())
    _load_damaged(models, kind, relative, json.dumps(data.draw(structures(valid))).encode())


@pytest.mark.parametrize("kind", sorted(KINDS))
@fuzz(10)
@given(data=st.data())
def test_config_bytes(models: dict[str, Path], kind: str, data: st.DataObject) -> None:
    relative = KINDS[kind][1]
    _load_damaged(models, kind, relative, data.draw(json_bytes(json.loads((models[kind] / relative).read_text()))))


@pytest.mark.parametrize("kind", sorted(KINDS))
@fuzz(15)
@given(data=st.data())
def test_weights_tensors(models: dict[str, Path], kind: str, data: st.DataObject) -> None:
    relative = KINDS[kind][2]
    _load_damaged(models, kind, relative, data.draw(tensor_dicts(load_tensors(models[kind] / relative))))


@pytest.mark.parametrize("kind", sorted(KINDS))
@fuzz(10)
@given(data=st.data())
def test_weights_bytes(models: dict[str, Path], kind: str, data: st.DataObject) -> None:
    valid = (models[kind] / KINDS[kind][2]).read_bytes()
    _load_damaged(models, kind, KINDS[kind][2], data.draw(damaged(valid, safetensors_boundaries(valid))))


@fuzz(20)
@given(data=st.data())
def test_run_token_index(models: dict[str, Path], data: st.DataObject) -> None:
    """A run's stage takes its vocabulary's fingerprints from the token index its config names."""
    index = json.loads((models["tokens"] / "index.json").read_text())
    with tempfile.TemporaryDirectory(prefix="fuzz-") as scratch:
        tokens = Path(scratch) / "tokens"
        tokens.mkdir()
        (tokens / "index.json").write_bytes(data.draw(json_bytes(index)))
        run = Path(shutil.copytree(models["run"], Path(scratch) / "run"))
        config = json.loads((run / RUN_STEP / "config.json").read_text())
        config["data"]["shards"] = str(tokens)
        (run / RUN_STEP / "config.json").write_text(json.dumps(config))
        stage = loads_or_refuses(lambda: load_stage_from(run), scratch)
        assert stage is None or all(isinstance(v, str) for v in stage.fingerprints.values())


@pytest.mark.parametrize(("kind", "section", "changes"), [
    ("codec", None, {"encoder_dim": 100_000}), ("codec", None, {"num_codebooks": 10**6}), ("codec", None, {"decoder_layers": 10**9}),
    ("codec", None, {"strides": [10**9]}), ("stage", "model", {"dim": 2**16}), ("stage", "model", {"num_layers": 10**9}),
    ("run", "model", {"num_layers": 10**9}), ("ssl", None, {"num_layers": 10**9}), ("ssl", None, {"conv_channels": [10**6, 16]}),
    ("tokenizer-mfcc", "encoder", {"hop_length": 10**9}), ("tokenizer-ssl", "encoder", {"config": {**asdict(TINY_SSL), "dim": 10**6}}),
])
def test_huge_configs_are_refused_at_once(models: dict[str, Path], kind: str, section: str | None, changes: dict, tmp_path: Path) -> None:
    load, config_file, _ = KINDS[kind]
    folder = shutil.copytree(models[kind], tmp_path / kind)
    config = json.loads((folder / config_file).read_text())
    (config[section] if section else config).update(changes)
    (folder / config_file).write_text(json.dumps(config))
    started = time.perf_counter()
    with pytest.raises(FileError, match="config.json"):
        load(folder)
    assert time.perf_counter() - started < 10


def test_loading_leaves_torch_dynamo_alone(models: dict[str, Path]) -> None:
    """Loads guard their configs without torch._dynamo, whose import alone costs a second or more (a fresh process: this
    one may have imported it already)."""
    script = ("import sys\nfrom audiolm.codec.model import Codec\nfrom audiolm.lm.model import load_stage\n"
              "from audiolm.semantic.tokenizer import SemanticTokenizer\n"
              f"load_stage({str(models['stage'])!r}); Codec.load({str(models['codec'])!r}); "
              f"SemanticTokenizer.load({str(models['tokenizer-ssl'])!r})\n"
              "print(sorted(name for name in sys.modules if name.startswith('torch._dynamo')))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


class _Table(torch.nn.Module):
    """A module whose buffer `make(n, m)` holds n * m values (from inputs of n and m values)."""

    def __init__(self, make, n: int, m: int) -> None:
        super().__init__()
        self.register_buffer("table", make(n, m))


BLOWUPS = {
    "outer": lambda n, m: torch.outer(torch.arange(n), torch.ones(m)),
    "broadcast": lambda n, m: torch.arange(n)[:, None] * torch.ones(m),
    "matmul": lambda n, m: torch.ones(n, 1) @ torch.ones(1, m),
    "expand": lambda n, m: torch.ones(n, 1).expand(n, m).contiguous(),
    "repeat": lambda n, m: torch.ones(n).repeat(m),
}


@pytest.mark.parametrize("kind", sorted(BLOWUPS))
def test_blowups_are_refused_before_allocating(kind: str, tmp_path: Path) -> None:
    """n * m values (256 TB, past the address space, so an attempt would fail as "cannot be built") from inputs that
    fit the budget (8M values each, 2**24 + 4 * 1M in all) are refused first; the same code within the budget builds."""
    weights = save_module(torch.nn.Linear(1000, 1000), tmp_path / "model.safetensors")
    started = time.perf_counter()
    with pytest.raises(FileError, match="config.json: describes a model far bigger"):
        build_module(lambda: _Table(BLOWUPS[kind], 8 * 10**6, 8 * 10**6), weights, tmp_path / "config.json")
    assert time.perf_counter() - started < 10
    assert build_module(lambda: _Table(BLOWUPS[kind], 1000, 1000), weights, tmp_path / "config.json").table.numel() == 10**6
