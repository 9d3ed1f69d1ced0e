"""One file's verdict: the detector's probability and the watermark, as `audiolm detect` prints it and
`POST /v1/detect` answers it.

    wav = load_audio(path, SAMPLE_RATE, duration=limits.MAX_DETECT_SECONDS)   # [1, L] at 16 kHz
    score_file(wav, load_bundled_detector("speech"))  # {"generated": 0.97, "watermark": True, "watermark_score": 41.2}
"""

from __future__ import annotations

import torch

from audiolm.detector.model import Detector
from audiolm.watermark import SAMPLE_RATE, detect


def score_file(wav: torch.Tensor, detector: Detector | None) -> dict:
    """`wav [1, L]` (mono, 16 kHz) -> {"generated": P(generated), rounded to 4 places, or None without a detector,
    "watermark": whether it carries audiolm's mark, "watermark_score": the mark's score in standard deviations}."""
    assert wav.dim() == 2 and wav.shape[0] == 1, f"expected mono [1, L], got {tuple(wav.shape)}"
    if detector is not None and detector.config.sample_rate != SAMPLE_RATE:
        raise ValueError(f"the detector runs at {detector.config.sample_rate} Hz; score_file reads {SAMPLE_RATE} Hz")
    found = detect(wav[0], SAMPLE_RATE)
    generated = None if detector is None else round(detector.probability(wav[0]), 4)
    return {"generated": generated, "watermark": found.watermark, "watermark_score": round(found.score, 3)}
