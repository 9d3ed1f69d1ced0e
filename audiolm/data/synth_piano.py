"""Build a piano corpus: scores from music21's corpus and generated MIDI, rendered by fluidsynth.

Layout of a corpus folder:
    corpus.json                       settings
    audio/<clip>.wav                  16 kHz mono, at most `clip_seconds` long
    audio/<clip>.mid                  the notes of that clip, times relative to its start
    audio/<clip>.json                 source piece, split, duration, the piece's number of clips (written after
                                      every clip's audio and MIDI: the commit marker)
    manifest.jsonl                    every clip, and manifest.{train,valid,test}.jsonl
Piece i is fixed by the seed (every third piece is generated, the others come from music21's corpus
in a shuffled order); scores that fail to parse or render are skipped and counted. Clips of one piece
share its split, so held-out music is never heard in training. The corpus is pieces 0..n-1, the fewest
that hold `hours` of audio (`corpus.prefix`), so a killed build run again ends with the same clips.
"""

from __future__ import annotations

import hashlib
import json
import random
import subprocess
import tempfile
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pretty_midi
import soundfile as sf
import torch
from tqdm import tqdm

from audiolm.audio.dsp import normalize_loudness
from audiolm.audio.io import save_audio
from audiolm.data.corpus import claim_folder, existing_items, finish_corpus, prefix
from audiolm.errors import AudiolmError
from audiolm.formats.atomic import atomic_path, write_json

