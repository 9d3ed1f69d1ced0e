"""audiolm.audio.io: loading any file as mono float32 at 16 kHz, its errors, and atomic saving."""

from __future__ import annotations

import os

import numpy as np
import pytest
import soundfile as sf
import torch

from audiolm.audio.io import (
    AudioError,
    EmptyAudioError,
    MissingAudioError,
    NonFiniteAudioError,
    SilentAudioError,
    TooShortAudioError,
    UnreadableAudioError,
    audio_info,
    load_audio,
    save_audio,
)
from audiolm.errors import AudiolmError, FileError

FORMATS = (".wav", ".flac", ".ogg", ".mp3")
RATES = (8000, 22050, 44100, 48000)
LOSSLESS = (".wav", ".flac")


def peak_frequency(wav: torch.Tensor, sample_rate: int) -> float:
    """The frequency (Hz) of the largest FFT bin of a mono `[1, L]` or `[L]` waveform."""
    samples = wav.reshape(-1).double().numpy()
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.argmax(spectrum) * sample_rate / len(samples))


def assert_one_line_naming(error: pytest.ExceptionInfo, path) -> None:
    message = str(error.value)
    assert message.startswith(f"{path}: ")
    assert "\n" not in message
    assert error.value.path == path


# --- round trips ---------------------------------------------------------------------------------


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("suffix", FORMATS)
def test_round_trip_gives_mono_float32_at_16k(tmp_path, sine, suffix, rate, channels):
    path = tmp_path / f"tone{suffix}"
    seconds = 0.5
    assert save_audio(path, torch.from_numpy(sine(seconds, rate, 440.0, 0.5, channels)), rate) == path

    wav = load_audio(path)

    assert wav.dtype == torch.float32
    assert wav.ndim == 2 and wav.shape[0] == 1
    expected = int(seconds * 16000)
    tolerance = 2 if suffix != ".mp3" else int(0.05 * expected)  # mp3 may add encoder padding
    assert abs(wav.shape[1] - expected) <= tolerance
    assert wav.abs().max() <= 1.0
    assert 0.35 < float(wav.abs().max()) < 0.65  # the 0.5 amplitude survives mixing, coding and resampling
    assert abs(peak_frequency(wav, 16000) - 440.0) <= 4.0


@pytest.mark.parametrize("suffix", LOSSLESS)
def test_lossless_16k_mono_loads_the_samples_written(tmp_path, sine, suffix):
    path = tmp_path / f"tone{suffix}"
    original = sine(0.25, 16000, 1000.0, 0.7)
    save_audio(path, torch.from_numpy(original), 16000)

    wav = load_audio(path)

    np.testing.assert_allclose(wav.numpy(), original, atol=1.0 / 32768 + 1e-7)  # 16-bit quantisation only


def test_stereo_is_mixed_to_the_mean_of_the_channels(tmp_path, sine):
    left = sine(0.25, 16000, 500.0, 0.6)[0]
    stereo = np.stack([left, np.zeros_like(left)])
    path = tmp_path / "stereo.wav"
    save_audio(path, torch.from_numpy(stereo), 16000)

    wav = load_audio(path)

    np.testing.assert_allclose(wav[0].numpy(), left / 2, atol=1e-4)


def test_sample_rate_none_keeps_the_native_rate(tmp_path, sine):
    path = tmp_path / "tone.flac"
    save_audio(path, torch.from_numpy(sine(0.5, 22050)), 22050)

    assert load_audio(path, None).shape == (1, 11025)
    assert load_audio(path, 8000).shape == (1, 4000)


@pytest.mark.parametrize(("suffix", "rate"), [(".wav", 8000), (".wav", 22050), (".flac", 44100), (".wav", 48000),
                                              (".ogg", 48000), (".mp3", 44100)])
def test_resampling_preserves_a_sines_frequency(tmp_path, sine, suffix, rate):
    path = tmp_path / f"tone{suffix}"
    save_audio(path, torch.from_numpy(sine(1.0, rate, 1234.0, 0.5)), rate)

    wav = load_audio(path, 16000)

    assert abs(peak_frequency(wav, 16000) - 1234.0) <= 2.0  # the FFT bins are 1 Hz apart


