"""Audio for training at Libri-Light scale: a manifest's audio written once into sequential tar shards (lhotse's Shar
format), and a stream of random crops read from them that resumes exactly.

Writing (`write_shards`, `audiolm data shar`): each entry is read at `sample_rate`, mono, cut into equal pieces of at most
`max_seconds` (a 20-minute Libri-Light chapter becomes 40 cuts), and the pieces of each split are shuffled with `seed`
(so a shard holds many speakers) and dealt into shards of `shard_size` cuts:

    DIR/settings.json                                 what the shards are made of (a rerun must match it)
    DIR/train/cuts.000000.jsonl.gz                    lhotse cuts: id, duration, speaker, text, split, weight
    DIR/train/recording.000000.tar                    16-bit FLAC, one member per cut, in the same order
    DIR/valid/..., DIR/test/...
    DIR/index.json                                    written last: every shard with its cuts and seconds

Any lhotse user reads a split with `CutSet.from_shar(in_dir=DIR/train)`. A shard is written in a temporary folder and
renamed into place, its cuts file last; a rerun removes a killed run's temporaries (and a recording left without its
cuts), keeps the complete shards and writes the rest. Readers go by `index.json` only, so an unfinished folder is refused,
never half read. Unreadable audio is skipped and listed in `DIR/failed.txt`, never fatal.

Reading (`AudioStream`): process `rank` of `world` (torchrun's RANK, WORLD_SIZE) takes, in epoch e, the shards
`permutation_e[rank::world]` of one permutation all processes draw from (seed, e): the processes' shards are disjoint
and together cover the split. It reads them in order a block at a time (cuts until `shuffle_seconds` of audio), draws
crops from the block (a cut of L samples and weight w gives w L / crop of them on average, at random offsets; a shorter
cut is zero-padded), shuffles them and hands them out; the next block is read in a background thread meanwhile. Every
draw is seeded by the block's first cut (seed, rank, world, epoch, shard, cut), so the stream is a function of its
position, and `state()` (that block start and the crops taken from it) is all a checkpoint keeps to resume exactly.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import os
import random
import shutil
import tarfile
import tempfile
import warnings
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from audiolm.data.datasets import AudioClips
from audiolm.data.manifest import Entry, read_manifest
from audiolm.errors import AudiolmError, FileError
from audiolm.formats.atomic import write_json, write_text
from audiolm.formats.json_file import read_json

INDEX, SETTINGS = "index.json", "settings.json"
FORMAT = "audiolm-audio-shards"


# --- writing ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Piece:
    """One cut to write: `duration` seconds of an entry's audio from `offset` (seconds into its file)."""

    id: str
    entry: int  # index into the manifest's entries
    offset: float
    duration: float


@dataclass
class ShardsSummary:
    splits: dict[str, dict]  # split -> {"shards", "cuts", "hours", "skipped"}
    written: int  # shards this run wrote (the others were complete already)
    failures: list[tuple[str, str]] = field(default_factory=list)  # (audio path, problem) of this run's skipped pieces


def plan_pieces(entries: list[Entry], max_seconds: float, seed: int) -> dict[str, list[Piece]]:
    """Each split's pieces (entries without a split count as train), shuffled with `seed`."""
    seen: set[str] = set()
    splits: dict[str, list[Piece]] = {}
    for index, entry in enumerate(entries):
        if entry.id in seen:
            raise AudiolmError(f"entry id {entry.id!r} appears twice in the manifest; cut ids must be unique")
        seen.add(entry.id)
        count = max(1, math.ceil(entry.duration / max_seconds - 1e-9))
        rate = entry.sample_rate  # piece boundaries on the file's samples, so that the pieces tile it
        first, frames = round(float(entry.extra.get("offset", 0.0)) * rate), round(entry.duration * rate)
        bounds = [first + round(k * frames / count) for k in range(count + 1)]
        for k in range(count):
            piece_id = entry.id if count == 1 else f"{entry.id}_{k:04d}"
            piece = Piece(piece_id, index, bounds[k] / rate, (bounds[k + 1] - bounds[k]) / rate)
            splits.setdefault(entry.split or "train", []).append(piece)
    for split, pieces in sorted(splits.items()):
        random.Random(f"{seed}/{split}").shuffle(pieces)
    return dict(sorted(splits.items()))


