"""Build a multi-speaker English speech corpus from the Debian TTS engines.

Layout of a corpus folder:
    corpus.json                       settings and the speakers of each split
    audio/<speaker>/<utt>.wav         16 kHz mono
    audio/<speaker>/<utt>.json        transcript, speaker, split, phone alignment (written after the wav)
    manifest.jsonl                    every utterance, and manifest.{train,valid,test}.jsonl
Utterance i is fixed by the seed (its speaker, sentence, noise and room; espeak's output may differ
by a few milliseconds between runs), so a re-run skips what exists and resumes, even after a kill; the
corpus is utterances 0..n-1, the fewest that hold `hours` of audio (`corpus.prefix`). Valid and test
speakers come from voice groups that training never sees.
"""

from __future__ import annotations

from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from audiolm.audio.augment import add_noise, add_reverb
from audiolm.audio.dsp import normalize_loudness
from audiolm.audio.io import save_audio
from audiolm.data.corpus import claim_folder, existing_items, finish_corpus, prefix
from audiolm.data.speakers import DEFAULT_ENGINES, ENGINES, Speaker, choose_speakers, speaker_inventory
from audiolm.data.text import sentence_pool
from audiolm.errors import AudiolmError
from audiolm.formats.atomic import write_json

JOBS_PER_TASK = 8
FORMAT_VERSION = 1  # bump when the utterance table (speaker order, sentences, rooms) changes


@dataclass(kw_only=True)
class SpeechCorpusConfig:
    hours: float
    num_speakers: int = 100  # training speakers
    valid_speakers: int = 8
    test_speakers: int = 8
    seed: int = 0
    sample_rate: int = 16000
    rooms: bool = True  # give each speaker fixed recording conditions (reverb, noise, level)
    engines: tuple[str, ...] = DEFAULT_ENGINES  # some of speakers.ENGINES

    def __post_init__(self) -> None:
        if not self.hours > 0:
            raise ValueError(f"hours must be positive, got {self.hours}")
        if self.num_speakers < 1 or self.valid_speakers < 0 or self.test_speakers < 0:
            raise ValueError("need at least one training speaker and non-negative held-out counts")
        if not self.engines or set(self.engines) - set(ENGINES):
            raise ValueError(f"engines must be some of {', '.join(ENGINES)}, got {', '.join(self.engines) or 'none'}")
        self.engines = tuple(e for e in ENGINES if e in self.engines)  # one order: the corpus depends on the set

    def identity(self) -> dict:
        """The settings that fix each utterance's content; a corpus resumes only under the same ones. The engines
        appear only when they are not the default, so that corpora built before they could be chosen still resume."""
        identity = {k: v for k, v in asdict(self).items() if k not in ("hours", "engines")}
        if self.engines != DEFAULT_ENGINES:
            identity["engines"] = list(self.engines)
        return {**identity, "format": FORMAT_VERSION}


# Each worker process keeps its own TTS state and the job table.
_WORKER: dict = {}


def _init_worker(speakers: list[Speaker], splits: dict[str, str], sentences: list[str], sample_rate: int, rooms: bool, seed: int) -> None:
    torch.set_num_threads(1)
    _WORKER.update(speakers=speakers, splits=splits, sentences=sentences, sample_rate=sample_rate, rooms=rooms, seed=seed, espeak=None,
                   kokoro=None)


def interleave(chosen: dict[str, list[Speaker]]) -> list[Speaker]:
    """All speakers in one turn order where each split is spread evenly, so that any prefix of the
    utterance table (a small corpus) holds every split in proportion."""
    placed = [((k + 0.5) / len(group), split, k) for split, group in chosen.items() for k in range(len(group))]
    return [chosen[split][k] for _, split, k in sorted(placed)]


def job(index: int, speakers: list[Speaker], sentences: list[str]) -> tuple[Speaker, str]:
    """Utterance `index`: speakers take turns, sentences run through the shuffled pool."""
    return speakers[index % len(speakers)], sentences[index % len(sentences)]


