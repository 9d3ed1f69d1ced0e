"""Mix corpora into one manifest: `audiolm data mix --source [NAME=]PATH[:WEIGHT] ... -o mixed/manifest.jsonl`.

Each source is a manifest, or a corpus folder (its `manifest.jsonl`; a synthetic corpus still being built has none
yet, and then its complete items so far are read from their sidecars, so a growing corpus can be mixed as it
stands). The source's name (NAME, default the folder holding the manifest) namespaces its speakers and ids
(`real/queen-spk08`), so two corpora's `s1` never merge, and is recorded in each entry as `corpus`; each entry
keeps its `source` (the name where it has none). Every entry gets its source's `weight` (times any weight it
already had): training draws a clip with probability proportional to its duration times its weight (`AudioClips`),
so a weight of 2 counts each second of that source twice, as repeating it twice in the manifest would, without
duplicating entries; a source's share of the training crops is weight x hours / sum(weight x hours).

Splits stay speaker-disjoint across sources: an entry keeps the split its source gave it (held-out speakers stay
held out); a source without splits is split by speaker here (`split_by_speaker`, per source); a source whose
manifest puts one speaker in two splits is refused. The entries of the sources are interleaved (each spread evenly
over the manifest), so any prefix of it (`data.max_hours`) holds every source in proportion. Audio paths are
written relative to the new manifest's folder (`../real/audio/...`), so the folder of corpora can move as a whole.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from pathlib import Path

from audiolm.data.manifest import SPLITS, Entry, read_manifest, scan_folder, split_by_speaker, summarize
from audiolm.errors import AudiolmError, FileError

MAX_WEIGHT = 1000.0


@dataclass(frozen=True)
class MixSource:
    path: Path  # a manifest, or a corpus folder
    weight: float = 1.0
    name: str = ""  # default: the name of the folder that holds the manifest

    @property
    def label(self) -> str:
        return self.name or self.manifest.resolve().parent.name

    @property
    def manifest(self) -> Path:
        return self.path / "manifest.jsonl" if self.path.is_dir() else self.path


def parse_source(text: str) -> MixSource:
    """`[NAME=]PATH[:WEIGHT]` (the last `:` separates the weight, a number in (0, 1000]; default 1)."""
    name, sep, rest = text.partition("=")
    if not sep or "/" in name or not name:
        name, rest = "", text
    path, colon, weight_text = rest.rpartition(":")
    if not colon:
        path, weight_text = rest, "1"
    try:
        weight = float(weight_text)
    except ValueError:
        raise AudiolmError(f"--source {text!r}: the weight after the last ':' must be a number, got {weight_text!r}") from None
    if not math.isfinite(weight) or not 0 < weight <= MAX_WEIGHT:
        raise AudiolmError(f"--source {text!r}: the weight must be above 0 and at most {MAX_WEIGHT:g}, got {weight_text}")
    if not path:
        raise AudiolmError(f"--source {text!r}: no path")
    return MixSource(Path(path), weight, name)


def read_source(source: MixSource) -> list[Entry]:
    """The entries of a source, with paths made absolute: its manifest, or the complete items of a corpus folder
    without one (a build in progress: a sidecar is written after its audio, so an item with one is complete)."""
    path = source.path
    if path.is_dir() and not (path / "manifest.jsonl").is_file():
        if not (path / "corpus.json").is_file() or not (path / "audio").is_dir():
            raise FileError(path, "is a folder without manifest.jsonl or a corpus being built (corpus.json, audio/)")
        entries = [e for e in scan_folder(path / "audio", workers=2, progress=False).entries if "index" in e.extra]
        root = path
    else:
        entries = read_manifest(source.manifest)
        root = source.manifest.parent
    if not entries:
        raise FileError(source.manifest, "holds no entries")
    for entry in entries:
        entry.path = str(entry.audio_path(root).resolve())
    return entries


def mix(sources: list[MixSource], output: str | Path, seed: int = 0, valid_fraction: float = 0.05,
        test_fraction: float = 0.05) -> list[Entry]:
    """The entries of the mixed manifest to be written at `output` (see the module's docstring); the held-out
    fractions and seed split only the sources that carry no splits."""
    if not sources:
        raise AudiolmError("data mix: name at least one --source")
    manifests = [s.manifest.resolve() for s in sources]
    for i, manifest in enumerate(manifests):
        if manifests.index(manifest) != i:
            raise FileError(sources[i].path, "is given twice")
    names = [s.label for s in sources]
    for name in names:
        if names.count(name) > 1:
            raise AudiolmError(f"two sources are named {name!r}: name them, e.g. --source {name}-2=PATH:WEIGHT")
    root = Path(output).resolve().parent
    groups = []
    for source in sources:
        entries = read_source(source)
        _check_disjoint(source, entries)
        if any(e.split not in SPLITS for e in entries):
            split_by_speaker(entries, valid_fraction, test_fraction, seed)
        groups.append([_namespaced(e, source, root) for e in entries])
    placed = [((k + 0.5) / len(group), i, k) for i, group in enumerate(groups) for k in range(len(group))]
    return [groups[i][k] for _, i, k in sorted(placed)]


def _check_disjoint(source: MixSource, entries: list[Entry]) -> None:
    splits: dict[str, str] = {}
    for entry in entries:
        if entry.speaker is None or entry.split not in SPLITS:
            continue
        first = splits.setdefault(entry.speaker, entry.split)
        if first != entry.split:
            raise FileError(source.manifest, f"speaker {entry.speaker!r} is in both the {first} and the {entry.split} split")


def _namespaced(entry: Entry, source: MixSource, root: Path) -> Entry:
    name = source.label
    weight = entry.extra.get("weight", 1.0)
    if type(weight) not in (int, float) or not math.isfinite(weight) or weight < 0:
        raise FileError(source.manifest, f"entry {entry.id!r}: weight must be a non-negative number, got {weight!r}")
    extra = {**entry.extra, "source": entry.extra.get("source") or name, "corpus": name, "weight": round(weight * source.weight, 6)}
    return replace(entry, id=f"{name}/{entry.id}", speaker=f"{name}/{entry.speaker}" if entry.speaker is not None else None,
                   path=os.path.relpath(entry.path, root), extra=extra)


def summarize_sources(entries: list[Entry]) -> dict[str, dict]:
    """`summarize` per source (an entry's `source`, else its `corpus`, else "-"), with each source's share of the
    training crops under the entries' weights (`train_share`)."""
    by_source: dict[str, list[Entry]] = {}
    for entry in entries:
        by_source.setdefault(str(entry.extra.get("source") or entry.extra.get("corpus") or "-"), []).append(entry)
    weighted = {name: sum(e.duration * _weight(e) for e in group if e.split == "train") for name, group in by_source.items()}
    total = sum(weighted.values())
    return {name: {**summarize(group), "train_share": weighted[name] / total if total else 0.0}
            for name, group in sorted(by_source.items())}


def format_sources(summary: dict[str, dict]) -> str:
    lines = [f"{'source':<28} {'split':<6} {'hours':>8} {'utterances':>11} {'speakers':>9} {'train share':>12}"]
    for name, rows in summary.items():
        for split, s in rows.items():
            if split == "train_share":
                continue
            share = f"{rows['train_share']:>12.3f}" if split == "train" else ""
            label = name if split == "all" else ""
            lines.append(f"{label:<28} {split:<6} {s['hours']:>8.3f} {s['utterances']:>11d} {s['speakers']:>9d} {share}".rstrip())
    return "\n".join(lines)


def _weight(entry: Entry) -> float:
    weight = entry.extra.get("weight", 1.0)
    return float(weight) if type(weight) in (int, float) and math.isfinite(weight) and weight >= 0 else 1.0
