"""Everyday processing that audio meets after it leaves us: lossy re-encoding (Opus, MP3), resampling, gain, noise,
cropping. The watermark's and the detector's benchmarks attack with these, and the detector trains on them so that
its verdict holds after them. Mono float32 numpy at 16 kHz in and out.

    processed, name = random_processing(x, np.random.default_rng(seed), p=0.5)
"""

from __future__ import annotations

import math
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

SR = 16000
OPUS_KBPS = (12, 16, 24, 32)
MP3_KBPS = (32, 64, 128)
RATES = (8000, 11025, 22050, 44100)


def opus(x: np.ndarray, kbps: float = 16) -> np.ndarray:
    from audiolm.eval.baselines import opus_roundtrip

    return _same_length(opus_roundtrip(x, SR, kbps), len(x))


def mp3(x: np.ndarray, kbps: int = 32) -> np.ndarray:
    """LAME through sox at `kbps` (CBR) and back."""
    from audiolm.eval.baselines import require_tool

    sox = require_tool("sox")
    with tempfile.TemporaryDirectory(prefix="audiolm-mp3-") as folder:
        source, coded, decoded = (Path(folder) / name for name in ("in.wav", "x.mp3", "out.wav"))
        sf.write(str(source), np.clip(x, -1, 1), SR, subtype="PCM_16")
        subprocess.run([sox, str(source), "-C", str(kbps), str(coded)], check=True, capture_output=True)
        subprocess.run([sox, str(coded), "-r", str(SR), str(decoded)], check=True, capture_output=True)
        out = sf.read(str(decoded), dtype="float32", always_2d=True)[0].mean(axis=1)
    return _same_length(out, len(x))


def resampled(x: np.ndarray, rate: int) -> np.ndarray:
    """To `rate` and back (soxr HQ): below 16 kHz this removes everything above rate / 2."""
    return _same_length(soxr.resample(soxr.resample(x, SR, rate, quality="HQ"), rate, SR, quality="HQ"), len(x))


def noisy(x: np.ndarray, rng: np.random.Generator, snr_db: float = 20.0) -> np.ndarray:
    """White noise at `snr_db` below the signal's mean power."""
    return (x + rng.standard_normal(len(x)) * math.sqrt(np.mean(x**2) / 10 ** (snr_db / 10))).astype(np.float32)


def gained(x: np.ndarray, db: float) -> np.ndarray:
    return (x * 10 ** (db / 20)).astype(np.float32)


def crop(x: np.ndarray, rng: np.random.Generator, seconds: float = 1.0) -> np.ndarray:
    n = int(seconds * SR)
    start = int(rng.integers(0, max(1, len(x) - n + 1)))
    return x[start:start + n]


def random_processing(x: np.ndarray, rng: np.random.Generator, p: float = 0.5) -> tuple[np.ndarray, str]:
    """With probability `p`, one everyday transformation drawn at random (Opus 12-32 kbps, MP3 32-128 kbps, a
    round trip through 8-44.1 kHz, white noise at 10-40 dB SNR, gain of -20..+10 dB, clipped to [-1, 1]);
    returns the audio and the transformation's name ("" for none)."""
    if rng.random() >= p:
        return x, ""
    kind = int(rng.integers(5))
    if kind == 0:
        kbps = OPUS_KBPS[int(rng.integers(len(OPUS_KBPS)))]
        return opus(x, kbps), f"opus{kbps}"
    if kind == 1:
        kbps = MP3_KBPS[int(rng.integers(len(MP3_KBPS)))]
        return mp3(x, kbps), f"mp3-{kbps}"
    if kind == 2:
        rate = RATES[int(rng.integers(len(RATES)))]
        return resampled(x, rate), f"resample{rate}"
    if kind == 3:
        snr = float(rng.uniform(10, 40))
        return noisy(x, rng, snr), "noise"
    return np.clip(gained(x, float(rng.uniform(-20, 10))), -1, 1), "gain"


def _same_length(y: np.ndarray, length: int) -> np.ndarray:
    y = np.asarray(y, dtype=np.float32)
    return y[:length] if len(y) >= length else np.pad(y, (0, length - len(y)))
