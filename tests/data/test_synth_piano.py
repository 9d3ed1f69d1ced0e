"""A tiny piano corpus: clips with their MIDI, generated pieces, resume."""

import json

import pretty_midi
import pytest
import soundfile as sf

from audiolm.data.manifest import read_manifest
from audiolm.data.synth_piano import PianoCorpusConfig, build_piano_corpus, clip_midi, generated_midi

CONFIG = dict(clip_seconds=5.0, max_clips_per_piece=2, seed=0, soundfont="/usr/share/sounds/sf2/TimGM6mb.sf2")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("piano")
    return out, build_piano_corpus(out, PianoCorpusConfig(hours=0.01, **CONFIG), workers=2, progress=False)


def test_clips_are_16khz_mono_with_their_midi(corpus):
    out, summary = corpus
    assert summary["all"]["hours"] >= 0.01
    assert summary["generated_pieces"] >= 1
    entries = read_manifest(out / "manifest.jsonl")
    assert entries
    for e in entries:
        path = e.audio_path(out)
        info = sf.info(str(path))
        assert info.samplerate == 16000 and info.channels == 1
        assert 4.0 <= e.duration <= 5.0 + 1e-6
        midi = pretty_midi.PrettyMIDI(str(path.with_name(e.extra["midi"])))
        notes = [n for inst in midi.instruments for n in inst.notes]
        assert notes and all(0 <= n.start < n.end <= e.duration + 1e-3 for n in notes)
        assert all(inst.program == 0 for inst in midi.instruments)
        assert e.extra["source"].split(":")[0] in {"music21", "generated"}


def test_clips_of_a_piece_share_its_split(corpus):
    out, _ = corpus
    by_source = {}
    for e in read_manifest(out / "manifest.jsonl"):
        by_source.setdefault(e.extra["source"], set()).add(e.split)
    assert all(len(splits) == 1 for splits in by_source.values())


def test_rerun_resumes(corpus):
    out, summary = corpus
    again = build_piano_corpus(out, PianoCorpusConfig(hours=0.01, **CONFIG), workers=1, progress=False)
    assert again["all"] == summary["all"]
    assert json.loads((out / "skipped.json").read_text()) is not None


def test_generated_midi_is_seeded_and_clips_shift_to_zero():
    a, b, c = generated_midi(2, 0, 20.0), generated_midi(2, 0, 20.0), generated_midi(5, 0, 20.0)
    notes = lambda m: [(n.pitch, n.start, n.end) for i in m.instruments for n in i.notes]  # noqa: E731
    assert notes(a) == notes(b) and notes(a) != notes(c)
    clip = clip_midi(a, 5.0, 10.0)
    assert all(0.0 <= s < e <= 5.0 + 1e-9 for _, s, e in notes(clip))
    assert len(notes(clip)) > 0
