"""Recorded game speech: the container readers and the RNC decompressor on small containers built here, the
decompressor on the real Beneath a Steel Sky data (fetched once with apt-get, or found in a cache), and the
`data real-speech` command end to end on fake packages."""

from __future__ import annotations

import io
import json
import os
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audiolm.cli.main import main
from audiolm.data.debian import DONE_MARKER, fetch_package
from audiolm.data.game_archives import (
    ArchiveError,
    decode_queen_clip,
    decode_sky_clip,
    queen_speech,
    read_entry,
    read_queen_table,
    read_sky_index,
    sky_sample,
    sky_speech,
)
from audiolm.data.manifest import read_manifest
from audiolm.data.pseudo_speakers import ClusterConfig, adjusted_rand_index, cluster_speakers, purity
from audiolm.data.rnc import RncError, crc16, rnc_unpack
from audiolm.errors import AudiolmError

REPO = Path(__file__).resolve().parents[2]
SKY = "beneath-a-steel-sky"
QUEEN = "flight-of-the-amazon-queen"


# --- a small RNC method 1 packer (literal runs and matches given by hand) -------------------------------------------


class _BitStream:
    """Bits least significant first into little-endian 16-bit words, each reserved where its first bit is written,
    with literal bytes appended between them."""

    def __init__(self) -> None:
        self.out = bytearray()
        self.word_at = 0
        self.filled = 16

    def bits(self, value: int, count: int) -> None:
        for i in range(count):
            if self.filled == 16:
                self.word_at, self.filled = len(self.out), 0
                self.out += b"\0\0"
            if value >> i & 1:
                self.out[self.word_at + self.filled // 8] |= 1 << (self.filled % 8)
            self.filled += 1

    def table(self, lengths: dict[int, int]) -> dict[int, tuple[int, int]]:
        """Write a Huffman table of symbol -> code length; return symbol -> (canonical code, length)."""
        count = max(lengths) + 1 if lengths else 0
        self.bits(count, 5)
        for symbol in range(count):
            self.bits(lengths.get(symbol, 0), 4)
        codes, code = {}, 0
        for length in range(1, 16):
            for symbol in sorted(s for s, n in lengths.items() if n == length):
                codes[symbol] = (code, length)
                code += 1
            code <<= 1
        return codes

    def value(self, codes: dict[int, tuple[int, int]], value: int) -> None:
        symbol = value if value < 2 else value.bit_length()
        code, length = codes[symbol]
        for i in reversed(range(length)):  # the first bit read is the code's most significant
            self.bits(code >> i & 1, 1)
        if symbol >= 2:
            self.bits(value - (1 << (symbol - 1)), symbol - 1)


def _symbol(value: int) -> int:
    return value if value < 2 else value.bit_length()


def rnc_pack(chunks: list[list[tuple[bytes, tuple[int, int] | None]]]) -> bytes:
    """Pack chunks of sub-chunks (literal bytes, (distance, length) match or None in the last) as RNC method 1."""
    stream, out = _BitStream(), bytearray()
    stream.bits(0, 2)
    for chunk in chunks:
        runs = {_symbol(len(literal)) for literal, _ in chunk}
        distances = {_symbol(m[0] - 1) for _, m in chunk if m}
        lengths = {_symbol(m[1] - 2) for _, m in chunk if m}
        tables = [stream.table({s: max(1, (len(group) - 1).bit_length()) for s in group}) for group in (runs, distances, lengths)]
        # a table of one symbol is one 1-bit code; of two, two 1-bit codes; of 3-4, 2-bit codes (complete enough)
        stream.bits(len(chunk), 16)
        for literal, match in chunk:
            stream.value(tables[0], len(literal))
            stream.out += literal
            out += literal
            if match:
                stream.value(tables[1], match[0] - 1)
                stream.value(tables[2], match[1] - 2)
                for _ in range(match[1]):
                    out.append(out[-match[0]])
    packed = bytes(stream.out)
    header = b"RNC\x01" + struct.pack(">IIHHBB", len(out), len(packed), crc16(out), crc16(packed), 0, len(chunks))
    return header + packed


def test_crc16_is_crc16_arc():
    assert crc16(b"123456789") == 0xBB3D  # the catalogued check value of CRC-16/ARC
    assert crc16(b"") == 0


def test_rnc_unpacks_literals_matches_and_chunks():
    chunks = [[(b"abc", (3, 6)), (b"xyz", (1, 5)), (b"", (12, 4)), (b"!", None)],
              [(bytes(range(256)) * 2, (512, 40)), (b"", None)]]
    expected = b"abcabcabcxyzzzzzz" + b"cabc" + b"!" + bytes(range(256)) * 2 + bytes(range(40))
    assert rnc_unpack(rnc_pack(chunks)) == expected


def test_rnc_refuses_a_corrupt_or_truncated_stream():
    packed = bytearray(rnc_pack([[(b"hello world", (6, 10)), (b"", None)]]))
    with pytest.raises(RncError, match="not an RNC"):
        rnc_unpack(b"RNC\x02" + bytes(packed[4:]))
    with pytest.raises(RncError, match="truncated"):
        rnc_unpack(bytes(packed[:-3]))
    packed[-1] ^= 0x40
    with pytest.raises(RncError, match="CRC"):
        rnc_unpack(bytes(packed))


# --- small containers --------------------------------------------------------------------------------------------


def voice(seconds: float, sample_rate: int, pitch: float, seed: int = 0) -> np.ndarray:
    """A buzzy harmonic tone with vibrato and syllable-like bursts: enough for the decoders and the speaker encoder."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    phase = 2 * np.pi * np.cumsum(pitch * (1 + 0.05 * np.sin(2 * np.pi * 5 * t))) / sample_rate
    wav = sum(np.sin(k * phase) / k for k in range(1, 12))
    wav *= 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t + seed) ** 2
    return (0.3 * wav / np.abs(wav).max()).astype(np.float32)


def mp3(wav: np.ndarray, sample_rate: int = 11025) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, wav, sample_rate, format="MP3")
    return buffer.getvalue()


def write_queen(path: Path, entries: list[tuple[str, bytes]]) -> None:
    table, data = bytearray(), bytearray()
    start = 15 + 21 * len(entries)
    for name, blob in entries:
        table += struct.pack(">12sBII", name.encode(), 1, start + len(data), len(blob))
        data += blob
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"QTBLCEM10\0\0\0" + bytes([1]) + struct.pack(">H", len(entries)) + table + data)


def sky_file(pcm: bytes, packed: bool) -> bytes:
    header = bytearray(22)
    struct.pack_into("<H", header, 0, 0x81 if packed else 0x01)
    struct.pack_into("<H", header, 12, (22 + len(pcm)) & 0xFFFF)
    return bytes(header) + (rnc_pack([[(pcm, None)]]) if packed else pcm)


def write_sky(folder: Path, files: list[tuple[int, bytes, int]]) -> None:
    """sky.dsk + sky.dnr of (file number, data, flags); files start on 16-byte boundaries, addressed in 16-byte units."""
    index, data = bytearray(struct.pack("<I", len(files))), bytearray()
    for number, blob, flags in files:
        data += b"\0" * (-len(data) % 16)
        index += struct.pack("<H", number) + ((len(data) >> 4) | 0x800000).to_bytes(3, "little")
        index += (len(blob) | flags << 22).to_bytes(3, "little")
        data += blob
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sky.dnr").write_bytes(bytes(index))
    (folder / "sky.dsk").write_bytes(bytes(data))


def pcm8(wav: np.ndarray) -> bytes:
    return np.clip(np.round(wav * 128 + 128), 0, 255).astype(np.uint8).tobytes()


def test_queen_reader_lists_and_decodes_the_speech(tmp_path):
    speech = mp3(voice(1.5, 11025, 120))
    path = tmp_path / "queen.1c"
    write_queen(path, [("ROOM1.PCX", b"\x0a" * 100), ("020006J1.SB", speech)])
    entries = read_queen_table(path)
    assert [e.name for e in entries] == ["ROOM1.PCX", "020006J1.SB"]
    assert [e.name for e in queen_speech(entries)] == ["020006J1.SB"]
    assert read_entry(path, entries[1]) == speech
    clip = decode_queen_clip(speech)
    assert clip.sample_rate == 11025 and abs(len(clip.wav) / 11025 - 1.5) < 0.1 and clip.clipped == 0
    path.write_bytes(b"QTBX" + path.read_bytes()[4:])
    with pytest.raises(ArchiveError, match="QTBL"):
        read_queen_table(path)
    path.write_bytes(b"QTBLCEM10\0\0\0\x01\x00\x05" + b"\0" * 30)
    with pytest.raises(ArchiveError, match="truncated"):
        read_queen_table(path)


def test_sky_reader_finds_samples_packed_or_not_and_skips_other_files(tmp_path):
    wav = voice(1.2, 11025, 200)
    write_sky(tmp_path, [(60000, b"\x07" * 50, 2), (50001, sky_file(pcm8(wav), packed=True), 0),
                         (50002, sky_file(pcm8(wav), packed=False), 0), (59000, b"\x81\x00" + b"\x05" * 40, 0)])
    entries = read_sky_index(tmp_path / "sky.dnr")
    assert [e.name for e in entries] == ["60000", "50001", "50002", "59000"]
    assert all(e.offset % 16 == 0 for e in entries)
    assert [e.name for e in sky_speech(entries)] == ["50001", "50002", "59000"]
    for entry in entries[1:3]:
        clip = decode_sky_clip(read_entry(tmp_path / "sky.dsk", entry))
        assert clip.sample_rate == 11025 and np.abs(clip.wav - wav).max() <= 1 / 128
    with pytest.raises(ValueError, match="RNC"):
        sky_sample(read_entry(tmp_path / "sky.dsk", entries[3]))  # marked packed, holds no RNC stream
    square = np.sign(voice(1.2, 11025, 200))
    assert decode_sky_clip(sky_file(pcm8(square), packed=False)).clipped > 0.5


# --- the real data ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sky_root(tmp_path_factory) -> Path:
    """The unpacked beneath-a-steel-sky package: from $AUDIOLM_DEB_CACHE or a corpus built in data/real, else fetched
    (66 MB) with apt-get; skipped where neither works (no apt-get, no network)."""
    for cache in (os.environ.get("AUDIOLM_DEB_CACHE"), REPO / "data" / "real" / "cache"):
        if cache and (Path(cache) / SKY / DONE_MARKER).is_file():
            return Path(cache) / SKY
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        pytest.skip("fetching the package needs apt-get and dpkg-deb")
    try:
        return fetch_package(SKY, tmp_path_factory.mktemp("debs"))
    except AudiolmError as error:
        pytest.skip(f"cannot fetch {SKY}: {error}")


def test_rnc_unpacks_real_speech_with_matching_crcs(sky_root):
    folder = sky_root / "usr" / "share" / "scummvm" / SKY
    speech = sky_speech(read_sky_index(folder / "sky.dnr"))
    assert len(speech) > 3000
    for entry in speech[:: len(speech) // 20]:
        data = read_entry(folder / "sky.dsk", entry)
        assert data[22:26] == b"RNC\x01"
        pcm = np.frombuffer(sky_sample(data), np.uint8)  # rnc_unpack checks both CRCs: packed and unpacked data
        assert len(pcm) == struct.unpack(">I", data[26:30])[0]
        assert abs(pcm.mean() - 128) < 3 and 3 < pcm.std() < 80, entry.name  # centred 8-bit speech
        assert np.abs(np.diff(pcm.astype(int))).mean() < 30  # smooth like audio, not noise-like
    packed = bytearray(read_entry(folder / "sky.dsk", speech[0])[22:])
    packed[40] ^= 1
    with pytest.raises(RncError, match="CRC"):
        rnc_unpack(bytes(packed))


# --- pseudo-speakers and the command ----------------------------------------------------------------------------------


def test_clustering_recovers_well_separated_speakers():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(4, 32))
    truth = np.repeat(np.arange(4), 12)
    vectors = centres[truth] + 0.1 * rng.normal(size=(48, 32))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    labels = cluster_speakers(vectors, ClusterConfig(threshold=0.5, min_size=5))
    assert purity(labels, truth) == 1.0 and adjusted_rand_index(labels, truth) == pytest.approx(1.0)
    assert np.bincount(labels).tolist() == [12, 12, 12, 12]
    assert adjusted_rand_index(rng.permutation(truth), truth) < 0.2


def make_packages(cache: Path) -> None:
    """Fake unpacked packages: Queen with two voices and a too-short clip, Steel Sky with a packed voice, a clipped
    clip and a corrupt one."""
    for package in (QUEEN, SKY):
        doc = cache / package / "usr" / "share" / "doc" / package
        doc.mkdir(parents=True)
        (doc / "copyright").write_text(f"{package}: free to give away\n")
        (cache / package / DONE_MARKER).write_text("test\n")
    data = cache / QUEEN / "usr" / "share" / "scummvm" / QUEEN
    write_queen(data / "queen.1c", [("000001J1.SB", mp3(voice(1.5, 11025, 110, 0))), ("ROOM1.PCX", b"\0" * 64),
                                    ("000002P1.SB", mp3(voice(0.5, 11025, 220, 1))),
                                    ("000003J1.SB", mp3(voice(1.6, 11025, 115, 2)))])
    corrupt = bytearray(sky_file(pcm8(voice(1.2, 11025, 180)), packed=True))
    corrupt[-5] ^= 0xFF
    write_sky(cache / SKY / "usr" / "share" / "scummvm" / SKY,
              [(50001, sky_file(pcm8(voice(1.4, 11025, 180, 3)), packed=True), 0),
               (50002, sky_file(pcm8(np.sign(voice(1.2, 11025, 150))), packed=False), 0),
               (50003, bytes(corrupt), 0), (60001, b"\0" * 64, 2)])


def test_real_speech_command_builds_resumes_and_lists_failures(tmp_path, capsys):
    cache, out = tmp_path / "cache", tmp_path / "corpus"
    make_packages(cache)
    argv = ["data", "real-speech", "-o", str(out), "--cache", str(cache), "--workers", "1", "--quiet"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "clips kept: 3 of 6" in printed
    entries = read_manifest(out / "manifest.jsonl")
    assert sorted(e.id for e in entries) == ["queen-000001J1", "queen-000003J1", "sky-50001"]
    for entry in entries:
        assert entry.sample_rate == 16000 and entry.duration >= 1.0 and entry.speaker and entry.split
        assert entry.extra["bandwidth"] == 5512.5 and entry.extra["source"] in (QUEEN, SKY)
        info = sf.info(str(entry.audio_path(out)))
        assert info.samplerate == 16000 and abs(info.duration - entry.duration) < 1e-3
    failed = dict(line.split("\t") for line in (out / "manifest.failed.txt").read_text().splitlines())
    assert failed["queen.1c:000002P1.SB"].startswith("shorter than 1 s")
    assert failed["sky.dsk:50002"].startswith("clipped")
    assert failed["sky.dsk:50003"].startswith("undecodable") and "CRC" in failed["sky.dsk:50003"]
    for package in (QUEEN, SKY):
        assert (out / "licenses" / f"{package}.copyright").read_text().startswith(package)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["kept"] == 3 and summary["dropped_by_reason"] == {"shorter than 1 s": 1, "clipped": 1, "undecodable": 1}

    # A re-run makes only what is missing: here the one clip whose sidecar (its commit marker) is gone.
    wavs = {p: p.stat().st_mtime_ns for p in (out / "audio").rglob("*.wav")}
    (out / "audio" / "sky" / "sky-50001.json").unlink()
    (out / "audio" / "sky" / ".sky-50001.tmp.wav").write_bytes(b"half-written")  # what a kill leaves
    assert main(argv + ["--max-clips", "4"]) == 0
    capsys.readouterr()
    changed = [p.name for p, t in wavs.items() if p.stat().st_mtime_ns != t]
    assert changed == ["sky-50001.wav"]
    assert not (out / "audio" / "sky" / ".sky-50001.tmp.wav").exists()
    assert sorted(e.id for e in read_manifest(out / "manifest.jsonl")) == ["queen-000001J1", "sky-50001"]
