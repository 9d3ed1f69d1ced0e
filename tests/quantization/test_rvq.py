"""audiolm.quantization: straight-through gradients, k-means init, EMA, dead-code restart, quantizer dropout,
round trips, codebook statistics, and distributed training equal to one process on the global batch."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from einops import rearrange
from safetensors.torch import load_file, save_file

from audiolm.quantization import ResidualVQ, VectorQuantizer
from audiolm.quantization.vq import kmeans


def blobs(centres: torch.Tensor, per_centre: int, std: float, frames: int, seed: int = 0) -> torch.Tensor:
    """Latents `[B, D, T]` whose B * T vectors are `per_centre` noisy copies of each row of `centres [C, D]`."""
    generator = torch.Generator().manual_seed(seed)
    vectors = centres.repeat_interleave(per_centre, 0) + std * torch.randn(len(centres) * per_centre, centres.shape[1], generator=generator)
    vectors = vectors[torch.randperm(len(vectors), generator=generator)]
    return rearrange(vectors, "(b t) d -> b d t", t=frames).contiguous()


def set_codebook(vq: VectorQuantizer, codebook: torch.Tensor, cluster_size: torch.Tensor) -> None:
    """Mark `vq` initialised with the given codebook `[N, D]` and counts `[N]` (consistent embed_sum)."""
    vq.codebook.copy_(codebook)
    vq.cluster_size.copy_(cluster_size)
    vq.embed_sum.copy_(codebook * cluster_size[:, None])
    vq.initialized.fill_(True)


def test_straight_through_gradient_reaches_input():
    torch.manual_seed(0)
    x = torch.randn(2, 4, 10, requires_grad=True)
    VectorQuantizer(4, 8).train()(x).quantized.sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))

    x.grad = None
    out = ResidualVQ(4, 3, 8).train()(x, torch.tensor([1, 3]))
    out.quantized.sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))


def test_commitment_loss_gradient():
    torch.manual_seed(0)
    x = torch.randn(2, 4, 10, requires_grad=True)
    vq = VectorQuantizer(4, 8).eval()
    out = vq(x)
    q = vq.decode(out.ids)
    assert torch.allclose(out.commit_loss, (x - q).pow(2).mean())
    out.commit_loss.backward()
    assert torch.allclose(x.grad, 2 * (x - q).detach() / x.numel(), atol=1e-7)
    assert vq.codebook.grad is None

    x.grad = None
    ResidualVQ(4, 3, 8).train()(x).commit_loss.backward()
    assert x.grad.abs().sum() > 0


def test_kmeans_init_recovers_separated_clusters():
    torch.manual_seed(0)
    centres = torch.stack([torch.full((8,), -3.0), torch.full((8,), 3.0)])
    x = blobs(centres, per_centre=100, std=0.1, frames=10)  # [20, 8, 10]
    vq = VectorQuantizer(8, 2, kmeans_iters=10).train()
    assert not vq.initialized
    vq(x)
    assert vq.initialized
    order = vq.codebook[:, 0].argsort()
    assert torch.allclose(vq.codebook[order], centres, atol=0.05)  # means of 100 points, not single batch vectors
    assert torch.allclose(vq.cluster_size, torch.full((2,), 100.0), atol=1e-4)


def test_kmeans_with_fewer_vectors_than_codes():
    vectors = torch.randn(5, 8)  # initial centroids sampled with replacement plus tiny noise
    centroids, counts = kmeans(vectors, 16, 10, torch.Generator().manual_seed(0))
    assert centroids.shape == (16, 8) and counts.sum() == 5
    assert torch.cdist(centroids, vectors).min(1).values.max() < 1e-2
    assert len(torch.unique(centroids, dim=0)) == 16

    vq = VectorQuantizer(8, 16).train()  # every code has < 2 vectors: all restarted from the 5 vectors, still distinct
    assert vq(vectors.T[None]).num_restarted == 16
    assert torch.cdist(vq.codebook, vectors).min(1).values.max() < 1e-2
    assert len(torch.unique(vq.codebook, dim=0)) == 16


def test_ema_update_moves_codes_towards_data():
    vq = VectorQuantizer(2, 2, decay=0.9, epsilon=1e-5, threshold_dead=0.0).train()
    set_codebook(vq, torch.tensor([[0.0, 0.0], [10.0, 10.0]]), torch.tensor([10.0, 10.0]))
    x = blobs(torch.tensor([[1.0, 1.0]]), per_centre=64, std=0.05, frames=8)  # [8, 2, 8], all nearest to code 0
    mean = rearrange(x, "b d t -> (b t) d").mean(0)
    out = vq(x)
    assert (out.ids == 0).all()
    size = torch.tensor([0.9 * 10 + 0.1 * 64, 0.9 * 10])
    total = size.sum()
    smoothed = (size + 1e-5) / (total + 2e-5) * total
    assert torch.allclose(vq.cluster_size, size)
    assert torch.allclose(vq.codebook[0], (0.9 * 0 + 0.1 * 64 * mean) / smoothed[0], atol=1e-5)
    distances = [float((vq.codebook[0] - mean).norm())]
    for _ in range(30):
        vq(x)
        distances.append(float((vq.codebook[0] - mean).norm()))
    assert all(b < a for a, b in zip(distances, distances[1:]))
    assert distances[-1] < 0.05 < distances[0]


def test_dead_code_restart_revives_unreachable_codes():
    torch.manual_seed(0)
    vq = VectorQuantizer(2, 8, threshold_dead=2.0).train()
    codebook = torch.cat([torch.randn(4, 2), torch.full((4, 2), 100.0) + torch.randn(4, 2)])  # codes 4..7 far away
    set_codebook(vq, codebook, torch.tensor([30.0] * 4 + [1.0] * 4))
    x = torch.randn(8, 2, 32)
    assert set(vq.encode(x).unique().tolist()) <= {0, 1, 2, 3}
    restarted = [vq(x).num_restarted for _ in range(5)]
    assert restarted[0] == 4
    vq.eval()
    assert set(vq.encode(x).unique().tolist()) == set(range(8))
    assert vq.codebook.abs().max() < 10


def test_quantizer_dropout_uses_and_updates_only_the_first_levels():
    torch.manual_seed(0)
    rvq = ResidualVQ(4, 3, 16).train()
    x = torch.randn(4, 4, 12)
    rvq(x)  # k-means init of every level
    levels = torch.tensor([1, 3, 1, 3])
    x = torch.randn(4, 4, 12)
    x[levels == 1] *= 100  # examples with n_q = 1 would drag the deeper codebooks far away if they reached them
    before = copy.deepcopy(rvq)
    full_only = copy.deepcopy(rvq)

    out = rvq(x, levels)
    assert torch.equal(out.num_quantizers, levels)
    assert out.codes.shape == (4, 3, 12)
    one, three = levels == 1, levels == 3
    assert torch.allclose(out.quantized[one], before.decode(out.codes[:, :1])[one], atol=1e-4)
    assert torch.allclose(out.quantized[three], before.decode(out.codes)[three], atol=1e-5)
    before.eval()
    assert torch.equal(out.codes, before.encode(x))  # codes of all levels, whatever n_q

    reference = full_only(x[three])  # the n_q = 3 examples alone
    assert torch.equal(reference.codes, out.codes[three])
    for k in (1, 2):  # deeper levels saw exactly the n_q = 3 examples
        for name, buffer in rvq.layers[k].state_dict().items():
            assert torch.allclose(buffer, full_only.layers[k].state_dict()[name], atol=1e-5), (k, name)
    assert not torch.allclose(rvq.layers[0].embed_sum, full_only.layers[0].embed_sum)


def test_more_levels_reconstruct_better():
    torch.manual_seed(0)
    rvq = ResidualVQ(8, 4, 16).train()
    x = torch.randn(8, 8, 20)
    for _ in range(3):
        rvq(x)
    rvq.eval()
    errors = [float((rvq.decode(rvq.encode(x, n)) - x).pow(2).mean()) for n in range(1, 5)]
    assert all(b < a for a, b in zip(errors, errors[1:])), errors
    assert errors[-1] < 0.5 * float(x.pow(2).mean())


def test_encode_decode_round_trip_equals_forward_in_eval():
    torch.manual_seed(0)
    rvq = ResidualVQ(6, 3, 8).train()
    rvq(torch.randn(4, 6, 10))
    rvq.eval()
    x = torch.randn(3, 6, 7)
    out = rvq(x)
    codes = rvq.encode(x)
    assert codes.dtype == torch.int64 and codes.shape == (3, 3, 7)
    assert torch.equal(codes, out.codes)
    assert torch.allclose(rvq.decode(codes), out.quantized, atol=1e-6)
    assert torch.allclose(rvq.decode(codes[:, :2]), rvq(x, 2).quantized, atol=1e-6)
    assert torch.equal(rvq.encode(x, 2), codes[:, :2])


def test_state_dict_round_trip_restores_behaviour(tmp_path: Path):
    torch.manual_seed(0)
    rvq = ResidualVQ(4, 2, 8, threshold_dead=3.0).train()
    batches = [torch.randn(2, 4, 6) for _ in range(4)]
    for x in batches[:3]:
        rvq(x)
    save_file(rvq.state_dict(), tmp_path / "model.safetensors")
    torch.manual_seed(1)
    restored = ResidualVQ(4, 2, 8, threshold_dead=3.0)
    restored.load_state_dict(load_file(tmp_path / "model.safetensors"))
    assert all(bool(layer.initialized) for layer in restored.layers)
    rvq.eval()
    restored.eval()
    assert torch.equal(restored.encode(batches[3]), rvq.encode(batches[3]))
    rvq.train()
    restored.train()
    a, b = rvq(batches[3], torch.tensor([1, 2])), restored(batches[3], torch.tensor([1, 2]))
    assert torch.equal(a.codes, b.codes) and a.num_restarted == b.num_restarted
    for name, buffer in rvq.state_dict().items():
        assert torch.equal(buffer, restored.state_dict()[name]), name


def test_codebook_stats():
    rvq = ResidualVQ(2, 3, 4)
    codes = torch.stack([
        torch.tensor([[0, 1, 2, 3], [3, 2, 1, 0]]),  # uniform over all 4 codes
        torch.tensor([[2, 2, 2, 2], [2, 2, 2, 2]]),  # one code
        torch.tensor([[0, 0, 0, 1], [0, 0, 0, 1]]),
    ], 1)  # [2, 3, 4]
    stats = rvq.codebook_stats(codes)
    assert len(stats) == 3
    assert stats[0] == pytest.approx({"usage": 1.0, "perplexity": 4.0})
    assert stats[1] == pytest.approx({"usage": 0.25, "perplexity": 1.0})
    assert stats[2]["usage"] == 0.5 and 1.0 < stats[2]["perplexity"] < 2.0


def test_rejects_bad_level_counts():
    rvq = ResidualVQ(2, 3, 4)
    x = torch.randn(2, 2, 5)
    with pytest.raises(ValueError):
        rvq(x, torch.tensor([0, 2]))
    with pytest.raises(ValueError):
        rvq(x, 4)
    with pytest.raises(ValueError):
        rvq.encode(x, 0)


# Distributed: 2 gloo processes with half of each global batch == 1 process with the whole batch.

STEPS, GLOBAL_BATCH, DIM, FRAMES = 3, 4, 4, 8


def make_distributed_case() -> tuple[ResidualVQ, list[tuple[torch.Tensor, torch.Tensor]]]:
    """The same quantizer (16 codes for 32 vectors a batch: k-means leaves dead codes) and global batches everywhere."""
    torch.manual_seed(0)
    rvq = ResidualVQ(DIM, 2, 16, threshold_dead=2.0, kmeans_iters=5).train()
    generator = torch.Generator().manual_seed(1)
    batches = [(torch.randn(GLOBAL_BATCH, DIM, FRAMES, generator=generator), torch.tensor([1, 2, 2, 1]) if step % 2 == 0 else
                torch.tensor([2, 1, 2, 2])) for step in range(STEPS)]
    return rvq, batches


def distributed_worker(rank: int, world: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        rvq, batches = make_distributed_case()
        torch.manual_seed(100 + rank)  # the quantizer's random choices must not come from the global RNG
        half = GLOBAL_BATCH // world
        for x, levels in batches:
            rvq(x[rank * half:(rank + 1) * half], levels[rank * half:(rank + 1) * half])
        save_file(rvq.state_dict(), str(Path(out_dir) / f"rank{rank}.safetensors"))
    finally:
        dist.destroy_process_group()


def test_distributed_matches_single_process_on_global_batch(tmp_path: Path):
    mp.spawn(distributed_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)

    rvq, batches = make_distributed_case()
    restarted = [rvq(x, levels).num_restarted for x, levels in batches]
    assert restarted[0] > 0  # the comparison covers k-means init and dead-code restarts
    assert all(bool(layer.initialized) for layer in rvq.layers)
    single = rvq.state_dict()
    for rank in range(2):
        state = load_file(tmp_path / f"rank{rank}.safetensors")
        assert state.keys() == single.keys()
        for name, buffer in single.items():
            assert torch.allclose(state[name].to(buffer.dtype), buffer, atol=1e-6), (rank, name)


def test_relative_dead_threshold_keeps_used_codes_with_small_batches():
    """With fewer vectors per batch than codes, an absolute threshold restarts nearly every code at every
    step; the relative one restarts only the codes that go unused."""
    torch.manual_seed(0)
    centres = torch.randn(16, 8) * 3
    absolute = VectorQuantizer(8, 256, threshold_dead=2.0, seed=1).train()
    relative = VectorQuantizer(8, 256, threshold_dead=0.1, relative_dead=True, seed=1).train()
    restarts = {"absolute": [], "relative": []}
    for _ in range(60):
        x = (centres[torch.randint(0, 16, (64,))] + 0.05 * torch.randn(64, 8)).T[None]  # [1, 8, 64]: 64 vectors, 256 codes
        restarts["absolute"].append(absolute(x).num_restarted)
        restarts["relative"].append(relative(x).num_restarted)
    assert sum(restarts["absolute"][-20:]) > 20 * 200
    assert sum(restarts["relative"][-20:]) < 0.1 * sum(restarts["absolute"][-20:])


def test_reset_statistics_keeps_the_codebook_through_the_next_update():
    torch.manual_seed(0)
    vq = VectorQuantizer(4, 16, threshold_dead=0.0, seed=0).train()  # no restarts: only the EMA step acts
    x = torch.randn(2, 4, 32)
    vq(x)
    before = vq.codebook.clone()
    vq.cluster_size.zero_()
    vq.embed_sum.zero_()
    vq.reset_statistics(1.0)
    assert torch.allclose(vq.embed_sum / vq.cluster_size[:, None], before)
    vq(torch.randn(2, 4, 32) * 0.01)  # one update: codes move a little, none collapses to zero
    assert (vq.codebook.norm(dim=1) / before.norm(dim=1)).min() > 0.5
