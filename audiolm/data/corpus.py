"""What the synthetic corpora share: a folder that remembers its settings, items found on resume,
and the manifests and summary written when a build ends.

A corpus folder holds `corpus.json` (its settings), `audio/` (each item's audio with a `.json`
sidecar written last, as its commit marker), `manifest.jsonl` with per-split manifests, and
`summary.json`.
"""

from __future__ import annotations

import json
from pathlib import Path

from audiolm.data.manifest import read_manifest, scan_folder, summarize, write_split_manifests
from audiolm.errors import AudiolmError
from audiolm.formats.atomic import write_json


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
    write_json(corpus_file, {"config": config, "identity": identity, **description})


def existing_items(out_dir: Path) -> dict[int, float]:
    """Seconds of audio already written per item index (an item may have several clips)."""
    done: dict[int, float] = {}
    for meta_path in (out_dir / "audio").rglob("*.json"):
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            index, duration = int(meta["index"]), float(meta["duration"])
        except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError):
            continue
        if meta_path.with_suffix(".wav").is_file():
            done[index] = done.get(index, 0.0) + duration
    return done


def finish_corpus(out_dir: Path, **extra) -> dict:
    """Write the manifests from the sidecars and `summary.json`; return the summary."""
    entries = scan_folder(out_dir / "audio", progress=False).entries
    write_split_manifests(out_dir / "manifest.jsonl", entries)
    summary = {**summarize(read_manifest(out_dir / "manifest.jsonl")), **extra}
    write_json(out_dir / "summary.json", summary)
    return summary
