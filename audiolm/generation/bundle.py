"""Assembling a model bundle (what `AudioLM.load` reads) from a tokenizer, a codec and stage LM runs.

    write_bundle("models/speech", tokenizer="runs/semantic/tokenizer", codec="models/speech/codec",
                 stages={"semantic": "runs/lm-semantic", "coarse": "runs/lm-coarse", "fine": "runs/lm-fine",
                         "parallel": "runs/lm-parallel"}, fp16=True)

A stage may be a run folder (its final `model/`, else its latest checkpoint) or an exported stage folder.
The parts are checked against each other (the LMs' fingerprints) before anything is written.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from audiolm.codec.model import Codec
from audiolm.errors import FileError
from audiolm.generation.pipeline import PARTS, AudioLM, Stage
from audiolm.lm.model import build_model, load_stage, save_stage, stage_fingerprints
from audiolm.semantic.tokenizer import SemanticTokenizer


def load_stage_from(folder: str | Path) -> Stage:
    """A stage LM from an exported folder or a training run (final model, else latest checkpoint)."""
    from audiolm.formats.config import from_dict
    from audiolm.formats.json_file import read_json
    from audiolm.formats.tensors import build_module, load_module
    from audiolm.train.checkpoint import latest_checkpoint
    from audiolm.train.lm import LMRunConfig

    folder = Path(folder)
    if (folder / "config.json").is_file() and read_json(folder / "config.json").get("kind") == "audiolm-stage":
        return Stage(*load_stage(folder))
    if (folder / "model" / "config.json").is_file():
        return Stage(*load_stage(folder / "model"))
    checkpoint = latest_checkpoint(folder)
    if checkpoint is None:
        raise FileError(folder, "neither a stage model folder nor a training run with a checkpoint")
    data = read_json(checkpoint / "config.json")
    if data.pop("kind", None) != "lm-run":
        raise FileError(checkpoint / "config.json", "is not a stage LM training run")
    config = from_dict(LMRunConfig, data, str(checkpoint / "config.json"))
    weights = checkpoint / "lm.safetensors"
    model = load_module(build_module(lambda: build_model(config.stage, config.model), weights, checkpoint / "config.json"), weights).eval()
    index = Path(config.data.shards) / "index.json"  # the vocabulary the run trains on
    fingerprints = {}
    if index.is_file():
        identity = read_json(index).get("identity")
        try:
            semantic, codec = identity["tokenizer"]["fingerprint"], identity["codec"]["codebook_fingerprint"]
        except (KeyError, TypeError):
            raise FileError(index, "index names no tokenizer and codec fingerprints") from None
        if not isinstance(semantic, str) or not isinstance(codec, str):
            raise FileError(index, "index fingerprints must be strings")
        fingerprints = stage_fingerprints(config.stage, semantic, codec)
    return Stage(model, config.stage, fingerprints)


def write_bundle(output: str | Path, tokenizer: str | Path, codec: str | Path, stages: dict[str, str | Path], fp16: bool = True,
                 detector: str | Path | None = None) -> Path:
    """Check the parts against each other, then write them as one bundle folder (fp16 weights by default); `detector`
    (a detector folder or finished training run) adds the generated-speech detector as `detector/`, recording the
    fingerprints of the parts beside it (`part_fingerprints`). A detector already in the folder stays only while the
    parts it records are the parts the bundle now has: one trained on other parts is removed, not kept stale."""
    from audiolm.detector.model import Detector

    loaded = {name: load_stage_from(folder) for name, folder in stages.items()}
    detector_model = None
    if detector is not None:
        detector = Path(detector)
        detector_model = Detector.load(detector / "model" if (detector / "model" / "config.json").is_file() else detector)
    if "semantic" not in loaded:
        raise FileError(output, "a bundle needs the semantic stage")
    if "coarse" not in loaded and "parallel" not in loaded:
        raise FileError(output, "a bundle needs an acoustic stage: the coarse LM or the parallel stage")
    semantic_tokenizer = SemanticTokenizer.load(tokenizer)
    codec_model = Codec.load(codec)
    AudioLM(semantic_tokenizer, codec_model, **loaded)  # checks the parts against each other
    output = Path(output)
    partial = output.with_name(output.name + ".partial")  # written whole, then swapped in: never half a bundle
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    dtype = torch.float16 if fp16 else None
    for part, source, model in (("semantic", tokenizer, semantic_tokenizer), ("codec", codec, codec_model)):
        if Path(source).resolve() != (output / part).resolve():  # a part already in place (with its model card) stays as it is
            model.save(partial / part, dtype=dtype)
    for name, stage in loaded.items():
        save_stage(partial / PARTS[name], stage.model, stage.spec, stage.fingerprints, dtype=dtype)
    if output.exists():  # keep what else the folder holds (model card, prompts): replace the parts, drop stale LMs
        for name, part in PARTS.items():
            if name not in loaded:
                _remove_part(output / part)
        for part in partial.iterdir():
            _remove_part(output / part.name)
            part.rename(output / part.name)
        partial.rmdir()
    else:
        partial.rename(output)
    parts = part_fingerprints(output)
    if detector_model is not None:
        detector_model.save(output / "detector", dtype=dtype, metadata={"parts": parts})
    elif (output / "detector").is_dir() and detector_parts(output / "detector") != parts:
        _remove_part(output / "detector")
    return output


def detector_parts(folder: Path) -> dict | None:
    """The bundle parts a detector folder says it was trained on or bundled with (`part_fingerprints`); None when there
    is no detector, it records none (e.g. from an older version), or its config cannot be read."""
    from audiolm.formats.json_file import read_json

    if not (folder / "config.json").is_file():
        return None
    try:
        trained_on = read_json(folder / "config.json").get("trained_on")
    except FileError:
        return None
    return trained_on.get("parts") if isinstance(trained_on, dict) else None


def part_fingerprints(folder: str | Path) -> dict[str, str]:
    """What each model part of a bundle holds: {part folder: the first 16 hex digits of the sha256 of its config.json and
    weights}, for `semantic`, `codec` and the stage LMs it has (not the detector, prompts or model cards). Equal
    fingerprints, equal models: e.g. whether the bundle's detector was trained on the parts it now has."""
    import hashlib

    folder = Path(folder)
    fingerprints = {}
    for part in ("semantic", "codec", *PARTS.values()):
        if not (folder / part / "config.json").is_file():
            continue
        digest = hashlib.sha256()
        for file in [folder / part / "config.json", *sorted((folder / part).glob("*.safetensors"))]:
            digest.update(file.name.encode() + b"\0")
            with open(file, "rb") as f:
                for block in iter(lambda f=f: f.read(1 << 20), b""):
                    digest.update(block)
        fingerprints[part] = digest.hexdigest()[:16]
    return fingerprints


