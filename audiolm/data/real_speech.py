"""Build an English corpus of recorded voice acting from two freeware games in Debian main.

    build_real_speech(out_dir, RealSpeechConfig(), workers=2)

Sources: `flight-of-the-amazon-queen` (MP3 clips in queen.1c) and `beneath-a-steel-sky` (8-bit PCM, mostly RNC-packed,
in sky.dsk + sky.dnr), fetched with `apt-get download` and unpacked into a cache, never installed
(`audiolm.data.debian`); read by our own readers (`audiolm.data.game_archives`). Both are 11,025 Hz recordings: the
corpus is 16 kHz, but nothing is above 5,512.5 Hz (each entry's `bandwidth`).

Layout of a corpus folder:
    corpus.json                         settings
    licenses/<package>.copyright        each package's licence, kept beside the audio it allows us to use
    audio/<source>/<id>.wav             16 kHz mono, loudness-normalised
    audio/<source>/<id>.npy             the clip's speaker vector (resemblyzer), for the pseudo-speakers
    audio/<source>/<id>.json            written last, for every clip: its metadata, or why it was dropped
    manifest.jsonl (+ .train/.valid/.test), manifest.failed.txt, speakers.json, summary.json
A clip is done once its .json exists, so a re-run (even after kill -9) skips it. Dropped: shorter than `min_seconds`,
silent, clipped (more than `max_clipped` of the source's samples in flat tops: 3 or more in a row at full scale),
undecodable; each is listed in manifest.failed.txt. The clips carry no speaker labels: each build clusters the speaker
vectors of each game into pseudo-speakers (`pseudo_speakers`) and splits by them; a pseudo-speaker holding more than
`max_held_out_share` of its game's clips (a protagonist) is kept in train so that valid and test stay small.
`workers=1` makes the clips in this process.
"""

from __future__ import annotations

import json
import math
import shutil
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import soxr
import torch
from tqdm import tqdm

from audiolm.audio.dsp import loudness, normalize_loudness
from audiolm.audio.io import SILENCE_PEAK, save_audio
from audiolm.data.corpus import claim_folder
from audiolm.data.debian import copyright_file, fetch_package
from audiolm.data.game_archives import (
    ArchiveEntry,
    decode_queen_clip,
    decode_sky_clip,
    queen_speech,
    read_entry,
    read_queen_table,
    read_sky_index,
    sky_speech,
)
from audiolm.data.manifest import Entry, split_by_speaker, summarize, write_split_manifests
from audiolm.data.pseudo_speakers import ClusterConfig, cluster_speakers
from audiolm.errors import AudiolmError
from audiolm.formats.atomic import atomic_path, write_json, write_text

FORMAT_VERSION = 1  # bump when a clip's audio or metadata changes
JOBS_PER_TASK = 8


@dataclass(frozen=True)
class Source:
    package: str
    short: str  # the clip ids' prefix and the audio subfolder
    data_file: str  # under usr/share/scummvm/<package>/
    index_file: str | None = None


SOURCES = (
    Source("flight-of-the-amazon-queen", "queen", "queen.1c"),
    Source("beneath-a-steel-sky", "sky", "sky.dsk", "sky.dnr"),
)


@dataclass(kw_only=True)
class RealSpeechConfig:
    sample_rate: int = 16000
    min_seconds: float = 1.0
    max_clipped: float = 0.001  # a clip with more of its source samples in flat tops at full scale is dropped
    target_lufs: float = -23.0
    max_clips: int | None = None  # only the first clips of the job table (both games in turn): tests, quick looks
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    max_held_out_share: float = 0.1
    valid_fraction: float = 0.05  # of pseudo-speakers
    test_fraction: float = 0.05
    seed: int = 0

    def __post_init__(self) -> None:
        if self.min_seconds < 0 or not 0 <= self.max_clipped <= 1:
            raise ValueError("min_seconds must be >= 0 and max_clipped in [0, 1]")
        if self.max_clips is not None and self.max_clips < 1:
            raise ValueError(f"max_clips must be positive, got {self.max_clips}")

    def identity(self) -> dict:
        """The settings that fix each clip's audio; the clustering and splits are redone by every build."""
        return {"sample_rate": self.sample_rate, "min_seconds": self.min_seconds, "max_clipped": self.max_clipped,
                "target_lufs": self.target_lufs, "format": FORMAT_VERSION}


@dataclass(frozen=True)
class Job:
    index: int
    source: str  # Source.short
    name: str  # the entry's name in its container
    offset: int
    size: int

    @property
    def id(self) -> str:
        return f"{self.source}-{self.name.rsplit('.', 1)[0]}"


def package_files(source: Source, root: Path) -> tuple[Path, Path | None]:
    folder = root / "usr" / "share" / "scummvm" / source.package
    data = folder / source.data_file
    index = folder / source.index_file if source.index_file else None
    for path in filter(None, (data, index)):
        if not path.is_file():
            raise AudiolmError(f"{path}: missing from the unpacked {source.package} package")
    return data, index


