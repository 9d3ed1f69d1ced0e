"""Build a multi-speaker English speech corpus from the Debian TTS engines.

Layout of a corpus folder:
    corpus.json                       settings and the speakers of each split
    audio/<speaker>/<utt>.wav         16 kHz mono
    audio/<speaker>/<utt>.json        transcript, speaker, split, phone alignment (written after the wav)
    manifest.jsonl                    every utterance, and manifest.{train,valid,test}.jsonl
Utterance i is fixed by the seed (its speaker, sentence, noise and room; espeak's output may differ
by a few milliseconds between runs), so a re-run skips what exists and resumes; the corpus grows
until it holds `hours` of audio. Valid and test speakers come from voice groups that training never sees.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import scipy.signal
import torch
from tqdm import tqdm

from audiolm.audio.augment import room_response
from audiolm.audio.dsp import normalize_loudness
from audiolm.audio.io import save_audio
from audiolm.data.manifest import read_manifest, scan_folder, summarize, write_split_manifests
from audiolm.data.speakers import Speaker, choose_speakers, speaker_inventory
from audiolm.data.text import sentence_pool
from audiolm.errors import AudiolmError
from audiolm.files import write_json

JOBS_PER_TASK = 8


@dataclass(kw_only=True)
class SpeechCorpusConfig:
    hours: float
    num_speakers: int = 100  # training speakers
    valid_speakers: int = 8
    test_speakers: int = 8
    seed: int = 0
    sample_rate: int = 16000
    rooms: bool = True  # give each speaker fixed recording conditions (reverb, noise, level)

    def __post_init__(self) -> None:
        if not self.hours > 0:
            raise ValueError(f"hours must be positive, got {self.hours}")
        if self.num_speakers < 1 or self.valid_speakers < 0 or self.test_speakers < 0:
            raise ValueError("need at least one training speaker and non-negative held-out counts")

    def identity(self) -> dict:
        """The settings that fix each utterance's content; a corpus resumes only under the same ones."""
        return {k: v for k, v in asdict(self).items() if k != "hours"}


# Each worker process keeps its own TTS state and the job table.
_WORKER: dict = {}


def _init_worker(speakers: list[Speaker], splits: dict[str, str], sentences: list[str], sample_rate: int, rooms: bool, seed: int) -> None:
    torch.set_num_threads(1)
    _WORKER.update(speakers=speakers, splits=splits, sentences=sentences, sample_rate=sample_rate, rooms=rooms, seed=seed, espeak=None)


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
    results = []
    try:
        outputs = synthesize(jobs, w["sample_rate"], w["espeak"], seeds=indices)
    except TTSError:  # retry one by one so that one bad sentence costs only itself
        outputs = []
        for one, index in zip(jobs, indices):
            try:
                outputs += synthesize([one], w["sample_rate"], w["espeak"], seeds=[index])
            except TTSError as error:
                outputs.append(error)
    for index, (speaker, text), out in zip(indices, jobs, outputs):
        if isinstance(out, Exception):
            results.append((index, None, str(out)))
            continue
        if len(out.wav) == 0 or not out.phones:
            results.append((index, None, f"{speaker.id} produced no audio for {text!r}"))
            continue
        wav = _record(out.wav, speaker, index, w["sample_rate"], w["rooms"], w["seed"])
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


def _record(wav: np.ndarray, speaker: Speaker, index: int, sample_rate: int, rooms: bool, seed: int) -> np.ndarray:
    """Place the voice in the speaker's room: reverb, background noise, and a loudness of its own."""
    rng = np.random.default_rng([seed, index])
    level = -30.0 + 12.0 * speaker._unit("level") if rooms else -23.0
    if rooms:
        room = speaker.room
        if room["rt60"] > 0:
            ir = room_response(room["rt60"], sample_rate, np.random.default_rng(int(speaker._unit("ir") * 2**32)))
            wet = scipy.signal.fftconvolve(wav, ir)[: len(wav)]
            wet *= np.sqrt(np.mean(wav**2) / (np.mean(wet**2) + 1e-12))
            wav = (1 - room["wet"]) * wav + room["wet"] * wet
        if np.isfinite(room["snr_db"]):
            signal_power = np.mean(wav**2) + 1e-12
            wav = wav + rng.standard_normal(len(wav)) * np.sqrt(signal_power / 10 ** (room["snr_db"] / 10))
    out = normalize_loudness(torch.from_numpy(np.asarray(wav, np.float32)), sample_rate, level)
    return out.numpy()


