"""Tokenize a corpus once: semantic ids and codec codes of every utterance, in uint16 shards with an index.

    summary = tokenize_corpus("data/speech/manifest.jsonl", "models/speech/semantic", "models/speech/codec", "tokens/")
    shards = TokenShards("tokens/")            # memory-mapped: opening reads the JSON and the headers, no tokens
    shards.check(tokenizer, codec)             # refuse models other than the ones that wrote the shards
    ids = shards.semantic(i)                   # [T_s] int64, T_s = ceil(L / 640) at 25 Hz
    codes = shards.codes(i, 100, 300)          # [K, 200] int64: frames 100:300 of its [K, T_a], T_a = ceil(L / 320) at 50 Hz
    train = shards.split("train")              # [N_train] utterance indices in corpus order

The manifest's entries, in manifest order, are cut into shards of `shard_size` utterances, so shard i always
holds the same entries. Each shard is two files, each written atomically, the JSON last (its commit marker):
- `shard_00000.safetensors`: `semantic` uint16 `[N_s]` (every utterance's ids, concatenated) and `codes`
  uint16 `[K, N_a]` (every utterance's codes, concatenated along time);
- `shard_00000.json`: the models' identity, one record per utterance {id, speaker, split, duration,
  semantic_offset, semantic_length, codes_offset, codes_length}, the files skipped [{id, path, error}],
  the frame counts and the size of the safetensors file.
`index.json`, written once every shard is complete, holds the format and version, the tokenizer's and the
codec's identity (fingerprints, vocabularies, frame rates), the sample rate, totals and the shard list.

A re-run skips complete shards and writes the same bytes, so an interrupted (even killed) run resumes where it
stopped, after removing the temporary files the kill left;
a folder holding tokens of another tokenizer, codec, number of levels, shard size or manifest is refused.
Audio that cannot be loaded is skipped and listed, never fatal. Each utterance is tokenized alone
(batch 1), so tokens do not depend on batching; bit-exact reruns assume the same torch thread count.

Parallelism: `workers` processes (each loads the models and uses one thread) take whole shards. Under
torchrun (RANK and WORLD_SIZE set), rank r takes the shards i with i % WORLD_SIZE == r; the index is
written by any process that finds every shard complete when its own are done (if torch.distributed is
initialised, all ranks meet at a barrier and rank 0 writes it). Writers of the index write the same bytes.
"""

from __future__ import annotations

import json
import math
import mmap
import multiprocessing
import os
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, fields
from pathlib import Path
from queue import Empty

import numpy as np
import torch
from safetensors.torch import save_file
from tqdm import tqdm

from audiolm.audio.io import AudioError, load_audio
from audiolm.data.manifest import Entry, read_manifest
from audiolm.errors import AudiolmError, FileError
from audiolm.formats.atomic import atomic_path, remove_temporaries, write_json
from audiolm.formats.json_file import read_json
from audiolm.formats.tensors import tensor_layout

FORMAT = "audiolm-token-shards"
VERSION = 1
INDEX = "index.json"
MAX_VOCAB = 65536  # uint16
MIN_RECORD_BYTES = 100  # an utterance's record in a shard's JSON is longer than this (its keys alone are 76 characters)


def shard_name(index: int) -> str:
    return f"shard_{index:05d}"


@dataclass(frozen=True)
class Utterance:
    """One tokenized utterance: where its tokens lie in its shard (offsets and lengths in frames)."""

    id: str
    speaker: str | None
    split: str | None
    duration: float  # seconds of audio tokenized
    shard: int
    semantic_offset: int
    semantic_length: int
    codes_offset: int
    codes_length: int


