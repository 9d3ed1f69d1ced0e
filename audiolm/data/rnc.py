"""Rob Northen Compression (RNC ProPack) method 1: the decompressor, and the CRC-16 that checks it.

Written from the format's description, not from any game engine's code.

    data = rnc_unpack(blob)   # blob starts with b"RNC\\x01"; raises RncError on a bad header, stream or CRC

An 18-byte big-endian header:
    0  b"RNC" + method (1)    4  unpacked size (u32)   8  packed size (u32)
    12 CRC-16 of the unpacked data   14 CRC-16 of the packed data   16 leeway (u8)   17 pack chunks (u8)
then the packed data. It is a stream of bits read from little-endian 16-bit words, least significant bit
first, with raw literal bytes spliced between the words. The first two bits are flags (locked, encrypted)
and are skipped. Each pack chunk starts with three Huffman tables (literal-run lengths, match distances,
match lengths) and a 16-bit count of sub-chunks; a sub-chunk is a literal run (its length, then that many
bytes copied verbatim from the byte stream) and, except in the last one, a match (distance + 1, length + 2)
copied from the output already written.

A table is 5 bits `n`, then n code lengths of 4 bits (0: symbol unused); codes are canonical (shorter
first, ties by symbol) and stored bit-reversed because the stream is read from the low bit. Symbol s
decodes to s when s < 2, else to 2^(s-1) plus s-1 further bits.

The reader keeps one word of look-ahead: it loads the next word as soon as fewer than 16 bits remain.
Literal bytes start where that look-ahead word was read from, so after a literal run the look-ahead is
dropped and reloaded from the byte after the run.
"""

from __future__ import annotations

import struct

from audiolm.errors import AudiolmError

MAGIC = b"RNC\x01"
HEADER_SIZE = 18
_PAD = 8  # zero bytes after the packed data: the look-ahead word may lie past its end


class RncError(AudiolmError):
    """A packed stream that is not RNC method 1, is truncated or corrupt, or fails its CRC."""


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        value = byte
        for _ in range(8):
            value = (value >> 1) ^ 0xA001 if value & 1 else value >> 1
        table.append(value)
    return table


_CRC_TABLE = _crc_table()


def crc16(data: bytes | bytearray | memoryview) -> int:
    """CRC-16/ARC (reflected polynomial 0xA001, initial value 0): the checksum RNC stores."""
    crc, table = 0, _CRC_TABLE
    for byte in bytes(data):
        crc = (crc >> 8) ^ table[(crc ^ byte) & 0xFF]
    return crc


def rnc_header(blob: bytes) -> tuple[int, int, int, int, int]:
    """(unpacked size, packed size, unpacked CRC, packed CRC, pack chunks) of a method-1 stream."""
    if len(blob) < HEADER_SIZE or blob[:4] != MAGIC:
        raise RncError("not an RNC method 1 stream (no 'RNC\\x01' header)")
    unpacked, packed, crc_unpacked, crc_packed, _leeway, chunks = struct.unpack(">IIHHBB", blob[4:HEADER_SIZE])
    return unpacked, packed, crc_unpacked, crc_packed, chunks


def rnc_unpack(blob: bytes, check_crc: bool = True) -> bytes:
    """Unpack an RNC method 1 stream (`blob` starts at its header; trailing bytes are ignored)."""
    unpacked, packed, crc_unpacked, crc_packed, chunks = rnc_header(blob)
    body = blob[HEADER_SIZE:HEADER_SIZE + packed]
    if len(body) < packed:
        raise RncError(f"truncated: {len(body)} of {packed} packed bytes")
    if check_crc and crc16(body) != crc_packed:
        raise RncError("the packed data fails its CRC")
    try:
        out = _unpack(body + bytes(_PAD), unpacked)
    except IndexError:
        raise RncError("corrupt stream (a match reaches before the start of the output)") from None
    if check_crc and crc16(out) != crc_unpacked:
        raise RncError("the unpacked data fails its CRC")
    return bytes(out)


def _read_table(bits) -> list[tuple[int, int]] | None:
    """A Huffman table as a lookup list indexed by the next `width` bits: (code length, symbol); with its width."""
    count = bits(5)
    lengths = [bits(4) for _ in range(count)]
    width = max(lengths, default=0)
    if width == 0:
        return None
    table: list = [None] * (1 << width)
    code = 0
    for length in range(1, width + 1):
        for symbol, symbol_length in enumerate(lengths):
            if symbol_length != length:
                continue
            if code >= 1 << length:
                raise RncError("over-subscribed Huffman table")
            reversed_code = int(f"{code:0{length}b}"[::-1], 2)
            table[reversed_code::1 << length] = [(length, symbol)] * (1 << (width - length))
            code += 1
        code <<= 1
    return table


def _unpack(src: bytes, size: int) -> bytearray:
    """The decoding loop; `src` is the packed data padded with zero bytes so that look-ahead never overruns."""
    out = bytearray()
    limit = len(src) - 2  # the last position a word can be read from
    state = [src[0] | src[1] << 8, 16, 0]  # bit buffer, bits in it, position of the look-ahead word

    def bits(n: int) -> int:
        if n > 16:
            low = bits(16)
            return low | bits(n - 16) << 16
        buffer, count, position = state
        value = buffer & ((1 << n) - 1)
        buffer >>= n
        count -= n
        if count < 16:
            position += 2
            if position > limit:
                raise RncError("truncated stream")
            buffer |= (src[position] | src[position + 1] << 8) << count
            count += 16
        state[0], state[1], state[2] = buffer, count, position
        return value

    def decode(table: list | None) -> int:
        if table is None:
            raise RncError("a code from an empty Huffman table")
        entry = table[state[0] & (len(table) - 1)]
        if entry is None:
            raise RncError("a bit pattern that no Huffman code has")
        length, symbol = entry
        bits(length)
        return symbol if symbol < 2 else (1 << (symbol - 1)) | bits(symbol - 1)

    bits(2)  # the locked and encrypted flags
    while len(out) < size:
        literals, distances, lengths = _read_table(bits), _read_table(bits), _read_table(bits)
        subchunks = bits(16)
        while True:
            run = decode(literals)
            if run:
                position = state[2]  # literal bytes start at the look-ahead word
                if position + run > limit - _PAD + 2:
                    raise RncError("truncated stream (literal run past the end)")
                out += src[position:position + run]
                position += run
                count = state[1] - 16
                state[0] = (state[0] & ((1 << count) - 1)) | (src[position] | src[position + 1] << 8) << count
                state[2] = position
            subchunks -= 1
            if subchunks <= 0:
                break
            distance = decode(distances) + 1
            length = decode(lengths) + 2
            start = len(out) - distance
            if start < 0:
                raise IndexError
            if distance >= length:
                out += out[start:start + length]
            else:  # the match overlaps what it writes: repeat the last `distance` bytes
                pattern = out[start:]
                out += (pattern * (length // distance + 1))[:length]
        if len(out) > size:
            raise RncError(f"unpacked {len(out)} bytes, more than the {size} the header states")
    return out
