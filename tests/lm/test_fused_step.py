"""The fused CPU decode step computes the Transformer's step: same logits, same cache, same samples; PyTorch where it
does not apply."""

import pytest
import torch
from torch.nn import functional as F

from audiolm.generation.generate import generate_tokens
from audiolm.generation.sampling import Sampling
from audiolm.lm import fused_step as fused
from audiolm.lm.stages import StageSpec
from audiolm.lm.transformer import Transformer, TransformerConfig

pytestmark = pytest.mark.skipif(not fused.available(), reason="numba is not importable")


def _model(vocab: int = 60, layers: int = 2) -> Transformer:
    torch.manual_seed(0)
    return Transformer(TransformerConfig(vocab_size=vocab, dim=32, num_layers=layers, num_heads=4)).eval()


@torch.inference_mode()
def test_fused_step_equals_the_pytorch_step_in_logits_and_cache():
    model = _model()
    prefix = torch.randint(0, 60, (3, 7))
    reference, cache = model.new_cache(3, 20), model.new_cache(3, 20)
    model.features(prefix, reference)
    model.features(prefix, cache)
    step = fused.fused_step(model, cache)
    assert step is not None
    for i, (lo, hi) in enumerate([(0, 60), (10, 20), (40, 60), (0, 1), (5, 45)]):
        token_ids = torch.randint(0, 60, (3,))
        expected = F.linear(model.features(token_ids[:, None], reference)[:, -1], model.head.weight[lo:hi])
        logits = step(token_ids, lo, hi)
        assert logits.shape == (3, hi - lo)
        torch.testing.assert_close(logits, expected, atol=1e-5, rtol=1e-5)
        assert cache.length == reference.length == 8 + i
    torch.testing.assert_close(cache.keys, reference.keys, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(cache.values, reference.values, atol=1e-5, rtol=1e-5)


@torch.inference_mode()
def test_fused_step_fills_the_cache_to_its_last_slot_then_refuses_bad_calls():
    model = _model()
    reference, cache = model.new_cache(2, 6), model.new_cache(2, 6)
    prefix = torch.tensor([[1, 2, 3], [4, 5, 6]])
    model.features(prefix, reference)
    model.features(prefix, cache)
    step = fused.fused_step(model, cache)
    for token in (7, 8, 9):  # positions 3, 4 and 5: the last slot
        expected = F.linear(model.features(torch.tensor([[token], [token]]), reference)[:, -1], model.head.weight)
        torch.testing.assert_close(step(torch.tensor([token, token]), 0, 60), expected, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="longer than the cache"):
        step(torch.tensor([4, 4]), 0, 60)
    fresh = model.new_cache(2, 6)
    model.features(prefix, fresh)
    step = fused.fused_step(model, fresh)
    for bad in [(torch.tensor([1]), 0, 60), (torch.tensor([1, 1]), 0, 61), (torch.tensor([1, 1]), 5, 5), (torch.tensor([1, 60]), 0, 60)]:
        with pytest.raises(ValueError):
            step(*bad)
    model.features(torch.tensor([[1], [1]]), fresh)  # the cache moved on without the step
    with pytest.raises(ValueError, match="changed outside"):
        step(torch.tensor([1, 1]), 0, 60)


def test_generation_samples_the_same_tokens_either_way(monkeypatch):
    model = _model(vocab=StageSpec(stage="semantic", semantic_vocab=50).vocab_size, layers=3)
    spec = StageSpec(stage="semantic", semantic_vocab=50)
    prefix = torch.tensor([[50, 3, 5, 7], [50, 1, 1, 2]])
    for sampling in (Sampling(temperature=0), Sampling(temperature=0.9, top_k=20)):
        fast = generate_tokens(model, spec, prefix, 30, sampling, torch.Generator().manual_seed(3))
        monkeypatch.setenv("AUDIOLM_FUSED_STEP", "0")
        slow = generate_tokens(model, spec, prefix, 30, sampling, torch.Generator().manual_seed(3))
        monkeypatch.delenv("AUDIOLM_FUSED_STEP")
        assert torch.equal(fast, slow)


def test_pytorch_is_used_where_the_fused_step_does_not_apply(monkeypatch):
    model = _model()
    cache = model.new_cache(1, 8)
    assert fused.fused_step(model, cache) is None  # gradients enabled
    with torch.inference_mode():
        assert fused.fused_step(model, cache) is not None
        assert fused.fused_step(model.train(), cache) is None
        model.eval()
        assert fused.fused_step(model.double(), model.new_cache(1, 8)) is None
        monkeypatch.setenv("AUDIOLM_FUSED_STEP", "0")
        assert fused.fused_step(model.float(), cache) is None
