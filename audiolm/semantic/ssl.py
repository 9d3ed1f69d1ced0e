"""A HuBERT-style self-supervised speech encoder, small enough to train on a CPU.

    wav [B, 1, L] -> conv feature extractor (strides 5-4-4-4-2: 640 samples, 25 frames/s at 16 kHz)
                  -> projection [B, T, D] -> (masking in training) -> convolutional positions
                  -> N pre-norm Transformer blocks -> per-layer features [B, T, D]

Training (Hsu et al., 2021): spans of frames are replaced by a learned mask vector and the model
predicts, at the masked frames, the k-means cluster of each frame's target features (MFCCs in the first
iteration, an intermediate layer of the previous model in the next). `ssl_loss` is that cross-entropy.
Layer 0 is the input to the first block, layer i the output of block i (Hugging Face's `hidden_states`).
Stored as `model.safetensors` + `config.json` (`save` / `SSLEncoder.load`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from audiolm.errors import FileError
from audiolm.formats.atomic import write_json
from audiolm.formats.config import from_dict
from audiolm.formats.json_file import read_json
from audiolm.formats.tensors import build_module, load_module, save_module, start_model_folder
from audiolm.semantic.encoder import check_layer, frames_for


@dataclass(kw_only=True)
class SSLConfig:
    sample_rate: int = 16000
    conv_channels: tuple[int, ...] = (32, 64, 128, 128, 256)
    conv_kernels: tuple[int, ...] = (10, 8, 8, 8, 4)
    conv_strides: tuple[int, ...] = (5, 4, 4, 4, 2)  # hop_length = their product
    dim: int = 256
    num_layers: int = 6
    num_heads: int = 4
    ff_mult: int = 4
    dropout: float = 0.1
    pos_conv_kernel: int = 16  # frames; grouped convolution giving relative positions (wav2vec 2.0)
    pos_conv_groups: int = 16
    num_targets: int = 100  # clusters of the target features
    mask_prob: float = 0.13  # probability that a frame starts a masked span: ~50% of frames masked, as HuBERT
    mask_length: int = 5  # frames per span (HuBERT: 10 at 50 Hz = 200 ms; 5 at 25 Hz)

    def __post_init__(self) -> None:
        if not len(self.conv_channels) == len(self.conv_kernels) == len(self.conv_strides):
            raise ValueError("conv_channels, conv_kernels and conv_strides need one entry per layer")
        if self.dim % self.num_heads or self.dim % self.pos_conv_groups:
            raise ValueError("dim must be divisible by num_heads and pos_conv_groups")
        if self.num_layers < 1 or self.num_targets < 2:
            raise ValueError("need at least one layer and two targets")

    @property
    def hop_length(self) -> int:
        return math.prod(self.conv_strides)

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop_length


class ConvFeatureExtractor(nn.Module):
    """Strided 1-D convolutions on the waveform (wav2vec 2.0's, narrower): `[B, 1, L]` -> `[B, C, T]`, T = ceil(L / hop).

    The input is padded so that frame t covers samples around [t * hop, (t + 1) * hop)."""

    def __init__(self, channels: tuple[int, ...], kernels: tuple[int, ...], strides: tuple[int, ...]) -> None:
        super().__init__()
        layers, in_channels = [], 1
        for i, (c, k, s) in enumerate(zip(channels, kernels, strides)):
            norm = nn.GroupNorm(c, c) if i == 0 else nn.Identity()  # wav2vec 2.0's "group norm" on the first layer
            layers.append(nn.Sequential(nn.Conv1d(in_channels, c, k, s, bias=False), norm, nn.GELU()))
            in_channels = c
        self.layers = nn.ModuleList(layers)
        self.strides, self.kernels = strides, kernels
        self.hop_length = math.prod(strides)
        # receptive field beyond one hop, split evenly on both sides
        self.extra = sum((k - s) * math.prod(strides[:i]) for i, (k, s) in enumerate(zip(kernels, strides)))

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        frames = frames_for(wav.shape[-1], self.hop_length)
        left = self.extra // 2
        right = frames * self.hop_length + self.extra - left - wav.shape[-1]
        x = nn.functional.pad(wav, (left, right))
        for layer in self.layers:
            x = layer(x)
        return x[..., :frames]


class SSLEncoder(nn.Module):
    def __init__(self, config: SSLConfig) -> None:
        super().__init__()
        self.config = config
        self.sample_rate = config.sample_rate
        self.frame_rate = config.frame_rate
        self.num_layers = config.num_layers
        self.features = ConvFeatureExtractor(config.conv_channels, config.conv_kernels, config.conv_strides)
        self.feature_norm = nn.LayerNorm(config.conv_channels[-1])
        self.projection = nn.Linear(config.conv_channels[-1], config.dim)
        self.mask_embedding = nn.Parameter(torch.empty(config.dim).uniform_())
        self.pos_conv = nn.Conv1d(config.dim, config.dim, config.pos_conv_kernel, padding=config.pos_conv_kernel // 2,
                                  groups=config.pos_conv_groups)
        self.input_norm = nn.LayerNorm(config.dim)
        self.dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(
            nn.TransformerEncoderLayer(config.dim, config.num_heads, config.ff_mult * config.dim, config.dropout,
                                       activation="gelu", batch_first=True, norm_first=True)
            for _ in range(config.num_layers)
        )
        self.final_norm = nn.LayerNorm(config.dim)
        self.head = nn.Linear(config.dim, config.num_targets)

    def hidden_states(self, wav: torch.Tensor, mask: torch.Tensor | None = None, max_layer: int | None = None) -> list[torch.Tensor]:
        """`wav [B, 1, L]` -> `[B, T, D]` for layers 0..max_layer (all by default); `mask [B, T]` bool replaces
        those frames by the mask vector (training)."""
        assert wav.dim() == 3 and wav.shape[1] == 1, f"expected wav [B, 1, L], got {tuple(wav.shape)}"
        max_layer = self.num_layers if max_layer is None else max_layer
        x = self.features(wav).transpose(1, 2)  # [B, T, C]
        x = self.projection(self.feature_norm(x))  # [B, T, D]
        if mask is not None:
            x = torch.where(mask[..., None], self.mask_embedding.to(x.dtype), x)
        positions = self.pos_conv(x.transpose(1, 2))[..., : x.shape[1]]  # [B, D, T] (even kernel: one extra frame)
        x = self.dropout(self.input_norm(x + nn.functional.gelu(positions).transpose(1, 2)))
        states = [x]
        for block in self.blocks[:max_layer]:
            x = block(x)
            states.append(x)
        return states

    def layer_features(self, wav: torch.Tensor, layer: int) -> torch.Tensor:
        """`wav [B, 1, L]` -> features `[B, T, D]` of layer `layer` (inference: no masking, no dropout)."""
        check_layer(self, layer)
        return self.hidden_states(wav, max_layer=layer)[layer]

    def forward(self, wav: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Training pass: logits `[B, T, num_targets]` over the target clusters, from the last layer."""
        return self.head(self.final_norm(self.hidden_states(wav, mask)[-1]))

    def truncated(self, layer: int) -> SSLEncoder:
        """A copy keeping blocks 1..layer only (what a tokenizer on `layer` needs); same features."""
        check_layer(self, layer)
        config = SSLConfig(**{**asdict(self.config), "num_layers": max(1, layer)})
        copy = SSLEncoder(config)
        state = {k: v for k, v in self.state_dict().items() if not k.startswith("blocks.") or int(k.split(".")[1]) < config.num_layers}
        copy.load_state_dict(state)
        copy.num_layers = layer
        return copy.eval()

    def save(self, folder: str | Path, dtype: torch.dtype | None = None) -> Path:
        folder = start_model_folder(folder)
        save_module(self, folder / "model.safetensors", dtype=dtype)
        write_json(folder / "config.json", {"kind": "ssl-encoder", **asdict(self.config)})
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> SSLEncoder:
        folder = Path(folder)
        data = read_json(folder / "config.json")
        if data.pop("kind", None) != "ssl-encoder":
            raise FileError(folder / "config.json", "is not a self-supervised encoder config")
        config = from_dict(SSLConfig, data, str(folder / "config.json"))
        encoder = build_module(lambda: cls(config), folder / "model.safetensors", folder / "config.json")
        return load_module(encoder, folder / "model.safetensors").eval()


def span_mask(batch: int, frames: int, prob: float, length: int, generator: torch.Generator) -> torch.Tensor:
    """HuBERT/wav2vec 2.0 span masking: each frame starts a span of `length` frames with probability `prob`
    (at least one span per row), spans may overlap. Returns `[B, T]` bool."""
    starts = torch.rand(batch, frames, generator=generator) < prob
    none = ~starts.any(dim=1)
    if none.any():
        forced = torch.randint(0, max(1, frames - length + 1), (int(none.sum()),), generator=generator)
        starts[none.nonzero()[:, 0], forced] = True
    counts = nn.functional.pad(starts.long().cumsum(dim=1), (length, 0))  # [B, length + T]
    return (counts[:, length:] - counts[:, :frames]) > 0  # frame t is masked if a span started in t-length+1..t


def ssl_loss(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy over masked frames, and their accuracy: logits `[B, T, V]`, targets `[B, T]`, mask `[B, T]`."""
    picked, wanted = logits[mask], targets[mask]
    loss = nn.functional.cross_entropy(picked.float(), wanted)
    return loss, (picked.argmax(-1) == wanted).float().mean()
