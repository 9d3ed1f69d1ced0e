"""Precomputed semantic targets: a tokenizer's ids of a manifest's utterances, computed once, read by training.

    write_targets("data/speech/manifest.jsonl", "runs/semantic/whisper-km100", "runs/semantic/targets")  # resumable
    targets = PrecomputedTargets.load("runs/semantic/targets")      # ids [T] uint16 by manifest entry id
    clips = targets.clips("data/speech/manifest.jsonl", "train")    # the entries' audio and ids, for training crops
    wav, ids, valid = clips.crops(16, 150, generator)                # [B, 1, 150 * hop], [B, 150], [B, 150]

A teacher as slow as Whisper (a whole 30 s window per call) cannot tokenize every training crop on the fly, so
`audiolm semantic targets` runs it once per utterance. An utterance's ids are those of the whole utterance, as
`tokenizer(wav)` gives them (frame t centred near t / frame_rate s, T = ceil(L / hop)); a training crop starts at
a whole frame f (sample f * hop) and takes ids f..f + T_crop - 1, so crop and ids stay aligned frame for frame. (Our
encoders' frame t is centred at (t + 1/2) hops, Whisper's and MFCC's at t hops: a student's frame t lies half a frame,
10 ms at 50 Hz, after its target's, as with targets computed on the fly; whole-frame crops keep that offset constant.)

Whisper goes through `WhisperEncoder.trimmed_features` by default (each utterance in a window cut to it plus 1 s of
its silence, instead of a whole 30 s window: 6-9x faster on 2-4 s utterances, ids equal to the full window's on
82-88 % of frames), or `packed_features` (several utterances to a window: 4-7x, 72-79 %), or `full` windows
(`tokenizer(wav)`'s ids exactly); other encoders tokenize each utterance alone (`tokenizer(wav)`). README.md has the
measurements.

The folder:
- `targets.json`: format, version and identity (the tokenizer's fingerprint, K, frame rate and sample rate, whether
  its teacher was trained with transcripts, how Whisper windows were cut, the shard size), written before any
  shard; a folder holding targets of another identity is refused.
- `{split}-{i:05d}.safetensors`: entries i * shard_size .. (i + 1) * shard_size - 1 of `split` (manifest order), one
  uint16 tensor `[T]` per entry, named by the entry's id; the identity in its metadata. Written to a temporary
  name then renamed, so a shard present is complete: a re-run skips it (and `--max-hours` takes whole shards, so a
  larger one adds shards). The audio is read as training reads it (16-bit, at the tokenizer's rate).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from tqdm import tqdm

from audiolm.audio.io import load_audio
from audiolm.data.manifest import Entry, read_manifest
from audiolm.errors import AudiolmError, FileError
from audiolm.formats.atomic import atomic_path, remove_temporaries, write_json
from audiolm.formats.json_file import read_json
from audiolm.formats.tensors import load_tensors
from audiolm.semantic.encoder import frames_for
from audiolm.semantic.kmeans import assign
from audiolm.semantic.tokenizer import SemanticTokenizer
from audiolm.semantic.whisper import WhisperEncoder

FORMAT = "audiolm-semantic-targets"
VERSION = 1
INDEX = "targets.json"
WINDOWS = ("trimmed", "packed", "full")  # how Whisper's windows are cut (`WhisperEncoder`); other encoders: "full"
TAIL_SECONDS = 1.0  # trimmed: silence kept after each utterance
GAP_SECONDS = 0.2  # packed: silence between utterances
GROUP_SECONDS = 240.0  # audio tokenized per call (packed: eight windows' worth)
_SPLIT = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*$")
_SHARD = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*-[0-9]{5}\.safetensors$")


def shard_path(folder: Path, split: str, index: int) -> Path:
    return folder / f"{split}-{index:05d}.safetensors"


def load_entry(entry: Entry, root: Path, sample_rate: int) -> np.ndarray:
    """An entry's audio as training holds it: int16 `[L]` (scaled by 32767) at `sample_rate`; an `AudioError` naming
    the file if it cannot be read. Entries with an `offset` (seconds) are a part of their file."""
    offset = "offset" in entry.extra
    wav = load_audio(entry.audio_path(root), sample_rate, offset=float(entry.extra.get("offset", 0.0)),
                     duration=entry.duration if offset else None)
    return (wav[0].numpy().clip(-1, 1) * 32767).astype(np.int16)


def _float(clip: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(clip.astype(np.float32) / 32767)


@torch.inference_mode()
def clip_ids(tokenizer: SemanticTokenizer, clips: list[torch.Tensor], windows: str = "trimmed") -> list[torch.Tensor]:
    """Clips `[L_i]` -> ids `[T_i]` int64 each, T_i = ceil(L_i / hop). A Whisper tokenizer cuts its windows as `windows`
    says (see the module docstring); any other tokenizer runs on each clip alone (`tokenizer(wav)`)."""
    encoder = tokenizer.encoder
    if not isinstance(encoder, WhisperEncoder) or windows == "full":
        return [tokenizer(clip[None, None])[0] for clip in clips]
    if windows == "trimmed":
        features = encoder.trimmed_features(clips, tokenizer.layer, TAIL_SECONDS)
    elif windows == "packed":
        features = encoder.packed_features(clips, tokenizer.layer, GAP_SECONDS)
    else:
        raise ValueError(f"windows must be one of {', '.join(WINDOWS)}, got {windows!r}")
    return [assign((f.float() - tokenizer.mean) / tokenizer.std, tokenizer.centroids) for f in features]


def identity(tokenizer: SemanticTokenizer, windows: str, shard_size: int) -> dict:
    """What fixes the ids in a targets folder (with the manifest)."""
    whisper = isinstance(tokenizer.encoder, WhisperEncoder)
    return {
        "tokenizer": {"fingerprint": tokenizer.fingerprint(), "codebook_size": tokenizer.codebook_size,
                      "frame_rate": tokenizer.frame_rate, "sample_rate": tokenizer.sample_rate,
                      "trained_with_transcripts": bool(getattr(tokenizer.encoder, "trained_with_transcripts", False))},
        "windows": windows if whisper else "full",
        "shard_size": shard_size,
    }


def _chunks(entries: list[Entry], shard_size: int, max_hours: float | None) -> list[list[Entry]]:
    """A split's entries cut into shards; with `max_hours`, the first shards holding at least that much audio."""
    chunks, seconds = [], 0.0
    for start in range(0, len(entries), shard_size):
        if max_hours is not None and seconds >= max_hours * 3600:
            break
        chunks.append(entries[start:start + shard_size])
        seconds += sum(e.duration for e in chunks[-1])
    return chunks


