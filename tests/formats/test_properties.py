"""Every reader of a data file a user hands us (JSON, YAML presets and overrides, safetensors, `.codes`, token shards,
manifests) loads it or raises `AudiolmError` naming the file, whatever the file holds; see `strategies.py`."""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from pathlib import Path

import pytest
import torch
import yaml
from hypothesis import example, given
from hypothesis import strategies as st
from safetensors import safe_open

from audiolm.codec.codes_file import load_codes, save_codes
from audiolm.codec.model import Codec, CodecConfig
from audiolm.data.manifest import Entry, read_manifest, write_manifest
from audiolm.data.shards import FORMAT as SHARDS_FORMAT
from audiolm.data.shards import INDEX, TokenShards, _write_index
from audiolm.errors import AudiolmError
from audiolm.formats.config import CONFIGS, load_config, read_yaml
from audiolm.formats.json_file import read_json
from audiolm.formats.tensors import load_module, load_tensors, save_module
from audiolm.train.codec import CodecRunConfig
from audiolm.train.lm import LMRunConfig, TokenStreams
from audiolm.train.semantic import SemanticRunConfig
from tests.formats.strategies import (
    damaged,
    fuzz,
    json_bytes,
    json_values,
    loads_or_refuses,
    mutated,
    safetensors_boundaries,
    structures,
    tensor_dicts,
    write_safetensors,
)
from tests.helpers_lm import TINY_CODEC

RUN_CONFIGS = {"codec": CodecRunConfig, "lm": LMRunConfig, "semantic": SemanticRunConfig}


@pytest.fixture(scope="module")
def codec() -> Codec:
    torch.manual_seed(0)
    return Codec(CodecConfig(**TINY_CODEC))


def _scratch() -> tempfile.TemporaryDirectory:
    """A fresh folder per example (pytest's tmp_path is one folder for all of a test's examples)."""
    return tempfile.TemporaryDirectory(prefix="fuzz-")


# --- JSON and YAML -----------------------------------------------------------------------------------------------------
@fuzz(150)
@given(json_bytes({"kind": "codec", "sample_rate": 16000, "strides": [2, 4], "nested": {"a": [1.5, None, True]}}))
@example(b"1" * 5000)  # past Python's int digit limit
@example(b"[" * 5000)  # past the recursion limit
@example(b'{"a": NaN, "b": -Infinity}')
@example(b"\xff\xfe{}")
def test_read_json(data: bytes) -> None:
    with _scratch() as folder:
        path = Path(folder) / "config.json"
        path.write_bytes(data)
        result = loads_or_refuses(lambda: read_json(path), path)
        assert result is None or isinstance(result, dict)


@fuzz(120)
@given(st.one_of(st.binary(max_size=200), st.text(max_size=200).map(str.encode),
                 json_values.map(lambda v: yaml.safe_dump(v).encode()), json_values.map(lambda v: json.dumps(v).encode())))
@example(b"a: [" * 2000)
@example(b"\xff: 1")
@example(b"a: &x [1]\nb: *x\n")
def test_read_yaml(data: bytes) -> None:
    with _scratch() as folder:
        path = Path(folder) / "preset.yaml"
        path.write_bytes(data)
        result = loads_or_refuses(lambda: read_yaml(path), path)
        assert result is None or isinstance(result, dict)


def _preset(family: str) -> dict:
    return yaml.safe_load((CONFIGS / family / "tiny.yaml").read_text())


@fuzz(150)
@given(st.sampled_from(sorted(RUN_CONFIGS)).flatmap(lambda family: st.tuples(st.just(family), structures(_preset(family)))))
@example(("lm", {"stage": {"semantic_rate": 0}}))
@example(("lm", {"model": {"num_heads": 0}}))
@example(("lm", {1: 2, "a": 3}))
@example(("codec", {"model": {"strides": "abc"}}))
@example(("codec", {"train": {"steps": True}}))
@example(("codec", {"codec_optimizer": {"lr": math.nan}}))
@example(("codec", {"codec_optimizer": {"betas": [0.9]}}))
def test_load_config(case: tuple[str, object]) -> None:
    family, data = case
    with _scratch() as folder:
        path = Path(folder) / "preset.yaml"
        path.write_text(yaml.safe_dump(data), encoding="utf-8")
        loads_or_refuses(lambda: load_config(RUN_CONFIGS[family], path), path.name)


