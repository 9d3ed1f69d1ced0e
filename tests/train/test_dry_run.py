"""The dry run's arithmetic (audiolm/train/dry_run.py): the figures follow the formulas of its docstring."""

import pytest

from audiolm.errors import AudiolmError
from audiolm.train.dry_run import ACTIVATION_BYTES, codec_plan, estimate, lm_plan, semantic_plan


def test_lm_figures_follow_the_formulas():
    plan = lm_plan("tiny", "coarse", ["train.batch_size=8", "train.grad_accum=2"])
    figures = estimate(plan, world=2)
    P, S, D, L = figures.trained, plan.sequence, plan.dim, plan.layers
    b = 8 // (2 * 2)
    assert figures.micro_batch == b and P == figures.total == sum(figures.parameters.values())
    assert figures.states_ddp == 22 * P
    block = 12 * D * D + 2 * D  # each block is one FSDP unit; the rest (embedding, head, norm) another
    assert figures.largest_unit == max(block, P - L * block)
    assert figures.states_fsdp == 8 * P + 10 * figures.largest_unit
    head = S * (2 * plan.vocab + 8 * plan.classes)
    assert figures.activations == b * (S * D * L * ACTIVATION_BYTES + head)
    assert figures.activations_checkpointed == b * (S * D * (2 * L + ACTIVATION_BYTES) + head)


def test_world_size_comes_from_the_argument_then_the_environment(monkeypatch):
    plan = lm_plan("tiny", "semantic")
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert estimate(plan).world == 4 and estimate(plan).micro_batch == 1
    assert estimate(plan, world=2).micro_batch == 2
    monkeypatch.setenv("WORLD_SIZE", "many")
    with pytest.raises(AudiolmError, match="WORLD_SIZE"):
        estimate(plan)
    with pytest.raises(AudiolmError, match="must divide"):
        estimate(plan, world=3)


def test_convolutional_parts_are_measured_and_checkpointing_leaves_them():
    codec = estimate(codec_plan("tiny"), world=1)
    assert codec.activations == codec.activations_checkpointed > 0
    semantic = estimate(semantic_plan("tiny"), world=1)
    assert 0 < semantic.activations_checkpointed < semantic.activations
    frozen = estimate(codec_plan("tiny", ["decoder_only=true"]), world=1)
    assert frozen.total == codec.total and frozen.trained < codec.trained