@dataclass
class _Models:
    tokenizer: object  # SemanticTokenizer
    codec: object  # Codec
    num_codebooks: int

    @classmethod
    def load(cls, tokenizer_dir: str | Path, codec_dir: str | Path, num_codebooks: int | None) -> _Models:
        from audiolm.codec.model import Codec
        from audiolm.semantic.tokenizer import SemanticTokenizer

        tokenizer, codec = SemanticTokenizer.load(tokenizer_dir), Codec.load(codec_dir)
        if num_codebooks is not None and not 1 <= num_codebooks <= codec.num_codebooks:
            raise AudiolmError(f"{codec_dir}: num_codebooks must be in 1..{codec.num_codebooks}, got {num_codebooks}")
        if tokenizer.codebook_size > MAX_VOCAB or codec.cardinality > MAX_VOCAB:
            raise AudiolmError(f"shards store uint16 tokens: vocabularies of at most {MAX_VOCAB} "
                               f"(tokenizer {tokenizer.codebook_size}, codec {codec.cardinality})")
        return cls(tokenizer, codec, num_codebooks or codec.num_codebooks)

    def identity(self, shard_size: int) -> dict:
        """What fixes every shard's content (with the manifest): models, levels, sample rate, shard size."""
        tokenizer, codec = self.tokenizer, self.codec
        return {
            "tokenizer": {"fingerprint": tokenizer.fingerprint(), "codebook_size": tokenizer.codebook_size,
                          "frame_rate": tokenizer.frame_rate, "sample_rate": tokenizer.sample_rate},
            "codec": {"config_hash": codec.config.hash(), "codebook_fingerprint": codec.codebook_fingerprint(),
                      "num_codebooks": self.num_codebooks, "codebook_size": codec.cardinality, "frame_rate": codec.frame_rate,
                      "sample_rate": codec.sample_rate},
            "sample_rate": codec.sample_rate,
            "shard_size": shard_size,
        }

    @torch.inference_mode()
    def tokenize(self, entry: Entry, path: Path) -> tuple[torch.Tensor, torch.Tensor, float]:
        """One utterance alone -> (ids `[T_s]`, codes `[K, T_a]`, seconds); raises `AudioError` for bad audio."""
        rate = self.codec.sample_rate
        wav = _load(entry, path, rate)  # [1, L]
        semantic_wav = wav if self.tokenizer.sample_rate == rate else _load(entry, path, self.tokenizer.sample_rate)
        ids = self.tokenizer(semantic_wav[None])[0]  # [T_s]
        codes = self.codec.encode(wav[None], self.num_codebooks)[0]  # [K, T_a]
        return ids, codes, wav.shape[-1] / rate


def _load(entry: Entry, path: Path, sample_rate: int) -> torch.Tensor:
    """An entry's audio `[1, L]`; entries with an `offset` (seconds) are a part of their file."""
    if "offset" in entry.extra:
        return load_audio(path, sample_rate, offset=float(entry.extra["offset"]), duration=entry.duration)
    return load_audio(path, sample_rate)


def _write_shard(models: _Models, index: int, entries: list[Entry], root: Path, output_dir: Path, identity: dict,
                 tick: Callable[[int], None]) -> dict:
    """Tokenize one shard's entries and write its safetensors, then its JSON; return the JSON's content."""
    records, skipped, semantic, codes = [], [], [], []
    semantic_offset = codes_offset = 0
    for entry in entries:
        path = entry.audio_path(root)
        try:
            ids, entry_codes, seconds = models.tokenize(entry, path)
        except AudioError as error:
            skipped.append({"id": entry.id, "path": str(path), "error": error.problem})
            tick(1)
            continue
        records.append({"id": entry.id, "speaker": entry.speaker, "split": entry.split, "duration": seconds,
                        "semantic_offset": semantic_offset, "semantic_length": ids.shape[0],
                        "codes_offset": codes_offset, "codes_length": entry_codes.shape[1]})
        semantic.append(ids)
        codes.append(entry_codes)
        semantic_offset += ids.shape[0]
        codes_offset += entry_codes.shape[1]
        tick(1)
    empty = torch.zeros(models.num_codebooks, 0, dtype=torch.long)
    return write_shard(output_dir, index, identity, records, torch.cat([empty[0], *semantic]), torch.cat([empty, *codes], dim=1), skipped)


