"""audiolm.codec.losses: multi-scale mel loss, hinge and feature-matching losses, loss weights, batch-mean reduction."""

from __future__ import annotations

import math

import pytest
import torch

from audiolm.codec.discriminators import DiscriminatorConfig, DiscriminatorOutput, Discriminators
from audiolm.codec.losses import (
    CompressedComplexSTFTLoss,
    LossWeights,
    MultiResolutionSTFTLoss,
    MultiScaleMelLoss,
    feature_matching_loss,
    hinge_discriminator_loss,
    hinge_generator_loss,
)

SR = 16000


@pytest.fixture(scope="module")
def mel_loss() -> MultiScaleMelLoss:
    return MultiScaleMelLoss(SR)


def harmonic(batch: int = 2, length: int = 4000, f0: float = 150.0) -> torch.Tensor:
    """A decaying harmonic tone `[B, 1, L]`, a different f0 per sample."""
    t = torch.arange(length) / SR
    f = f0 * (1 + torch.arange(batch).reshape(batch, 1, 1) / 4)
    wave = sum(torch.sin(2 * math.pi * k * f * t) / k for k in range(1, 8))
    return 0.3 * wave * torch.exp(-2 * t)


def add_noise(wav: torch.Tensor, snr_db: float, seed: int = 0) -> torch.Tensor:
    noise = torch.randn(wav.shape, generator=torch.Generator().manual_seed(seed))
    return wav + noise * wav.pow(2).mean().sqrt() * 10 ** (-snr_db / 20)


def outputs(*logits: torch.Tensor, features: list[list[torch.Tensor]] | None = None) -> list[DiscriminatorOutput]:
    features = features or [[] for _ in logits]
    return [DiscriminatorOutput(logits=x, features=f) for x, f in zip(logits, features)]


# --- multi-scale mel -------------------------------------------------------------------------------


def test_mel_default_scales(mel_loss: MultiScaleMelLoss) -> None:
    assert [(m.n_fft, m.hop_length, m.filters.shape[0]) for m in mel_loss.mels] == [
        (64, 16, 16), (128, 32, 32), (256, 64, 64), (512, 128, 80), (1024, 256, 80), (2048, 512, 80)]
    assert mel_loss.alphas == pytest.approx([math.sqrt(w / 2) for w in (64, 128, 256, 512, 1024, 2048)])


def test_mel_zero_for_identical_inputs_with_zero_gradient(mel_loss: MultiScaleMelLoss) -> None:
    real = harmonic()
    fake = real.clone().requires_grad_()
    loss = mel_loss(real, fake)
    loss.backward()
    # real and fake share one batched FFT whose rows may round differently on another CPU: inputs 1 ulp apart cost
    # ~3e-5 of a 40 dB SNR's loss (and a large but finite gradient, the log-norm term being steep at 0)
    assert loss.item() <= 0.1 * mel_loss(real, add_noise(real, 40)).item()
    assert torch.isfinite(fake.grad).all()
    if loss.item() == 0.0:  # bit-identical spectra, as on the CPUs seen so far: the gradient vanishes too
        assert fake.grad.abs().max() == 0


def test_mel_grows_with_noise_and_is_symmetric(mel_loss: MultiScaleMelLoss) -> None:
    real = harmonic()
    values = [mel_loss(real, add_noise(real, snr)).item() for snr in (40, 30, 20, 10, 0)]
    assert values[0] > 0 and all(a < b for a, b in zip(values, values[1:])), values
    noisy = add_noise(real, 20)
    # swapped rows of the batched FFT may round differently; 1 ulp of input moves this loss by ~2e-5 of it
    torch.testing.assert_close(mel_loss(real, noisy), mel_loss(noisy, real), rtol=1e-4, atol=0)


def test_mel_gradient_reaches_fake(mel_loss: MultiScaleMelLoss) -> None:
    real = harmonic()
    fake = add_noise(real, 10).requires_grad_()
    mel_loss(real, fake).backward()
    assert torch.isfinite(fake.grad).all() and fake.grad.abs().sum() > 0


def test_mel_rejects_bad_arguments(mel_loss: MultiScaleMelLoss) -> None:
    with pytest.raises(ValueError):
        mel_loss(torch.zeros(2, 1, 4000), torch.zeros(2, 1, 3000))
    with pytest.raises(ValueError):
        mel_loss(torch.zeros(2, 4000), torch.zeros(2, 4000))
    with pytest.raises(ValueError):
        MultiScaleMelLoss(SR, windows=(256, 512), n_mels=(64,))
    with pytest.raises(ValueError, match="cover no FFT bin"):
        MultiScaleMelLoss(SR, windows=(64,), n_mels=(64,))


# --- hinge and feature matching ----------------------------------------------------------------------


