"""A stage's language model on disk: `model.safetensors` + `config.json` ({"kind": "audiolm-stage", "stage": StageSpec,
"model": TransformerConfig}), and the vocabulary it was trained on (semantic tokenizer / codec fingerprints)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import torch

from audiolm.errors import FileError
from audiolm.formats.atomic import write_json
from audiolm.formats.config import from_dict
from audiolm.formats.json_file import read_json
from audiolm.formats.tensors import build_module, load_module, save_module, start_model_folder
from audiolm.lm.stages import StageSpec
from audiolm.lm.transformer import Transformer, TransformerConfig


def build_model(spec: StageSpec, config: TransformerConfig) -> Transformer:
    """The stage's Transformer: the vocabulary, the longest sequence and the attention (bidirectional for the parallel
    stage) come from the spec."""
    return Transformer(TransformerConfig(**{**asdict(config), "vocab_size": spec.vocab_size, "max_seq_len": spec.max_seq_len,
                                            "causal": spec.stage != "parallel"}))


def save_stage(folder: str | Path, model: Transformer, spec: StageSpec, fingerprints: dict | None = None,
               dtype: torch.dtype | None = None) -> Path:
    folder = start_model_folder(folder)
    save_module(model, folder / "model.safetensors", dtype=dtype)
    write_json(folder / "config.json", {"kind": "audiolm-stage", "stage": asdict(spec), "model": asdict(model.config),
                                        "fingerprints": fingerprints or {}})
    return folder


def load_stage(folder: str | Path, device: str | torch.device = "cpu") -> tuple[Transformer, StageSpec, dict]:
    """(model in eval mode, its StageSpec, the fingerprints of the tokenizer and codec it was trained with)."""
    folder = Path(folder)
    config = read_json(folder / "config.json")
    if config.get("kind") != "audiolm-stage":
        raise FileError(folder / "config.json", "is not a stage language model config")
    unknown = sorted(set(config) - {"kind", "stage", "model", "fingerprints"})
    if unknown:
        raise FileError(folder / "config.json", f"unknown keys {unknown}; known: fingerprints, kind, model, stage")
    try:
        spec = from_dict(StageSpec, config["stage"], str(folder / "config.json"))
        model_config = from_dict(TransformerConfig, config["model"], str(folder / "config.json"))
    except KeyError as error:
        raise FileError(folder / "config.json", f"missing {error}") from None
    try:
        vocab_size, max_seq_len = spec.vocab_size, spec.max_seq_len
    except (ArithmeticError, ValueError) as error:  # e.g. an acoustic frame rate of 0
        raise FileError(folder / "config.json", f"inconsistent stage settings ({error})") from None
    if model_config.causal != (spec.stage != "parallel"):
        raise FileError(folder / "config.json", f"a {'causal' if model_config.causal else 'bidirectional'} model does not fit "
                                                f"its {spec.stage} stage")
    if model_config.vocab_size != vocab_size or model_config.max_seq_len < max_seq_len:
        raise FileError(folder / "config.json", f"model (vocabulary {model_config.vocab_size}, sequences up to {model_config.max_seq_len}) "
                                                f"does not fit its {spec.stage} stage ({vocab_size}, {max_seq_len})")
    fingerprints = config.get("fingerprints", {})
    if not isinstance(fingerprints, dict) or not all(isinstance(v, str) for v in fingerprints.values()):
        raise FileError(folder / "config.json", f"fingerprints must map names to strings, got {fingerprints!r}")
    weights = folder / "model.safetensors"
    model = load_module(build_module(lambda: Transformer(model_config), weights, folder / "config.json"), weights)
    return model.float().eval().to(device), spec, fingerprints


def stage_fingerprints(spec: StageSpec, semantic: str, codec: str) -> dict:
    """The fingerprints of the vocabularies a stage reads (a fine LM stays valid under a new semantic tokenizer)."""
    fingerprints = {}
    if spec.stage == "semantic" or (spec.stage in ("coarse", "parallel") and spec.use_semantic):
        fingerprints["semantic"] = semantic
    if spec.stage != "semantic":
        fingerprints["codec"] = codec
    return fingerprints
