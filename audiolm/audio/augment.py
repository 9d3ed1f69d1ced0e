"""Waveform augmentation for training datasets: pitch shift, noise at an SNR, reverb, time shift, gain.

Built on audiomentations (signalsmith-stretch pitch shifting). Reverb convolves with a synthetic room
response (exponentially decaying noise with a drawn RT60), so no impulse-response files are needed.
Transforms compose; `Augment` makes them reproducible from a `torch.Generator` without touching the
global random state that audiomentations draws from.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from dataclasses import dataclass

import audiomentations as am
import numpy as np
import scipy.signal
import torch


class Reverb(am.core.transforms_interface.BaseWaveformTransform):
    """Convolve with a synthetic exponentially decaying room response and mix it with the dry signal."""

    supports_multichannel = True

    def __init__(self, min_rt60: float = 0.15, max_rt60: float = 0.8, min_wet: float = 0.2, max_wet: float = 0.6, p: float = 0.5):
        super().__init__(p)
        if not 0 < min_rt60 <= max_rt60:
            raise ValueError("need 0 < min_rt60 <= max_rt60")
        self.min_rt60, self.max_rt60, self.min_wet, self.max_wet = min_rt60, max_rt60, min_wet, max_wet

    def randomize_parameters(self, samples: np.ndarray, sample_rate: int) -> None:
        super().randomize_parameters(samples, sample_rate)
        if self.parameters["should_apply"]:
            self.parameters["rt60"] = random.uniform(self.min_rt60, self.max_rt60)
            self.parameters["wet"] = random.uniform(self.min_wet, self.max_wet)
            self.parameters["ir_seed"] = random.getrandbits(32)

    def apply(self, samples: np.ndarray, sample_rate: int) -> np.ndarray:
        p = self.parameters
        return add_reverb(samples, sample_rate, p["rt60"], p["wet"], p["ir_seed"])


def add_reverb(samples: np.ndarray, sample_rate: int, rt60: float, wet: float, seed: int) -> np.ndarray:
    """Mix `samples [..., L]` with their convolution by a synthetic room response, at the same level."""
    ir = room_response(rt60, sample_rate, np.random.default_rng(seed))
    reverberant = scipy.signal.fftconvolve(samples, ir if samples.ndim == 1 else ir[None, :], axes=-1)[..., : samples.shape[-1]]
    reverberant *= np.sqrt(np.mean(samples**2) / (np.mean(reverberant**2) + 1e-12))
    return ((1 - wet) * samples + wet * reverberant).astype(np.float32)


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


@dataclass(kw_only=True)
class AugmentConfig:
    """Probabilities and ranges of each transform; p=0 turns one off."""

    pitch_p: float = 0.3
    pitch_semitones: float = 2.0
    noise_p: float = 0.3
    snr_db: tuple[float, float] = (10.0, 40.0)
    reverb_p: float = 0.3
    rt60: tuple[float, float] = (0.15, 0.8)
    shift_p: float = 0.3
    shift_seconds: float = 0.1
    gain_p: float = 0.5
    gain_db: tuple[float, float] = (-6.0, 6.0)

    def __post_init__(self) -> None:
        for name in ("pitch_p", "noise_p", "reverb_p", "shift_p", "gain_p"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")


class Augment:
    """Apply a composed chain of transforms to `wav [C, L]` (torch), reproducibly from `generator`."""

    def __init__(self, config: AugmentConfig | None = None, sample_rate: int = 16000) -> None:
        config = config or AugmentConfig()
        self.sample_rate = sample_rate
        self.chain = am.Compose([
            am.PitchShift(-config.pitch_semitones, config.pitch_semitones, p=config.pitch_p),
            Reverb(*config.rt60, p=config.reverb_p),
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
