"""Pseudo-speakers for clips without speaker labels: cluster speaker embeddings, and measure how well that recovers
true speakers where they are known.

    labels = cluster_speakers(vectors, ClusterConfig())      # vectors: unit-norm [N, D] (audiolm.eval.speaker)
    purity(labels, truth), adjusted_rand_index(labels, truth)

Agglomerative clustering (scipy) on cosine distance, cut at a distance threshold, so the number of speakers is found,
not given; clusters smaller than `min_size` clips join the nearest larger one (a pseudo-speaker of two clips would be a
held-out split of nothing). `measure_clustering` scores the settings on a corpus whose speakers are known.

The defaults were chosen by measurement (benchmarks/bench_real_speech.py): on the Queen clips whose names mark the
protagonist's lines, average linkage at 0.25 keeps 86 % of them in one cluster, and 99 % of the marked lines in that
cluster are his; at 0.28 other voices start to merge in (86 %), at 0.2 he is split more (56 %). Ward linkage scores
best on balanced synthetic speakers, but its merge cost grows with cluster size: on the game speech it cuts the
protagonist into dozens of clusters.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

LINKAGES = ("average", "complete", "ward")


@dataclass(kw_only=True)
class ClusterConfig:
    threshold: float = 0.25  # cosine distance (for "ward": the Ward merge cost of unit vectors)
    linkage: str = "average"
    min_size: int = 10  # clips; smaller clusters join the nearest larger one

    def __post_init__(self) -> None:
        if self.linkage not in LINKAGES:
            raise ValueError(f"linkage must be one of {LINKAGES}, got {self.linkage!r}")
        if not self.threshold > 0:
            raise ValueError(f"threshold must be positive, got {self.threshold}")
        if self.min_size < 1:
            raise ValueError(f"min_size must be at least 1, got {self.min_size}")


def cluster_speakers(vectors: np.ndarray, config: ClusterConfig) -> np.ndarray:
    """Cluster ids `[N]` (0 = the largest cluster) of unit-norm speaker vectors `[N, D]`."""
    from scipy.cluster.hierarchy import fcluster, linkage

    n = len(vectors)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if n == 1:
        return np.zeros(1, dtype=np.int64)
    vectors = np.asarray(vectors, dtype=np.float64)
    vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    metric = "euclidean" if config.linkage == "ward" else "cosine"
    tree = linkage(vectors, method=config.linkage, metric=metric)
    labels = fcluster(tree, t=config.threshold, criterion="distance") - 1
    return _absorb_small(vectors, labels, config.min_size)


def _absorb_small(vectors: np.ndarray, labels: np.ndarray, min_size: int) -> np.ndarray:
    """Move the members of clusters under `min_size` to the nearest centroid of a cluster that has enough, then
    renumber by size. When no cluster is big enough, the clusters stay as they are."""
    ids, counts = np.unique(labels, return_counts=True)
    big = ids[counts >= min_size]
    if 0 < len(big) < len(ids):
        centroids = np.stack([vectors[labels == k].mean(axis=0) for k in big])
        centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
        small = ~np.isin(labels, big)
        labels = labels.copy()
        labels[small] = big[np.argmax(vectors[small] @ centroids.T, axis=1)]
    ids, counts = np.unique(labels, return_counts=True)
    order = ids[np.argsort(-counts, kind="stable")]
    rank = {int(k): r for r, k in enumerate(order)}
    return np.array([rank[int(k)] for k in labels], dtype=np.int64)


def _contingency(labels: Sequence, truth: Sequence) -> np.ndarray:
    _, cluster = np.unique(np.asarray(labels), return_inverse=True)
    _, true = np.unique(np.asarray(truth), return_inverse=True)
    table = np.zeros((cluster.max() + 1, true.max() + 1), dtype=np.int64)
    np.add.at(table, (cluster, true), 1)
    return table  # [clusters, true speakers]


def purity(labels: Sequence, truth: Sequence) -> float:
    """The fraction of clips whose cluster's majority speaker is their own (1 when no cluster mixes speakers)."""
    table = _contingency(labels, truth)
    return float(table.max(axis=1).sum() / table.sum())


def inverse_purity(labels: Sequence, truth: Sequence) -> float:
    """The fraction of clips in their speaker's majority cluster (1 when no speaker is split)."""
    table = _contingency(labels, truth)
    return float(table.max(axis=0).sum() / table.sum())


def adjusted_rand_index(labels: Sequence, truth: Sequence) -> float:
    """Hubert and Arabie's adjusted Rand index: 1 for identical partitions, about 0 for chance."""
    table = _contingency(labels, truth)
    pairs = lambda x: (x * (x - 1) // 2).sum()
    n = table.sum()
    index, rows, cols = pairs(table), pairs(table.sum(axis=1)), pairs(table.sum(axis=0))
    expected = rows * cols / (n * (n - 1) / 2) if n > 1 else 0.0
    best = (rows + cols) / 2
    return 1.0 if best == expected else float((index - expected) / (best - expected))


def embed_manifest_sample(manifest: str | Path, speakers: int = 40, clips: int = 10, seed: int = 0,
                          split: str | None = None) -> tuple[np.ndarray, list[str]]:
    """Speaker vectors `[speakers * clips, 256]` of `clips` random clips from each of `speakers` random speakers
    (those with enough clips) of a manifest, and their true speakers."""
    from audiolm.audio.io import load_audio
    from audiolm.data.manifest import read_manifest
    from audiolm.eval.speaker import SpeakerEncoder

    manifest = Path(manifest)
    by_speaker: dict[str, list] = {}
    for entry in read_manifest(manifest):
        if entry.speaker is not None and (split is None or entry.split == split):
            by_speaker.setdefault(entry.speaker, []).append(entry)
    rng = random.Random(seed)
    eligible = sorted(s for s, group in by_speaker.items() if len(group) >= clips)
    chosen = rng.sample(eligible, min(speakers, len(eligible)))
    encoder = SpeakerEncoder()
    vectors, truth = [], []
    for speaker in chosen:
        for entry in rng.sample(by_speaker[speaker], clips):
            wav = load_audio(entry.audio_path(manifest.parent), 16000)[0].numpy()
            vectors.append(encoder.embed(wav, 16000))
            truth.append(speaker)
    return np.stack(vectors), truth


def measure_clustering(vectors: np.ndarray, truth: Sequence[str], configs: Sequence[ClusterConfig]) -> list[dict]:
    """Purity, inverse purity, adjusted Rand index and cluster count of each setting against the true speakers."""
    rows = []
    for config in configs:
        labels = cluster_speakers(vectors, config)
        rows.append({"linkage": config.linkage, "threshold": config.threshold, "min_size": config.min_size,
                     "clusters": int(labels.max()) + 1, "speakers": len(set(truth)), "purity": purity(labels, truth),
                     "inverse_purity": inverse_purity(labels, truth), "ari": adjusted_rand_index(labels, truth)})
    return rows