def write_shards(manifest: str | Path, output: str | Path, shard_size: int = 1000, max_seconds: float = 30.0, seed: int = 0,
                 sample_rate: int = 16000, workers: int = 1, progress: bool = False) -> ShardsSummary:
    """Write `manifest`'s audio into `output` as lhotse Shar shards (see the module docstring); resumable."""
    manifest, output = Path(manifest), Path(output)
    entries = read_manifest(manifest)
    if not entries:
        raise FileError(manifest, "holds no entries")
    plan = plan_pieces(entries, max_seconds, seed)
    fingerprint = hashlib.sha256(json.dumps({s: [(p.id, p.offset, p.duration) for p in ps] for s, ps in plan.items()})
                                 .encode()).hexdigest()[:16]
    settings = {"format": FORMAT, "manifest": str(manifest.resolve()), "sample_rate": sample_rate, "audio_format": "flac",
                "shard_size": shard_size, "max_seconds": max_seconds, "seed": seed, "pieces": fingerprint}
    output.mkdir(parents=True, exist_ok=True)
    _check_settings(output, settings)
    _remove_temporaries(output)
    jobs = []
    for split, pieces in plan.items():
        (output / split).mkdir(exist_ok=True)
        for index in range(math.ceil(len(pieces) / shard_size)):
            if not (output / _cuts_name(split, index)).is_file():
                chunk = pieces[index * shard_size:(index + 1) * shard_size]
                jobs.append((output, split, index, shard_size, sample_rate, manifest.parent,
                             [(p, entries[p.entry]) for p in chunk]))
    failures: list[tuple[str, str]] = []
    with tqdm(total=len(jobs), desc=f"shards -> {output.name}", unit="shard", disable=not progress) as bar:
        if workers > 1 and len(jobs) > 1:
            with ProcessPoolExecutor(min(workers, len(jobs))) as pool:
                for problems in pool.map(_write_shard, jobs):
                    failures += problems
                    bar.update(1)
        else:
            for job in jobs:
                failures += _write_shard(job)
                bar.update(1)
    if failures:
        write_text(output / "failed.txt", "".join(f"{path}\t{problem}\n" for path, problem in failures))
    index = _index(output, plan, shard_size, settings)
    write_json(output / INDEX, index)
    splits = {name: {"shards": len(s["shards"]), "cuts": s["cuts"], "hours": s["seconds"] / 3600, "skipped": s["skipped"]}
              for name, s in index["splits"].items()}
    return ShardsSummary(splits, written=len(jobs), failures=failures)


def _cuts_name(split: str, index: int) -> str:
    return f"{split}/cuts.{index:06d}.jsonl.gz"


def _recording_name(split: str, index: int) -> str:
    return f"{split}/recording.{index:06d}.tar"


def _check_settings(output: Path, settings: dict) -> None:
    path = output / SETTINGS
    if path.is_file():
        old = read_json(path)
        differs = sorted(k for k in settings if k != "manifest" and old.get(k) != settings[k])
        if differs:
            raise FileError(path, f"these shards were written with other settings ({', '.join(differs)} differ): "
                                  "write into another folder, or rerun with the same manifest and options")
    elif any(output.iterdir()):
        raise FileError(output, "is not empty and holds no audio shards; name a new folder")
    write_json(path, settings)


def _remove_temporaries(output: Path) -> None:
    """A killed run's temporary shard folders, and any recording left without its cuts file (renamed second)."""
    for tmp in output.glob(".tmp-*"):
        shutil.rmtree(tmp, ignore_errors=True)
    for tar in output.glob("*/recording.*.tar"):
        if not tar.with_name(tar.name.replace("recording.", "cuts.").replace(".tar", ".jsonl.gz")).is_file():
            tar.unlink()


