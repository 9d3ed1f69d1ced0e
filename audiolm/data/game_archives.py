"""Readers for the speech inside two freeware adventure games' data files, written from the formats' description
(no game-engine code). Each reader lists entries (name, offset, size) and decodes one entry to a mono waveform.

Flight of the Amazon Queen, `queen.1c` (all integers big-endian):
    0  b"QTBL" + a version string          12 compression (1: entries are MP3)
    13 entry count (u16)                    15 entries of 21 bytes: name (12, NUL-padded), bundle (1), offset (u32), size (u32)
Offsets are from the start of the file. Entries named *.SB are speech clips: MP3 (MPEG-2.5 layer III, 11,025 Hz mono).

Beneath a Steel Sky, `sky.dnr` (index) + `sky.dsk` (data), little-endian:
    sky.dnr: entry count (u32), then 8-byte entries: file number (u16), offset (24 bits), flags and size (24 bits).
    Offset bit 23 set: the other 23 bits count 16-byte units. Size is the low 22 bits of the last field; bits 22 and
    23 mark files whose data is not a header followed by a payload (packed with its header, or raw data).
A sample file is a 22-byte header (eleven u16: its first has bit 7 set when the payload is RNC-packed, the seventh is
the header plus payload size, modulo 2^16), then the payload: 8-bit unsigned PCM at 11,025 Hz, packed with RNC
ProPack method 1 (`audiolm.data.rnc`) or not. Speech is file numbers 50000-59999 (the intro's narration is 59xxx,
with a few sound effects among it); numbers from 60000 hold graphics and music.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from audiolm.data.rnc import MAGIC as RNC_MAGIC
from audiolm.data.rnc import rnc_unpack
from audiolm.errors import FileError

QUEEN_ENTRY = struct.Struct(">12sBII")
QUEEN_HEADER_SIZE = 15
SKY_ENTRY = struct.Struct("<H3s3s")
SKY_HEADER_SIZE = 22
SKY_SAMPLE_RATE = 11025
SKY_SPEECH = range(50000, 60000)
FLAT_TOP = 3  # consecutive samples at full scale that mark clipping (one alone is a peak that just reaches it)


class ArchiveError(FileError):
    """A game data file that does not hold what its format promises."""


@dataclass(frozen=True)
class ArchiveEntry:
    name: str  # Queen: "020006J1.SB"; Steel Sky: the file number, "50102"
    offset: int  # bytes from the start of the data file
    size: int
    flags: int = 0  # Steel Sky: bits 22-23 of the index entry


@dataclass(frozen=True)
class Clip:
    wav: np.ndarray  # [L] float32, at the source's rate
    sample_rate: int
    clipped: float  # fraction of samples in flat tops: runs of `FLAT_TOP` or more at the format's full scale


def read_queen_table(path: str | Path) -> list[ArchiveEntry]:
    """Every entry of a `queen.1c` file (speech and the rest); raises `ArchiveError` if it is not one we can read."""
    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(QUEEN_HEADER_SIZE)
        if len(head) < QUEEN_HEADER_SIZE or head[:4] != b"QTBL":
            raise ArchiveError(path, "not a Flight of the Amazon Queen data file (no QTBL header)")
        if head[12] != 1:
            raise ArchiveError(path, f"compression type {head[12]}; only the MP3 version (1) is supported")
        (count,) = struct.unpack(">H", head[13:15])
        table = f.read(count * QUEEN_ENTRY.size)
        file_size = f.seek(0, io.SEEK_END)
    if len(table) < count * QUEEN_ENTRY.size:
        raise ArchiveError(path, f"truncated table: {count} entries promised")
    entries = []
    for name, _bundle, offset, size in QUEEN_ENTRY.iter_unpack(table):
        if offset + size > file_size:
            raise ArchiveError(path, f"entry {name!r} runs past the end of the file")
        entries.append(ArchiveEntry(name.rstrip(b"\0").decode("ascii", "replace"), offset, size))
    return entries


def queen_speech(entries: list[ArchiveEntry]) -> list[ArchiveEntry]:
    return [e for e in entries if e.name.upper().endswith(".SB")]


def decode_queen_clip(data: bytes) -> Clip:
    """An MP3 speech clip as float32 samples (libsndfile's mpg123 decodes MPEG-2.5 in memory)."""
    wav, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)  # [L, C]
    wav = wav.mean(axis=1)
    return Clip(np.clip(wav, -1.0, 1.0), int(rate), clipped_fraction(np.abs(wav) >= 0.999))


def read_sky_index(path: str | Path) -> list[ArchiveEntry]:
    """Every entry of a `sky.dnr` index, named by file number."""
    path = Path(path)
    data = path.read_bytes()
    if len(data) < 4:
        raise ArchiveError(path, "not a Beneath a Steel Sky index (too short)")
    (count,) = struct.unpack("<I", data[:4])
    if len(data) < 4 + count * SKY_ENTRY.size:
        raise ArchiveError(path, f"truncated index: {count} entries promised")
    entries = []
    for number, offset_field, flag_field in SKY_ENTRY.iter_unpack(data[4:4 + count * SKY_ENTRY.size]):
        offset = int.from_bytes(offset_field, "little")
        flags = int.from_bytes(flag_field, "little")
        offset = (offset & 0x7FFFFF) << 4 if offset & 0x800000 else offset
        entries.append(ArchiveEntry(str(number), offset, flags & 0x3FFFFF, flags >> 22))
    return entries


def sky_speech(entries: list[ArchiveEntry]) -> list[ArchiveEntry]:
    """The entries that can be speech samples, by file number."""
    return sorted((e for e in entries if int(e.name) in SKY_SPEECH and e.flags == 0), key=lambda e: int(e.name))


def sky_sample(data: bytes) -> bytes:
    """The 8-bit PCM payload of a sample file (unpacked, CRC-checked); `ValueError` if `data` is not a sample file."""
    if len(data) < SKY_HEADER_SIZE:
        raise ValueError("shorter than a file header")
    flag, total = struct.unpack_from("<H", data, 0)[0], struct.unpack_from("<H", data, 12)[0]
    payload = data[SKY_HEADER_SIZE:]
    if flag & 0x80:
        if payload[:4] != RNC_MAGIC:
            raise ValueError("marked packed, but no RNC header")
        payload = rnc_unpack(payload)
    if (SKY_HEADER_SIZE + len(payload)) & 0xFFFF != total:
        raise ValueError(f"not a sample file (its header states {total} bytes, it holds {SKY_HEADER_SIZE + len(payload)})")
    return payload


def decode_sky_clip(data: bytes) -> Clip:
    pcm = np.frombuffer(sky_sample(data), dtype=np.uint8)
    clipped = clipped_fraction(pcm == 0) + clipped_fraction(pcm == 255)
    return Clip((pcm.astype(np.float32) - 128.0) / 128.0, SKY_SAMPLE_RATE, clipped)


def clipped_fraction(at_full_scale: np.ndarray, min_run: int = FLAT_TOP) -> float:
    """The fraction of samples `[L]` that lie in runs of at least `min_run` consecutive True (flat tops)."""
    if not at_full_scale.any():
        return 0.0
    edges = np.diff(np.concatenate([[0], at_full_scale.astype(np.int8), [0]]))
    runs = np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)
    return float(runs[runs >= min_run].sum() / len(at_full_scale))


def read_entry(path: str | Path, entry: ArchiveEntry) -> bytes:
    with open(path, "rb") as f:
        f.seek(entry.offset)
        data = f.read(entry.size)
    if len(data) < entry.size:
        raise ArchiveError(path, f"entry {entry.name} runs past the end of the file")
    return data
