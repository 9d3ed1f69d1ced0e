"""Manifests: one JSON line per utterance (path, duration, rate, speaker, text, split, optional phones).

`scan_folder` builds one for any folder of audio, reading the transcripts and speaker ids of the
LibriSpeech layout (speaker/chapter/speaker-chapter-utt.flac beside speaker-chapter.trans.txt), of
Libri-Light (a .json beside each file naming its speaker) and of our synthetic corpora (a .json beside
each file with speaker, text and phones). Every sample is read (in worker processes, a block at a time)
unless `header_only`; unreadable, empty, NaN / infinite and silent files are listed and counted, never fatal.
Corpora that lhotse has recipes for, and lhotse manifests, convert both ways (`lhotse_interop`).
Paths are stored relative to the manifest's folder where possible, so a corpus folder can move.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

from tqdm import tqdm

from audiolm.audio.io import AudioError, audio_info, check_audio
from audiolm.errors import FileError
from audiolm.formats.atomic import write_jsonl

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".opus", ".mp3"}
SPLITS = ("train", "valid", "test")
SIDECAR_EXTRAS = ("engine", "voice", "phone_set", "index", "source", "midi", "clip_start")  # kept from a synthetic corpus's .json files
_LIBRISPEECH_ID = re.compile(r"^(\d+)-(\d+)-(\d+)$")


@dataclass(kw_only=True)
class Entry:
    id: str
    path: str  # relative to the manifest's folder, or absolute
    duration: float
    sample_rate: int
    num_channels: int = 1
    speaker: str | None = None
    text: str | None = None
    split: str | None = None
    phones: list[list] | None = None  # [[phone, start s, end s], ...] covering the audio
    extra: dict = field(default_factory=dict)

    def audio_path(self, root: str | Path) -> Path:
        """The file's path, resolving a relative `path` against `root` (the manifest's folder)."""
        return Path(self.path) if os.path.isabs(self.path) else Path(root) / self.path

    def to_dict(self) -> dict:
        record = {k: v for k, v in asdict(self).items() if v is not None and k != "extra"}
        record.update(self.extra)
        return record

    @classmethod
    def from_dict(cls, record: dict) -> Entry:
        known = {f for f in cls.__dataclass_fields__ if f != "extra"}
        extra = {k: v for k, v in record.items() if k not in known}
        return cls(**{k: v for k, v in record.items() if k in known}, extra=extra)


@dataclass
class ScanResult:
    entries: list[Entry]
    failures: list[tuple[str, str]]  # (path, problem)


def read_manifest(path: str | Path) -> list[Entry]:
    """Read a JSONL manifest; a malformed line raises a `FileError` naming the file and line."""
    path = Path(path)
    if not path.is_file():
        raise FileError(path, "no such manifest file")
    entries = []
    with open(path, "rb") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                entries.append(_entry(json.loads(line.decode("utf-8"))))
            except (ValueError, TypeError, RecursionError) as error:  # bad UTF-8 or JSON (a half-written line), wrong fields
                raise FileError(path, f"line {number} is not a manifest entry ({error})") from None
    return entries


def _entry(record: object) -> Entry:
    """A manifest line's JSON as an `Entry`, its fields checked; TypeError / ValueError saying what is wrong."""
    if not isinstance(record, dict):
        raise TypeError(f"a JSON {type(record).__name__}, not an object")
    entry = Entry.from_dict(record)  # TypeError for a missing field
    if not isinstance(entry.id, str) or not isinstance(entry.path, str):
        raise TypeError("id and path must be strings")
    if any(v is not None and not isinstance(v, str) for v in (entry.speaker, entry.text, entry.split)):
        raise TypeError("speaker, text and split must be strings")
    if entry.phones is not None and not isinstance(entry.phones, list):
        raise TypeError("phones must be a list")
    if type(entry.duration) not in (int, float) or not math.isfinite(entry.duration) or entry.duration < 0:
        raise ValueError(f"duration must be a number of seconds, got {entry.duration!r}")
    if any(type(v) is not int or v < 1 for v in (entry.sample_rate, entry.num_channels)):
        raise ValueError(f"sample_rate and num_channels must be positive integers, got {entry.sample_rate!r}, {entry.num_channels!r}")
    entry.duration = float(entry.duration)
    return entry


def write_manifest(path: str | Path, entries: Iterable[Entry]) -> int:
    """Write entries atomically, with paths made relative to the manifest's folder where they can be."""
    root = Path(path).resolve().parent
    records = []
    for entry in entries:
        record = entry.to_dict()
        audio = Path(entry.path)
        if audio.is_absolute():
            try:
                record["path"] = str(audio.resolve().relative_to(root))
            except ValueError:
                pass
        records.append(record)
    return write_jsonl(path, records)