override_keys = st.one_of(st.sampled_from(["train.steps", "model.dim", "stage.stage", "optimizer.betas", "data", "train", "x.y.z",
                                           "train.steps.x", "", ".", "model..dim"]), st.text(max_size=12))
override_values = st.one_of(st.text(max_size=12), json_values.map(lambda v: json.dumps(v)),
                            st.sampled_from(["[", "{a: 1", "!!python/object:os.system", "*x", "1e400", ".nan", "- - -", "a: b: c"]))


@fuzz(150)
@given(st.lists(st.one_of(st.tuples(override_keys, override_values).map("=".join), st.text(max_size=20)), max_size=4))
def test_overrides(overrides: list[str]) -> None:
    preset = CONFIGS / "lm" / "tiny.yaml"
    loads_or_refuses(lambda: load_config(LMRunConfig, preset, ["stage.stage=coarse", *overrides]), "")


# --- safetensors -------------------------------------------------------------------------------------------------------
def _small_module() -> torch.nn.Module:
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.LayerNorm(2))
    module.register_buffer("steps", torch.zeros((), dtype=torch.int64))
    return module


def _module_bytes() -> bytes:
    with _scratch() as folder:
        return save_module(_small_module(), Path(folder) / "m.safetensors").read_bytes()


MODULE_BYTES = _module_bytes()


@fuzz(150)
@given(damaged(MODULE_BYTES, safetensors_boundaries(MODULE_BYTES)))
def test_load_tensors_bytes(data: bytes) -> None:
    with _scratch() as folder:
        path = Path(folder) / "model.safetensors"
        path.write_bytes(data)
        loads_or_refuses(lambda: load_tensors(path), path)
        loads_or_refuses(lambda: load_module(_small_module(), path), path)


@fuzz(100)
@given(tensor_dicts(_small_module().state_dict()))
def test_load_module_tensors(tensors: dict[str, torch.Tensor]) -> None:
    with _scratch() as folder:
        path = Path(folder) / "model.safetensors"
        write_safetensors(path, tensors)
        module = loads_or_refuses(lambda: load_module(_small_module(), path), path)
        if module is not None:
            for name, tensor in module.state_dict().items():
                assert tensor.dtype == _small_module().state_dict()[name].dtype


# --- .codes files ------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def codes_file(codec: Codec, tmp_path_factory: pytest.TempPathFactory) -> Path:
    codes = torch.randint(0, codec.cardinality, (codec.num_codebooks, 10), generator=torch.Generator().manual_seed(0))
    return save_codes(tmp_path_factory.mktemp("codes") / "clip.codes", codes, codec, num_samples=10 * 320)


def _check_codes(path: Path, codec: Codec) -> None:
    stored = loads_or_refuses(lambda: load_codes(path), path)
    if stored is not None:
        assert stored.codes.dim() == 2 and stored.codes.dtype == torch.int64
        assert stored.codes.numel() == 0 or 0 <= int(stored.codes.min()) <= int(stored.codes.max()) < stored.codebook_size
        assert stored.sample_rate > 0 and stored.num_samples >= 0 and math.isfinite(stored.frame_rate) and stored.frame_rate > 0
        loads_or_refuses(lambda: stored.check(codec, path), path)


@fuzz(120)
@given(data=st.data())
def test_load_codes_bytes(codes_file: Path, codec: Codec, data: st.DataObject) -> None:
    valid = codes_file.read_bytes()
    with _scratch() as folder:
        path = Path(folder) / "clip.codes"
        path.write_bytes(data.draw(damaged(valid, safetensors_boundaries(valid))))
        _check_codes(path, codec)