@pytest.mark.parametrize(("real", "fake", "expected"), [(2.0, -2.0, 0.0), (0.0, 0.0, 2.0), (-1.0, 1.0, 4.0), (1.0, 0.5, 1.5)])
def test_hinge_discriminator_values(real: float, fake: float, expected: float) -> None:
    loss = hinge_discriminator_loss(outputs(torch.full((2, 1, 5), real)), outputs(torch.full((2, 1, 5), fake)))
    assert loss.item() == pytest.approx(expected)


@pytest.mark.parametrize(("fake", "expected"), [(2.0, 0.0), (1.0, 0.0), (0.0, 1.0), (-1.0, 2.0)])
def test_hinge_generator_values(fake: float, expected: float) -> None:
    assert hinge_generator_loss(outputs(torch.full((2, 1, 5, 3), fake))).item() == pytest.approx(expected)


def test_hinge_averages_over_discriminators_not_logits() -> None:
    fake = outputs(torch.zeros(2, 1, 100), torch.full((2, 1, 3), 2.0))  # a long and a short discriminator
    assert hinge_generator_loss(fake).item() == pytest.approx(0.5)
    real = outputs(torch.full((2, 1, 100), 2.0), torch.zeros(2, 1, 3))
    assert hinge_discriminator_loss(real, fake).item() == pytest.approx((1.0 + 4.0) / 2)


def test_feature_matching_values_and_gradients() -> None:
    torch.manual_seed(0)
    real_features = [torch.randn(2, 4, 10, requires_grad=True), torch.randn(2, 8, 5, 3, requires_grad=True)]
    real = outputs(torch.zeros(2, 1, 10), features=[real_features])
    same = outputs(torch.zeros(2, 1, 10), features=[[f.detach().clone() for f in real_features]])
    assert feature_matching_loss(real, same).item() == 0.0
    zeros = [torch.zeros_like(f, requires_grad=True) for f in real_features]
    loss = feature_matching_loss(real, outputs(torch.zeros(2, 1, 10), features=[zeros]))
    assert loss.item() == pytest.approx(1.0)  # |0 - r| / |r|
    loss.backward()
    assert all(f.grad is None for f in real_features) and all(z.grad.abs().sum() > 0 for z in zeros)


def test_feature_matching_is_relative_to_the_real_scale() -> None:
    torch.manual_seed(0)
    real_features = [torch.randn(2, 4, 10)]
    fake_features = [real_features[0] + 0.1 * torch.randn(2, 4, 10)]
    base = feature_matching_loss(outputs(torch.zeros(2, 1, 1), features=[real_features]),
                                 outputs(torch.zeros(2, 1, 1), features=[fake_features]))
    scaled = feature_matching_loss(outputs(torch.zeros(2, 1, 1), features=[[100 * real_features[0]]]),
                                   outputs(torch.zeros(2, 1, 1), features=[[100 * fake_features[0]]]))
    torch.testing.assert_close(base, scaled)


def test_generator_losses_reach_fake_waveform() -> None:
    torch.manual_seed(0)
    discriminators = Discriminators(DiscriminatorConfig.tiny())
    real = harmonic(batch=2, length=2000)
    fake = add_noise(real, 10).requires_grad_()
    real_out, fake_out = discriminators(real), discriminators(fake)
    (hinge_generator_loss(fake_out) + feature_matching_loss(real_out, fake_out)).backward()
    assert torch.isfinite(fake.grad).all() and fake.grad.abs().sum() > 0


def test_losses_reject_unpaired_outputs() -> None:
    with pytest.raises(ValueError):
        hinge_discriminator_loss(outputs(torch.zeros(1, 1, 2)), [])
    with pytest.raises(ValueError):
        feature_matching_loss(outputs(torch.zeros(1, 1, 2), features=[[torch.ones(1, 2)]]), outputs(torch.zeros(1, 1, 2)))


# --- multi-resolution linear STFT -------------------------------------------------------------------


def test_stft_loss_zero_for_identical_inputs_and_grows_with_noise() -> None:
    loss = MultiResolutionSTFTLoss()
    real = harmonic()
    values = [loss(real, add_noise(real, snr)).item() for snr in (40, 20, 0)]
    # one batched FFT for both: inputs 1 ulp apart cost ~1.2e-3 of the 40 dB value (log of near-floor bins)
    assert loss(real, real.clone()).item() <= 0.1 * values[0]
    assert values[0] > 0 and values[0] < values[1] < values[2], values
    fake = add_noise(real, 10).requires_grad_()
    loss(real, fake).backward()
    assert torch.isfinite(fake.grad).all() and fake.grad.abs().sum() > 0
    with pytest.raises(ValueError):
        loss(torch.zeros(2, 1, 4000), torch.zeros(2, 1, 3000))
    with pytest.raises(ValueError):
        MultiResolutionSTFTLoss(resolutions=())


