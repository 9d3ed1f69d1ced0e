"""Load any audio file as mono float32 at a chosen rate, and save audio atomically.

Shapes: a loaded waveform is `[C=1, L]` float32 in [-1, 1]; `save_audio` takes `[L]`, `[C, L]` or `[1, C, L]`.
Reading is libsndfile (WAV, FLAC, OGG/Vorbis/Opus, MP3 and more), resampling is soxr.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
import torch

from audiolm.errors import FileError
from audiolm.formats.atomic import atomic_path

SILENCE_PEAK = 1e-5  # a file whose peak is below this (about -100 dBFS) is silent


class AudioError(FileError):
    """A problem with an audio file; the message is '<path>: <problem>'."""


class MissingAudioError(AudioError):
    pass


class UnreadableAudioError(AudioError):
    pass


class EmptyAudioError(AudioError):
    pass


class TooShortAudioError(AudioError):
    pass


class TooLongAudioError(AudioError):
    pass


class NonFiniteAudioError(AudioError):
    pass


class SilentAudioError(AudioError):
    pass


@dataclass(frozen=True)
class AudioInfo:
    sample_rate: int
    num_frames: int
    num_channels: int

    @property
    def duration(self) -> float:
        return self.num_frames / self.sample_rate


def audio_info(path: str | Path) -> AudioInfo:
    """Read a file's header only: rate, length and channels."""
    path = Path(path)
    _check_exists(path)
    try:
        info = sf.info(str(path))
    except Exception as error:  # libsndfile raises several types for unreadable files
        raise UnreadableAudioError(path, f"unreadable audio ({_reason(error)})") from None
    return AudioInfo(int(info.samplerate), int(info.frames), int(info.channels))


def check_duration(path: str | Path, max_seconds: float) -> AudioInfo:
    """Read `path`'s header and refuse a file longer than `max_seconds` (`TooLongAudioError`) before any sample is decoded."""
    info = audio_info(path)
    if info.duration > max_seconds:
        raise _too_long(Path(path), info.duration, max_seconds)
    return info


def _too_long(path: Path, seconds: float, max_seconds: float) -> TooLongAudioError:
    return TooLongAudioError(path, f"audio is {seconds:.0f} s long; this command reads at most {max_seconds:g} s of a file")


def load_audio(
    path: str | Path,
    sample_rate: int | None = 16000,
    *,
    offset: float = 0.0,
    duration: float | None = None,
    min_seconds: float = 0.0,
    allow_silent: bool = True,
    max_seconds: float | None = None,
) -> torch.Tensor:
    """Load `path` as mono float32 `[1, L]`, resampled to `sample_rate` (None keeps the file's rate).

    `offset` and `duration` (seconds) read a part of the file without decoding the rest. With `max_seconds`,
    a read longer than that (the whole file, without `duration`) is refused from the header, before any
    sample is decoded.
    Raises an `AudioError` naming the file when it is missing, unreadable, empty, shorter than
    `min_seconds`, longer than `max_seconds`, holds NaN or infinite samples, or (with `allow_silent=False`) is silent.
    """
    path = Path(path)
    _check_exists(path)
    too_long = None
    try:
        with sf.SoundFile(str(path)) as f:
            native_rate = f.samplerate
            start = int(round(offset * native_rate))
            frames = -1 if duration is None else int(round(duration * native_rate))
            available = max(0, f.frames - start)
            wanted = available if frames < 0 else min(frames, available)
            if max_seconds is not None and wanted > max_seconds * native_rate:
                too_long = f.frames / native_rate
            else:
                if start > 0:
                    f.seek(min(start, f.frames)) if f.seekable() else f.read(start)
                data = f.read(frames, dtype="float32", always_2d=True)  # [L, C]
    except Exception as error:
        raise UnreadableAudioError(path, f"unreadable audio ({_reason(error)})") from None
    if too_long is not None:
        raise _too_long(path, too_long, max_seconds)
    _check_not_empty(path, len(data))
    _check_finite(path, data)
    mono = _mono(data)
    if sample_rate is not None and sample_rate != native_rate:
        mono = soxr.resample(mono, native_rate, sample_rate, quality="HQ")
    rate = sample_rate or native_rate
    if len(mono) < min_seconds * rate:
        raise TooShortAudioError(path, f"audio is {len(mono) / rate:.3f} s long, shorter than {min_seconds:g} s")
    if not allow_silent:
        _check_not_silent(path, float(np.abs(mono).max()))
    return torch.from_numpy(np.ascontiguousarray(mono, dtype=np.float32)).unsqueeze(0)


