"""ABX phone discriminability of a frame-level representation, within and across speakers.

The protocol is that of ZeroSpeech 2017 / Libri-light's ABX, on triphones cut from phone alignments:

- Items: every three consecutive phones (prev, centre, next) of an utterance, none of them silence,
  spanning [prev.start, next.end]. An item is described by its centre `phone` and its `context` (prev, next).
- Triplets (A, B, X): A and X are two different items of one triphone, B has the same context but another
  centre phone. "within": A, B and X come from one speaker; "across": A and B from one speaker, X from another.
  The triplet is an error when d(A, X) > d(B, X), half an error on a tie.
- Distance between two items: dynamic time warping over their frames (steps (1, 0), (0, 1), (1, 1)), the
  cheapest path's cost averaged along that path. Frame distance: the angular distance arccos(cos) / pi of
  continuous features (0..1; a zero vector is 0.5 from everything), and for discrete ids the fraction of the K
  levels whose ids differ (0 or 1 for one level).
- Aggregation, as Libri-light: the error is averaged over the triplets of each cell (context, phone_A,
  phone_B, speakers), where speakers is (s,) within and (s_AB, s_X) across; then over contexts, giving one
  score per (phone_A, phone_B, speakers); then over speakers, giving one per ordered phone pair; the result is
  the mean over phone pairs.
- Sampling: at most `max_per_cell` triplets per cell (drawn without replacement) and `max_triplets` in all
  (whole cells drawn at random until the budget is spent), so an evaluation takes seconds. A seed fixes both.

Chance is not exactly 50% on real alignments: with random features the path-averaged DTW cost depends on
how the two items' lengths differ (A and X, one triphone, have closer lengths than B and X), which gives
random features 50-59% on our test set. On a CPU shared with other jobs, run with OMP_NUM_THREADS=1: the
DTW is many small torch ops, which spin-wait for busy cores otherwise.

Features are given per utterance: `[T, D]` float (continuous), `[T]` int (token ids) or `[T, K]` int (K levels
of codes), frame t taken at t / frame_rate seconds. An item's frames are those with t / frame_rate in
[start, end), at least one. Phones must be labelled alike across speakers for "across" to find triplets
(the espeak IPA and the ARPAbet voices of our corpora only meet their own kind).

Shapes: P pairs of items, N and M frames of the two items of a pair, D feature dim, K code levels.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from audiolm.audio.io import load_audio
from audiolm.data.manifest import Entry

SILENCE = frozenset({"sil", "pau", "h#", "sp", ""})
MODES = ("within", "across")
SAMPLE_RATE = 16000
MAX_PER_CELL = 5
MAX_TRIPLETS = 50_000
TIE_TOLERANCE = 1e-9  # distances this close count as a tie
DTW_BATCH = 2048  # pairs of items per batched DTW


@dataclass(frozen=True)
class AbxItem:
    utterance: str
    speaker: str
    context: tuple[str, str]  # (previous phone, next phone)
    phone: str  # the centre phone
    start: float  # seconds: the previous phone's start
    end: float  # seconds: the next phone's end


@dataclass
class AbxTriplets:
    """Sampled triplets of items and the cells they belong to."""

    mode: str
    indices: torch.Tensor  # [N, 3] int64: item indices of (A, B, X)
    cell: torch.Tensor  # [N] int64: index into `cells`
    cells: list[tuple[tuple[str, str], str, str, tuple[str, ...]]]  # (context, phone_A, phone_B, speakers)

    def __len__(self) -> int:
        return len(self.indices)


def triphone_items(entries: Iterable[Entry]) -> list[AbxItem]:
    """Every non-silent phone triplet of every entry with phones (an entry without a speaker is its own speaker)."""
    items = []
    for entry in entries:
        phones = entry.phones or []
        for prev, centre, nxt in zip(phones, phones[1:], phones[2:]):
            if {prev[0], centre[0], nxt[0]} & SILENCE:
                continue
            items.append(AbxItem(utterance=entry.id, speaker=entry.speaker or entry.id, context=(prev[0], nxt[0]),
                                 phone=centre[0], start=float(prev[1]), end=float(nxt[2])))
    return items


def abx_triplets(items: Sequence[AbxItem], mode: str, seed: int = 0, max_per_cell: int = MAX_PER_CELL,
                 max_triplets: int = MAX_TRIPLETS) -> AbxTriplets:
    """Sample (A, B, X) triplets of `items` for `mode` ("within" or "across"); deterministic for a seed."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    groups: dict[tuple[str, str], dict[str, dict[str, list[int]]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for index, item in enumerate(items):
        groups[item.context][item.speaker][item.phone].append(index)  # context -> speaker -> phone -> items

    # a cell: (key, A items, B items, X items); within, X is drawn from the A items (never A itself)
    cells: list[tuple[tuple, list[int], list[int], list[int] | None]] = []
    for context in sorted(groups):
        by_speaker = groups[context]
        for speaker in sorted(by_speaker):
            phones = by_speaker[speaker]
            for phone_a in sorted(phones):
                for phone_b in sorted(phones):
                    if phone_b == phone_a:
                        continue
                    if mode == "within":
                        if len(phones[phone_a]) >= 2:
                            cells.append(((context, phone_a, phone_b, (speaker,)), phones[phone_a], phones[phone_b], None))
                        continue
                    for other in sorted(by_speaker):
                        if other != speaker and phone_a in by_speaker[other]:
                            cells.append(((context, phone_a, phone_b, (speaker, other)), phones[phone_a], phones[phone_b],
                                          by_speaker[other][phone_a]))

    rng = random.Random(seed)
    sizes = [len(a) * len(b) * (len(x) if x is not None else len(a) - 1) for _, a, b, x in cells]
    order = list(range(len(cells)))
    if sum(min(n, max_per_cell) for n in sizes) > max_triplets:
        rng.shuffle(order)
        kept, budget = [], max_triplets
        for c in order:
            if min(sizes[c], max_per_cell) <= budget:
                kept.append(c)
                budget -= min(sizes[c], max_per_cell)
        order = sorted(kept)

    indices, cell_ids, keys = [], [], []
    for c in order:
        key, group_a, group_b, group_x = cells[c]
        for flat in rng.sample(range(sizes[c]), min(sizes[c], max_per_cell)):
            flat, b = divmod(flat, len(group_b))
            if group_x is None:  # within: A and X are two different items of group_a
                a, x = divmod(flat, len(group_a) - 1)
                indices.append((group_a[a], group_b[b], group_a[x + (x >= a)]))
            else:
                a, x = divmod(flat, len(group_x))
                indices.append((group_a[a], group_b[b], group_x[x]))
            cell_ids.append(len(keys))
        keys.append(key)
    return AbxTriplets(mode=mode, indices=torch.tensor(indices, dtype=torch.long).reshape(-1, 3),
                       cell=torch.tensor(cell_ids, dtype=torch.long), cells=keys)


