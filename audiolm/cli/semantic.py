"""Semantic tokens: `audiolm semantic train | fit-kmeans | targets | tokenize | eval`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from audiolm import limits
from audiolm.cli.args import add_run_options, check_audio_files, seconds, seed, whole
from audiolm.errors import AudiolmError


def cmd_semantic_train(args: argparse.Namespace) -> None:
    from audiolm.train.semantic import train_semantic

    overrides = list(args.overrides)
    if args.manifest:
        overrides.append(f"data.manifest={Path(args.manifest).resolve()}")
    if args.audio_shards:
        overrides.append(f"data.audio_shards={Path(args.audio_shards).resolve()}")
    if args.targets:
        overrides.append(f"targets={Path(args.targets).resolve()}")
    if args.targets_dir:
        overrides.append(f"targets_dir={Path(args.targets_dir).resolve()}")
    if args.dry_run:
        from audiolm.train.dry_run import report, semantic_plan

        print(report(semantic_plan(args.config, overrides), args.world_size))
        return
    result = train_semantic(args.config, args.output, overrides, progress=not args.quiet, stop_after=args.stop_after)
    print(f"trained to step {result.step}; run in {args.output} (encoder in {Path(args.output) / 'model'} when finished)")


def cmd_semantic_fit_kmeans(args: argparse.Namespace) -> None:
    import torch

    from audiolm.semantic.tokenizer import fit_from_manifest

    if args.k > args.max_frames:
        raise AudiolmError(f"-k: must be at most --max-frames, {args.max_frames} (got {args.k}): each cluster needs a frame")
    tokenizer = fit_from_manifest(args.encoder, args.layer, args.k, args.manifest, args.split or None, args.max_hours, args.max_frames,
                                  seed=args.seed, progress=not args.quiet, interleave=args.interleave,
                                  whisper_windows=args.whisper_windows)
    tokenizer.save(args.output, dtype=torch.float16 if args.fp16 else None)
    supervised = getattr(tokenizer.encoder, "trained_with_transcripts", False)
    note = " (its teacher was trained with transcripts: not textless)" if supervised else ""
    print(f"wrote {args.output}: layer {args.layer}, K={args.k}, {tokenizer.frame_rate:g} tokens/s{note}")


def cmd_semantic_targets(args: argparse.Namespace) -> None:
    from audiolm.formats.atomic import check_writable
    from audiolm.semantic.targets import write_targets

    check_writable(args.output)
    splits = tuple(dict.fromkeys(part.strip() for part in args.split.split(",")))
    summary = write_targets(args.manifest, args.tokenizer, args.output, splits, args.max_hours, args.shard_size, args.windows,
                            progress=not args.quiet)
    print(f"wrote {args.output}: {summary['utterances']} utterances ({summary['hours']:.2f} h) of split(s) "
          f"{', '.join(summary['splits'])} in {summary['shards']} shards, {summary['written']} written now")


def cmd_semantic_tokenize(args: argparse.Namespace) -> None:
    from audiolm.audio.io import load_audio
    from audiolm.formats.atomic import write_jsonl
    from audiolm.semantic.tokenizer import SemanticTokenizer, remove_repeats

    tokenizer = SemanticTokenizer.load(args.tokenizer)
    check_audio_files(args.files, limits.MAX_ENCODE_SECONDS)  # each is tokenized in one pass
    records = []
    for path in args.files:
        ids = tokenizer(load_audio(path, tokenizer.sample_rate, allow_silent=True)[None])[0]
        record = {"path": str(path), "frame_rate": tokenizer.frame_rate}
        if args.dedup:
            units, lengths = remove_repeats(ids)
            record.update(ids=units.tolist(), lengths=lengths.tolist())
        else:
            record["ids"] = ids.tolist()
        records.append(record)
        if not args.output:
            print(json.dumps(record))
    if args.output:
        write_jsonl(args.output, records)
        print(f"wrote {args.output}: {len(records)} files")


def cmd_semantic_eval(args: argparse.Namespace) -> None:
    from audiolm.eval.semantic import (
        Representation,
        codec_representations,
        evaluate_representations,
        format_table,
        held_out,
        tokenizer_representations,
    )
    from audiolm.formats.atomic import write_text
    from audiolm.semantic.encoder import MFCCEncoder
    from audiolm.semantic.tokenizer import SemanticTokenizer

    entries = held_out(args.manifest, args.splits.split(","))
    reps = []
    if args.mfcc:
        mfcc = MFCCEncoder()
        reps.append(Representation("MFCC (continuous)", mfcc.frame_rate, mfcc.layer_features))
    for folder in args.tokenizers:
        reps += tokenizer_representations(Path(folder).name, SemanticTokenizer.load(folder), continuous=not args.no_continuous)
    if args.codec:
        from audiolm.codec.model import Codec

        reps += codec_representations(Codec.load(args.codec))
    if not reps:
        raise AudiolmError("nothing to evaluate: give tokenizer folders, --mfcc or --codec")
    rows = evaluate_representations(reps, entries, Path(args.manifest).parent, progress=not args.quiet)
    speakers = len({e.speaker for e in entries})
    table = format_table(rows)
    print(table)
    if args.output:
        write_text(args.output, f"# Semantic token evaluation\n\n{len(entries)} utterances of {speakers} held-out speakers "
                                f"({args.splits}) from {args.manifest}.\n\n{table}\n")
        print(f"wrote {args.output}")


def add_parsers(commands: argparse._SubParsersAction) -> None:
    semantic = commands.add_parser("semantic", help="semantic tokens: train the self-supervised encoder, fit k-means, tokenize, "
                                   "evaluate").add_subparsers(dest="action", required=True)
    p = semantic.add_parser("train", help="train (or resume) the self-supervised encoder (HuBERT-style); torchrun for several processes")
    p.add_argument("--config", default="small", help="preset name (tiny, small, base, paper) or a YAML file")
    p.add_argument("--manifest", help="training manifest with train/valid splits")
    p.add_argument("--audio-shards", metavar="DIR", help="instead of --manifest: audio shards from `audiolm data shar`, streamed "
                                                         "(for corpora too large for memory)")
    p.add_argument("--targets", help="tokenizer folder giving the targets (fit-kmeans on mfcc-25hz, or on the previous encoder)")
    p.add_argument("--targets-dir", metavar="DIR", help="instead of --targets: ids precomputed by `audiolm semantic targets` "
                                                        "(a slow teacher such as whisper-base; with --manifest)")
    add_run_options(p)
    p.set_defaults(func=cmd_semantic_train)
    p = semantic.add_parser("fit-kmeans", help="fit a tokenizer: one encoder layer, standardised, k-means")
    p.add_argument("--encoder", required=True, help="mfcc, mfcc-25hz, whisper-base (--layer 6, its encoder "
                   "output; trained with transcripts, so not textless), an encoder folder or training run, or a Hugging Face model folder")
    p.add_argument("--layer", type=whole("--layer", 0, limits.MAX_ENCODER_LAYER), default=0,
                   help="0 = input to the first block, i = output of block i")
    p.add_argument("-k", type=whole("-k", 2, limits.MAX_KMEANS_K), default=1024, help="number of clusters")
    p.add_argument("--manifest", required=True)
    p.add_argument("--split", default="train", help="manifest split to fit on ('' for all)")
    p.add_argument("--max-hours", type=seconds("--max-hours", limits.MAX_KMEANS_HOURS), help="audio to load (default: the whole split)")
    p.add_argument("--max-frames", type=whole("--max-frames", 1, limits.MAX_KMEANS_FRAMES), default=200_000)
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument("--fp16", action="store_true", help="store the encoder weights as float16")
    p.add_argument("--interleave", type=whole("--interleave", 1, limits.MAX_INTERLEAVE), default=1,
                   help="frames at this multiple of the encoder's rate (2: a 25 Hz encoder run on two shifted copies gives 50 Hz)")
    p.add_argument("--whisper-windows", choices=("full", "trimmed"), default="full",
                   help="whisper-base only: fit on 30 s windows (as `semantic tokenize` runs it) or on windows cut to each clip "
                        "(as `semantic targets` runs it by default; far faster on short clips)")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_semantic_fit_kmeans)
    p = semantic.add_parser("targets", help="precompute a tokenizer's ids of a manifest's utterances (training targets from a "
                            "slow teacher); resumable")
    p.add_argument("manifest")
    p.add_argument("--tokenizer", required=True, help="tokenizer folder (e.g. fit-kmeans on whisper-base)")
    p.add_argument("-o", "--output", required=True, help="targets folder (re-running resumes it)")
    p.add_argument("--split", default="train,valid", help="comma-separated manifest splits ('' for every entry)")
    p.add_argument("--max-hours", type=seconds("--max-hours", limits.MAX_HOURS), help="per split, in whole shards (default: all)")
    p.add_argument("--shard-size", type=whole("--shard-size", 1, limits.MAX_SHARD_SIZE), default=256, help="utterances per shard")
    p.add_argument("--windows", choices=("trimmed", "packed", "full"), default="trimmed",
                   help="Whisper only: a window cut to each utterance (default), several utterances to a 30 s window, or a "
                        "whole 30 s window each")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_semantic_targets)
    p = semantic.add_parser("tokenize", help="audio files -> semantic ids (JSON lines)")
    p.add_argument("files", nargs="+")
    p.add_argument("--tokenizer", required=True, help="tokenizer folder")
    p.add_argument("--dedup", action="store_true", help="remove consecutive repeats (run lengths kept)")
    p.add_argument("-o", "--output", help="JSONL file (default: print)")
    p.set_defaults(func=cmd_semantic_tokenize)
    p = semantic.add_parser("eval", help="ABX within/across speakers and a speaker-ID probe on held-out speakers")
    p.add_argument("tokenizers", nargs="*", help="tokenizer folders")
    p.add_argument("--manifest", required=True, help="a manifest with phone alignments (e.g. from synth-speech)")
    p.add_argument("--splits", default="test,valid", help="comma-separated held-out splits")
    p.add_argument("--mfcc", action="store_true", help="also score continuous MFCCs (baseline)")
    p.add_argument("--codec", help="also score this codec's tokens")
    p.add_argument("--no-continuous", action="store_true", help="score the tokenizers' ids only")
    p.add_argument("-o", "--output", help="write the table to this markdown file")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_semantic_eval)
