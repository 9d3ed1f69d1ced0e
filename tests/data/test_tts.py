"""The TTS engines speak with phone alignments that cover the audio exactly."""

import numpy as np
import pytest

from audiolm.data.espeak import Espeak
from audiolm.data.speakers import Speaker
from audiolm.data.tts import _flite, synthesize

TEXT = "The quick brown fox jumps over the lazy dog."


@pytest.fixture(scope="module")
def espeak():
    return Espeak()


def assert_alignment_covers(out):
    duration = len(out.wav) / out.sample_rate
    phones = out.phones
    assert phones[0][1] == 0.0
    assert phones[-1][2] == pytest.approx(duration, abs=1e-6)
    for (_, _, end), (_, start, _) in zip(phones, phones[1:]):
        assert end == pytest.approx(start)  # contiguous
    assert all(e > s for _, s, e in phones)
    assert len([p for p, _, _ in phones if p not in ("sil", "pau")]) >= 20  # ~30 phones in the sentence


@pytest.mark.parametrize("speaker", [
    Speaker("espeak", "en-us+m3", 50),
    Speaker("flite", "slt", 0),
    Speaker("flite", "kal16", 1.5),
    Speaker("festival", "kal_diphone", 0),
])
def test_engines_give_16khz_audio_and_full_alignment(speaker, espeak):
    (out,) = synthesize([(speaker, TEXT)], 16000, espeak)
    assert out.sample_rate == 16000 and out.wav.dtype == np.float32
    assert 1.5 < len(out.wav) / 16000 < 6.0
    assert np.abs(out.wav).max() > 0.01
    assert_alignment_covers(out)


def test_pitch_shift_keeps_duration_and_alignment(espeak):
    speaker = Speaker("flite", "rms", 3)
    raw, rate, raw_phones = _flite(TEXT, "rms", speaker.rate)
    (shifted,) = synthesize([(speaker, TEXT)], 16000, espeak)
    assert rate == 16000
    assert len(shifted.wav) == len(raw)
    assert [p for p, _, _ in shifted.phones] == [p for p, _, _ in raw_phones]
    assert not np.allclose(raw, shifted.wav, atol=1e-3)


def test_espeak_pitch_and_voice_change_the_audio(espeak):
    a = espeak.synth(TEXT, "en-us+m3", pitch=30)
    b = espeak.synth(TEXT, "en-us+m3", pitch=70)
    c = espeak.synth(TEXT, "en-gb-scotland+f2", pitch=30)
    assert a.sample_rate == 22050
    assert abs(len(a.wav) - len(b.wav)) < 0.02 * len(a.wav)  # pitch leaves timing (nearly) alone
    n = min(len(a.wav), len(b.wav), len(c.wav))
    assert not np.allclose(a.wav[:n], b.wav[:n], atol=1e-3)
    assert not np.allclose(a.wav[:n], c.wav[:n], atol=1e-3)


def test_unknown_espeak_voice_is_refused(espeak):
    with pytest.raises(ValueError, match="no voice"):
        espeak.synth(TEXT, "xx-nonexistent")