def check_audio(path: str | Path, block_frames: int = 1 << 16) -> AudioInfo:
    """Read every sample of `path`, `block_frames` at a time so memory stays bounded for any length,
    and raise the `AudioError` that `load_audio(path, allow_silent=False)` would: missing, unreadable,
    empty, NaN or infinite samples, silent (judged at the file's own rate).

    Returns the rate, the channels and the number of frames actually decoded (a truncated file's
    header can claim more).
    """
    path = Path(path)
    _check_exists(path)
    frames, peak = 0, 0.0
    try:
        with sf.SoundFile(str(path)) as f:
            sample_rate, num_channels = f.samplerate, f.channels
            for block in f.blocks(block_frames, dtype="float32", always_2d=True):  # [l, C]
                _check_finite(path, block)
                peak = max(peak, float(np.abs(_mono(block)).max(initial=0.0)))
                frames += len(block)
    except AudioError:
        raise
    except Exception as error:
        raise UnreadableAudioError(path, f"unreadable audio ({_reason(error)})") from None
    _check_not_empty(path, frames)
    _check_not_silent(path, peak)
    return AudioInfo(int(sample_rate), frames, int(num_channels))


def _mono(data: np.ndarray) -> np.ndarray:
    """`[L, C]` -> `[L]`, the mean of the channels."""
    return data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]


def _check_not_empty(path: Path, frames: int) -> None:
    if frames == 0:
        raise EmptyAudioError(path, "empty audio (no samples)")


def _check_finite(path: Path, data: np.ndarray) -> None:
    if not np.isfinite(data).all():
        raise NonFiniteAudioError(path, "audio holds NaN or infinite samples")


def _check_not_silent(path: Path, peak: float) -> None:
    if peak < SILENCE_PEAK:
        raise SilentAudioError(path, "audio is silent")


def save_audio(path: str | Path, wav: torch.Tensor | np.ndarray, sample_rate: int, subtype: str | None = None) -> Path:
    """Write `wav` (`[L]`, `[C, L]` or `[1, C, L]`, float in [-1, 1]) atomically; format from the suffix."""
    path = Path(path)
    data = wav.detach().cpu().float().numpy() if isinstance(wav, torch.Tensor) else np.asarray(wav, np.float32)
    if data.ndim == 3:
        if data.shape[0] != 1:
            raise ValueError(f"save_audio takes one waveform, got a batch of {data.shape[0]}")
        data = data[0]
    if data.ndim == 2:
        data = data.T  # [C, L] -> [L, C]
    if not np.isfinite(data).all():
        raise ValueError(f"{path}: refusing to save audio with NaN or infinite samples")
    data = np.clip(data, -1.0, 1.0)
    if subtype is None and path.suffix.lower() == ".wav":
        subtype = "PCM_16"
    with atomic_path(path) as tmp:
        sf.write(str(tmp), data, sample_rate, subtype=subtype, format=_format_for(path))
    return path


def _format_for(path: Path) -> str:
    formats = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG", ".mp3": "MP3"}
    try:
        return formats[path.suffix.lower()]
    except KeyError:
        raise ValueError(f"{path}: cannot save audio as {path.suffix!r}; use one of {', '.join(formats)}") from None


def _check_exists(path: Path) -> None:
    if not path.exists():
        raise MissingAudioError(path, "no such file")
    if path.is_dir():
        raise UnreadableAudioError(path, "is a directory, not an audio file")


def _reason(error: Exception) -> str:
    """The library's message without the file name it repeats: "Format not recognised." and the like."""
    lines = str(error).strip().splitlines()
    reason = lines[-1] if lines else type(error).__name__
    return reason.split("': ", 1)[-1].rstrip(".")