def scan_folder(root: str | Path, workers: int = 8, progress: bool = True, header_only: bool = False) -> ScanResult:
    """Find every audio file under `root` and read its samples, transcript and speaker where known.

    Files that are unreadable, empty, hold NaN or infinite samples or are silent become failures
    (the checks of `check_audio`, a block at a time in `workers` processes). `header_only` reads
    headers only: much faster, but NaN, infinite, silent and truncated files then pass.
    """
    root = Path(root)
    if not root.exists():
        raise FileError(root, "no such folder")
    if not root.is_dir():
        raise FileError(root, "is a file, not a folder")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file() and not p.name.startswith("."))
    transcripts = _librispeech_transcripts(root)
    texts = [transcripts.get(p.stem) for p in files]
    describe = partial(_describe, root=root, header_only=header_only)
    workers = max(1, min(workers, len(files)))
    try:
        with ProcessPoolExecutor(workers) as pool:
            chunksize = max(1, min(32, len(files) // (4 * workers)))
            results = list(tqdm(pool.map(describe, files, texts, chunksize=chunksize), total=len(files),
                                desc="scan", unit="file", disable=not progress or not files))
    except BrokenProcessPool:
        raise FileError(root, "a scan worker process died (a file that crashes the decoder?)") from None
    entries = [r for r in results if isinstance(r, Entry)]
    failures = [r for r in results if isinstance(r, tuple)]
    return ScanResult(entries, failures)


def _librispeech_transcripts(root: Path) -> dict[str, str]:
    texts: dict[str, str] = {}
    for path in root.rglob("*.trans.txt"):
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            utt, _, text = line.partition(" ")
            if text:
                texts[utt] = text.strip()
    return texts


def _describe(path: Path, text: str | None, root: Path, header_only: bool) -> Entry | tuple[str, str]:
    """The file's entry, or (path, problem) when it fails the checks; runs in a worker process."""
    try:
        info = audio_info(path) if header_only else check_audio(path)
    except AudioError as error:
        return str(path), error.problem
    if info.num_frames == 0:
        return str(path), "empty audio (no samples)"
    relative = path.relative_to(root)
    entry = Entry(id=_entry_id(relative), path=str(path.resolve()), duration=info.duration,
                  sample_rate=info.sample_rate, num_channels=info.num_channels)
    sidecar = path.with_suffix(".json")
    meta = _read_sidecar(sidecar) if sidecar.is_file() else {}
    librispeech = _LIBRISPEECH_ID.match(path.stem)
    entry.speaker = str(meta["speaker"]) if meta.get("speaker") is not None else (
        librispeech.group(1) if librispeech else (relative.parts[0] if len(relative.parts) > 1 else None))
    entry.text = meta.get("text") or text
    entry.phones = meta.get("phones")
    entry.id = str(meta.get("id", entry.id))
    entry.extra = {k: meta[k] for k in SIDECAR_EXTRAS if k in meta}
    if meta.get("split") in SPLITS:
        entry.split = meta["split"]
    return entry


def _read_sidecar(path: Path) -> dict:
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return meta if isinstance(meta, dict) else {}


def _entry_id(relative: Path) -> str:
    return "/".join(relative.with_suffix("").parts)


def split_by_speaker(
    entries: list[Entry], valid_fraction: float = 0.05, test_fraction: float = 0.05, seed: int = 0
) -> dict[str, list[Entry]]:
    """Assign whole speakers to train / valid / test (entries already carrying a split keep it, and
    the rest of that speaker's entries join them).

    Entries without a speaker each count as their own speaker. Held-out fractions are of speakers,
    at least one speaker each when there are three or more.
    """
    if not 0 <= valid_fraction < 1 or not 0 <= test_fraction < 1 or valid_fraction + test_fraction >= 1:
        raise ValueError("valid and test fractions must be in [0, 1) and sum to less than 1")
    preset = {e.speaker or e.id: e.split for e in entries if e.split in SPLITS}  # a speaker's other entries follow it
    speakers = sorted({e.speaker or e.id for e in entries} - set(preset))
    random.Random(seed).shuffle(speakers)
    n = len(speakers)
    n_test = max(1, round(test_fraction * n)) if n >= 3 and test_fraction > 0 else 0
    n_valid = max(1, round(valid_fraction * n)) if n >= 3 and valid_fraction > 0 else 0
    assign = {s: "test" for s in speakers[:n_test]}
    assign.update({s: "valid" for s in speakers[n_test:n_test + n_valid]})
    assign.update(preset)
    out: dict[str, list[Entry]] = {split: [] for split in SPLITS}
    for entry in entries:
        if entry.split not in SPLITS:
            entry.split = assign.get(entry.speaker or entry.id, "train")
        out[entry.split].append(entry)
    return out


def write_split_manifests(path: str | Path, entries: list[Entry]) -> dict[str, Path]:
    """Write `path` (all entries) and `<stem>.<split>.jsonl` beside it for each split."""
    path = Path(path)
    write_manifest(path, entries)
    written = {"all": path}
    for split in SPLITS:
        split_path = path.with_name(f"{path.stem}.{split}{path.suffix}")
        write_manifest(split_path, [e for e in entries if e.split == split])
        written[split] = split_path
    return written


def summarize(entries: list[Entry]) -> dict:
    """Hours, utterances and speakers, overall and per split."""
    def stats(group: list[Entry]) -> dict:
        return {
            "hours": round(sum(e.duration for e in group) / 3600, 4),
            "utterances": len(group),
            "speakers": len({e.speaker for e in group if e.speaker is not None}),
        }

    summary = {"all": stats(entries)}
    for split in SPLITS:
        group = [e for e in entries if e.split == split]
        if group:
            summary[split] = stats(group)
    return summary


def format_summary(summary: dict) -> str:
    lines = [f"{'split':<7} {'hours':>8} {'utterances':>11} {'speakers':>9}"]
    for name, s in summary.items():
        lines.append(f"{name:<7} {s['hours']:>8.3f} {s['utterances']:>11d} {s['speakers']:>9d}")
    return "\n".join(lines)
