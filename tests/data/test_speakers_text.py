"""The speaker inventory, the held-out speaker split, and the sentence pool."""

from audiolm.data.speakers import choose_speakers, speaker_inventory
from audiolm.data.text import clean_sentence, sentence_pool


def test_inventory_is_large_and_ids_unique():
    inventory = speaker_inventory()
    assert len(inventory) > 2000
    assert len({s.id for s in inventory}) == len(inventory)
    assert {s.engine for s in inventory} - {"kokoro"} == {"espeak", "flite", "festival"}  # kokoro: when its extra is installed


def test_held_out_speakers_share_no_voice_group_with_training():
    chosen = choose_speakers(60, 8, 8, seed=3)
    assert [len(chosen[s]) for s in ("train", "valid", "test")] == [60, 8, 8]
    groups = {split: {s.group for s in speakers} for split, speakers in chosen.items()}
    assert not groups["train"] & groups["test"]
    assert not groups["train"] & groups["valid"]
    assert not groups["valid"] & groups["test"]
    assert {s.engine for s in chosen["train"]} == {"espeak", "flite", "festival"}
    assert choose_speakers(60, 8, 8, seed=3) == chosen
    assert choose_speakers(60, 8, 8, seed=4) != chosen


def test_speaker_rate_and_room_are_fixed_by_id():
    a, b = speaker_inventory()[:2]
    assert a.rate == speaker_inventory()[0].rate
    assert 0.85 <= a.rate <= 1.15 and 0.85 <= b.rate <= 1.15
    assert a.room == speaker_inventory()[0].room


def test_sentences_are_plain_speakable_ascii():
    pool = sentence_pool(seed=0)
    assert len(pool) > 30000
    assert pool[:50] == sentence_pool(seed=0)[:50]
    for sentence in pool[:2000]:
        assert sentence.isascii() and '"' not in sentence
        assert 4 <= len(sentence.split()) <= 30
    assert clean_sentence('He said "hi" to me today.') is None
    assert clean_sentence("  Too   short  ") is None
    assert clean_sentence("This one   is fine, really.") == "This one is fine, really."


def test_turn_order_spreads_every_split_over_any_prefix():
    from audiolm.data.synth_speech import interleave

    chosen = choose_speakers(100, 8, 8, seed=0)
    order = interleave(chosen)
    assert sorted(s.id for s in order) == sorted(s.id for group in chosen.values() for s in group)
    split_of = {s.id: split for split, group in chosen.items() for s in group}
    first = [split_of[s.id] for s in order[:29]]
    assert first.count("valid") >= 1 and first.count("test") >= 1