def frame_distances(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Distances between every frame of `x` and of `y`: `[P, N, D]`, `[P, M, D]` -> `[P, N, M]` float64.

    Float features: angular distance arccos(cosine) / pi. Integer features `[P, N, K]`: the fraction of
    the K levels that differ.
    """
    if torch.is_floating_point(x):
        x = torch.nn.functional.normalize(x.double(), dim=-1)
        y = torch.nn.functional.normalize(y.double(), dim=-1)
        return torch.arccos(torch.bmm(x, y.transpose(1, 2)).clamp(-1.0, 1.0)) / math.pi
    return (x[:, :, None, :] != y[:, None, :, :]).double().mean(dim=-1)  # [P, N, M, K] -> [P, N, M]


def dtw(cost: torch.Tensor, x_lengths: torch.Tensor, y_lengths: torch.Tensor) -> torch.Tensor:
    """Batched DTW: `cost [P, N, M]` of frame pairs, true lengths `[P]` -> the cheapest path's mean cost `[P]`.

    Steps (1, 0), (0, 1), (1, 1). On equal costs the diagonal step is preferred, then (1, 0), as Libri-light.
    Padding beyond a pair's lengths never reaches its result: cell (i, j) depends on cells (<= i, <= j) only.
    The table is filled one anti-diagonal i + j = k at a time, each held as a vector over i, so that cell
    (i, j)'s predecessors (i - 1, j - 1), (i - 1, j) and (i, j - 1) are shifted slices of diagonals k - 2 and k - 1.
    """
    P, N, M = cost.shape
    K = N + M + 1  # anti-diagonals of the 1-based table, whose row and column 0 are the start and +inf
    padded = torch.nn.functional.pad(cost, (1, 0, 1, 0), value=math.inf)  # [P, N + 1, M + 1]
    i = torch.arange(N + 1)[None, :]  # [1, N + 1]
    j = torch.arange(K)[:, None] - i  # [K, N + 1]: column of cell i on anti-diagonal k
    skewed = padded[:, i.expand(K, -1), j.clamp(0, M)].masked_fill((j < 0) | (j > M), math.inf)  # [P, K, N + 1]
    skewed = skewed.permute(1, 0, 2).contiguous()  # [K, P, N + 1]

    total = torch.full_like(skewed, math.inf)  # total[k, :, i]: cheapest path from (1, 1) to (i, k - i)
    steps = torch.zeros_like(skewed)  # frame pairs on that path
    total[0, :, 0] = 0.0
    for k in range(2, K):
        diag, up, left = total[k - 2, :, :-1], total[k - 1, :, :-1], total[k - 1, :, 1:]  # [P, N] each
        take_diag = (diag <= up) & (diag <= left)
        take_up = ~take_diag & (up <= left)
        total[k, :, 1:] = skewed[k, :, 1:] + torch.where(take_diag, diag, torch.where(take_up, up, left))
        steps[k, :, 1:] = 1 + torch.where(take_diag, steps[k - 2, :, :-1], torch.where(take_up, steps[k - 1, :, :-1], steps[k - 1, :, 1:]))
    rows = torch.arange(P)
    return total[x_lengths + y_lengths, rows, x_lengths] / steps[x_lengths + y_lengths, rows, x_lengths]


def dtw_distances(xs: Sequence[torch.Tensor], ys: Sequence[torch.Tensor], batch_size: int = DTW_BATCH) -> torch.Tensor:
    """DTW distance of each pair (`xs[p] [N_p, D]`, `ys[p] [M_p, D]`) -> `[P]` float64, in batches of similar lengths."""
    assert len(xs) == len(ys), "xs and ys must pair up"
    x_lengths = torch.tensor([len(x) for x in xs], dtype=torch.long)
    y_lengths = torch.tensor([len(y) for y in ys], dtype=torch.long)
    order = torch.argsort(torch.maximum(x_lengths, y_lengths) * 1000 + torch.minimum(x_lengths, y_lengths)).tolist()
    out = torch.empty(len(xs), dtype=torch.float64)
    for start in range(0, len(order), batch_size):
        batch = order[start:start + batch_size]
        x = torch.nn.utils.rnn.pad_sequence([xs[p] for p in batch], batch_first=True)  # [P, N, D]
        y = torch.nn.utils.rnn.pad_sequence([ys[p] for p in batch], batch_first=True)  # [P, M, D]
        out[batch] = dtw(frame_distances(x, y), x_lengths[batch], y_lengths[batch])
    return out


def item_frames(features: dict[str, torch.Tensor], frame_rate: float, items: Sequence[AbxItem]) -> list[torch.Tensor]:
    """Each item's frames: `[n, D]` float, or `[n, K]` int64 (ids `[T]` become K = 1)."""
    frames = []
    for item in items:
        if item.utterance not in features:
            raise ValueError(f"no features for utterance {item.utterance!r}")
        x = features[item.utterance]
        if not (x.dim() == 2 or (x.dim() == 1 and not torch.is_floating_point(x))):
            raise ValueError(f"features of {item.utterance!r} must be [T, D] float, [T] or [T, K] int; got {tuple(x.shape)} {x.dtype}")
        T = x.shape[0]
        if T == 0 or item.start * frame_rate > T:
            raise ValueError(f"item {item.start:.3f}-{item.end:.3f} s of {item.utterance!r} lies past its {T} frames at "
                             f"{frame_rate:g} Hz: wrong frame_rate?")
        start = min(math.ceil(item.start * frame_rate - 1e-6), T - 1)  # first t with t / frame_rate >= start
        stop = min(max(math.ceil(item.end * frame_rate - 1e-6), start + 1), T)
        x = x[start:stop]
        frames.append(x.float() if torch.is_floating_point(x) else x.long().reshape(len(x), -1))
    if len({torch.is_floating_point(x) for x in frames}) > 1:
        raise ValueError("features mix float and integer tensors")
    return frames


def triplet_error(features: dict[str, torch.Tensor], frame_rate: float, items: Sequence[AbxItem], triplets: AbxTriplets,
                  batch_size: int = DTW_BATCH) -> float:
    """The aggregated ABX error (a fraction in [0, 1]) of `triplets` on `features`; NaN when there are none."""
    if len(triplets) == 0:
        return math.nan
    frames = item_frames(features, frame_rate, items)
    a, b, x = triplets.indices.unbind(dim=1)
    pairs, inverse = torch.unique(torch.cat([torch.stack([a, x], 1), torch.stack([b, x], 1)]), dim=0, return_inverse=True)
    distances = dtw_distances([frames[i] for i in pairs[:, 0].tolist()], [frames[j] for j in pairs[:, 1].tolist()], batch_size)
    d_ax, d_bx = distances[inverse].chunk(2)  # [N] each
    tie = (d_ax - d_bx).abs() <= TIE_TOLERANCE
    errors = torch.where(tie, 0.5, (d_ax > d_bx).double())  # [N]

    cell_error = torch.zeros(len(triplets.cells), dtype=torch.float64).index_add_(0, triplets.cell, errors)
    cell_error /= torch.bincount(triplets.cell, minlength=len(triplets.cells))
    by_speakers: dict[tuple, list[float]] = defaultdict(list)  # (phone_A, phone_B, speakers) -> per-context errors
    for (_, phone_a, phone_b, speakers), error in zip(triplets.cells, cell_error.tolist()):
        by_speakers[(phone_a, phone_b, speakers)].append(error)
    by_pair: dict[tuple, list[float]] = defaultdict(list)  # (phone_A, phone_B) -> per-speaker(s) errors
    for (phone_a, phone_b, _), errors_ in by_speakers.items():
        by_pair[(phone_a, phone_b)].append(sum(errors_) / len(errors_))
    return sum(sum(v) / len(v) for v in by_pair.values()) / len(by_pair)


def abx_errors(features: dict[str, torch.Tensor], frame_rate: float, items: Sequence[AbxItem], mode: str, seed: int = 0,
               max_per_cell: int = MAX_PER_CELL, max_triplets: int = MAX_TRIPLETS) -> float:
    """ABX error (a fraction in [0, 1]) of `features` (utterance id -> `[T, D]` float, `[T]` or `[T, K]` int)."""
    triplets = abx_triplets(items, mode, seed, max_per_cell, max_triplets)
    return triplet_error(features, frame_rate, items, triplets)


def extract_features(extract: Callable[[torch.Tensor], torch.Tensor], entries: Sequence[Entry], root: str | Path,
                     sample_rate: int = SAMPLE_RATE, progress: bool = True) -> dict[str, torch.Tensor]:
    """Run `extract` once per entry's audio (`wav [1, 1, L]` at `sample_rate` -> `[1, T, D]`, `[1, T]` or `[1, T, K]`).

    Returns utterance id -> features without the batch dim, on the CPU, ready for `abx_errors` or `evaluate_features`.
    """
    features = {}
    with torch.inference_mode():
        for entry in tqdm(entries, desc="abx features", unit="utt", disable=not progress):
            wav = load_audio(entry.audio_path(root), sample_rate)[None]  # [1, 1, L]
            out = extract(wav)
            assert out.shape[0] == 1, f"extract must return a batch of one, got {tuple(out.shape)}"
            features[entry.id] = out[0].detach().cpu()
    return features


def evaluate_features(features: dict[str, torch.Tensor], frame_rate: float, entries: Sequence[Entry], seed: int = 0,
                      max_per_cell: int = MAX_PER_CELL, max_triplets: int = MAX_TRIPLETS) -> dict:
    """ABX within and across speakers, in percent, with the number of triplets of each."""
    items = triphone_items(entries)
    result = {}
    for mode in MODES:
        triplets = abx_triplets(items, mode, seed, max_per_cell, max_triplets)
        result[mode] = 100 * triplet_error(features, frame_rate, items, triplets)
        result[f"{mode}_triplets"] = len(triplets)
    return result


def evaluate(extract: Callable[[torch.Tensor], torch.Tensor], frame_rate: float, entries: Sequence[Entry], root: str | Path,
             seed: int = 0, max_per_cell: int = MAX_PER_CELL, max_triplets: int = MAX_TRIPLETS, progress: bool = True) -> dict:
    """Extract features of every entry (audio at 16 kHz) and score them: {"within": %, "across": %, "*_triplets": n}."""
    features = extract_features(extract, entries, root, progress=progress)
    return evaluate_features(features, frame_rate, entries, seed, max_per_cell, max_triplets)
