"""A versioned file of codec codes (`.codes`): safetensors holding `codes [K, T]` uint16, plus metadata.

Metadata: format name and version, sample rate, number of levels, codebook size, frame rate, the
number of audio samples encoded, the codec's config hash and its codebook fingerprint. Decoding with a
codec whose settings or codebooks differ from the ones that wrote the file is refused: the codes
would mean something else.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from audiolm.errors import FileError
from audiolm.formats.atomic import atomic_path

FORMAT = "audiolm-codes"
VERSION = 1


@dataclass
class CodesFile:
    codes: torch.Tensor  # [K, T] int64
    sample_rate: int
    num_samples: int
    codebook_size: int
    frame_rate: float
    config_hash: str
    codebook_fingerprint: str

    @property
    def num_codebooks(self) -> int:
        return self.codes.shape[0]

    def check(self, codec, path: str | Path) -> None:
        """Raise `FileError` unless `codec` is the codec that wrote these codes."""
        if codec.config.hash() != self.config_hash:
            raise FileError(path, f"was written by a codec with other settings (config {self.config_hash}, "
                                  f"this codec {codec.config.hash()})")
        if codec.codebook_fingerprint() != self.codebook_fingerprint:
            raise FileError(path, f"was written by a codec with other codebooks ({self.codebook_fingerprint}, "
                                  f"this codec {codec.codebook_fingerprint()}): a retrained model gives codes another meaning")
        if self.num_codebooks > codec.num_codebooks:
            raise FileError(path, f"holds {self.num_codebooks} levels, the codec has {codec.num_codebooks}")


def save_codes(path: str | Path, codes: torch.Tensor, codec, num_samples: int) -> Path:
    """Write codes `[K, T]` (or `[1, K, T]`) from `codec` atomically."""
    if codes.dim() == 3:
        if codes.shape[0] != 1:
            raise ValueError("save_codes takes the codes of one waveform")
        codes = codes[0]
    if codec.cardinality > 65536:
        raise ValueError("codes are stored as uint16: codebooks of at most 65536 entries")
    metadata = {
        "format": FORMAT, "version": str(VERSION), "sample_rate": str(codec.sample_rate), "num_samples": str(num_samples),
        "codebook_size": str(codec.cardinality), "frame_rate": repr(codec.frame_rate),
        "config_hash": codec.config.hash(), "codebook_fingerprint": codec.codebook_fingerprint(),
    }
    with atomic_path(path) as tmp:
        save_file({"codes": codes.to(torch.int32).to(torch.uint16).contiguous().cpu()}, str(tmp), metadata=metadata)
    return Path(path)


def load_codes(path: str | Path) -> CodesFile:
    """Read a `.codes` file; a missing, corrupt, foreign or newer file raises a one-line `FileError`."""
    path = Path(path)
    if not path.is_file():
        raise FileError(path, "no such codes file")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            if metadata.get("format") != FORMAT:
                raise FileError(path, "is not an audiolm codes file")
            version = int(metadata.get("version", "0"))
            if version > VERSION:
                raise FileError(path, f"has codes format version {version}; this audiolm reads up to {VERSION}")
            codes = f.get_tensor("codes")
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise FileError(path, f"corrupt or unreadable codes file ({' '.join(str(error).split())[:120]})") from None
    if codes.is_floating_point() or codes.is_complex() or codes.dtype == torch.bool:
        raise FileError(path, f"codes must be integers, found {codes.dtype}")
    try:
        result = CodesFile(
            codes=codes.to(torch.int64), sample_rate=int(metadata["sample_rate"]), num_samples=int(metadata["num_samples"]),
            codebook_size=int(metadata["codebook_size"]), frame_rate=float(metadata["frame_rate"]),
            config_hash=metadata["config_hash"], codebook_fingerprint=metadata["codebook_fingerprint"],
        )
    except (KeyError, ValueError) as error:
        raise FileError(path, f"codes file metadata is incomplete ({error})") from None
    if result.codes.dim() != 2:
        raise FileError(path, f"codes must be [K, T], found shape {tuple(result.codes.shape)}")
    if (result.sample_rate < 1 or result.num_samples < 0 or result.codebook_size < 1
            or not (math.isfinite(result.frame_rate) and result.frame_rate > 0)):
        raise FileError(path, f"codes file metadata is out of range (sample_rate {result.sample_rate}, num_samples {result.num_samples}, "
                              f"codebook_size {result.codebook_size}, frame_rate {result.frame_rate})")
    if result.codes.numel() and not 0 <= int(result.codes.min()) <= int(result.codes.max()) < result.codebook_size:
        raise FileError(path, f"holds codes outside its codebook (0..{result.codebook_size - 1})")
    return result
