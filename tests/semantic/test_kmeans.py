import pytest
import torch

from audiolm.semantic.kmeans import assign, fit_kmeans, inertia


def _blobs(k: int = 6, n: int = 3000, dim: int = 4, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    centers = torch.randn(k, dim, generator=generator) * 20
    labels = torch.randint(k, (n,), generator=generator)
    return centers[labels] + torch.randn(n, dim, generator=generator), labels, centers


def test_kmeans_recovers_well_separated_clusters():
    x, labels, centers = _blobs()
    centroids = fit_kmeans(x, 6, iterations=30, batch_size=1000)
    ids = assign(x, centroids)
    # each fitted cluster holds exactly one true cluster, and vice versa
    pairs = set(zip(ids.tolist(), labels.tolist()))
    assert len(pairs) == 6 and len({a for a, _ in pairs}) == 6
    assert inertia(x, centroids) < 1.2 * inertia(x, centers)


def test_kmeans_is_deterministic_for_a_seed_and_varies_with_it():
    x, _, _ = _blobs(k=20, n=2000, seed=1)
    a = fit_kmeans(x, 20, iterations=10, batch_size=500, seed=3)
    assert torch.equal(a, fit_kmeans(x, 20, iterations=10, batch_size=500, seed=3))
    assert not torch.equal(a, fit_kmeans(x, 20, iterations=10, batch_size=500, seed=4))


def test_assign_matches_brute_force_nearest_centroid():
    generator = torch.Generator().manual_seed(0)
    x, centroids = torch.randn(2, 50, 8, generator=generator), torch.randn(16, 8, generator=generator)
    expected = torch.cdist(x.reshape(-1, 8), centroids).argmin(dim=1).reshape(2, 50)
    assert torch.equal(assign(x, centroids, chunk=7), expected)


def test_kmeans_refuses_too_few_vectors_and_bad_shapes():
    with pytest.raises(ValueError, match="at least k"):
        fit_kmeans(torch.randn(5, 3), 10)
    with pytest.raises(ValueError, match="N, D"):
        fit_kmeans(torch.randn(5, 3, 2), 2)