def _shard_done(path: Path, ident: dict, entries: list[Entry]) -> bool:
    """Whether `path` holds this shard already (True), is absent (False); one of other targets is refused."""
    if not path.exists():
        return False
    try:
        with safe_open(str(path), "np") as f:
            metadata, names = f.metadata() or {}, set(f.keys())
        recorded = json.loads(metadata.get("identity", "null"))
    except (SafetensorError, OSError, ValueError) as error:
        raise FileError(path, f"corrupt or unreadable targets shard ({' '.join(str(error).split())[:160]}); delete it to "
                              "write it again") from None
    if recorded != ident:
        raise FileError(path, "holds targets of another tokenizer, window cut or shard size; use another output folder")
    if names != {e.id for e in entries}:
        raise FileError(path, "holds other utterances than this manifest's entries for it (another manifest?); use "
                              "another output folder")
    return True


def _write_shard(tokenizer: SemanticTokenizer, windows: str, ident: dict, path: Path, entries: list[Entry], root: Path,
                 tick: Callable[[int], None]) -> None:
    """Tokenize one shard's entries, a group of about `GROUP_SECONDS` of audio at a time, and write the shard."""
    hop = round(tokenizer.sample_rate / tokenizer.frame_rate)
    tensors: dict[str, torch.Tensor] = {}
    names: list[str] = []
    clips: list[torch.Tensor] = []

    def flush() -> None:
        for name, clip, ids in zip(names, clips, clip_ids(tokenizer, clips, windows)):
            if ids.shape[0] != frames_for(clip.shape[0], hop):
                raise AudiolmError(f"entry {name!r}: the tokenizer gives {ids.shape[0]} frames for {clip.shape[0]} samples, not "
                                   f"ceil(L / {hop}) = {frames_for(clip.shape[0], hop)}: precomputed targets need one frame per "
                                   "hop from the first sample (our encoders, MFCC, Whisper)")
            tensors[name] = ids.to(torch.uint16)
        tick(len(names))
        names.clear()
        clips.clear()

    for entry in entries:
        names.append(entry.id)
        clips.append(_float(load_entry(entry, root, tokenizer.sample_rate)))  # an AudioError names the file
        if sum(clip.shape[0] for clip in clips) >= GROUP_SECONDS * tokenizer.sample_rate:
            flush()
    flush()
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"format": FORMAT, "identity": json.dumps(ident, sort_keys=True)})


