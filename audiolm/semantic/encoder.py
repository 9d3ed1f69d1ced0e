"""What a semantic tokenizer needs from a speech encoder, and the MFCC baseline.

Any model that turns `wav [B, 1, L]` at `sample_rate` into per-layer features `[B, T, D]` at
`frame_rate` can be tokenized: our own self-supervised encoder (`ssl.py`), a Hugging Face checkpoint
(`pretrained.py`), or MFCCs (here, the baseline of the ABX table). Layer 0 is the input to the first
Transformer block and layer i the output of block i, as in Hugging Face's `hidden_states`.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import nn

from audiolm.audio.dsp import LogMel


@runtime_checkable
class FeatureEncoder(Protocol):
    sample_rate: int
    frame_rate: float
    num_layers: int  # layers 0..num_layers can be asked for (an encoder with `available_layers` only those)

    def layer_features(self, wav: torch.Tensor, layer: int) -> torch.Tensor:
        """`wav [B, 1, L]` -> features `[B, T, D]` of layer `layer`; frame t is centred near t / frame_rate s and
        T is about L * frame_rate / sample_rate (ours: rounded up; Hugging Face models: a frame or two fewer)."""
        ...


def check_layer(encoder: FeatureEncoder, layer: int) -> None:
    """A ValueError unless `encoder` gives `layer`: one of 0..num_layers, or of `available_layers` where an encoder
    exposes only some (Whisper through CTranslate2: its last)."""
    available = getattr(encoder, "available_layers", None)
    if available is not None and layer not in available:
        raise ValueError(f"layer {layer} is not available: this encoder exposes only layer(s) {', '.join(map(str, available))}")
    if not 0 <= layer <= encoder.num_layers:
        raise ValueError(f"layer {layer} out of range: this encoder has layers 0..{encoder.num_layers}")


def frames_for(num_samples: int, hop_length: int) -> int:
    """Frames an encoder with hop `hop_length` gives for `num_samples` samples (a partial last hop counts)."""
    return -(-num_samples // hop_length)


class MFCCEncoder(nn.Module):
    """MFCCs with deltas and delta-deltas (39 dims; HuBERT's first-iteration targets). One "layer" (0).

    `stack` > 1 concatenates that many consecutive frames (39 * stack dims at frame_rate / stack), e.g.
    stack=2 gives 25 Hz features for a 25 Hz encoder's targets."""

    num_layers = 0

    def __init__(self, sample_rate: int = 16000, hop_length: int = 320, n_mfcc: int = 13, n_mels: int = 40, stack: int = 1) -> None:
        super().__init__()
        self.sample_rate = sample_rate
        self.hop_length = hop_length
        self.stack = stack
        self.frame_rate = sample_rate / (hop_length * stack)
        self.log_mel = LogMel(sample_rate, n_fft=400 if hop_length <= 400 else 2 * hop_length, hop_length=hop_length,
                              n_mels=n_mels, power=2.0, eps=1e-6)
        n = torch.arange(n_mels, dtype=torch.float64)
        k = torch.arange(n_mfcc, dtype=torch.float64)[:, None]
        dct = torch.cos(torch.pi / n_mels * (n + 0.5) * k) * (2.0 / n_mels) ** 0.5  # orthonormal DCT-II rows
        dct[0] /= 2**0.5
        self.register_buffer("dct", dct.float(), persistent=False)

    @staticmethod
    def _delta(x: torch.Tensor) -> torch.Tensor:
        """Regression deltas over +-2 frames of `[B, D, T]`."""
        padded = nn.functional.pad(x, (2, 2), mode="replicate")
        return (2 * (padded[..., 4:] - padded[..., :-4]) + (padded[..., 3:-1] - padded[..., 1:-3])) / 10

    def layer_features(self, wav: torch.Tensor, layer: int = 0) -> torch.Tensor:
        check_layer(self, layer)
        assert wav.dim() == 3 and wav.shape[1] == 1, f"expected wav [B, 1, L], got {tuple(wav.shape)}"
        frames = frames_for(wav.shape[-1], self.hop_length * self.stack)
        wav = nn.functional.pad(wav, (0, max(0, self.log_mel.n_fft - wav.shape[-1])))  # very short input: the STFT needs a window
        mel = self.log_mel(wav[:, 0])  # [B, M, T']
        mfcc = torch.einsum("km,bmt->bkt", self.dct, mel)
        d1 = self._delta(mfcc)
        feats = torch.cat([mfcc, d1, self._delta(d1)], dim=1)  # [B, 3 * n_mfcc, T']
        feats = nn.functional.pad(feats, (0, frames * self.stack - feats.shape[-1]), mode="replicate")[..., : frames * self.stack]
        return feats.transpose(1, 2).reshape(feats.shape[0], frames, -1)  # [B, T, stack * 3 * n_mfcc]
