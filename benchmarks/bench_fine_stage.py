"""Is a fine stage worth it for our codec? Two measurements behind the bundles' choice to decode coarse levels only:

1. how predictable each codec level is from simple contexts, on a corpus's token shards: held-out cross-entropy
   (nats) of each level's unigram distribution, and of count-based bigrams on the previous frame's same level and
   on the same frame's level 1 (add-0.1 smoothing towards the unigram); ln 1024 = 6.93 is a blind guess;
2. what held-out audio sounds like (PESQ-wb, STOI) when the true coarse levels are decoded alone, with the true
   fine levels, with fine levels sampled by a fine LM, and with uniformly random fine levels.

    .venv/bin/python benchmarks/bench_fine_stage.py --shards runs/shards/speech-iter1 --fine-lm runs/lm/fine \\
        --manifest data/speech/manifest.jsonl --codec models/speech/codec

Writes benchmarks/results/fine_stage.md and .json.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch

RESULTS = Path(__file__).parent / "results"


def predictability(shards_folder: str, levels: int) -> list[dict]:
    from audiolm.data.shards import TokenShards

    shards = TokenShards(shards_folder)
    train = torch.cat([shards.codes(i) for i in shards.split("train")], dim=1).long()
    valid = torch.cat([shards.codes(i) for i in shards.split("valid")], dim=1).long()
    size = shards.codebook_size
    rows = []
    for level in range(min(levels, train.shape[0])):
        unigram = torch.bincount(train[level], minlength=size).double() + 0.5
        unigram /= unigram.sum()

        def conditional(context_train: torch.Tensor, target_train: torch.Tensor, context_valid: torch.Tensor,
                        target_valid: torch.Tensor, unigram: torch.Tensor = unigram) -> float:
            joint = torch.zeros(size, size, dtype=torch.float64)
            joint.index_put_((context_train, target_train), torch.ones(len(target_train), dtype=torch.float64), accumulate=True)
            smoothed = (joint + 0.1 * size * unigram[None]) / (joint.sum(1, keepdim=True) + 0.1 * size)
            return -smoothed[context_valid, target_valid].log().mean().item()

        row = {"level": level + 1, "unigram": -unigram[valid[level]].log().mean().item(),
               "previous_frame": conditional(train[level, :-1], train[level, 1:], valid[level, :-1], valid[level, 1:])}
        row["same_frame_level_1"] = (conditional(train[0], train[level], valid[0], valid[level]) if level else float("nan"))
        rows.append(row)
    return rows


def decoded_quality(manifest: str, codec_folder: str, fine_lm: str | None, num_coarse: int, num_fine: int, clips: int) -> dict:
    from audiolm.audio.io import load_audio
    from audiolm.codec.model import Codec
    from audiolm.data.manifest import read_manifest
    from audiolm.eval.codec_metrics import pesq_wb, stoi

    codec = Codec.load(codec_folder).eval()
    stage = None
    if fine_lm:
        from audiolm.generation.bundle import load_stage_from

        stage = load_stage_from(fine_lm)
        num_coarse, num_fine = stage.spec.num_coarse, stage.spec.num_fine
    entries = [e for e in read_manifest(manifest) if e.split == "test"]
    entries = entries[:: max(1, len(entries) // clips)][:clips]
    generator = torch.Generator().manual_seed(0)
    scores: dict[str, list[tuple[float, float]]] = {}
    with torch.inference_mode():
        for entry in entries:
            wav = load_audio(entry.audio_path(Path(manifest).parent), 16000)[:1][None]
            codes = codec.encode(wav, num_coarse + num_fine)
            coarse = codes[:, :num_coarse]
            variants = {f"true {num_coarse + num_fine} levels": codes, f"true {num_coarse} coarse levels only": coarse,
                        "coarse + random fine": torch.cat([coarse, torch.randint(0, codec.cardinality, codes[:, num_coarse:].shape,
                                                                                   generator=generator)], dim=1)}
            if stage is not None:
                from audiolm.generation.generate import generate_fine
                from audiolm.generation.sampling import Sampling

                fine = generate_fine(stage.model, stage.spec, coarse, Sampling(temperature=0.6), generator)
                variants["coarse + fine LM samples (T=0.6)"] = torch.cat([coarse, fine], dim=1)
            reference = wav.reshape(-1).numpy()
            for name, variant in variants.items():
                decoded = codec.decode(variant).reshape(-1).numpy()
                scores.setdefault(name, []).append((pesq_wb(reference, decoded), stoi(reference, decoded)))
    return {name: {"pesq_wb": float(np.mean([s[0] for s in rows])), "stoi": float(np.mean([s[1] for s in rows])), "clips": len(rows)}
            for name, rows in scores.items()}


def main() -> None:
    from audiolm.formats.atomic import write_json, write_text

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shards", required=True)
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--codec", required=True)
    parser.add_argument("--fine-lm", help="a fine-stage run or model (optional)")
    parser.add_argument("--levels", type=int, default=8)
    parser.add_argument("--num-coarse", type=int, default=3)
    parser.add_argument("--clips", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = predictability(args.shards, args.levels)
    quality = decoded_quality(args.manifest, args.codec, args.fine_lm, args.num_coarse, args.levels - args.num_coarse, args.clips)
    table = ["| level | unigram | given the previous frame's same level | given the same frame's level 1 |", "|---|---|---|---|"]
    table += [f"| {r['level']} | {r['unigram']:.2f} | {r['previous_frame']:.2f} | "
              + ("-" if math.isnan(r["same_frame_level_1"]) else f"{r['same_frame_level_1']:.2f}") + " |" for r in rows]
    decoded = ["| decoded codes | PESQ-wb | STOI |", "|---|---|---|"]
    decoded += [f"| {name} | {q['pesq_wb']:.2f} | {q['stoi']:.3f} |" for name, q in quality.items()]
    fine = f" --fine-lm {args.fine_lm}" if args.fine_lm else ""
    report = f"""# Is a fine stage worth it?

`benchmarks/bench_fine_stage.py --shards {args.shards} --manifest {args.manifest} --codec {args.codec}{fine}`

## How predictable each codec level is

Held-out cross-entropy in nats (validation speakers' tokens; counts from the training speakers'). A blind guess
costs ln 1024 = 6.93; a value above the unigram means the context carries less than the estimation noise.

{chr(10).join(table)}

## Decoded audio, {next(iter(quality.values()))['clips']} held-out clips

{chr(10).join(decoded)}
"""
    RESULTS.mkdir(exist_ok=True)
    write_text(RESULTS / "fine_stage.md", report)
    write_json(RESULTS / "fine_stage.json", {"predictability": rows, "decoded": quality, "args": vars(args)})
    print(report)


if __name__ == "__main__":
    main()