def test_audio_info_reads_the_header(tmp_path, sine):
    path = tmp_path / "tone.flac"
    save_audio(path, torch.from_numpy(sine(0.5, 22050, channels=2)), 22050)

    info = audio_info(path)

    assert (info.sample_rate, info.num_frames, info.num_channels) == (22050, 11025, 2)
    assert info.duration == pytest.approx(0.5)


# --- reading a part ------------------------------------------------------------------------------


def chirp(seconds: float, rate: int) -> np.ndarray:
    """A rising tone, so every stretch of it is different from every other."""
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * (200 * t + 300 * t**2))).astype(np.float32)


@pytest.mark.parametrize("suffix", LOSSLESS)
def test_offset_and_duration_read_exactly_that_part(tmp_path, suffix):
    rate = 22050
    path = tmp_path / f"chirp{suffix}"
    save_audio(path, torch.from_numpy(chirp(2.0, rate)), rate)
    full = load_audio(path, None)

    part = load_audio(path, None, offset=0.5, duration=1.0)

    assert part.shape == (1, rate)
    torch.testing.assert_close(part, full[:, rate // 2: rate // 2 + rate], rtol=0, atol=0)


@pytest.mark.parametrize("suffix", FORMATS)
def test_offset_and_duration_resampled_to_16k(tmp_path, suffix):
    rate = 22050
    path = tmp_path / f"chirp{suffix}"
    save_audio(path, torch.from_numpy(chirp(2.0, rate)), rate)
    full = load_audio(path)

    part = load_audio(path, offset=0.5, duration=1.0)
    rest = load_audio(path, offset=1.5)

    assert abs(part.shape[1] - 16000) <= 2
    assert abs(rest.shape[1] - 8000) <= 2
    # the part lines up with the same stretch of the whole file (no lag)
    window = full[0, 7000:25000].numpy()
    correlation = np.correlate(window, part[0].numpy(), "valid")
    assert int(np.argmax(correlation)) - 1000 == 0


def test_duration_past_the_end_returns_the_rest(tmp_path, sine):
    path = tmp_path / "tone.wav"
    save_audio(path, torch.from_numpy(sine(1.0, 16000)), 16000)

    assert load_audio(path, offset=0.75, duration=5.0).shape == (1, 4000)


def test_offset_past_the_end_is_empty(tmp_path, sine):
    path = tmp_path / "tone.wav"
    save_audio(path, torch.from_numpy(sine(1.0, 16000)), 16000)

    with pytest.raises(EmptyAudioError) as error:
        load_audio(path, offset=3.0)
    assert_one_line_naming(error, path)


# --- errors --------------------------------------------------------------------------------------


def test_missing_file(tmp_path):
    path = tmp_path / "nowhere" / "missing.wav"
    with pytest.raises(MissingAudioError) as error:
        load_audio(path)
    assert_one_line_naming(error, path)
    assert "no such file" in str(error.value)
    with pytest.raises(MissingAudioError):
        audio_info(path)


@pytest.mark.parametrize("content", [b"this is not audio at all" * 40, bytes(range(256)) * 8, b""])
@pytest.mark.parametrize("suffix", FORMATS)
def test_garbage_file_is_unreadable(tmp_path, suffix, content):
    path = tmp_path / f"garbage{suffix}"
    path.write_bytes(content)
    with pytest.raises(UnreadableAudioError) as error:
        load_audio(path)
    assert_one_line_naming(error, path)
    assert "unreadable audio" in str(error.value)
    with pytest.raises(UnreadableAudioError):
        audio_info(path)


def test_directory_is_unreadable(tmp_path):
    path = tmp_path / "folder.wav"
    path.mkdir()
    with pytest.raises(UnreadableAudioError) as error:
        load_audio(path)
    assert_one_line_naming(error, path)
    assert "directory" in str(error.value)


def test_zero_frame_wav_is_empty(tmp_path):
    path = tmp_path / "zero.wav"
    sf.write(str(path), np.zeros((0, 1), np.float32), 16000)
    assert sf.info(str(path)).frames == 0

    with pytest.raises(EmptyAudioError) as error:
        load_audio(path)
    assert_one_line_naming(error, path)


def test_shorter_than_min_seconds(tmp_path, sine):
    path = tmp_path / "short.wav"
    save_audio(path, torch.from_numpy(sine(0.1, 16000)), 16000)

    with pytest.raises(TooShortAudioError) as error:
        load_audio(path, min_seconds=0.2)
    assert_one_line_naming(error, path)
    assert "0.100 s" in str(error.value)
    assert load_audio(path, min_seconds=0.1).shape == (1, 1600)
    assert load_audio(path, 8000, min_seconds=0.1).shape == (1, 800)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_samples(tmp_path, bad):
    path = tmp_path / "bad.wav"
    samples = np.full(1600, 0.1, np.float32)
    samples[100] = bad
    sf.write(str(path), samples, 16000, subtype="FLOAT")

    with pytest.raises(NonFiniteAudioError) as error:
        load_audio(path)
    assert_one_line_naming(error, path)


def test_silent_file_only_rejected_when_asked(tmp_path):
    path = tmp_path / "silent.wav"
    save_audio(path, torch.zeros(1, 1600), 16000)

    assert load_audio(path).abs().max() == 0
    with pytest.raises(SilentAudioError) as error:
        load_audio(path, allow_silent=False)
    assert_one_line_naming(error, path)


def test_audio_errors_are_file_errors():
    for cls in (MissingAudioError, UnreadableAudioError, EmptyAudioError, TooShortAudioError, NonFiniteAudioError,
                SilentAudioError):
        assert issubclass(cls, AudioError) and issubclass(cls, FileError) and issubclass(cls, AudiolmError)


# --- saving --------------------------------------------------------------------------------------


def test_save_accepts_1d_2d_and_3d(tmp_path, sine):
    mono = sine(0.1, 16000)[0]
    save_audio(tmp_path / "a.wav", mono, 16000)
    save_audio(tmp_path / "b.wav", torch.from_numpy(mono)[None], 16000)
    save_audio(tmp_path / "c.wav", torch.from_numpy(mono)[None, None], 16000)
    for name in ("a.wav", "b.wav", "c.wav"):
        assert sf.info(str(tmp_path / name)).frames == 1600
    with pytest.raises(ValueError):
        save_audio(tmp_path / "d.wav", torch.zeros(2, 1, 10), 16000)


def test_save_clips_to_unit_range(tmp_path):
    path = tmp_path / "loud.wav"
    save_audio(path, torch.tensor([2.0, -3.0, 0.5]), 16000, subtype="FLOAT")
    np.testing.assert_array_equal(sf.read(str(path), dtype="float32")[0], [1.0, -1.0, 0.5])


def test_save_leaves_no_temporary_files(tmp_path, sine):
    folder = tmp_path / "out"
    names = [f"tone{suffix}" for suffix in FORMATS]
    for name in names:
        save_audio(folder / name, torch.from_numpy(sine(0.2, 16000)), 16000)
        save_audio(folder / name, torch.from_numpy(sine(0.3, 16000)), 16000)  # overwrite
    assert sorted(os.listdir(folder)) == sorted(names)
    assert abs(load_audio(folder / "tone.wav").shape[1] - 4800) <= 2


@pytest.mark.parametrize(
    ("name", "wav", "rate"),
    [
        ("keep.wav", torch.tensor([0.0, float("nan"), 0.1]), 16000),  # refused before writing
        ("keep.wav", torch.tensor([0.0, float("inf")]), 16000),
        ("keep.wav", torch.zeros(100), 0),  # libsndfile fails while writing the temporary file
        ("keep.aiff", torch.zeros(100), 16000),  # unsupported suffix
    ],
)
def test_failed_save_keeps_the_existing_file(tmp_path, name, wav, rate):
    path = tmp_path / name
    path.write_bytes(b"precious old content")

    with pytest.raises(Exception):  # noqa: B017 - the point is what is left on disk
        save_audio(path, wav, rate)

    assert path.read_bytes() == b"precious old content"
    assert os.listdir(tmp_path) == [name]


def test_nan_save_raises_value_error_naming_the_file(tmp_path):
    path = tmp_path / "x.wav"
    with pytest.raises(ValueError, match="NaN") as error:
        save_audio(path, np.array([np.nan], np.float32), 16000)
    assert str(path) in str(error.value)
    assert not path.exists()
