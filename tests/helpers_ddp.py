"""Comparing a two-process (torchrun) training run with a one-process run of the same global batches.

Why not an elementwise tolerance: the two runs average the same gradient in a different order (two half-batch
means all-reduced vs one mean of the whole batch; and every CPU's vector width orders its kernels' sums its own
way), so gradients agree only to rounding. AdamW divides each gradient by its own RMS: a weight whose gradient is
itself near rounding level (e.g. codec encoder weights fed by near-silent STFT bins, gradients ~1e-8, Adam's eps)
takes a step anywhere in [-lr, lr] that rounding decides. Such an element can differ by up to 2 * lr per step on
some CPU (measured 5.5e-6 here on AVX-512, 2.2e-5 reported on another AVX-512 CPU, against atol=2e-5), and an
elementwise tolerance at 2 * lr * steps would catch nothing: every Adam step is within lr whatever gradient it follows.

What rounding cannot do is move many weights. Per module (the first component of a tensor's name), the two runs'
difference must stay below `max_ratio` (10%) of how far the one-process weights moved in the last step (each weight
with a live gradient contributes ~lr to that). Measured here: <= 4.3e-4 of it on the tiny codec (encoder; 1e-4 the
discriminators, 2e-6 the quantizer's EMA buffers), <= 1.4e-6 on the tiny LM. Reaching 10% takes ~1% of a module's
weights stepping the other way. A run that ignores the second process's data, or never all-reduces the gradients,
steps along another gradient everywhere: measured 0.65-0.86 per codec module, 0.40-0.81 per LM module, so such bugs
fail by a factor >= 4.

Summed instead of averaged gradients leave the weights alone (Adam and norm clipping do not see a gradient's scale),
so the logged pre-clip gradient norms (`grad_norm/*`, one sum over all gradients per step, where rounding moves
~1e-5 of it) must agree within `grad_rtol` = 1e-3: a sum over 2 processes doubles them, wrong data moves them ~10%.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors.torch import load_file


def checkpoint(run_dir: Path, step: int, files: Sequence[str]) -> dict[str, torch.Tensor]:
    """The tensors of `files` (e.g. "codec.safetensors") at `step`, each name prefixed by its file's stem."""
    folder = run_dir / "checkpoints" / f"step_{step:08d}"
    return {f"{Path(f).name.split('.')[0]}/{k}": v for f in files for k, v in load_file(str(folder / f)).items()}


def grad_norms(run_dir: Path) -> dict[tuple[int, str], float]:
    records = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines() if line.strip()]
    return {(r["step"], k): v for r in records for k, v in r.items() if k.startswith("grad_norm/")}


def assert_same_training(one: Path, two: Path, step: int, files: Sequence[str], max_ratio: float = 0.1,
                         grad_rtol: float = 1e-3) -> dict[str, float]:
    """`two` (torchrun) trained like `one` (one process) up to `step`; `one` must hold checkpoints at step - 1 and
    step. Returns each module's ||one - two|| / ||one - one at step - 1||."""
    a, b, before = checkpoint(one, step, files), checkpoint(two, step, files), checkpoint(one, step - 1, files)
    assert a.keys() == b.keys()
    groups: dict[str, list[str]] = {}
    for key in a:
        assert torch.isfinite(b[key].float()).all(), key
        if a[key].is_floating_point():
            groups.setdefault(key.split(".")[0], []).append(key)
        else:  # step counters, flags: exact
            assert torch.equal(a[key], b[key]), key
    ratios = {}
    for group, keys in groups.items():
        diff = torch.cat([(a[k] - b[k]).flatten() for k in keys]).norm()
        moved = torch.cat([(a[k] - before[k]).flatten() for k in keys]).norm()
        if moved > 0:  # a module that did not train (e.g. a discriminator before it starts) must not move either
            ratios[group] = float(diff / moved)
        else:
            assert diff == 0, group
    assert all(r <= max_ratio for r in ratios.values()), ratios
    norms_a, norms_b = grad_norms(one), grad_norms(two)
    assert norms_a.keys() == norms_b.keys() and norms_a
    for key, value in norms_a.items():
        assert abs(norms_b[key] - value) <= grad_rtol * abs(value), (key, value, norms_b[key])
    return ratios
