"""Discriminators for adversarial codec training, kept apart from the codec model.

- `STFTDiscriminator` (SoundStream): 2-D convs over the complex STFT (real, imaginary as 2 channels).
- `MultiScaleDiscriminator` (MelGAN): grouped strided 1-D convs on the waveform at 1x, 2x, 4x pooling.
- `MultiPeriodDiscriminator` (HiFi-GAN): 2-D convs on the waveform folded into `[L / p, p]` for each period p.

Every discriminator maps `wav [B, 1, L]` to one `DiscriminatorOutput` per sub-discriminator: `logits`
(per frame, one sample's logits never depend on another sample) and `features` (each layer's activation,
for feature matching). All convolutions carry weight normalisation, as in MelGAN / HiFi-GAN; there are no
batch-statistics layers, so a batch split in halves gives the same outputs as the whole.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from audiolm.audio.dsp import stft

LEAKY_SLOPE = 0.2
# SoundStream's residual units: (channel multiplier of the unit's output, stride over time, stride over frequency).
STFT_UNITS = ((2, 1, 2), (2, 2, 2), (1, 1, 2), (2, 2, 2), (1, 1, 2), (2, 2, 2))


@dataclass
class DiscriminatorOutput:
    """One sub-discriminator's answer for a batch: `logits [B, 1, ...]` and each layer's activation `[B, C, ...]`."""

    logits: torch.Tensor
    features: list[torch.Tensor]


def _act(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, LEAKY_SLOPE)


class _STFTResidualUnit(nn.Module):
    """3x3 conv with a skip, then a (s_t + 2) x (s_f + 2) conv with stride (s_t, s_f): `[B, C, T, F]` -> `[B, m C, T', F']`."""

    def __init__(self, channels: int, multiplier: int, stride_t: int, stride_f: int) -> None:
        super().__init__()
        self.conv = weight_norm(nn.Conv2d(channels, channels, 3, padding=1))
        # padding = stride keeps at least one frame: T' = (T + s - 2) // s + 1
        self.down = weight_norm(nn.Conv2d(channels, multiplier * channels, (stride_t + 2, stride_f + 2),
                                          stride=(stride_t, stride_f), padding=(stride_t, stride_f)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _act(self.down(_act(x + self.conv(x))))


class STFTDiscriminator(nn.Module):
    """SoundStream's STFT discriminator: `wav [B, 1, L]` -> one output with logits `[B, 1, T', 1]`, T' ~ (L / hop) / 8.

    The normalised complex STFT (Hann window `n_fft`, hop `hop_length`) enters as `[B, 2, T, F]`; a 7x7 conv
    to `channels`, six residual units striding over (time, frequency) that grow the channels to 16x, and
    a conv with kernel `1 x F'` that folds the remaining frequencies into one logit per frame.
    """

    def __init__(self, channels: int = 32, n_fft: int = 1024, hop_length: int = 256) -> None:
        super().__init__()
        self.n_fft, self.hop_length = n_fft, hop_length
        self.scale = 1.0 / math.sqrt(float(torch.hann_window(n_fft).pow(2).sum()))  # unit-energy window
        self.stem = weight_norm(nn.Conv2d(2, channels, 7, padding=3))
        units, freqs = [], n_fft // 2 + 1
        for multiplier, stride_t, stride_f in STFT_UNITS:
            units.append(_STFTResidualUnit(channels, multiplier, stride_t, stride_f))
            channels, freqs = channels * multiplier, (freqs + stride_f - 2) // stride_f + 1
        self.units = nn.ModuleList(units)
        self.head = weight_norm(nn.Conv2d(channels, 1, (1, freqs)))

    def forward(self, wav: torch.Tensor) -> list[DiscriminatorOutput]:
        spec = stft(wav, self.n_fft, self.hop_length) * self.scale  # [B, 1, F, T] complex
        x = rearrange(torch.view_as_real(spec), "b 1 f t c -> b c t f")  # [B, 2, T, F]
        x = _act(self.stem(x))
        features = [x]
        for unit in self.units:
            x = unit(x)
            features.append(x)
        return [DiscriminatorOutput(logits=self.head(x), features=features)]  # logits [B, 1, T', 1]


def _channel_plan(channels: int, max_channels: int, num_layers: int) -> list[int]:
    """`channels`, then x4 per strided layer up to `max_channels`: [c, 4c, 16c, ...] (num_layers + 1 entries)."""
    return [min(channels * 4**i, max_channels) for i in range(num_layers + 1)]


class WaveDiscriminator(nn.Module):
    """MelGAN's waveform discriminator: `wav [B, 1, L]` -> logits `[B, 1, ceil(L / 4^num_layers)]`.

    conv(15) -> `channels`; `num_layers` grouped convs (kernel 41, stride 4, groups in/4) growing the channels x4
    up to `max_channels`; conv(5); conv(3) -> 1 logit per frame. Leaky ReLU after every conv but the last.
    """

    def __init__(self, channels: int = 16, max_channels: int = 1024, num_layers: int = 4) -> None:
        super().__init__()
        plan = _channel_plan(channels, max_channels, num_layers)
        layers = [weight_norm(nn.Conv1d(1, plan[0], 15, padding=7, padding_mode="reflect"))]
        for c_in, c_out in zip(plan[:-1], plan[1:]):
            groups = math.gcd(max(1, c_in // 4), c_out)
            layers.append(weight_norm(nn.Conv1d(c_in, c_out, 41, stride=4, padding=20, groups=groups)))
        layers.append(weight_norm(nn.Conv1d(plan[-1], plan[-1], 5, padding=2)))
        self.layers = nn.ModuleList(layers)
        self.head = weight_norm(nn.Conv1d(plan[-1], 1, 3, padding=1))

    def forward(self, wav: torch.Tensor) -> DiscriminatorOutput:
        x, features = wav, []
        for layer in self.layers:
            x = _act(layer(x))
            features.append(x)
        return DiscriminatorOutput(logits=self.head(x), features=features)


class MultiScaleDiscriminator(nn.Module):
    """MelGAN's multi-scale discriminator: a `WaveDiscriminator` on the waveform, then on it average-pooled by 2, 4, ...

    `wav [B, 1, L]` -> `num_scales` outputs, scale i with logits `[B, 1, ~L / (2^i 4^num_layers)]`.
    """

    def __init__(self, channels: int = 16, max_channels: int = 1024, num_scales: int = 3, num_layers: int = 4) -> None:
        super().__init__()
        self.discriminators = nn.ModuleList(WaveDiscriminator(channels, max_channels, num_layers) for _ in range(num_scales))

    def forward(self, wav: torch.Tensor) -> list[DiscriminatorOutput]:
        outputs = []
        for i, discriminator in enumerate(self.discriminators):
            if i > 0:
                wav = F.avg_pool1d(wav, 4, stride=2, padding=1, count_include_pad=False)  # [B, 1, L / 2^i]
            outputs.append(discriminator(wav))
        return outputs


class PeriodDiscriminator(nn.Module):
    """HiFi-GAN's period discriminator: `wav [B, 1, L]` folded to `[B, 1, L / p, p]` -> logits `[B, 1, ~L / (p 3^num_layers), p]`.

    `num_layers` convs (5 x 1, stride 3 x 1) growing the channels x4 up to `max_channels`, a (5 x 1) conv, a (3 x 1) conv -> 1.
    """

    def __init__(self, period: int, channels: int = 32, max_channels: int = 1024, num_layers: int = 4) -> None:
        super().__init__()
        self.period = period
        plan = [1, *_channel_plan(channels, max_channels, num_layers - 1)]
        layers = [weight_norm(nn.Conv2d(c_in, c_out, (5, 1), stride=(3, 1), padding=(2, 0))) for c_in, c_out in zip(plan[:-1], plan[1:])]
        layers.append(weight_norm(nn.Conv2d(plan[-1], plan[-1], (5, 1), padding=(2, 0))))
        self.layers = nn.ModuleList(layers)
        self.head = weight_norm(nn.Conv2d(plan[-1], 1, (3, 1), padding=(1, 0)))

    def forward(self, wav: torch.Tensor) -> DiscriminatorOutput:
        pad = -wav.shape[-1] % self.period
        x = F.pad(wav, (0, pad), mode="reflect") if pad else wav
        x = rearrange(x, "b c (t p) -> b c t p", p=self.period)  # [B, 1, L / p, p]
        features = []
        for layer in self.layers:
            x = _act(layer(x))
            features.append(x)
        return DiscriminatorOutput(logits=self.head(x), features=features)


class MultiPeriodDiscriminator(nn.Module):
    """HiFi-GAN's multi-period discriminator: one `PeriodDiscriminator` per period; `wav [B, 1, L]` -> one output each."""

    def __init__(self, periods: tuple[int, ...] = (2, 3, 5, 7, 11), channels: int = 32, max_channels: int = 1024) -> None:
        super().__init__()
        self.discriminators = nn.ModuleList(PeriodDiscriminator(p, channels, max_channels) for p in periods)

    def forward(self, wav: torch.Tensor) -> list[DiscriminatorOutput]:
        return [discriminator(wav) for discriminator in self.discriminators]


