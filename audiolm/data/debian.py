"""Fetch a Debian package's files without installing it: `apt-get download` into a cache folder, `dpkg -x` beside it.

    root = fetch_package("beneath-a-steel-sky", cache)   # cache/beneath-a-steel-sky/usr/share/...

Nothing changes outside the cache (no install, no dependencies). A package already unpacked there is reused; a
kill mid-way leaves at most a partial folder that the next call removes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from audiolm.errors import AudiolmError

DONE_MARKER = ".unpacked"


def fetch_package(package: str, cache: str | Path) -> Path:
    """The root of `package`'s unpacked files in `cache` (downloading and unpacking them when not there yet)."""
    cache = Path(cache)
    root = cache / package
    if (root / DONE_MARKER).is_file():
        return root
    cache.mkdir(parents=True, exist_ok=True)
    deb = _download(package, cache)
    partial = cache / f".{package}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    try:
        _run(["dpkg-deb", "-x", str(deb), str(partial)], f"cannot unpack {deb.name}")
    except AudiolmError:  # a download cut short: fetch it once more
        deb.unlink(missing_ok=True)
        shutil.rmtree(partial, ignore_errors=True)
        deb = _download(package, cache)
        _run(["dpkg-deb", "-x", str(deb), str(partial)], f"cannot unpack {deb.name}")
    (partial / DONE_MARKER).write_text(deb.name + "\n", encoding="utf-8")
    shutil.rmtree(root, ignore_errors=True)
    os.replace(partial, root)
    return root


def copyright_file(root: Path, package: str) -> Path:
    return root / "usr" / "share" / "doc" / package / "copyright"


def _download(package: str, cache: Path) -> Path:
    found = sorted(cache.glob(f"{package}_*.deb"))
    if found:
        return found[-1]
    if shutil.which("apt-get") is None:
        raise AudiolmError(f"fetching {package} needs apt-get (Debian or Ubuntu); or unpack its .deb into {cache / package}")
    try:
        _run(["apt-get", "download", package], f"apt-get download {package} failed", cwd=cache)
    except AudiolmError:
        if os.geteuid() != 0:
            raise AudiolmError(f"apt-get download {package} failed; run `sudo apt-get update` and try again") from None
        _run(["apt-get", "update"], "apt-get update failed")  # a fresh container knows no packages yet
        _run(["apt-get", "download", package], f"apt-get download {package} failed", cwd=cache)
    found = sorted(cache.glob(f"{package}_*.deb"))
    if not found:
        raise AudiolmError(f"apt-get download {package} left no .deb in {cache}")
    return found[-1]


def _run(command: list[str], problem: str, cwd: Path | None = None) -> None:
    try:
        result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    except OSError as error:
        raise AudiolmError(f"{problem} ({error})") from None
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no message"])[-1]
        raise AudiolmError(f"{problem}: {last}")
