"""Codec benchmark: quality at 1.5 / 3 / 6 kbps beside Opus (6, 9 kbps) and codec2 (3.2 kbps) on held-out speakers
of each source (and voices no corpus of ours holds), codebook usage per level, and encode / decode speed on one CPU
thread; several codecs side by side.

    .venv/bin/python benchmarks/bench_codec.py --model models/speech/codec --manifest data/speech/manifest.jsonl
    .venv/bin/python benchmarks/bench_codec.py --model bundled=models/speech/codec --model new=runs/codec-gan/model \\
        --manifest data/speech/manifest.jsonl --manifest data/real/manifest.jsonl --unseen 16 --name codec_sources

Prints markdown tables and writes benchmarks/results/codec.md and codec.json (or --name).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import torch
from tqdm import tqdm

from audiolm.codec.model import Codec
from audiolm.data.datasets import AudioClips
from audiolm.eval.baselines import codec2_roundtrip, opus_roundtrip
from audiolm.eval.codec_metrics import METRICS, evaluate, summarize
from audiolm.formats.atomic import write_json, write_text

RESULTS = Path(__file__).parent / "results"


def speed(codec: Codec, seconds: float = 10.0, repeats: int = 3) -> tuple[float, float]:
    """x real time of encode and of decode (all levels), one thread, batch 1."""
    torch.set_num_threads(1)
    wav = torch.randn(1, 1, int(seconds * codec.sample_rate)) * 0.1
    with torch.inference_mode():
        codes = codec.encode(wav)
        codec.decode(codes)
        start = time.perf_counter()
        for _ in range(repeats):
            codec.encode(wav)
        encode = seconds * repeats / (time.perf_counter() - start)
        start = time.perf_counter()
        for _ in range(repeats):
            codec.decode(codes)
        decode = seconds * repeats / (time.perf_counter() - start)
    return encode, decode


def sources(args, sample_rate: int) -> dict[str, tuple[list[torch.Tensor], int]]:
    """Each source's clips `[1, 1, L]` and speaker count: the held-out split of every manifest, and the unseen voices."""
    out = {}
    for manifest in args.manifest:
        audio = AudioClips(manifest, sample_rate, args.split)
        clips = audio.fixed(args.clips, int(args.max_seconds * sample_rate))  # each speaker in turn
        out[f"{Path(manifest).parent.name} ({args.split})"] = (clips, min(len(set(audio.speakers)), len(clips)))
    if args.unseen:
        from audiolm.eval.heldout_voices import alsa_clips, piper_available, piper_clips

        voices = [(wav, "alsa") for wav, _ in alsa_clips()]
        if piper_available():
            voices += [(wav, "piper") for wav, _ in piper_clips(args.unseen, 0)]
        clips = [torch.from_numpy(wav[: int(args.max_seconds * sample_rate)].copy())[None, None] for wav, _ in voices]
        out["unseen voices"] = (clips, len({who for _, who in voices}))
    return out


