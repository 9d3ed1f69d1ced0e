"""Token shards and the stage LMs: `audiolm tokenize`, `audiolm lm train` (semantic, coarse, fine, parallel)."""

from __future__ import annotations

import argparse
from pathlib import Path

from audiolm import limits
from audiolm.cli.args import add_run_options, whole


def cmd_tokenize(args: argparse.Namespace) -> None:
    from audiolm.data.shards import tokenize_corpus

    summary = tokenize_corpus(args.manifest, args.semantic, args.codec, args.output, args.num_codebooks, args.shard_size,
                              args.workers, progress=not args.quiet)
    if summary["complete"]:
        print(f"tokenized {summary['utterances']} utterances ({summary['hours']:.3f} h) into {summary['shards']} shards in "
              f"{args.output} ({summary['tokenized']} written now); skipped {summary['skipped']} unreadable files")
    else:
        print(f"wrote {summary['tokenized']} of {summary['shards']} shards in {args.output}; the index is written when every "
              f"shard is done; skipped {summary['skipped']} unreadable files so far")


def cmd_lm_train(args: argparse.Namespace) -> None:
    from audiolm.train.lm import train_lm

    overrides = list(args.overrides)
    if args.shards:
        overrides.append(f"data.shards={Path(args.shards).resolve()}")
    if args.acoustic_only:
        overrides.append("stage.use_semantic=false")
    if args.dry_run:
        from audiolm.train.dry_run import lm_plan, report

        print(report(lm_plan(args.config, args.stage, overrides), args.world_size))
        return
    result = train_lm(args.config, args.stage, args.output, overrides, progress=not args.quiet, stop_after=args.stop_after)
    print(f"trained the {args.stage} stage to step {result.step}; run in {args.output} (model in {Path(args.output) / 'model'} "
          "when finished)")


def add_parsers(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("tokenize", help="a manifest's audio -> semantic ids and codec codes in uint16 shards (resumable; "
                            "torchrun splits the shards)")
    p.add_argument("manifest")
    p.add_argument("-o", "--output", required=True, help="shards folder: shard_*.safetensors + shard_*.json, index.json")
    p.add_argument("--semantic", required=True, help="semantic tokenizer folder")
    p.add_argument("--codec", required=True, help="codec folder (model.safetensors + config.json)")
    p.add_argument("--num-codebooks", type=whole("--num-codebooks", 1, limits.MAX_CODEBOOKS), help="codec levels to store (default all)")
    p.add_argument("--shard-size", type=whole("--shard-size", 1, limits.MAX_SHARD_SIZE), default=256, help="utterances per shard")
    p.add_argument("--workers", type=whole("--workers", 1, limits.MAX_WORKERS), default=1, help="processes, one thread each")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_tokenize)
    lm = commands.add_parser("lm", help="train the stage language models on token shards").add_subparsers(dest="action",
                                                                                                                 required=True)
    p = lm.add_parser("train", help="train (or resume) one stage; torchrun for several processes")
    p.add_argument("--stage", required=True, choices=("semantic", "coarse", "fine", "parallel"),
                   help="parallel: the SoundStorm-style acoustic stage (all num_coarse + num_fine levels, e.g. --config parallel)")
    p.add_argument("--config", default="small", help="preset name (tiny, small, base, paper) or a YAML file")
    p.add_argument("--shards", help="token shards from `audiolm tokenize`")
    p.add_argument("--acoustic-only", action="store_true", help="coarse or parallel stage without semantic tokens (the baseline)")
    add_run_options(p)
    p.set_defaults(func=cmd_lm_train)
