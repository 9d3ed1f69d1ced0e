"""Speaker identification and similarity: the scoring on known vectors, and the real resemblyzer encoder on speech."""

import numpy as np
import pytest

from audiolm.data.speakers import Speaker
from audiolm.data.tts import synthesize
from audiolm.eval.speaker import SpeakerEncoder, equal_error_rate, prompt_similarity, speaker_accuracy, trial_scores


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


def test_equal_error_rate_of_separated_overlapping_and_random_scores():
    assert equal_error_rate([0.9, 0.8], [0.5, 0.2, 0.1]) == 0.0
    assert equal_error_rate([0.9, 0.8, 0.3], [0.5, 0.2, 0.1]) == pytest.approx(1 / 3)  # at 0.5: 1 of 3 each way
    rng = np.random.default_rng(0)
    assert abs(equal_error_rate(rng.normal(size=2000), rng.normal(size=2000)) - 0.5) < 0.05
    with pytest.raises(ValueError, match="pairs"):
        equal_error_rate([], [0.1])


def test_trial_scores_pair_every_clip_once():
    vectors, speakers = _clusters(3, 4, 0.1)
    same, different = trial_scores(vectors, speakers)
    assert len(same) == 3 * 6 and len(different) == 12 * 11 // 2 - 18
    assert equal_error_rate(same, different) == 0.0
    _, shuffled = _clusters(3, 4, 0.1)
    noisy, _ = _clusters(3, 4, 2.0)
    assert equal_error_rate(*trial_scores(noisy, shuffled)) > 0.1
