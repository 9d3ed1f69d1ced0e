"""Writing files so that nothing is ever half-written: write to a temporary name, then rename."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from audiolm.errors import FileError


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success rename it to `path`, on error delete it.

    The temporary name keeps the suffix, so libraries that pick a format from it still work.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give what a plain open() would
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | Path, obj: object) -> None:
    write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def write_jsonl(path: str | Path, records: Iterable[dict]) -> int:
    """Write one JSON object per line; return how many."""
    count = 0
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    return count


def remove_temporaries(folder: str | Path, stems: Iterable[str] | None = None, *, safetensors: bool = True,
                       recursive: bool = False) -> None:
    """Delete what a killed writer left in `folder`: `atomic_path`'s `.<stem>.*.tmp*` files (of `stems` only, or of
    every name) and, with `safetensors`, the `.tmp*` files safetensors writes through. Call it only where no other
    process is writing those files now (at the start of a resumable job, or by the one process that owns them)."""
    folder = Path(folder)
    patterns = [".*.tmp*"] if stems is None else [f".{stem}.*.tmp*" for stem in stems]
    if safetensors:
        patterns.append(".tmp*")
    for pattern in patterns:
        for path in (folder.rglob(pattern) if recursive else folder.glob(pattern)):
            if path.is_file():
                path.unlink(missing_ok=True)


def check_writable(path: str | Path) -> None:
    """Refuse, before any work, an output path that cannot be written: one under a regular file, or under a folder
    this process may not write to (`FileError` naming that ancestor). Nothing is created."""
    path = Path(path)
    for ancestor in path.absolute().parents:
        if ancestor.exists():
            if not ancestor.is_dir():
                raise FileError(ancestor, f"is a file, not a folder: cannot write {path} under it")
            if not os.access(ancestor, os.W_OK | os.X_OK):
                raise FileError(ancestor, f"is not writable: cannot write {path}")
            return