def test_stft_loss_sees_harmonics_the_mel_loss_blurs(mel_loss: MultiScaleMelLoss) -> None:
    """Harmonics 12-29 of 150 Hz (1.8-4.4 kHz) moved by half their spacing keep each mel band's energy:
    the mel loss sees a small part of what 20 dB of noise costs, the linear STFT loss most of it."""
    t = torch.arange(SR) / SR

    def tone(shift: float) -> torch.Tensor:
        return 0.05 * sum(torch.sin(2 * math.pi * (k * 150 + shift) * t + k) for k in range(12, 30)).reshape(1, 1, -1)

    real, shifted = tone(0.0), tone(75.0)
    noisy = add_noise(real, 20)
    stft_loss = MultiResolutionSTFTLoss()
    mel_ratio = (mel_loss(real, shifted) / mel_loss(real, noisy)).item()
    stft_ratio = (stft_loss(real, shifted) / stft_loss(real, noisy)).item()
    assert stft_ratio > 2 * mel_ratio, (stft_ratio, mel_ratio)


def test_complex_loss_sees_phase_the_magnitude_losses_miss() -> None:
    """A signal with each harmonic's phase changed has the same magnitudes: the STFT magnitude loss barely moves,
    the compressed complex loss does (more than for 20 dB of noise); it is 0 for equal inputs and differentiable."""
    t = torch.arange(SR) / SR

    def tone(phases: list[float]) -> torch.Tensor:
        return 0.05 * sum(torch.sin(2 * math.pi * k * 150 * t + p) for k, p in zip(range(1, 20), phases)).reshape(1, 1, -1)

    real = tone([0.0] * 19)
    shifted = tone([1.0 + 0.3 * k for k in range(19)])
    noisy = add_noise(real, 20)
    loss = CompressedComplexSTFTLoss()
    # equal inputs: 0 up to float rounding (the FFT of two equal rows of a batch may round differently, and
    # |X|^0.3 magnifies a rounding error of a quiet bin ~200x): far below what any real difference costs
    assert loss(real, real.clone()).item() < 1e-6 * loss(real, noisy).item()
    assert loss(real, shifted).item() > loss(real, noisy).item() > 0
    magnitude = MultiResolutionSTFTLoss()
    assert magnitude(real, shifted).item() < 0.5 * magnitude(real, noisy).item()
    fake = shifted.clone().requires_grad_()
    loss(real, fake).backward()
    assert torch.isfinite(fake.grad).all() and fake.grad.abs().sum() > 0
    silent = torch.zeros(1, 1, 4000, requires_grad=True)
    loss(torch.zeros(1, 1, 4000), silent).backward()  # |X|^0.3 is smoothed at 0: no NaN gradient on silence
    assert torch.isfinite(silent.grad).all()
    with pytest.raises(ValueError):
        CompressedComplexSTFTLoss(power=0.0)


# --- batch mean: a batch's loss is the mean of its halves' (what data parallel assumes) -------------


def test_losses_are_batch_means(mel_loss: MultiScaleMelLoss) -> None:
    torch.manual_seed(0)
    discriminators = Discriminators(DiscriminatorConfig.tiny()).eval()
    real = harmonic(batch=4, length=3000)
    fake = add_noise(real, 10) * torch.tensor([1.0, 0.5, 2.0, 0.8]).reshape(4, 1, 1)  # halves that differ

    def all_losses(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            real_out, fake_out = discriminators(real), discriminators(fake)
            return torch.stack([mel_loss(real, fake), MultiResolutionSTFTLoss()(real, fake),
                                CompressedComplexSTFTLoss()(real, fake), hinge_discriminator_loss(real_out, fake_out),
                                hinge_generator_loss(fake_out), feature_matching_loss(real_out, fake_out)])

    whole = all_losses(real, fake)
    halves = (all_losses(real[:2], fake[:2]) + all_losses(real[2:], fake[2:])) / 2
    assert (whole > 0).all()
    torch.testing.assert_close(whole, halves, rtol=1e-4, atol=1e-6)  # 1 ulp of input moves these by <= 1e-5 relative


# --- weights -------------------------------------------------------------------------------------------


def test_loss_weights() -> None:
    assert LossWeights().as_dict() == {"codec/mel": 1.0, "codec/stft": 0.0, "codec/complex": 0.0, "codec/adv": 1.0, "codec/feat": 3.0,
                                       "vq/commit": 1.0, "codec/distill": 0.0}
    assert LossWeights(adversarial=0.0).as_dict()["codec/adv"] == 0.0
    with pytest.raises(ValueError):
        LossWeights(mel=-1.0)
    with pytest.raises(ValueError):
        LossWeights(feature_matching=math.nan)
    with pytest.raises(TypeError):
        LossWeights(1.0)  # type: ignore[misc]
