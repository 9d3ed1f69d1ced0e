"""Semantic LM log-probabilities: equal to the model's own next-token softmax, window by window."""

import math

import torch
from torch.nn import functional as F

from audiolm.eval.likelihood import perplexity, semantic_logprobs, unigram_perplexity
from audiolm.lm.model import build_model
from audiolm.lm.stages import StageSpec
from audiolm.lm.transformer import TransformerConfig


def test_logprobs_match_the_models_softmax_and_restart_each_window():
    torch.manual_seed(0)
    spec = StageSpec(stage="semantic", semantic_vocab=12, window_seconds=0.4)  # 10 frames per window at 25 Hz
    model = build_model(spec, TransformerConfig(dim=32, num_layers=1, num_heads=2)).eval()
    ids = torch.randint(0, 12, (23,))
    logp = semantic_logprobs(model, spec, ids)
    assert logp.shape == (23,) and (logp < 0).all()
    for start in (0, 10, 20):  # every window starts from BOS
        chunk = ids[start:start + 10]
        inputs = torch.cat([torch.tensor([spec.special]), chunk[:-1]])[None]
        with torch.no_grad():
            expected = F.log_softmax(model(inputs)[0, :, :12], dim=-1).gather(1, chunk[:, None])[:, 0]
        assert torch.allclose(logp[start:start + 10], expected, atol=1e-5)


def test_perplexity_and_the_unigram_baseline():
    uniform = [torch.full((5,), -math.log(8))]
    assert abs(perplexity(uniform) - 8) < 1e-6
    train = [torch.tensor([0, 0, 0, 1])]
    assert unigram_perplexity(train, [torch.tensor([0])], vocab=2) < unigram_perplexity(train, [torch.tensor([1])], vocab=2)