def _write_shard(job: tuple) -> list[tuple[str, str]]:
    """Write one shard in a temporary folder, then rename its recording and (last) its cuts into place."""
    from lhotse.shar import SharWriter

    from audiolm.audio.io import AudioError, load_audio

    output, split, index, shard_size, sample_rate, root, pieces = job
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{split}-{index:06d}-", dir=output))
    failures = []
    try:
        with SharWriter(tmp, fields={"recording": "flac"}, shard_size=shard_size, shard_offset=index) as writer:
            for piece, entry in pieces:
                path = entry.audio_path(root)
                try:
                    wav = load_audio(path, sample_rate, offset=piece.offset, duration=piece.duration)  # [1, L]
                except AudioError as error:
                    failures.append((str(path), getattr(error, "problem", str(error))))
                    continue
                writer.write(_cut(piece, entry, wav[0].numpy(), sample_rate))
        names = {"recording": f"recording.{index:06d}.tar", "cuts": f"cuts.{index:06d}.jsonl.gz"}
        if not (tmp / names["cuts"]).is_file():  # every piece failed: an empty shard, so that it counts as done
            with tarfile.open(tmp / names["recording"], "w"):
                pass
            with gzip.open(tmp / names["cuts"], "wb"):
                pass
        for kind in ("recording", "cuts"):
            os.replace(tmp / names[kind], output / split / names[kind])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return failures


def _cut(piece: Piece, entry: Entry, wav: np.ndarray, sample_rate: int):
    """A lhotse cut holding `wav` (as 16-bit WAV in memory; the writer stores it as FLAC) and the entry's metadata."""
    import io

    import soundfile as sf
    from lhotse import MonoCut, Recording, SupervisionSegment

    buffer = io.BytesIO()
    sf.write(buffer, wav, sample_rate, format="WAV", subtype="PCM_16")
    recording = Recording.from_bytes(buffer.getvalue(), recording_id=piece.id)
    supervision = SupervisionSegment(id=piece.id, recording_id=piece.id, start=0.0, duration=recording.duration,
                                     speaker=entry.speaker, text=entry.text, custom={"split": entry.split or "train"})
    custom = {"source_id": entry.id, "source_offset": round(piece.offset, 6)}
    if "weight" in entry.extra:
        custom["weight"] = entry.extra["weight"]
    return MonoCut(id=piece.id, start=0.0, duration=recording.duration, channel=0, recording=recording,
                   supervisions=[supervision], custom=custom)


def _index(output: Path, plan: dict[str, list[Piece]], shard_size: int, settings: dict) -> dict:
    """Every split's shards with their cuts and seconds, read from the cuts files (metadata only)."""
    splits = {}
    for split, pieces in plan.items():
        shards = []
        for index in range(math.ceil(len(pieces) / shard_size)):
            name = _cuts_name(split, index)
            durations = [float(json.loads(line)["duration"]) for line in _open_cuts(output / name)]
            shards.append({"cuts_file": name, "recording_file": _recording_name(split, index), "cuts": len(durations),
                           "seconds": round(sum(durations), 3)})
        cuts = sum(s["cuts"] for s in shards)
        splits[split] = {"cuts": cuts, "seconds": round(sum(s["seconds"] for s in shards), 3), "skipped": len(pieces) - cuts,
                         "shards": shards}
    return {**{k: v for k, v in settings.items() if k != "pieces"}, "layout": "lhotse-shar", "splits": splits}


def _open_cuts(path: Path) -> list[str]:
    try:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            return [line for line in f if line.strip()]
    except (OSError, EOFError, UnicodeDecodeError) as error:
        raise FileError(path, f"unreadable cuts file ({error})") from None


# --- reading ------------------------------------------------------------------------------------------------------