def _remove_part(path: Path) -> None:
    """Remove a bundle part; a part shared with another bundle (a linked codec) loses its link, never its target."""
    if path.is_symlink():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


def write_prompts(manifest: str | Path, folder: str | Path, count: int = 4, seconds: float = 3.0,
                  splits: tuple[str, ...] = ("test",)) -> list[dict]:
    """Cut `count` prompts of `seconds` from held-out audio of `manifest` (one per speaker, speakers spread over the
    sorted list; clips without a speaker count as their own) into `folder`, with `prompts.json` describing them."""
    from audiolm.audio.io import load_audio, save_audio
    from audiolm.data.manifest import read_manifest
    from audiolm.formats.atomic import write_json

    manifest = Path(manifest)
    groups: dict[str, list] = {}
    for entry in read_manifest(manifest):
        if entry.split in splits and entry.duration >= seconds:
            groups.setdefault(entry.speaker or entry.id, []).append(entry)
    if not groups:
        raise FileError(manifest, f"no {'/'.join(splits)} utterance of at least {seconds:g} s to cut a prompt from")
    names = sorted(groups)
    picked = [names[round(i * len(names) / count)] for i in range(min(count, len(names)))]
    folder = Path(folder)
    described = []
    for name in picked:
        entry = groups[name][0]
        wav = load_audio(entry.audio_path(manifest.parent), 16000)[:1, : int(seconds * 16000)]
        file = f"{name}.wav"
        save_audio(folder / file, wav, 16000, subtype="PCM_16")
        described.append({"file": file, "speaker": entry.speaker, "source": entry.id, "seconds": seconds,
                          **({"text": entry.text} if entry.text else {})})
    write_json(folder / "prompts.json", described)
    return described
