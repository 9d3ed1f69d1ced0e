"""Codec metrics and classic-codec baselines on a real espeak-ng clip, with the real codec tools (no mocks)."""

from __future__ import annotations

import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from audiolm.audio.io import load_audio
from audiolm.eval.baselines import codec2_roundtrip, opus_roundtrip
from audiolm.eval.codec_metrics import (
    METRICS,
    align,
    estimate_delay,
    evaluate,
    mel_distance,
    pesq_wb,
    si_sdr,
    stoi,
    summarize,
    visqol_speech,
)

TEXT = "The quick brown fox jumps over the lazy dog."  # about 2.8 s with espeak-ng's default voice


def _needs(*tools: str) -> pytest.MarkDecorator:
    missing = [tool for tool in tools if shutil.which(tool) is None]
    return pytest.mark.skipif(bool(missing), reason=f"not installed: {', '.join(missing)}")


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    """An espeak-ng sentence at 16 kHz, float32 `[L]`."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    path = Path(tmp_path_factory.mktemp("speech")) / "fox.wav"
    subprocess.run(["espeak-ng", "-w", str(path), TEXT], check=True, capture_output=True)
    return load_audio(path, 16000)[0].numpy()


def _with_noise(wav: np.ndarray, snr_db: float, seed: int = 0) -> np.ndarray:
    noise = np.random.default_rng(seed).standard_normal(len(wav))
    noise *= np.sqrt(np.mean(wav.astype(np.float64) ** 2) / np.mean(noise**2) / 10 ** (snr_db / 10))
    return (wav + noise).astype(np.float32)


def test_identical_signals_score_perfectly(speech: np.ndarray) -> None:
    scores = evaluate(speech, speech.copy())
    assert list(scores) == list(METRICS)
    assert scores["pesq_wb"] == pytest.approx(4.64, abs=0.02)
    assert scores["stoi"] == pytest.approx(1.0, abs=1e-6)
    assert scores["visqol"] > 4.3
    assert scores["mel_distance"] <= 1e-4  # one batched STFT for both: 1 ulp apart costs ~1e-6; 60 dB SNR costs 0.26
    assert scores["si_sdr"] > 100


def test_torch_and_numpy_inputs_agree(speech: np.ndarray) -> None:
    noisy = _with_noise(speech, 20)
    as_torch = torch.from_numpy(noisy).unsqueeze(0)  # [1, L]
    assert si_sdr(torch.from_numpy(speech), as_torch) == pytest.approx(si_sdr(speech, noisy))
    assert mel_distance(speech[None], as_torch) == pytest.approx(mel_distance(speech, noisy))
    with pytest.raises(ValueError, match="mono"):
        si_sdr(np.stack([speech, speech]), speech)


def test_more_noise_scores_worse(speech: np.ndarray) -> None:
    rows = [evaluate(speech, _with_noise(speech, snr), align_first=False) for snr in (30, 20, 10)]
    for key in ("pesq_wb", "stoi", "visqol", "si_sdr"):
        values = [row[key] for row in rows]
        assert values[0] > values[1] > values[2], (key, values)
    distances = [row["mel_distance"] for row in rows]
    assert distances[0] < distances[1] < distances[2]
    assert [row["si_sdr"] for row in rows] == pytest.approx([30, 20, 10], abs=0.5)


@pytest.mark.parametrize("delay", [0, 7, 321, -150])
def test_align_recovers_an_integer_delay(speech: np.ndarray, delay: int) -> None:
    noisy = _with_noise(speech, 25, seed=1)
    delayed = np.concatenate([np.zeros(max(delay, 0), np.float32), noisy[max(-delay, 0):]])[: len(speech)]  # as long as speech
    assert estimate_delay(speech, delayed) == delay
    ref, deg = align(speech, delayed)
    assert len(ref) == len(deg) == len(speech) - abs(delay)
    np.testing.assert_array_equal(deg, noisy[max(-delay, 0):][: len(deg)].astype(np.float64))


def test_silence_gives_nan_not_an_error(speech: np.ndarray) -> None:
    silence = np.zeros(32000)
    assert math.isnan(pesq_wb(silence, silence))
    assert math.isnan(pesq_wb(speech[:2000], speech[:2000]))  # shorter than PESQ's 1/4 s
    assert math.isnan(visqol_speech(silence, silence))
    assert estimate_delay(silence, speech) == 0


@_needs("opusenc", "opusdec")
def test_opus_at_12_kbps_beats_6_kbps(speech: np.ndarray) -> None:
    decoded = {kbps: opus_roundtrip(speech, 16000, bitrate_kbps=kbps) for kbps in (6.0, 12.0)}
    for wav in decoded.values():
        assert wav.dtype == np.float32 and wav.ndim == 1
        assert abs(len(wav) - len(speech)) < 400
    assert pesq_wb(*align(speech, decoded[12.0])) > pesq_wb(*align(speech, decoded[6.0]))


@_needs("opusenc", "opusdec")
def test_opus_takes_other_rates(speech: np.ndarray) -> None:
    import soxr

    decoded = opus_roundtrip(soxr.resample(speech, 16000, 22050), 22050, bitrate_kbps=12.0)
    assert abs(len(decoded) - len(speech)) < 400
    assert stoi(*align(speech, decoded)) > 0.9


@_needs("c2enc", "c2dec")
def test_codec2_is_intelligible_after_alignment(speech: np.ndarray) -> None:
    decoded = codec2_roundtrip(torch.from_numpy(speech).unsqueeze(0), 16000, mode=3200)
    assert decoded.dtype == np.float32 and abs(len(decoded) - len(speech)) < 400
    assert 160 < estimate_delay(speech, decoded) < 500  # a few hundred samples, as documented
    assert stoi(*align(speech, decoded)) > 0.6
    with pytest.raises(ValueError, match="mode"):
        codec2_roundtrip(speech, mode=1234)


def test_missing_tool_is_named(speech: np.ndarray, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RuntimeError, match="opusenc"):
        opus_roundtrip(speech)
    with pytest.raises(RuntimeError, match="c2enc"):
        codec2_roundtrip(speech)


def test_summarize_ignores_nan() -> None:
    rows = [
        {"pesq_wb": 2.0, "stoi": 0.9},
        {"pesq_wb": math.nan, "stoi": 0.7},
        {"pesq_wb": 3.0, "stoi": math.nan, "visqol": math.nan},
    ]
    summary = summarize(rows)
    assert summary["pesq_wb"] == pytest.approx(2.5)
    assert summary["stoi"] == pytest.approx(0.8)
    assert math.isnan(summary["visqol"])
    assert summarize([]) == {}
