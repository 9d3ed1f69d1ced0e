"""Semantic token benchmark: ABX within / across speakers and a speaker-ID probe on held-out speakers for
MFCCs (continuous and k-means), every layer of our self-supervised encoder (continuous, and quantised with
each K: the paper's figure 3 sweep), and the codec's tokens; then tokenization speed on one CPU thread.

    .venv/bin/python benchmarks/bench_semantic.py --encoder runs/semantic/iter1 --codec models/speech/codec \\
        --manifest data/speech/manifest.jsonl [--save-best models/speech/semantic]

Prints markdown tables and writes benchmarks/results/semantic.md and semantic.json (or --name). With
--save-best, the (layer, K) with the lowest ABX across speakers is written as a tokenizer folder (fp16 encoder).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import time
from pathlib import Path

import torch
from tqdm import tqdm

from audiolm.audio.io import load_audio
from audiolm.codec.model import Codec
from audiolm.data.datasets import AudioClips
from audiolm.eval.abx import extract_features
from audiolm.eval.semantic import codec_representations, format_table, held_out, score
from audiolm.formats.atomic import write_json, write_text
from audiolm.semantic.encoder import MFCCEncoder
from audiolm.semantic.interleave import Interleaved
from audiolm.semantic.kmeans import assign
from audiolm.semantic.tokenizer import SemanticTokenizer, load_encoder, tokenizer_from_frames

RESULTS = Path(__file__).parent / "results"


def train_frames(encoder, clips: AudioClips, layers: list[int], max_frames: int) -> dict[int, torch.Tensor]:
    """Frames `[N, D]` of each layer over training clips (shuffled clips, at most `max_frames` per layer)."""
    order = torch.randperm(len(clips), generator=torch.Generator().manual_seed(0)).tolist()
    frames: dict[int, list[torch.Tensor]] = {layer: [] for layer in layers}
    total = 0
    with torch.inference_mode():
        for i in tqdm(order, desc="train features", unit="clip"):
            wav = torch.from_numpy(clips.clips[i].astype("float32") / 32767)[None, None]
            states = all_layers(encoder, wav, max(layers))
            for layer in layers:
                frames[layer].append(states[layer][0].float())
            total += states[layers[0]].shape[1]
            if total >= max_frames:
                break
    return {layer: torch.cat(f)[:max_frames] for layer, f in frames.items()}


def all_layers(encoder, wav: torch.Tensor, max_layer: int) -> dict[int, torch.Tensor] | list[torch.Tensor]:
    """Features of layers 0..max_layer, indexed by layer (an encoder with `available_layers`, e.g. Whisper: only those)."""
    if hasattr(encoder, "hidden_states"):
        return encoder.hidden_states(wav, max_layer=max_layer)
    layers = getattr(encoder, "available_layers", range(max_layer + 1))
    return {layer: encoder.layer_features(wav, layer) for layer in layers if layer <= max_layer}


def quantise(features: dict[str, torch.Tensor], tokenizer: SemanticTokenizer) -> dict[str, torch.Tensor]:
    return {k: assign((v.float() - tokenizer.mean) / tokenizer.std, tokenizer.centroids) for k, v in features.items()}


def centroids(ids: dict[str, torch.Tensor], tokenizer: SemanticTokenizer) -> dict[str, torch.Tensor]:
    """Each frame's token as its centroid vector: ABX then uses the angular distance between units instead of 0/1."""
    return {k: tokenizer.centroids[v] for k, v in ids.items()}


