"""Pseudo-speakers benchmark: how well clustering speaker vectors recovers true speakers, and what it makes of the
recorded game speech.

    .venv/bin/python benchmarks/bench_real_speech.py [--synthetic data/speech/manifest.jsonl] [--real data/real]

1. Synthetic speakers (known): resemblyzer vectors of 24 clips from each of 40 speakers of a `synth-speech` corpus,
   clustered with each linkage and threshold, scored by purity (no cluster mixes speakers), inverse purity (no
   speaker is split) and adjusted Rand index, twice: 10 clips per speaker (balanced), and 2 to 24 (unbalanced, as a
   game's cast is: a protagonist speaks far more than anyone else). Many synthetic speakers are the same engine
   voice at another pitch, which the encoder hardly tells apart, so the ARI against base voices is given too.
2. The real corpus (`audiolm data real-speech`), if built: the pseudo-speakers found with the default settings, and a
   check against the one label the Queen clip names carry: `...J<n>.SB` and `JOE*.SB` are lines of Joe King, the
   protagonist (one voice actor), `...P<n>.SB` those of whoever he talks to. Joe's recall is the share of his lines
   in his main cluster; its precision, the share of his among the marked lines (J or P) in that cluster.
Prints markdown tables and writes benchmarks/results/real_speech.md and real_speech.json.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np

from audiolm.data.manifest import read_manifest
from audiolm.data.pseudo_speakers import ClusterConfig, cluster_speakers, embed_manifest_sample, measure_clustering
from audiolm.formats.atomic import write_json, write_text

RESULTS = Path(__file__).parent / "results"
GRID = {"average": (0.15, 0.2, 0.25, 0.3, 0.4), "complete": (0.3, 0.4, 0.6), "ward": (0.75, 1.0, 1.5)}
SPEAKERS, CLIPS = 40, 24
JOE = re.compile(r"^(\d{6}J\d|JOE\d+)\.SB$")
OTHER = re.compile(r"^\d{6}P\d\.SB$")  # the other side of Joe's conversations: several characters, never Joe


def base_voices(manifest: Path) -> dict[str, str]:
    """Synthetic speaker -> its base voice (an espeak variant in any accent at any pitch; a flite or festival voice)."""
    voices = {}
    for entry in read_manifest(manifest):
        engine, voice = entry.extra.get("engine", ""), entry.extra.get("voice", "")
        voices[entry.speaker] = f"espeak-{voice.split('+', 1)[-1]}" if engine == "espeak" else f"{engine}-{voice}"
    return voices


def synthetic_scenarios(manifest: Path, seed: int = 0) -> dict[str, tuple[np.ndarray, list[str]]]:
    """The balanced and the unbalanced sample, both from one set of vectors."""
    vectors, truth = embed_manifest_sample(manifest, SPEAKERS, CLIPS, seed)
    rng = np.random.default_rng(seed)
    speakers = sorted(set(truth), key=truth.index)
    counts = {s: int(np.clip(round(2 * 1.09 ** rng.uniform(0, 30)), 2, CLIPS)) for s in speakers}  # 2 .. 24, skewed
    balanced = [i for s in speakers for i in [j for j, t in enumerate(truth) if t == s][:10]]
    unbalanced = [i for s in speakers for i in [j for j, t in enumerate(truth) if t == s][:counts[s]]]
    return {name: (vectors[idx], [truth[i] for i in idx]) for name, idx in (("balanced", balanced), ("unbalanced", unbalanced))}


def measure(scenarios: dict[str, tuple[np.ndarray, list[str]]], voices: dict[str, str]) -> list[dict]:
    configs = [ClusterConfig(linkage=linkage, threshold=t, min_size=min_size)
               for linkage, thresholds in GRID.items() for t in thresholds for min_size in (1, 5)]
    rows = []
    for name, (vectors, truth) in scenarios.items():
        by_voice = measure_clustering(vectors, [voices[s] for s in truth], configs)
        rows += [{"scenario": name, "clips": len(truth), **row, "ari_base_voice": other["ari"], "base_voices": other["speakers"]}
                 for row, other in zip(measure_clustering(vectors, truth, configs), by_voice)]
    return rows


def joe_scores(labels: np.ndarray, names: list[str]) -> dict:
    """Recall and precision of Joe's main cluster among Queen clips `labels [N]` named `names`."""
    is_joe = np.array([bool(JOE.match(n)) for n in names])
    is_other = np.array([bool(OTHER.match(n)) for n in names])
    main = int(np.bincount(labels[is_joe]).argmax())
    joe_in, others_in = int(np.sum(labels[is_joe] == main)), int(np.sum(labels[is_other] == main))
    return {"clusters": int(labels.max()) + 1, "joe_clips": int(is_joe.sum()), "joe_cluster_clips": int(np.sum(labels == main)),
            "joe_recall": joe_in / int(is_joe.sum()), "joe_precision": joe_in / max(joe_in + others_in, 1)}


