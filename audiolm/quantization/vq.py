"""One vector quantizer with an EMA codebook, k-means initialisation and dead-code restart (SoundStream / EnCodec).

Shapes: latents `x [B, D, T]`; code ids `[B, T]` int64; codebook `[N, D]` (N = codebook_size). Inside, latents are
flattened to vectors `[M, D]`, M = B * T, in `(b, t)` order, with a mask `[M]` of the vectors that may update the
codebook (quantizer dropout masks out the examples that do not use this quantizer).

A training-mode `forward` does, in order:
1. On the first batch that has any unmasked vector: k-means (`kmeans_iters` Lloyd iterations, started from random
   batch vectors) sets the codebook; `cluster_size` gets the k-means cluster counts and `embed_sum` = centroid * count.
2. Assign every vector to its nearest code (with the codebook as it was before this step's update).
3. EMA update, under no_grad: `cluster_size <- decay * cluster_size + (1 - decay) * counts`,
   `embed_sum <- decay * embed_sum + (1 - decay) * sums`, codebook = `embed_sum / smoothed cluster_size`
   (Laplace smoothing with `epsilon`). A step where no vector of the global batch is unmasked leaves the codebook and
   its statistics alone (only `step` advances), so a level that quantizer dropout skipped for a whole batch does not decay.
4. Dead-code restart: `cluster_size` is an EMA of "vectors assigned per batch"; codes below `threshold_dead` are
   replaced by random unmasked vectors of the current (global) batch (`sample_vectors`), with `cluster_size = threshold_dead`
   and `embed_sum = vector * threshold_dead` so that the next EMA update keeps them where they were put. A restarted
   code that then gets fewer than `threshold_dead` vectors per batch goes on being restarted. With
   `threshold_dead=0` nothing is restarted, and codes that get no vectors shrink towards 0 under the smoothing.
   With `relative_dead=True` the threshold is `threshold_dead` times the average count per code of the batch
   (its unmasked vectors / codebook size), so that one setting suits any batch size: small batches have fewer
   vectors than codes, and an absolute threshold of 2 would then restart nearly every code at every step.

Distributed (torch.distributed initialised, world size > 1): counts and sums are all-reduced (SUM) before the update,
and the vectors for k-means and restarts are all-gathered in rank order. Random choices use a `torch.Generator`
seeded from `seed` and the `step` buffer (incremented by every training forward), never the global RNG. So every
rank makes the same update, equal to one process seeing the concatenated global batch (rank r holding slice r).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F
from einops import rearrange
from torch import nn


@dataclass
class VQOutput:
    """The result of `VectorQuantizer.forward`.

    quantized: `[B, D, T]` the codes' vectors, straight-through (the gradient goes to the input unchanged).
    ids: `[B, T]` int64 code ids.
    commit_loss: scalar, mean squared error between the input and its (detached) codes over the unmasked frames.
    num_restarted: dead codes restarted by this forward (0 in eval mode).
    """

    quantized: torch.Tensor
    ids: torch.Tensor
    commit_loss: torch.Tensor
    num_restarted: int = 0


def world_size() -> int:
    """The number of processes in the default group, 1 when torch.distributed is not initialised."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return 1


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum `tensor` over all ranks, in place; returns it."""
    if world_size() > 1:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_gather_cat(tensor: torch.Tensor) -> torch.Tensor:
    """`[M, ...]` on each rank (same shape everywhere) -> `[world_size * M, ...]`, concatenated in rank order."""
    size = world_size()
    if size == 1:
        return tensor
    parts = [torch.empty_like(tensor) for _ in range(size)]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts)


def nearest(vectors: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """Ids `[M]` of the nearest (Euclidean) rows of `codebook [N, D]` to `vectors [M, D]`."""
    distances = vectors.pow(2).sum(1, keepdim=True) - 2 * vectors @ codebook.t() + codebook.pow(2).sum(1)  # [M, N]
    return distances.argmin(1)


def sample_vectors(vectors: torch.Tensor, num: int, generator: torch.Generator) -> torch.Tensor:
    """`num` rows of `vectors [M, D]` -> `[num, D]`: distinct rows if M >= num, else rows drawn with replacement plus
    noise of 1e-3 of their RMS, so that no two samples coincide."""
    count = vectors.shape[0]
    if count >= num:
        return vectors[torch.randperm(count, generator=generator)[:num].to(vectors.device)]
    samples = vectors[torch.randint(count, (num,), generator=generator).to(vectors.device)]
    noise = torch.randn(samples.shape, generator=generator).to(samples)
    return samples + 1e-3 * vectors.pow(2).mean().sqrt().clamp_min(1e-6) * noise


def kmeans(vectors: torch.Tensor, num_clusters: int, iters: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Lloyd's k-means on `vectors [M, D]` -> (centroids `[num_clusters, D]`, counts `[num_clusters]` float).

    Starts from random vectors (`sample_vectors`: with replacement plus tiny noise when M < num_clusters). An empty
    cluster keeps its centroid. Counts are those of the final assignment.
    """
    centroids = sample_vectors(vectors, num_clusters, generator)
    for _ in range(iters):
        ids = nearest(vectors, centroids)
        counts = torch.bincount(ids, minlength=num_clusters).to(vectors.dtype)
        sums = torch.zeros_like(centroids).index_add_(0, ids, vectors)
        centroids = torch.where(counts[:, None] > 0, sums / counts.clamp_min(1)[:, None], centroids)
    counts = torch.bincount(nearest(vectors, centroids), minlength=num_clusters).to(vectors.dtype)
    return centroids, counts