def job_table(roots: dict[str, Path]) -> tuple[list[Job], dict[str, str]]:
    """Every speech clip of the sources in `roots` (package -> unpacked root), the games in turn; and the data file of
    each source."""
    groups: dict[str, list] = {}
    data_files: dict[str, str] = {}
    for source in SOURCES:
        if source.package not in roots:
            continue
        data, index = package_files(source, roots[source.package])
        entries = sky_speech(read_sky_index(index)) if index else queen_speech(read_queen_table(data))
        groups[source.short] = entries
        data_files[source.short] = str(data)
    placed = sorted(((k + 0.5) / len(group), short, k) for short, group in groups.items() for k in range(len(group)))
    jobs = [Job(i, short, groups[short][k].name, groups[short][k].offset, groups[short][k].size)
            for i, (_, short, k) in enumerate(placed)]
    return jobs, data_files


# Each worker process keeps its own speaker encoder.
_WORKER: dict = {}


def _init_worker(data_files: dict[str, str], config: RealSpeechConfig) -> None:
    torch.set_num_threads(1)  # one thread per process: the encoder is 3x slower with two threads on two cores
    _WORKER.update(data_files=data_files, config=config, encoder=None)


def _run_here(out_dir: Path, tasks: list[list[Job]], data_files: dict[str, str], config: RealSpeechConfig, bar: tqdm) -> None:
    threads = torch.get_num_threads()
    encoder = _WORKER.get("encoder")
    _init_worker(data_files, config)
    _WORKER["encoder"] = encoder
    try:
        for task in tasks:
            bar.update(len(_run_task(str(out_dir), task)))
    finally:
        torch.set_num_threads(threads)


def _run_task(out_dir: str, jobs: list[Job]) -> list[tuple[int, float | None, str | None]]:
    """Make each job's clip; (index, seconds kept or None, reason dropped or None) for each."""
    results = []
    for job in jobs:
        try:
            results.append((job.index, *_make_clip(Path(out_dir), job)))
        except Exception as error:  # one clip never stops the build: it is recorded as failed (and not retried)
            reason = f"undecodable ({type(error).__name__}: {error})"
            _write_sidecar(Path(out_dir), job, {"dropped": reason})
            results.append((job.index, None, reason))
    return results


def _make_clip(out_dir: Path, job: Job) -> tuple[float | None, str | None]:
    from audiolm.eval.speaker import SpeakerEncoder

    w = _WORKER
    config: RealSpeechConfig = w["config"]
    data = read_entry(w["data_files"][job.source], ArchiveEntry(job.name, job.offset, job.size))
    clip = decode_sky_clip(data) if job.source == "sky" else decode_queen_clip(data)
    seconds = len(clip.wav) / clip.sample_rate
    reason = None
    if seconds < config.min_seconds:
        reason = f"shorter than {config.min_seconds:g} s ({seconds:.2f} s)"
    elif len(clip.wav) == 0 or float(np.abs(clip.wav).max()) < SILENCE_PEAK or not math.isfinite(loudness(clip.wav, clip.sample_rate)):
        reason = "silent"
    elif clip.clipped > config.max_clipped:
        reason = f"clipped ({100 * clip.clipped:.2f} % of samples in flat tops at full scale)"
    if reason:
        _write_sidecar(out_dir, job, {"dropped": reason})
        return None, reason
    wav = soxr.resample(clip.wav, clip.sample_rate, config.sample_rate, quality="HQ").astype(np.float32)
    wav = normalize_loudness(torch.from_numpy(wav), config.sample_rate, config.target_lufs).numpy()
    if w["encoder"] is None:
        w["encoder"] = SpeakerEncoder()
    vector = w["encoder"].embed(wav, config.sample_rate)  # [256]
    folder = out_dir / "audio" / job.source
    save_audio(folder / f"{job.id}.wav", wav, config.sample_rate)
    with atomic_path(folder / f"{job.id}.npy") as tmp:
        np.save(tmp, vector)
    duration = len(wav) / config.sample_rate
    _write_sidecar(out_dir, job, {"duration": duration, "bandwidth": clip.sample_rate / 2, "source_rate": clip.sample_rate,
                                  "clipped": round(clip.clipped, 6)})
    return duration, None


def _write_sidecar(out_dir: Path, job: Job, fields: dict) -> None:
    package = next(s.package for s in SOURCES if s.short == job.source)
    write_json(out_dir / "audio" / job.source / f"{job.id}.json",
               {"id": job.id, "index": job.index, "source": package, "name": job.name, **fields})


