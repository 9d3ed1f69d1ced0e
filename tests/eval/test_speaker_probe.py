"""Speaker probe: utterance pooling, and a probe that finds clear speaker clusters and nothing in noise."""

from __future__ import annotations

import pytest
import torch

from audiolm.eval.speaker_probe import speaker_probe, utterance_vector


def test_utterance_vector_pools_each_kind_of_feature() -> None:
    x = torch.tensor([[1.0, 0.0], [3.0, 2.0]])  # [T=2, D=2]
    assert utterance_vector(x).tolist() == [2.0, 1.0, 1.0, 1.0]  # mean, then std
    ids = torch.tensor([0, 2, 2, 3])  # [T]
    assert utterance_vector(ids, codebook_size=4).tolist() == [0.25, 0.0, 0.5, 0.25]
    codes = torch.tensor([[0, 1], [0, 2], [1, 2], [0, 2]])  # [T=4, K=2]
    assert utterance_vector(codes, codebook_size=3).tolist() == [0.75, 0.25, 0.0, 0.0, 0.25, 0.75]
    with pytest.raises(ValueError, match="codebook_size"):
        utterance_vector(ids)


def _labels(num_speakers: int, utterances: int) -> list[str]:
    return [f"spk{s}" for s in range(num_speakers) for _ in range(utterances)]


def test_separable_speakers_are_recognised() -> None:
    g = torch.Generator().manual_seed(0)
    speakers = _labels(6, 10)
    centres = 3 * torch.randn(6, 16, generator=g)
    vectors = centres.repeat_interleave(10, dim=0) + torch.randn(60, 16, generator=g)  # [N, D]
    result = speaker_probe(vectors, speakers, seed=0)
    assert result["accuracy"] >= 0.9
    assert result["num_speakers"] == 6 and result["train"] == result["test"] == 30
    assert result["chance"] == pytest.approx(1 / 6)


def test_noise_scores_near_chance_and_is_deterministic() -> None:
    g = torch.Generator().manual_seed(1)
    speakers = _labels(8, 20)
    vectors = torch.randn(160, 12, generator=g).numpy()  # numpy in is fine too
    result = speaker_probe(vectors, speakers, seed=0)
    assert result["chance"] == pytest.approx(0.125)
    assert result["accuracy"] < result["chance"] + 0.15
    assert speaker_probe(vectors, speakers, seed=0) == result


def test_split_is_stratified_and_validated() -> None:
    vectors = torch.randn(7, 3)
    result = speaker_probe(vectors, ["a", "a", "a", "b", "b", "b", "c"], test_fraction=0.3)
    assert (result["train"], result["test"]) == (5, 2)  # one test utterance each from a and b; c only trains
    with pytest.raises(ValueError, match="test_fraction"):
        speaker_probe(vectors, ["a"] * 7, test_fraction=1.0)
    with pytest.raises(ValueError, match="two or more speakers"):
        speaker_probe(vectors, ["a"] * 7)