def write_targets(manifest: str | Path, tokenizer_dir: str | Path, output_dir: str | Path, splits: tuple[str, ...] = ("train", "valid"),
                  max_hours: float | None = None, shard_size: int = 256, windows: str = "trimmed", progress: bool = True) -> dict:
    """`audiolm semantic targets`: the ids of `tokenizer_dir`'s tokenizer for the entries of `splits` (`("",)`: every
    entry, as split "all"), `max_hours` per split in whole shards, into `output_dir` (module docstring); resumes.

    Splits the manifest lacks are left out. Returns {"utterances", "hours" (of audio, from the manifest's durations),
    "shards", "written" (shards written now), "splits" (those written)}."""
    if windows not in WINDOWS:
        raise ValueError(f"windows must be one of {', '.join(WINDOWS)}, got {windows!r}")
    if shard_size < 1:
        raise ValueError(f"shard_size must be at least 1, got {shard_size}")
    manifest, output_dir = Path(manifest), Path(output_dir)
    entries = read_manifest(manifest)
    if len({e.id for e in entries}) != len(entries):
        raise FileError(manifest, "holds the same entry id twice: targets are keyed by id")
    plan: dict[str, list[list[Entry]]] = {}
    for split in splits:
        name = split or "all"
        if not _SPLIT.match(name):
            raise AudiolmError(f"--split: {split!r} is not a split name (letters, digits, '_', '-', '.')")
        chosen = [e for e in entries if not split or e.split == split]
        if chosen:  # a split the manifest lacks (no valid split, say) is left out
            plan[name] = _chunks(chosen, shard_size, max_hours)
    if not plan:
        raise FileError(manifest, f"no entries in split(s) {', '.join(map(repr, splits))}")
    tokenizer = SemanticTokenizer.load(tokenizer_dir)
    if tokenizer.codebook_size > 65536:
        raise AudiolmError(f"{tokenizer_dir}: targets are stored as uint16: K must be at most 65536, not {tokenizer.codebook_size}")
    ident = identity(tokenizer, windows, shard_size)
    header = {"format": FORMAT, "version": VERSION, "identity": ident}
    if (output_dir / INDEX).exists():
        previous = read_json(output_dir / INDEX)
        if previous.get("identity") != ident:
            raise FileError(output_dir / INDEX, "holds targets of another tokenizer, window cut or shard size; use another output folder")
    else:
        write_json(output_dir / INDEX, header)
    remove_temporaries(output_dir)  # what a killed run left
    jobs = [(shard_path(output_dir, name, i), chunk) for name, chunks in plan.items() for i, chunk in enumerate(chunks)]
    pending = [(path, chunk) for path, chunk in jobs if not _shard_done(path, ident, chunk)]
    root = manifest.resolve().parent
    with tqdm(total=sum(len(c) for _, c in pending), unit="utt", desc=f"targets {manifest.name}", disable=not progress) as bar:
        for path, chunk in pending:
            _write_shard(tokenizer, ident["windows"], ident, path, chunk, root, bar.update)
    return {"utterances": sum(len(c) for _, c in jobs), "hours": sum(e.duration for _, c in jobs for e in c) / 3600,
            "shards": len(jobs), "written": len(pending), "splits": list(plan)}


