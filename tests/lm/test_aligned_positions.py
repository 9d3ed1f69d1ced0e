"""The coarse stage's aligned positions (`StageSpec.aligned_positions`): the layout, KV-cached steps (PyTorch and fused)
continuing explicit positions equal a full forward pass, the loss passes them through DDP, and old configs load."""

import json

import pytest
import torch
from torch.nn import functional as F

from audiolm.generation.generate import _step
from audiolm.lm import fused_step as fused
from audiolm.lm.loss import stage_loss
from audiolm.lm.model import build_model, load_stage, save_stage
from audiolm.lm.stages import StageSpec
from audiolm.lm.transformer import Transformer, TransformerConfig

pytestmark = pytest.mark.usefixtures("one_thread")


def _spec(**changes) -> StageSpec:
    """Q' = 3, 2 acoustic frames per semantic frame, windows of 10 semantic ids and 20 frames."""
    return StageSpec(**{"stage": "coarse", "semantic_vocab": 8, "codebook_size": 16, "num_coarse": 3, "num_fine": 1,
                        "window_seconds": 0.4, "semantic_rate": 25.0, "acoustic_rate": 50.0, "aligned_positions": True, **changes})


def _window(spec: StageSpec, batch: int = 2, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    frames = spec.window_frames
    return (torch.randint(0, spec.semantic_vocab, (batch, frames // spec.ratio), generator=generator),
            torch.randint(0, spec.codebook_size, (batch, spec.num_coarse, frames), generator=generator))


def _model(spec: StageSpec) -> Transformer:
    """A tiny random model whose attention is sharp enough (scaled query / key weights) that positions change its logits."""
    torch.manual_seed(0)
    model = build_model(spec, TransformerConfig(dim=32, num_layers=2, num_heads=4)).eval()
    with torch.no_grad():
        for block in model.blocks:
            block.qkv[:, : 2 * 32] *= 8
    return model


def _tolerance(model: Transformer, reference: torch.Tensor) -> float:
    """Float32 rounding between two summation orders of the same logits (batched vs one token, different kernels): a
    length-n dot product is off by at most about n * eps of the magnitude of its terms; n is the model's longest
    reduction (the MLP's hidden size), accumulated once per layer, relative to the logits' magnitude."""
    longest = int(model.config.ff_mult * model.config.dim)
    return torch.finfo(torch.float32).eps * longest * model.config.num_layers * max(1.0, float(reference.detach().abs().max()))


def test_an_acoustic_token_sits_a_constant_distance_from_its_semantic_id():
    spec = _spec()
    semantic, codes = _window(spec)
    Ts, Q, r = semantic.shape[1], spec.num_coarse, spec.ratio
    positions = spec.positions(Ts, Ts + 1 + spec.window_frames * Q)
    assert positions.shape == (spec.max_seq_len,) and int(positions.max()) < spec.max_seq_len
    assert positions[Ts] == 0  # SEP
    acoustic = positions[Ts + 1:].reshape(-1, Q)  # [T, Q']: frame f, level l at 1 + f * Q' + l
    assert torch.equal(acoustic, 1 + torch.arange(spec.window_frames)[:, None] * Q + torch.arange(Q))
    distance = acoustic - positions[:Ts].repeat_interleave(r)[:, None]  # each frame against its aligned semantic id
    assert torch.equal(distance, (torch.arange(spec.window_frames) % r)[:, None] * Q + torch.arange(Q))  # whatever f
    assert torch.equal(spec.positions(Ts, 4), positions[:4])
    example = spec.example(semantic, codes)
    assert torch.equal(example["positions"], positions[:-1].expand(2, -1))  # the inputs' positions, one row per window
    assert example["positions"][1:].shape == (1, spec.max_seq_len - 1)  # slices like the rest of the batch
    for other in (_spec(aligned_positions=False), _spec(use_semantic=False), _spec(stage="fine"), _spec(stage="semantic")):
        assert other.positions(Ts, 10) is None and not other.aligned_positions
    assert "positions" not in _spec(aligned_positions=False).example(semantic, codes)
    assert "positions" not in _spec(use_semantic=False).example(None, codes)


def _prefill_then_steps(spec: StageSpec, model: Transformer, semantic: torch.Tensor, codes: torch.Tensor, known: int,
                        make_step) -> tuple[torch.Tensor, torch.Tensor]:
    """(full-forward logits of every coarse token after the first `known`, the same from a prefill then one-token steps)."""
    example = spec.example(semantic, codes)
    inputs = example["inputs"]
    with torch.inference_mode():
        full = model(inputs, positions=example["positions"][0])  # [B, S-1, V]
        P = semantic.shape[1] + 1 + known  # semantic ids, SEP, the known coarse tokens
        cache = model.new_cache(inputs.shape[0], inputs.shape[1])
        first = model(inputs[:, :P], cache, positions=spec.positions(semantic.shape[1], P))[:, -1]
        assert cache.offset == -semantic.shape[1]
        step = make_step(model, cache)
        steps = [first] + [step(inputs[:, i], 0, spec.vocab_size) for i in range(P, inputs.shape[1])]
    return full[:, P - 1:], torch.stack(steps, dim=1)


@pytest.mark.parametrize("path", ["pytorch", "fused"])
def test_cached_steps_after_aligned_positions_equal_a_full_forward(path):
    if path == "fused" and not fused.available():
        pytest.skip("numba is not importable")
    spec = _spec()
    model = _model(spec)
    semantic, codes = _window(spec)
    make_step = fused.fused_step if path == "fused" else (lambda model, cache: lambda ids, lo, hi: _step(model, cache, ids, lo, hi))
    for known in (0, 7):
        full, cached = _prefill_then_steps(spec, model, semantic, codes, known, make_step)
        tolerance = _tolerance(model, full)
        torch.testing.assert_close(cached, full, atol=tolerance, rtol=0)
    with torch.inference_mode():  # the positions matter: the sequence index gives other logits
        plain = model(spec.example(semantic, codes)["inputs"])[:, -full.shape[1]:]
    assert (plain - full).abs().max() > 100 * tolerance


def test_a_ddp_wrapped_model_gets_the_aligned_positions(tmp_path):
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    spec = _spec()
    model = _model(spec)
    batch = spec.example(*_window(spec))
    bare, _ = stage_loss(model, spec, batch)
    unaligned, _ = stage_loss(model, spec, {k: v for k, v in batch.items() if k != "positions"})
    dist.init_process_group("gloo", store=dist.FileStore(str(tmp_path / "store"), 1), rank=0, world_size=1)
    try:
        wrapped, totals = stage_loss(DistributedDataParallel(model), spec, batch)
    finally:
        dist.destroy_process_group()
    tolerance = _tolerance(model, bare)
    assert abs(wrapped.item() - bare.item()) <= tolerance < abs(unaligned.item() - bare.item())
    assert set(totals.count) == {0, 1, 2}


def test_a_stage_saved_without_the_key_loads_with_plain_positions(tmp_path):
    spec = _spec(aligned_positions=False)
    save_stage(tmp_path / "model", _model(spec), spec)
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    del config["stage"]["aligned_positions"]  # as saved before the key existed
    (tmp_path / "model" / "config.json").write_text(json.dumps(config))
    _, loaded, _ = load_stage(tmp_path / "model")
    assert loaded == spec and not loaded.aligned_positions
    aligned = _spec()
    save_stage(tmp_path / "aligned", _model(aligned), aligned)
    assert load_stage(tmp_path / "aligned")[1].aligned_positions


def test_positions_outside_the_rotary_table_or_of_the_wrong_shape_are_refused():
    model = Transformer(TransformerConfig(vocab_size=10, dim=16, num_layers=1, num_heads=2, max_seq_len=8)).eval()
    tokens = torch.zeros(2, 4, dtype=torch.long)
    with pytest.raises(ValueError, match="rotary|positions must be in"):
        model(tokens, positions=torch.tensor([0, 1, 2, 8]))
    with pytest.raises(ValueError, match="positions must be"):
        model(tokens, positions=torch.arange(3))
    with pytest.raises(ValueError, match="positions must be"):
        model(tokens, model.new_cache(2, 8), positions=torch.arange(4).expand(2, -1))
    torch.testing.assert_close(model(tokens, positions=torch.arange(4).expand(2, -1)), model(tokens))
    cache = model.new_cache(2, 8)
    model(tokens, cache, positions=torch.tensor([4, 5, 6, 7]))
    with pytest.raises(ValueError, match="rotary"):
        model(tokens[:, :1], cache)  # position 8: past the table though the cache has room
    logits = F.linear(model.features(tokens[:, :1], model.new_cache(2, 8), positions=torch.tensor([3]))[:, -1], model.head.weight)
    torch.testing.assert_close(logits, model(tokens)[:, 3], atol=_tolerance(model, logits), rtol=0)  # same token, same position