def read_index(folder: str | Path, sample_rate: int | None = None) -> dict:
    """The index of a complete shard folder; with `sample_rate`, refused unless the shards hold that rate."""
    folder = Path(folder)
    path = folder / INDEX
    if not path.is_file():
        if (folder / SETTINGS).is_file():
            raise FileError(folder, "unfinished audio shards (no index.json): run `audiolm data shar` again to finish them")
        raise FileError(folder, "not an audio shard folder (no index.json; write one with `audiolm data shar`)")
    index = read_json(path)
    if not isinstance(index, dict) or index.get("format") != FORMAT or not isinstance(index.get("splits"), dict):
        raise FileError(path, f"not an index of audio shards (format {FORMAT!r})")
    if sample_rate is not None and index["sample_rate"] != sample_rate:
        raise FileError(path, f"the shards hold {index['sample_rate']} Hz audio, the model wants {sample_rate} Hz: "
                              f"write them again with `audiolm data shar --sample-rate {sample_rate}`")
    return index


def split_shards(index: dict, folder: str | Path, split: str) -> list[dict]:
    """One split's shards (dicts with `cuts_file`, `recording_file`, `cuts`, `seconds`; paths made absolute)."""
    if split not in index["splits"]:
        raise FileError(Path(folder) / INDEX, f"no split {split!r} (has {', '.join(index['splits']) or 'none'})")
    return [{**s, "cuts_file": Path(folder) / s["cuts_file"], "recording_file": Path(folder) / s["recording_file"]}
            for s in index["splits"][split]["shards"]]


def read_shard(shard: dict, skip: int = 0) -> Iterator[tuple[object, np.ndarray]]:
    """The cuts of one shard from its `skip`-th on, each with its audio as int16 `[L]` (scaled by 32767, as AudioClips).
    A missing, corrupt or truncated file raises a `FileError` naming it."""
    from lhotse import CutSet

    cuts_file, recording_file = shard["cuts_file"], shard["recording_file"]
    for path in (cuts_file, recording_file):
        if not Path(path).is_file():
            raise FileError(path, "missing shard file (copy the shard folder again, or rerun `audiolm data shar`)")
    count = 0
    try:
        for count, cut in enumerate(CutSet.from_shar(fields={"cuts": [str(cuts_file)], "recording": [str(recording_file)]}), 1):
            if count <= skip:
                continue
            audio = cut.load_audio()  # [1, L] float32
            yield cut, (np.clip(audio[0], -1, 1) * 32767).astype(np.int16)
    except (EOFError, gzip.BadGzipFile, json.JSONDecodeError, UnicodeDecodeError) as error:  # the cuts file
        raise FileError(cuts_file, f"corrupt shard ({type(error).__name__}: {_one_line(error)})") from None
    except FileError:
        raise
    except Exception as error:  # tarfile, lhotse (mismatched ids, uneven members), the FLAC decoder
        raise FileError(recording_file, f"corrupt shard ({type(error).__name__}: {_one_line(error)})") from None
    if count != shard["cuts"]:
        raise FileError(recording_file, f"truncated shard: {count} of the {shard['cuts']} cuts its index lists")


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())[:200]


def _speaker(cut) -> str:
    return (cut.supervisions[0].speaker or "") if cut.supervisions else ""


def load_clips(folder: str | Path, split: str, sample_rate: int, max_cuts: int | None = None) -> AudioClips:
    """A split's audio in memory (its first `max_cuts` cuts, in shard order: shuffled when written), e.g. for
    validation."""
    folder = Path(folder)
    clips, speakers, weights = [], [], []
    for shard in split_shards(read_index(folder, sample_rate), folder, split):
        for cut, audio in read_shard(shard):
            if max_cuts is not None and len(clips) >= max_cuts:
                break
            clips.append(audio)
            speakers.append(_speaker(cut))
            weights.append(float(cut.custom.get("weight", 1.0)) if cut.custom else 1.0)
        if max_cuts is not None and len(clips) >= max_cuts:
            break
    if not clips:
        raise AudiolmError(f"{folder}: no audio in split {split}")
    return AudioClips.from_clips(clips, speakers, weights, sample_rate, name=f"{folder}/{split}")


