"""Which encoder and decoder give the better quality per CPU second?

Encoders: SoundStream's SEANet (strided causal convolutions) or a ConvNeXt on a causal STFT; decoders:
the SEANet mirror (transposed convolutions) or a ConvNeXt with an inverse-STFT head (Vocos). Trains the
`small` codec in each combination for the same CPU time (two processes side by side, one thread each,
same data and seed), then measures each on held-out speakers at 6 kbps and times it on one thread.

    .venv/bin/python benchmarks/bench_codec_architectures.py --manifest data/speech/manifest.jsonl --minutes 8

Writes benchmarks/results/codec_architectures.md and .json. Runs resume: re-running continues training.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import torch

from audiolm.data.datasets import AudioClips
from audiolm.eval.codec_metrics import METRICS, evaluate, summarize
from audiolm.formats.atomic import write_json, write_text
from audiolm.formats.json_file import read_json
from audiolm.train.codec import load_codec_from_run

RESULTS = Path(__file__).parent / "results"
VARIANTS = {  # name: (encoder, decoder); run two at a time
    "stft+istft": ("stft", "istft"),
    "stft+seanet": ("stft", "seanet"),
    "seanet+seanet": ("seanet", "seanet"),
    "seanet+istft": ("seanet", "istft"),
}


def decode_speed(codec, seconds: float = 10.0) -> tuple[float, float]:
    torch.set_num_threads(1)
    codec = codec.for_inference()
    wav = torch.randn(1, 1, int(seconds * codec.sample_rate)) * 0.1
    with torch.inference_mode():
        codes = codec.encode(wav)
        codec.decode(codes)
        start = time.perf_counter()
        codec.decode(codes)
        decode = seconds / (time.perf_counter() - start)
        start = time.perf_counter()
        codec.encode(wav)
        encode = seconds / (time.perf_counter() - start)
    return encode, decode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--minutes", type=float, default=15.0)
    parser.add_argument("--runs", default="runs/architectures")
    parser.add_argument("--clips", type=int, default=16)
    parser.add_argument("overrides", nargs="*", help="extra config overrides for both runs")
    args = parser.parse_args()

    names = list(VARIANTS)
    for pair in (names[:2], names[2:]):
        processes = []
        for name in pair:
            encoder, decoder = VARIANTS[name]
            command = [sys.executable, "-m", "audiolm.cli.main", "codec", "train", "--config", "small", "--manifest", args.manifest,
                       "-o", f"{args.runs}/{name}", "--quiet", f"model.encoder={encoder}", f"model.decoder={decoder}",
                       "train.num_threads=1", f"train.stop_after_minutes={args.minutes}", "train.valid_every=100000", *args.overrides]
            processes.append(subprocess.Popen(command))
        if any(p.wait() != 0 for p in processes):
            sys.exit("a training run failed")

    clips = AudioClips(args.manifest, 16000, "valid").fixed(args.clips, 4 * 16000)
    rows, table = {}, {}
    for name in VARIANTS:
        run = Path(args.runs) / name
        codec = load_codec_from_run(run)
        steps = int(read_json(sorted((run / "checkpoints").glob("step_*"))[-1] / "trainer_state.json")["step"])
        results = []
        with torch.inference_mode():
            for wav in clips:
                out = codec.decode(codec.encode(wav))[0, 0, : wav.shape[-1]].numpy()
                results.append(evaluate(wav[0, 0].numpy(), out))
        encode_x, decode_x = decode_speed(codec)
        params = sum(p.numel() for p in codec.parameters()) / 1e6
        rows[name] = {"steps": steps, "params_m": params, "encode_x_realtime": encode_x, "decode_x_realtime": decode_x,
                      **summarize(results)}
        table[name] = rows[name]
    lines = ["# Codec architectures at equal CPU time", "",
             f"Each run: the `small` codec (12 x 1024 codes, 50 Hz) with the encoder + decoder named, {args.minutes:g} minutes on one "
             f"CPU thread (two runs side by side), same data and seed; reconstruction at 6 kbps of {len(clips)} held-out clips "
             f"(`valid` split of `{args.manifest}`). Speeds: one thread, batch 1, 10 s of audio.", "",
             "| encoder + decoder | steps | params (M) | encode x RT | decode x RT | " + " | ".join(METRICS) + " |",
             "|---|---:|---:|---:|---:|" + "---:|" * len(METRICS)]
    for name, r in table.items():
        lines.append(f"| {name} | {r['steps']} | {r['params_m']:.2f} | {r['encode_x_realtime']:.0f} | {r['decode_x_realtime']:.0f} | "
                     + " | ".join(f"{r[m]:.3f}" for m in METRICS) + " |")
    text = "\n".join(lines) + "\n"
    print(text)
    RESULTS.mkdir(exist_ok=True)
    write_text(RESULTS / "codec_architectures.md", text)
    write_json(RESULTS / "codec_architectures.json", {"minutes": args.minutes, "overrides": args.overrides, "results": rows})


if __name__ == "__main__":
    main()