def measure(codecs: dict[str, Codec], clips: list[torch.Tensor], sample_rate: int) -> tuple[dict[str, list[dict]], dict[str, list]]:
    """Per system, each clip's metrics; per codec, its codes."""
    systems: dict[str, list[dict]] = {}
    all_codes: dict[str, list] = {name: [] for name in codecs}
    for wav in tqdm(clips, desc="clips"):
        ref = wav[0, 0].numpy()
        with torch.inference_mode():
            for label, codec in codecs.items():
                codes = codec.encode(wav)
                all_codes[label].append(codes)
                for n in sorted({codec.config.codebooks_for_bitrate(k) for k in (1.5, 3, 6)}):
                    out = codec.decode(codes[:, :n])[0, 0, : ref.shape[-1]].numpy()
                    systems.setdefault(f"{label} {codec.config.bitrate(n) / 1000:g} kbps", []).append(evaluate(ref, out))
        for kbps in (6, 9):
            systems.setdefault(f"opus {kbps} kbps", []).append(evaluate(ref, opus_roundtrip(ref, sample_rate, kbps)))
        systems.setdefault("codec2 3.2 kbps", []).append(evaluate(ref, codec2_roundtrip(ref, sample_rate, 3200)))
    return systems, all_codes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, action="append", metavar="[LABEL=]FOLDER",
                        help="a codec folder; repeat to compare codecs side by side (label default: ours, ours 2, ...)")
    parser.add_argument("--manifest", required=True, action="append", help="a corpus manifest; repeat for one section per source")
    parser.add_argument("--unseen", type=int, default=0, metavar="N",
                        help="also the unseen voices: the alsa recordings and N Piper sentences (with the heldout extra)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--clips", type=int, default=64)
    parser.add_argument("--max-seconds", type=float, default=6.0)
    parser.add_argument("--name", default="codec")
    args = parser.parse_args()

    codecs = {}
    for i, given in enumerate(args.model):
        label, _, folder = given.rpartition("=")
        codecs[label or ("ours" if i == 0 else f"ours {i + 1}")] = Codec.load(folder).for_inference()
    first = next(iter(codecs.values()))
    torch.set_num_threads(max(1, (os.cpu_count() or 1)))
    results, sections = {}, []
    for source, (clips, speakers) in sources(args, first.sample_rate).items():
        systems, all_codes = measure(codecs, clips, first.sample_rate)
        table = {name: summarize(rows) for name, rows in systems.items()}
        seconds = sum(c.shape[-1] for c in clips) / first.sample_rate
        sections += [f"## {source}: {len(clips)} clips ({seconds:.0f} s) of {speakers} speakers", "",
                     "| system | " + " | ".join(METRICS) + " |", "|---|" + "---:|" * len(METRICS)]
        sections += [f"| {name} | " + " | ".join(f"{row[m]:.3f}" for m in METRICS) + " |" for name, row in table.items()]
        sections.append("")
        results[source] = {"clips": len(clips), "seconds": seconds, "metrics": table,
                           "codebooks": {k: first_stats(codecs[k], v) for k, v in all_codes.items()},
                           "per_clip": {k: [{m: float(v) for m, v in r.items()} for r in rows] for k, rows in systems.items()}}
    speeds = {label: speed(codec) for label, codec in codecs.items()}

    lines = [
        f"# Codec benchmark ({args.name})", "",
        "Codecs: " + "; ".join(f"{label} = `{given.rpartition('=')[2]}` ({sum(p.numel() for p in c.parameters()) / 1e6:.2f} M "
                               f"parameters, decoder {c.config.decoder})" for (label, c), given in zip(codecs.items(), args.model))
        + f". Held-out speakers of each source (split `{args.split}`, each speaker in turn, at most {args.max_seconds:g} s a clip)"
        + (", and unseen voices (alsa-utils' recordings, a Piper voice where installed)" if args.unseen else "")
        + f"; {os.cpu_count()} CPU cores, {platform.machine()}, torch {torch.__version__}.", "",
        "Higher is better except mel_distance. PESQ-wb, STOI, ViSQOL (speech mode, lattice model), log-mel L1 distance, "
        "SI-SDR (dB).", "", *sections,
        "## Speed (one CPU thread, batch 1, 10 s of audio)", "", "| codec | encode x real time | decode x real time |", "|---|---:|---:|",
        *(f"| {label} | {e:.0f} | {d:.0f} |" for label, (e, d) in speeds.items()), ""]
    for label in codecs:
        stats = next(iter(results.values()))["codebooks"][label]
        lines += [f"## Codebooks of {label} on the first source's clips", "", "| level | usage | perplexity |", "|---:|---:|---:|"]
        lines += [f"| {k} | {s['usage']:.3f} | {s['perplexity']:.0f} |" for k, s in enumerate(stats, 1)] + [""]
    text = "\n".join(lines)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    write_text(RESULTS / f"{args.name}.md", text)
    write_json(RESULTS / f"{args.name}.json", {"models": args.model, "sources": results,
                                                  "speed_x_realtime": {k: {"encode": e, "decode": d} for k, (e, d) in speeds.items()}})
    print(f"wrote {RESULTS / (args.name + '.md')}")


def first_stats(codec: Codec, codes: list) -> list[dict]:
    return codec.quantizer.codebook_stats(torch.cat(codes, dim=-1))



if __name__ == "__main__":
    main()
