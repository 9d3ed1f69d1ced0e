"""ABX: batched DTW against a plain-Python reference, triplet constraints, and errors on features with known answers."""

from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from audiolm.data.manifest import Entry, read_manifest, write_manifest
from audiolm.eval.abx import (
    AbxItem,
    abx_errors,
    abx_triplets,
    dtw,
    dtw_distances,
    evaluate,
    evaluate_features,
    extract_features,
    item_frames,
    triphone_items,
)
from audiolm.semantic.encoder import MFCCEncoder

FRAME_RATE = 50.0
PHONES = ("a", "b", "c", "d")
PHONE_SECONDS = 0.1  # every phone 5 frames long, so that A, B and X have equal lengths


def _entries(num_speakers: int = 3, utterances: int = 4, phones_per_utterance: int = 24, seed: int = 0) -> list[Entry]:
    """Utterances of random phone strings over a 4-phone inventory, starting and ending with silence.

    No phone follows itself: DTW would otherwise rightly find "a a b" and "a b b" equal under labels alone.
    """
    rng = random.Random(seed)
    entries = []
    for s in range(num_speakers):
        for u in range(utterances):
            labels = ["sil"]
            for _ in range(phones_per_utterance):
                labels.append(rng.choice([p for p in PHONES if p != labels[-1]]))
            labels.append("sil")
            phones = [[label, round(i * PHONE_SECONDS, 6), round((i + 1) * PHONE_SECONDS, 6)] for i, label in enumerate(labels)]
            entries.append(Entry(id=f"spk{s}-{u}", path=f"spk{s}-{u}.wav", duration=len(labels) * PHONE_SECONDS, sample_rate=16000,
                                 speaker=f"spk{s}", phones=phones))
    return entries


def _phone_ids(entry: Entry) -> torch.Tensor:
    """The index of the phone under each frame, `[T]` (silence is index len(PHONES))."""
    T = math.ceil(entry.duration * FRAME_RATE - 1e-6)
    ids = torch.empty(T, dtype=torch.long)
    for label, start, end in entry.phones:
        ids[round(start * FRAME_RATE):round(end * FRAME_RATE)] = PHONES.index(label) if label in PHONES else len(PHONES)
    return ids


def _reference_dtw(cost: list[list[float]]) -> float:
    """Libri-light's DTW: cumulative cost, then the path's length found by walking back from the end."""
    N, M = len(cost), len(cost[0])
    total = [[math.inf] * M for _ in range(N)]
    for i in range(N):
        for j in range(M):
            best = 0.0 if i == j == 0 else min(total[i - 1][j - 1] if i and j else math.inf, total[i - 1][j] if i else math.inf,
                                                total[i][j - 1] if j else math.inf)
            total[i][j] = cost[i][j] + best
    i, j, length = N - 1, M - 1, 1
    while i > 0 and j > 0:
        diag, up, left = total[i - 1][j - 1], total[i - 1][j], total[i][j - 1]
        if diag <= up and diag <= left:
            i, j = i - 1, j - 1
        elif up <= left:
            i -= 1
        else:
            j -= 1
        length += 1
    return total[N - 1][M - 1] / (length + i + j)


def _angular(x: list[float], y: list[float]) -> float:
    cos = sum(a * b for a, b in zip(x, y)) / math.sqrt(sum(a * a for a in x) * sum(b * b for b in y))
    return math.acos(max(-1.0, min(1.0, cos))) / math.pi


def test_batched_dtw_matches_reference_on_padded_costs() -> None:
    g = torch.Generator().manual_seed(0)
    cost = torch.rand(64, 9, 12, generator=g, dtype=torch.float64)
    x_lengths = torch.randint(1, 10, (64,), generator=g)
    y_lengths = torch.randint(1, 13, (64,), generator=g)
    x_lengths[:3], y_lengths[:3] = torch.tensor([1, 1, 9]), torch.tensor([1, 12, 1])  # single-frame items included
    expected = [_reference_dtw(cost[p, :n, :m].tolist()) for p, (n, m) in enumerate(zip(x_lengths.tolist(), y_lengths.tolist()))]
    torch.testing.assert_close(dtw(cost, x_lengths, y_lengths), torch.tensor(expected, dtype=torch.float64), rtol=0, atol=1e-12)

    binary = torch.randint(0, 2, (64, 9, 12), generator=g).double()  # many equal-cost paths: tie-breaking must agree too
    expected = [_reference_dtw(binary[p, :n, :m].tolist()) for p, (n, m) in enumerate(zip(x_lengths.tolist(), y_lengths.tolist()))]
    torch.testing.assert_close(dtw(binary, x_lengths, y_lengths), torch.tensor(expected, dtype=torch.float64), rtol=0, atol=1e-12)


