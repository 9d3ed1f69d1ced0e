"""The watermark: marked audio is found after the attacks it must survive, unmarked audio is not, the null distribution
is the one the threshold assumes, and every generation output is marked unless asked not to."""

from __future__ import annotations

import numpy as np
import pytest
import soxr
import torch

from audiolm import watermark
from audiolm.generation.pipeline import AudioLM
from audiolm.watermark import PERIOD, THRESHOLD, detect, embed
from tests.helpers_lm import tiny_bundle

SR = 16000


def speechlike(seconds: float = 3.0, seed: int = 0, sample_rate: int = SR) -> np.ndarray:
    """A voiced, syllable-rate modulated harmonic signal with a gliding pitch and a little breath noise `[L]` float32."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    f0 = 110 + 40 * rng.random() + 25 * np.sin(2 * np.pi * 0.7 * t + rng.random() * 6)
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    voiced = sum(np.sin(h * phase) / h * np.exp(-((h * f0 - 700 * (1 + rng.random())) / 900) ** 2) for h in range(1, 40))
    envelope = np.clip(np.sin(2 * np.pi * 3.5 * t + rng.random() * 6), 0, None) ** 0.7  # syllables and pauses
    wav = envelope * (voiced + 0.02 * rng.standard_normal(len(t)))
    return (0.3 * wav / np.abs(wav).max()).astype(np.float32)


def test_threshold_is_the_union_bound_and_the_cli_says_it():
    from scipy.stats import norm

    from audiolm.cli.detect import DESCRIPTION

    assert THRESHOLD == pytest.approx(norm.isf(watermark.FALSE_POSITIVE_RATE / PERIOD), rel=1e-12)
    assert f"above {THRESHOLD:.2f}" in DESCRIPTION


def test_key_sequence_is_fixed_and_band_limited():
    pn = watermark.key_sequence()
    assert np.array_equal(pn, watermark.key_sequence()) and pn.shape == (PERIOD,)
    assert pn.std() == pytest.approx(1.0)
    power = np.abs(np.fft.rfft(pn)) ** 2
    frequencies = np.fft.rfftfreq(PERIOD, 1 / SR)
    outside = (frequencies < watermark.LOW_HZ) | (frequencies > watermark.HIGH_HZ)
    assert power[outside].sum() < 1e-20 * power.sum()


def test_embed_keeps_shape_type_and_device_and_is_deterministic():
    wav = torch.from_numpy(speechlike(1.0))[None, None]  # [1, 1, L]
    marked = embed(wav, SR)
    assert marked.shape == wav.shape and marked.dtype == torch.float32 and marked.device == wav.device
    assert torch.equal(marked, embed(wav, SR))
    ratio = ((marked - wav) ** 2).mean() / (wav**2).mean()
    assert 10 ** -3.0 < ratio < 10 ** -1.2  # the mark is 12 to 30 dB under the signal
    stereo = np.stack([speechlike(1.0, 1), speechlike(1.0, 2)])  # [C, L]: each channel on its own
    both = embed(stereo, SR)
    assert both.shape == stereo.shape and both.dtype == np.float32
    assert np.allclose(both[1], embed(stereo[1], SR))


@pytest.mark.parametrize("signal", ["speech", "noise", "tone"])
def test_marked_is_found_and_unmarked_is_not(signal):
    rng = np.random.default_rng(5)
    x = {"speech": speechlike(3.0, seed=2), "noise": (0.1 * rng.standard_normal(3 * SR)).astype(np.float32),
         "tone": (0.3 * np.sin(2 * np.pi * 440 * np.arange(3 * SR) / SR)).astype(np.float32)}[signal]
    found = detect(embed(x, SR), SR)
    assert found.watermark and found.score > THRESHOLD + 2 and found.lag == 0  # a pure tone has few bins to carry it
    assert not detect(x, SR).watermark


def test_silence_and_very_short_audio_score_zero():
    assert detect(np.zeros(SR, np.float32), SR).score == 0.0
    assert detect(speechlike(0.02), SR).score == 0.0  # shorter than one 32 ms frame
    assert not detect(embed(np.zeros(SR, np.float32), SR), SR).watermark  # nothing to mark


def test_other_sample_rates_are_marked_and_found():
    x = speechlike(2.0, seed=3, sample_rate=44100)
    marked = embed(x, 44100)
    assert detect(marked, 44100).watermark and not detect(x, 44100).watermark
    assert detect(soxr.resample(marked, 44100, 8000), 8000).watermark  # and at 8 kHz: the band is below 4 kHz


def test_survives_crop_gain_resampling_and_noise():
    marked = embed(speechlike(4.0, seed=4), SR)
    rng = np.random.default_rng(0)
    attacked = {
        "crop to 1 s at an odd offset": marked[12345:12345 + SR],
        "-10 dB": marked * 10 ** (-10 / 20),
        "+10 dB": marked * 10 ** (10 / 20),
        "8 kHz and back": soxr.resample(soxr.resample(marked, SR, 8000), 8000, SR),
        "22.05 kHz and back": soxr.resample(soxr.resample(marked, SR, 22050), 22050, SR),
        "noise at 20 dB SNR": marked + rng.standard_normal(len(marked)) * np.sqrt(np.mean(marked**2) / 100),
    }
    for name, wav in attacked.items():
        assert detect(wav, SR).watermark, name


def test_survives_opus_at_16_kbps_and_a_crop_of_it():
    from audiolm.eval.baselines import opus_roundtrip

    pytest.importorskip("shutil").which("opusenc") or pytest.skip("opus-tools (opusenc) is not installed")
    coded = opus_roundtrip(embed(speechlike(3.0, seed=6), SR), SR, bitrate_kbps=16)
    assert detect(coded, SR).watermark
    assert detect(coded[7777:7777 + SR], SR).watermark


def test_unmarked_scores_follow_the_null_the_threshold_assumes():
    """400 unmarked 1 s windows: the share past 4 is the max-of-PERIOD-normals' (12 %), and past the threshold
    (1e-4 each) at most one."""
    scores = []
    for seed in range(100):
        x = speechlike(4.0, seed=100 + seed) if seed % 2 else (0.1 * np.random.default_rng(seed).standard_normal(4 * SR))
        scores += [detect(x[i * SR:(i + 1) * SR], SR).score for i in range(4)]
    scores = np.array(scores)
    expected = 1 - (1 - 3.167e-5) ** PERIOD  # P(max of PERIOD N(0, 1) > 4) = 0.122
    assert abs((scores > 4).mean() - expected) < 0.05
    assert (scores > THRESHOLD).sum() <= 1


@pytest.mark.parametrize("prompt", ["espeak-en-029-steph2-p70.wav", "festival-kal-diphone-s+0.wav"])
def test_marking_is_inaudible_by_pesq(prompt):
    from audiolm.audio.io import load_audio
    from audiolm.generation.pipeline import BUNDLED_DIR

    pesq = pytest.importorskip("pesq")
    x = load_audio(BUNDLED_DIR / "speech" / "prompts" / prompt, SR)[0].numpy()
    assert pesq.pesq(SR, x, embed(x, SR), "wb") >= 4.0


# --- through the generation pipeline -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def audiolm(tmp_path_factory):
    return AudioLM.load(tiny_bundle(tmp_path_factory.mktemp("bundle")))


@pytest.mark.usefixtures("one_thread")
def test_every_generation_is_marked_by_default_and_not_with_watermark_false(audiolm):
    prompt = torch.from_numpy(speechlike(1.0, seed=8))[None, None]
    runs = {"continue": lambda **kw: audiolm.continue_audio(prompt, 1.0, seed=1, **kw),
            "generate": lambda **kw: audiolm.generate(1.0, seed=1, **kw),
            "resynth": lambda **kw: audiolm.resynthesize(prompt, seed=1, **kw)}
    for mode, run in runs.items():
        marked, plain = run(), run(watermark=False)
        assert marked.watermarked and not plain.watermarked, mode
        assert "watermark" in marked.seconds_per_stage and "watermark" not in plain.seconds_per_stage
        assert torch.equal(marked.codes, plain.codes)  # the same generation: only the mark differs
        assert torch.allclose(marked.wav, embed(plain.wav, plain.sample_rate))
        assert detect(marked.wav[0], marked.sample_rate).watermark, mode
        assert not detect(plain.wav[0], plain.sample_rate).watermark, mode
