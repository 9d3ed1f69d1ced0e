"""A few synthesized held-out utterances of two voices, with transcripts, for `audiolm eval` and the acoustic benchmark."""

from __future__ import annotations

from pathlib import Path

from audiolm.audio.io import save_audio
from audiolm.data.manifest import Entry, write_manifest
from audiolm.data.speakers import Speaker
from audiolm.data.tts import synthesize

TEXTS = ["the farmer walks to the river every morning", "a quiet river runs under the old bridge",
         "the children play in the garden after school", "the farmer sells apples at the market"]


def speech_corpus(folder: Path) -> Path:
    """Two voices, two `test` utterances each (and `train` entries for the minimal pairs' words): the manifest."""
    voices = [Speaker("espeak", "en-us+m3", 30), Speaker("espeak", "en-us+f4", 80)]
    entries = []
    for v, voice in enumerate(voices):
        for t, text in enumerate(TEXTS[:2] if v == 0 else TEXTS[2:]):
            wav = synthesize([(voice, text)], 16000)[0].wav
            save_audio(folder / f"v{v}-{t}.wav", wav, 16000)
            entries.append(Entry(id=f"v{v}-{t}", path=f"v{v}-{t}.wav", duration=len(wav) / 16000, sample_rate=16000,
                                 speaker=voice.id, split="test", text=text))
    entries += [Entry(id=f"train{t}", path="v0-0.wav", duration=1.0, sample_rate=16000, speaker="x", split="train", text=text)
                for t, text in enumerate(TEXTS)]
    write_manifest(folder / "manifest.jsonl", entries)
    return folder / "manifest.jsonl"