def test_dtw_distances_match_reference_for_every_kind_of_feature() -> None:
    g = torch.Generator().manual_seed(1)
    lengths = torch.randint(1, 15, (40, 2), generator=g).tolist()
    continuous = [(torch.randn(n, 6, generator=g), torch.randn(m, 6, generator=g)) for n, m in lengths]
    codes = [(torch.randint(0, 3, (n, 4), generator=g), torch.randint(0, 3, (m, 4), generator=g)) for n, m in lengths]
    for pairs, frame_distance in [
        (continuous, _angular),
        (codes, lambda x, y: sum(a != b for a, b in zip(x, y)) / len(x)),
    ]:
        xs, ys = zip(*pairs)
        expected = [_reference_dtw([[frame_distance(a, b) for b in y.tolist()] for a in x.tolist()]) for x, y in pairs]
        got = dtw_distances(xs, ys, batch_size=7)  # several batches of different padded sizes
        torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64), rtol=0, atol=1e-6)


def test_triphone_items_skip_silence_and_span_three_phones() -> None:
    entry = Entry(id="u", path="u.wav", duration=0.6, sample_rate=16000, speaker="s",
                  phones=[["sil", 0.0, 0.1], ["a", 0.1, 0.2], ["b", 0.2, 0.3], ["c", 0.3, 0.4], ["pau", 0.4, 0.5], ["d", 0.5, 0.6]])
    assert triphone_items([entry]) == [AbxItem(utterance="u", speaker="s", context=("a", "c"), phone="b", start=0.1, end=0.4)]


def test_item_frames_are_those_starting_inside_the_item() -> None:
    features = {"u": torch.arange(30, dtype=torch.float32)[:, None].repeat(1, 2)}  # [T=30, D=2], frame t holds t
    item = AbxItem(utterance="u", speaker="s", context=("a", "c"), phone="b", start=0.1, end=0.39)
    assert item_frames(features, FRAME_RATE, [item])[0][:, 0].tolist() == list(range(5, 20))  # t / 50 in [0.1, 0.39)
    short = AbxItem(utterance="u", speaker="s", context=("a", "c"), phone="b", start=0.101, end=0.102)
    assert len(item_frames(features, FRAME_RATE, [short])[0]) == 1
    with pytest.raises(ValueError, match="frame_rate"):
        item_frames(features, 10 * FRAME_RATE, [item])


@pytest.mark.parametrize("mode", ["within", "across"])
def test_triplets_respect_phone_context_and_speaker_constraints(mode: str) -> None:
    items = triphone_items(_entries())
    triplets = abx_triplets(items, mode, seed=0, max_per_cell=5)
    assert len(triplets) > 100
    assert torch.bincount(triplets.cell).max() <= 5
    for (a, b, x), cell in zip(triplets.indices.tolist(), triplets.cell.tolist()):
        A, B, X = items[a], items[b], items[x]
        context, phone_a, phone_b, speakers = triplets.cells[cell]
        assert a != x and A.context == B.context == X.context == context
        assert A.phone == X.phone == phone_a and B.phone == phone_b != phone_a
        assert A.speaker == B.speaker == speakers[0]
        if mode == "within":
            assert speakers == (X.speaker,) == (A.speaker,)
        else:
            assert speakers == (A.speaker, X.speaker) and X.speaker != A.speaker


def test_triplets_are_capped_and_deterministic_for_a_seed() -> None:
    items = triphone_items(_entries())
    first, again = abx_triplets(items, "across", seed=3, max_triplets=200), abx_triplets(items, "across", seed=3, max_triplets=200)
    assert 190 <= len(first) <= 200
    assert torch.equal(first.indices, again.indices) and first.cells == again.cells
    assert not torch.equal(abx_triplets(items, "across", seed=4, max_triplets=200).indices, first.indices)
    with pytest.raises(ValueError, match="mode"):
        abx_triplets(items, "between")


