"""An inaudible watermark on generated audio, and its detector: a keyed noise sequence shaped by the audio's own spectrum.

Every `continue`, `generate` and `resynth` output carries it unless asked not to (`AudioLM.continue_audio(...,
watermark=False)`, the CLI's `--no-watermark`, the server's `watermark=false`); `audiolm detect` finds it.

    marked = embed(wav, sample_rate)        # wav [..., L] float (torch or numpy) -> the same shape and type, marked
    found = detect(marked, sample_rate)     # Detection(score=14.2, lag=0); found.watermark is True above THRESHOLD

Embedding. A noise sequence `pn` of PERIOD samples at 16 kHz (0.256 s), flat in magnitude between LOW_HZ and HIGH_HZ
with phases drawn from the public seed KEY, is repeated from the first sample on. The mark is that sequence filtered,
frame by frame, by the signal's own magnitude spectrum: in a short-time Fourier transform (N_FFT-sample Hann frames,
hop HOP), each bin of the band gets `STRENGTH * (f / 1 kHz) ** TILT * |X|` times the sequence's coefficient
(normalised to unit power), and the result is added back to the signal. So the mark follows the signal in time and
frequency, 9 to 20 dB under it in every bin (about 20 dB in all; stronger towards 4 kHz, which, measured, bought the
most robustness to Opus and noise for the least loss in PESQ), and is silent where the signal is. Other sample rates
are marked at 16 kHz and the mark resampled.

Detection. The audio (resampled to 16 kHz, channels averaged) is whitened: each bin of the band divided by its own
magnitude (gain-invariant), bins near the file's noise floor weighted down (a spectral-subtraction gain against
the NOISE_PERCENTILE-th percentile of each bin's power), frames 60 dB under the loudest dropped. The whitened signal
is folded modulo PERIOD and cross-correlated with `pn` at every circular lag in one FFT. On unmarked audio these
PERIOD correlations are close to independent Gaussians, so the score, the largest one in standard deviations across
lags, is the maximum of PERIOD N(0, 1) draws, and THRESHOLD = Phi^-1(1 - FALSE_POSITIVE_RATE / PERIOD) bounds the
false-positive rate by FALSE_POSITIVE_RATE (the union bound; measured on thousands of unmarked 1 s windows in
benchmarks/results/detect.md). Trying every lag makes any crop detectable (1 s holds four periods); whitening makes
gain irrelevant; the band (below 4 kHz) survives resampling to 8 kHz, Opus at 16 kbps and MP3.

The key is public, so the mark says "made by this software", not who made it, and proves nothing: anyone can mark
other audio with `embed` or weaken the mark (subtract an estimate of it, or re-encode at a very low bitrate).
Folding over a whole file dilutes a short marked part inside a long unmarked recording.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view

SAMPLE_RATE = 16000  # the mark is made and found at this rate
KEY = 19  # the public seed of the noise sequence: it marks, it does not authenticate
PERIOD = 4096  # samples of the repeated sequence (0.256 s): every lag is searched, so this many tests per file
N_FFT, HOP = 512, 128  # 32 ms Hann frames, 75 % overlap
LOW_HZ, HIGH_HZ = 300.0, 3800.0  # the band: under the 4 kHz of 8 kHz audio; below 300 Hz the mark costs quality, finds little
STRENGTH, TILT = 0.18, 0.5  # the mark's magnitude per bin: STRENGTH * (f / 1 kHz) ** TILT of the signal's (0.10 at 300 Hz, 0.35 at 3.8 kHz)
FLOOR = 0.01  # whitening divides a bin by at least this fraction of its frame's RMS in the band
SILENCE = 1e-6  # frames whose power in the band is 60 dB under the loudest frame's are dropped
NOISE_PERCENTILE, NOISE_OVERSUBTRACT = 20.0, 4.0  # the noise floor per bin, and how hard bins near it are weighted down
FALSE_POSITIVE_RATE = 1e-4  # per file (or crop), by the union bound over the PERIOD lags
THRESHOLD = 5.455525858113488  # Phi^-1(1 - FALSE_POSITIVE_RATE / PERIOD), in standard deviations (a test checks it)
PEAK_LAGS = 16  # lags either side of the largest correlation left out of the spread: the key's autocorrelation is that wide
CHUNK_FRAMES = 4096  # frames transformed at once: bounds the memory of long files

_K0, _K1 = int(np.ceil(LOW_HZ * N_FFT / SAMPLE_RATE)), int(np.floor(HIGH_HZ * N_FFT / SAMPLE_RATE)) + 1  # the band's bins
_WINDOW = np.hanning(N_FFT + 1)[:-1]  # periodic Hann


@dataclass(frozen=True)
class Detection:
    score: float  # the largest correlation with the key sequence, in standard deviations across the PERIOD lags
    lag: int  # where it lies: the marked signal's first sample relative to the audio's first, modulo PERIOD (0: not cropped)

    @property
    def watermark(self) -> bool:
        return self.score > THRESHOLD


def key_sequence() -> np.ndarray:
    """The key's noise sequence `[PERIOD]` float64: unit power, flat magnitude between LOW_HZ and HIGH_HZ."""
    rng = np.random.default_rng(KEY)
    frequencies = np.fft.rfftfreq(PERIOD, 1 / SAMPLE_RATE)
    band = (frequencies >= LOW_HZ) & (frequencies <= HIGH_HZ)
    spectrum = np.zeros(len(frequencies), complex)
    spectrum[band] = np.exp(2j * np.pi * rng.random(int(band.sum())))
    pn = np.fft.irfft(spectrum, n=PERIOD)
    return pn / pn.std()


