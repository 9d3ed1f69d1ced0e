"""Audio for training, held in memory and cropped by a step-seeded generator.

`AudioClips` loads a manifest's audio once (16-bit, so one hour of 16 kHz speech is 115 MB) and
draws batches as a pure function of (seed, step): any process can build example i of step s's
global batch without the others, which makes distributed training and exact resume simple. A clip is drawn with
probability proportional to its length times its entry's `weight` (1 where the manifest gives none; see
audiolm/data/mix.py), so a mixed corpus's sources are heard in the proportions its weights set.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from audiolm.audio.io import AudioError, load_audio
from audiolm.data.manifest import Entry, read_manifest
from audiolm.errors import AudiolmError, FileError


class AudioClips:
    """The audio of a manifest (optionally one split, and only the entries `where` accepts), as int16 at `sample_rate`."""

    def __init__(self, manifest: str | Path, sample_rate: int = 16000, split: str | None = None,
                 max_hours: float | None = None, progress: bool = False, where: Callable[[Entry], bool] | None = None) -> None:
        manifest = Path(manifest)
        entries = [e for e in read_manifest(manifest) if (split is None or e.split == split) and (where is None or where(e))]
        self.sample_rate = sample_rate
        self.clips: list[np.ndarray] = []
        self.speakers: list[str] = []  # each clip's speaker ("" where the manifest names none)
        sampling: list[float] = []  # each clip's entry weight
        self.skipped: list[str] = []
        total = 0.0
        for entry in tqdm(entries, desc=f"load {manifest.name}", unit="file", disable=not progress):
            if max_hours is not None and total >= max_hours * 3600:
                break
            try:
                wav = load_audio(entry.audio_path(manifest.parent), sample_rate, offset=float(entry.extra.get("offset", 0.0)),
                                 duration=entry.duration if "offset" in entry.extra else None)
            except AudioError as error:
                self.skipped.append(str(error))
                continue
            self.clips.append((wav[0].numpy().clip(-1, 1) * 32767).astype(np.int16))
            self.speakers.append(entry.speaker or "")
            sampling.append(_weight(entry.extra.get("weight", 1.0), manifest, entry.id))
            total += wav.shape[-1] / sample_rate
        if not self.clips:
            where = f" (split {split})" if split else ""
            raise AudiolmError(f"{manifest}: no readable audio{where}")
        self._set_weights(sampling, manifest)

    @classmethod
    def from_clips(cls, clips: list[np.ndarray], speakers: list[str], weights: list[float], sample_rate: int,
                   name: str) -> AudioClips:
        """Clips already in memory (int16, scaled by 32767), e.g. read from audio shards; `name` for messages."""
        self = cls.__new__(cls)
        self.sample_rate, self.clips, self.speakers, self.skipped = sample_rate, list(clips), list(speakers), []
        self._set_weights(weights, name)
        return self

    def _set_weights(self, sampling: list[float], source: str | Path) -> None:
        lengths = np.array([len(c) for c in self.clips], dtype=np.float64)
        weighted = lengths * np.array(sampling)
        if not weighted.sum() > 0:
            raise FileError(source, "every clip has weight 0")
        self.weights = weighted / weighted.sum()  # [N]: the probability of drawing each clip
        self.seconds = float(lengths.sum()) / self.sample_rate

    def __len__(self) -> int:
        return len(self.clips)

    def crops(self, count: int, num_samples: int, generator: torch.Generator) -> torch.Tensor:
        """`count` random crops `[count, 1, num_samples]` float32; clips are drawn in proportion to their length
        times their weight, and shorter clips are zero-padded."""
        picks = torch.multinomial(torch.from_numpy(self.weights), count, replacement=True, generator=generator).tolist()
        out = torch.zeros(count, 1, num_samples)
        for i, index in enumerate(picks):
            clip = self.clips[index]
            start = int(torch.randint(0, max(1, len(clip) - num_samples + 1), (1,), generator=generator))
            piece = clip[start:start + num_samples]
            out[i, 0, : len(piece)] = torch.from_numpy(piece.astype(np.float32) / 32767)
        return out

    def fixed(self, count: int, max_samples: int) -> list[torch.Tensor]:
        """`count` clips taken from each speaker in turn (a manifest lists a speaker's clips together, so the first
        `count` would often be one voice), each cut to at most `max_samples`, as `[1, 1, L]` (validation, benchmarks)."""
        by_speaker: dict[str, list[int]] = {}
        for index, speaker in enumerate(self.speakers):
            by_speaker.setdefault(speaker, []).append(index)
        queues = list(by_speaker.values())
        order = [queue[i] for i in range(max(map(len, queues))) for queue in queues if i < len(queue)]
        return [torch.from_numpy(self.clips[i][:max_samples].astype(np.float32) / 32767)[None, None] for i in order[:count]]


def _weight(value: object, manifest: Path, entry_id: str) -> float:
    if type(value) not in (int, float) or not math.isfinite(value) or value < 0:
        raise FileError(manifest, f"entry {entry_id!r}: weight must be a non-negative number, got {value!r}")
    return float(value)


def step_generator(seed: int, step: int) -> torch.Generator:
    """The generator that draws step `step`'s global batch."""
    return torch.Generator().manual_seed(seed * 1_000_003 + step)