def write_shard(output_dir: Path, index: int, identity: dict, records: list[dict], semantic: torch.Tensor, codes: torch.Tensor,
                skipped: list[dict] | None = None) -> dict:
    """Write shard `index`: its safetensors (`semantic` `[N_s]` and `codes` `[K, N_a]`, stored as uint16), then its
    JSON (the commit marker) with `records` (one per utterance: id, speaker, split, duration and where its frames
    lie); return the JSON's content."""
    name = shard_name(index)
    tensors = {"semantic": semantic.to(torch.uint16).contiguous(), "codes": codes.to(torch.uint16).contiguous()}
    with atomic_path(output_dir / f"{name}.safetensors") as tmp:
        save_file(tensors, str(tmp), metadata={"format": FORMAT})  # one key: same bytes every run
    sidecar = {"format": FORMAT, "version": VERSION, "shard": index, "identity": identity,
               "tensors": f"{name}.safetensors", "bytes": (output_dir / f"{name}.safetensors").stat().st_size,
               "semantic_frames": semantic.shape[0], "codes_frames": codes.shape[1], "utterances": records,
               "skipped": skipped or []}
    write_json(output_dir / f"{name}.json", sidecar)
    return sidecar


# Worker processes: each loads the models once and reports finished utterances through a queue.
_WORKER: dict = {}


def _init_worker(tokenizer_dir: str, codec_dir: str, num_codebooks: int, queue) -> None:
    torch.set_num_threads(1)
    _WORKER.update(models=_Models.load(tokenizer_dir, codec_dir, num_codebooks), queue=queue)


def _worker_shard(index: int, entries: list[Entry], root: str, output_dir: str, identity: dict) -> dict:
    try:
        return _write_shard(_WORKER["models"], index, entries, Path(root), Path(output_dir), identity, _WORKER["queue"].put)
    except AudiolmError as error:  # FileError does not survive pickling; its message does
        raise AudiolmError(str(error)) from None


def _rank_world() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def _read_sidecar(output_dir: Path, index: int) -> dict | None:
    """A shard's JSON if the shard is complete (JSON readable, safetensors present with its recorded size)."""
    try:
        sidecar = json.loads((output_dir / f"{shard_name(index)}.json").read_text(encoding="utf-8"))
        complete = (output_dir / f"{shard_name(index)}.safetensors").stat().st_size == sidecar["bytes"]
    except (OSError, json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError):
        return None
    return sidecar if complete else None


def _check_shard(sidecar: dict, path: Path, identity: dict, entries: list[Entry]) -> None:
    if sidecar.get("identity") != identity:
        raise FileError(path, f"holds tokens of another tokenizer, codec, number of levels or shard size "
                              f"({_describe(sidecar.get('identity'))}; now {_describe(identity)}); use another output folder")
    ids = [r["id"] for r in sidecar["utterances"]] + [s["id"] for s in sidecar["skipped"]]
    if sorted(ids) != sorted(e.id for e in entries):
        raise FileError(path, "holds other utterances than this manifest's entries for it (another manifest?); use another output folder")


def _describe(identity: dict | None) -> str:
    try:
        codec = identity["codec"]
        return (f"tokenizer {identity['tokenizer']['fingerprint']}, codec {codec['config_hash']}/{codec['codebook_fingerprint']} "
                f"with {codec['num_codebooks']} levels, shards of {identity['shard_size']}")
    except (KeyError, TypeError):
        return "unknown models"


def _claim(output_dir: Path, identity: dict, chunks: list[list[Entry]]) -> dict[int, dict]:
    """Refuse a folder holding other tokens; return the complete shards {index: sidecar}."""
    index_path = output_dir / INDEX
    previous = read_json(index_path).get("identity") if index_path.exists() else identity
    if previous != identity:
        raise FileError(index_path, f"holds tokens of {_describe(previous)}, not of {_describe(identity)}; use another output folder")
    done = {}
    for path in sorted(output_dir.glob("shard_*.json")):
        try:
            index = int(path.stem.removeprefix("shard_"))
        except ValueError:
            continue
        if index >= len(chunks):
            raise FileError(path, f"is past the {len(chunks)} shards of this manifest (another manifest?); use another output folder")
        sidecar = _read_sidecar(output_dir, index)
        if sidecar is not None:
            _check_shard(sidecar, path, identity, chunks[index])
            done[index] = sidecar
    return done