@dataclass
class PrecomputedTargets:
    """A targets folder read whole (uint16: 2 bytes a frame, 360 kB per hour at 50 Hz): ids by entry id."""

    folder: Path
    codebook_size: int
    frame_rate: float
    sample_rate: int
    ids: dict[str, np.ndarray]  # entry id -> [T] uint16
    shards: dict[str, Path]  # entry id -> its shard (for messages)

    @property
    def hop_length(self) -> int:
        return round(self.sample_rate / self.frame_rate)

    @classmethod
    def load(cls, folder: str | Path) -> PrecomputedTargets:
        """Read `folder`; a missing or corrupt file is a one-line `FileError` naming it."""
        folder = Path(folder)
        header = read_json(folder / INDEX)
        try:
            if header.get("format") != FORMAT or header.get("version") != VERSION:
                raise ValueError(f"format {header.get('format')!r} version {header.get('version')!r}, want {FORMAT!r} {VERSION}")
            tokenizer = header["identity"]["tokenizer"]
            k, rate, sample_rate = tokenizer["codebook_size"], tokenizer["frame_rate"], tokenizer["sample_rate"]
            if type(k) is not int or not 2 <= k <= 65536 or type(sample_rate) is not int or type(rate) not in (int, float) \
                    or not 0 < rate <= sample_rate or (sample_rate / rate) % 1:
                raise ValueError(f"bad codebook_size, frame_rate or sample_rate: {k!r}, {rate!r}, {sample_rate!r}")
        except (KeyError, TypeError, ValueError) as error:
            raise FileError(folder / INDEX, f"is not a targets index ({error})") from None
        ids, shards = {}, {}
        paths = sorted(p for p in folder.glob("*.safetensors") if _SHARD.match(p.name))  # not a killed run's temporaries
        if not paths:
            raise FileError(folder, "holds no targets shards (run `audiolm semantic targets` first)")
        for path in paths:
            for name, tensor in load_tensors(path).items():  # a corrupt file: FileError naming it
                if tensor.dtype != torch.uint16 or tensor.dim() != 1 or tensor.numel() == 0:
                    raise FileError(path, f"entry {name!r}: want ids [T] uint16, got {tensor.dtype} {tuple(tensor.shape)}")
                values = tensor.numpy()
                if int(values.max()) >= k:
                    raise FileError(path, f"entry {name!r}: id {int(values.max())} out of range for K={k}")
                if name in ids:
                    raise FileError(path, f"entry {name!r} is also in {shards[name].name}")
                ids[name], shards[name] = values, path
        return cls(folder, k, float(rate), sample_rate, ids, shards)

    def clips(self, manifest: str | Path, split: str | None, max_hours: float | None = None, progress: bool = False) -> TargetClips:
        """The entries of `split` (None: all) that have targets, up to `max_hours`, with their audio; an utterance whose
        audio does not give as many frames as its ids is refused (audio or targets changed since they were written)."""
        manifest = Path(manifest)
        entries = [e for e in read_manifest(manifest) if (split is None or e.split == split) and e.id in self.ids]
        root, clips, ids, speakers, weights, seconds = manifest.resolve().parent, [], [], [], [], 0.0
        for entry in tqdm(entries, desc=f"load {manifest.name}", unit="file", disable=not progress):
            if max_hours is not None and seconds >= max_hours * 3600:
                break
            clip = load_entry(entry, root, self.sample_rate)
            if frames_for(len(clip), self.hop_length) != len(self.ids[entry.id]):
                raise FileError(self.shards[entry.id], f"entry {entry.id!r} has {len(self.ids[entry.id])} target frames, its "
                                                       f"audio {frames_for(len(clip), self.hop_length)} (the audio changed?)")
            clips.append(clip)
            ids.append(self.ids[entry.id])
            speakers.append(entry.speaker or "")
            weight = entry.extra.get("weight", 1.0)
            if type(weight) not in (int, float) or not math.isfinite(weight) or weight < 0:
                raise FileError(manifest, f"entry {entry.id!r}: weight must be a non-negative number, got {weight!r}")
            weights.append(float(weight))
            seconds += len(clip) / self.sample_rate
        if not clips:
            raise AudiolmError(f"{self.folder}: no targets for {'split ' + repr(split) if split else 'any entry'} of {manifest}")
        return TargetClips(clips, ids, speakers, weights, self.hop_length)


