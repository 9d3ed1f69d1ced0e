"""Our manifests to and from lhotse: its recipes prepare LibriSpeech, Libri-Light, MAESTRO and ~90 more
corpora from local folders, and its CutSets are what many speech toolkits read.

Phone alignments travel as lhotse's `alignment={"phone": [...]}` on each supervision.
"""

from __future__ import annotations

import inspect
from pathlib import Path

from audiolm.data.manifest import Entry
from audiolm.errors import AudiolmError, FileError
from audiolm.formats.atomic import atomic_path


def to_cuts(entries: list[Entry], root: str | Path):
    """A lhotse CutSet with one recording, one supervision (text, speaker, phones) and one cut per entry."""
    from lhotse import AudioSource, CutSet, MonoCut, Recording, SupervisionSegment
    from lhotse.supervision import AlignmentItem

    cuts = []
    for e in entries:
        path = str(e.audio_path(root).resolve())
        recording = Recording(id=e.id, sources=[AudioSource(type="file", channels=list(range(e.num_channels)), source=path)],
                              sampling_rate=e.sample_rate, num_samples=round(e.duration * e.sample_rate), duration=e.duration)
        alignment = {"phone": [AlignmentItem(p, s, round(t - s, 6)) for p, s, t in e.phones]} if e.phones else None
        custom = {"split": e.split} if e.split else None
        supervision = SupervisionSegment(id=e.id, recording_id=e.id, start=0.0, duration=e.duration, text=e.text,
                                         speaker=e.speaker, alignment=alignment, custom=custom)
        cuts.append(MonoCut(id=e.id, start=0.0, duration=e.duration, channel=0, recording=recording, supervisions=[supervision]))
    return CutSet.from_cuts(cuts)


def write_cuts(entries: list[Entry], root: str | Path, path: str | Path) -> Path:
    """Write a lhotse CutSet manifest (`.jsonl.gz`) atomically."""
    path = Path(path)
    if not path.name.endswith((".jsonl.gz", ".jsonl")):
        raise AudiolmError(f"{path}: a lhotse manifest must end in .jsonl.gz or .jsonl")
    with atomic_path(path) as tmp:
        target = tmp.with_name(tmp.name + (".jsonl.gz" if path.name.endswith(".gz") else ".jsonl"))
        to_cuts(entries, root).to_file(target)
        target.replace(tmp)
    return path


def entries_from_cuts(cuts, split: str | None = None) -> list[Entry]:
    """One entry per cut; a cut that starts inside its recording keeps its `offset` (seconds) in `extra`.

    The entry's id is the recording's when the cut spans it, else its one supervision's, else the cut's.
    """
    entries = []
    for cut in cuts:
        recording = cut.recording
        if recording is None or recording.sources[0].type != "file":
            continue
        sups = list(cut.supervisions)
        texts = [s.text for s in sups if s.text]
        phones = None
        if len(sups) == 1 and sups[0].alignment and "phone" in sups[0].alignment:
            phones = [[a.symbol, round(a.start - cut.start, 6), round(a.end - cut.start, 6)] for a in sups[0].alignment["phone"]]
        custom_split = sups[0].custom.get("split") if sups and sups[0].custom else None
        whole = cut.start == 0 and abs(cut.duration - recording.duration) < 1e-3
        entry_id = recording.id if whole else sups[0].id if len(sups) == 1 else cut.id
        entry = Entry(id=entry_id, path=recording.sources[0].source, duration=cut.duration, sample_rate=cut.sampling_rate,
                      num_channels=len(recording.sources[0].channels), speaker=sups[0].speaker if sups else None,
                      text=" ".join(texts) or None, split=split or custom_split, phones=phones)
        if cut.start > 0:
            entry.extra["offset"] = cut.start
        entries.append(entry)
    return entries


def read_lhotse(path: str | Path, supervisions: str | Path | None = None) -> list[Entry]:
    """Read a lhotse CutSet, or a RecordingSet with an optional SupervisionSet, as our entries."""
    from lhotse import CutSet, RecordingSet, SupervisionSet, load_manifest

    path = Path(path)
    if not path.is_file():
        raise FileError(path, "no such lhotse manifest")
    try:
        manifest = load_manifest(path)
        sups = load_manifest(supervisions) if supervisions else None
    except Exception as error:
        raise FileError(path, f"not a readable lhotse manifest ({type(error).__name__}: {error})") from None
    if isinstance(manifest, RecordingSet):
        if sups is not None and not isinstance(sups, SupervisionSet):
            raise FileError(supervisions, "not a lhotse SupervisionSet")
        manifest = CutSet.from_manifests(recordings=manifest, supervisions=sups)
    if not isinstance(manifest, CutSet):
        raise FileError(path, f"holds a {type(manifest).__name__}; expected a CutSet or RecordingSet")
    return entries_from_cuts(manifest)


def recipe_names() -> list[str]:
    import lhotse.recipes

    return sorted(name.removeprefix("prepare_") for name in dir(lhotse.recipes) if name.startswith("prepare_"))


def from_recipe(name: str, corpus_dir: str | Path, workers: int = 1) -> list[Entry]:
    """Run lhotse's `prepare_<name>` on a local corpus folder; each part's name gives its split."""
    import lhotse.recipes
    from lhotse import CutSet

    prepare = getattr(lhotse.recipes, f"prepare_{name}", None)
    if prepare is None:
        raise AudiolmError(f"lhotse has no recipe {name!r}; known: {', '.join(recipe_names())}")
    kwargs = {"num_jobs": workers} if "num_jobs" in inspect.signature(prepare).parameters else {}
    try:
        parts = prepare(str(corpus_dir), **kwargs)
    except Exception as error:
        raise FileError(corpus_dir, f"lhotse's {name} recipe failed ({type(error).__name__}: {error})") from None
    if parts and "recordings" in parts:
        parts = {"": parts}
    entries: list[Entry] = []
    for part, manifests in (parts or {}).items():
        cuts = CutSet.from_manifests(recordings=manifests["recordings"], supervisions=manifests.get("supervisions"))
        entries += entries_from_cuts(cuts, split=_split_of_part(part))
    return entries


def _split_of_part(part: str) -> str | None:
    lowered = part.lower()
    if "test" in lowered:
        return "test"
    if "dev" in lowered or "valid" in lowered:
        return "valid"
    return "train" if lowered else None
