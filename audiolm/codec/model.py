"""The codec (SoundStream): a causal encoder, a residual vector quantizer and a decoder.

    codes = codec.encode(wav)        # wav [B, 1, L] at 16 kHz -> codes [B, K, T], T = L / hop_length
    wav = codec.decode(codes)        # codes [B, K', T] (any K' <= K levels) -> wav [B, 1, T * hop_length]

With strides 2-4-5-8 the hop is 320 samples (50 frames/s); each level of 1024 codes costs 500 bit/s,
so 12 levels are 6 kbps and quantizer dropout in training lets one model decode 1 to 12 levels.
The encoder is SoundStream's SEANet ("seanet": strided causal convolutions) or a frame-rate ConvNeXt
on a causal STFT ("stft"); the decoder is the SEANet mirror ("seanet": transposed convolutions) or a
frame-rate ConvNeXt with an inverse-STFT head ("istft", as in Vocos). benchmarks/bench_codec_architectures.py
compares them at equal CPU time.
Models are stored as `model.safetensors` + `config.json` (`save` / `Codec.load`).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from audiolm.codec.conv import remove_weight_norm
from audiolm.codec.seanet import SEANetDecoder, SEANetEncoder
from audiolm.codec.spectral import STFTEncoder
from audiolm.codec.vocos import VocosDecoder
from audiolm.errors import FileError
from audiolm.formats.atomic import write_json
from audiolm.formats.config import from_dict
from audiolm.formats.json_file import read_json
from audiolm.formats.tensors import build_module, load_module, save_module, start_model_folder
from audiolm.quantization import ResidualVQ

TRAINING_ONLY = ("embed_sum", "cluster_size")  # EMA statistics of the codebooks: not needed to encode or decode


@dataclass(kw_only=True)
class CodecConfig:
    sample_rate: int = 16000
    strides: tuple[int, ...] = (2, 4, 5, 8)  # hop_length = their product
    encoder: str = "stft"  # "stft" | "seanet"
    encoder_channels: int = 16  # seanet
    encoder_residual_units: int = 1  # seanet
    encoder_dim: int = 256  # stft
    encoder_layers: int = 4  # stft
    encoder_phase: bool = False  # stft: the encoder also sees each bin's phase (not only its magnitude)
    latent_dim: int = 128
    num_codebooks: int = 12
    codebook_size: int = 1024
    decoder: str = "istft"  # "istft" | "seanet"
    decoder_channels: int = 16  # seanet
    decoder_residual_units: int = 1  # seanet
    decoder_dim: int = 256  # istft
    decoder_layers: int = 8  # istft
    n_fft_multiple: int = 4  # istft: n_fft = hop_length * this
    ema_decay: float = 0.99
    dead_code_threshold: float = 0.1  # restart codes used less than this fraction of the average code

    def __post_init__(self) -> None:
        if self.encoder not in ("stft", "seanet"):
            raise ValueError(f"encoder must be stft or seanet, got {self.encoder!r}")
        if self.decoder not in ("istft", "seanet"):
            raise ValueError(f"decoder must be istft or seanet, got {self.decoder!r}")
        if self.num_codebooks < 1 or self.codebook_size < 2 or not self.strides:
            raise ValueError("need at least one codebook of at least 2 codes, and at least one stride")

    @property
    def hop_length(self) -> int:
        return math.prod(self.strides)

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop_length

    def bitrate(self, num_codebooks: int | None = None) -> float:
        """Bits per second for `num_codebooks` levels (all by default)."""
        return (num_codebooks or self.num_codebooks) * math.log2(self.codebook_size) * self.frame_rate

    def codebooks_for_bitrate(self, kbps: float) -> int:
        """The most levels whose bitrate is at most `kbps` (at least one)."""
        return max(1, min(self.num_codebooks, int(kbps * 1000 // self.bitrate(1))))

    def hash(self) -> str:
        """A short fingerprint of the settings that fix what codes mean."""
        settings = asdict(self)
        if not self.encoder_phase:  # added later: codecs saved before it keep their fingerprint
            del settings["encoder_phase"]
        return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class CodecOutput:
    wav: torch.Tensor  # [B, 1, L]
    codes: torch.Tensor  # [B, K, T]
    commit_loss: torch.Tensor  # scalar
    first: torch.Tensor | None = None  # [B, D, T] the first level's codes, straight-through to the encoder


class Codec(nn.Module):
    """Encoder -> residual VQ -> decoder; see the module docstring for shapes."""

    def __init__(self, config: CodecConfig) -> None:
        super().__init__()
        self.config = config
        if config.encoder == "stft":
            self.encoder: nn.Module = STFTEncoder(config.hop_length, 2 * config.hop_length, config.encoder_dim, config.encoder_layers,
                                                  config.latent_dim, config.encoder_phase)
        else:
            self.encoder = SEANetEncoder(config.encoder_channels, config.latent_dim, config.strides, config.encoder_residual_units)
        self.quantizer = ResidualVQ(config.latent_dim, config.num_codebooks, config.codebook_size,
                                    decay=config.ema_decay, threshold_dead=config.dead_code_threshold, relative_dead=True)
        if config.decoder == "istft":
            self.decoder: nn.Module = VocosDecoder(config.latent_dim, config.decoder_dim, config.decoder_layers,
                                                   config.hop_length, config.hop_length * config.n_fft_multiple)
        else:
            self.decoder = SEANetDecoder(config.decoder_channels, config.latent_dim, config.strides, config.decoder_residual_units)
        self.encoder_frozen = False

    def freeze_encoder(self) -> Codec:
        """Train the decoder only: the encoder and codebooks keep their weights (no gradients, no EMA updates,
        no restarts), so codes keep their meaning and token LMs trained on them stay valid."""
        self.encoder_frozen = True
        for p in [*self.encoder.parameters(), *self.quantizer.parameters()]:
            p.requires_grad_(False)
        return self.train(self.training)

    def train(self, mode: bool = True) -> Codec:
        super().train(mode)
        if self.encoder_frozen:
            self.encoder.eval()
            self.quantizer.eval()
        return self

    # Codec interface used by the language models: frame_rate, num_codebooks, cardinality, encode, decode.
    @property
    def frame_rate(self) -> float:
        return self.config.frame_rate

    @property
    def num_codebooks(self) -> int:
        return self.config.num_codebooks

    @property
    def cardinality(self) -> int:
        return self.config.codebook_size

    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate

    def _pad(self, wav: torch.Tensor) -> torch.Tensor:
        if wav.dim() != 3 or wav.shape[1] != 1:
            raise ValueError(f"expected wav [B, 1, L], got {tuple(wav.shape)}")
        remainder = wav.shape[-1] % self.config.hop_length
        return nn.functional.pad(wav, (0, self.config.hop_length - remainder)) if remainder else wav

    def forward(self, wav: torch.Tensor, num_quantizers: torch.Tensor | int | None = None) -> CodecOutput:
        """Training pass: `wav [B, 1, L]` (L a multiple of hop_length) -> reconstruction and codes."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.encoder_frozen):
            latents = self.encoder(self._pad(wav))  # [B, D, T]
            q = self.quantizer(latents, num_quantizers)
        return CodecOutput(self.decoder(q.quantized)[..., : wav.shape[-1]], q.codes, q.commit_loss, q.first)

    @torch.no_grad()
    def encode(self, wav: torch.Tensor, num_codebooks: int | None = None) -> torch.Tensor:
        """`wav [B, 1, L]` -> codes `[B, K, ceil(L / hop_length)]` (the input is zero-padded to whole frames)."""
        if num_codebooks is not None and not 1 <= num_codebooks <= self.num_codebooks:
            raise ValueError(f"num_codebooks must be in 1..{self.num_codebooks}, got {num_codebooks}")
        return self.quantizer.encode(self.encoder(self._pad(wav)), num_codebooks)

    @torch.no_grad()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes `[B, K', T]` -> `wav [B, 1, T * hop_length]`."""
        if codes.dim() != 3 or not 1 <= codes.shape[1] <= self.num_codebooks:
            raise ValueError(f"expected codes [B, K<={self.num_codebooks}, T], got {tuple(codes.shape)}")
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= self.cardinality):
            raise ValueError(f"codes must be in 0..{self.cardinality - 1}")
        return self.decoder(self.quantizer.decode(codes))

    def codebook_fingerprint(self) -> str:
        """A hash of the codebooks (at fp16, so fp16 and fp32 copies of one model agree): what codes mean."""
        digest = hashlib.sha256()
        for name, tensor in sorted(self.quantizer.state_dict().items()):
            if name.endswith("codebook"):
                digest.update(tensor.detach().cpu().to(torch.float16).numpy().tobytes())
        return digest.hexdigest()[:16]

    def for_inference(self) -> Codec:
        """Eval mode with weight norms folded: faster, same outputs."""
        remove_weight_norm(self.eval())
        return self

    def save(self, folder: str | Path, dtype: torch.dtype | None = None) -> Path:
        """Write `folder/model.safetensors` (weight norms folded, optionally cast, e.g. to fp16) and `folder/config.json`."""
        folder = start_model_folder(folder)
        folded = Codec(self.config)
        folded.load_state_dict({k: v.detach().cpu() for k, v in self.state_dict().items()})
        folded.for_inference()
        save_module(folded, folder / "model.safetensors", dtype=dtype, metadata={"config_hash": self.config.hash()}, skip=TRAINING_ONLY)
        write_json(folder / "config.json", {"kind": "codec", **asdict(self.config)})
        return folder

    @classmethod
    def load(cls, folder: str | Path, device: str | torch.device = "cpu") -> Codec:
        """Load a codec saved by `save` for inference (weight norms folded); bad files raise `FileError`."""
        folder = Path(folder)
        config_data = read_json(folder / "config.json")
        if config_data.pop("kind", "codec") != "codec":
            raise FileError(folder / "config.json", "is not a codec config")
        config = from_dict(CodecConfig, config_data, str(folder / "config.json"))
        codec = build_module(lambda: cls(config).for_inference(), folder / "model.safetensors", folder / "config.json")
        load_module(codec, folder / "model.safetensors", optional=TRAINING_ONLY)
        return codec.to(device)
