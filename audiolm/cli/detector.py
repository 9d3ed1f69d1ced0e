"""The generated-speech detector's data and training: `audiolm detector corpus | train`."""

from __future__ import annotations

import argparse
from pathlib import Path

from audiolm import limits
from audiolm.cli.args import add_run_options, seconds, whole
from audiolm.errors import AudiolmError


def cmd_detector_corpus(args: argparse.Namespace) -> None:
    import torch

    from audiolm.detector.data import KINDS, build_detection_corpus
    from audiolm.generation.pipeline import AudioLM

    kinds = args.kinds.split(",") if args.kinds else None
    unknown = sorted(set(kinds or ()) - set(KINDS))
    if unknown:
        raise AudiolmError(f"--kinds: unknown {', '.join(unknown)}; known: {', '.join(KINDS)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    model = AudioLM.load(args.models)
    path = build_detection_corpus(model, args.manifests, args.output, {"train": args.train, "valid": args.valid, "test": args.test},
                                  kinds, prompt_seconds=args.prompt_seconds, bundle=str(args.models), progress=not args.quiet)
    print(f"wrote {path}")


def cmd_detector_train(args: argparse.Namespace) -> None:
    from audiolm.train.detector import train_detector

    overrides = list(args.overrides)
    if args.data:
        overrides.append(f"data.manifest={Path(args.data).resolve()}")
    result = train_detector(args.config, args.output, overrides, progress=not args.quiet, stop_after=args.stop_after)
    print(f"trained the detector to step {result.step}; run in {args.output} (model in {Path(args.output) / 'model'} when finished)")


def add_parsers(commands: argparse._SubParsersAction) -> None:
    detector = commands.add_parser("detector", help="the generated-speech detector: its corpus (originals against a bundle's "
                                   "outputs) and its training").add_subparsers(dest="action", required=True)
    p = detector.add_parser("corpus", help="originals and what a bundle makes of them (codec, continuations, resynthesis, "
                            "unconditional), split by speaker; resumable")
    p.add_argument("manifests", nargs="+", metavar="MANIFEST", help="corpus manifests with train/valid/test splits")
    p.add_argument("--models", default="speech", help="the bundle whose outputs to detect (default: the bundled speech models)")
    p.add_argument("-o", "--output", required=True, help="corpus folder: audio/<kind>/, manifest.jsonl")
    for split, count in (("train", 240), ("valid", 24), ("test", 48)):
        p.add_argument(f"--{split}", type=whole(f"--{split}", 0, limits.MAX_EVAL_ITEMS * 100), default=count,
                       help=f"utterances per manifest from its {split} split, each giving an original and one generated item "
                            f"(default {count})")
    p.add_argument("--kinds", help="comma-separated generated kinds (default: all the bundle can make)")
    p.add_argument("--prompt-seconds", type=seconds("--prompt-seconds", limits.MAX_PROMPT_SECONDS), default=3.0,
                   help="continuations' prompt (at most half the utterance)")
    p.add_argument("--threads", type=whole("--threads", 1, limits.MAX_THREADS), help="CPU threads (default: PyTorch's)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_detector_corpus)
    p = detector.add_parser("train", help="train (or resume) the detector on a detection corpus")
    p.add_argument("--data", help="the corpus's manifest.jsonl (from `audiolm detector corpus`)")
    p.add_argument("--config", help="a YAML file of settings (default: the built-in ones)")
    add_run_options(p)
    p.set_defaults(func=cmd_detector_train)
