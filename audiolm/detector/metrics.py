"""How well scores separate generated (label 1) from original (label 0) audio: accuracy at a threshold, the equal
error rate and the area under the ROC curve (AUC: the chance that a generated item outscores an original, ties half)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import mannwhitneyu

from audiolm.eval.speaker import equal_error_rate


@dataclass(frozen=True)
class BinaryMetrics:
    accuracy: float
    eer: float
    auc: float
    count: int


def binary_metrics(scores: np.ndarray, labels: np.ndarray, threshold: float = 0.0) -> BinaryMetrics:
    """`scores [N]` (higher: more likely generated; logits, so the default threshold is P = 0.5) of items `labels [N]`
    (0/1, both present)."""
    scores, labels = np.asarray(scores, np.float64), np.asarray(labels)
    positive, negative = scores[labels == 1], scores[labels == 0]
    if not len(positive) or not len(negative):
        raise ValueError("detector metrics need both generated and original items")
    accuracy = float(np.mean((scores > threshold) == (labels == 1)))
    auc = float(mannwhitneyu(positive, negative).statistic / (len(positive) * len(negative)))
    return BinaryMetrics(accuracy, equal_error_rate(positive, negative), auc, len(scores))