def _finished(out_dir: Path, jobs: list[Job]) -> dict[int, dict]:
    """The sidecar of each job that has one (kept clips also need their wav and speaker vector)."""
    done = {}
    for job in jobs:
        folder = out_dir / "audio" / job.source
        try:
            meta = json.loads((folder / f"{job.id}.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        if "dropped" in meta or ((folder / f"{job.id}.wav").is_file() and (folder / f"{job.id}.npy").is_file()):
            done[job.index] = meta
    return done


def build_real_speech(out_dir: str | Path, config: RealSpeechConfig, cache: str | Path | None = None, workers: int = 2,
                      progress: bool = True) -> dict:
    """Fetch the packages into `cache` (default `out_dir/cache`), make (or resume) every clip, cluster pseudo-speakers,
    and write the manifests and summary; return the summary."""
    out_dir = Path(out_dir)
    cache = Path(cache) if cache is not None else out_dir / "cache"
    claim_folder(out_dir, asdict(config), config.identity(), packages=[s.package for s in SOURCES])
    roots = {s.package: fetch_package(s.package, cache) for s in SOURCES}
    for package, root in roots.items():
        licence = copyright_file(root, package)
        if not licence.is_file():
            raise AudiolmError(f"{licence}: the package's copyright file is missing; it must travel with the corpus")
        (out_dir / "licenses").mkdir(exist_ok=True)
        shutil.copyfile(licence, out_dir / "licenses" / f"{package}.copyright")
    jobs, data_files = job_table(roots)
    jobs = jobs[:config.max_clips] if config.max_clips else jobs
    done = _finished(out_dir, jobs)
    pending = [job for job in jobs if job.index not in done]
    bar = tqdm(total=len(jobs), initial=len(done), unit="clip", desc="real-speech", disable=not progress)
    tasks = [pending[i:i + JOBS_PER_TASK] for i in range(0, len(pending), JOBS_PER_TASK)]
    if tasks and workers == 1:  # in this process: no start-up of a worker, and the speaker encoder stays loaded
        _run_here(out_dir, tasks, data_files, config, bar)
    elif tasks:
        with ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(data_files, config)) as pool:
            running = {pool.submit(_run_task, str(out_dir), task) for task in tasks[:2 * workers]}
            queued = iter(tasks[2 * workers:])
            while running:
                finished, running = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    bar.update(len(future.result()))
                    task = next(queued, None)
                    if task:
                        running.add(pool.submit(_run_task, str(out_dir), task))
    bar.close()
    return finish_real_speech(out_dir, jobs, config, data_files)


def finish_real_speech(out_dir: Path, jobs: list[Job], config: RealSpeechConfig, data_files: dict[str, str]) -> dict:
    """Cluster the kept clips into pseudo-speakers, split by them, write the manifests, the failures and the summary."""
    done = _finished(out_dir, jobs)
    kept = [(job, done[job.index]) for job in jobs if job.index in done and "dropped" not in done[job.index]]
    failures = [(f"{Path(data_files[job.source]).name}:{job.name}", done[job.index]["dropped"])
                for job in jobs if job.index in done and "dropped" in done[job.index]]
    entries, speakers = [], []
    for short in sorted({job.source for job, _ in kept}):
        group = [(job, meta) for job, meta in kept if job.source == short]
        vectors = np.stack([np.load(out_dir / "audio" / short / f"{job.id}.npy") for job, _ in group])
        labels = cluster_speakers(vectors, config.cluster)
        for label in range(int(labels.max()) + 1 if len(labels) else 0):
            members = [meta for (_, meta), k in zip(group, labels) if k == label]
            speakers.append({"speaker": f"{short}-spk{label:02d}", "source": members[0]["source"], "clips": len(members),
                             "hours": round(sum(m["duration"] for m in members) / 3600, 4)})
        for (job, meta), label in zip(group, labels):
            share = float(np.mean(labels == label))
            entries.append(Entry(
                id=job.id, path=str((out_dir / "audio" / short / f"{job.id}.wav").resolve()), duration=meta["duration"],
                sample_rate=config.sample_rate, speaker=f"{short}-spk{label:02d}",
                split="train" if share > config.max_held_out_share else None,
                extra={"source": meta["source"], "bandwidth": meta["bandwidth"], "name": meta["name"], "index": meta["index"]}))
    if not entries:
        raise AudiolmError(f"{out_dir}: no clip was kept ({len(failures)} dropped)")
    split_by_speaker(entries, config.valid_fraction, config.test_fraction, config.seed)
    write_split_manifests(out_dir / "manifest.jsonl", entries)
    failed_path = out_dir / "manifest.failed.txt"
    write_text(failed_path, "".join(f"{name}\t{reason}\n" for name, reason in failures))
    write_json(out_dir / "speakers.json", {"cluster": asdict(config.cluster), "speakers": speakers})
    reasons: dict[str, int] = {}
    for _, reason in failures:
        key = reason.split(" (")[0]
        reasons[key] = reasons.get(key, 0) + 1
    summary = {**summarize(entries), "clips": len(jobs), "kept": len(entries), "dropped": len(failures),
               "dropped_by_reason": reasons, "pseudo_speakers": len(speakers), "sources": {}}
    for source in SOURCES:
        group = [s for s in speakers if s["source"] == source.package]
        if group:
            summary["sources"][source.package] = {"hours": round(sum(s["hours"] for s in group), 4),
                                                  "clips": sum(s["clips"] for s in group), "speakers": len(group)}
    write_json(out_dir / "summary.json", summary)
    return summary
