"""Speak a sentence with one synthetic speaker and return 16 kHz audio with its phone alignment.

espeak-ng runs in-process (libespeak-ng phoneme events); flite runs as a subprocess and prints its
segment end times (`-psdur`); festival runs once per batch of sentences and saves each utterance's
segments (`utt.save.segs`). flite and festival speakers' pitch shifts use signalsmith-stretch, which
keeps durations, so the alignments stay exact. Kokoro (audiolm.data.kokoro, a neural model run by
onnxruntime) speaks espeak-ng's phonemes and reports how many frames it gave each one.
"""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import python_stretch
import soundfile as sf
import soxr

from audiolm.data.espeak import Espeak
from audiolm.data.kokoro import Kokoro
from audiolm.data.speakers import Speaker

Phones = list[tuple[str, float, float]]
PHONE_SETS = {"espeak": "espeak-ipa", "flite": "cmu-arpabet", "festival": "festival-radio", "kokoro": "kokoro-ipa"}


@dataclass(frozen=True)
class Synthesized:
    wav: np.ndarray  # [L] float32 at `sample_rate`
    sample_rate: int
    phones: Phones  # contiguous (phone, start s, end s) from 0 to the end of the audio
    phone_set: str


class TTSError(RuntimeError):
    pass


def synthesize(speakers_texts: list[tuple[Speaker, str]], sample_rate: int = 16000, espeak: Espeak | None = None,
               seeds: list[int] | None = None, kokoro: Kokoro | None = None) -> list[Synthesized]:
    """Synthesize each (speaker, text); festival jobs of one voice share one festival process.

    `seeds` (one per job) fix espeak's noise sources; flite, festival and Kokoro are deterministic already.
    `espeak` and `kokoro` are the handles to reuse (made here when missing: Kokoro's takes seconds to load).
    """
    seeds = seeds or [0] * len(speakers_texts)
    out: list[Synthesized | None] = [None] * len(speakers_texts)
    festival_jobs: dict[str, list[int]] = {}
    for i, (speaker, text) in enumerate(speakers_texts):
        if speaker.engine == "espeak":
            espeak = espeak or Espeak()
            result = espeak.synth(text, speaker.voice, pitch=int(speaker.pitch), rate=int(175 * speaker.rate), seed=seeds[i])
            out[i] = _finish(result.wav, result.sample_rate, result.phones, speaker, sample_rate)
        elif speaker.engine == "flite":
            wav, rate, phones = _flite(text, speaker.voice, speaker.rate)
            out[i] = _finish(wav, rate, phones, speaker, sample_rate)
        elif speaker.engine == "kokoro":
            kokoro = kokoro or Kokoro()
            espeak = espeak or Espeak()
            try:
                spoken = kokoro.synth(text, speaker.voice, speaker.rate, espeak)
            except ValueError as error:  # too many phonemes, or none
                raise TTSError(str(error)) from None
            out[i] = _finish(spoken.wav, spoken.sample_rate, spoken.phones, speaker, sample_rate)
        elif speaker.engine == "festival":
            festival_jobs.setdefault(speaker.voice, []).append(i)
        else:
            raise ValueError(f"unknown TTS engine {speaker.engine!r}")
    for voice, indices in festival_jobs.items():
        jobs = [(speakers_texts[i][1], speakers_texts[i][0].rate) for i in indices]
        for i, (wav, rate, phones) in zip(indices, _festival(voice, jobs)):
            out[i] = _finish(wav, rate, phones, speakers_texts[i][0], sample_rate)
    return [o for o in out if o is not None]


def _finish(wav: np.ndarray, rate: int, phones: Phones, speaker: Speaker, sample_rate: int) -> Synthesized:
    if rate != sample_rate:
        wav = soxr.resample(wav, rate, sample_rate, quality="HQ")
    wav = np.asarray(wav, dtype=np.float32)
    if speaker.engine != "espeak" and speaker.pitch != 0:
        stretch = python_stretch.Signalsmith.Stretch()
        stretch.preset(1, sample_rate)
        stretch.setTransposeSemitones(float(speaker.pitch))
        wav = stretch.process(wav[None, :])[0].astype(np.float32)
    duration = len(wav) / sample_rate
    phones = [(p, min(s, duration), min(e, duration)) for p, s, e in phones if s < duration]
    if phones:
        phones[-1] = (phones[-1][0], phones[-1][1], duration)
    return Synthesized(wav, sample_rate, phones, PHONE_SETS[speaker.engine])


def _ends_to_phones(ends: list[tuple[str, float]], duration: float) -> Phones:
    """(phone, end time) pairs -> contiguous (phone, start, end), the last stretched to `duration`."""
    phones: Phones = []
    start = 0.0
    for name, end in ends:
        end = min(end, duration)
        if end > start:
            phones.append((name, start, end))
            start = end
    if start < duration:
        if phones:
            phones[-1] = (phones[-1][0], phones[-1][1], duration)
        else:
            phones.append(("pau", 0.0, duration))
    return phones


def _flite(text: str, voice: str, rate: float) -> tuple[np.ndarray, int, Phones]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "out.wav"
        command = ["flite", "-voice", voice, "--setf", f"duration_stretch={1 / rate:.3f}", "-psdur", "-t", text, "-o", str(path)]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0 or not path.exists():
            raise TTSError(f"flite failed on {text!r}: {result.stderr.strip()[:200]}")
        wav, sr = sf.read(str(path), dtype="float32")
    ends = []
    for token in result.stdout.split():
        name, _, end = token.rpartition(":")
        if name:
            ends.append((name, float(end)))
    return wav, sr, _ends_to_phones(ends, len(wav) / sr)


def _scheme_string(text: str) -> str:
    return '"' + text.replace("\\", " ").replace('"', " ") + '"'


def _festival(voice: str, jobs: list[tuple[str, float]]) -> list[tuple[np.ndarray, int, Phones]]:
    """Run festival once for all (text, rate) jobs of `voice`."""
    with tempfile.TemporaryDirectory() as tmp:
        lines = [f"(voice_{voice})"]
        for i, (text, rate) in enumerate(jobs):
            lines += [
                f"(Parameter.set 'Duration_Stretch {1 / rate:.3f})",
                f"(set! utt (Utterance Text {_scheme_string(text)}))",
                "(utt.synth utt)",
                f"(utt.save.wave utt \"{tmp}/{i}.wav\" 'riff)",
                f"(utt.save.segs utt \"{tmp}/{i}.segs\")",
            ]
        script = Path(tmp) / "run.scm"
        script.write_text("\n".join(lines) + "\n")
        result = subprocess.run(["festival", "-b", str(script)], capture_output=True, text=True)
        out = []
        for i, (text, _) in enumerate(jobs):
            wav_path, segs_path = Path(tmp) / f"{i}.wav", Path(tmp) / f"{i}.segs"
            if not wav_path.exists() or not segs_path.exists():
                raise TTSError(f"festival ({voice}) failed on {text!r}: {result.stderr.strip()[:200]}")
            wav, sr = sf.read(str(wav_path), dtype="float32")
            ends = []
            for line in segs_path.read_text().splitlines():
                fields = line.split()
                if len(fields) == 3 and fields[0] != "#":
                    ends.append((fields[2], float(fields[0])))
            out.append((wav, sr, _ends_to_phones(ends, len(wav) / sr)))
    return out
