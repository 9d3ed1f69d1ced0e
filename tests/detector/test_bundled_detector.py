"""The bundled speech models' detector: it belongs to the parts beside it, and tells the bundled prompts (recordings of
speakers no model trained on) from the bundled codec's reconstructions of them."""

from __future__ import annotations

import soundfile as sf
import torch

from audiolm.codec.model import Codec
from audiolm.detector.model import load_bundled_detector
from audiolm.generation.bundle import detector_parts, part_fingerprints
from audiolm.generation.pipeline import bundle_folder


def test_the_bundled_detector_was_trained_on_the_bundled_parts():
    folder = bundle_folder("speech")
    assert detector_parts(folder / "detector") == part_fingerprints(folder)  # retrain it (the recipe does) when a part changes


def test_the_bundled_detector_tells_prompts_from_codec_reconstructions():
    folder = bundle_folder("speech")
    detector = load_bundled_detector("speech")
    codec = Codec.load(folder / "codec").for_inference()
    prompts = sorted((folder / "prompts").glob("*.wav"))
    assert prompts
    for path in prompts:
        wav, rate = sf.read(str(path), dtype="float32")
        assert rate == codec.sample_rate and wav.ndim == 1
        original = torch.from_numpy(wav)
        with torch.inference_mode():
            decoded = codec.decode(codec.encode(original[None, None]))[0, 0, : original.shape[0]]
        assert detector.probability(original) < 0.5 < detector.probability(decoded), path.name
