"""audiolm.audio.augment: reproducible augmentation chains and the synthetic room response."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch

from audiolm.audio.augment import Augment, AugmentConfig, Reverb, room_response

SR = 16000
ALL_ON = dict(pitch_p=1.0, noise_p=1.0, reverb_p=1.0, shift_p=1.0, gain_p=1.0)
ALL_OFF = dict(pitch_p=0.0, noise_p=0.0, reverb_p=0.0, shift_p=0.0, gain_p=0.0)


def tone(seconds: float = 0.5, freq: float = 440.0, amplitude: float = 0.3) -> torch.Tensor:
    t = torch.arange(int(seconds * SR), dtype=torch.float64) / SR
    return (amplitude * torch.sin(2 * math.pi * freq * t)).float().unsqueeze(0)  # [1, L]


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def snr_db(clean: torch.Tensor, noisy: torch.Tensor) -> float:
    return 10 * math.log10(float(clean.pow(2).mean()) / float((noisy - clean).pow(2).mean()))


@pytest.mark.parametrize("config", [AugmentConfig(**ALL_ON), AugmentConfig()], ids=["all-on", "default"])
def test_equal_seeds_give_equal_output(config):
    augment = Augment(config, SR)
    wav = tone()
    for seed in range(4):
        torch.testing.assert_close(augment(wav, seeded(seed)), augment(wav, seeded(seed)), rtol=0, atol=0)


def test_different_seeds_give_different_output():
    augment = Augment(AugmentConfig(**ALL_ON), SR)
    wav = tone()
    outputs = [augment(wav, seeded(seed)) for seed in range(4)]
    for i in range(len(outputs)):
        for j in range(i + 1, len(outputs)):
            assert not torch.equal(outputs[i], outputs[j])


def test_does_not_disturb_the_global_random_state():
    augment = Augment(AugmentConfig(**ALL_ON), SR)
    random.seed(123)
    np.random.seed(123)
    expected = (random.random(), np.random.rand())
    random.seed(123)
    np.random.seed(123)
    augment(tone(), seeded(0))
    assert (random.random(), np.random.rand()) == expected


@pytest.mark.parametrize("seed", range(4))
def test_keeps_shape_dtype_and_unit_range(seed):
    loud = tone(amplitude=0.99)  # gain up to +6 dB and added noise would exceed 1 without the clamp
    augment = Augment(AugmentConfig(**ALL_ON, gain_db=(6.0, 6.0)), SR)

    out = augment(loud, seeded(seed))

    assert out.shape == (1, loud.shape[1])
    assert out.dtype == torch.float32
    assert float(out.abs().max()) <= 1.0
    assert torch.isfinite(out).all()
    assert not torch.equal(out, loud)


def test_multichannel_keeps_shape():
    wav = torch.cat([tone(), tone(freq=660.0)])  # [2, L]
    out = Augment(AugmentConfig(**ALL_ON), SR)(wav, seeded(0))
    assert out.shape == wav.shape
    assert float(out.abs().max()) <= 1.0


def test_all_probabilities_zero_is_the_identity():
    augment = Augment(AugmentConfig(**ALL_OFF), SR)
    wav = tone()
    for seed in range(3):
        torch.testing.assert_close(augment(wav, seeded(seed)), wav, rtol=0, atol=0)


@pytest.mark.parametrize("seed", range(4))
def test_noise_only_reaches_the_snr(seed):
    augment = Augment(AugmentConfig(**{**ALL_OFF, "noise_p": 1.0}, snr_db=(20.0, 20.0)), SR)
    wav = tone(1.0)

    out = augment(wav, seeded(seed))

    assert snr_db(wav, out) == pytest.approx(20.0, abs=1.5)


def test_gain_only_scales_by_the_drawn_decibels():
    augment = Augment(AugmentConfig(**{**ALL_OFF, "gain_p": 1.0}, gain_db=(-6.0, -6.0)), SR)
    wav = tone()
    torch.testing.assert_close(augment(wav, seeded(0)), wav * 10 ** (-6 / 20), rtol=1e-5, atol=1e-7)


def test_reverb_keeps_the_level():
    augment = Augment(AugmentConfig(**{**ALL_OFF, "reverb_p": 1.0}), SR)
    wav = tone(1.0)

    out = augment(wav, seeded(0))

    assert not torch.equal(out, wav)
    rms_in, rms_out = float(wav.pow(2).mean().sqrt()), float(out.pow(2).mean().sqrt())
    assert 20 * math.log10(rms_out / rms_in) == pytest.approx(0.0, abs=3.0)


def test_config_rejects_bad_probabilities():
    with pytest.raises(ValueError, match="noise_p"):
        AugmentConfig(noise_p=1.5)
    with pytest.raises(ValueError):
        Reverb(min_rt60=0.0)


# --- room response -------------------------------------------------------------------------------


@pytest.mark.parametrize("rt60", [0.15, 0.4, 0.8])
@pytest.mark.parametrize("seed", range(3))
def test_room_response_is_unit_energy_and_decays(rt60, seed):
    ir = room_response(rt60, SR, np.random.default_rng(seed))

    assert ir.shape == (int(rt60 * SR),)
    assert ir.dtype == np.float32
    assert float(np.sum(ir.astype(np.float64) ** 2)) == pytest.approx(1.0, rel=1e-4)
    tenth = len(ir) // 10
    first, last = float(np.sum(ir[:tenth] ** 2)), float(np.sum(ir[-tenth:] ** 2))
    assert last < 1e-3 * first  # 60 dB of amplitude decay over the response: the tail is ~50 dB below the head


def test_room_response_starts_with_the_direct_path():
    for rt60 in (0.15, 0.4, 0.8):
        for seed in range(3):
            ir = room_response(rt60, SR, np.random.default_rng(seed))
            assert ir[0] > 0  # the direct path arrives first, at t = 0 ...
            strongest_reflection = float(np.abs(ir[1:]).max())
            assert ir[0] >= strongest_reflection, f"rt60={rt60} seed={seed}: a reflection is stronger than the direct path"


def test_room_response_is_reproducible_from_its_generator():
    a = room_response(0.3, SR, np.random.default_rng(5))
    b = room_response(0.3, SR, np.random.default_rng(5))
    c = room_response(0.3, SR, np.random.default_rng(6))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