@fuzz(100)
@given(data=st.data())
def test_load_codes_structures(codes_file: Path, codec: Codec, data: st.DataObject) -> None:
    with safe_open(str(codes_file), framework="pt") as f:
        metadata, valid = f.metadata(), {"codes": f.get_tensor("codes")}
    metadata = data.draw(st.one_of(mutated(metadata), mutated(metadata), st.just(metadata)))
    metadata = {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()}
    tensors = data.draw(tensor_dicts(valid))
    with _scratch() as folder:
        path = Path(folder) / "clip.codes"
        write_safetensors(path, tensors, metadata)
        _check_codes(path, codec)


@pytest.mark.parametrize("change", [{"sample_rate": "-1"}, {"num_samples": "-5"}, {"frame_rate": "nan"}, {"frame_rate": "inf"},
                                    {"codebook_size": "0"}, {"version": "x"}, {"version": "1" * 5000}, {"sample_rate": "1e3"},
                                    {"codes": torch.zeros(2, 3)}, {"codes": torch.full((2, 3), -1, dtype=torch.int16)},
                                    {"codes": torch.zeros(2, 3, dtype=torch.bool)}, {"codes": torch.zeros(2, 3, 1, dtype=torch.uint16)}])
def test_load_codes_refuses(codes_file: Path, codec: Codec, change: dict, tmp_path: Path) -> None:
    with safe_open(str(codes_file), framework="pt") as f:
        metadata, tensors = f.metadata(), {"codes": f.get_tensor("codes")}
    tensors.update({k: v for k, v in change.items() if isinstance(v, torch.Tensor)})
    metadata.update({k: v for k, v in change.items() if isinstance(v, str)})
    path = tmp_path / "clip.codes"
    write_safetensors(path, tensors, metadata)
    with pytest.raises(AudiolmError, match="clip.codes"):
        load_codes(path)


# --- token shards --------------------------------------------------------------------------------------------------------
IDENTITY = {"tokenizer": {"fingerprint": "t" * 16, "codebook_size": 8, "frame_rate": 25.0, "sample_rate": 16000},
            "codec": {"config_hash": "c" * 16, "codebook_fingerprint": "f" * 16, "num_codebooks": 2, "codebook_size": 32,
                      "frame_rate": 50.0, "sample_rate": 16000},
            "sample_rate": 16000, "shard_size": 2}


