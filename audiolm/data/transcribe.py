"""Whisper transcripts for a manifest's held-out entries, for evaluation only (`audiolm data transcribe`).

    result = transcribe_manifest("data/real/manifest.jsonl", splits=("test",), model="base", workers=2)

AudioLM is textless: training never reads `text`. Evaluation does (the WER of resynthesized speech), and recorded
corpora such as `data real-speech` come without transcripts. Whisper writes them here, into each entry's `text`,
with `text_source` ("whisper-base", "whisper-tiny.en") saying that the text is a machine's, not a reference. Only
held-out splits by default: Whisper itself was trained with transcripts, and the training split needs none.

Each finished clip is appended (and flushed) to `<stem>.transcripts.jsonl` beside the manifest, so a killed run
resumes where it stopped; the manifest and its per-split manifests (`<stem>.<split>.jsonl`, where they exist) are
rewritten atomically at the end, and the progress file is then deleted. An unreadable clip is reported and skipped.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from audiolm import limits
from audiolm.audio.io import AudioError, load_audio
from audiolm.data.manifest import SPLITS, Entry, read_manifest, write_manifest
from audiolm.errors import AudiolmError, FileError
from audiolm.formats.atomic import check_writable, remove_temporaries, write_jsonl

HELD_OUT = ("test", "valid")
SAMPLE_RATE = 16000  # Whisper's


@dataclass
class TranscribeResult:
    transcribed: int  # clips Whisper heard in this run
    resumed: int  # transcripts taken from an interrupted run's progress file
    kept: int  # entries of the splits that had a text already (and no --overwrite)
    failures: list[tuple[str, str]] = field(default_factory=list)  # (audio path, problem), skipped
    written: list[Path] = field(default_factory=list)  # manifests rewritten


def text_source(model: str) -> str:
    return f"whisper-{model}"


def progress_path(manifest: str | Path) -> Path:
    """The file of finished transcripts that a run appends to and a re-run reads back."""
    manifest = Path(manifest)
    return manifest.with_name(f"{manifest.stem}.transcripts.jsonl")


def split_manifests(manifest: str | Path) -> dict[str, Path]:
    """The per-split manifests beside `manifest` that exist: {split: path}."""
    manifest = Path(manifest)
    found = {split: manifest.with_name(f"{manifest.stem}.{split}{manifest.suffix}") for split in SPLITS}
    return {split: path for split, path in found.items() if path.is_file()}


def transcribe_manifest(manifest: str | Path, splits: Sequence[str] | None = None, model: str | None = None,
                        workers: int = 1, overwrite: bool = False, progress: bool = True) -> TranscribeResult:
    """Give the entries of `splits` (default: test and valid) that have no `text` (all of them with `overwrite`)
    Whisper `model`'s transcript (default: `asr.default_model()`), in `workers` processes of one thread each.

    Raises `FileError` for a missing, corrupt or empty manifest, or a named split without entries, before anything
    is written or any model loaded.
    """
    from audiolm.eval import asr

    manifest = Path(manifest)
    entries = read_manifest(manifest)
    if not entries:
        raise FileError(manifest, "holds no entries")
    present = {e.split for e in entries}
    if splits is None:
        splits = tuple(s for s in HELD_OUT if s in present)
        if not splits:
            raise FileError(manifest, f"has no {' or '.join(HELD_OUT)} entries; name a split with --split")
    missing = [s for s in splits if s not in present]
    if missing:
        have = ", ".join(sorted(s for s in present if s)) or "none"
        raise FileError(manifest, f"no entries in split {', '.join(map(repr, missing))} (its splits: {have})")
    check_writable(manifest)
    model = model or asr.default_model()
    if not asr.installed(model):
        raise AudiolmError(f"Whisper {model} is not installed: pip install -e '.[eval]'")
    source = text_source(model)

    chosen = [e for e in entries if e.split in splits]
    pending = [e for e in chosen if overwrite or e.text is None]
    remove_temporaries(manifest.parent, [manifest.stem], safetensors=False)
    sidecar = progress_path(manifest)
    done = {k: v for k, v in _read_progress(sidecar).items() if v["text_source"] == source}
    todo = [e for e in pending if _key(e) not in done]
    resumed = len(pending) - len(todo)
    failures: list[tuple[str, str]] = []
    if todo:
        if model == "base":
            asr.base_model_dir()  # join the weights once, here, not in every worker at the same time
        write_jsonl(sidecar, done.values())  # drops a line a kill cut in half, so appends start on a fresh line
        with open(sidecar, "a", encoding="utf-8") as f:
            jobs = [(_key(e), str(e.audio_path(manifest.parent))) for e in todo]
            for (key, path), text, problem in tqdm(_run(jobs, model, workers), total=len(jobs), desc="transcribe",
                                                   unit="clip", disable=not progress):
                if problem is not None:
                    failures.append((path, problem))
                    continue
                record = {"id": key[0], "path": key[1], "text": text, "text_source": source}
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
                f.flush()
                done[key] = record
    result = TranscribeResult(transcribed=len(todo) - len(failures), resumed=resumed, kept=len(chosen) - len(pending),
                              failures=failures)
    if any(_key(e) in done for e in pending):
        result.written = _rewrite(manifest, entries, done)
    sidecar.unlink(missing_ok=True)
    return result


def _key(entry: Entry) -> tuple[str, str]:
    return entry.id, entry.path


def _read_progress(path: Path) -> dict[tuple[str, str], dict]:
    """The finished transcripts of an interrupted run; lines that are not a whole record (a kill mid-write) skipped."""
    if not path.is_file():
        return {}
    done = {}
    with open(path, "rb") as f:
        for line in f:
            try:
                record = json.loads(line.decode("utf-8"))
                key = (record["id"], record["path"])
                if isinstance(record["text"], str) and isinstance(record["text_source"], str):
                    done[key] = record
            except (ValueError, TypeError, KeyError):
                continue
    return done


def _rewrite(manifest: Path, entries: list[Entry], done: dict[tuple[str, str], dict]) -> list[Path]:
    """Put the transcripts into the per-split manifests that hold transcribed entries, then into the manifest (last:
    a kill before it leaves the progress file, and the re-run writes them all again)."""
    written = []
    changed = {e.split for e in entries if _key(e) in done}
    for split, path in split_manifests(manifest).items():
        if split in changed:
            split_entries = read_manifest(path)
            if _apply(split_entries, done):
                write_manifest(path, split_entries)
                written.append(path)
    _apply(entries, done)
    write_manifest(manifest, entries)
    return [manifest, *written]


def _apply(entries: list[Entry], done: dict[tuple[str, str], dict]) -> int:
    count = 0
    for entry in entries:
        record = done.get(_key(entry))
        if record is not None:
            entry.text = record["text"]
            entry.extra["text_source"] = record["text_source"]
            count += 1
    return count


# Each worker process keeps its own Whisper model, on one thread.
_worker: dict = {}


def _init_worker(model: str) -> None:
    from audiolm.eval.asr import Transcriber

    _worker["asr"] = Transcriber(model, threads=1)


def _transcribe(path: str) -> tuple[str | None, str | None]:
    """(text, None), or (None, problem) for a clip that cannot be read or heard."""
    try:
        wav = load_audio(path, SAMPLE_RATE, max_seconds=limits.MAX_AUDIO_FILE_SECONDS)
    except AudioError as error:
        return None, error.problem
    try:
        return _worker["asr"].transcribe(wav[0].numpy(), SAMPLE_RATE), None
    except (RuntimeError, ValueError) as error:  # CTranslate2 raises RuntimeError
        return None, f"Whisper failed ({error})"


def _run(jobs: list[tuple[tuple[str, str], str]], model: str, workers: int) -> Iterator[tuple[tuple, str, str | None]]:
    """(job key, path), text, problem for every job, in the order they finish."""
    workers = max(1, min(workers, len(jobs)))
    if workers == 1:  # in this process: no worker start-up
        _init_worker(model)
        try:
            for key, path in jobs:
                yield (key, path), *_transcribe(path)
        finally:
            _worker.clear()
        return
    try:
        with ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(model,)) as pool:
            queued = iter(jobs)
            running = {}
            for key, path in queued:
                running[pool.submit(_transcribe, path)] = (key, path)
                if len(running) == 2 * workers:
                    break
            try:
                while running:
                    finished, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in finished:
                        job = running.pop(future)
                        yield job, *future.result()
                        following = next(queued, None)
                        if following is not None:
                            running[pool.submit(_transcribe, following[1])] = following
            finally:  # stopped early (a kill, Ctrl-C): do not start the queued clips
                for future in running:
                    future.cancel()
    except BrokenProcessPool:
        raise AudiolmError("a transcription worker process died (out of memory? a clip that crashes the decoder?)") from None
