"""Every cell of the bad-input matrix (tests/cli/bad_inputs.py): the CLI called in-process on real files.

A bad input gives `audiolm: error: <file>: <problem>` on one line naming the file, exit status 1, no traceback,
and nothing written at the output path; 8 kHz stereo works, and so does a 2-hour prompt (only its start is read).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import load_file, save_file

from audiolm.cli.main import main
from audiolm.codec.codes_file import save_codes
from audiolm.codec.model import Codec, CodecConfig
from audiolm.data.shards import tokenize_corpus
from tests.cli.bad_inputs import CASES, ERROR, Case, readme_block
from tests.helpers_codec import tone_manifest
from tests.helpers_lm import TINY_CODEC, tiny_bundle

SR = 16000


def tone(seconds: float, sample_rate: int = SR, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    wav = (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    return np.repeat(wav[:, None], channels, axis=1) if channels > 1 else wav


def write_long_wav(path: Path, hours: float = 2.0, head_seconds: float = 5.0) -> Path:
    """A 16-bit 16 kHz WAV of `hours`: a tone for `head_seconds`, then zeros left as a hole in a sparse file
    (230 MB long, a few hundred kB on disk)."""
    sf.write(str(path), tone(head_seconds), SR, subtype="PCM_16")
    total = int(hours * 3600 * SR)
    data_bytes = total * 2
    with open(path, "r+b") as f:
        header = bytearray(f.read(44))
        assert header[36:40] == b"data"
        header[4:8] = (36 + data_bytes).to_bytes(4, "little")
        header[40:44] = data_bytes.to_bytes(4, "little")
        f.seek(0)
        f.write(header)
        f.truncate(44 + data_bytes)
    return path


def copy_model(source: Path, target: Path, kind: str, part: str) -> Path:
    """A copy of a model folder (or bundle) with one defect in `part` (a sub-folder, "" for the folder itself)."""
    shutil.copytree(source, target, symlinks=True)
    folder = target / part if part else target
    if kind == "truncated_model":
        weights = folder / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    elif kind == "unknown_key":
        config = json.loads((folder / "config.json").read_text())
        config["colour"] = "blue"
        (folder / "config.json").write_text(json.dumps(config))
    elif kind == "missing_key":
        config = json.loads((folder / "config.json").read_text())
        for key in ("num_codebooks", "stage", "layer"):  # one the model cannot do without
            if key in config:
                del config[key]
                break
        else:
            raise AssertionError(f"no required key to remove in {folder / 'config.json'}")
        (folder / "config.json").write_text(json.dumps(config))
    return target


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, Path]:
    """The good files every case needs beside its one bad input."""
    root = tmp_path_factory.mktemp("world")
    bundle = tiny_bundle(root / "bundle", window_seconds=1.0)
    sf.write(str(root / "good.wav"), tone(1.0), SR)
    codec = Codec.load(bundle / "codec")
    codes = save_codes(root / "good.codes", codec.encode(torch.from_numpy(tone(1.0))[None, None]), codec, SR)
    manifest = tone_manifest(root / "corpus", count=4, seconds=0.5)
    shards = root / "shards"
    tokenize_corpus(manifest, bundle / "semantic", bundle / "codec", shards, None, 256, 1, progress=False)
    run = root / "codec-run"  # a finished tiny codec run, for `codec export`
    assert main(["codec", "train", "--config", "tiny", "--manifest", str(manifest), "-o", str(run), "--quiet", "train.steps=1",
                 "train.save_every=1"]) == 0
    blocked = root / "blocked"
    blocked.write_text("a regular file where a folder is expected\n")
    return {"root": root, "bundle": bundle, "codec": bundle / "codec", "tokenizer": bundle / "semantic", "audio": root / "good.wav",
            "codes": Path(codes), "manifest": manifest, "shards": shards, "corpus": root / "corpus", "blocked": blocked, "run": run}


def bad_file(case: Case, world: dict[str, Path], where: Path) -> Path:
    """The bad input of `case`, made under `where`."""
    kind, placeholder = case.input, case.bad
    suffix = {"audio": ".wav", "manifest": ".jsonl", "codes": ".codes"}.get(placeholder, "")
    path = where / f"bad-{kind}{suffix}"
    if kind in ("missing", "missing_model"):
        return path
    if kind == "directory":
        path.mkdir()
        return path
    if placeholder == "run":  # a training run folder
        path.mkdir()
        if kind == "empty":
            (path / "checkpoints").mkdir()
        elif kind == "random":
            (path / "checkpoints").mkdir()
            (path / "checkpoints" / "latest.txt").write_bytes(np.random.default_rng(3).bytes(200))
        return path
    if placeholder == "corpus":  # a folder to scan
        path.mkdir()
        if kind == "random":
            (path / "noise.wav").write_bytes(np.random.default_rng(0).bytes(3000))
        return path
    if placeholder == "shards":
        if kind == "other_shards":
            other = Codec(CodecConfig(**TINY_CODEC)).save(where / "other-codec")  # a fresh random codec: other codebooks
            tokenize_corpus(world["manifest"], world["tokenizer"], other, path, None, 256, 1, progress=False)
            return path
        path.mkdir()
        (path / "index.json").write_bytes(b"" if kind == "empty" else np.random.default_rng(1).bytes(500))
        return path
    if kind in ("truncated_model", "unknown_key", "missing_key"):
        part = {"bundle": "coarse-lm"}.get(placeholder, "")
        return copy_model(world[placeholder], path, kind, part)
    rng = np.random.default_rng(2)
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "random":
        path.write_bytes(rng.bytes(4000))
    elif kind == "truncated":
        good = (world["audio"] if placeholder == "audio" else world["codes"]).read_bytes()
        path.write_bytes(good[: len(good) // 3] if placeholder == "codes" else good[:40])
    elif kind == "nan":
        sf.write(str(path), np.full(SR, np.nan, np.float32), SR, subtype="FLOAT")
    elif kind == "silent":
        sf.write(str(path), np.zeros(SR, np.float32), SR)
    elif kind == "short":
        sf.write(str(path), tone(0.05), SR)
    elif kind == "stereo8k":
        sf.write(str(path), tone(1.0, 8000, channels=2), 8000)
    elif kind == "long":
        write_long_wav(path)
    elif kind == "non_utf8":
        path.write_bytes(b'{"id": "a\xff\xfe", "path": "tone0.wav", "duration": 0.5, "sample_rate": 16000, "speaker": "s"}\n')
    elif kind == "half_written":
        good = world["manifest"].read_text().splitlines()
        path.write_text(good[0] + "\n" + good[1][: len(good[1]) // 2])
    elif kind == "missing_fields":
        path.write_text('{"id": "x"}\n')
    elif kind == "other_codec":
        other = Codec(CodecConfig(**TINY_CODEC))
        save_codes(path, other.encode(torch.from_numpy(tone(1.0))[None, None]), other, SR)
    elif kind == "out_of_range":
        tensors = load_file(str(world["codes"]))
        from safetensors import safe_open

        with safe_open(str(world["codes"]), "pt") as f:
            metadata = f.metadata()
        name = next(iter(tensors))
        tensors[name] = torch.full_like(tensors[name], 1000)  # the tiny codec has 32 codes
        save_file(tensors, str(path), metadata=metadata)
    else:
        raise AssertionError(f"no maker for {kind}")
    return path


def fill(argv: tuple[str, ...], values: dict[str, Path]) -> list[str]:
    return [arg.format(**{k: str(v) for k, v in values.items()}) for arg in argv]


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.command.replace(' ', '-')}:{c.input}")
def test_cell(case: Case, world, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    values = dict(world, out=out)
    bad = bad_file(case, world, tmp_path) if case.bad != "blocked" else world["blocked"]
    values[case.bad] = bad
    blocked_before = world["blocked"].read_bytes()
    code = main(fill(case.argv, values))
    captured = capsys.readouterr()
    if case.expect == ERROR:
        lines = captured.err.strip().splitlines()
        assert code == 1, captured
        assert len(lines) == 1 and lines[0].startswith("audiolm: error: "), captured.err
        assert str(bad) in lines[0], lines[0]  # names the bad file (or a file inside the bad folder)
        assert "Traceback" not in captured.err
        assert files_under(out) == [], "something was written at the output path"
    else:
        assert code == 0, captured
    assert world["blocked"].read_bytes() == blocked_before


def test_readme_table_is_the_matrix():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert readme_block() in readme, "README's bad-input table is stale: run `python -m tests.cli.bad_inputs --write`"