def validation_clips(folder: str | Path, valid_split: str, train_split: str, sample_rate: int, count: int) -> AudioClips:
    """Audio to validate on, in memory: the first `4 * count` cuts of the valid split, or of the training split where
    there is no valid split (as the in-memory trainers fall back to their training audio)."""
    index = read_index(folder, sample_rate)
    split = valid_split if valid_split in index["splits"] and index["splits"][valid_split]["cuts"] else train_split
    return load_clips(folder, split, sample_rate, max_cuts=4 * count)


def check_data_source(data: Any) -> None:
    """A trainer's data config names one source: `manifest` (read into memory) or `audio_shards` (streamed)."""
    if bool(data.manifest) and bool(data.audio_shards):
        raise ValueError("data.manifest and data.audio_shards: give one of them")
    if data.audio_shards and data.max_hours is not None:
        raise ValueError("data.max_hours limits a manifest read into memory; with data.audio_shards, write fewer shards")
    if not data.shuffle_seconds > 0:
        raise ValueError(f"data.shuffle_seconds must be positive, got {data.shuffle_seconds}")


@dataclass(frozen=True)
class Position:
    """A cut in a stream: its epoch, the index into this process's shards of that epoch, the cut within that shard."""

    epoch: int = 0
    shard: int = 0
    cut: int = 0


@dataclass
class _Block:
    start: Position
    following: Position  # where the next block starts
    clips: list[np.ndarray]
    crops: list[tuple[int, int]]  # (clip, first sample), shuffled


