"""A tiny manifest of harmonic tones for codec and training-loop tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from audiolm.audio.io import save_audio
from audiolm.data.manifest import Entry, write_manifest


def tone_manifest(folder: Path, count: int = 6, seconds: float = 1.0, sample_rate: int = 16000) -> Path:
    """`count` 1-second harmonic tones (different pitches), the last one in the valid split."""
    rng = np.random.default_rng(0)
    entries = []
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    for i in range(count):
        f0 = 110 * 2 ** (i / 4)
        wav = sum(rng.uniform(0.1, 0.3) * np.sin(2 * np.pi * f0 * h * t + rng.uniform(0, 6)) for h in range(1, 5))
        wav = (wav * np.minimum(1, t * 20)).astype(np.float32)
        path = save_audio(folder / f"tone{i}.wav", wav, sample_rate)
        entries.append(Entry(id=f"tone{i}", path=str(path), duration=seconds, sample_rate=sample_rate,
                             speaker=f"s{i}", split="valid" if i == count - 1 else "train"))
    manifest = folder / "manifest.jsonl"
    write_manifest(manifest, entries)
    return manifest