def test_features_that_name_the_phone_score_zero_and_random_ones_half() -> None:
    entries = _entries(num_speakers=4, utterances=6)
    items = triphone_items(entries)
    ids = {e.id: _phone_ids(e) for e in entries}  # [T]
    one_hot = {k: torch.nn.functional.one_hot(v, len(PHONES) + 1).float() for k, v in ids.items()}  # [T, D]
    codes = {k: torch.stack([v, (3 * v + 1) % 7], dim=1) for k, v in ids.items()}  # [T, K=2]
    g = torch.Generator().manual_seed(0)
    noise = {k: torch.randn(len(v), 8, generator=g) for k, v in ids.items()}
    noise_codes = {k: torch.randint(0, 4, (len(v), 3), generator=g) for k, v in ids.items()}
    for mode in ("within", "across"):
        for features in (ids, one_hot, codes):
            assert abx_errors(features, FRAME_RATE, items, mode) == 0.0
        for features in (noise, noise_codes):
            assert abx_errors(features, FRAME_RATE, items, mode) == pytest.approx(0.5, abs=0.08)


def test_partly_informative_codes_score_between_zero_and_half() -> None:
    entries = _entries(num_speakers=4, utterances=6)
    items = triphone_items(entries)
    g = torch.Generator().manual_seed(0)
    ids = {e.id: _phone_ids(e) for e in entries}
    mixed = {k: torch.stack([v, torch.randint(0, 5, v.shape, generator=g)], dim=1) for k, v in ids.items()}  # level 0 exact, 1 noise
    flipped = {k: torch.where(torch.rand(v.shape, generator=g) < 0.3, torch.randint(0, 5, v.shape, generator=g), v) for k, v in ids.items()}
    for features in (mixed, flipped):
        error = abx_errors(features, FRAME_RATE, items, "within")
        assert 0.0 < error < 0.35


def test_errors_are_deterministic_for_a_seed() -> None:
    entries = _entries()
    items = triphone_items(entries)
    g = torch.Generator().manual_seed(0)
    noise = {e.id: torch.randn(len(_phone_ids(e)), 4, generator=g) for e in entries}
    runs = [abx_errors(noise, FRAME_RATE, items, "across", seed=seed, max_triplets=300) for seed in (7, 7, 8)]
    assert runs[0] == runs[1] != runs[2]


def test_evaluate_features_reports_percent_and_counts() -> None:
    entries = _entries(num_speakers=2, utterances=3)
    result = evaluate_features({e.id: _phone_ids(e) for e in entries}, FRAME_RATE, entries)
    assert set(result) == {"within", "across", "within_triplets", "across_triplets"}
    assert result["within"] == result["across"] == 0.0 and result["within_triplets"] > 0 and result["across_triplets"] > 0
    single = [e for e in entries if e.speaker == "spk0"]
    assert math.isnan(evaluate_features({e.id: _phone_ids(e) for e in single}, FRAME_RATE, single)["across"])


def test_evaluate_reads_audio_of_a_manifest_and_tells_tones_apart(tmp_path: Path) -> None:
    """Each phone is a tone of its own pitch, each speaker a loudness: MFCCs tell the phones apart."""
    frequencies = {"a": 300.0, "b": 700.0, "c": 1300.0, "d": 2500.0}
    entries = _entries(num_speakers=2, utterances=2, phones_per_utterance=16)
    for s, entry in enumerate(entries):
        t = np.arange(round(entry.duration * 16000)) / 16000
        wav = np.zeros_like(t)
        for label, start, end in entry.phones:
            inside = (t >= start) & (t < end)
            wav[inside] = (0.3 + 0.3 * (s % 2)) * np.sin(2 * np.pi * frequencies.get(label, 0.0) * t[inside])
        sf.write(str(tmp_path / entry.path), wav.astype(np.float32), 16000)
    write_manifest(tmp_path / "manifest.jsonl", entries)
    entries = read_manifest(tmp_path / "manifest.jsonl")

    encoder = MFCCEncoder()
    features = extract_features(encoder.layer_features, entries, tmp_path, progress=False)
    assert set(features) == {e.id for e in entries}
    assert all(f.shape == (math.ceil(e.duration * 50), 39) for e, f in zip(entries, features.values()))
    result = evaluate(encoder.layer_features, encoder.frame_rate, entries, tmp_path, progress=False)
    assert result["within"] < 5.0 and result["across"] < 10.0
    assert result["within_triplets"] > 0 and result["across_triplets"] > 0
