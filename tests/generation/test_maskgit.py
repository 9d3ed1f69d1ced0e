"""Decoding the parallel stage: the unmasking schedule, the prompt kept exactly, shapes and id ranges past the
training window, seeded determinism, the forward passes the settings ask for, classifier-free guidance."""

from dataclasses import replace

import pytest
import torch

from audiolm.generation.maskgit import ParallelSampling, ParallelStats, decode_window, generate_parallel, guided, unmasking_schedule
from audiolm.generation.sampling import Sampling
from audiolm.lm.model import build_model
from audiolm.lm.parallel import frame_ids, level_logits, mask_code
from audiolm.lm.stages import StageSpec
from audiolm.lm.transformer import TransformerConfig

pytestmark = pytest.mark.usefixtures("one_thread")


def _stage(use_semantic: bool = True):
    spec = StageSpec(stage="parallel", semantic_vocab=8, codebook_size=32, num_coarse=2, num_fine=2, semantic_rate=25.0,
                     acoustic_rate=50.0, window_seconds=1.0, use_semantic=use_semantic)
    torch.manual_seed(0)
    return build_model(spec, TransformerConfig(dim=32, num_layers=2, num_heads=2)).eval(), spec


def test_unmasking_schedule_is_cosine_and_unmasks_everything():
    for frames in (1, 7, 50, 200):
        for iterations in (1, 2, 16):
            counts = unmasking_schedule(frames, iterations)
            assert len(counts) == iterations and sum(counts) == frames and min(counts) >= 0
    assert unmasking_schedule(100, 4) == [8, 22, 32, 38]  # 100 cos(pi k / 8) left: 92, 70, 38, 0
    assert unmasking_schedule(50, 1) == [50]


@pytest.mark.parametrize("use_semantic", [True, False])
def test_generation_keeps_the_prompt_and_gives_codes_in_range_past_the_window(use_semantic):
    model, spec = _stage(use_semantic)
    prompt = torch.randint(0, 32, (3, 4, 30), generator=torch.Generator().manual_seed(0))
    semantic = torch.randint(0, 8, (3, 65), generator=torch.Generator().manual_seed(1)) if use_semantic else None
    stats = ParallelStats()
    codes = generate_parallel(model, spec, semantic, prompt, 130, ParallelSampling(), torch.Generator().manual_seed(2), stats=stats)
    assert codes.shape == (3, 4, 130) and codes.dtype == torch.long
    assert int(codes.min()) >= 0 and int(codes.max()) < 32  # no MASK left, every code in its level's range
    assert torch.equal(codes[:, :, :30], prompt)  # the prompt's codes, every level, exactly
    assert stats.windows == 3  # 50-frame windows, a quarter (12 frames, then whole semantic frames) known: 18-68, 56-106, 80-130
    again = generate_parallel(model, spec, semantic, prompt, 130, ParallelSampling(), torch.Generator().manual_seed(2))
    assert torch.equal(codes, again)  # seeded
    other = generate_parallel(model, spec, semantic, prompt, 130, ParallelSampling(), torch.Generator().manual_seed(3))
    assert not torch.equal(codes, other)


def test_no_prompt_fewer_levels_and_one_short_window():
    model, spec = _stage()
    semantic = torch.randint(0, 8, (2, 20), generator=torch.Generator().manual_seed(1))
    stats = ParallelStats()
    empty = torch.zeros(2, 4, 0, dtype=torch.long)
    sampling = ParallelSampling(iterations=(4, 2, 1))
    codes = generate_parallel(model, spec, semantic, empty, 40, sampling, torch.Generator().manual_seed(0), num_levels=3, stats=stats)
    assert codes.shape == (2, 3, 40) and 0 <= int(codes.min()) and int(codes.max()) < 32
    assert stats.windows == 1 and stats.forward_passes == 4 + 2 + 1  # one pass per iteration, per level
    with pytest.raises(ValueError):
        generate_parallel(model, spec, semantic, empty, 50, sampling)  # 50 frames need 25 semantic ids


def test_each_pass_unmasks_its_share_and_the_known_frames_stay():
    model, spec = _stage()
    codes = torch.randint(0, 32, (2, 4, 50), generator=torch.Generator().manual_seed(0))
    semantic = torch.randint(0, 8, (2, 25), generator=torch.Generator().manual_seed(1))
    greedy = ParallelSampling(iterations=(3, 1), first=Sampling(temperature=0.0), choice_temperature=0.0)
    out = decode_window(model, spec, semantic, codes, 20, greedy, num_levels=1)
    assert torch.equal(out[:, :, :20], codes[:, :, :20])
    assert (out[:, 0, 20:] < 32).all() and (out[:, 1:, 20:] == mask_code(spec)).all()  # later levels not decoded yet
    one_pass = decode_window(model, spec, semantic, codes, 20, ParallelSampling(iterations=(1,), first=Sampling(temperature=0.0)),
                             num_levels=1)
    masked = codes.clone()
    masked[:, :, 20:] = mask_code(spec)
    with torch.no_grad():
        logits = level_logits(model, spec, model.features(frame_ids(spec, masked, semantic)), 0)  # [B, T, C]
    assert torch.equal(one_pass[:, 0, 20:], logits[:, 20:].argmax(-1))  # one greedy pass: every frame's argmax at once


