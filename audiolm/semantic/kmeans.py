"""Mini-batch k-means in torch (Sculley, 2010) with k-means++ seeding: the quantizer of semantic tokens.

    centroids = fit_kmeans(x [N, D], k)     # [K, D]
    ids = assign(x [..., D], centroids)     # [...] int64, nearest centroid (squared Euclidean)
"""

from __future__ import annotations

import math

import torch
from tqdm import tqdm


def assign(x: torch.Tensor, centroids: torch.Tensor, chunk: int = 65536) -> torch.Tensor:
    """Index of the nearest centroid for each vector of `x [..., D]` -> `[...]` int64."""
    flat = x.reshape(-1, x.shape[-1]).to(centroids.dtype)
    norms = (centroids * centroids).sum(dim=1)  # [K]
    ids = torch.empty(flat.shape[0], dtype=torch.long, device=x.device)
    for start in range(0, flat.shape[0], chunk):
        part = flat[start:start + chunk]
        ids[start:start + chunk] = (norms - 2 * part @ centroids.T).argmin(dim=1)  # ||x||^2 is the same for every centroid
    return ids.reshape(x.shape[:-1])


def inertia(x: torch.Tensor, centroids: torch.Tensor) -> float:
    """Mean squared distance of `x [N, D]` to its nearest centroid."""
    return float(((x - centroids[assign(x, centroids)]) ** 2).sum(dim=1).mean())


def kmeans_plus_plus(x: torch.Tensor, k: int, generator: torch.Generator, trials: int | None = None) -> torch.Tensor:
    """Greedy k-means++ seeding (as scikit-learn): each new centroid is the best of `trials` candidates
    (default 2 + log k) drawn with probability proportional to their squared distance to the nearest
    centroid so far. `x [N, D]` -> `[k, D]`."""
    n = x.shape[0]
    trials = trials or 2 + int(math.log(k))
    chosen = [int(torch.randint(n, (1,), generator=generator))]
    nearest = ((x - x[chosen[0]]) ** 2).sum(dim=1)  # [N]
    for _ in range(1, k):
        candidates = torch.multinomial(nearest.clamp_min(0) + 1e-12, trials, replacement=True, generator=generator)
        distances = torch.minimum(nearest, torch.cdist(x[candidates], x).pow(2))  # [trials, N]
        best = int(distances.sum(dim=1).argmin())
        chosen.append(int(candidates[best]))
        nearest = distances[best]
    return x[chosen].clone()


def fit_kmeans(x: torch.Tensor, k: int, iterations: int = 100, batch_size: int = 10_000, seed: int = 0,
               init_size: int | None = None, progress: bool = False) -> torch.Tensor:
    """Mini-batch k-means of `x [N, D]` into `k` centroids `[k, D]` (float32).

    Seeds with k-means++ on a random subset of `init_size` vectors (default 20 k, at most N), then each
    iteration moves every centroid towards the mean of the batch vectors assigned to it with a step of
    (its batch count / its running count). A centroid that wins nothing for a whole pass restarts on a
    random batch vector. Deterministic for a seed."""
    if x.dim() != 2:
        raise ValueError(f"expected vectors [N, D], got {tuple(x.shape)}")
    if x.shape[0] < k:
        raise ValueError(f"k-means needs at least k = {k} vectors, got {x.shape[0]}")
    x = x.float()
    generator = torch.Generator().manual_seed(seed)
    n = x.shape[0]
    init_size = min(n, init_size or max(20 * k, 10_000))
    subset = x[torch.randperm(n, generator=generator)[:init_size]]
    centroids = kmeans_plus_plus(subset, k, generator)
    counts = torch.zeros(k)
    batch_size = min(batch_size, n)
    for _ in tqdm(range(iterations), desc=f"k-means k={k}", unit="it", disable=not progress):
        batch = x[torch.randint(n, (batch_size,), generator=generator)]
        ids = assign(batch, centroids)
        batch_counts = torch.bincount(ids, minlength=k).float()
        sums = torch.zeros_like(centroids).index_add_(0, ids, batch)
        counts += batch_counts
        won = batch_counts > 0
        step = (batch_counts[won] / counts[won])[:, None]
        centroids[won] += step * (sums[won] / batch_counts[won][:, None] - centroids[won])
        dead = counts == 0
        if dead.any():  # never won since the seeding: restart on random batch vectors
            centroids[dead] = batch[torch.randint(batch_size, (int(dead.sum()),), generator=generator)]
    return centroids
