"""Voice perturbation benchmark: how far each augmentation moves a speaker embedding, against how far apart two
clips of one speaker, and two different speakers, are.

    .venv/bin/python benchmarks/bench_augment.py [--manifest data/speech/manifest.jsonl] [--split test] [--clips 6]

Takes `--clips` clips (at least 1.5 s) of every speaker of one split of a corpus (default: the 8 held-out test
speakers of the synthetic corpus), embeds them with resemblyzer (audiolm.eval.speaker), and applies each transform
at a fixed setting: pitch shifts, formant warps (`warp_formants`), both together, synthetic and measured reverb,
noise, gain. Per transform: the cosine distance between a clip's embedding and its transformed clip's (mean,
median), the share of clips moved further than the typical (median) distance between two clips of the same
speaker and than the typical distance between two different speakers, and speaker identification (nearest
centroid of the originals' other clips, among the split's speakers). Prints a markdown table and writes
benchmarks/results/augment.md and augment.json. About 30 minutes on the shared 2-core machine (mostly the embeddings).
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable
from pathlib import Path

import audiomentations as am
import numpy as np

from audiolm.audio.augment import add_noise, add_reverb, convolve_and_mix, measured_responses, warp_formants
from audiolm.audio.io import load_audio
from audiolm.data.manifest import read_manifest
from audiolm.eval.speaker import SpeakerEncoder
from audiolm.formats.atomic import write_json, write_text

RESULTS = Path(__file__).parent / "results"
SR = 16000
Transform = Callable[[np.ndarray, int], np.ndarray]  # (wav [L], clip number) -> wav [L]


def pitch(semitones: float) -> Transform:
    shift = am.PitchShift(semitones, semitones, p=1.0)
    return lambda wav, _: shift(samples=wav, sample_rate=SR)


def formant(warp: float) -> Transform:
    return lambda wav, _: warp_formants(wav, SR, warp)


def both(semitones: float, warp: float) -> Transform:
    shift = pitch(semitones)
    return lambda wav, i: warp_formants(shift(wav, i), SR, warp)


def measured(wet: float) -> Transform:
    responses = measured_responses(SR)
    return lambda wav, i: convolve_and_mix(wav, responses[i % len(responses)], wet)  # clip i: response i mod 16


TRANSFORMS: dict[str, Callable[[], Transform]] = {
    "gain -6 dB": lambda: lambda wav, _: wav * 10 ** (-6 / 20),
    "pitch -4 st": lambda: pitch(-4), "pitch -2 st": lambda: pitch(-2), "pitch +2 st": lambda: pitch(2), "pitch +4 st": lambda: pitch(4),
    "formant x0.85": lambda: formant(0.85), "formant x0.90": lambda: formant(0.9), "formant x1.10": lambda: formant(1.1),
    "formant x1.15": lambda: formant(1.15),
    "pitch -2 st, formant x0.90": lambda: both(-2, 0.9), "pitch +2 st, formant x1.10": lambda: both(2, 1.1),
    "pitch +4 st, formant x1.15": lambda: both(4, 1.15),
    "synthetic reverb RT60 0.3 s, wet 0.4": lambda: lambda wav, i: add_reverb(wav, SR, 0.3, 0.4, i),
    "synthetic reverb RT60 0.8 s, wet 0.6": lambda: lambda wav, i: add_reverb(wav, SR, 0.8, 0.6, i),
    "measured reverb (16 responses), wet 0.4": lambda: measured(0.4),
    "measured reverb (16 responses), wet 0.6": lambda: measured(0.6),
    "noise 20 dB SNR": lambda: lambda wav, i: add_noise(wav, 20.0, np.random.default_rng(i)),
    "noise 10 dB SNR": lambda: lambda wav, i: add_noise(wav, 10.0, np.random.default_rng(i)),
}


def pick_clips(manifest: Path, split: str, per_speaker: int) -> tuple[list[np.ndarray], list[str]]:
    """The first `per_speaker` clips of at least 1.5 s of every speaker of `split`, at most 6 s each."""
    chosen: dict[str, list] = {}
    for entry in read_manifest(manifest):
        if entry.split == split and entry.duration >= 1.5 and len(chosen.setdefault(entry.speaker, [])) < per_speaker:
            chosen[entry.speaker].append(entry)
    wavs, speakers = [], []
    for speaker, entries in sorted(chosen.items()):
        for entry in entries:
            wavs.append(load_audio(entry.audio_path(manifest.parent), SR)[0, : 6 * SR].numpy())
            speakers.append(speaker)
    return wavs, speakers


def pair_distances(vectors: np.ndarray, speakers: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Cosine distances of all pairs of clips: (same speaker, different speakers)."""
    distance = 1 - vectors @ vectors.T
    labels = np.asarray(speakers)
    upper = np.triu(np.ones_like(distance, dtype=bool), k=1)
    same = labels[:, None] == labels[None, :]
    return distance[upper & same], distance[upper & ~same]


