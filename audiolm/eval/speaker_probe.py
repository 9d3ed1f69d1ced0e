"""How much speaker identity a representation carries: a linear probe on one vector per utterance.

`utterance_vector` pools frame features over time: continuous `[T, D]` -> concat(mean, std) `[2D]`; token ids
`[T]` -> their normalised histogram `[V]`; codes `[T, K]` -> the K per-level histograms concatenated `[K * V]`.
`speaker_probe` splits each speaker's utterances into train and test (seeded), standardises with the train
statistics, fits a multinomial logistic regression and reports the test accuracy beside chance (the share of
the most frequent speaker among the test utterances).
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler


def utterance_vector(x: torch.Tensor, codebook_size: int | None = None) -> torch.Tensor:
    """`[T, D]` float -> `[2D]`; `[T]` ids -> `[V]`; `[T, K]` ids -> `[K * V]` (V = `codebook_size`, needed for ids)."""
    if torch.is_floating_point(x):
        assert x.dim() == 2, f"expected continuous features [T, D], got {tuple(x.shape)}"
        return torch.cat([x.mean(dim=0), x.std(dim=0, correction=0)])
    if codebook_size is None:
        raise ValueError("codebook_size is needed to pool token ids")
    ids = x.long().reshape(len(x), -1)  # [T, K]
    assert ids.numel() == 0 or (0 <= ids.min() and ids.max() < codebook_size), f"ids must lie in [0, {codebook_size})"
    offsets = torch.arange(ids.shape[1]) * codebook_size  # level k counts in bins [k V, (k + 1) V)
    counts = torch.bincount((ids + offsets).flatten(), minlength=ids.shape[1] * codebook_size)
    return counts.float() / max(len(ids), 1)


def speaker_probe(vectors: torch.Tensor | np.ndarray, speakers: list[str], seed: int = 0, test_fraction: float = 0.5) -> dict:
    """Test accuracy of a logistic-regression speaker classifier on `vectors [N, D]` labelled by `speakers`.

    Each speaker's utterances are shuffled and `test_fraction` of them (at least one, and at least one left
    for training) held out; a speaker with a single utterance only trains.
    """
    X = vectors.detach().cpu().double().numpy() if isinstance(vectors, torch.Tensor) else np.asarray(vectors, dtype=np.float64)
    assert X.ndim == 2 and len(X) == len(speakers), f"expected vectors [N, D] for {len(speakers)} speakers, got {X.shape}"
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    rng = random.Random(seed)
    by_speaker: dict[str, list[int]] = defaultdict(list)
    for index, speaker in enumerate(speakers):
        by_speaker[speaker].append(index)
    train, test = [], []
    for speaker in sorted(by_speaker):
        indices = by_speaker[speaker]
        rng.shuffle(indices)
        n_test = min(max(round(test_fraction * len(indices)), 1), len(indices) - 1)
        test += indices[:n_test]
        train += indices[n_test:]
    if len(by_speaker) < 2 or not test:
        raise ValueError("the speaker probe needs two or more speakers, one with two or more utterances")

    labels = np.array(speakers)
    scaler = StandardScaler().fit(X[train])
    classifier = LogisticRegression(max_iter=2000).fit(scaler.transform(X[train]), labels[train])
    accuracy = float((classifier.predict(scaler.transform(X[test])) == labels[test]).mean())
    chance = Counter(labels[test].tolist()).most_common(1)[0][1] / len(test)
    return {"accuracy": accuracy, "chance": chance, "num_speakers": len(by_speaker), "train": len(train), "test": len(test)}