class AudioStream:
    """Random `[1, crop]` crops of one split's shards for process `rank` of `world` (default: torchrun's RANK and
    WORLD_SIZE); see the module docstring."""

    def __init__(self, folder: str | Path, split: str, sample_rate: int, crop: int, seed: int = 0,
                 shuffle_seconds: float = 3600.0, rank: int | None = None, world: int | None = None) -> None:
        self.folder = Path(folder)
        self.shards = split_shards(read_index(self.folder, sample_rate), self.folder, split)
        self.rank = int(os.environ.get("RANK", "0")) if rank is None else rank
        self.world = int(os.environ.get("WORLD_SIZE", "1")) if world is None else world
        if len(self.shards) < self.world:
            raise AudiolmError(f"{self.folder}: split {split} has {len(self.shards)} shards for {self.world} processes, each "
                               "needs one at least: write smaller shards (audiolm data shar --shard-size)")
        self.sample_rate, self.crop, self.seed, self.shuffle_seconds = sample_rate, crop, seed, shuffle_seconds
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="audio-shards")
        self._cursor: tuple[Position, Iterator] | None = None  # an open shard reader, used by the reading thread only
        self._block: _Block | None = None  # the current block: its crops are handed out in order
        self._taken = 0  # of its crops
        self._next: Future | None = None  # the next block, being read
        self._pending: tuple[Position, int] | None = (Position(), 0)  # where to start reading, at the first crop

    def my_shards(self, epoch: int) -> list[int]:
        """This process's shards in `epoch`, in reading order (indices into the split's shards)."""
        order = np.random.default_rng([self.seed, epoch]).permutation(len(self.shards))
        return order[self.rank::self.world].tolist()

    def state(self) -> dict:
        """This process's position, JSON-able: the first cut of its current block and the crops taken from it (the loop
        saves every process's in the checkpoint)."""
        start, taken = self._pending or (self._block.start, self._taken)
        return {"rank": self.rank, "world": self.world, "epoch": start.epoch, "shard": start.shard, "cut": start.cut,
                "taken": taken}

    def load_state(self, states: list[dict]) -> None:
        """Resume from the positions a checkpoint holds, one per process of the run that saved it. Saved by as many
        processes as now: each takes its own and continues exactly; otherwise every process starts the epoch after
        the furthest one saved (a warning says so)."""
        if len(states) == self.world and states[self.rank].get("world") == self.world:
            s = states[self.rank]
            self._pending = (Position(s["epoch"], s["shard"], s["cut"]), s["taken"])
        elif states:
            epoch = max(s["epoch"] for s in states) + 1
            warnings.warn(f"the checkpoint's data positions are for {len(states)} processes, this run has {self.world}: "
                          f"the audio stream restarts at epoch {epoch}", stacklevel=2)
            self._pending = (Position(epoch), 0)

    def crops(self, count: int) -> torch.Tensor:
        """The next `count` crops, `[count, 1, crop]` float32."""
        if self._pending is not None:
            self._seek(*self._pending)
            self._pending = None
        out = torch.zeros(count, 1, self.crop)
        for i in range(count):
            dry = None  # the epoch of the first block without crops left, to stop if a whole epoch gives none
            while self._taken >= len(self._block.crops):
                dry = self._block.start.epoch if dry is None else dry
                if self._block.start.epoch > dry + 1:
                    raise AudiolmError(f"{self.folder}: a whole epoch of this process's shards gives no crop (no audio, or "
                                       "every weight 0)")
                self._advance()
            clip, start = self._block.crops[self._taken]
            piece = self._block.clips[clip][start:start + self.crop]
            out[i, 0, : len(piece)] = torch.from_numpy(piece.astype(np.float32) / 32767)
            self._taken += 1
        return out

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _seek(self, start: Position, taken: int) -> None:
        if self._next is not None and not self._next.cancel():
            self._next.exception()  # wait for a block being read: the reading thread owns the cursor until then
        self._cursor = None
        self._block = self._pool.submit(self._read_block, start).result()
        self._taken = taken
        self._next = self._pool.submit(self._read_block, self._block.following)

    def _advance(self) -> None:
        self._block, self._taken = self._next.result(), 0
        self._next = self._pool.submit(self._read_block, self._block.following)

    def _cuts_from(self, position: Position) -> Iterator[tuple[Position, object, np.ndarray]]:
        """This process's cuts from `position` to the end of its epoch, each with the position of the cut after it."""
        epoch = position.epoch
        mine = self.my_shards(epoch)
        shard, cut = position.shard, position.cut
        while shard < len(mine):
            if self._cursor is not None and self._cursor[0] == Position(epoch, shard, cut):
                cuts = self._cursor[1]
            else:
                cuts = read_shard(self.shards[mine[shard]], skip=cut)
            for item, audio in cuts:
                cut += 1
                after = Position(epoch, shard, cut)
                self._cursor = (after, cuts)
                yield after, item, audio
            shard, cut = shard + 1, 0

    def _read_block(self, start: Position) -> _Block:
        """The block of cuts from `start` (until `shuffle_seconds` or the end of this process's epoch) and its crops."""
        clips, weights, seconds = [], [], 0.0
        following = Position(start.epoch + 1)  # unless the block ends before the epoch does
        for after, cut, audio in self._cuts_from(start):
            clips.append(audio)
            weights.append(float(cut.custom.get("weight", 1.0)) if cut.custom else 1.0)
            seconds += len(audio) / self.sample_rate
            if seconds >= self.shuffle_seconds:
                following = after
                break
        rng = np.random.default_rng([self.seed, self.rank, self.world, start.epoch, start.shard, start.cut])
        crops = []
        for index, (clip, weight) in enumerate(zip(clips, weights)):
            expected = weight * len(clip) / self.crop  # crops of this cut: on average, each second heard once an epoch
            count = int(expected) + int(rng.random() < expected - int(expected))
            starts = rng.integers(0, max(1, len(clip) - self.crop + 1), count)
            crops += [(index, int(s)) for s in starts]
        order = rng.permutation(len(crops))
        return _Block(start, following, clips, [crops[i] for i in order])