def _write_index(output_dir: Path, identity: dict, sidecars: list[dict]) -> dict:
    utterances = sum(len(s["utterances"]) for s in sidecars)
    seconds = sum(r["duration"] for s in sidecars for r in s["utterances"])
    skipped = [item for s in sidecars for item in s["skipped"]]
    index = {
        "format": FORMAT, "version": VERSION, "identity": identity,
        "totals": {"utterances": utterances, "hours": round(seconds / 3600, 6), "skipped": len(skipped),
                   "semantic_frames": sum(s["semantic_frames"] for s in sidecars),
                   "codes_frames": sum(s["codes_frames"] for s in sidecars),
                   "bytes": sum(s["bytes"] for s in sidecars)},
        "shards": [{"name": shard_name(s["shard"]), "utterances": len(s["utterances"]), "skipped": len(s["skipped"]),
                    "semantic_frames": s["semantic_frames"], "codes_frames": s["codes_frames"], "bytes": s["bytes"]}
                   for s in sidecars],
        "skipped": skipped,
    }
    write_json(output_dir / INDEX, index)
    return index


def tokenize_corpus(manifest: str | Path, tokenizer_dir: str | Path, codec_dir: str | Path, output_dir: str | Path,
                    num_codebooks: int | None = None, shard_size: int = 256, workers: int = 1, progress: bool = True) -> dict:
    """Tokenize (or resume tokenizing) a manifest's audio into `output_dir`; see the module docstring for the format.

    Returns {"utterances", "hours", "skipped", "shards", "tokenized" (shards written by this call), "complete"
    (whether every shard exists, hence the index), "index" (its path, or None)}; totals are of the whole corpus
    when complete, else of the shards present.
    """
    if shard_size < 1 or workers < 1:
        raise ValueError(f"shard_size and workers must be at least 1, got {shard_size} and {workers}")
    manifest, output_dir = Path(manifest), Path(output_dir)
    entries = read_manifest(manifest)
    if not entries:
        raise AudiolmError(f"{manifest}: no entries to tokenize")
    models = _Models.load(tokenizer_dir, codec_dir, num_codebooks)
    identity = models.identity(shard_size)
    chunks = [entries[i:i + shard_size] for i in range(0, len(entries), shard_size)]
    output_dir.mkdir(parents=True, exist_ok=True)
    done = _claim(output_dir, identity, chunks)
    rank, world = _rank_world()
    pending = [i for i in range(len(chunks)) if i % world == rank and i not in done]
    # this rank alone writes its shards; nobody writes the index while shards are pending or when alone
    stems = [shard_name(i) for i in pending] + (["index"] if world == 1 or pending else [])
    remove_temporaries(output_dir, stems, safetensors=False)
    root = manifest.resolve().parent
    bar = tqdm(total=sum(len(chunks[i]) for i in pending), unit="utt", desc=f"tokenize {manifest.name}", disable=not progress)
    if workers == 1 or len(pending) <= 1:
        for i in pending:
            done[i] = _write_shard(models, i, chunks[i], root, output_dir, identity, bar.update)
    else:
        _run_workers(pending, chunks, root, output_dir, identity, (str(tokenizer_dir), str(codec_dir), models.num_codebooks),
                     min(workers, len(pending)), bar, done)
    bar.close()
    return _finish(output_dir, identity, len(chunks), done, tokenized=len(pending))


def _run_workers(pending: list[int], chunks: list[list[Entry]], root: Path, output_dir: Path, identity: dict, model_args: tuple,
                 workers: int, bar: tqdm, done: dict[int, dict]) -> None:
    # fork where there is one (starting is instant; the parent has touched no GPU), and each worker loads the models itself
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    queue = context.Queue()
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker, initargs=(*model_args, queue)) as pool:
        running = {pool.submit(_worker_shard, i, chunks[i], str(root), str(output_dir), identity): i for i in pending}
        while running:
            finished, _ = wait(running, timeout=0.5, return_when=FIRST_COMPLETED)
            _drain(queue, bar)
            for future in finished:
                done[running.pop(future)] = future.result()
        _drain(queue, bar)


def _drain(queue, bar: tqdm) -> None:
    try:
        while True:
            bar.update(queue.get_nowait())
    except Empty:
        pass


