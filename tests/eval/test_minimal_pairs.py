"""Minimal pairs: non-words one vowel away from a real word, sentences with two neighbours swapped, same voice."""

import random

import numpy as np

from audiolm.data.speakers import Speaker
from audiolm.eval.minimal_pairs import dictionary, lexical_pairs, nonword, pair_accuracy, render_pairs, syntactic_pairs

TEXTS = ["The quick brown fox jumps over the lazy dog.", "Every morning the farmer walks to the river.",
         "The farmer sells apples and pears at the market.", "A quiet river runs under the old stone bridge."]


def test_nonwords_differ_by_one_vowel_and_are_not_words():
    known = dictionary(["river"])
    fake = nonword("river", known, random.Random(0))
    assert fake and fake not in known and len(fake) == 5 and sum(a != b for a, b in zip(fake, "river")) == 1
    assert nonword("rhythm", known, random.Random(0)) is None  # no vowel to change
    pairs = lexical_pairs(TEXTS, 5)
    assert len(pairs) == 5 and pairs[0].real in {"farmer", "river"}  # the most frequent words come first
    assert pairs == lexical_pairs(TEXTS, 5)  # deterministic


def test_syntactic_pairs_swap_two_neighbours():
    for pair in syntactic_pairs(TEXTS, 4):
        real, fake = pair.real.split(), pair.fake.split()
        assert sorted(real) == sorted(fake) and real != fake
        diff = [i for i, (a, b) in enumerate(zip(real, fake)) if a != b]
        assert len(diff) == 2 and diff[1] == diff[0] + 1


def test_pairs_are_rendered_in_one_voice_and_scored():
    voice = Speaker("espeak", "en-us+m3", 40)
    clips = render_pairs(lexical_pairs(TEXTS, 2), [voice])
    assert len(clips) == 2 and all(len(real) > 1600 and len(fake) > 1600 for real, fake in clips)
    assert pair_accuracy([1.0, 2.0, 3.0], [0.0, 2.0, 4.0]) == 0.5  # a win, a tie (half), a loss
    assert np.isfinite(clips[0][0]).all()
