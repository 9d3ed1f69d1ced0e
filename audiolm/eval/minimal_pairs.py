"""sWUGGY- and sBLIMP-style minimal pairs that we synthesize: a word against a non-word made from it by changing one
vowel (lexical), a sentence against the same words with two neighbours swapped (syntactic); both members of a pair
are spoken by the same held-out voice. A language model over sounds "knows" the language when it finds the real
member more likely (ZeroSpeech 2021; AudioLM reports 71.5 % sWUGGY and 64.7 % sBLIMP).

    pairs = lexical_pairs(texts, 50) + syntactic_pairs(texts, 50)
    clips = render_pairs(pairs, voices)            # [(real wav, fake wav)], same voice per pair
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audiolm.data.speakers import Speaker

DICTIONARY = Path("/usr/share/dict/words")
VOWELS = "aeiou"
_WORD = re.compile(r"[a-z]+")


@dataclass(frozen=True)
class Pair:
    kind: str  # "lexical" | "syntactic"
    real: str
    fake: str


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def dictionary(extra: Sequence[str] = ()) -> set[str]:
    """Known English words (the system word list when installed, plus `extra`)."""
    words = set(extra)
    if DICTIONARY.is_file():
        words |= {w.strip().lower() for w in DICTIONARY.read_text(errors="ignore").splitlines()}
    return words


def nonword(word: str, known: set[str], rng: random.Random, tries: int = 40) -> str | None:
    """`word` with one vowel replaced by another so that it is no known word; None if none is found."""
    positions = [i for i, c in enumerate(word) if c in VOWELS]
    for _ in range(tries if positions else 0):
        i = rng.choice(positions)
        candidate = word[:i] + rng.choice([v for v in VOWELS if v != word[i]]) + word[i + 1:]
        if candidate not in known:
            return candidate
    return None


def lexical_pairs(texts: Sequence[str], count: int, seed: int = 0, min_letters: int = 4, max_letters: int = 9) -> list[Pair]:
    """Frequent words of `texts` (the training transcripts: words the LM has heard) against non-words."""
    frequency = Counter(w for text in texts for w in _words(text) if min_letters <= len(w) <= max_letters)
    known = dictionary(frequency)
    rng = random.Random(seed)
    pairs = []
    for word, _ in frequency.most_common():
        fake = nonword(word, known, rng)
        if fake is not None:
            pairs.append(Pair("lexical", word, fake))
        if len(pairs) == count:
            break
    return pairs


def syntactic_pairs(texts: Sequence[str], count: int, seed: int = 0, min_words: int = 4, max_words: int = 10) -> list[Pair]:
    """Sentences of `texts` against the same sentence with two different neighbouring words swapped."""
    rng = random.Random(seed)
    candidates = sorted({" ".join(_words(t)) for t in texts if min_words <= len(_words(t)) <= max_words})
    rng.shuffle(candidates)
    pairs = []
    for sentence in candidates:
        words = sentence.split()
        spots = [i for i in range(len(words) - 1) if words[i] != words[i + 1]]
        if not spots:
            continue
        i = rng.choice(spots)
        swapped = words[:i] + [words[i + 1], words[i]] + words[i + 2:]
        pairs.append(Pair("syntactic", sentence, " ".join(swapped)))
        if len(pairs) == count:
            break
    return pairs


def render_pairs(pairs: Sequence[Pair], voices: Sequence[Speaker], sample_rate: int = 16000,
                 seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Speak both members of each pair in one voice (voices taken in turn), in that voice's recording conditions."""
    from audiolm.data.espeak import Espeak
    from audiolm.data.synth_speech import place_in_room
    from audiolm.data.tts import synthesize

    espeak = Espeak()
    clips = []
    for index, pair in enumerate(pairs):
        voice = voices[index % len(voices)]
        real, fake = synthesize([(voice, pair.real), (voice, pair.fake)], sample_rate, espeak, seeds=[seed + index] * 2)
        clips.append(tuple(place_in_room(out.wav, voice, index, sample_rate, True, seed) for out in (real, fake)))
    return clips


def pair_accuracy(real_scores: Sequence[float], fake_scores: Sequence[float]) -> float:
    """Fraction of pairs whose real member scores higher (ties count half)."""
    real, fake = np.asarray(real_scores), np.asarray(fake_scores)
    return float(((real > fake) + 0.5 * (real == fake)).mean())
