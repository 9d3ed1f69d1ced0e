"""Codec training losses: SoundStream's multi-scale mel reconstruction, hinge adversarial losses, feature matching.

Every loss is a mean over the batch of per-sample losses (no batch-wide statistics), so with distributed data
parallel, which averages gradients over ranks, the loss on each rank's equal share of a batch gives the same
gradient as the loss on the whole batch. Lists of `DiscriminatorOutput` come from `Discriminators.forward`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
from torch import nn

from audiolm.audio.dsp import LogMel, stft
from audiolm.codec.discriminators import DiscriminatorOutput

WINDOWS = (64, 128, 256, 512, 1024, 2048)  # SoundStream's scales 2^6 .. 2^11


class MultiScaleMelLoss(nn.Module):
    """SoundStream's multi-scale spectral reconstruction loss between `real [B, 1, L]` and `fake [B, 1, L]` -> scalar.

    For each window w (hop w / 4, Hann, `n_mels[i]` Slaney mel bands; default min(80, w / 4)), with S and S'
    the mel magnitudes `[B, M, T]` of real and fake (|STFT| through the filterbank) and alpha_w = sqrt(w / 2):

        L_w = mean over b, t of [ sum_m |S - S'| + alpha_w * sqrt(sum_m (log S - log S')^2) ]
        loss = mean over the windows of L_w

    That is SoundStream's eq. (per-frame L1 on mel plus alpha-weighted L2 norm of the log-mel difference),
    with a mean over frames and windows where the paper sums, so the value does not grow with the clip length.
    Log mel is floored at `eps`. The loss is symmetric in its arguments, 0 for equal inputs, and its
    gradient there is 0 (the L2 norm's subgradient at 0).
    """

    def __init__(self, sample_rate: int = 16000, windows: Sequence[int] = WINDOWS, n_mels: Sequence[int] | None = None,
                 eps: float = 1e-5) -> None:
        super().__init__()
        n_mels = [min(80, w // 4) for w in windows] if n_mels is None else list(n_mels)
        if not windows or len(n_mels) != len(windows):
            raise ValueError(f"need one n_mels per window, got windows={tuple(windows)} n_mels={tuple(n_mels)}")
        self.mels = nn.ModuleList(LogMel(sample_rate, w, max(1, w // 4), m, eps=eps) for w, m in zip(windows, n_mels))
        for mel in self.mels:
            empty = int((mel.filters.sum(dim=1) == 0).sum())
            if empty:
                raise ValueError(f"window {mel.n_fft}: {empty} of {mel.filters.shape[0]} mel bands cover no FFT bin; use fewer n_mels")
        self.alphas = [math.sqrt(w / 2) for w in windows]

    def forward(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        if real.shape != fake.shape or real.dim() != 3 or real.shape[1] != 1:
            raise ValueError(f"expected real and fake [B, 1, L] of equal shapes, got {list(real.shape)} and {list(fake.shape)}")
        both = torch.cat([real, fake]).squeeze(1)  # [2B, L]: one STFT per scale
        total = both.new_zeros(())
        for mel, alpha in zip(self.mels, self.alphas):
            magnitude = torch.matmul(mel.filters, stft(both, mel.n_fft, mel.hop_length).abs())  # [2B, M, T]
            mel_real, mel_fake = magnitude.chunk(2)
            log_diff = mel_real.clamp_min(mel.eps).log() - mel_fake.clamp_min(mel.eps).log()
            per_frame = (mel_real - mel_fake).abs().sum(dim=1) + alpha * torch.linalg.vector_norm(log_diff, dim=1)  # [B, T]
            total = total + per_frame.mean()
        return total / len(self.mels)


def _stacked(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """`real`, `fake [B, 1, L]` -> `[2B, L]` (one STFT for both), or ValueError for unequal or wrong shapes."""
    if real.shape != fake.shape or real.dim() != 3 or real.shape[1] != 1:
        raise ValueError(f"expected real and fake [B, 1, L] of equal shapes, got {list(real.shape)} and {list(fake.shape)}")
    return torch.cat([real, fake]).squeeze(1)


class MultiResolutionSTFTLoss(nn.Module):
    """Linear-frequency STFT magnitude loss at several resolutions (Parallel WaveGAN's), `real`, `fake [B, 1, L]` -> scalar.

    Mel bands above 1 kHz are wider than the spacing of a voice's harmonics, so a mel loss does not see harmonics
    smeared there; this loss does. For each (n_fft, hop) and each sample b, with X and Y the magnitudes of real and
    fake: spectral convergence ||X - Y||_F / ||X||_F plus the mean |log X - log Y| (floored at `eps`); means over
    samples, then over resolutions. 0 for equal inputs; per-sample, so a batch's loss is the mean of its parts'.
    """

    def __init__(self, resolutions: Sequence[tuple[int, int]] = ((512, 128), (1024, 256), (2048, 512)), eps: float = 1e-5) -> None:
        super().__init__()
        if not resolutions:
            raise ValueError("need at least one (n_fft, hop) resolution")
        self.resolutions = [(int(n), int(h)) for n, h in resolutions]
        self.eps = eps

    def forward(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        both = _stacked(real, fake)
        total = both.new_zeros(())
        for n_fft, hop in self.resolutions:
            mag_real, mag_fake = stft(both, n_fft, hop).abs().chunk(2)  # [B, F, T]
            convergence = torch.linalg.vector_norm((mag_real - mag_fake).flatten(1), dim=1) / \
                torch.linalg.vector_norm(mag_real.flatten(1), dim=1).clamp_min(self.eps)
            log_l1 = (mag_real.clamp_min(self.eps).log() - mag_fake.clamp_min(self.eps).log()).abs().flatten(1).mean(dim=1)
            total = total + (convergence + log_l1).mean()
        return total / len(self.resolutions)


class CompressedComplexSTFTLoss(nn.Module):
    """A phase-sensitive spectral loss, `real`, `fake [B, 1, L]` -> scalar (Braun & Tashev's power-law compressed
    complex loss): each STFT bin becomes |X|^c e^(i phase X) (c = 0.3, so quiet bins still count), and the loss is
    the mean squared distance of real and fake bins, averaged over resolutions. Magnitude losses (mel, STFT) are
    blind to phase; this one is 0 only for equal spectra, so the decoder learns the phase the codes carry.
    """

    def __init__(self, resolutions: Sequence[tuple[int, int]] = ((320, 80), (640, 160), (1280, 320)), power: float = 0.3,
                 eps: float = 1e-8) -> None:
        super().__init__()
        if not resolutions:
            raise ValueError("need at least one (n_fft, hop) resolution")
        if not 0 < power <= 1:
            raise ValueError(f"power must be in (0, 1], got {power}")
        self.resolutions = [(int(n), int(h)) for n, h in resolutions]
        self.power, self.eps = power, eps

    def forward(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        both = _stacked(real, fake)
        total = both.new_zeros(())
        for n_fft, hop in self.resolutions:
            spec = torch.view_as_real(stft(both, n_fft, hop))  # [2B, F, T, 2]
            magnitude = spec.square().sum(-1, keepdim=True).add(self.eps).sqrt()  # smooth at 0
            compressed = spec * magnitude.pow(self.power - 1)  # |X|^c with the phase of X
            spec_real, spec_fake = compressed.chunk(2)
            total = total + (spec_real - spec_fake).square().sum(-1).mean()
        return total / len(self.resolutions)


def _mean_over_discriminators(values: list[torch.Tensor]) -> torch.Tensor:
    if not values:
        raise ValueError("no discriminator outputs")
    return torch.stack(values).mean()


def _check_paired(real_outputs: Sequence[DiscriminatorOutput], fake_outputs: Sequence[DiscriminatorOutput]) -> None:
    if len(real_outputs) != len(fake_outputs):
        raise ValueError(f"{len(real_outputs)} real outputs but {len(fake_outputs)} fake outputs")


def hinge_discriminator_loss(real_outputs: Sequence[DiscriminatorOutput], fake_outputs: Sequence[DiscriminatorOutput]) -> torch.Tensor:
    """SoundStream's discriminator loss: mean over discriminators k of mean(relu(1 - D_k(x))) + mean(relu(1 + D_k(G(x)))).

    Each mean runs over a discriminator's logits `[B, 1, ...]`. 0 when real logits are >= 1 and fake <= -1;
    2 when every logit is 0. Pass fake outputs of a detached `G(x)` when training the discriminators.
    """
    _check_paired(real_outputs, fake_outputs)
    return _mean_over_discriminators([
        torch.relu(1 - real.logits).mean() + torch.relu(1 + fake.logits).mean() for real, fake in zip(real_outputs, fake_outputs)
    ])


def hinge_generator_loss(fake_outputs: Sequence[DiscriminatorOutput]) -> torch.Tensor:
    """SoundStream's adversarial generator loss: mean over discriminators k of mean(relu(1 - D_k(G(x)))); 0 once fake logits >= 1."""
    return _mean_over_discriminators([torch.relu(1 - fake.logits).mean() for fake in fake_outputs])


def feature_matching_loss(real_outputs: Sequence[DiscriminatorOutput], fake_outputs: Sequence[DiscriminatorOutput],
                          eps: float = 1e-8) -> torch.Tensor:
    """Relative L1 between the discriminators' features on real and fake audio, as in EnCodec.

    For discriminator k, layer l and sample b, with r = D_k^l(x)_b detached and f = D_k^l(G(x))_b:
    mean|f - r| / mean|r| (means over the feature map's elements). The loss averages that over samples,
    then over layers, then over discriminators. Normalising per sample, not over the batch, keeps the batch-mean
    property. 0 when the features agree, 1 when the fake features are all 0.
    """
    _check_paired(real_outputs, fake_outputs)
    per_discriminator = []
    for real, fake in zip(real_outputs, fake_outputs):
        if len(real.features) != len(fake.features):
            raise ValueError(f"{len(real.features)} real features but {len(fake.features)} fake features")
        layers = []
        for feat_real, feat_fake in zip(real.features, fake.features):
            feat_real = feat_real.detach().flatten(1)  # [B, N]
            distance = (feat_fake.flatten(1) - feat_real).abs().mean(dim=1)  # [B]
            layers.append((distance / feat_real.abs().mean(dim=1).clamp_min(eps)).mean())
        per_discriminator.append(torch.stack(layers).mean())
    return _mean_over_discriminators(per_discriminator)


LOSS_KEYS = {"mel": "codec/mel", "stft": "codec/stft", "complex": "codec/complex", "adversarial": "codec/adv",
             "feature_matching": "codec/feat", "commitment": "vq/commit", "distill": "codec/distill"}


@dataclass(kw_only=True)
class LossWeights:
    """Weights of the codec generator's loss terms; `as_dict()` gives them under the namespaced keys of `LOSS_KEYS`.

    SoundStream: lambda_rec = 1, lambda_adv = 1, lambda_feat = 100 on an unnormalised feature L1. Our feature loss
    is relative (divided by mean|real feature|, about 0.01 - 0.04 for the default discriminators at
    initialisation), so SoundStream's 100 x unnormalised L1 is about 3 x ours: feature_matching = 3.0, which is
    also EnCodec's lambda_feat for this normalisation. `MultiScaleMelLoss` is a per-frame mean (SoundStream sums
    over frames); on a 1 s harmonic test signal it is ~570 against white noise, ~410 at 20 dB SNR and ~13 for a
    0.9 gain, so at weight 1 it stays far above the hinge terms (~1), as reconstruction does in SoundStream.
    Commitment 1.0 is EnCodec's lambda_w. `stft` weighs `MultiResolutionSTFTLoss` (off by default; its value is
    about 1 - 3 where the mel loss is about 50 - 100). `complex` weighs `CompressedComplexSTFTLoss`, the one term
    that sees phase (off by default). `distill` weighs the cross-entropy of the semantic tokenizer's ids predicted
    from the first level (codec/distill.py; about 2 - 4.6 nats for K = 100, off by default).
    """

    mel: float = 1.0
    stft: float = 0.0
    complex: float = 0.0
    adversarial: float = 1.0
    feature_matching: float = 3.0
    commitment: float = 1.0
    distill: float = 0.0  # semantic distillation into the first level (codec/distill.py; needs distill_tokenizer)

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not (value >= 0 and math.isfinite(value)):
                raise ValueError(f"loss weight {name} must be finite and >= 0, got {value}")

    def as_dict(self) -> dict[str, float]:
        """{"codec/mel": ..., "codec/stft": ..., "codec/adv": ..., "codec/feat": ..., "vq/commit": ...}"""
        return {LOSS_KEYS[name]: value for name, value in asdict(self).items()}