def real_corpus(folder: Path) -> dict:
    """The pseudo-speakers of a built corpus, and how Joe's lines (Queen) fall into them."""
    entries = read_manifest(folder / "manifest.jsonl")
    speakers = json.loads((folder / "speakers.json").read_text(encoding="utf-8"))
    queen = [e for e in entries if e.id.startswith("queen-")]
    labels = np.array([int(e.speaker.rsplit("spk", 1)[1]) for e in queen])
    return {"speakers": speakers["speakers"], "cluster": speakers["cluster"],
            "joe": joe_scores(labels, [e.extra.get("name", "") for e in queen])}


def joe_by_threshold(folder: Path, thresholds: tuple[float, ...] = (0.18, 0.2, 0.22, 0.25, 0.28, 0.3, 0.35)) -> list[dict]:
    """Re-cluster the Queen clips of a built corpus (average linkage) at other thresholds: Joe's recall and precision."""
    queen = [e for e in read_manifest(folder / "manifest.jsonl") if e.id.startswith("queen-")]
    vectors = np.stack([np.load(e.audio_path(folder).with_suffix(".npy")) for e in queen])
    names = [e.extra.get("name", "") for e in queen]
    configs = [ClusterConfig(threshold=t) for t in thresholds] + [ClusterConfig(linkage="ward", threshold=t) for t in (1.0, 4.0)]
    return [{"linkage": c.linkage, "threshold": c.threshold, **joe_scores(cluster_speakers(vectors, c), names)} for c in configs]


def to_markdown(rows: list[dict], real: dict | None, joe_rows: list[dict]) -> str:
    default = ClusterConfig()
    lines = ["# Pseudo-speakers: clustering resemblyzer vectors", "",
             f"Synthetic corpus, {SPEAKERS} speakers; default: {default.linkage} linkage, cosine threshold {default.threshold}, "
             f"clusters under {default.min_size} clips absorbed (the table's min size 5 shows the effect at this scale).", "",
             "| scenario | clips | linkage | threshold | min size | clusters | purity | inverse purity | ARI | ARI, base voices |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['scenario']} | {r['clips']} | {r['linkage']} | {r['threshold']:g} | {r['min_size']} | {r['clusters']} "
                     f"| {r['purity']:.3f} | {r['inverse_purity']:.3f} | {r['ari']:.3f} | {r['ari_base_voice']:.3f} |")
    if real:
        joe = real["joe"]
        lines += ["", "## The recorded game speech", "",
                  f"Joe King's lines (Queen, marked by the clip names): {joe['joe_clips']}; in his main pseudo-speaker "
                  f"({joe['joe_cluster_clips']} clips): {100 * joe['joe_recall']:.1f} %; his share of the marked lines in it: "
                  f"{100 * joe['joe_precision']:.1f} %.", ""]
    if joe_rows:
        lines += ["Queen clustered with other settings:", "",
                  "| linkage | threshold | clusters | Joe's cluster, clips | Joe recall | Joe precision |",
                  "|---|---:|---:|---:|---:|---:|"]
        lines += [f"| {r['linkage']} | {r['threshold']:g} | {r['clusters']} | {r['joe_cluster_clips']} | {r['joe_recall']:.3f} "
                  f"| {r['joe_precision']:.3f} |" for r in joe_rows]
    if real:
        lines += ["", "| pseudo-speaker | source | clips | hours |", "|---|---|---:|---:|"]
        lines += [f"| {s['speaker']} | {s['source']} | {s['clips']} | {s['hours']:.3f} |" for s in real["speakers"]]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--synthetic", default="data/speech/manifest.jsonl")
    parser.add_argument("--real", default="data/real")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)  # the speaker encoder is several times slower with threads fighting over two cores
    rows = measure(synthetic_scenarios(Path(args.synthetic), args.seed), base_voices(Path(args.synthetic)))
    real_dir = Path(args.real)
    built = (real_dir / "speakers.json").is_file()
    real = real_corpus(real_dir) if built else None
    joe_rows = joe_by_threshold(real_dir) if built else []
    markdown = to_markdown(rows, real, joe_rows)
    print(markdown)
    RESULTS.mkdir(exist_ok=True)
    write_text(RESULTS / "real_speech.md", markdown)
    write_json(RESULTS / "real_speech.json", {"synthetic": rows, "real": real, "joe_by_threshold": joe_rows})


if __name__ == "__main__":
    main()
