"""The parallel acoustic stage: its id layout, the bidirectional Transformer, the masking schedule, a tiny model that
learns (and reads its semantic ids), and the save / load round trip."""

import math

import pytest
import torch

from audiolm.errors import FileError
from audiolm.lm.model import build_model, load_stage, save_stage, stage_fingerprints
from audiolm.lm.parallel import align_semantic, cosine_share, frame_ids, mask_code, masked_example, parallel_loss
from audiolm.lm.stages import StageSpec
from audiolm.lm.transformer import Transformer, TransformerConfig

SPEC = dict(stage="parallel", semantic_vocab=8, codebook_size=32, num_coarse=2, num_fine=2, semantic_rate=25.0,
            acoustic_rate=50.0, window_seconds=1.0)


pytestmark = pytest.mark.usefixtures("one_thread")


def _spec(**changes) -> StageSpec:
    return StageSpec(**{**SPEC, **changes})


def _model(spec: StageSpec, seed: int = 0) -> Transformer:
    torch.manual_seed(seed)
    return build_model(spec, TransformerConfig(dim=32, num_layers=2, num_heads=2))


def _windows(generator: torch.Generator, count: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """Semantic ids `[count, 25]` (25 Hz) and codes `[count, 4, 50]` that follow them: level k of frame t is
    (3 s + 5 k + t % 2) mod 32, s the frame's semantic id."""
    semantic = torch.randint(0, 8, (count, 25), generator=generator)
    aligned = semantic.repeat_interleave(2, dim=1)
    return semantic, torch.stack([(3 * aligned + 5 * k + torch.arange(50) % 2) % 32 for k in range(4)], dim=1)


def test_layout_gives_each_level_its_codes_and_a_mask_id():
    spec = _spec()
    assert spec.target_levels == 4 and spec.max_seq_len == spec.window_frames == 50
    assert spec.vocab_size == 8 + 4 * 33
    ranges = [spec.target_range(level) for level in range(4)]
    assert ranges[0] == (8, 40) and all(hi - lo == 32 for lo, hi in ranges)
    assert all(a[1] + 1 == b[0] for a, b in zip(ranges, ranges[1:]))  # the id between two ranges is a level's MASK
    assert stage_fingerprints(spec, "s", "c") == {"semantic": "s", "codec": "c"}
    assert stage_fingerprints(_spec(use_semantic=False), "s", "c") == {"codec": "c"}
    with pytest.raises(AssertionError):
        spec.example(None, torch.zeros(1, 4, 50, dtype=torch.long))  # frames, not sequences


def test_frame_ids_sum_semantic_and_codes_in_their_ranges():
    spec = _spec()
    semantic, codes = _windows(torch.Generator().manual_seed(0), 3)
    codes[:, 2:, 40:] = mask_code(spec)
    ids = frame_ids(spec, codes, semantic)  # [B, T, 1 + Q]
    assert ids.shape == (3, 50, 5)
    assert torch.equal(ids[:, :, 0], semantic.repeat_interleave(2, dim=1))  # 25 Hz ids repeated to 50 Hz
    for level in range(4):
        lo, hi = spec.target_range(level)
        assert torch.equal(ids[:, :, 1 + level] - lo, codes[:, level])
    assert (ids[:, 40:, 3] == spec.target_range(2)[1]).all()  # MASK: the id just past the level's range
    assert frame_ids(_spec(use_semantic=False), codes, None).shape == (3, 50, 4)
    assert align_semantic(_spec(semantic_rate=50.0), semantic, 20).shape == (3, 20)
    with pytest.raises(AssertionError):
        align_semantic(spec, semantic[:, :10], 50)  # too few ids for the frames


def test_bidirectional_transformer_sees_both_ways_and_the_causal_one_does_not():
    torch.manual_seed(0)
    frames = torch.randint(0, 40, (1, 30, 3))
    changed = frames.clone()
    changed[0, 20:] = (changed[0, 20:] + 1) % 40
    both = Transformer(TransformerConfig(vocab_size=40, dim=32, num_layers=2, num_heads=4, max_seq_len=64, causal=False)).eval()
    assert not torch.allclose(both(frames)[:, :20], both(changed)[:, :20])  # earlier frames read later ones
    causal = Transformer(TransformerConfig(vocab_size=40, dim=32, num_layers=2, num_heads=4, max_seq_len=64)).eval()
    causal.load_state_dict(both.state_dict())
    assert torch.allclose(causal(frames)[:, :20], causal(changed)[:, :20], atol=1e-6)
    summed = causal.embedding(frames).sum(dim=2)  # [B, S, N] ids: the embeddings of a position's ids are summed
    assert torch.allclose(causal.features(frames), _features_of(causal, summed), atol=1e-5)
    with pytest.raises(ValueError):
        both.new_cache(1, 8)


def _features_of(model: Transformer, x: torch.Tensor) -> torch.Tensor:
    for layer, block in enumerate(model.blocks):
        x = block(x, model.rotation[: x.shape[1]], None, layer)
    return model.norm(x)


def test_cosine_schedule_and_masks_follow_soundstorm():
    spec = _spec()
    u = torch.linspace(0, 1, 11)
    share = cosine_share(u)
    assert share[0] == 1 and abs(float(share[-1])) < 1e-6 and (share.diff() < 0).all()
    semantic, codes = _windows(torch.Generator().manual_seed(0), 64)
    shares = []
    for seed in range(20):
        batch = masked_example(spec, semantic, codes, torch.Generator().manual_seed(seed))
        ids, mask, q = batch["inputs"][:, :, 1:], batch["mask"], batch["levels"]  # [B, T, Q], [B, T], [B]
        masked = torch.stack([ids[:, :, k] == spec.target_range(k)[1] for k in range(4)], dim=1)  # [B, Q, T]
        for b in range(64):
            level = int(q[b])
            first = int(masked[b].any(dim=0).nonzero()[0])  # the prompt ends where the first mask is
            assert not masked[b, :, :first].any()  # the prompt: every level whole
            assert not masked[b, :level].any()  # the levels below q: whole
            assert masked[b, level + 1:, first:].all()  # the levels above q: masked after the prompt
            assert torch.equal(masked[b, level], mask[b]) and mask[b].sum() >= 1
            assert torch.equal(batch["targets"][b], codes[b, level])
            shares.append(float(mask[b].sum()) / (50 - first))
        assert torch.equal(batch["inputs"][:, :, 0], semantic.repeat_interleave(2, dim=1))  # the semantic ids never masked
    assert abs(sum(shares) / len(shares) - 2 / math.pi) < 0.05  # E[cos(pi u / 2)] = 2 / pi (plus rounding up)
    again = masked_example(spec, semantic, codes, torch.Generator().manual_seed(3))
    assert all(torch.equal(v, masked_example(spec, semantic, codes, torch.Generator().manual_seed(3))[k]) for k, v in again.items())
    fixed = masked_example(spec, semantic, codes, torch.Generator().manual_seed(0), level=2)
    assert (fixed["levels"] == 2).all()


def test_level_weights_set_how_often_each_level_is_trained():
    spec = _spec()
    semantic, codes = _windows(torch.Generator().manual_seed(0), 64)
    only_first = masked_example(spec, semantic, codes, torch.Generator().manual_seed(0), level_weights=[1, 0, 0, 0])
    assert (only_first["levels"] == 0).all()
    drawn = torch.cat([masked_example(spec, semantic, codes, torch.Generator().manual_seed(seed), level_weights=[5, 1, 1, 1])["levels"]
                       for seed in range(16)])  # 1024 windows
    share = float((drawn == 0).double().mean())
    assert 0.55 < share < 0.70 and set(drawn.tolist()) == {0, 1, 2, 3}  # 5/8 = 0.625 (binomial sd 0.015)


def test_a_tiny_model_learns_and_reads_its_semantic_ids():
    spec = _spec()
    model = _model(spec)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for step in range(60):
        generator = torch.Generator().manual_seed(step)
        loss, _ = parallel_loss(model, spec, masked_example(spec, *_windows(generator), generator))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert sum(losses[-5:]) / 5 < 0.4 * sum(losses[:5]) / 5
    model.eval()
    semantic, codes = _windows(torch.Generator().manual_seed(999), 32)
    shuffled = semantic[:, torch.randperm(25, generator=torch.Generator().manual_seed(0))]
    with torch.no_grad():
        true = parallel_loss(model, spec, masked_example(spec, semantic, codes, torch.Generator().manual_seed(5), level=0))[0]
        wrong = parallel_loss(model, spec, masked_example(spec, shuffled, codes, torch.Generator().manual_seed(5), level=0))[0]
    assert true < 0.5 * wrong  # level 1 follows the semantic ids


def test_save_load_round_trip_keeps_weights_spec_and_fingerprints(tmp_path):
    spec = _spec()
    model = _model(spec).eval()
    save_stage(tmp_path / "parallel", model, spec, {"semantic": "abc", "codec": "def"})
    loaded, loaded_spec, fingerprints = load_stage(tmp_path / "parallel")
    assert loaded_spec == spec and fingerprints == {"semantic": "abc", "codec": "def"} and not loaded.config.causal
    semantic, codes = _windows(torch.Generator().manual_seed(0), 2)
    ids = frame_ids(spec, codes, semantic)
    assert torch.equal(loaded(ids), model(ids))
    import json

    config = json.loads((tmp_path / "parallel" / "config.json").read_text())
    config["model"]["causal"] = True  # a causal model under a parallel spec is refused
    (tmp_path / "parallel" / "config.json").write_text(json.dumps(config))
    with pytest.raises(FileError, match="causal"):
        load_stage(tmp_path / "parallel")
