"""Scoring token streams as the paper does for semantic tokens: ABX within / across speakers (lower: more
phonetic) and a speaker-ID probe (lower: less speaker identity), on held-out speakers.

    rows = evaluate_representations(representations(tokenizers, codec), entries, root)
    print(format_table(rows))

A representation is a name, a frame rate, and a function `wav [1, 1, L] -> [1, T, D] float | [1, T] ids |
[1, T, K] codes`; `codebook_size` tells the probe how to pool ids.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from audiolm.data.manifest import Entry, read_manifest
from audiolm.errors import AudiolmError
from audiolm.eval.abx import evaluate_features, extract_features
from audiolm.eval.speaker_probe import speaker_probe, utterance_vector


@dataclass
class Representation:
    name: str
    frame_rate: float
    extract: Callable[[torch.Tensor], torch.Tensor]
    codebook_size: int | None = None  # ids and codes: their cardinality; None: continuous


def held_out(manifest: str | Path, splits: Sequence[str] = ("test", "valid")) -> list[Entry]:
    """The entries of `splits` that carry phone alignments (ABX needs them) and a speaker."""
    entries = [e for e in read_manifest(manifest) if e.split in splits and e.phones and e.speaker]
    if not entries:
        raise AudiolmError(f"{manifest}: no entries with phone alignments and speakers in splits {', '.join(splits)}")
    return entries


def score(name: str, features: dict[str, torch.Tensor], frame_rate: float, entries: Sequence[Entry], codebook_size: int | None = None,
          seed: int = 0) -> dict:
    """ABX (percent) within and across speakers and speaker-probe accuracy for one representation's features."""
    abx = evaluate_features(features, frame_rate, entries, seed=seed)
    vectors = torch.stack([utterance_vector(features[e.id], codebook_size) for e in entries])
    probe = speaker_probe(vectors, [e.speaker for e in entries], seed=seed)
    return {"name": name, "frame_rate": frame_rate, "abx_within": abx["within"], "abx_across": abx["across"],
            "triplets_within": abx["within_triplets"], "triplets_across": abx["across_triplets"],
            "speaker_probe": probe["accuracy"], "probe_chance": probe["chance"], "speakers": probe["num_speakers"]}


def evaluate_representations(representations: Sequence[Representation], entries: Sequence[Entry], root: str | Path, seed: int = 0,
                             progress: bool = True) -> list[dict]:
    rows = []
    for rep in representations:
        features = extract_features(rep.extract, entries, root, progress=progress)
        rows.append(score(rep.name, features, rep.frame_rate, entries, rep.codebook_size, seed))
    return rows


def tokenizer_representations(name: str, tokenizer, continuous: bool = True) -> list[Representation]:
    """A semantic tokenizer's ids and, optionally, its layer's standardised continuous features."""
    reps = [Representation(f"{name} (K={tokenizer.codebook_size})", tokenizer.frame_rate, tokenizer, tokenizer.codebook_size)]
    if continuous:
        reps.insert(0, Representation(f"{name} (continuous)", tokenizer.frame_rate, tokenizer.features))
    return reps


def codec_representations(codec, levels: Sequence[int] = (1, 0)) -> list[Representation]:
    """The codec's codes as `[1, T, K]` for each number of levels in `levels` (0: all)."""
    reps = []
    for n in levels:
        n = n or codec.num_codebooks
        extract = (lambda wav, n=n: codec.encode(wav, n).transpose(1, 2))  # [1, K, T] -> [1, T, K]
        reps.append(Representation(f"codec tokens ({n} level{'s' if n > 1 else ''})", codec.frame_rate, extract, codec.cardinality))
    return reps


def format_table(rows: Sequence[dict]) -> str:
    def pct(x: float) -> str:
        return "n/a" if math.isnan(x) else f"{x:.1f}"

    lines = ["| representation | rate (Hz) | ABX within (%) | ABX across (%) | speaker probe (acc.) |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['name']} | {r['frame_rate']:g} | {pct(r['abx_within'])} | {pct(r['abx_across'])} | "
                     f"{r['speaker_probe']:.2f} (chance {r['probe_chance']:.2f}) |")
    return "\n".join(lines)
