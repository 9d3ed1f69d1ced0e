"""Token layouts: flatten/unflatten, id ranges per level, and each stage's inputs / targets / mask."""

import pytest
import torch

from audiolm.lm.stages import StageSpec
from audiolm.lm.tokens import flatten_codes, unflatten_codes


def test_flatten_unflatten_round_trip_and_offsets():
    codes = torch.randint(0, 16, (2, 3, 5), generator=torch.Generator().manual_seed(0))
    tokens = flatten_codes(codes, 16, offset=100)
    assert tokens.shape == (2, 15)
    assert tokens[0, :3].tolist() == [100 + codes[0, 0, 0], 116 + codes[0, 1, 0], 132 + codes[0, 2, 0]]  # frame 0, levels 0..2
    assert torch.equal(unflatten_codes(tokens, 3, 16, offset=100), codes)
    with pytest.raises(ValueError, match="outside"):
        unflatten_codes(tokens, 3, 16, offset=99)


def _window(spec: StageSpec, frames: int = 4):
    generator = torch.Generator().manual_seed(0)
    semantic = torch.randint(0, spec.semantic_vocab, (2, frames), generator=generator)
    codes = torch.randint(0, spec.codebook_size, (2, spec.num_coarse + spec.num_fine, frames * spec.ratio), generator=generator)
    return semantic, codes


def test_semantic_stage_predicts_every_semantic_id_after_bos():
    spec = StageSpec(stage="semantic", semantic_vocab=10)
    semantic, codes = _window(spec)
    ex = spec.example(semantic, codes)
    assert spec.vocab_size == 11 and ex["inputs"][:, 0].eq(10).all()
    assert torch.equal(ex["targets"], semantic) and ex["mask"].all() and ex["levels"].eq(0).all()


def test_coarse_stage_reads_semantic_then_predicts_coarse_levels_in_their_ranges():
    spec = StageSpec(stage="coarse", semantic_vocab=10, codebook_size=8, num_coarse=2, num_fine=3)
    semantic, codes = _window(spec)
    ex = spec.example(semantic, codes)
    P = semantic.shape[1] + 1
    assert ex["inputs"].shape == (2, P + 8 * 2 - 1)
    assert torch.equal(ex["inputs"][:, : P - 1], semantic) and ex["inputs"][:, P - 1].eq(spec.special).all()
    assert not ex["mask"][:, : P - 1].any() and ex["mask"][:, P - 1:].all()
    targets = ex["targets"][ex["mask"]].reshape(2, -1)
    assert torch.equal(spec.decode_targets(targets), codes[:, :2])
    for index in range(4):
        lo, hi = spec.target_range(index)
        assert ((targets[:, index] >= lo) & (targets[:, index] < hi)).all()
    assert ex["levels"][ex["mask"]].reshape(2, -1)[0, :4].tolist() == [0, 1, 0, 1]
    assert int(ex["targets"].max()) < spec.vocab_size
    baseline = StageSpec(stage="coarse", semantic_vocab=10, codebook_size=8, num_coarse=2, num_fine=3, use_semantic=False)
    ex = baseline.example(semantic, codes)
    assert ex["inputs"][:, 0].eq(baseline.special).all() and ex["mask"].all()


def test_fine_stage_reads_coarse_then_predicts_fine_levels():
    spec = StageSpec(stage="fine", semantic_vocab=10, codebook_size=8, num_coarse=2, num_fine=3)
    semantic, codes = _window(spec, frames=3)
    ex = spec.example(semantic, codes)
    T = codes.shape[2]
    P = T * 2 + 1
    assert ex["inputs"].shape == (2, P + T * 3 - 1)
    assert torch.equal(unflatten_codes(ex["inputs"][:, : P - 1], 2, 8), codes[:, :2])
    assert torch.equal(spec.decode_targets(ex["targets"][:, P - 1:]), codes[:, 2:])
    assert not ex["mask"][:, : P - 1].any() and ex["mask"][:, P - 1:].all()
    assert spec.vocab_size == 2 * 8 + 1 + 3 * 8


def test_window_sizes_and_bad_specs():
    spec = StageSpec(stage="coarse", num_coarse=3, num_fine=5)
    assert spec.window_seconds == 4.0 and spec.window_frames == 200 and spec.max_seq_len == 100 + 1 + 600
    with pytest.raises(ValueError, match="stage"):
        StageSpec(stage="medium")
    with pytest.raises(ValueError, match="multiple"):
        StageSpec(stage="semantic", semantic_rate=30, acoustic_rate=50)
    with pytest.raises(ValueError, match="dedup"):
        StageSpec(stage="coarse", dedup=True)  # only semantic ids lose their repeats