def _existing(out_dir: Path) -> dict[int, float]:
    """Utterances already written (their .json is the commit marker): index -> duration."""
    done = {}
    for meta_path in (out_dir / "audio").glob("*/*.json"):
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        if meta_path.with_suffix(".wav").is_file() and "index" in meta:
            done[int(meta["index"])] = float(meta["duration"])
    return done


def build_speech_corpus(out_dir: str | Path, config: SpeechCorpusConfig, workers: int = 2, progress: bool = True) -> dict:
    """Synthesize (or resume) a corpus in `out_dir`; return its summary (hours, utterances, speakers per split)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    chosen = choose_speakers(config.num_speakers, config.valid_speakers, config.test_speakers, config.seed)
    corpus_file = out_dir / "corpus.json"
    if corpus_file.exists():
        try:
            previous = json.loads(corpus_file.read_text(encoding="utf-8"))["config"]
        except (OSError, json.JSONDecodeError, KeyError):
            raise AudiolmError(f"{corpus_file}: unreadable corpus description; remove it or use another folder") from None
        if {k: v for k, v in previous.items() if k != "hours"} != config.identity():
            raise AudiolmError(f"{corpus_file}: this folder holds a corpus built with other settings ({previous}); use another folder")
    write_json(corpus_file, {
        "config": asdict(config),
        "speakers": {split: [s.id for s in speakers] for split, speakers in chosen.items()},
        "inventory_size": len(speaker_inventory()),
    })
    speakers = [s for split in ("train", "valid", "test") for s in chosen[split]]
    splits = {s.id: split for split, group in chosen.items() for s in group}
    sentences = sentence_pool(config.seed)

    done = _existing(out_dir)
    target = config.hours * 3600
    total = sum(done.values())
    failures: list[str] = []
    bar = tqdm(total=round(target), initial=min(round(total), round(target)), unit="s audio", desc="synth-speech",
               disable=not progress)
    pending_indices = (i for i in range(10**9) if i not in done)
    with ProcessPoolExecutor(workers, initializer=_init_worker,
                             initargs=(speakers, splits, sentences, config.sample_rate, config.rooms, config.seed)) as pool:
        running: set = set()
        written = len(done)
        while total < target or running:
            # Keep the workers busy, but stop submitting once the audio in flight should reach the target.
            per_task = JOBS_PER_TASK * (total / written if written else 3.0)
            while total + len(running) * per_task < target and len(running) < 2 * workers:
                running.add(pool.submit(_run_task, str(out_dir), [next(pending_indices) for _ in range(JOBS_PER_TASK)]))
            finished, running = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                for _, duration, error in future.result():
                    if error:
                        failures.append(error)
                    else:
                        total += duration
                        written += 1
                        bar.update(min(round(total), bar.total) - bar.n)
        bar.close()
    if failures and len(failures) > 0.05 * (len(done) + len(failures) + 1) + 10:
        raise AudiolmError(f"{out_dir}: {len(failures)} utterances failed to synthesize, e.g. {failures[0]}")
    entries = scan_folder(out_dir / "audio", progress=False).entries
    write_split_manifests(out_dir / "manifest.jsonl", entries)
    summary = summarize(read_manifest(out_dir / "manifest.jsonl"))
    summary["failed"] = len(failures)
    summary["inventory_speakers"] = len(speaker_inventory())
    write_json(out_dir / "summary.json", summary)
    return summary


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))
