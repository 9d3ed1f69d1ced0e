"""Count-table estimates of one discrete stream from another, for benchmarks that measure what tokens share."""

from __future__ import annotations

import torch


def witten_bell(given: torch.Tensor, target: torch.Tensor, num_given: int, num_target: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Tables from paired ids `[N]`, `[N]`: p(target | given) `[num_given, num_target]`, smoothed by Witten-Bell
    interpolation (p(t | g) = (n(g, t) + u(g) p(t)) / (n(g) + u(g)), u(g) the distinct targets seen after g), and
    the add-one smoothed unigram p(target) `[num_target]`."""
    joint = torch.zeros(num_given, num_target, dtype=torch.float64)
    joint.index_put_((given, target), torch.ones(len(given), dtype=torch.float64), accumulate=True)
    unigram = (joint.sum(0) + 1) / (joint.sum() + num_target)
    distinct = joint.gt(0).sum(1, keepdim=True).clamp(min=1)
    return (joint + distinct * unigram) / (joint.sum(1, keepdim=True) + distinct), unigram