class TargetClips:
    """Utterances `[L_i]` int16 with their ids `[T_i]`, T_i = ceil(L_i / hop), cropped together at whole frames."""

    def __init__(self, clips: list[np.ndarray], ids: list[np.ndarray], speakers: list[str], weights: list[float], hop_length: int) -> None:
        assert len(clips) == len(ids) == len(speakers) == len(weights) > 0
        self.clips, self.ids, self.speakers, self.hop_length = clips, ids, speakers, hop_length
        weighted = np.array([len(c) for c in clips], dtype=np.float64) * np.array(weights)
        if not weighted.sum() > 0:
            raise AudiolmError("every clip has weight 0")
        self.weights = weighted / weighted.sum()  # [N]: drawn in proportion to length x weight, as `AudioClips`

    def __len__(self) -> int:
        return len(self.clips)

    def crops(self, count: int, frames: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """`count` random crops of `frames` frames: wav `[B, 1, frames * hop]` float32 starting at a whole frame f of
        its utterance, its ids `[B, frames]` int64 (ids f..f + frames - 1) and `valid [B, frames]` bool (False past the
        utterance's end, where the audio is zero-padded and the ids are 0)."""
        picks = torch.multinomial(torch.from_numpy(self.weights), count, replacement=True, generator=generator).tolist()
        wav, ids = torch.zeros(count, 1, frames * self.hop_length), torch.zeros(count, frames, dtype=torch.long)
        valid = torch.zeros(count, frames, dtype=torch.bool)
        for row, index in enumerate(picks):
            clip, clip_ids = self.clips[index], self.ids[index]
            start = int(torch.randint(0, max(1, len(clip_ids) - frames + 1), (1,), generator=generator))  # in frames
            piece = clip[start * self.hop_length:(start + frames) * self.hop_length]
            wav[row, 0, : len(piece)] = _float(piece)
            taken = clip_ids[start:start + frames]
            ids[row, : len(taken)] = torch.from_numpy(taken.astype(np.int64))
            valid[row, : len(taken)] = True
        return wav, ids, valid

    def fixed(self, count: int, frames: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """`count` utterances taken from each speaker in turn (as `AudioClips.fixed`), each cut to its first `frames`
        frames: (wav `[1, 1, L]`, ids `[1, T]`), T = ceil(L / hop) (validation)."""
        by_speaker: dict[str, list[int]] = {}
        for index, speaker in enumerate(self.speakers):
            by_speaker.setdefault(speaker, []).append(index)
        queues = list(by_speaker.values())
        order = [queue[i] for i in range(max(map(len, queues))) for queue in queues if i < len(queue)]
        return [(_float(self.clips[i][: frames * self.hop_length])[None, None],  # [1, 1, L]
                 torch.from_numpy(self.ids[i][:frames].astype(np.int64))[None])  # [1, T]
                for i in order[:count]]
