"""audiolm.codec.discriminators: shapes, gradients, configs, and a tiny discriminator that learns on CPU."""

from __future__ import annotations

import math

import pytest
import torch

from audiolm.codec.discriminators import (
    DiscriminatorConfig,
    DiscriminatorOutput,
    Discriminators,
    MultiPeriodDiscriminator,
    MultiScaleDiscriminator,
    STFTDiscriminator,
)
from audiolm.codec.losses import hinge_discriminator_loss


def sines(batch: int, length: int, generator: torch.Generator, sample_rate: int = 16000) -> torch.Tensor:
    """Random-frequency (200 - 2000 Hz), random-phase sines of amplitude 0.5: `[B, 1, L]`."""
    freq = 200 + 1800 * torch.rand(batch, 1, 1, generator=generator)
    phase = 2 * math.pi * torch.rand(batch, 1, 1, generator=generator)
    return 0.5 * torch.sin(2 * math.pi * freq * torch.arange(length) / sample_rate + phase)


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@pytest.mark.parametrize("length", [1024, 3001, 16000])
def test_output_shapes(length: int) -> None:
    torch.manual_seed(0)
    config = DiscriminatorConfig.tiny(mpd_periods=(2, 5))
    outputs = Discriminators(config)(torch.randn(3, 1, length) * 0.1)
    assert len(outputs) == 1 + config.msd_num_scales + len(config.mpd_periods)
    assert all(isinstance(o, DiscriminatorOutput) for o in outputs)
    for output in outputs:
        assert output.logits.shape[:2] == (3, 1)
        assert output.features and all(f.shape[0] == 3 for f in output.features)

    frames = length // 256 + 1  # centred STFT frames, then six units with time strides 1, 2, 1, 2, 1, 2
    for stride in (1, 2, 1, 2, 1, 2):
        frames = (frames + stride - 2) // stride + 1
    assert outputs[0].logits.shape == (3, 1, frames, 1)
    scale_length = length
    for scale, output in enumerate(outputs[1:4]):
        scale_length = scale_length // 2 if scale else length  # avg-pool (4, stride 2, padding 1)
        assert output.logits.shape == (3, 1, ceil_div(scale_length, 4**4))
    for period, output in zip((2, 5), outputs[4:]):
        rows = ceil_div(length, period)
        for _ in range(4):
            rows = ceil_div(rows, 3)
        assert output.logits.shape == (3, 1, rows, period)


@pytest.mark.parametrize("make", [
    lambda: STFTDiscriminator(channels=4),
    lambda: MultiScaleDiscriminator(channels=4, max_channels=16),
    lambda: MultiPeriodDiscriminator(periods=(3,), channels=4, max_channels=16),
])
def test_gradient_reaches_waveform(make) -> None:
    torch.manual_seed(0)
    wav = (torch.randn(2, 1, 2000) * 0.1).requires_grad_()
    outputs = make()(wav)
    sum(o.logits.sum() + sum(f.sum() for f in o.features) for o in outputs).backward()
    assert wav.grad is not None and torch.isfinite(wav.grad).all()
    assert wav.grad[0].abs().sum() > 0 and wav.grad[1].abs().sum() > 0


def test_samples_do_not_interact() -> None:
    torch.manual_seed(0)
    discriminators = Discriminators(DiscriminatorConfig.tiny())
    wav = torch.randn(4, 1, 1500) * 0.1
    whole, first = discriminators(wav), discriminators(wav[:1])
    for a, b in zip(whole, first):
        torch.testing.assert_close(a.logits[:1], b.logits, rtol=1e-4, atol=1e-5)


def test_weight_norm_on_every_conv() -> None:
    discriminators = Discriminators(DiscriminatorConfig.tiny())
    convs = [m for m in discriminators.modules() if isinstance(m, torch.nn.Conv1d | torch.nn.Conv2d)]
    assert convs and all(hasattr(m, "parametrizations") and "weight" in m.parametrizations for m in convs)


def test_default_config_builds_and_runs() -> None:
    discriminators = Discriminators(DiscriminatorConfig())
    assert 20e6 < sum(p.numel() for p in discriminators.parameters()) < 25e6  # STFT (C=32) 5.3M + MelGAN MSD 16.9M
    with torch.no_grad():
        outputs = discriminators(torch.zeros(1, 1, 1024))
    assert len(outputs) == 4


@pytest.mark.parametrize("kwargs", [
    dict(use_stft=False, use_msd=False, use_mpd=False),
    dict(stft_channels=0),
    dict(msd_channels=64, msd_max_channels=32),
    dict(mpd_periods=(1, 2)),
    dict(mpd_periods=()),
])
def test_config_rejects(kwargs) -> None:
    with pytest.raises(ValueError):
        DiscriminatorConfig(**kwargs)


def test_config_is_keyword_only() -> None:
    with pytest.raises(TypeError):
        DiscriminatorConfig(True)  # type: ignore[misc]


@pytest.mark.parametrize("shape", [(2, 1000), (2, 2, 1000), (2, 1, 100)])
def test_rejects_bad_input(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError):
        Discriminators(DiscriminatorConfig.tiny())(torch.zeros(shape))


def test_tiny_discriminator_learns_sine_from_noise() -> None:
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    discriminators = Discriminators(DiscriminatorConfig.tiny(use_mpd=False))
    optimizer = torch.optim.Adam(discriminators.parameters(), lr=2e-3, betas=(0.5, 0.9))
    losses = []
    for _ in range(30):
        real = sines(4, 2048, generator)
        fake = 0.35 * torch.randn(4, 1, 2048, generator=generator)  # about the sines' RMS
        outputs = discriminators(torch.cat([real, fake]))
        real_outputs = [DiscriminatorOutput(logits=o.logits[:4], features=[]) for o in outputs]
        fake_outputs = [DiscriminatorOutput(logits=o.logits[4:], features=[]) for o in outputs]
        loss = hinge_discriminator_loss(real_outputs, fake_outputs)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    start, end = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert start > 1.5 and end < 0.5 * start, losses
