"""Speaker similarity with a pretrained speaker encoder (resemblyzer's GE2E model, whose weights ship in its wheel).

    encoder = SpeakerEncoder()
    vectors = np.stack([encoder.embed(wav, 16000) for wav in clips])       # unit-norm [N, 256]
    speaker_accuracy(vectors, speakers, enrollment, enrollment_speakers)   # the paper's Table III, nearest-speaker style
    equal_error_rate(*trial_scores(vectors, speakers))                    # how well the vectors separate speakers

Install: `pip install webrtcvad-wheels && pip install --no-deps resemblyzer` (its `webrtcvad` dependency imports
`pkg_resources`; `scripts/setup.sh` does this).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from audiolm.errors import AudiolmError


class SpeakerEncoder:
    def __init__(self) -> None:
        try:
            from resemblyzer import VoiceEncoder, preprocess_wav
        except ImportError as error:
            raise AudiolmError(f"speaker similarity needs resemblyzer ({error}): "
                               "pip install webrtcvad-wheels && pip install --no-deps resemblyzer") from None
        self._encoder = VoiceEncoder("cpu", verbose=False)
        self._preprocess = preprocess_wav

    def embed(self, wav: np.ndarray, sample_rate: int) -> np.ndarray:
        """A unit-norm speaker vector `[256]` of a mono clip (resampled, silence trimmed by the encoder's VAD)."""
        wav = np.asarray(wav, dtype=np.float32).reshape(-1)
        processed = self._preprocess(wav, sample_rate)
        if len(processed) < 1600:  # the VAD left almost nothing (noise, silence): embed the whole clip at 16 kHz
            import soxr

            processed = wav if sample_rate == 16000 else soxr.resample(wav, sample_rate, 16000).astype(np.float32)
        return self._encoder.embed_utterance(processed).astype(np.float32)


def speaker_centroids(vectors: np.ndarray, speakers: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """Mean unit vector per speaker: (names, `[S, D]`)."""
    names = sorted(set(speakers))
    labels = np.asarray(speakers)
    centroids = np.stack([vectors[labels == name].mean(axis=0) for name in names])
    return names, centroids / np.linalg.norm(centroids, axis=1, keepdims=True)


def speaker_accuracy(queries: np.ndarray, query_speakers: Sequence[str], enrollment: np.ndarray,
                     enrollment_speakers: Sequence[str]) -> dict:
    """Identify each query's speaker as the enrolled speaker with the most similar centroid: accuracy, chance, and
    the mean cosine similarity to the query's own speaker and to the others."""
    names, centroids = speaker_centroids(enrollment, enrollment_speakers)
    missing = set(query_speakers) - set(names)
    if missing:
        raise ValueError(f"speakers without enrollment clips: {sorted(missing)}")
    similarity = queries @ centroids.T  # [N, S]
    truth = np.array([names.index(s) for s in query_speakers])
    own = similarity[np.arange(len(truth)), truth]
    others = (similarity.sum(axis=1) - own) / max(len(names) - 1, 1)
    return {"accuracy": float((similarity.argmax(axis=1) == truth).mean()), "chance": 1 / len(names), "speakers": len(names),
            "similarity_own": float(own.mean()), "similarity_other": float(others.mean()), "count": len(truth)}


def prompt_similarity(continuations: np.ndarray, prompts: np.ndarray, speakers: Sequence[str]) -> dict:
    """Cosine similarity of each continuation to its own prompt, and to the prompts of other speakers."""
    similarity = continuations @ prompts.T  # [N, N]
    labels = np.asarray(speakers)
    other = labels[:, None] != labels[None, :]
    own = np.diag(similarity)
    other_mean = np.array([row[mask].mean() if mask.any() else np.nan for row, mask in zip(similarity, other)])
    return {"own_prompt": float(own.mean()), "other_speakers": float(np.nanmean(other_mean)),
            "closer_to_own": float((own > other_mean).mean())}


def trial_scores(vectors: np.ndarray, speakers: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Cosine scores of every pair of unit vectors `[N, D]`: (same-speaker pairs, different-speaker pairs)."""
    similarity = vectors @ vectors.T  # [N, N]
    labels = np.asarray(speakers)
    pairs = np.triu(np.ones(similarity.shape, dtype=bool), k=1)
    same = labels[:, None] == labels[None, :]
    return similarity[pairs & same], similarity[pairs & ~same]


def equal_error_rate(same: np.ndarray, different: np.ndarray) -> float:
    """The error rate of a verifier that accepts a pair when its score reaches a threshold, at the threshold where it
    falsely accepts (different-speaker scores at or above it) as often as it falsely rejects (same-speaker scores
    below it): 0 when every same-speaker pair scores above every different-speaker pair, about 0.5 for chance."""
    same, different = np.sort(np.asarray(same, np.float64)), np.sort(np.asarray(different, np.float64))
    if not len(same) or not len(different):
        raise ValueError("the equal error rate needs same-speaker and different-speaker pairs")
    thresholds = np.concatenate([np.unique(np.concatenate([same, different])), [np.inf]])
    false_accept = 1.0 - np.searchsorted(different, thresholds, side="left") / len(different)
    false_reject = np.searchsorted(same, thresholds, side="left") / len(same)
    best = int(np.argmin(np.abs(false_accept - false_reject)))
    return float((false_accept[best] + false_reject[best]) / 2)
