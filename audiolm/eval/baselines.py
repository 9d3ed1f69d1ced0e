"""Classic speech codecs as baselines: encode and decode a waveform with Opus or codec2 through their command-line tools.

Each round trip writes temporary files, runs the Debian tools (`apt-get install opus-tools codec2`) as
subprocesses and returns the decoded audio as a mono float32 numpy `[L']` at 16 kHz. The output is not
aligned, padded or trimmed: codec2's (and possibly Opus's) output lags the input by a few hundred samples and
may be a little longer or shorter, so compare with `audiolm.eval.codec_metrics.align` or `evaluate`.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from audiolm.eval.codec_metrics import Waveform, to_mono_numpy

OUTPUT_RATE = 16000
CODEC2_RATE = 8000
CODEC2_MODES = ("3200", "2400", "1600", "1400", "1300", "1200", "700C", "450", "450PWB")


def require_tool(name: str) -> str:
    """The path of command-line tool `name`; a RuntimeError naming it (and its package) when it is not installed."""
    path = shutil.which(name)
    if path is None:
        package = {"opusenc": "opus-tools", "opusdec": "opus-tools", "c2enc": "codec2", "c2dec": "codec2"}.get(name, name)
        raise RuntimeError(f"{name} is not installed (or not on PATH); install it with `apt-get install {package}`")
    return path


def _run(args: list[str]) -> None:
    result = subprocess.run(args, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{Path(args[0]).name} failed (exit {result.returncode}): {result.stderr.strip() or result.stdout.strip()}")


def _resample(wav: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    return wav if from_rate == to_rate else soxr.resample(wav, from_rate, to_rate, quality="HQ")


def opus_roundtrip(wav: Waveform, sample_rate: int = 16000, bitrate_kbps: float = 6.0) -> np.ndarray:
    """Opus at `bitrate_kbps` (opusenc's VBR target): mono `wav` at `sample_rate` -> float32 `[L']` at 16 kHz.

    Runs `opusenc --quiet --bitrate B in.wav x.opus && opusdec --quiet --rate 16000 x.opus out.wav`, the input
    written as 16-bit PCM WAV. opusdec drops Opus's pre-skip, so the output is close to the input's length.
    """
    if bitrate_kbps <= 0:
        raise ValueError(f"bitrate_kbps must be positive, got {bitrate_kbps}")
    opusenc, opusdec = require_tool("opusenc"), require_tool("opusdec")
    data = np.clip(to_mono_numpy(wav), -1.0, 1.0)
    with tempfile.TemporaryDirectory(prefix="audiolm-opus-") as folder:
        source, coded, decoded = (Path(folder) / name for name in ("in.wav", "x.opus", "out.wav"))
        sf.write(str(source), data, sample_rate, subtype="PCM_16")
        _run([opusenc, "--quiet", "--bitrate", f"{bitrate_kbps:g}", str(source), str(coded)])
        _run([opusdec, "--quiet", "--rate", str(OUTPUT_RATE), str(coded), str(decoded)])
        out, rate = sf.read(str(decoded), dtype="float32", always_2d=True)  # [L', C]
    return _resample(out.mean(axis=1), rate, OUTPUT_RATE).astype(np.float32)


def codec2_roundtrip(wav: Waveform, sample_rate: int = 16000, mode: int | str = 3200) -> np.ndarray:
    """codec2 in `mode` (bits/s, or "700C" and the like): mono `wav` at `sample_rate` -> float32 `[L']` at 16 kHz.

    codec2 is narrow-band: the input is resampled to 8 kHz (soxr), written as raw signed 16-bit samples, run
    through `c2enc MODE x.raw x.bit && c2dec MODE x.bit y.raw`, and the result resampled back to 16 kHz.
    """
    mode = str(mode).upper()
    if mode not in CODEC2_MODES:
        raise ValueError(f"unknown codec2 mode {mode!r}; use one of {', '.join(CODEC2_MODES)}")
    c2enc, c2dec = require_tool("c2enc"), require_tool("c2dec")
    narrow = _resample(to_mono_numpy(wav), sample_rate, CODEC2_RATE)
    pcm = np.round(np.clip(narrow, -1.0, 1.0) * 32767).astype("<i2")
    with tempfile.TemporaryDirectory(prefix="audiolm-codec2-") as folder:
        source, coded, decoded = (Path(folder) / name for name in ("x.raw", "x.bit", "y.raw"))
        pcm.tofile(source)
        _run([c2enc, mode, str(source), str(coded)])
        _run([c2dec, mode, str(coded), str(decoded)])
        out = np.fromfile(decoded, dtype="<i2").astype(np.float32) / 32768.0
    return _resample(out, CODEC2_RATE, OUTPUT_RATE).astype(np.float32)