def speed(tokenizer: SemanticTokenizer, seconds: float = 20.0, repeats: int = 3) -> float:
    """x real time of tokenization (encoder up to its layer + k-means), one thread, batch 1."""
    wav = torch.randn(1, 1, int(seconds * tokenizer.sample_rate)) * 0.1
    tokenizer(wav)
    start = time.perf_counter()
    for _ in range(repeats):
        tokenizer(wav)
    return seconds * repeats / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--encoder", required=True, help="encoder folder or training run (or a Hugging Face model folder)")
    parser.add_argument("--codec", help="codec folder, to score its tokens")
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--splits", default="test,valid")
    parser.add_argument("--ks", default="50,100,200,500,1024")
    parser.add_argument("--layers", help="comma-separated layers (default: all)")
    parser.add_argument("--train-hours", type=float, default=1.0, help="training audio for the k-means fits")
    parser.add_argument("--max-frames", type=int, default=100_000)
    parser.add_argument("--iterations", type=int, default=60, help="mini-batch k-means iterations")
    parser.add_argument("--save-best", help="write the best tokenizer (lowest ABX across) to this folder")
    parser.add_argument("--threads", type=int, default=1, help="threads for features and k-means (speed is timed on one)")
    parser.add_argument("--interleave", type=int, default=1,
                        help="run the encoder on this many shifted copies and interleave its frames (2: a 25 Hz encoder at 50 Hz)")
    parser.add_argument("--name", default="semantic")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    began = time.perf_counter()

    entries = held_out(args.manifest, args.splits.split(","))
    root = Path(args.manifest).parent
    encoder = load_encoder(args.encoder)
    encoder = encoder.eval() if hasattr(encoder, "eval") else encoder
    if args.interleave > 1:
        encoder = Interleaved(encoder, args.interleave)
    every_layer = getattr(encoder, "available_layers", range(encoder.num_layers + 1))  # Whisper: its last layer only
    layers = [int(x) for x in args.layers.split(",")] if args.layers else list(every_layer)
    ks = [int(k) for k in args.ks.split(",")]
    clips = AudioClips(args.manifest, 16000, "train", args.train_hours, progress=True)
    rows: list[dict] = []

    def add(row: dict, **extra) -> None:
        row.update(extra)
        rows.append(row)
        print(format_table([row]).splitlines()[-1], flush=True)

    # baselines: MFCCs, continuous and k-means (K=100, as HuBERT's first iteration), at 50 Hz and stacked to the
    # encoder's 25 Hz (the same rate as our tokens: fewer frames per phone make ABX harder)
    for mfcc, rate_name in ((MFCCEncoder(), ""), (MFCCEncoder(stack=2), ", 25 Hz")):
        mfcc_features = extract_features(mfcc.layer_features, entries, root)
        add(score(f"MFCC (continuous{rate_name})", mfcc_features, mfcc.frame_rate, entries), kind="mfcc", layer=0, k=0)
        mfcc_train = train_frames(mfcc, clips, [0], args.max_frames)[0]
        mfcc_tokenizer = tokenizer_from_frames(mfcc, 0, mfcc_train, 100, args.iterations)
        mfcc_ids = quantise(mfcc_features, mfcc_tokenizer)
        add(score(f"MFCC k-means (K=100{rate_name})", mfcc_ids, mfcc.frame_rate, entries, 100), kind="mfcc", layer=0, k=100)
        add(score(f"MFCC k-means (K=100{rate_name}, centroids)", centroids(mfcc_ids, mfcc_tokenizer), mfcc.frame_rate, entries),
            kind="mfcc", layer=0, k=100)

    # the codec's tokens
    if args.codec:
        codec = Codec.load(args.codec)
        for rep in codec_representations(codec):
            add(score(rep.name, extract_features(rep.extract, entries, root), rep.frame_rate, entries, rep.codebook_size),
                kind="codec", layer=0, k=rep.codebook_size)

    # every layer of the encoder, continuous and quantised with each K
    held = {}
    with torch.inference_mode():
        for entry in tqdm(entries, desc="held-out features", unit="utt"):
            states = all_layers(encoder, load_audio(entry.audio_path(root), 16000)[None], max(layers))
            held[entry.id] = {layer: states[layer][0].float() for layer in layers}
    fitted = train_frames(encoder, clips, layers, args.max_frames)
    best = None
    for layer in layers:
        features = {uid: per_layer[layer] for uid, per_layer in held.items()}
        add(score(f"encoder layer {layer} (continuous)", features, encoder.frame_rate, entries), kind="continuous", layer=layer, k=0)
        for k in ks:
            tokenizer = tokenizer_from_frames(encoder, layer, fitted[layer], k, args.iterations)
            ids = quantise(features, tokenizer)
            row = score(f"encoder layer {layer}, K={k}", ids, encoder.frame_rate, entries, k)
            add(row, kind="tokens", layer=layer, k=k)
            add(score(f"encoder layer {layer}, K={k} (centroids)", centroids(ids, tokenizer), encoder.frame_rate, entries),
                kind="centroids", layer=layer, k=k)
            if best is None or row["abx_across"] < best[0]["abx_across"]:
                best = (row, tokenizer)

    best_row, best_tokenizer = best
    torch.set_num_threads(1)
    tokens_per_second = speed(best_tokenizer)
    print(f"best: layer {best_row['layer']}, K={best_row['k']}: ABX across {best_row['abx_across']:.1f}%; "
          f"tokenization {tokens_per_second:.0f}x real time on one thread")
    if args.save_best:
        best_tokenizer.save(args.save_best, dtype=torch.float16)
        print(f"wrote {args.save_best}")

    # the report
    speakers = len({e.speaker for e in entries})
    summary_names = {r["name"] for r in rows if r["kind"] == "mfcc"}
    summary_names |= {r["name"] for r in rows if r["kind"] == "codec"}
    best_centroids = min((r for r in rows if r["kind"] == "centroids"), key=lambda r: r["abx_across"], default=None)
    summary = [r for r in rows if r["name"] in summary_names] + ([best_centroids] if best_centroids else []) + [best_row]
    best_continuous = min((r for r in rows if r["kind"] == "continuous"), key=lambda r: r["abx_across"])
    summary.insert(-1, best_continuous)
    grid = ["| layer | continuous | " + " | ".join(f"K={k}" for k in ks) + " |", "|---" * (len(ks) + 2) + "|"]
    for layer in layers:
        cells = {r["k"]: r for r in rows if r["layer"] == layer and r["kind"] in ("continuous", "tokens")}
        grid.append(f"| {layer} | " + " | ".join(_pct(cells[k]["abx_across"]) if k in cells else "" for k in [0, *ks]) + " |")
    probe = ["| layer | continuous | " + " | ".join(f"K={k}" for k in ks) + " |", "|---" * (len(ks) + 2) + "|"]
    for layer in layers:
        cells = {r["k"]: r for r in rows if r["layer"] == layer and r["kind"] in ("continuous", "tokens")}
        probe.append(f"| {layer} | " + " | ".join(f"{cells[k]['speaker_probe']:.2f}" if k in cells else "" for k in [0, *ks]) + " |")
    minutes = (time.perf_counter() - began) / 60
    report = f"""# Semantic tokens: ABX and speaker identity

`{' '.join(['benchmarks/bench_semantic.py', '--encoder', args.encoder, *(['--codec', args.codec] if args.codec else []),
            '--manifest', args.manifest, *(['--interleave', str(args.interleave)] if args.interleave > 1 else []),
            *(['--layers', args.layers] if args.layers else []), *(['--ks', args.ks] if args.ks != parser.get_default('ks') else [])])}`

{len(entries)} utterances of {speakers} held-out speakers (splits {args.splits}); k-means fitted on
{min(args.max_frames, len(fitted[layers[0]]))} frames of training speakers' audio. ABX error in percent (lower: phones
better told apart), within one speaker and across speakers (the paper's figure 3 and table: w2v-BERT 7.6, SoundStream 26.6
across); speaker probe: test accuracy of a logistic regression on one pooled vector per utterance (lower: less
speaker identity; chance {rows[0]['probe_chance']:.2f}). {platform.processor() or platform.machine()}, {args.threads} thread(s),
{os.cpu_count()} cores, {minutes:.0f} min; tokenization speed on one thread.

## Summary

{format_table(summary)}

Best tokenizer (lowest ABX across): layer {best_row['layer']}, K={best_row['k']}; it tokenizes at
**{tokens_per_second:.0f}x real time on one CPU thread** ({best_tokenizer.frame_rate:g} tokens/s).

## ABX across speakers (%) by layer and K

{chr(10).join(grid)}

## Speaker probe accuracy by layer and K

{chr(10).join(probe)}

## Every representation

{format_table(rows)}
"""
    RESULTS.mkdir(exist_ok=True)
    write_text(RESULTS / f"{args.name}.md", report)
    write_json(RESULTS / f"{args.name}.json", {"rows": rows, "best": best_row, "tokenization_x_realtime": tokens_per_second,
                                               "encoder": args.encoder, "manifest": args.manifest})
    print(report)


def _pct(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:.1f}"


if __name__ == "__main__":
    main()
