"""The synthetic speakers the Debian TTS engines can make, and their split into train / valid / test.

A speaker is an engine voice plus a pitch (and a speaking rate and a "room" derived from its id):
- espeak-ng: 8 English accents ("en" is British English) x ~97 voice variants x 3 pitches;
- flite: 4 voices (kal16, awb, rms, slt) x 5 pitch shifts;
- festival: 3 voices (kal, ked, slt HTS) x 5 pitch shifts;
- kokoro (neural, when the `kokoro` extra is installed): 5 base voices x 64 mixtures of all five (audiolm.data.kokoro).
Speakers that share a base voice (an espeak variant, a flite or festival voice) form a group; whole
groups are held out for valid and test, so no held-out speaker shares a timbre with a training one.
A corpus draws its speakers from the engines it names (by default espeak, flite and festival).
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from pathlib import Path

from audiolm.data import kokoro
from audiolm.errors import AudiolmError

ESPEAK_ACCENTS = ("en-us", "en", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029", "en-us-nyc")
ESPEAK_VARIANTS_DIR = Path("/usr/lib/x86_64-linux-gnu/espeak-ng-data/voices/!v")
ESPEAK_SKIP_VARIANTS = {"Demonic", "whisper", "whisperf", "Mr serious"}
ESPEAK_PITCHES = (30, 50, 70)
FLITE_VOICES = ("kal16", "awb", "rms", "slt")
FESTIVAL_VOICES = ("kal_diphone", "ked_diphone", "cmu_us_slt_arctic_hts")
SHIFTS_SEMITONES = (-3, -1.5, 0, 1.5, 3)
KOKORO_MIXES = 64  # speakers per Kokoro base voice
ENGINE_WEIGHTS = {"espeak": 0.8, "flite": 0.12, "festival": 0.08, "kokoro": 0.25}  # relative: only the engines chosen count
ENGINES = tuple(ENGINE_WEIGHTS)
DEFAULT_ENGINES = ("espeak", "flite", "festival")
SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class Speaker:
    engine: str  # "espeak" | "flite" | "festival" | "kokoro"
    voice: str  # espeak "en-us+m3", flite "slt", festival "kal_diphone", kokoro "jf_alpha+07" (a mixture)
    pitch: float  # espeak: pitch 0-99; flite / festival: shift in semitones; kokoro: 0 (the mixture sets the pitch)

    @property
    def id(self) -> str:
        voice = self.voice.replace("+", "-").replace("_", "-").replace(" ", "-").lower()
        if self.engine == "kokoro":
            return f"kokoro-{voice}"
        pitch = f"p{int(self.pitch)}" if self.engine == "espeak" else f"s{self.pitch:+g}"
        return f"{self.engine}-{voice}-{pitch}"

    @property
    def group(self) -> str:
        """The base voice: speakers of one group sound alike and are never split across train and test."""
        if self.engine == "espeak":
            return "espeak-" + (self.voice.split("+", 1)[1] if "+" in self.voice else "default")
        if self.engine == "kokoro":
            # The dominant base voice (weight 0.5-0.8). Kokoro has only five, and every mixture holds a little of
            # each, so a held-out group is "mixtures led by a voice that training hears only as a minor ingredient
            # (<= 0.5)": held out far less strictly than an espeak variant, and one group (1/5 of the timbres) each.
            return "kokoro-" + self.voice.split("+", 1)[0]
        return f"{self.engine}-{self.voice}"

    def _unit(self, salt: str) -> float:
        """A number in [0, 1) fixed by the speaker's id, for its rate and room."""
        digest = hashlib.sha256(f"{self.id}/{salt}".encode()).digest()
        return int.from_bytes(digest[:8], "little") / 2**64

    @property
    def rate(self) -> float:
        """Speaking rate relative to the engine's default, 0.85-1.15."""
        return 0.85 + 0.3 * self._unit("rate")

    @property
    def room(self) -> dict[str, float]:
        """Recording conditions kept across the speaker's utterances: reverb (rt60 s, wet mix, seed of its
        impulse response), background noise SNR (dB) and loudness (LUFS)."""
        reverb = self._unit("reverb") < 0.4
        noisy = self._unit("noise") < 0.4
        return {
            "rt60": 0.1 + 0.4 * self._unit("rt60") if reverb else 0.0,
            "wet": 0.1 + 0.25 * self._unit("wet") if reverb else 0.0,
            "ir_seed": int(self._unit("ir") * 2**32),
            "snr_db": 20.0 + 25.0 * self._unit("snr") if noisy else float("inf"),
            "lufs": -30.0 + 12.0 * self._unit("level"),
        }


def espeak_variants() -> list[str]:
    if not ESPEAK_VARIANTS_DIR.is_dir():
        return []
    return sorted(p.name for p in ESPEAK_VARIANTS_DIR.iterdir() if p.name not in ESPEAK_SKIP_VARIANTS)


