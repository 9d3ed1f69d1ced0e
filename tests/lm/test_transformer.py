"""The Transformer: cached == uncached, seeded sampling, causality, and a tiny model that learns a pattern."""

import pytest
import torch

from audiolm.generation.generate import generate_tokens
from audiolm.generation.sampling import Sampler, Sampling, sample
from audiolm.lm.stages import StageSpec
from audiolm.lm.transformer import Transformer, TransformerConfig


def _model(vocab: int = 40, seed: int = 0) -> Transformer:
    torch.manual_seed(seed)
    return Transformer(TransformerConfig(vocab_size=vocab, dim=32, num_layers=2, num_heads=4, max_seq_len=128)).eval()


def test_cached_logits_equal_uncached_for_any_chunking():
    model = _model()
    tokens = torch.randint(0, 40, (3, 50), generator=torch.Generator().manual_seed(0))
    full = model(tokens)
    cache = model.new_cache(3, 64)
    pieces = [model(tokens[:, :9], cache), model(tokens[:, 9:20], cache)] + [model(tokens[:, i:i + 1], cache) for i in range(20, 50)]
    assert cache.length == 50
    assert torch.allclose(torch.cat(pieces, dim=1), full, atol=1e-5)


def test_the_model_is_causal():
    model = _model()
    tokens = torch.randint(0, 40, (1, 30))
    changed = tokens.clone()
    changed[0, 20:] = (changed[0, 20:] + 1) % 40
    assert torch.allclose(model(tokens)[:, :20], model(changed)[:, :20], atol=1e-6)
    assert not torch.allclose(model(tokens)[:, 20:], model(changed)[:, 20:])


def test_cached_sampling_equals_uncached_sampling():
    model = _model(vocab=StageSpec(stage="semantic", semantic_vocab=39).vocab_size)
    spec = StageSpec(stage="semantic", semantic_vocab=39)
    prefix = torch.tensor([[39, 3, 5, 7]])
    sampling = Sampling(temperature=0.9, top_k=10)
    cached = generate_tokens(model, spec, prefix, 20, sampling, torch.Generator().manual_seed(5))
    sampler = Sampler(sampling, torch.Generator().manual_seed(5))  # as generate_tokens draws its noise
    sequence = prefix
    with torch.inference_mode():
        for _ in range(20):
            logits = model(sequence)[:, -1, :39]  # uncached: the whole sequence each step
            sequence = torch.cat([sequence, sampler(logits)[:, None]], dim=1)
    assert torch.equal(cached, sequence[:, 4:])


def test_sampling_is_seeded_greedy_at_zero_and_respects_top_k_and_top_p():
    logits = torch.randn(4, 100, generator=torch.Generator().manual_seed(0))
    sampling = Sampling(temperature=1.0)
    a = sample(logits, sampling, torch.Generator().manual_seed(1))
    assert torch.equal(a, sample(logits, sampling, torch.Generator().manual_seed(1)))
    assert torch.equal(sample(logits, Sampling(temperature=0), None), logits.argmax(-1))
    top3 = logits.topk(3).indices
    for seed in range(20):
        ids = sample(logits, Sampling(top_k=3), torch.Generator().manual_seed(seed))
        assert (top3 == ids[:, None]).any(dim=1).all()
    peaked = torch.tensor([[10.0, 9.0, 0.0, 0.0, 0.0]])  # p = 0.73, 0.27, ~0: top_p 0.5 keeps only the first
    assert all(int(sample(peaked, Sampling(top_p=0.5), torch.Generator().manual_seed(s))) == 0 for s in range(20))
    with pytest.raises(ValueError):
        Sampling(top_p=0)


def test_sampler_draws_from_the_tempered_softmax():
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0, 0.5]])
    sampler = Sampler(Sampling(temperature=0.7), torch.Generator().manual_seed(0))
    ids = torch.cat([sampler(logits) for _ in range(20000)])  # noise drawn 64 steps at a time
    frequencies = torch.bincount(ids, minlength=5).float() / ids.numel()
    torch.testing.assert_close(frequencies, (logits[0] / 0.7).softmax(-1), atol=0.012, rtol=0)


def test_a_tiny_lm_learns_a_toy_pattern():
    torch.manual_seed(0)
    model = Transformer(TransformerConfig(vocab_size=12, dim=32, num_layers=2, num_heads=4, max_seq_len=64))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)

    def batch() -> torch.Tensor:  # each row counts up from a random start, modulo 12
        start = torch.randint(0, 12, (16, 1), generator=generator)
        return (start + torch.arange(32)) % 12

    losses = []
    for _ in range(60):
        tokens = batch()
        loss = torch.nn.functional.cross_entropy(model(tokens[:, :-1]).reshape(-1, 12), tokens[:, 1:].reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert sum(losses[-5:]) / 5 < 0.3 * sum(losses[:5]) / 5
    model.eval()
    spec = StageSpec(stage="semantic", semantic_vocab=11)  # ids 0..10 sampled; the pattern's next ids are mostly in range
    out = generate_tokens(model, spec, torch.tensor([[3, 4, 5, 6]]), 4, Sampling(temperature=0))
    assert out.tolist() == [[7, 8, 9, 10]]


def test_tied_embeddings_store_one_table_and_round_trip(tmp_path):
    from audiolm.lm.model import build_model, load_stage, save_stage
    from audiolm.lm.stages import StageSpec

    spec = StageSpec(stage="parallel", semantic_vocab=8, codebook_size=32, num_coarse=2, num_fine=2, window_seconds=1.0)
    tied = build_model(spec, TransformerConfig(dim=32, num_layers=1, num_heads=2, tie_embeddings=True))
    untied = build_model(spec, TransformerConfig(dim=32, num_layers=1, num_heads=2))
    assert tied.head.weight is tied.embedding.weight and "head.weight" not in tied.state_dict()
    saved = sum(p.numel() for p in untied.parameters()) - sum(p.numel() for p in tied.parameters())
    assert saved == spec.vocab_size * 32  # one table fewer
    loaded, _, _ = load_stage(save_stage(tmp_path / "stage", tied, spec))
    frames = torch.randint(0, spec.vocab_size, (2, 10, 5))
    assert loaded.head.weight is loaded.embedding.weight
    torch.testing.assert_close(loaded(frames), tied.eval()(frames))
