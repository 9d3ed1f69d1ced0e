"""Measuring the detector: accuracy, equal error rate and AUC per kind of generated audio, per source and after each
everyday transformation (audiolm/audio/everyday.py), against the paper's 98.6 % accuracy.

    items = corpus_items("data/detect/manifest.jsonl", "test")
    report = evaluate_detector(Detector.load("models/speech/detector"), items)
    print(format_report(report))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from audiolm.audio.everyday import crop, gained, mp3, noisy, opus, resampled
from audiolm.audio.io import load_audio
from audiolm.data.manifest import read_manifest
from audiolm.detector.metrics import BinaryMetrics, binary_metrics
from audiolm.detector.model import Detector

PAPER_ACCURACY = 0.986  # AudioLM, section 7: its classifier on generated vs original speech

TRANSFORMS: dict[str, Callable[[np.ndarray, np.random.Generator], np.ndarray]] = {
    "none": lambda x, rng: x,
    "Opus 16 kbps": lambda x, rng: opus(x, 16),
    "Opus 32 kbps": lambda x, rng: opus(x, 32),
    "MP3 32 kbps": lambda x, rng: mp3(x, 32),
    "MP3 128 kbps": lambda x, rng: mp3(x, 128),
    "resample 8 kHz": lambda x, rng: resampled(x, 8000),
    "resample 22.05 kHz": lambda x, rng: resampled(x, 22050),
    "noise 20 dB SNR": lambda x, rng: noisy(x, rng, 20.0),
    "gain -10 dB": lambda x, rng: gained(x, -10.0),
    "crop 1 s": lambda x, rng: crop(x, rng, 1.0),
}


@dataclass
class Item:
    name: str
    wav: np.ndarray  # [L] float32 at 16 kHz
    label: int  # 1: generated
    kind: str  # "original" or the generated kind
    group: str  # where it comes from, e.g. "speech test speakers"


@dataclass
class DetectorReport:
    by_kind: dict[str, BinaryMetrics]  # each generated kind against every original, unprocessed
    by_group: dict[str, BinaryMetrics]  # each group's originals and generated items, unprocessed
    by_transform: dict[str, BinaryMetrics]  # every item after the transformation
    detection_rate: dict[str, tuple[float, float]]  # transform -> (share of generated flagged, share of originals flagged)


def corpus_items(manifest: str | Path, split: str = "test", group: str = "") -> list[Item]:
    """A detection corpus's `split` (audiolm/detector/data.py) as items, grouped by source unless `group` is given."""
    manifest = Path(manifest)
    return [Item(e.id, load_audio(e.audio_path(manifest.parent), 16000)[0].numpy(), int(e.extra["label"]), e.extra["kind"],
                 group or f"{e.extra.get('source', manifest.parent.name)} {split} speakers")
            for e in read_manifest(manifest) if e.split == split]


def evaluate_detector(detector: Detector, items: list[Item], transforms: dict | None = None, seed: int = 0,
                      progress: bool = True) -> DetectorReport:
    transforms = TRANSFORMS if transforms is None else transforms
    labels = np.array([item.label for item in items])
    scores: dict[str, np.ndarray] = {}
    for name, transform in transforms.items():
        rng = np.random.default_rng(seed)
        logits = []
        for item in tqdm(items, desc=f"detector: {name}", unit="item", disable=not progress):
            logits.append(detector.logit(torch.from_numpy(np.ascontiguousarray(transform(item.wav, rng), dtype=np.float32))))
        scores[name] = np.array(logits)
    plain = scores.get("none", next(iter(scores.values())))
    kinds = np.array([item.kind for item in items])
    groups = np.array([item.group for item in items])
    originals = kinds == "original"
    by_kind = {kind: binary_metrics(plain[originals | (kinds == kind)], labels[originals | (kinds == kind)])
               for kind in dict.fromkeys(kinds[~originals])}
    by_group = {group: binary_metrics(plain[groups == group], labels[groups == group]) for group in dict.fromkeys(groups)
                if len(set(labels[groups == group])) == 2}
    by_transform = {name: binary_metrics(s, labels) for name, s in scores.items()}
    rates = {name: (float(np.mean(s[labels == 1] > 0)), float(np.mean(s[labels == 0] > 0))) for name, s in scores.items()}
    return DetectorReport(by_kind, by_group, by_transform, rates)


def format_report(report: DetectorReport) -> str:
    def row(name: str, m: BinaryMetrics) -> str:
        return f"| {name} | {m.count} | {100 * m.accuracy:.1f} % | {100 * m.eer:.1f} % | {m.auc:.4f} |"

    head = "| {} | items | accuracy | EER | AUC |\n|---|---:|---:|---:|---:|"
    parts = ["Each kind of generated audio against every original (no processing):", "", head.format("kind"),
             *(row(k, m) for k, m in report.by_kind.items()), "", "By source (its originals and what was made of them):", "",
             head.format("source"), *(row(g, m) for g, m in report.by_group.items()), "",
             "After everyday processing (every item; flagged = P(generated) > 0.5):", "",
             "| processing | items | accuracy | EER | AUC | generated flagged | originals flagged |", "|---|---:|---:|---:|---:|---:|---:|"]
    for name, m in report.by_transform.items():
        caught, false = report.detection_rate[name]
        parts.append(f"{row(name, m)} {100 * caught:.1f} % | {100 * false:.1f} % |")
    return "\n".join(parts)