class VectorQuantizer(nn.Module):
    """EMA vector quantizer of latents `[B, D, T]` with a codebook `[N, D]`; see the module docstring.

    Buffers (all in the state_dict): `codebook [N, D]`, `cluster_size [N]`, `embed_sum [N, D]`, `initialized` (bool),
    `step` (int64, training forwards so far; seeds the random choices together with `seed`).
    """

    def __init__(self, dim: int, codebook_size: int, decay: float = 0.99, epsilon: float = 1e-5, threshold_dead: float = 2.0,
                 kmeans_iters: int = 10, seed: int = 0, relative_dead: bool = False) -> None:
        super().__init__()
        if dim < 1 or codebook_size < 1:
            raise ValueError(f"dim and codebook_size must be positive, got {dim} and {codebook_size}")
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay}")
        if epsilon <= 0 or threshold_dead < 0 or kmeans_iters < 0 or seed < 0:
            raise ValueError("epsilon must be positive; threshold_dead, kmeans_iters and seed non-negative")
        self.dim = dim
        self.codebook_size = codebook_size
        self.decay = decay
        self.epsilon = epsilon
        self.threshold_dead = threshold_dead
        self.relative_dead = relative_dead
        self.kmeans_iters = kmeans_iters
        self.seed = seed
        self.register_buffer("codebook", torch.randn(codebook_size, dim))
        self.register_buffer("cluster_size", torch.zeros(codebook_size))
        self.register_buffer("embed_sum", torch.zeros(codebook_size, dim))
        self.register_buffer("initialized", torch.tensor(False))
        self.register_buffer("step", torch.tensor(0, dtype=torch.long))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Latents `[B, D, T]` -> nearest code ids `[B, T]` int64."""
        assert x.ndim == 3 and x.shape[1] == self.dim, f"expected [B, {self.dim}, T], got {tuple(x.shape)}"
        flat = rearrange(x.detach().float(), "b d t -> (b t) d")
        return rearrange(nearest(flat, self.codebook), "(b t) -> b t", b=x.shape[0])

    def decode(self, ids: torch.Tensor) -> torch.Tensor:
        """Code ids `[B, T]` -> their vectors `[B, D, T]`."""
        assert ids.ndim == 2, f"expected ids [B, T], got {tuple(ids.shape)}"
        return rearrange(F.embedding(ids, self.codebook), "b t d -> b d t")

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> VQOutput:
        """Quantize `x [B, D, T]`; in training mode also initialise / update the codebook.

        mask: `[B, T]` bool, the frames that may update the codebook and count in `commit_loss` (default: all).
        """
        assert x.ndim == 3 and x.shape[1] == self.dim, f"expected [B, {self.dim}, T], got {tuple(x.shape)}"
        B, D, T = x.shape
        if mask is None:
            mask = torch.ones(B, T, dtype=torch.bool, device=x.device)
        assert mask.shape == (B, T) and mask.dtype == torch.bool, f"mask must be bool [B, T] = {(B, T)}, got {tuple(mask.shape)}"
        flat = rearrange(x, "b d t -> (b t) d").float()  # [M, D]
        flat_mask = rearrange(mask, "b t -> (b t)")  # [M]
        num_restarted = 0
        generator = None
        if self.training:
            generator = self._next_generator()
            if not bool(self.initialized):
                self._init_codebook(flat.detach(), flat_mask, generator)
        ids = nearest(flat.detach(), self.codebook)  # [M]
        codes = self.codebook[ids]  # [M, D], a copy: later in-place updates do not touch it
        if generator is not None and bool(self.initialized):
            num_restarted = self._update(flat.detach(), ids, flat_mask, generator)
        weight = flat_mask.to(flat.dtype)
        commit_loss = ((flat - codes).pow(2).mean(1) * weight).sum() / weight.sum().clamp_min(1)
        quantized = flat + (codes - flat).detach()
        return VQOutput(
            quantized=rearrange(quantized, "(b t) d -> b d t", b=B).to(x.dtype),
            ids=rearrange(ids, "(b t) -> b t", b=B),
            commit_loss=commit_loss,
            num_restarted=num_restarted,
        )

    @torch.no_grad()
    def reset_statistics(self, count: float = 1.0) -> None:
        """Restart the EMA statistics from the current codebook, as if every code had `count` vectors per
        batch (for fine-tuning from an inference file, which leaves the statistics out)."""
        self.cluster_size.fill_(count)
        self.embed_sum.copy_(self.codebook * count)

    def _next_generator(self) -> torch.Generator:
        """Advance `step`; a CPU generator seeded from (seed, step), the same on every rank."""
        self.step += 1
        generator = torch.Generator()
        generator.manual_seed(self.seed * 2**32 + int(self.step))
        return generator

    def _global_vectors(self, flat: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The unmasked vectors of the global batch `[M', D]`, in rank order, from local `flat [M, D]`, `mask [M]`."""
        if world_size() > 1:
            packed = all_gather_cat(torch.cat([flat, mask[:, None].to(flat.dtype)], 1))  # [world * M, D + 1]
            flat, mask = packed[:, :-1], packed[:, -1] > 0.5
        return flat[mask]

    @torch.no_grad()
    def _init_codebook(self, flat: torch.Tensor, mask: torch.Tensor, generator: torch.Generator) -> None:
        vectors = self._global_vectors(flat, mask)
        if vectors.shape[0] == 0:
            return
        centroids, counts = kmeans(vectors, self.codebook_size, self.kmeans_iters, generator)
        self.codebook.copy_(centroids)
        self.cluster_size.copy_(counts)
        self.embed_sum.copy_(centroids * counts[:, None])
        self.initialized.fill_(True)

    @torch.no_grad()
    def _update(self, flat: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor, generator: torch.Generator) -> int:
        """EMA update from the unmasked vectors, then dead-code restart; returns the number of codes restarted."""
        stats = torch.zeros(self.codebook_size, self.dim + 1, device=flat.device)  # [N, D + 1]: sums | counts
        stats.index_add_(0, ids[mask], torch.cat([flat[mask], flat.new_ones(int(mask.sum()), 1)], 1))
        all_reduce_sum(stats)
        sums, counts = stats[:, :-1], stats[:, -1]
        if counts.sum() == 0:
            return 0
        self.cluster_size.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.embed_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        total = self.cluster_size.sum()
        smoothed = (self.cluster_size + self.epsilon) / (total + self.codebook_size * self.epsilon) * total
        self.codebook.copy_(self.embed_sum / smoothed[:, None])
        threshold = self.threshold_dead * float(counts.sum()) / self.codebook_size if self.relative_dead else self.threshold_dead
        return self._restart_dead(flat, mask, generator, threshold)

    @torch.no_grad()
    def _restart_dead(self, flat: torch.Tensor, mask: torch.Tensor, generator: torch.Generator, threshold: float) -> int:
        dead = self.cluster_size < threshold  # [N], identical on every rank
        num_dead = int(dead.sum())
        if num_dead == 0:
            return 0
        vectors = self._global_vectors(flat, mask)
        if vectors.shape[0] == 0:
            return 0
        new = sample_vectors(vectors, num_dead, generator)  # [num_dead, D]
        self.codebook[dead] = new
        self.embed_sum[dead] = new * threshold
        self.cluster_size[dead] = threshold
        return num_dead