@dataclass(kw_only=True)
class DiscriminatorConfig:
    """Which discriminators to train and their widths. Defaults: SoundStream's STFT (C=32) + MelGAN's MSD; MPD off."""

    use_stft: bool = True
    use_msd: bool = True
    use_mpd: bool = False
    stft_channels: int = 32
    stft_n_fft: int = 1024
    stft_hop_length: int = 256
    msd_channels: int = 16
    msd_max_channels: int = 1024
    msd_num_scales: int = 3
    mpd_channels: int = 32
    mpd_max_channels: int = 1024
    mpd_periods: tuple[int, ...] = (2, 3, 5, 7, 11)

    def __post_init__(self) -> None:
        self.mpd_periods = tuple(self.mpd_periods)
        if not (self.use_stft or self.use_msd or self.use_mpd):
            raise ValueError("enable at least one of use_stft, use_msd, use_mpd")
        for name in ("stft_channels", "stft_n_fft", "stft_hop_length", "msd_channels", "msd_max_channels", "msd_num_scales",
                     "mpd_channels", "mpd_max_channels"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.msd_max_channels < self.msd_channels or self.mpd_max_channels < self.mpd_channels:
            raise ValueError("max channels must be at least the first layer's channels")
        if not self.mpd_periods or min(self.mpd_periods) < 2:
            raise ValueError(f"mpd_periods must be integers >= 2, got {self.mpd_periods}")

    @classmethod
    def tiny(cls, **overrides: object) -> DiscriminatorConfig:
        """All three kinds on, ~180k parameters in all: for tests and CPU smoke runs."""
        sizes: dict[str, object] = dict(use_mpd=True, stft_channels=4, msd_channels=4, msd_max_channels=32, mpd_channels=4,
                                        mpd_max_channels=32, mpd_periods=(2, 3))
        return cls(**{**sizes, **overrides})

    @property
    def min_length(self) -> int:
        """Shortest waveform accepted: the centred STFT's reflect padding needs L > n_fft / 2, the MSD's 4x-pooled conv(15) L >= 32."""
        return max(32, self.stft_n_fft // 2 + 1 if self.use_stft else 0)


class Discriminators(nn.Module):
    """All enabled discriminators: `wav [B, 1, L]` -> a flat list of outputs, STFT first, then MSD scales, then MPD periods."""

    def __init__(self, config: DiscriminatorConfig) -> None:
        super().__init__()
        self.config = config
        parts: list[nn.Module] = []
        if config.use_stft:
            parts.append(STFTDiscriminator(config.stft_channels, config.stft_n_fft, config.stft_hop_length))
        if config.use_msd:
            parts.append(MultiScaleDiscriminator(config.msd_channels, config.msd_max_channels, config.msd_num_scales))
        if config.use_mpd:
            parts.append(MultiPeriodDiscriminator(config.mpd_periods, config.mpd_channels, config.mpd_max_channels))
        self.parts = nn.ModuleList(parts)

    def forward(self, wav: torch.Tensor) -> list[DiscriminatorOutput]:
        if wav.dim() != 3 or wav.shape[1] != 1 or wav.shape[-1] < self.config.min_length:
            raise ValueError(f"expected wav [B, 1, L] with L >= {self.config.min_length}, got {list(wav.shape)}")
        return [output for part in self.parts for output in part(wav)]