@pytest.fixture(scope="module")
def shards_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two shards of two utterances each, written the way `tokenize_corpus` writes them."""
    folder = tmp_path_factory.mktemp("shards")
    generator = torch.Generator().manual_seed(0)
    sidecars = []
    for shard in range(2):
        records, semantic_frames, codes_frames = [], 0, 0
        for number, frames in enumerate((3, 5)):
            records.append({"id": f"u{shard}{number}", "speaker": f"s{number}", "split": "train", "duration": frames / 25,
                            "semantic_offset": semantic_frames, "semantic_length": frames,
                            "codes_offset": codes_frames, "codes_length": 2 * frames})
            semantic_frames, codes_frames = semantic_frames + frames, codes_frames + 2 * frames
        name = f"shard_{shard:05d}"
        write_safetensors(folder / f"{name}.safetensors",
                          {"semantic": torch.randint(0, 8, (semantic_frames,), generator=generator).to(torch.uint16),
                           "codes": torch.randint(0, 32, (2, codes_frames), generator=generator).to(torch.uint16)},
                          {"format": SHARDS_FORMAT})
        sidecar = {"format": SHARDS_FORMAT, "version": 1, "shard": shard, "identity": IDENTITY, "tensors": f"{name}.safetensors",
                   "bytes": (folder / f"{name}.safetensors").stat().st_size, "semantic_frames": semantic_frames,
                   "codes_frames": codes_frames, "utterances": records, "skipped": []}
        (folder / f"{name}.json").write_text(json.dumps(sidecar), encoding="utf-8")
        sidecars.append(sidecar)
    _write_index(folder, IDENTITY, sidecars)
    assert len(TokenShards(folder)) == 4
    return folder


def _read_shards(folder: Path) -> None:
    """Open the shards and read them as training does (windows of aligned ids and codes), or refuse with the folder
    named (a malformed file when opened, tokens beyond the vocabularies when read)."""

    def read() -> None:
        shards = TokenShards(folder)
        assert isinstance(shards.hours, float)
        for i in range(len(shards)):
            assert shards.semantic(i).dtype == torch.int64 and shards.codes(i).shape[0] == shards.num_codebooks
        for split in ("train", "valid"):
            streams = TokenStreams(shards, shards.split(split), ratio=2)
            for s in range(len(streams)):
                semantic, codes = streams.stream(s)
                assert codes.shape == (shards.num_codebooks, 2 * semantic.shape[0])

    loads_or_refuses(read, folder)


@fuzz(80)
@given(data=st.data())
def test_token_shards_json(shards_folder: Path, data: st.DataObject) -> None:
    name = data.draw(st.sampled_from([INDEX, "shard_00000.json", "shard_00001.json"]))
    valid = json.loads((shards_folder / name).read_text())
    with _scratch() as scratch:
        folder = Path(shutil.copytree(shards_folder, Path(scratch) / "tokens"))
        (folder / name).write_bytes(data.draw(json_bytes(valid)))
        _read_shards(folder)


@fuzz(80)
@given(data=st.data())
def test_token_shards_tensors(shards_folder: Path, data: st.DataObject) -> None:
    valid_bytes = (shards_folder / "shard_00001.safetensors").read_bytes()
    with _scratch() as scratch:
        folder = Path(shutil.copytree(shards_folder, Path(scratch) / "tokens"))
        path = folder / "shard_00001.safetensors"
        if data.draw(st.booleans()):
            path.write_bytes(data.draw(damaged(valid_bytes, safetensors_boundaries(valid_bytes))))
        else:
            write_safetensors(path, data.draw(tensor_dicts(load_tensors(path))), {"format": SHARDS_FORMAT})
        _read_shards(folder)


# --- manifests ---------------------------------------------------------------------------------------------------------
ENTRY = {"id": "19-100-0000", "path": "audio/a.flac", "duration": 1.5, "sample_rate": 16000, "num_channels": 1, "speaker": "19",
         "text": "HELLO", "split": "train", "phones": [["h", 0.0, 0.1]], "engine": "piper"}


def _check_manifest(path: Path) -> None:
    entries = loads_or_refuses(lambda: read_manifest(path), path)
    for entry in entries or []:  # what loads is well typed: the code downstream trusts it
        assert isinstance(entry, Entry) and isinstance(entry.id, str) and isinstance(entry.path, str)
        assert isinstance(entry.duration, float) and math.isfinite(entry.duration) and entry.duration >= 0
        assert type(entry.sample_rate) is int and entry.sample_rate > 0 and type(entry.num_channels) is int and entry.num_channels > 0
        assert all(value is None or isinstance(value, str) for value in (entry.speaker, entry.text, entry.split))
        assert entry.phones is None or isinstance(entry.phones, list)
        assert isinstance(entry.to_dict(), dict)


@fuzz(100)
@given(data=st.data())
def test_read_manifest_bytes(data: st.DataObject) -> None:
    with _scratch() as folder:
        path = Path(folder) / "manifest.jsonl"
        write_manifest(path, [Entry.from_dict({**ENTRY, "id": str(i)}) for i in range(3)])
        path.write_bytes(data.draw(damaged(path.read_bytes())))  # a half-written last line among them
        _check_manifest(path)


@fuzz(100)
@given(st.lists(st.one_of(mutated(ENTRY), mutated(ENTRY), json_values), min_size=1, max_size=3))
@example([{**ENTRY, "duration": math.nan}])
@example([{**ENTRY, "sample_rate": "16000"}])
@example([{**ENTRY, "extra": 1}])
def test_read_manifest_records(records: list[object]) -> None:
    with _scratch() as folder:
        path = Path(folder) / "manifest.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
        _check_manifest(path)
