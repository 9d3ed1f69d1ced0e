"""Coarse generation with aligned positions: the KV-cached windows sample what an uncached model does on the window's
sequence with its positions (started afresh in each window, as in training), in PyTorch's step and the fused one."""

import pytest
import torch

from audiolm.generation.generate import _window_start, generate_coarse
from audiolm.generation.sampling import Sampling
from audiolm.lm.model import build_model
from audiolm.lm.stages import StageSpec
from audiolm.lm.transformer import TransformerConfig

pytestmark = pytest.mark.usefixtures("one_thread")

SPEC = StageSpec(stage="coarse", semantic_vocab=8, codebook_size=16, num_coarse=2, num_fine=1, window_seconds=0.4,
                 semantic_rate=25.0, acoustic_rate=50.0, aligned_positions=True)  # windows of 10 semantic ids, 20 frames


def _model():
    torch.manual_seed(0)
    model = build_model(SPEC, TransformerConfig(dim=32, num_layers=2, num_heads=4)).eval()
    with torch.no_grad():
        for block in model.blocks:  # sharp attention, so that positions matter
            block.qkv[:, :64] *= 8
    return model


@torch.inference_mode()
def _uncached(model, semantic: torch.Tensor, known: torch.Tensor, end: int) -> torch.Tensor:
    """Greedy coarse frames known.shape[2]..end of the window that generate_coarse opens there: each token from a full
    forward pass over the window's sequence, at its aligned positions."""
    done = known.shape[2]
    start = _window_start(done, end, SPEC.window_frames, SPEC.ratio)
    condition = semantic[:, start // SPEC.ratio: -(-end // SPEC.ratio)]
    sequence = torch.cat([SPEC.prefix(condition), SPEC.targets(codes=known[:, :, start:])], dim=1)
    first = sequence.shape[1]
    for index in range((done - start) * SPEC.num_coarse, (end - start) * SPEC.num_coarse):
        lo, hi = SPEC.target_range(index)
        logits = model(sequence, positions=SPEC.positions(condition.shape[1], sequence.shape[1]))[:, -1, lo:hi]
        sequence = torch.cat([sequence, logits.argmax(-1, keepdim=True) + lo], dim=1)
    return SPEC.decode_targets(sequence[:, first:])


@pytest.mark.parametrize("fused", ["1", "0"])
@pytest.mark.parametrize("done", [0, 6, 16])  # 16 of 30 frames: the window starts at frame 6, past the first one
def test_cached_aligned_windows_equal_uncached_ones(monkeypatch, fused, done):
    monkeypatch.setenv("AUDIOLM_FUSED_STEP", fused)
    model = _model()
    generator = torch.Generator().manual_seed(1)
    semantic = torch.randint(0, 8, (2, 15), generator=generator)
    known = torch.randint(0, 16, (2, 2, done), generator=generator)
    end = min(30, _window_start(done, 30, SPEC.window_frames, SPEC.ratio) + SPEC.window_frames)
    codes = generate_coarse(model, SPEC, semantic, known, end, Sampling(temperature=0))
    assert torch.equal(codes[:, :, :done], known)
    assert torch.equal(codes[:, :, done:], _uncached(model, semantic, known, end))


def test_aligned_generation_runs_past_the_training_window():
    model = _model()
    semantic = torch.randint(0, 8, (1, 40), generator=torch.Generator().manual_seed(2))
    codes = generate_coarse(model, SPEC, semantic, torch.zeros(1, 2, 0, dtype=torch.long), 80, Sampling(temperature=0.9),
                            torch.Generator().manual_seed(0))
    assert codes.shape == (1, 2, 80) and int(codes.max()) < 16  # four training windows' worth


def test_auto_takes_the_fused_step_once_a_process_has_asked_for_enough_steps(monkeypatch):
    from audiolm.generation import generate

    monkeypatch.setattr(generate, "_steps_asked", 0)
    monkeypatch.setenv("AUDIOLM_FUSED_STEP", "auto")
    assert not generate._fused_wanted(350)  # a parallel-stage continuation's semantic steps: PyTorch
    generate.expect_steps(generate.FUSED_AFTER_STEPS)  # the pipeline announces an AR stage's steps
    assert generate._fused_wanted(10)
    monkeypatch.setenv("AUDIOLM_FUSED_STEP", "0")
    assert not generate._fused_wanted(10_000)
    monkeypatch.setattr(generate, "_steps_asked", 0)
    monkeypatch.setenv("AUDIOLM_FUSED_STEP", "1")
    assert generate._fused_wanted(1)