def _finish(output_dir: Path, identity: dict, count: int, done: dict[int, dict], tokenized: int) -> dict:
    """Write the index if every shard is complete (rank 0 after a barrier under torch.distributed)."""
    distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
    if distributed:
        torch.distributed.barrier()
    for i in range(count):
        if i not in done and (sidecar := _read_sidecar(output_dir, i)) is not None:
            done[i] = sidecar
    sidecars = [done[i] for i in sorted(done)]
    complete = len(sidecars) == count
    if complete:  # no shard is being written any more: the `.tmp*` files safetensors writes through, left by a kill, can go
        remove_temporaries(output_dir, (), safetensors=True)
    if complete and (not distributed or torch.distributed.get_rank() == 0):
        _write_index(output_dir, identity, sidecars)
    if distributed:
        torch.distributed.barrier()
    seconds = sum(r["duration"] for s in sidecars for r in s["utterances"])
    return {"utterances": sum(len(s["utterances"]) for s in sidecars), "hours": seconds / 3600,
            "skipped": sum(len(s["skipped"]) for s in sidecars), "shards": count, "tokenized": tokenized,
            "complete": complete, "index": str(output_dir / INDEX) if complete else None}


def _count(value: object) -> int:
    """A non-negative JSON integer (a bool is not one); else ValueError."""
    if type(value) is not int or value < 0:
        raise ValueError(f"expected a count, got {value!r}")
    return value


def _seconds(value: object) -> float:
    """A finite non-negative JSON number (durations, frame rates); else ValueError."""
    if type(value) not in (int, float) or not math.isfinite(value) or value < 0:
        raise ValueError(f"expected a finite non-negative number, got {value!r}")
    return float(value)

UTTERANCE_FIELDS = frozenset(f.name for f in fields(Utterance)) - {"shard"}


def _record(record: object) -> tuple[str, str | None, str | None, float, int, int, int, int]:
    """A shard sidecar's utterance record, checked: (id, speaker, split, duration, semantic_offset, semantic_length,
    codes_offset, codes_length); TypeError / ValueError for a malformed one."""
    if not isinstance(record, dict) or record.keys() != UTTERANCE_FIELDS:
        raise TypeError(f"an utterance record must hold exactly {sorted(UTTERANCE_FIELDS)}")
    uid, speaker, split = record["id"], record["speaker"], record["split"]
    if not isinstance(uid, str) or any(v is not None and not isinstance(v, str) for v in (speaker, split)):
        raise TypeError(f"utterance {uid!r}: id, speaker and split must be strings")
    counts = (_count(record["semantic_offset"]), _count(record["semantic_length"]), _count(record["codes_offset"]),
              _count(record["codes_length"]))
    if max(counts) >= 2**40:
        raise ValueError(f"utterance {uid!r}: offsets and lengths of more than 2**40 frames")
    return (uid, speaker, split, _seconds(record["duration"]), *counts)