def test_any_length_and_prompt_length_ends_with_whole_windows():
    model, spec = _stage()  # ratio 2: windows start at whole semantic frames
    semantic = torch.randint(0, 8, (1, 51), generator=torch.Generator().manual_seed(1))
    codes = torch.randint(0, 32, (1, 4, 101), generator=torch.Generator().manual_seed(0))
    for num_frames, prompt in ((101, 100), (101, 99), (77, 3), (51, 0), (50, 50)):
        out = generate_parallel(model, spec, semantic, codes[:, :, :prompt], num_frames, ParallelSampling(iterations=(2, 1)))
        assert out.shape == (1, 4, num_frames) and torch.equal(out[:, :, :prompt], codes[:, :, :prompt])
        assert int(out.max()) < 32


def test_guidance_weighs_the_semantic_stage_against_the_acoustic_only_one():
    conditional = torch.tensor([[2.0, 1.0, 0.0]])
    unconditional = torch.tensor([[3.0, 0.0, 0.0]])
    assert torch.allclose(guided(conditional, unconditional, 0.0), conditional.log_softmax(-1))  # w = 0: the stage itself
    two = guided(conditional, unconditional, 2.0)
    c, u = conditional.log_softmax(-1), unconditional.log_softmax(-1)
    assert torch.allclose(two, 3 * c - 2 * u)
    assert int(two.argmax()) == 1  # the code the semantic ids favour over the acoustic context alone wins


def test_guided_decoding_costs_a_pass_of_the_acoustic_only_stage_per_guided_iteration():
    model, spec = _stage()
    free, free_spec = _stage(use_semantic=False)
    semantic = torch.randint(0, 8, (2, 25), generator=torch.Generator().manual_seed(1))
    empty = torch.zeros(2, 4, 0, dtype=torch.long)
    plain, guided_stats = ParallelStats(), ParallelStats()
    base = ParallelSampling(iterations=(4, 1), first=Sampling(temperature=0.0), choice_temperature=0.0)
    unguided = generate_parallel(model, spec, semantic, empty, 50, base, stats=plain, unconditional=(free, free_spec))
    assert plain.forward_passes == 4 + 3  # guidance 0: the acoustic-only stage is never run
    assert torch.equal(unguided, generate_parallel(model, spec, semantic, empty, 50, base))
    strong = ParallelSampling(iterations=(4, 1), first=Sampling(temperature=0.0), choice_temperature=0.0, guidance=3.0)
    codes = generate_parallel(model, spec, semantic, empty, 50, strong, stats=guided_stats, unconditional=(free, free_spec))
    assert guided_stats.forward_passes == 2 * 4 + 3  # level 1 guided (guidance_levels=1), twice the passes
    assert codes.shape == (2, 4, 50) and 0 <= int(codes.min()) and int(codes.max()) < 32
    assert not torch.equal(codes[:, 0], unguided[:, 0])  # guidance changes level 1's draws
    one_pass = replace(strong, iterations=(1,))
    first = generate_parallel(model, spec, semantic, empty, 50, one_pass, num_levels=1, unconditional=(free, free_spec))
    with torch.no_grad():
        masked = torch.full((2, 4, 50), mask_code(spec))
        c = level_logits(model, spec, model.features(frame_ids(spec, masked, semantic)), 0)
        u = level_logits(free, free_spec, free.features(frame_ids(free_spec, masked, None)), 0)
    assert torch.equal(first[:, 0], guided(c, u, 3.0).argmax(-1))  # one greedy guided pass: the guided argmax
    with pytest.raises(AssertionError):
        generate_parallel(model, spec, semantic, empty, 50, strong, unconditional=(model, spec))  # not acoustic-only
    with pytest.raises(ValueError):
        ParallelSampling(guidance=-1.0)


def test_given_levels_stay_as_given_and_only_the_later_levels_are_decoded():
    model, spec = _stage()
    semantic = torch.randint(0, 8, (2, 65), generator=torch.Generator().manual_seed(1))
    given = torch.randint(0, 32, (2, 1, 130), generator=torch.Generator().manual_seed(2))
    empty = torch.zeros(2, 4, 0, dtype=torch.long)
    stats = ParallelStats()
    codes = generate_parallel(model, spec, semantic, empty, 130, ParallelSampling(iterations=(4, 1)), torch.Generator().manual_seed(0),
                              stats=stats, given=given)
    assert torch.equal(codes[:, :1], given) and 0 <= int(codes.min()) and int(codes.max()) < 32
    assert stats.forward_passes == 3 * stats.windows  # level 1 never decoded: one pass for each of the 3 later levels
    with pytest.raises(AssertionError):
        generate_parallel(model, spec, semantic, empty, 130, given=torch.zeros(2, 4, 130, dtype=torch.long))  # nothing left
