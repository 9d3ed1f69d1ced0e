"""audiolm.audio.dsp: STFT, mel filters (against librosa), log-mel, loudness normalisation, random crops."""

from __future__ import annotations

import math

import librosa
import numpy as np
import pytest
import torch

from audiolm.audio.dsp import (
    LogMel,
    hz_to_mel,
    log_mel_spectrogram,
    loudness,
    mel_filterbank,
    mel_to_hz,
    normalize_loudness,
    random_crop,
    stft,
)

SR = 16000


def tone(seconds: float, freq: float = 1000.0, amplitude: float = 0.1, sample_rate: int = SR) -> torch.Tensor:
    t = torch.arange(int(seconds * sample_rate), dtype=torch.float64) / sample_rate
    return (amplitude * torch.sin(2 * math.pi * freq * t)).float().unsqueeze(0)  # [1, L]


def noise(seconds: float, scale: float = 0.05, seed: int = 0) -> torch.Tensor:
    return scale * torch.randn(1, int(seconds * SR), generator=torch.Generator().manual_seed(seed))


# --- mel filters ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sample_rate", "n_fft", "n_mels", "f_min", "f_max"),
    [(16000, 1024, 80, 0.0, None), (22050, 2048, 128, 20.0, 8000.0), (24000, 512, 64, 0.0, None),
     (44100, 2048, 40, 50.0, 16000.0)],
)
def test_mel_filterbank_equals_librosa(sample_rate, n_fft, n_mels, f_min, f_max):
    ours = mel_filterbank(sample_rate, n_fft, n_mels, f_min, f_max)
    theirs = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=f_min, fmax=f_max)

    assert ours.dtype == torch.float32
    assert tuple(ours.shape) == theirs.shape == (n_mels, n_fft // 2 + 1)
    np.testing.assert_allclose(ours.numpy(), theirs, rtol=1e-5, atol=1e-7)


def test_mel_scale_matches_librosa_and_inverts():
    freqs = np.array([0.0, 100.0, 999.0, 1000.0, 1001.0, 4000.0, 8000.0, 22050.0])
    np.testing.assert_allclose(hz_to_mel(freqs), librosa.hz_to_mel(freqs), rtol=1e-10)
    np.testing.assert_allclose(mel_to_hz(hz_to_mel(freqs)), freqs, rtol=1e-10, atol=1e-9)


# --- STFT and log-mel ----------------------------------------------------------------------------


@pytest.mark.parametrize(("batch", "channels", "length"), [(1, 1, 16000), (2, 3, 8000), (4, 1, 4001)])
def test_stft_shape_for_batched_multichannel_input(batch, channels, length):
    wav = torch.randn(batch, channels, length, generator=torch.Generator().manual_seed(0))

    spec = stft(wav, n_fft=1024, hop_length=256)

    assert spec.is_complex()
    assert spec.shape == (batch, channels, 513, length // 256 + 1)


def test_stft_matches_torch_stft_per_channel():
    wav = torch.randn(2, 2, 4000, generator=torch.Generator().manual_seed(1))

    spec = stft(wav, n_fft=512, hop_length=128)

    reference = torch.stft(wav[1, 0], 512, 128, window=torch.hann_window(512), center=True, pad_mode="reflect",
                           return_complex=True)
    # a batched and a single float32 FFT may each be ~eps * log2(n_fft) * |frame| ~ 7e-6 off (bins reach 41 here)
    torch.testing.assert_close(spec[1, 0], reference, rtol=1e-5, atol=5e-5)


def test_stft_peak_bin_of_a_tone():
    spec = stft(tone(1.0, freq=1000.0), n_fft=1024, hop_length=256)  # bins are 15.625 Hz apart
    magnitude = spec.abs()[0].mean(dim=-1)
    assert int(magnitude.argmax()) == round(1000 / (SR / 1024))


@pytest.mark.parametrize(("batch", "channels", "length", "n_mels"), [(1, 1, 16000, 80), (2, 3, 8000, 64), (3, 2, 5000, 128)])
def test_log_mel_shapes(batch, channels, length, n_mels):
    wav = torch.randn(batch, channels, length, generator=torch.Generator().manual_seed(2))

    mel = LogMel(SR, n_fft=1024, hop_length=256, n_mels=n_mels)(wav)
    one_off = log_mel_spectrogram(wav, SR, n_fft=1024, hop_length=256, n_mels=n_mels)

    assert mel.shape == (batch, channels, n_mels, length // 256 + 1)
    assert mel.dtype == torch.float32
    torch.testing.assert_close(one_off, mel)


def test_log_mel_is_per_item_and_floored():
    wav = torch.randn(2, 1, 4000, generator=torch.Generator().manual_seed(3))
    wav[1] = 0.0
    log_mel = LogMel(eps=1e-5)

    mel = log_mel(wav)

    torch.testing.assert_close(mel[0], log_mel(wav[0]))
    torch.testing.assert_close(mel[1], torch.full_like(mel[1], math.log(1e-5)))
    assert torch.isfinite(mel).all()


def test_log_mel_equals_a_numpy_reference_with_librosa_filters():
    # librosa.feature.melspectrogram(power=1, center=True, pad_mode="reflect"), spelt out in numpy: periodic Hann
    # frames of the reflect-padded signal, |rfft|, librosa's mel filters, natural log floored at eps
    n_fft, hop = 1024, 256
    wav = noise(1.0, scale=0.1, seed=4)[0]
    padded = np.pad(wav.double().numpy(), n_fft // 2, mode="reflect")
    frames = np.stack([padded[i:i + n_fft] for i in range(0, len(padded) - n_fft + 1, hop)], axis=-1)  # [n_fft, T]
    window = np.hanning(n_fft + 1)[:-1, None]
    magnitude = np.abs(np.fft.rfft(frames * window, axis=0))
    reference = np.log(np.maximum(librosa.filters.mel(sr=SR, n_fft=n_fft, n_mels=80) @ magnitude, 1e-5))

    ours = LogMel(SR, n_fft=n_fft, hop_length=hop, n_mels=80)(wav).numpy()

    assert ours.shape == reference.shape == (80, len(wav) // hop + 1)
    np.testing.assert_allclose(ours, reference, atol=1e-4)


# --- loudness ------------------------------------------------------------------------------------


@pytest.mark.parametrize("target", [-30.0, -23.0, -16.0])
@pytest.mark.parametrize("signal", ["tone", "noise", "short tone"])
def test_normalize_loudness_reaches_the_target(signal, target):
    wav = {"tone": tone(1.0), "noise": noise(1.0), "short tone": tone(0.2)}[signal]

    out = normalize_loudness(wav, SR, target_lufs=target)

    assert out.shape == wav.shape
    assert loudness(out, SR) == pytest.approx(target, abs=0.5)
    assert float(out.abs().max()) <= 0.99 + 1e-6


@pytest.mark.parametrize("max_peak", [0.99, 0.5])
def test_normalize_loudness_caps_the_peak(max_peak):
    wav = tone(1.0, amplitude=0.1)

    out = normalize_loudness(wav, SR, target_lufs=0.0, max_peak=max_peak)  # 0 LUFS needs a 1.41 peak

    assert float(out.abs().max()) == pytest.approx(max_peak, rel=1e-4)
    # the cap wins over the target: a 1 kHz sine of peak p reads 20 log10(p / sqrt 2) LUFS
    assert loudness(out, SR) == pytest.approx(20 * math.log10(max_peak / math.sqrt(2)), abs=0.2)


def test_normalize_loudness_caps_the_peak_of_noise():
    out = normalize_loudness(noise(1.0), SR, target_lufs=-8.0, max_peak=0.9)
    assert float(out.abs().max()) == pytest.approx(0.9, rel=1e-4)
    assert loudness(out, SR) < -8.5


def test_loudness_of_a_1k_tone_is_its_rms_in_dbfs():
    # a full-scale 1 kHz sine reads -3.01 LUFS (BS.1770), short or long
    assert loudness(tone(1.0, amplitude=1.0), SR) == pytest.approx(-3.01, abs=0.1)
    assert loudness(tone(0.1, amplitude=1.0), SR) == pytest.approx(-3.01, abs=0.1)


@pytest.mark.parametrize("seconds", [1.0, 0.1])
def test_digital_silence_is_returned_unchanged(seconds):
    wav = torch.zeros(1, int(seconds * SR))

    out = normalize_loudness(wav, SR)

    assert torch.equal(out, wav)


@pytest.mark.parametrize("seconds", [1.0, 0.1])
def test_near_silence_is_not_amplified(seconds):
    # -126 dBFS peak: below the project's own silence threshold (audio.io.SILENCE_PEAK = 1e-5) and below
    # BS.1770's -70 LUFS absolute gate; it must not be boosted by 100 dB to the target, short or long.
    wav = tone(seconds, amplitude=5e-7)

    out = normalize_loudness(wav, SR)

    assert torch.equal(out, wav)


# --- random crops --------------------------------------------------------------------------------


def test_random_crop_is_deterministic_for_a_seeded_generator():
    wav = torch.arange(10000, dtype=torch.float32).reshape(1, 1, -1)

    first = [random_crop(wav, 1000, torch.Generator().manual_seed(7)) for _ in range(3)]
    generator = torch.Generator().manual_seed(7)
    sequence_a = [random_crop(wav, 1000, generator) for _ in range(5)]
    generator = torch.Generator().manual_seed(7)
    sequence_b = [random_crop(wav, 1000, generator) for _ in range(5)]

    assert all(torch.equal(first[0], crop) for crop in first)
    assert all(torch.equal(a, b) for a, b in zip(sequence_a, sequence_b, strict=True))
    starts = {int(crop[0, 0, 0]) for crop in sequence_a}
    assert len(starts) > 1  # successive draws move the window


def test_random_crop_differs_between_seeds():
    wav = torch.arange(100000, dtype=torch.float32)[None]
    starts = {int(random_crop(wav, 100, torch.Generator().manual_seed(seed))[0, 0]) for seed in range(10)}
    assert len(starts) > 5


@pytest.mark.parametrize("seed", range(5))
def test_random_crop_is_an_exact_contiguous_slice(seed):
    wav = torch.randn(2, 3, 5000, generator=torch.Generator().manual_seed(seed))

    crop = random_crop(wav, 1234, torch.Generator().manual_seed(seed))

    assert crop.shape == (2, 3, 1234)
    starts = [s for s in range(5000 - 1234 + 1) if torch.equal(wav[0, 0, s:s + 1234], crop[0, 0])]
    assert len(starts) == 1
    start = starts[0]
    torch.testing.assert_close(crop, wav[..., start:start + 1234], rtol=0, atol=0)  # same window on every channel


def test_random_crop_of_the_exact_length_is_the_input():
    wav = torch.randn(1, 800)
    torch.testing.assert_close(random_crop(wav, 800, torch.Generator().manual_seed(0)), wav, rtol=0, atol=0)


def test_random_crop_pads_short_input_at_the_end():
    wav = torch.randn(2, 1, 300, generator=torch.Generator().manual_seed(0))

    padded = random_crop(wav, 1000, torch.Generator().manual_seed(0))
    kept = random_crop(wav, 1000, torch.Generator().manual_seed(0), pad=False)

    assert padded.shape == (2, 1, 1000)
    torch.testing.assert_close(padded[..., :300], wav, rtol=0, atol=0)
    assert torch.all(padded[..., 300:] == 0)
    assert torch.equal(kept, wav)