_PN = key_sequence()


def _frames(length: int) -> int:
    return 0 if length < N_FFT else 1 + (length - N_FFT) // HOP


def _band_stft(x: np.ndarray) -> np.ndarray:
    """`x [L]` -> the band's bins of its STFT `[J, K]` (frame j starts at sample j * HOP)."""
    if len(x) < N_FFT:
        return np.zeros((0, _K1 - _K0), np.complex128)
    frames = sliding_window_view(x, N_FFT)[::HOP][: _frames(len(x))]
    out = np.empty((len(frames), _K1 - _K0), np.complex128)
    for j in range(0, len(frames), CHUNK_FRAMES):
        out[j:j + CHUNK_FRAMES] = np.fft.rfft(frames[j:j + CHUNK_FRAMES] * _WINDOW, axis=1)[:, _K0:_K1]
    return out


def _band_istft(spectrum: np.ndarray, length: int) -> np.ndarray:
    """The inverse of `_band_stft` (weighted overlap-add; bins outside the band are zero) -> `[length]`."""
    J, R = len(spectrum), N_FFT // HOP
    blocks = np.zeros((J + R - 1, HOP))  # [hops, HOP]: the output cut into hops
    weight = np.zeros((J + R - 1, HOP))
    square = (_WINDOW**2).reshape(R, HOP)
    full = np.zeros((min(J, CHUNK_FRAMES), N_FFT // 2 + 1), np.complex128)
    for j in range(0, J, CHUNK_FRAMES):
        n = min(CHUNK_FRAMES, J - j)
        full[:n, _K0:_K1] = spectrum[j:j + n]
        frames = (np.fft.irfft(full[:n], n=N_FFT, axis=1) * _WINDOW).reshape(n, R, HOP)
        for r in range(R):
            blocks[j + r:j + r + n] += frames[:, r]
    for r in range(R):
        weight[r:r + J] += square[r]
    out = blocks / np.maximum(weight, 1e-3 * square.max())
    flat = out.reshape(-1)[:length]
    return np.pad(flat, (0, length - len(flat)))


def _mark(x: np.ndarray) -> np.ndarray:
    """The mark of `x [L]` at SAMPLE_RATE (float64 `[L]`, to be added to it)."""
    pad = N_FFT  # every sample of x lies in N_FFT / HOP frames
    length = pad + len(x) + pad
    length += (-(length - N_FFT)) % HOP
    padded = np.zeros(length)
    padded[pad:pad + len(x)] = x
    spectrum = _band_stft(padded)  # [J, K]
    cycle = PERIOD // HOP  # the sequence's frames repeat after this many
    key = _band_stft(np.resize(np.roll(_PN, pad), PERIOD + N_FFT))[:cycle]  # frame j of the padded signal: key[j % cycle]
    key /= np.sqrt(np.mean(np.abs(key) ** 2))
    frequencies = np.arange(_K0, _K1) * SAMPLE_RATE / N_FFT
    gain = STRENGTH * (frequencies / 1000.0) ** TILT  # [K]
    mark = gain * np.abs(spectrum) * key[np.arange(len(spectrum)) % cycle]
    return _band_istft(mark, length)[pad:pad + len(x)]


def embed(wav: torch.Tensor | np.ndarray, sample_rate: int) -> torch.Tensor | np.ndarray:
    """`wav [..., L]` (float, any rate; each channel marked on its own) marked: the same shape, type, dtype and device.

    Deterministic. The mark adds about 1.5 % to the signal's power; a signal within 2 % of full scale may go past 1.
    """
    data = wav.detach().cpu().double().numpy() if isinstance(wav, torch.Tensor) else np.asarray(wav, np.float64)
    flat = data.reshape(-1, data.shape[-1])  # [N, L]
    marked = np.empty_like(flat)
    for i, x in enumerate(flat):
        if sample_rate == SAMPLE_RATE:
            marked[i] = x + _mark(x)
        else:
            import soxr

            mark = soxr.resample(_mark(soxr.resample(x, sample_rate, SAMPLE_RATE, quality="HQ")), SAMPLE_RATE, sample_rate, quality="HQ")
            marked[i] = x + np.pad(mark, (0, max(0, len(x) - len(mark))))[: len(x)]
    marked = marked.reshape(data.shape)
    if isinstance(wav, torch.Tensor):
        return torch.from_numpy(marked).to(dtype=wav.dtype, device=wav.device)
    return marked.astype(np.asarray(wav).dtype if np.asarray(wav).dtype.kind == "f" else np.float32)


def whiten(y: np.ndarray) -> np.ndarray:
    """`y [L]` at SAMPLE_RATE -> its band whitened (`[L]`): unit magnitude per bin, noise-floor bins and silence weighted
    down."""
    spectrum = _band_stft(y)  # [J, K]
    if len(spectrum) == 0:
        return np.zeros(len(y))
    power = np.abs(spectrum) ** 2
    frame = power.mean(axis=1)  # [J]
    if frame.max() <= 0:
        return np.zeros(len(y))
    noise = np.percentile(power, NOISE_PERCENTILE, axis=0)  # [K]
    gain = np.clip(1.0 - NOISE_OVERSUBTRACT * noise / np.maximum(power, 1e-30), 0.0, 1.0)
    scale = np.maximum(np.sqrt(power), FLOOR * np.sqrt(frame)[:, None] + 1e-20)
    gain *= (frame > SILENCE * frame.max())[:, None]
    return _band_istft(spectrum / scale * gain, len(y))


def score(y: np.ndarray) -> Detection:
    """The watermark's detection statistic of mono `y [L]` at SAMPLE_RATE."""
    white = whiten(np.asarray(y, np.float64))
    folds = -(-len(white) // PERIOD)
    if folds == 0:
        return Detection(0.0, 0)
    folded = np.pad(white, (0, folds * PERIOD - len(white))).reshape(folds, PERIOD).sum(axis=0)  # [PERIOD]
    correlation = np.fft.irfft(np.fft.rfft(folded) * np.conj(np.fft.rfft(_PN)), n=PERIOD)  # at each circular lag
    lag = int(np.argmax(correlation))
    rest = np.delete(correlation, np.arange(lag - PEAK_LAGS, lag + PEAK_LAGS + 1) % PERIOD)  # the spread without the peak,
    spread = rest.std()  # which would otherwise cap a strong mark's score near sqrt(PERIOD)
    if not spread > 0:
        return Detection(0.0, 0)
    return Detection(float((correlation[lag] - rest.mean()) / spread), lag)


def detect(wav: torch.Tensor | np.ndarray, sample_rate: int) -> Detection:
    """Is `wav` (`[L]`, `[C, L]` or `[1, C, L]`, any rate; channels averaged) watermarked? Audio shorter than one frame
    (32 ms) or silent scores 0."""
    data = wav.detach().cpu().double().numpy() if isinstance(wav, torch.Tensor) else np.asarray(wav, np.float64)
    mono = data.reshape(-1, data.shape[-1]).mean(axis=0) if data.ndim > 1 else data
    if sample_rate != SAMPLE_RATE:
        import soxr

        mono = soxr.resample(mono, sample_rate, SAMPLE_RATE, quality="HQ")
    return score(mono)
