"""The generated-speech detector: a small convolutional classifier on log-mel spectrograms (AudioLM's answer to
misuse, section 7 of the paper: a classifier that tells its samples from real speech).

    detector = Detector.load("models/speech/detector")
    detector.probability(wav)  # wav [L] at 16 kHz -> P(generated)

Input: a log-mel spectrogram (25 ms windows, 10 ms hop, 80 bands to 8 kHz) minus its own mean, so that gain does not
matter. Five conv blocks (3x3 conv, batch norm, GELU; 2x2 pooling after the first four) turn it into a map whose
frequency axis is flattened into channels; the time axis is summarised by its mean and maximum, and a linear layer
gives one logit. A clip is scored in `window_seconds` windows (half-window hop) whose logits are averaged: the
artefacts of a neural decoder are everywhere in a generated clip, so every window sees them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from audiolm.audio.dsp import LogMel
from audiolm.errors import FileError
from audiolm.formats.atomic import write_json
from audiolm.formats.config import from_dict
from audiolm.formats.json_file import read_json
from audiolm.formats.tensors import build_module, load_module, save_module, start_model_folder


@dataclass(kw_only=True)
class DetectorConfig:
    sample_rate: int = 16000
    n_fft: int = 400
    hop_length: int = 160
    n_mels: int = 80
    channels: tuple[int, ...] = (16, 32, 64, 96, 128)
    window_seconds: float = 2.0  # training crops and scoring windows

    def __post_init__(self) -> None:
        if not self.channels or min(self.channels) < 1:
            raise ValueError(f"channels must be positive, got {self.channels}")
        if self.n_mels < 2 ** (len(self.channels) - 1):
            raise ValueError(f"n_mels {self.n_mels} is too few for {len(self.channels) - 1} poolings")
        if not self.window_seconds > 0:
            raise ValueError(f"window_seconds must be > 0, got {self.window_seconds}")

    @property
    def window(self) -> int:
        """Samples per scoring window."""
        return round(self.window_seconds * self.sample_rate)


class Detector(nn.Module):
    def __init__(self, config: DetectorConfig) -> None:
        super().__init__()
        self.config = config
        self.features = LogMel(config.sample_rate, config.n_fft, config.hop_length, config.n_mels, power=1.0)
        blocks = []
        before = 1
        for i, width in enumerate(config.channels):
            blocks += [nn.Conv2d(before, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.GELU()]
            if i < len(config.channels) - 1:
                blocks.append(nn.MaxPool2d(2))
            before = width
        self.blocks = nn.Sequential(*blocks)
        bands = config.n_mels // 2 ** (len(config.channels) - 1)
        self.head = nn.Linear(2 * before * bands, 1)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """`wav [B, 1, L]` -> logits `[B]` (positive: generated)."""
        mel = self.features(wav[:, 0].float())  # [B, M, T]
        mel = mel - mel.mean(dim=(1, 2), keepdim=True)
        h = self.blocks(mel[:, None])  # [B, C, M', T']
        h = h.flatten(1, 2)  # [B, C * M', T']
        return self.head(torch.cat([h.mean(dim=2), h.amax(dim=2)], dim=1))[:, 0]

    def windows(self, wav: torch.Tensor) -> torch.Tensor:
        """`wav [L]` -> `[W, 1, window]`: windows at half-window hop covering it (the last one flush with the end; a
        clip shorter than a window is zero-padded)."""
        size = self.config.window
        if wav.shape[-1] <= size:
            return nn.functional.pad(wav, (0, size - wav.shape[-1]))[None, None]
        starts = list(range(0, wav.shape[-1] - size + 1, size // 2))
        if starts[-1] != wav.shape[-1] - size:
            starts.append(wav.shape[-1] - size)
        return torch.stack([wav[s:s + size] for s in starts])[:, None]

    @torch.inference_mode()
    def logit(self, wav: torch.Tensor, batch: int = 32) -> float:
        """The mean window logit of `wav [L]` (16 kHz), `batch` windows at a time (memory stays flat in the length)."""
        device = next(self.parameters()).device
        windows = self.windows(wav.float())
        return float(torch.cat([self(windows[i:i + batch].to(device)) for i in range(0, len(windows), batch)]).mean())

    def probability(self, wav: torch.Tensor) -> float:
        """P(generated) of `wav [L]` (16 kHz)."""
        return float(torch.sigmoid(torch.tensor(self.logit(wav))))

    def save(self, folder: str | Path, dtype: torch.dtype | None = None, metadata: dict | None = None) -> Path:
        """`model.safetensors` + `config.json` (`metadata`: e.g. the bundle whose outputs it was trained on)."""
        folder = start_model_folder(folder)
        save_module(self, folder / "model.safetensors", dtype=dtype)
        write_json(folder / "config.json", {"kind": "detector", **asdict(self.config), **({"trained_on": metadata} if metadata else {})})
        return folder

    @classmethod
    def load(cls, folder: str | Path, device: str | torch.device = "cpu") -> Detector:
        folder = Path(folder)
        data = read_json(folder / "config.json")
        if data.pop("kind", None) != "detector":
            raise FileError(folder / "config.json", "is not a detector config")
        data.pop("trained_on", None)
        config = from_dict(DetectorConfig, data, str(folder / "config.json"))
        detector = build_module(lambda: cls(config), folder / "model.safetensors", folder / "config.json")
        return load_module(detector, folder / "model.safetensors").float().to(device).eval()


def load_bundled_detector(models: str | Path = "speech") -> Detector | None:
    """The detector of a bundle folder (or of the bundled `speech` / `piano` models), None when it has none."""
    from audiolm.generation.pipeline import bundle_folder

    folder = bundle_folder(models)
    if not folder.is_dir():
        raise FileError(folder, "no such model bundle folder")
    return Detector.load(folder / "detector") if (folder / "detector" / "config.json").is_file() else None
