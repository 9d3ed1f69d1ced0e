"""Signal helpers in torch: STFT, mel filterbank, log-mel, loudness normalisation, random crops.

Shapes: waveforms `[..., L]` (typically `[B, C, L]`); spectrograms `[..., F, T]`; mel `[..., M, T]`.
"""

from __future__ import annotations

import math

import numpy as np
import torch

ABSOLUTE_GATE_LUFS = -70.0
_WINDOWS: dict[tuple[int, str, torch.dtype], torch.Tensor] = {}


def _hann(win_length: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    key = (win_length, str(device), dtype)
    if key not in _WINDOWS:
        _WINDOWS[key] = torch.hann_window(win_length, device=device, dtype=dtype)
    return _WINDOWS[key]


def stft(wav: torch.Tensor, n_fft: int = 1024, hop_length: int = 256, win_length: int | None = None) -> torch.Tensor:
    """Complex STFT of `wav [..., L]` -> `[..., n_fft // 2 + 1, T]`, Hann window, centred (reflect)."""
    win_length = win_length or n_fft
    lead = wav.shape[:-1]
    flat = wav.reshape(-1, wav.shape[-1])
    spec = torch.stft(
        flat, n_fft, hop_length, win_length, window=_hann(win_length, wav.device, wav.dtype),
        center=True, pad_mode="reflect", return_complex=True,
    )
    return spec.reshape(*lead, *spec.shape[-2:])


def hz_to_mel(freq: np.ndarray | float) -> np.ndarray:
    """Slaney's mel scale (linear below 1 kHz, logarithmic above), as librosa's default."""
    freq = np.asarray(freq, dtype=np.float64)
    f_sp, min_log_hz, logstep = 200.0 / 3, 1000.0, math.log(6.4) / 27.0
    mel = freq / f_sp
    log_region = freq >= min_log_hz
    return np.where(log_region, min_log_hz / f_sp + np.log(np.maximum(freq, 1e-10) / min_log_hz) / logstep, mel)


def mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    f_sp, min_log_hz, logstep = 200.0 / 3, 1000.0, math.log(6.4) / 27.0
    min_log_mel = min_log_hz / f_sp
    return np.where(mel >= min_log_mel, min_log_hz * np.exp(logstep * (mel - min_log_mel)), f_sp * mel)


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, f_min: float = 0.0, f_max: float | None = None) -> torch.Tensor:
    """Slaney-normalised triangular mel filters `[n_mels, n_fft // 2 + 1]` (equal to librosa.filters.mel)."""
    f_max = sample_rate / 2 if f_max is None else f_max
    fft_freqs = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    mel_freqs = mel_to_hz(np.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2))
    widths = np.diff(mel_freqs)
    ramps = mel_freqs[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper)) * (2.0 / (mel_freqs[2:] - mel_freqs[:-2]))[:, None]
    return torch.from_numpy(weights.astype(np.float32))


class LogMel(torch.nn.Module):
    """`wav [..., L]` -> log-mel `[..., n_mels, T]` (natural log of magnitude-mel, floored at `eps`)."""

    def __init__(self, sample_rate: int = 16000, n_fft: int = 1024, hop_length: int = 256, n_mels: int = 80,
                 f_min: float = 0.0, f_max: float | None = None, power: float = 1.0, eps: float = 1e-5) -> None:
        super().__init__()
        self.n_fft, self.hop_length, self.power, self.eps = n_fft, hop_length, power, eps
        self.register_buffer("filters", mel_filterbank(sample_rate, n_fft, n_mels, f_min, f_max), persistent=False)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        magnitude = stft(wav, self.n_fft, self.hop_length).abs().pow(self.power)  # [..., F, T]
        mel = torch.matmul(self.filters, magnitude)  # [..., M, T]
        return torch.log(mel.clamp_min(self.eps))


def log_mel_spectrogram(wav: torch.Tensor, sample_rate: int = 16000, n_fft: int = 1024, hop_length: int = 256,
                        n_mels: int = 80) -> torch.Tensor:
    """One-off log-mel of `wav [..., L]` -> `[..., n_mels, T]`; build a `LogMel` to reuse the filters."""
    return LogMel(sample_rate, n_fft, hop_length, n_mels).to(wav.device)(wav)


def loudness(wav: torch.Tensor | np.ndarray, sample_rate: int) -> float:
    """Integrated loudness (ITU-R BS.1770, LUFS) of a mono `[L]` or `[1, L]` waveform.

    Clips shorter than one 400 ms gating block fall back to RMS in dBFS (equal to LUFS for a 1 kHz tone).
    Like BS.1770's absolute gate, anything quieter than -70 LUFS is silence: -inf.
    """
    data = _mono_numpy(wav)
    if len(data) < int(0.4 * sample_rate) + 1:
        rms = float(np.sqrt(np.mean(np.square(data, dtype=np.float64))))
        level = 20 * math.log10(rms) if rms > 0 else -math.inf
        return level if level > ABSOLUTE_GATE_LUFS else -math.inf
    import pyloudnorm  # with scipy.signal, 0.6 s of imports that only loudness needs (not generation)

    return float(pyloudnorm.Meter(sample_rate).integrated_loudness(data.astype(np.float64)))


def normalize_loudness(wav: torch.Tensor, sample_rate: int, target_lufs: float = -23.0, max_peak: float = 0.99) -> torch.Tensor:
    """Scale `wav` to `target_lufs`, then down again if needed so that its peak stays under `max_peak`.

    Silent input is returned unchanged.
    """
    current = loudness(wav, sample_rate)
    if not math.isfinite(current):
        return wav
    out = wav * (10.0 ** ((target_lufs - current) / 20.0))
    peak = float(out.abs().max())
    return out * (max_peak / peak) if peak > max_peak else out


def random_crop(wav: torch.Tensor, num_samples: int, generator: torch.Generator | None = None, pad: bool = True) -> torch.Tensor:
    """A random window of `num_samples` along the last axis; shorter input is zero-padded at the end (or kept, with pad=False)."""
    length = wav.shape[-1]
    if length <= num_samples:
        return torch.nn.functional.pad(wav, (0, num_samples - length)) if pad else wav
    start = int(torch.randint(0, length - num_samples + 1, (1,), generator=generator))
    return wav[..., start:start + num_samples]


def _mono_numpy(wav: torch.Tensor | np.ndarray) -> np.ndarray:
    data = wav.detach().cpu().numpy() if isinstance(wav, torch.Tensor) else np.asarray(wav)
    data = data.reshape(-1, data.shape[-1]).mean(axis=0) if data.ndim > 1 else data
    return data.astype(np.float64)
