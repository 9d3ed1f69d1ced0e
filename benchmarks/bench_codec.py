"""Codec benchmark: quality at 1.5 / 3 / 6 kbps beside Opus (6, 9 kbps) and codec2 (3.2 kbps) on
held-out speakers, codebook usage per level, and encode / decode speed on one CPU thread.

    .venv/bin/python benchmarks/bench_codec.py --model models/speech/codec --manifest data/speech/manifest.jsonl

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--clips", type=int, default=64)
    parser.add_argument("--max-seconds", type=float, default=6.0)
    parser.add_argument("--name", default="codec")
    args = parser.parse_args()

    codec = Codec.load(args.model).for_inference()
    audio = AudioClips(args.manifest, codec.sample_rate, args.split)
    clips = audio.fixed(args.clips, int(args.max_seconds * codec.sample_rate))  # each speaker in turn
    num_speakers = min(len(set(audio.speakers)), len(clips))
    systems: dict[str, list[dict]] = {}
    counts = sorted({codec.config.codebooks_for_bitrate(k) for k in (1.5, 3, 6)})
    levels = {f"ours {codec.config.bitrate(n) / 1000:g} kbps": n for n in counts}
    all_codes = []
    torch.set_num_threads(max(1, (os.cpu_count() or 1)))
    for wav in tqdm(clips, desc="clips"):
        ref = wav[0, 0].numpy()
        with torch.inference_mode():
            codes = codec.encode(wav)
            all_codes.append(codes)
            for name, n in levels.items():
                out = codec.decode(codes[:, :n])[0, 0, : ref.shape[-1]].numpy()
                systems.setdefault(name, []).append(evaluate(ref, out))
        for kbps in (6, 9):
            systems.setdefault(f"opus {kbps} kbps", []).append(evaluate(ref, opus_roundtrip(ref, codec.sample_rate, kbps)))
        systems.setdefault("codec2 3.2 kbps", []).append(evaluate(ref, codec2_roundtrip(ref, codec.sample_rate, 3200)))
    table = {name: summarize(rows) for name, rows in systems.items()}
    stats = codec.quantizer.codebook_stats(torch.cat(all_codes, dim=-1))
    encode_x, decode_x = speed(codec)

    seconds = sum(c.shape[-1] for c in clips) / codec.sample_rate
    lines = [
        f"# Codec benchmark ({args.name})", "",
        f"Model `{args.model}` ({sum(p.numel() for p in codec.parameters()) / 1e6:.2f} M parameters, decoder {codec.config.decoder}); "
        f"{len(clips)} clips ({seconds:.0f} s) of {num_speakers} held-out speakers, taken in turn (split `{args.split}` of "
        f"`{args.manifest}`); "
        f"{os.cpu_count()} CPU cores, {platform.machine()}, torch {torch.__version__}.", "",
        "| system | " + " | ".join(METRICS) + " |", "|---|" + "---:|" * len(METRICS),
    ]
    for name, row in table.items():
        lines.append(f"| {name} | " + " | ".join(f"{row[m]:.3f}" for m in METRICS) + " |")
    lines += ["", "Higher is better except mel_distance. PESQ-wb, STOI, ViSQOL (speech mode, lattice model), "
              "log-mel L1 distance, SI-SDR (dB).", "",
              "## Speed (one CPU thread, batch 1, 10 s of audio)", "",
              "| encode x real time | decode x real time |", "|---:|---:|", f"| {encode_x:.0f} | {decode_x:.0f} |", "",
              "## Codebooks on these clips", "", "| level | usage | perplexity |", "|---:|---:|---:|"]
    lines += [f"| {k} | {s['usage']:.3f} | {s['perplexity']:.0f} |" for k, s in enumerate(stats, 1)]
    text = "\n".join(lines) + "\n"
    print(text)
    RESULTS.mkdir(exist_ok=True)
    write_text(RESULTS / f"{args.name}.md", text)
    per_clip = {k: [{m: float(v) for m, v in r.items()} for r in rows] for k, rows in systems.items()}
    write_json(RESULTS / f"{args.name}.json", {"model": args.model, "clips": len(clips), "metrics": table, "encode_x_realtime": encode_x,
                                                  "decode_x_realtime": decode_x, "codebooks": stats, "per_clip": per_clip})
    print(f"wrote {RESULTS / (args.name + '.md')}")



if __name__ == "__main__":
    main()
