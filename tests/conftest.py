"""Shared test helpers: small audio files and a tiny LibriSpeech-style corpus, written with soundfile."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

LIBRISPEECH_SPEAKERS = ("19", "84", "251", "1272")
LIBRISPEECH_CHAPTER = "100"


def sine(seconds: float, sample_rate: int, freq: float = 440.0, amplitude: float = 0.5, channels: int = 1) -> np.ndarray:
    """A sine `[C, L]` float32, the same on every channel."""
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    wave = (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.stack([wave] * channels)


def write_sine(path: str | Path, seconds: float = 0.5, sample_rate: int = 16000, freq: float = 440.0,
               amplitude: float = 0.5, channels: int = 1) -> Path:
    """Write a sine with soundfile (format from the suffix), creating the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), sine(seconds, sample_rate, freq, amplitude, channels).T, sample_rate)
    return path


def make_librispeech(corpus_dir: str | Path, part: str = "dev-clean", speakers: tuple[str, ...] = LIBRISPEECH_SPEAKERS,
                     utterances: int = 2, seconds: float = 0.5) -> dict[str, str]:
    """Write `corpus_dir/<part>/<spk>/<chapter>/<spk>-<chapter>-<utt>.flac` and `<spk>-<chapter>.trans.txt`.

    `corpus_dir` is the `LibriSpeech` folder. Returns {utterance id: transcript}.
    """
    texts = {}
    for number, speaker in enumerate(speakers):
        chapter_dir = Path(corpus_dir) / part / speaker / LIBRISPEECH_CHAPTER
        lines = []
        for utt in range(utterances):
            uid = f"{speaker}-{LIBRISPEECH_CHAPTER}-{utt:04d}"
            write_sine(chapter_dir / f"{uid}.flac", seconds, 16000, freq=200.0 + 50 * number + 10 * utt)
            texts[uid] = f"SPEAKER {speaker} SAYS UTTERANCE {utt}"
            lines.append(f"{uid} {texts[uid]}")
        (chapter_dir / f"{speaker}-{LIBRISPEECH_CHAPTER}.trans.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return texts


@pytest.fixture
def librispeech(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A tiny `tmp_path/corpus/LibriSpeech/dev-clean` tree: (the LibriSpeech folder, {utterance id: transcript})."""
    corpus_dir = tmp_path / "corpus" / "LibriSpeech"
    return corpus_dir, make_librispeech(corpus_dir)


@pytest.fixture(name="sine")
def _sine_fixture():
    """The `sine(seconds, sample_rate, freq=440, amplitude=0.5, channels=1) -> [C, L]` helper."""
    return sine


@pytest.fixture(name="write_sine")
def _write_sine_fixture():
    """The `write_sine(path, seconds=0.5, sample_rate=16000, freq=440, amplitude=0.5, channels=1) -> Path` helper."""
    return write_sine


@pytest.fixture(name="make_librispeech")
def _make_librispeech_fixture():
    """The `make_librispeech(corpus_dir, part="dev-clean", speakers=..., utterances=2, seconds=0.5)` helper."""
    return make_librispeech


@pytest.fixture
def one_thread():
    """Run a test on one torch thread: tiny tensors are faster so, and bit-exact comparisons with one-thread
    subprocesses need it. Use with `pytestmark = pytest.mark.usefixtures("one_thread")`."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