def kokoro_voices() -> list[str]:
    """The Kokoro mixtures, when its packages are installed."""
    return [f"{base}+{k:02d}" for base in kokoro.BASE_VOICES for k in range(KOKORO_MIXES)] if kokoro.installed() else []


def speaker_inventory(engines: tuple[str, ...] = ENGINES) -> list[Speaker]:
    """Every speaker the installed `engines` can make."""
    speakers = [
        Speaker("espeak", f"{accent}+{variant}" if variant else accent, pitch)
        for accent in ESPEAK_ACCENTS
        for variant in ["", *espeak_variants()]
        for pitch in ESPEAK_PITCHES
    ]
    speakers += [Speaker("flite", voice, shift) for voice in FLITE_VOICES for shift in SHIFTS_SEMITONES]
    speakers += [Speaker("festival", voice, shift) for voice in FESTIVAL_VOICES for shift in SHIFTS_SEMITONES]
    if "kokoro" in engines:
        speakers += [Speaker("kokoro", voice, 0) for voice in kokoro_voices()]
    return [s for s in speakers if s.engine in engines]


def _split_groups(groups: list[str], rng: random.Random) -> dict[str, list[str]]:
    """Hold out ~10% of an engine's groups for test and ~10% for valid (at least one each when there are enough)."""
    groups = sorted(groups)
    rng.shuffle(groups)
    n_test = max(1, round(0.1 * len(groups))) if len(groups) >= 3 else 0
    n_valid = max(1, round(0.1 * len(groups))) if len(groups) >= 4 else 0
    return {"test": groups[:n_test], "valid": groups[n_test:n_test + n_valid], "train": groups[n_test + n_valid:]}


def choose_speakers(num_speakers: int, num_valid: int, num_test: int, seed: int = 0,
                    engines: tuple[str, ...] = DEFAULT_ENGINES) -> dict[str, list[Speaker]]:
    """Pick speakers of `engines` for each split from disjoint voice groups, engines mixed by `ENGINE_WEIGHTS`."""
    if num_speakers < 1 or num_valid < 0 or num_test < 0:
        raise ValueError("need at least one training speaker and non-negative valid / test counts")
    unknown = set(engines) - set(ENGINES)
    if unknown or not engines:
        raise ValueError(f"engines must be some of {', '.join(ENGINES)}, got {', '.join(engines) or 'none'}")
    rng = random.Random(seed)
    inventory = speaker_inventory(tuple(engines))  # the engines in one order, so that a choice depends only on the set
    if "kokoro" in engines and not any(s.engine == "kokoro" for s in inventory):
        raise AudiolmError("the kokoro engine needs its packages: pip install -c constraints.txt -e '.[kokoro]'")
    by_engine: dict[str, list[Speaker]] = {}
    for speaker in inventory:
        by_engine.setdefault(speaker.engine, []).append(speaker)
    pools: dict[str, dict[str, list[Speaker]]] = {split: {} for split in SPLITS}
    for engine, speakers in by_engine.items():
        groups = _split_groups(sorted({s.group for s in speakers}), rng)
        for split, names in groups.items():
            chosen = set(names)
            pools[split][engine] = [s for s in speakers if s.group in chosen]
    counts = {"train": num_speakers, "valid": num_valid, "test": num_test}
    return {split: _draw(pools[split], counts[split], rng) for split in SPLITS}


def _draw(pool: dict[str, list[Speaker]], count: int, rng: random.Random) -> list[Speaker]:
    """Draw `count` speakers, engine by engine in proportion to ENGINE_WEIGHTS (largest remainder)."""
    engines = [e for e in ENGINE_WEIGHTS if pool.get(e)]
    total = sum(ENGINE_WEIGHTS[e] for e in engines)
    quotas = {e: count * ENGINE_WEIGHTS[e] / total for e in engines}
    take = {e: min(int(quotas[e]), len(pool[e])) for e in engines}
    for e in sorted(engines, key=lambda e: quotas[e] - int(quotas[e]), reverse=True):
        if sum(take.values()) < count and take[e] < len(pool[e]):
            take[e] += 1
    for e in engines:  # fill any shortfall from the engines with speakers left
        while sum(take.values()) < count and take[e] < len(pool[e]):
            take[e] += 1
    chosen: list[Speaker] = []
    for e in engines:
        candidates = list(pool[e])
        rng.shuffle(candidates)
        chosen += _spread(candidates, take[e])
    return chosen


def _spread(candidates: list[Speaker], count: int) -> list[Speaker]:
    """Take `count` speakers, cycling over groups so that they come from as many base voices as possible."""
    by_group: dict[str, list[Speaker]] = {}
    for s in candidates:
        by_group.setdefault(s.group, []).append(s)
    queues = list(by_group.values())
    out: list[Speaker] = []
    while len(out) < count and any(queues):
        for queue in queues:
            if queue and len(out) < count:
                out.append(queue.pop())
    return out
