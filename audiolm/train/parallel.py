"""Training the parallel acoustic stage (SoundStorm) on token shards, through the shared loop.

The same windows as the autoregressive stages (`lm.py`: random crops of a speaker's joined utterances, drawn
from the step number), masked as `lm/parallel.py` describes, with the masks drawn from the step's generator too,
so a resumed or distributed run sees exactly the data of an uninterrupted one. `audiolm lm train --stage parallel`
(`--acoustic-only` for the baseline without semantic ids).

`parallel.level_weights` sets how often each level is the trained one (default uniform, as SoundStorm).

Validation, on the same held-out windows and masks at every validation: per level q, the cross-entropy and
accuracy of the masked level-q codes (every window evaluated at every level), and `shuffled_ce_1`: level 1's
cross-entropy with the semantic ids shuffled in time within each window (against `ce_1`, how much the stage
reads its semantic conditioning).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn

from audiolm.data.datasets import step_generator
from audiolm.errors import AudiolmError
from audiolm.lm.loss import LevelTotals
from audiolm.lm.parallel import masked_example, parallel_loss
from audiolm.train.lm import LMRunConfig, LMTask, TokenStreams

VALID_SEED = 1234
VALID_BATCH = 8


class ParallelTask(LMTask):
    def __init__(self, config: LMRunConfig, shards, fingerprints: dict | None = None) -> None:
        assert config.stage.stage == "parallel", "ParallelTask trains the parallel stage"
        weights = config.parallel.level_weights
        if weights and len(weights) != config.stage.target_levels:
            raise AudiolmError(f"parallel.level_weights: need {config.stage.target_levels} weights (one per level), got {len(weights)}")
        super().__init__(config, shards, fingerprints)

    def _windows(self, streams: TokenStreams, count: int, generator: torch.Generator) -> tuple[torch.Tensor | None, torch.Tensor]:
        """Semantic ids `[count, Ts]` (None for the acoustic-only stage) and codes `[count, Q, T]`."""
        semantic, codes = streams.windows(count, self.window, generator)
        return (semantic if self.spec.use_semantic else None), codes[:, : self.spec.target_levels]

    def batch(self, step: int, start: int, stop: int) -> dict[str, torch.Tensor]:
        generator = step_generator(self.config.train.seed, step)
        semantic, codes = self._windows(self.train_streams, self.config.train.batch_size, generator)
        weights = self.config.parallel.level_weights
        # the whole global batch: the same draws on every rank
        examples = masked_example(self.spec, semantic, codes, generator, level_weights=weights)
        return {k: v[start:stop] for k, v in examples.items()}

    def losses(self, batch: dict, models: dict[str, nn.Module], step: int) -> Iterator[tuple[str, torch.Tensor, dict[str, float]]]:
        loss, totals = parallel_loss(models["lm"], self.spec, batch)
        yield "lm", loss, totals.logs("lm/parallel")

    def _totals(self, model: nn.Module, examples: dict[str, torch.Tensor]) -> LevelTotals:
        device = next(model.parameters()).device
        totals = LevelTotals()
        for i in range(0, examples["targets"].shape[0], VALID_BATCH):
            totals.add(parallel_loss(model, self.spec, {k: v[i:i + VALID_BATCH].to(device) for k, v in examples.items()})[1])
        return totals

    @torch.no_grad()
    def validate(self, models: dict[str, nn.Module], step: int) -> dict[str, float]:
        model = models["lm"]
        generator = torch.Generator().manual_seed(VALID_SEED)
        semantic, codes = self._windows(self.valid_streams, self.config.data.valid_windows, generator)
        totals = LevelTotals()
        for level in range(self.spec.target_levels):
            level_generator = torch.Generator().manual_seed(VALID_SEED + 1 + level)
            totals.add(self._totals(model, masked_example(self.spec, semantic, codes, level_generator, level=level)))
        logs = totals.logs("lm/parallel")
        if semantic is not None:
            order = torch.rand(semantic.shape, generator=generator).argsort(dim=1)  # [B, Ts]: a shuffle per window
            shuffled = masked_example(self.spec, semantic.gather(1, order), codes, torch.Generator().manual_seed(VALID_SEED + 1), level=0)
            wrong = self._totals(model, shuffled)
            logs["lm/parallel/shuffled_ce_1"] = wrong.ce[0] / wrong.count[0]
        return logs
