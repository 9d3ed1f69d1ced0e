"""What the synthetic corpora share: a folder that remembers its settings, items found on resume,
and the manifests and summary written when a build ends.

A corpus folder holds `corpus.json` (its settings), `audio/` (each item's audio with a `.json`
sidecar written last, as its commit marker; an item of several clips is complete once all of them have
theirs), `manifest.jsonl` with per-split manifests, and `summary.json`.

The corpus is items 0, 1, 2, ... up to the first n that hold the hours asked for (`prefix`): a build
makes them in any order, and may make a few more, but the manifests list exactly these, so a build that
was killed and run again, or run with other workers, lists the same items. A kill leaves at most
temporaries and items without sidecars, which the next build removes or makes again.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from pathlib import Path

from audiolm.data.manifest import read_manifest, scan_folder, summarize, write_split_manifests
from audiolm.errors import AudiolmError
from audiolm.formats.atomic import remove_temporaries, write_json


def claim_folder(out_dir: Path, config: dict, identity: dict, **description) -> None:
    """Record `config` in `out_dir/corpus.json`, refusing a folder built under another `identity`.

    `identity` is the part of the settings that fixes each item's content (everything but the hours).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    corpus_file = out_dir / "corpus.json"
    if corpus_file.exists():
        try:
            recorded = json.loads(corpus_file.read_text(encoding="utf-8"))
            previous = recorded.get("identity") or {k: v for k, v in recorded["config"].items() if k != "hours"}
        except (OSError, json.JSONDecodeError, KeyError, TypeError, AttributeError):
            raise AudiolmError(f"{corpus_file}: unreadable corpus description; remove it or use another folder") from None
        if previous != identity:
            raise AudiolmError(f"{corpus_file}: this folder holds a corpus built with other settings ({previous}); use another folder")
    remove_temporaries(out_dir, safetensors=False, recursive=True)  # what a killed build was writing
    write_json(corpus_file, {"config": config, "identity": identity, **description})


def existing_items(out_dir: Path) -> dict[int, float]:
    """Seconds of audio per complete item index (an item may have several clips: complete when the sidecars of
    all `clips` of it are there; sidecars without `clips` are items of one clip)."""
    seconds: dict[int, float] = {}
    found: dict[int, int] = {}
    expected: dict[int, int] = {}
    for meta_path in (out_dir / "audio").rglob("*.json"):
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            index, duration, clips = int(meta["index"]), float(meta["duration"]), int(meta.get("clips", 1))
        except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
            continue
        if meta_path.with_suffix(".wav").is_file():
            seconds[index] = seconds.get(index, 0.0) + duration
            found[index] = found.get(index, 0) + 1
            expected[index] = clips
    return {index: s for index, s in seconds.items() if found[index] >= expected[index]}


def prefix(done: dict[int, float], skipped: Collection[int], target: float, n: int = 0, total: float = 0.0) -> tuple[int, float]:
    """(n, seconds) of the items 0..n-1 that make the corpus: the shortest run holding `target` seconds, or, while the
    build goes on, the longest run made so far (each item in it done, or skipped: failed, holding nothing). Items are
    only ever added, so a previous (n, seconds) is a valid start."""
    while total < target and (n in done or n in skipped):
        total += done.get(n, 0.0)
        n += 1
    return n, total


def finish_corpus(out_dir: Path, items: range, **extra) -> dict:
    """Write the manifests of `items` (from their sidecars) and `summary.json`; return the summary."""
    entries = [e for e in scan_folder(out_dir / "audio", progress=False).entries if e.extra.get("index") in items]
    write_split_manifests(out_dir / "manifest.jsonl", entries)
    summary = {**summarize(read_manifest(out_dir / "manifest.jsonl")), **extra}
    write_json(out_dir / "summary.json", summary)
    return summary
