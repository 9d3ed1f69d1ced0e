"""Speaker identification and similarity: the scoring on known vectors, and the real resemblyzer encoder on speech."""

import numpy as np
import pytest

from audiolm.data.speakers import Speaker
from audiolm.data.tts import synthesize
from audiolm.eval.speaker import SpeakerEncoder, prompt_similarity, speaker_accuracy


def _clusters(speakers: int, per: int, noise: float, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(speakers, 16))
    vectors = np.concatenate([centres[s] + noise * rng.normal(size=(per, 16)) for s in range(speakers)])
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True), [f"s{s}" for s in range(speakers) for _ in range(per)]


def test_speaker_accuracy_finds_clustered_speakers_and_falls_to_chance_on_noise():
    enrollment, names = _clusters(4, 3, 0.1)
    queries, truth = _clusters(4, 5, 0.1, seed=0)
    clean = speaker_accuracy(queries, truth, enrollment, names)
    assert clean["accuracy"] == 1.0 and clean["chance"] == 0.25 and clean["similarity_own"] > clean["similarity_other"]
    rng = np.random.default_rng(1)
    shuffled = speaker_accuracy(queries, list(rng.permutation(truth)), enrollment, names)
    assert shuffled["accuracy"] < 0.6
    with pytest.raises(ValueError, match="without enrollment"):
        speaker_accuracy(queries, ["nobody"] * len(queries), enrollment, names)


def test_prompt_similarity_prefers_the_own_prompt():
    prompts, speakers = _clusters(3, 2, 0.05)
    continuations, _ = _clusters(3, 2, 0.05, seed=0)
    result = prompt_similarity(continuations, prompts, speakers)
    assert result["own_prompt"] > result["other_speakers"] and result["closer_to_own"] == 1.0


def test_resemblyzer_tells_two_voices_apart():
    voices = [Speaker("espeak", "en-us+m3", 30), Speaker("espeak", "en-us+f4", 80)]
    texts = ["the cat sat on the mat and looked at the door", "a bright morning came over the quiet hills"]
    clips = synthesize([(v, t) for v in voices for t in texts], 16000)
    encoder = SpeakerEncoder()
    vectors = np.stack([encoder.embed(c.wav, 16000) for c in clips])  # m3 t0, m3 t1, f4 t0, f4 t1
    assert vectors.shape == (4, 256) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-3)
    same = (vectors[0] @ vectors[1] + vectors[2] @ vectors[3]) / 2
    different = (vectors[0] @ vectors[2] + vectors[1] @ vectors[3]) / 2
    assert same > different + 0.1