def _run_task(out_dir: str, indices: list[int]) -> list[tuple[int, float | None, str | None]]:
    from audiolm.data.espeak import Espeak
    from audiolm.data.tts import TTSError, synthesize

    w = _WORKER
    if w["espeak"] is None:
        w["espeak"] = Espeak()
    jobs = [job(i, w["speakers"], w["sentences"]) for i in indices]
    if w["kokoro"] is None and any(speaker.engine == "kokoro" for speaker, _ in jobs):
        from audiolm.data.kokoro import Kokoro

        w["kokoro"] = Kokoro(threads=1)
    results = []
    try:
        outputs = synthesize(jobs, w["sample_rate"], w["espeak"], seeds=indices, kokoro=w["kokoro"])
    except TTSError:  # retry one by one so that one bad sentence costs only itself
        outputs = []
        for one, index in zip(jobs, indices):
            try:
                outputs += synthesize([one], w["sample_rate"], w["espeak"], seeds=[index], kokoro=w["kokoro"])
            except TTSError as error:
                outputs.append(error)
    for index, (speaker, text), out in zip(indices, jobs, outputs):
        if isinstance(out, Exception):
            results.append((index, None, str(out)))
            continue
        if len(out.wav) == 0 or not out.phones:
            results.append((index, None, f"{speaker.id} produced no audio for {text!r}"))
            continue
        wav = place_in_room(out.wav, speaker, index, w["sample_rate"], w["rooms"], w["seed"])
        utt = f"{speaker.id}-{index:07d}"
        folder = Path(out_dir) / "audio" / speaker.id
        save_audio(folder / f"{utt}.wav", wav, w["sample_rate"])
        duration = len(wav) / w["sample_rate"]
        meta = {
            "id": utt, "index": index, "speaker": speaker.id, "split": w["splits"][speaker.id], "text": text,
            "engine": speaker.engine, "voice": speaker.voice, "phone_set": out.phone_set,
            "duration": duration, "phones": [[p, round(s, 4), round(e, 4)] for p, s, e in out.phones],
        }
        write_json(folder / f"{utt}.json", meta)
        results.append((index, duration, None))
    return results


def place_in_room(wav: np.ndarray, speaker: Speaker, index: int, sample_rate: int, rooms: bool, seed: int) -> np.ndarray:
    """Place the voice in the speaker's room: reverb, background noise, and a loudness of its own."""
    room = speaker.room
    if rooms:
        if room["rt60"] > 0:
            wav = add_reverb(wav, sample_rate, room["rt60"], room["wet"], room["ir_seed"])
        if np.isfinite(room["snr_db"]):
            wav = add_noise(wav, room["snr_db"], np.random.default_rng([seed, index]))
    level = room["lufs"] if rooms else -23.0
    out = normalize_loudness(torch.from_numpy(np.asarray(wav, np.float32)), sample_rate, level)
    return out.numpy()


def build_speech_corpus(out_dir: str | Path, config: SpeechCorpusConfig, workers: int = 2, progress: bool = True) -> dict:
    """Synthesize (or resume) a corpus in `out_dir`; return its summary (hours, utterances, speakers per split)."""
    out_dir = Path(out_dir)
    chosen = choose_speakers(config.num_speakers, config.valid_speakers, config.test_speakers, config.seed, config.engines)
    claim_folder(out_dir, asdict(config), config.identity(),
                 speakers={split: [s.id for s in speakers] for split, speakers in chosen.items()},
                 inventory_size=len(speaker_inventory(config.engines)))
    speakers = interleave(chosen)
    splits = {s.id: split for split, group in chosen.items() for s in group}
    sentences = sentence_pool(config.seed)

    done = existing_items(out_dir)
    failed: dict[int, str] = {}
    target = config.hours * 3600
    n, total = prefix(done, failed, target)
    bar = tqdm(total=round(target), initial=min(round(total), round(target)), unit="s audio", desc="synth-speech",
               disable=not progress)
    pending_indices = (i for i in range(10**9) if i not in done)  # in order: the gaps a kill left come first
    with ProcessPoolExecutor(workers, initializer=_init_worker,
                             initargs=(speakers, splits, sentences, config.sample_rate, config.rooms, config.seed)) as pool:
        running: set = set()
        while total < target or running:
            # Keep the workers busy, but stop submitting once the audio in flight should reach the target.
            per_task = JOBS_PER_TASK * (total / n if n else 3.0)
            while total + len(running) * per_task < target and len(running) < 2 * workers:
                running.add(pool.submit(_run_task, str(out_dir), [next(pending_indices) for _ in range(JOBS_PER_TASK)]))
            finished, running = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                for index, duration, error in future.result():
                    if error:
                        failed[index] = error
                    else:
                        done[index] = duration
            n, total = prefix(done, failed, target, n, total)
            bar.update(min(round(total), bar.total) - bar.n)
        bar.close()
    items = range(n)
    failures = [failed[i] for i in items if i in failed]
    if failures and len(failures) > 0.05 * len(items) + 10:
        raise AudiolmError(f"{out_dir}: {len(failures)} utterances failed to synthesize, e.g. {failures[0]}")
    return finish_corpus(out_dir, items, failed=len(failures), inventory_speakers=len(speaker_inventory(config.engines)))