SOUNDFONTS = (Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"), Path("/usr/share/sounds/sf2/TimGM6mb.sf2"))
SCORE_SUFFIXES = {".krn", ".mxl", ".xml", ".musicxml", ".abc"}
MIN_CLIP_SECONDS = 4.0
FORMAT_VERSION = 1  # bump when the piece table (sources, rendering, clipping) changes


@dataclass(kw_only=True)
class PianoCorpusConfig:
    hours: float
    clip_seconds: float = 20.0
    max_clips_per_piece: int = 3  # many short excerpts beat a few long pieces for variety
    generated_every: int = 3  # every n-th piece is generated MIDI
    held_out_fraction: float = 0.05  # of pieces, for valid and for test each
    seed: int = 0
    sample_rate: int = 16000
    soundfont: str = ""  # empty: the first of SOUNDFONTS that is installed

    def __post_init__(self) -> None:
        if not self.hours > 0:
            raise ValueError(f"hours must be positive, got {self.hours}")
        if self.clip_seconds < MIN_CLIP_SECONDS:
            raise ValueError(f"clip_seconds must be at least {MIN_CLIP_SECONDS}")
        if not self.soundfont:
            found = [str(p) for p in SOUNDFONTS if p.is_file()]
            if not found:
                raise AudiolmError("no soundfont found: install the Debian package fluid-soundfont-gm, or pass one")
            self.soundfont = found[0]
        elif not Path(self.soundfont).is_file():
            raise AudiolmError(f"{self.soundfont}: no such soundfont file")

    def identity(self) -> dict:
        """The settings that fix each clip's content; a corpus resumes only under the same ones."""
        return {**{k: v for k, v in asdict(self).items() if k != "hours"}, "format": FORMAT_VERSION}


def score_paths(seed: int) -> list[str]:
    """music21's corpus scores, as paths relative to its corpus folder, shuffled by `seed`."""
    from music21 import common, corpus

    root = Path(common.getCorpusFilePath())
    paths = sorted(str(Path(p).relative_to(root)) for p in corpus.getPaths() if Path(p).suffix in SCORE_SUFFIXES)
    random.Random(seed).shuffle(paths)
    return paths


def piece_source(index: int, config: PianoCorpusConfig, scores: list[str]) -> str:
    """Piece `index`: "generated:<index>" or "music21:<corpus path>"."""
    if config.generated_every and index % config.generated_every == config.generated_every - 1:
        return f"generated:{index}"
    return f"music21:{scores[index % len(scores)]}"


def split_of(source: str, fraction: float, seed: int) -> str:
    unit = int.from_bytes(hashlib.sha256(f"{seed}/{source}".encode()).digest()[:8], "little") / 2**64
    return "test" if unit < fraction else "valid" if unit < 2 * fraction else "train"


def score_to_midi(source: str, path: Path) -> pretty_midi.PrettyMIDI:
    """Export a music21 score to MIDI with every part on an acoustic grand piano."""
    from music21 import common, converter, instrument, stream

    score = converter.parse(str(Path(common.getCorpusFilePath()) / source))
    if isinstance(score, stream.Opus):
        score = score.scores[0]
    for part in score.parts if hasattr(score, "parts") and score.parts else [score]:
        for old in part.recurse().getElementsByClass(instrument.Instrument):
            part.remove(old, recurse=True)
        part.insert(0, instrument.Piano())
    score.write("midi", fp=str(path))
    midi = pretty_midi.PrettyMIDI(str(path))
    for inst in midi.instruments:
        inst.program, inst.is_drum = 0, False
    return midi


def generated_midi(index: int, seed: int, seconds: float = 45.0) -> pretty_midi.PrettyMIDI:
    """A random tonal piano piece: a chord progression under a stepwise melody, with varied accompaniment."""
    rng = random.Random(f"{seed}/{index}")
    tonic = rng.randrange(48, 60)
    minor = rng.random() < 0.35
    scale = [0, 2, 3, 5, 7, 8, 10] if minor else [0, 2, 4, 5, 7, 9, 11]
    progressions = [[0, 3, 4, 0], [0, 5, 3, 4], [0, 4, 5, 3], [1, 4, 0, 0], [0, 3, 1, 4]]
    progression = rng.choice(progressions)
    beat = 60.0 / rng.uniform(70, 150)
    style = rng.choice(["block", "arpeggio", "alberti", "bass"])
    midi = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(program=0, name="piano")
    t, bar, degree = 0.0, 0, rng.randrange(7)
    while t < seconds:
        root = progression[bar % len(progression)]
        chord = [tonic + scale[(root + k) % 7] + 12 * ((root + k) // 7) for k in (0, 2, 4)]
        velocity = rng.randint(50, 90)
        if style == "block":
            for pitch in chord:
                piano.notes.append(pretty_midi.Note(velocity, pitch, t, t + 4 * beat))
        elif style == "bass":
            for b in range(4):
                piano.notes.append(pretty_midi.Note(velocity, chord[0] - 12 + (7 if b % 2 else 0), t + b * beat, t + (b + 1) * beat))
        else:
            pattern = [0, 1, 2, 1, 0, 1, 2, 1] if style == "arpeggio" else [0, 2, 1, 2, 0, 2, 1, 2]
            for k, step in enumerate(pattern):
                start = t + k * beat / 2
                piano.notes.append(pretty_midi.Note(velocity - 10, chord[step], start, start + beat / 2))
        m = 0.0
        while m < 4:
            length = rng.choice([0.5, 0.5, 1.0, 1.0, 1.5, 2.0])
            degree = max(0, min(13, degree + rng.choice([-2, -1, -1, 0, 1, 1, 2])))
            pitch = tonic + 12 + scale[degree % 7] + 12 * (degree // 7)
            piano.notes.append(pretty_midi.Note(rng.randint(60, 105), pitch, t + m * beat, t + min(4, m + length) * beat))
            m += length
        t += 4 * beat
        bar += 1
    midi.instruments.append(piano)
    return midi


def clip_midi(midi: pretty_midi.PrettyMIDI, start: float, end: float) -> pretty_midi.PrettyMIDI:
    """The notes sounding in [start, end), cut to the window and shifted to start at 0."""
    out = pretty_midi.PrettyMIDI()
    for inst in midi.instruments:
        clipped = pretty_midi.Instrument(program=inst.program, is_drum=inst.is_drum, name=inst.name)
        for note in inst.notes:
            if note.end > start and note.start < end:
                note_start, note_end = max(note.start, start) - start, min(note.end, end) - start
                clipped.notes.append(pretty_midi.Note(note.velocity, note.pitch, note_start, note_end))
        out.instruments.append(clipped)
    return out


def render(midi_path: Path, soundfont: str, sample_rate: int) -> np.ndarray:
    """fluidsynth's rendering of a MIDI file, mono `[L]` float32."""
    with tempfile.TemporaryDirectory() as tmp:
        wav_path = Path(tmp) / "out.wav"
        command = ["fluidsynth", "-ni", "-q", "-r", str(sample_rate), "-F", str(wav_path), soundfont, str(midi_path)]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0 or not wav_path.is_file():
            raise RuntimeError(f"fluidsynth failed: {result.stderr.strip()[:200]}")
        audio, _ = sf.read(str(wav_path), dtype="float32", always_2d=True)
    return audio.mean(axis=1)


def _run_piece(out_dir: str, index: int, config: PianoCorpusConfig, scores: list[str]) -> tuple[list[float], str | None]:
    """Render piece `index` into clips; return their durations, or the reason it was skipped."""
    torch.set_num_threads(1)
    source = piece_source(index, config, scores)
    kind, _, name = source.partition(":")
    audio_dir = Path(out_dir) / "audio"
    audio_dir.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            full_path = Path(tmp) / "piece.mid"
            midi = generated_midi(index, config.seed) if kind == "generated" else score_to_midi(name, full_path)
            if not any(inst.notes for inst in midi.instruments):
                return [], f"{source}: no notes"
            length = min(midi.get_end_time(), config.clip_seconds * config.max_clips_per_piece)
            midi = clip_midi(midi, 0.0, length)
            midi.write(str(full_path))
            audio = render(full_path, config.soundfont, config.sample_rate)
    except Exception as error:  # music21 raises many kinds on scores it cannot handle
        return [], f"{source}: {type(error).__name__}: {str(error).splitlines()[0][:120] if str(error) else ''}"
    split = split_of(source, config.held_out_fraction, config.seed)
    clips = []
    for k in range(config.max_clips_per_piece):
        start, end = k * config.clip_seconds, min((k + 1) * config.clip_seconds, length)
        if end - start < MIN_CLIP_SECONDS:
            break
        wav = audio[int(start * config.sample_rate):int(end * config.sample_rate)]
        if float(np.abs(wav).max(initial=0.0)) < 1e-4:
            continue
        clip = f"piano-{index:06d}-{k}"
        wav = normalize_loudness(torch.from_numpy(wav), config.sample_rate, -23.0).numpy()
        save_audio(audio_dir / f"{clip}.wav", wav, config.sample_rate)
        with atomic_path(audio_dir / f"{clip}.mid") as tmp_mid:
            clip_midi(midi, start, end).write(str(tmp_mid))
        clips.append((clip, start, len(wav) / config.sample_rate))
    for clip, start, duration in clips:  # the sidecars last: the piece is complete once every clip has its own
        write_json(audio_dir / f"{clip}.json", {
            "id": clip, "index": index, "source": source, "split": split, "duration": duration,
            "midi": f"{clip}.mid", "clip_start": start, "clips": len(clips),
        })
    return [duration for _, _, duration in clips], None


def build_piano_corpus(out_dir: str | Path, config: PianoCorpusConfig, workers: int = 2, progress: bool = True) -> dict:
    """Render (or resume) a piano corpus in `out_dir`; return its summary."""
    out_dir = Path(out_dir)
    claim_folder(out_dir, asdict(config), config.identity())
    scores = score_paths(config.seed)
    done = existing_items(out_dir)
    # Pieces that were tried and skipped leave no files; remember them so a resume does not retry them.
    skipped_file = out_dir / "skipped.json"
    skipped = {int(k): v for k, v in json.loads(skipped_file.read_text()).items()} if skipped_file.is_file() else {}
    target = config.hours * 3600
    n, total = prefix(done, skipped, target)
    bar = tqdm(total=round(target), initial=min(round(total), round(target)), unit="s audio", desc="synth-piano", disable=not progress)
    pending = (i for i in range(10**9) if i not in done and i not in skipped)  # in order: the gaps a kill left come first
    with ProcessPoolExecutor(workers) as pool:
        running: dict = {}
        while total < target or running:
            per_piece = total / n if n else config.clip_seconds * config.max_clips_per_piece / 2
            while total + len(running) * per_piece < target and len(running) < 2 * workers:
                index = next(pending)
                running[pool.submit(_run_piece, str(out_dir), index, config, scores)] = index
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                index = running.pop(future)
                durations, problem = future.result()
                if problem:
                    skipped[index] = problem
                else:
                    done[index] = sum(durations)
            n, total = prefix(done, skipped, target, n, total)
            bar.update(min(round(total), bar.total) - bar.n)
    bar.close()
    write_json(skipped_file, {str(k): v for k, v in sorted(skipped.items())})
    pieces = range(n)
    kept = [i for i in pieces if i in done]
    generated = sum(1 for i in kept if piece_source(i, config, scores).startswith("generated"))
    return finish_corpus(out_dir, pieces, pieces=len(kept), skipped_pieces=sum(1 for i in pieces if i in skipped),
                         generated_pieces=generated)
