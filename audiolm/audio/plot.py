"""Pictures of audio: log-mel spectrograms stacked one above the other, saved as a PNG."""

from __future__ import annotations

from pathlib import Path

import torch

from audiolm.audio.dsp import LogMel
from audiolm.formats.atomic import atomic_path


def plot_spectrograms(wavs: dict[str, torch.Tensor], sample_rate: int, path: str | Path, hop_length: int = 160) -> Path:
    """Draw each named waveform (`[1, L]` or `[L]`) as a log-mel spectrogram on a shared time axis. Safe to call from
    several threads at once (`audiolm serve`): a `Figure` of its own, no pyplot state."""
    from matplotlib.figure import Figure

    mel = LogMel(sample_rate, n_fft=1024, hop_length=hop_length, n_mels=80)
    longest = max(w.shape[-1] for w in wavs.values()) / sample_rate
    fig = Figure(figsize=(10, 2.2 * len(wavs)))
    axes = fig.subplots(len(wavs), 1, squeeze=False)
    for ax, (name, wav) in zip(axes[:, 0], wavs.items()):
        spec = mel(wav.reshape(-1)).numpy()
        ax.imshow(spec, origin="lower", aspect="auto", cmap="magma", extent=(0, wav.shape[-1] / sample_rate, 0, spec.shape[0]))
        ax.set_xlim(0, longest)
        ax.set_title(name, fontsize=9, loc="left")
        ax.set_ylabel("mel bin")
    axes[-1, 0].set_xlabel("seconds")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format=Path(path).suffix.lstrip(".") or "png")
    return Path(path)
