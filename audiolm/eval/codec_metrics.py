"""Objective quality of a degraded waveform against its reference: PESQ-wb, STOI, ViSQOL, mel distance, SI-SDR.

Shapes: every function takes mono 16 kHz waveforms as numpy `[L]` or `[1, L]`, or torch `[L]` or `[1, L]`,
float in [-1, 1]. The reference always comes first. Metrics that compare sample by sample (STOI, mel
distance, SI-SDR) use the common length `min(len(reference), len(degraded))`; call `align` first (or
`evaluate`, which does) when the degraded signal is delayed, as codec2's and Opus's outputs are.

| key            | range, better      | what                                                               |
|----------------|--------------------|--------------------------------------------------------------------|
| `pesq_wb`      | 1.04 .. 4.64, high | ITU-T P.862.2 wide-band PESQ (MOS-LQO); NaN where PESQ gives up    |
| `stoi`         | 0 .. 1, high       | short-time objective intelligibility (classic, not extended)       |
| `visqol`       | 1 .. 5, high       | ViSQOL v3 speech mode (MOS-LQO), deep-lattice mapper               |
| `mel_distance` | >= 0, low          | mean absolute difference of natural-log mel spectrograms           |
| `si_sdr`       | dB, high           | scale-invariant signal-to-distortion ratio                          |
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.fft
import scipy.signal
import torch

from audiolm.audio.dsp import LogMel

if TYPE_CHECKING:
    from visqol import VisqolApi

SAMPLE_RATE = 16000
METRICS = ("pesq_wb", "stoi", "visqol", "mel_distance", "si_sdr")
MAX_SHIFT = 4000  # samples (250 ms at 16 kHz): well past codec2's and Opus's delays
MEL_N_FFT, MEL_HOP_LENGTH, MEL_N_MELS, MEL_EPS = 1024, 256, 80, 1e-5
SI_SDR_EPS = 1e-12
ENVELOPE_SMOOTHING = 16  # samples (1 ms) of Hann smoothing on the envelope used to find the delay
REFINE_SHIFT = 16  # samples either side of the envelope's delay searched on the waveform

Waveform = np.ndarray | torch.Tensor


def to_mono_numpy(wav: Waveform) -> np.ndarray:
    """`[L]` or `[1, L]` numpy or torch -> a float64 numpy `[L]`."""
    data = wav.detach().cpu().double().numpy() if isinstance(wav, torch.Tensor) else np.asarray(wav, dtype=np.float64)
    if data.ndim == 2 and data.shape[0] == 1:
        data = data[0]
    if data.ndim != 1:
        raise ValueError(f"expected a mono waveform [L] or [1, L], got shape {tuple(data.shape)}")
    return data


def _common(reference: Waveform, degraded: Waveform) -> tuple[np.ndarray, np.ndarray]:
    ref, deg = to_mono_numpy(reference), to_mono_numpy(degraded)
    length = min(len(ref), len(deg))
    return ref[:length], deg[:length]


def _envelope(wav: np.ndarray) -> np.ndarray:
    """Hilbert magnitude smoothed over about 1 ms, mean removed: keeps timing, drops the phase vocoders discard."""
    size = scipy.fft.next_fast_len(len(wav))
    magnitude = np.abs(scipy.signal.hilbert(wav, size))[: len(wav)]
    kernel = np.hanning(ENVELOPE_SMOOTHING + 2)[1:-1]
    smooth = np.convolve(magnitude, kernel / kernel.sum(), mode="same")
    return smooth - smooth.mean()


def _best_lag(reference: np.ndarray, degraded: np.ndarray, low: int, high: int) -> int:
    corr = scipy.signal.correlate(degraded, reference, mode="full", method="fft")
    lags = scipy.signal.correlation_lags(len(degraded), len(reference), mode="full")
    window = (lags >= low) & (lags <= high)
    return int(lags[window][np.argmax(corr[window])])


def estimate_delay(reference: Waveform, degraded: Waveform, max_shift: int = MAX_SHIFT) -> int:
    """Samples by which `degraded` lags `reference` (negative when it leads), |delay| <= `max_shift`.

    Two FFT cross-correlations: of the envelopes first (codec2 and other vocoders do not keep the
    waveform's phase, so their waveform correlation peaks anywhere), then of the waveforms within
    `REFINE_SHIFT` samples of that, which is exact for a delayed copy. `degraded[n + delay]` matches
    `reference[n]`; 0 when either signal is silent.
    """
    ref, deg = to_mono_numpy(reference), to_mono_numpy(degraded)
    if not (np.any(ref) and np.any(deg)):
        return 0
    coarse = _best_lag(_envelope(ref), _envelope(deg), -max_shift, max_shift)
    low, high = max(coarse - REFINE_SHIFT, -max_shift), min(coarse + REFINE_SHIFT, max_shift)
    return _best_lag(ref, deg, low, high)


def align(reference: Waveform, degraded: Waveform, max_shift: int = MAX_SHIFT) -> tuple[np.ndarray, np.ndarray]:
    """Undo the delay of `degraded` (see `estimate_delay`) and trim both to the overlap: two float64 `[L']`."""
    ref, deg = to_mono_numpy(reference), to_mono_numpy(degraded)
    delay = estimate_delay(ref, deg, max_shift)
    if delay >= 0:
        deg = deg[delay:]
    else:
        ref = ref[-delay:]
    length = min(len(ref), len(deg))
    return ref[:length], deg[:length]


def pesq_wb(reference: Waveform, degraded: Waveform) -> float:
    """Wide-band PESQ at 16 kHz; NaN when PESQ cannot score the pair (no utterances, too short)."""
    from pesq import PesqError, pesq

    ref, deg = to_mono_numpy(reference), to_mono_numpy(degraded)
    if not np.any(ref):
        return math.nan  # PESQ would divide by a zero peak, then find no utterance
    try:
        return float(pesq(SAMPLE_RATE, ref, deg, "wb"))
    except PesqError:
        return math.nan


def stoi(reference: Waveform, degraded: Waveform) -> float:
    """Classic STOI (Taal et al. 2011) over the common length; pystoi resamples to 10 kHz itself."""
    from pystoi import stoi as pystoi_stoi

    ref, deg = _common(reference, degraded)
    return float(pystoi_stoi(ref, deg, SAMPLE_RATE, extended=False))


@functools.lru_cache(maxsize=2)
def _visqol_api(use_lattice_model: bool) -> VisqolApi:
    # Imported here: importing visqol sets NUMBA_THREADING_LAYER in os.environ.
    from visqol import VisqolApi

    api = VisqolApi()
    api.create(mode="speech", use_lattice_model=use_lattice_model)
    return api


def visqol_speech(reference: Waveform, degraded: Waveform, use_lattice_model: bool = True) -> float:
    """ViSQOL v3 in speech mode (16 kHz, 21 gammatone bands, VAD-selected patches): MOS-LQO in [1, 5].

    The deep-lattice mapper (`use_lattice_model=True`, needs `ai-edge-litert`, the `visqol-python[lattice]`
    extra) is C++ ViSQOL's default; `False` selects the older exponential fit, which the package's authors
    say over-predicts degraded speech by 1-2 MOS. ViSQOL aligns globally and per patch on its own and
    matches the degraded level to the reference. NaN when it cannot score the pair (too short, no patches).
    """
    ref, deg = to_mono_numpy(reference), to_mono_numpy(degraded)
    try:
        return float(_visqol_api(use_lattice_model).measure_from_arrays(ref, deg, SAMPLE_RATE).moslqo)
    except ValueError:
        return math.nan


@functools.lru_cache(maxsize=1)
def _log_mel() -> LogMel:
    return LogMel(SAMPLE_RATE, n_fft=MEL_N_FFT, hop_length=MEL_HOP_LENGTH, n_mels=MEL_N_MELS, eps=MEL_EPS)


def mel_distance(reference: Waveform, degraded: Waveform) -> float:
    """Mean |log-mel(reference) - log-mel(degraded)| over the common length.

    Log-mel: 80 Slaney mel bands of the STFT magnitude (n_fft 1024, Hann, hop 256, centred), natural log,
    floored at 1e-5 (so silence sits at ln 1e-5 = -11.5). 0 for identical signals; not level-invariant.
    """
    ref, deg = _common(reference, degraded)
    pair = torch.from_numpy(np.stack([ref, deg])).float()  # [2, L]
    with torch.no_grad():
        mels = _log_mel()(pair)  # [2, M, T]
    return float((mels[0] - mels[1]).abs().mean())


def si_sdr(reference: Waveform, degraded: Waveform) -> float:
    """Scale-invariant SDR in dB (Le Roux et al. 2019), zero-mean, over the common length.

    The target is the projection of `degraded` on `reference`; the rest is distortion. Identical signals
    give about 10 log10(energy / 1e-12), over 100 dB for speech.
    """
    ref, deg = _common(reference, degraded)
    ref, deg = ref - ref.mean(), deg - deg.mean()
    # np.sum of products, not np.dot: OpenBLAS's threaded dot spends ~15 ms per call on a 3 s clip
    scale = np.sum(deg * ref) / (np.sum(ref * ref) + SI_SDR_EPS)
    target = scale * ref
    noise = deg - target
    return float(10 * np.log10((np.sum(target * target) + SI_SDR_EPS) / (np.sum(noise * noise) + SI_SDR_EPS)))


def evaluate(reference: Waveform, degraded: Waveform, align_first: bool = True) -> dict[str, float]:
    """Every metric in `METRICS` for one 16 kHz pair, after `align` (with `align_first`) or on the raw pair."""
    if align_first:
        reference, degraded = align(reference, degraded)
    ref, deg = _common(reference, degraded)
    return {
        "pesq_wb": pesq_wb(ref, deg),
        "stoi": stoi(ref, deg),
        "visqol": visqol_speech(ref, deg),
        "mel_distance": mel_distance(ref, deg),
        "si_sdr": si_sdr(ref, deg),
    }


def summarize(rows: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Mean of each metric over `rows`, ignoring NaN (NaN where a metric has no finite value at all)."""
    keys = list(dict.fromkeys(key for row in rows for key in row))
    summary = {}
    for key in keys:
        values = np.array([row[key] for row in rows if key in row], dtype=np.float64)
        values = values[~np.isnan(values)]
        summary[key] = float(values.mean()) if len(values) else math.nan
    return summary
