"""Semantic LM on raw ids against ids with consecutive repeats removed (issue 17; AudioLM removes them): two LMs of the
same size trained on the same shards for the same steps, windows of the same number of tokens (so the same compute a
step; without repeats a window spans more seconds), scored on the held-out split in nats a token and **nats a second**.
Without repeats the LM leaves the durations out, so a duration model is added for a like-for-like figure: each unit's
run length given its id, counted on the train split (Witten-Bell smoothing to the lengths' unigram, lengths capped at
`--max-run`), scored on the held-out split.

    .venv/bin/python benchmarks/bench_semantic_dedup.py --shards data/shards-mix --steps 300 model.dim=128 model.num_layers=2

Runs go to runs/bench-dedup/{raw,dedup} (resumed when there); prints a markdown table and writes
benchmarks/results/semantic_dedup.md and .json (or --name).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import torch

from audiolm.data.shards import TokenShards
from audiolm.eval.counts import witten_bell
from audiolm.formats.atomic import write_json, write_text
from audiolm.semantic.tokenizer import remove_repeats
from audiolm.train.lm import train_lm

RESULTS = Path(__file__).parent / "results"


def run_lengths(shards: TokenShards, split: str, max_run: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Every utterance's units and run lengths (capped at `max_run`) in `split`, concatenated: `([N], [N])`."""
    units, lengths = [], []
    for index in sorted(shards.split(split)):
        ids, runs = remove_repeats(shards.semantic(index).long())
        units.append(ids)
        lengths.append(runs.clamp(max=max_run))
    return torch.cat(units), torch.cat(lengths)


def duration_nats(shards: TokenShards, vocab: int, valid_split: str, max_run: int) -> tuple[float, float, float]:
    """Held-out nats a unit of run length given the unit's id (Witten-Bell), of the lengths' unigram, and the mean
    run length in frames."""
    ids, runs = run_lengths(shards, "train", max_run)
    held_ids, held_runs = run_lengths(shards, valid_split, max_run)
    conditional, unigram = witten_bell(ids, runs, vocab, max_run + 1)
    return (float(-conditional[held_ids, held_runs].log().mean()), float(-unigram[held_runs].log().mean()),
            float(held_runs.double().mean()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shards", required=True)
    parser.add_argument("--config", default="small", help="LM preset")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--runs", default="runs/bench-dedup")
    parser.add_argument("--max-run", type=int, default=50)
    parser.add_argument("--name", default="semantic_dedup")
    parser.add_argument("overrides", nargs="*", help="key=value settings for both LMs")
    args = parser.parse_args()

    common = [f"data.shards={args.shards}", f"train.steps={args.steps}", f"train.valid_every={args.steps}",
              f"train.save_every={max(args.steps // 4, 1)}", "train.warmup_steps=20", "train.batch_size=8",
              f"train.num_threads={max(1, int(os.environ.get('OMP_NUM_THREADS', '1')))}", *args.overrides]
    results = {}
    for name, extra in (("raw", []), ("dedup", ["stage.dedup=true"])):
        began = time.perf_counter()
        result = train_lm(args.config, "semantic", Path(args.runs) / name, common + extra, progress=True)
        valid = [r for r in result.logs if "valid/lm/semantic/nats_per_second" in r][-1]
        results[name] = {"ce": valid["valid/lm/semantic/ce"], "accuracy": valid["valid/lm/semantic/accuracy_1"],
                         "nats_per_second": valid["valid/lm/semantic/nats_per_second"], "seconds": time.perf_counter() - began,
                         "step": valid["step"]}
    shards = TokenShards(args.shards)
    rate = shards.semantic_frame_rate
    per_unit, per_unit_unigram, mean_run = duration_nats(shards, shards.semantic_vocab, "valid", args.max_run)
    units_per_second = rate / mean_run
    raw, dedup = results["raw"], results["dedup"]
    durations = per_unit * units_per_second
    results["durations"] = {"nats_per_unit": per_unit, "nats_per_unit_unigram": per_unit_unigram, "mean_run_frames": mean_run,
                            "nats_per_second": durations}
    rows = [f"| raw ids | {rate:g} | {raw['ce']:.3f} | {100 * raw['accuracy']:.1f} | {raw['nats_per_second']:.1f} | 0 (in the ids) "
            f"| **{raw['nats_per_second']:.1f}** |",
            f"| repeats removed | {units_per_second:.1f} | {dedup['ce']:.3f} | {100 * dedup['accuracy']:.1f} | "
            f"{dedup['nats_per_second']:.1f} | {durations:.1f} | **{dedup['nats_per_second'] + durations:.1f}** |"]
    lines = [
        f"# Semantic LM: raw ids against repeats removed ({args.name})", "",
        f"Shards `{args.shards}` (vocabulary {shards.semantic_vocab}, {rate:g} ids a second); preset `{args.config}` with "
        f"{' '.join(args.overrides) or 'no overrides'}; {args.steps} steps of 8 windows of the same number of tokens each; "
        f"held-out split `valid`. Mean run {mean_run:.2f} frames: without repeats a window spans {mean_run:.2f}x the "
        f"seconds. {os.cpu_count()} CPU cores, {platform.machine()}, torch {torch.__version__}.", "",
        "| ids | tokens a second | nats a token | accuracy (%) | LM nats a second | durations nats a second | total nats a second |",
        "|---|---:|---:|---:|---:|---:|---:|", *rows, "",
        f"Durations: each unit's run length given its id (Witten-Bell), {per_unit:.3f} nats a unit held out (from their "
        f"unigram alone {per_unit_unigram:.3f}). Training time: raw {raw['seconds'] / 60:.1f} min, repeats removed "
        f"{dedup['seconds'] / 60:.1f} min (both resumed runs count only this call's part).", ""]
    text = "\n".join(lines)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    write_text(RESULTS / f"{args.name}.md", text)
    write_json(RESULTS / f"{args.name}.json", {"shards": args.shards, "config": args.config, "steps": args.steps,
                                                 "overrides": args.overrides, "results": results})


if __name__ == "__main__":
    main()