def identify(queries: np.ndarray, originals: np.ndarray, speakers: list[str]) -> float:
    """Share of queries whose nearest speaker centroid (of the originals, leaving out the query's own original) is theirs."""
    labels = np.asarray(speakers)
    names = sorted(set(speakers))
    correct = 0
    for i, query in enumerate(queries):
        keep = np.arange(len(labels)) != i
        centroids = np.stack([originals[keep & (labels == n)].mean(axis=0) for n in names])
        centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
        correct += names[int(np.argmax(centroids @ query))] == labels[i]
    return correct / len(queries)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--manifest", type=Path, default=Path("data/speech/manifest.jsonl"))
    parser.add_argument("--split", default="test")
    parser.add_argument("--clips", type=int, default=6, help="clips per speaker")
    args = parser.parse_args()

    wavs, speakers = pick_clips(args.manifest, args.split, args.clips)
    encoder = SpeakerEncoder()
    originals = np.stack([encoder.embed(w, SR) for w in wavs])
    same, different = pair_distances(originals, speakers)
    typical_same, typical_different = float(np.median(same)), float(np.median(different))
    rows = [{"transform": "none (another clip of the same speaker)", "mean": float(same.mean()), "median": typical_same,
             "beyond_same": None, "beyond_different": float(np.mean(same > typical_different)),
             "speaker_id": identify(originals, originals, speakers), "seconds": 0.0},
            {"transform": "none (a clip of another speaker)", "mean": float(different.mean()), "median": typical_different,
             "beyond_same": float(np.mean(different > typical_same)), "beyond_different": None, "speaker_id": None, "seconds": 0.0}]
    for name, make in TRANSFORMS.items():
        transform = make()
        start = time.perf_counter()
        changed = [np.asarray(transform(w.copy(), i), dtype=np.float32) for i, w in enumerate(wavs)]
        seconds = time.perf_counter() - start
        vectors = np.stack([encoder.embed(np.clip(w, -1, 1), SR) for w in changed])
        moved = 1 - np.sum(vectors * originals, axis=1)
        rows.append({"transform": name, "mean": float(moved.mean()), "median": float(np.median(moved)),
                     "beyond_same": float(np.mean(moved > typical_same)), "beyond_different": float(np.mean(moved > typical_different)),
                     "speaker_id": identify(vectors, originals, speakers),
                     "seconds": seconds / (sum(len(w) for w in wavs) / SR)})
        print(f"{name}: {moved.mean():.3f}", flush=True)

    audio_seconds = sum(len(w) for w in wavs) / SR
    title = (f"# Voice perturbation: how far each transform moves a speaker embedding\n\n"
             f"{len(wavs)} clips ({audio_seconds / 60:.1f} min) of the {len(set(speakers))} `{args.split}` speakers of "
             f"`{args.manifest}`, resemblyzer (GE2E) vectors, cosine distance to the clip's own original. Typical distances: "
             f"{typical_same:.3f} between two clips of one speaker, {typical_different:.3f} between two speakers (medians). "
             f"Speaker id: nearest centroid of the originals among {len(set(speakers))} speakers (chance "
             f"{1 / len(set(speakers)):.3f}). Cost: wall-clock seconds per second of audio on the shared 2-core machine "
             f"(busy: read it as an upper bound).\n")
    table = ["| transform | mean distance | median | beyond same-speaker | beyond different-speaker | speaker id "
             "| cost (s per s of audio) |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    fmt = lambda v: "" if v is None else f"{v:.3f}"  # noqa: E731
    for r in rows:
        table.append(f"| {r['transform']} | {r['mean']:.3f} | {r['median']:.3f} | {fmt(r['beyond_same'])} | "
                     f"{fmt(r['beyond_different'])} | {fmt(r['speaker_id'])} | {r['seconds']:.4f} |")
    text = title + "\n" + "\n".join(table) + "\n"
    print(text)
    RESULTS.mkdir(exist_ok=True)
    write_text(RESULTS / "augment.md", text)
    write_json(RESULTS / "augment.json", {"manifest": str(args.manifest), "split": args.split, "clips": len(wavs),
                                          "speakers": len(set(speakers)), "typical_same": typical_same,
                                          "typical_different": typical_different, "rows": rows, "machine": platform.machine()})


if __name__ == "__main__":
    main()
