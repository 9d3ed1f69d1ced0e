"""Offline English sentences for the synthetic speech corpus: fortunes, the King James Bible, WordNet examples.

All come from Debian packages (fortunes, bible-kjv, wordnet-base). Sentences are kept to plain ASCII
letters and light punctuation, so that every TTS engine (festival included) can speak them.
"""

from __future__ import annotations

import random
import re
import subprocess
from pathlib import Path

FORTUNES_DIR = Path("/usr/share/games/fortunes")
WORDNET_DIR = Path("/usr/share/wordnet")
FORTUNE_SKIP = {"art", "ascii-art", "translate-me", "perl", "linux", "computers", "debian", "startrek"}
_ALLOWED = re.compile(r"^[A-Za-z][A-Za-z0-9 ,.;:!?'-]*[A-Za-z0-9.!?]$")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")


def clean_sentence(text: str, min_words: int = 4, max_words: int = 30) -> str | None:
    """Collapse whitespace and return the sentence if it is plain, speakable ASCII of a sensible length."""
    text = " ".join(text.replace("`", "'").split())
    text = text.strip("'-")
    if not _ALLOWED.match(text) or "--" in text or "''" in text:
        return None
    words = len(text.split())
    return text if min_words <= words <= max_words else None


def _split(text: str) -> list[str]:
    return [s for part in _SENTENCE_END.split(text) if (s := clean_sentence(part))]


def fortune_sentences(root: Path = FORTUNES_DIR) -> list[str]:
    out: list[str] = []
    if not root.is_dir():
        return out
    for path in sorted(root.iterdir()):
        if path.suffix or path.name in FORTUNE_SKIP or not path.is_file():
            continue
        for entry in path.read_text(encoding="latin-1").split("\n%\n"):
            lines = [line for line in entry.splitlines() if not line.strip().startswith("--")]
            out.extend(_split(" ".join(lines)))
    return out


def bible_sentences() -> list[str]:
    try:
        listing = subprocess.run(["bible", "-f", "Gen1:1-Rev22:21"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return []
    out: list[str] = []
    for line in listing.splitlines():
        _, _, verse = line.partition(" ")
        out.extend(_split(verse))
    return out


def wordnet_sentences(root: Path = WORDNET_DIR) -> list[str]:
    out: list[str] = []
    for name in ("data.noun", "data.verb", "data.adj", "data.adv"):
        path = root / name
        if path.is_file():
            for quote in re.findall(r'"([^"]+)"', path.read_text(encoding="latin-1")):
                if sentence := clean_sentence(quote[0].upper() + quote[1:] + ("" if quote[-1] in ".!?" else ".")):
                    out.append(sentence)
    return out


def sentence_pool(seed: int = 0) -> list[str]:
    """Every usable sentence from the three sources, de-duplicated and shuffled by `seed`."""
    pool = sorted(set(fortune_sentences()) | set(bible_sentences()) | set(wordnet_sentences()))
    if not pool:
        raise RuntimeError("no sentences found: install the Debian packages fortunes, bible-kjv and wordnet-base")
    random.Random(seed).shuffle(pool)
    return pool
