"""The stage loss: each level's cross-entropy over its own ids only, with totals that add up across batches."""

import torch
from torch.nn import functional as F

from audiolm.lm.loss import LevelTotals, stage_loss
from audiolm.lm.model import build_model
from audiolm.lm.stages import StageSpec
from audiolm.lm.transformer import TransformerConfig


def test_level_restricted_cross_entropy_matches_a_manual_computation():
    torch.manual_seed(0)
    spec = StageSpec(stage="coarse", semantic_vocab=6, codebook_size=8, num_coarse=2, window_seconds=0.2)
    model = build_model(spec, TransformerConfig(dim=16, num_layers=1, num_heads=2)).eval()
    batch = spec.example(torch.randint(0, 6, (3, 5)), torch.randint(0, 8, (3, 2, 10)))
    loss, totals = stage_loss(model, spec, batch)
    with torch.no_grad():
        logits = model(batch["inputs"])  # [B, S, V], all ids
    manual = []
    for b, s in batch["mask"].nonzero().tolist():
        lo, hi = spec.target_range(int(batch["levels"][b, s]))
        manual.append(-F.log_softmax(logits[b, s, lo:hi], -1)[batch["targets"][b, s] - lo])
    assert torch.allclose(loss, torch.stack(manual).mean(), atol=1e-5)
    assert totals.count == {0: 30, 1: 30} and abs(totals.mean_ce() - loss.item()) < 1e-5


def test_totals_add_up_and_log_per_level():
    a = LevelTotals(ce={0: 2.0, 1: 6.0}, count={0: 1, 1: 2}, correct={0: 1, 1: 0})
    b = LevelTotals(ce={0: 4.0}, count={0: 3}, correct={0: 1})
    logs = a.add(b).logs("lm/x")
    assert logs == {"lm/x/ce": 12.0 / 6, "lm/x/ce_1": 6.0 / 4, "lm/x/accuracy_1": 0.5, "lm/x/ce_2": 3.0, "lm/x/accuracy_2": 0.0}
