"""Training the generated-speech detector (audiolm/detector/model.py) through the shared loop.

Each step's global batch is half originals, half generated items (audiolm/detector/data.py), alternating so that every
process's slice has both, one `window_seconds` crop each, drawn in proportion to length like every other audio batch;
a share `augment_p` of the crops goes through one everyday transformation (audiolm/audio/everyday.py: Opus, MP3,
resampling, noise, gain), seeded by the step, so that the verdict holds after the processing audio meets on its way.
Loss: binary cross-entropy. Validation: accuracy, equal error rate and AUC on the first window of every valid-split
item.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from audiolm.audio.everyday import random_processing
from audiolm.data.datasets import AudioClips, step_generator
from audiolm.detector.metrics import binary_metrics
from audiolm.detector.model import Detector, DetectorConfig
from audiolm.errors import AudiolmError
from audiolm.train.loop import OptimizerConfig, TrainConfig


@dataclass(kw_only=True)
class DetectorDataConfig:
    manifest: str = ""  # a detection corpus's manifest (`audiolm detector corpus`)
    train_split: str = "train"
    valid_split: str = "valid"


@dataclass(kw_only=True)
class DetectorRunConfig:
    data: DetectorDataConfig = field(default_factory=DetectorDataConfig)
    model: DetectorConfig = field(default_factory=DetectorConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(steps=2000, batch_size=32, warmup_steps=100, log_every=20,
                                                                   valid_every=250, save_every=250))
    optimizer: OptimizerConfig = field(default_factory=lambda: OptimizerConfig(lr=1e-3, betas=(0.9, 0.99), weight_decay=0.01))
    augment_p: float = 0.5  # share of crops that go through one everyday transformation

    def __post_init__(self) -> None:
        if not 0.0 <= self.augment_p <= 1.0:
            raise ValueError(f"augment_p must be in [0, 1], got {self.augment_p}")


def labelled_clips(manifest: str | Path, split: str, sample_rate: int, progress: bool = False) -> tuple[AudioClips, AudioClips]:
    """The originals and the generated items of `manifest`'s `split`."""
    pools = tuple(AudioClips(manifest, sample_rate, split, progress=progress, where=lambda e, label=label: e.extra.get("label") == label)
                  for label in (0, 1))
    return pools  # type: ignore[return-value]


class DetectorTask:
    def __init__(self, config: DetectorRunConfig, progress: bool = False) -> None:
        self.config = config
        rate = config.model.sample_rate
        self.real, self.fake = labelled_clips(config.data.manifest, config.data.train_split, rate, progress)
        self.valid = None
        if config.data.valid_split:
            try:
                self.valid = labelled_clips(config.data.manifest, config.data.valid_split, rate, progress)
            except AudiolmError:  # no validation split: validation scores training windows
                self.valid = None
        self.detector = Detector(config.model)

    def modules(self) -> dict[str, nn.Module]:
        return {"detector": self.detector}

    def optimizers(self) -> dict[str, tuple[list[str], OptimizerConfig]]:
        return {"detector": (["detector"], self.config.optimizer)}

    def batch(self, step: int, start: int, stop: int) -> dict[str, torch.Tensor]:
        config = self.config
        generator = step_generator(config.train.seed, step)
        half = config.train.batch_size // 2
        size = config.model.window
        wav = torch.cat([self.real.crops(half, size, generator), self.fake.crops(config.train.batch_size - half, size, generator)])
        label = torch.cat([torch.zeros(half), torch.ones(config.train.batch_size - half)])
        order = torch.stack([torch.arange(half), torch.arange(half, 2 * half)], dim=1).flatten().tolist()
        order += list(range(2 * half, config.train.batch_size))  # originals and generated alternate: every slice has both
        wav, label = wav[order], label[order]
        seeds = torch.randint(0, 2**31 - 1, (config.train.batch_size,), generator=generator).tolist()
        wav, label = wav[start:stop].clone(), label[start:stop]
        if config.augment_p > 0:
            for i, seed in enumerate(seeds[start:stop]):
                processed, _ = random_processing(wav[i, 0].numpy(), np.random.default_rng(seed), config.augment_p)
                wav[i, 0] = torch.from_numpy(np.ascontiguousarray(processed, dtype=np.float32))
        return {"wav": wav, "label": label}

    def losses(self, batch: dict, models: dict[str, nn.Module], step: int) -> Iterator[tuple[str, torch.Tensor, dict[str, float]]]:
        logits = models["detector"](batch["wav"])
        loss = nn.functional.binary_cross_entropy_with_logits(logits.float(), batch["label"])
        accuracy = ((logits > 0).float() == batch["label"]).float().mean()
        yield "detector", loss, {"detector/bce": loss.item(), "detector/accuracy": accuracy.item()}

    @torch.no_grad()
    def validate(self, models: dict[str, nn.Module], step: int) -> dict[str, float]:
        detector: Detector = models["detector"]
        device = next(detector.parameters()).device
        real, fake = self.valid or (self.real, self.fake)
        size = self.config.model.window
        scores, labels = [], []
        for label, pool in ((0, real), (1, fake)):
            for wav in pool.fixed(len(pool), size):
                window = nn.functional.pad(wav, (0, size - wav.shape[-1]))
                scores.append(float(detector(window.to(device))[0]))
                labels.append(label)
        metrics = binary_metrics(np.array(scores), np.array(labels))
        return {"detector/accuracy": metrics.accuracy, "detector/eer": metrics.eer, "detector/auc": metrics.auc}

    def export(self, models: dict[str, nn.Module], run_dir: Path) -> None:
        models["detector"].save(run_dir / "model")


def train_detector(preset: str | None, run_dir: str | Path, overrides: list[str] | None = None, progress: bool = True,
                   stop_after: int | None = None):
    """Train (or resume) the detector from `key=value` overrides (and a YAML preset, if given) into `run_dir`; the final
    model lands in `run_dir/model/`."""
    from audiolm.formats.config import load_config
    from audiolm.train.loop import train

    config = load_config(DetectorRunConfig, preset, overrides)
    if not config.data.manifest:
        raise AudiolmError("no training data: pass --data (a detection corpus's manifest.jsonl)")
    if config.train.batch_size < 2:
        raise AudiolmError("train.batch_size must be at least 2 (half originals, half generated)")
    torch.manual_seed(config.train.seed)  # the model's initial weights
    task = DetectorTask(config, progress=progress)
    return train(task, config.train, run_dir, {"kind": "detector-run", **asdict(config)}, progress=progress, stop_after=stop_after)