class TokenShards:
    """Every shard of a tokenized corpus, memory-mapped: opening reads the JSON sidecars and the safetensors headers,
    never the tokens, and reading some frames of an utterance touches only their pages (random crops of a corpus far
    bigger than memory). What is kept per utterance is a row of numpy columns (28 bytes: shard, speaker, split, offsets
    and lengths); a shard's file is mapped when first read, and the `max_open` most recently read stay mapped.

    Shapes: `semantic(i)` is `[T_s]` int64, `codes(i)` is `[K, T_a]` int64 for utterance i in corpus order;
    `semantic(i, start, stop)` and `codes(i, start, stop)` are its frames start:stop.
    A missing or corrupt file raises a one-line `FileError` naming it: a malformed sidecar or safetensors header
    when the shards are opened, tokens beyond the vocabularies in index.json when they are read.
    """

    def __init__(self, folder: str | Path, max_open: int = 64) -> None:
        if max_open < 1:
            raise ValueError(f"max_open must be at least 1, got {max_open}")
        self.folder = Path(folder)
        self.max_open = max_open
        index_path = self.folder / INDEX
        self.index = read_json(index_path)
        if self.index.get("format") != FORMAT:
            raise FileError(index_path, "is not a token shards index")
        version = self.index.get("version", 0)
        if type(version) is not int:
            raise FileError(index_path, f"has a format version that is not an integer ({version!r})")
        if version > VERSION:
            raise FileError(index_path, f"has token shards format version {version}; this audiolm reads up to {VERSION}")
        try:
            identity = self.index["identity"]
            self.tokenizer_fingerprint: str = identity["tokenizer"]["fingerprint"]
            self.semantic_vocab: int = _count(identity["tokenizer"]["codebook_size"])
            self.semantic_frame_rate: float = _seconds(identity["tokenizer"]["frame_rate"])
            self.codec_config_hash: str = identity["codec"]["config_hash"]
            self.codebook_fingerprint: str = identity["codec"]["codebook_fingerprint"]
            self.num_codebooks: int = _count(identity["codec"]["num_codebooks"])
            self.codebook_size: int = _count(identity["codec"]["codebook_size"])
            self.acoustic_frame_rate: float = _seconds(identity["codec"]["frame_rate"])
            self.sample_rate: int = _count(identity["sample_rate"])
            self.names: list[str] = [shard["name"] for shard in self.index["shards"]]
            if not all(isinstance(name, str) for name in self.names):
                raise TypeError("shard names must be strings")
            sizes = [_count(shard["utterances"]) for shard in self.index["shards"]]
        except (KeyError, TypeError, ValueError) as error:
            raise FileError(index_path, f"index is incomplete or malformed ({error})") from None
        self.speakers: list[str | None] = []  # distinct speakers (and splits), in order of first appearance
        self.splits: list[str | None] = []
        self._codes_of: dict[str | None, int] = {}  # speaker -> its index in self.speakers
        self._split_codes: dict[str | None, int] = {}
        self._layout = np.zeros((len(self.names), 4), dtype=np.int64)  # per shard: semantic and codes byte offsets, N_s, N_a
        if sum(sizes) * MIN_RECORD_BYTES > sum(self._json_bytes(name) for name in self.names):
            raise FileError(index_path, "lists more utterances than the shards' JSON files can hold")
        # filled in place, shard by shard: nothing per utterance is ever a Python object for long
        labels, counts = np.empty((sum(sizes), 2), dtype=np.int32), np.empty((sum(sizes), 4), dtype=np.int64)
        first, self._seconds = 0, 0.0
        for number, (name, size) in enumerate(zip(self.names, sizes)):
            self._seconds += self._open_shard(number, name, size, labels[first:first + size], counts[first:first + size])
            first += size
        frames = np.int32 if not counts.size or counts.max() < 2**31 else np.int64  # 4 bytes a count where they fit
        self.shard_of = np.repeat(np.arange(len(self.names), dtype=np.int32), sizes)  # [N] each utterance's shard
        self.speaker_of, self.split_of = labels[:, 0].copy(), labels[:, 1].copy()  # [N] indices into self.speakers, self.splits
        self.semantic_offsets, self.semantic_lengths = counts[:, 0].astype(frames), counts[:, 1].astype(frames)  # [N] frames
        self.codes_offsets, self.codes_lengths = counts[:, 2].astype(frames), counts[:, 3].astype(frames)  # [N] frames
        self._maps: OrderedDict[int, tuple[np.ndarray, np.ndarray, mmap.mmap]] = OrderedDict()  # shard -> semantic, codes, their map

    def _json_bytes(self, name: str) -> int:
        path = self.folder / f"{name}.json"
        if not path.is_file():
            raise FileError(path, "no such file")
        return path.stat().st_size

    def _open_shard(self, number: int, name: str, size: int, labels: np.ndarray, counts: np.ndarray) -> float:
        """Check shard `number`'s sidecar (`size` utterances, as index.json says) and safetensors header, note where its
        tensors lie, fill its utterances' speaker and split indices `labels` `[size, 2]` and offsets and lengths `counts`
        `[size, 4]`, and return their seconds in all."""
        json_path, tensors_path = self.folder / f"{name}.json", self.folder / f"{name}.safetensors"
        sidecar = read_json(json_path)
        if not tensors_path.is_file():
            raise FileError(tensors_path, "no such shard file (listed in index.json)")
        layout = tensor_layout(tensors_path)
        try:
            records = [_record(r) for r in sidecar["utterances"]]
            frames = (_count(sidecar["semantic_frames"]), _count(sidecar["codes_frames"]))
        except (KeyError, TypeError, ValueError) as error:
            raise FileError(json_path, f"shard description is incomplete or malformed ({error})") from None
        semantic, codes = layout.get("semantic"), layout.get("codes")
        if (semantic is None or codes is None or semantic.dtype != "U16" or codes.dtype != "U16"
                or semantic.shape != (frames[0],) or codes.shape != (self.num_codebooks, frames[1])):
            raise FileError(tensors_path, f"tensors do not match {json_path.name} (want uint16 semantic [{frames[0]}] "
                                          f"and codes [{self.num_codebooks}, {frames[1]}])")
        self._layout[number] = (semantic.offset, codes.offset, *frames)
        if len(records) != size:
            raise FileError(json_path, f"lists {len(records)} utterances, index.json {size}")
        counts[:] = np.array([r[4:] for r in records], dtype=np.int64).reshape(-1, 4)
        outside = (counts[:, 0] + counts[:, 1] > frames[0]) | (counts[:, 2] + counts[:, 3] > frames[1])
        if outside.any():
            raise FileError(json_path, f"utterance {records[int(outside.argmax())][0]} lies outside the shard's tensors")
        labels[:] = np.array([(self._intern(r[1], self._codes_of, self.speakers), self._intern(r[2], self._split_codes, self.splits))
                              for r in records], dtype=np.int32).reshape(-1, 2)
        return sum(r[3] for r in records)

    @staticmethod
    def _intern(value: str | None, codes: dict[str | None, int], values: list[str | None]) -> int:
        if value not in codes:
            codes[value] = len(values)
            values.append(value)
        return codes[value]

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_maps": OrderedDict()}  # maps are per process: a copy maps again

    def __len__(self) -> int:
        return len(self.shard_of)

    @property
    def hours(self) -> float:
        return self._seconds / 3600

    def utterance(self, i: int) -> Utterance:
        """Utterance i's record (re-read from its shard's sidecar: ids are not kept in memory)."""
        shard = int(self.shard_of[i])
        path = self.folder / f"{self.names[shard]}.json"
        local = int(np.searchsorted(self.shard_of, shard))  # the shard's first utterance
        values = _record(read_json(path)["utterances"][int(i) % len(self) - local])
        return Utterance(*values[:4], shard, *values[4:])

    def _map(self, shard: int) -> tuple[np.ndarray, np.ndarray, mmap.mmap]:
        """Shard `shard`'s semantic ids `[N_s]` and codes `[K, N_a]` as uint16 arrays over a read-only memory map, and the map."""
        if shard in self._maps:
            self._maps.move_to_end(shard)
            return self._maps[shard]
        path = self.folder / f"{self.names[shard]}.safetensors"
        semantic_at, codes_at, semantic_frames, codes_frames = (int(v) for v in self._layout[shard])
        try:
            with open(path, "rb") as f:
                memory = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError) as error:
            raise FileError(path, f"cannot be read ({error})") from None
        if len(memory) < max(semantic_at + 2 * semantic_frames, codes_at + 2 * self.num_codebooks * codes_frames):
            raise FileError(path, "is shorter than its header says (rewritten since the shards were opened?)")
        if hasattr(mmap, "MADV_RANDOM"):
            memory.madvise(mmap.MADV_RANDOM)  # crops are a few pages here and there: no read-ahead around them
        self._maps[shard] = (np.frombuffer(memory, dtype="<u2", count=semantic_frames, offset=semantic_at),
                             np.frombuffer(memory, dtype="<u2", count=self.num_codebooks * codes_frames, offset=codes_at)
                             .reshape(self.num_codebooks, codes_frames), memory)
        if len(self._maps) > self.max_open:
            self._maps.popitem(last=False)  # its map closes with the last array over it
        return self._maps[shard]

    def prefetch(self, i: int, semantic: tuple[int, int], codes: tuple[int, int]) -> None:
        """Ask the kernel to read semantic frames semantic[0]:semantic[1] and codes frames codes[0]:codes[1] of utterance
        i in the background (the pages of one row per level): read after the prefetches of a whole batch, its crops
        come from the disk in parallel rather than one page fault at a time. Only a hint: reading checks as usual."""
        if not hasattr(mmap, "MADV_WILLNEED"):
            return
        shard = int(self.shard_of[i])
        semantic_at, codes_at, _, codes_frames = (int(v) for v in self._layout[shard])
        memory = self._map(shard)[2]
        ranges = [(semantic_at + 2 * (int(self.semantic_offsets[i]) + semantic[0]), 2 * (semantic[1] - semantic[0]))]
        offset = int(self.codes_offsets[i]) + codes[0]
        ranges += [(codes_at + 2 * (k * codes_frames + offset), 2 * (codes[1] - codes[0])) for k in range(self.num_codebooks)]
        for start, size in ranges:
            aligned = start - start % mmap.PAGESIZE
            if size > 0 and start + size <= len(memory):
                memory.madvise(mmap.MADV_WILLNEED, aligned, start + size - aligned)

    def _checked(self, tokens: np.ndarray, vocab: int, shard: int) -> torch.Tensor:
        """A copy of `tokens` as int64, refused if any lies beyond `vocab`."""
        if tokens.size and int(tokens.max()) >= vocab:
            raise FileError(self.folder / f"{self.names[shard]}.safetensors", "holds tokens beyond the vocabularies in index.json")
        return torch.from_numpy(tokens.astype(np.int64))

    @staticmethod
    def _span(i: int, length: int, start: int, stop: int | None) -> int:
        stop = length if stop is None else stop
        if not 0 <= start <= stop <= length:
            raise IndexError(f"frames {start}:{stop} of utterance {i}, which has {length}")
        return stop

    def semantic(self, i: int, start: int = 0, stop: int | None = None) -> torch.Tensor:
        """Utterance i's semantic ids `[T_s]` int64 (frames start:stop of them)."""
        stop = self._span(i, int(self.semantic_lengths[i]), start, stop)
        shard, offset = int(self.shard_of[i]), int(self.semantic_offsets[i])
        return self._checked(self._map(shard)[0][offset + start:offset + stop], self.semantic_vocab, shard)

    def codes(self, i: int, start: int = 0, stop: int | None = None) -> torch.Tensor:
        """Utterance i's codec codes `[K, T_a]` int64 (frames start:stop of them)."""
        stop = self._span(i, int(self.codes_lengths[i]), start, stop)
        shard, offset = int(self.shard_of[i]), int(self.codes_offsets[i])
        return self._checked(self._map(shard)[1][:, offset + start:offset + stop], self.codebook_size, shard)

    def split(self, name: str | None) -> np.ndarray:
        """Indices `[N_split]` int64 of the utterances in split `name`, in corpus order."""
        if name not in self._split_codes:
            return np.zeros(0, dtype=np.int64)
        return np.flatnonzero(self.split_of == self._split_codes[name])

    def by_speaker(self, indices: list[int] | np.ndarray | None = None) -> dict[str | None, list[int]]:
        """{speaker: its utterance indices} over `indices` (all by default), speakers and indices in corpus order."""
        chosen = np.arange(len(self)) if indices is None else np.sort(np.asarray(indices, dtype=np.int64))
        speakers = self.speaker_of[chosen]
        order = np.argsort(speakers, kind="stable")  # by speaker, corpus order within
        groups = np.split(chosen[order], np.flatnonzero(np.diff(speakers[order])) + 1) if len(chosen) else []
        groups.sort(key=lambda group: group[0])
        return {self.speakers[self.speaker_of[group[0]]]: group.tolist() for group in groups}

    def check(self, tokenizer=None, codec=None) -> None:
        """Raise `FileError` (naming index.json) unless `tokenizer` / `codec` are the models that wrote the shards."""
        path = self.folder / INDEX
        if tokenizer is not None and tokenizer.fingerprint() != self.tokenizer_fingerprint:
            raise FileError(path, f"was written by another semantic tokenizer ({self.tokenizer_fingerprint}, "
                                  f"this one {tokenizer.fingerprint()}): its ids mean something else")
        if codec is not None:
            if codec.config.hash() != self.codec_config_hash:
                raise FileError(path, f"was written by a codec with other settings (config {self.codec_config_hash}, "
                                      f"this codec {codec.config.hash()})")
            if codec.codebook_fingerprint() != self.codebook_fingerprint:
                raise FileError(path, f"was written by a codec with other codebooks ({self.codebook_fingerprint}, "
                                      f"this codec {codec.codebook_fingerprint()}): its codes mean something else")

