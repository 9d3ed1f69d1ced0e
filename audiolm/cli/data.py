"""Corpora and manifests: `audiolm data manifest | from-lhotse | stats | speakers | synth-speech | synth-piano`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from audiolm.cli.args import count, positive
from audiolm.errors import AudiolmError


def cmd_data_manifest(args: argparse.Namespace) -> None:
    from audiolm.data.manifest import format_summary, scan_folder, split_by_speaker, summarize, write_split_manifests

    if args.lhotse_recipe:
        from audiolm.data.lhotse_interop import from_recipe

        entries, failures = from_recipe(args.lhotse_recipe, args.folder, args.workers), []
    else:
        result = scan_folder(args.folder, workers=args.workers, progress=not args.quiet)
        entries, failures = result.entries, result.failures
    if not entries:
        raise AudiolmError(f"{args.folder}: no readable audio files found" + (f" ({len(failures)} unreadable)" if failures else ""))
    split_by_speaker(entries, args.valid_fraction, args.test_fraction, args.seed)
    written = write_split_manifests(args.output, entries)
    if args.lhotse_out:
        from audiolm.data.lhotse_interop import write_cuts

        write_cuts(entries, Path(args.output).resolve().parent, args.lhotse_out)
    if failures:
        failed_path = Path(args.output).with_suffix(".failed.txt")
        from audiolm.formats.atomic import write_text

        write_text(failed_path, "".join(f"{path}\t{problem}\n" for path, problem in failures))
        print(f"{len(failures)} unreadable files skipped, listed in {failed_path}", file=sys.stderr)
    print(format_summary(summarize(entries)))
    print("wrote " + ", ".join(str(p) for p in written.values()))


def cmd_data_from_lhotse(args: argparse.Namespace) -> None:
    from audiolm.data.lhotse_interop import read_lhotse
    from audiolm.data.manifest import format_summary, split_by_speaker, summarize, write_split_manifests

    entries = read_lhotse(args.manifest, args.supervisions)
    if not entries:
        raise AudiolmError(f"{args.manifest}: no file-backed recordings in this lhotse manifest")
    split_by_speaker(entries, args.valid_fraction, args.test_fraction, args.seed)
    write_split_manifests(args.output, entries)
    print(format_summary(summarize(entries)))


def cmd_data_stats(args: argparse.Namespace) -> None:
    from audiolm.data.manifest import format_summary, read_manifest, summarize

    print(format_summary(summarize(read_manifest(args.manifest))))


def cmd_data_speakers(args: argparse.Namespace) -> None:
    from audiolm.data.speakers import speaker_inventory

    inventory = speaker_inventory()
    counts: dict[str, int] = {}
    groups: dict[str, set] = {}
    for s in inventory:
        counts[s.engine] = counts.get(s.engine, 0) + 1
        groups.setdefault(s.engine, set()).add(s.group)
    for engine, n in counts.items():
        print(f"{engine:<9} {n:>5} speakers from {len(groups[engine]):>3} base voices")
    print(f"{'total':<9} {len(inventory):>5} speakers")


def cmd_synth_speech(args: argparse.Namespace) -> None:
    from audiolm.data.synth_speech import SpeechCorpusConfig, build_speech_corpus

    config = SpeechCorpusConfig(hours=args.hours, num_speakers=args.speakers, valid_speakers=args.valid_speakers,
                                test_speakers=args.test_speakers, seed=args.seed, rooms=not args.no_rooms)
    summary = build_speech_corpus(args.output, config, workers=args.workers, progress=not args.quiet)
    _print_corpus(summary, args.output)
    print(f"speakers the engines can make: {summary['inventory_speakers']}; failed utterances: {summary['failed']}")


def cmd_synth_piano(args: argparse.Namespace) -> None:
    from audiolm.data.synth_piano import PianoCorpusConfig, build_piano_corpus

    config = PianoCorpusConfig(hours=args.hours, clip_seconds=args.clip_seconds, seed=args.seed, soundfont=args.soundfont or "")
    summary = build_piano_corpus(args.output, config, workers=args.workers, progress=not args.quiet)
    _print_corpus(summary, args.output)
    print(f"pieces: {summary['pieces']} ({summary['generated_pieces']} generated); scores skipped: {summary['skipped_pieces']}")


def _print_corpus(summary: dict, output: str) -> None:
    from audiolm.data.manifest import format_summary

    print(f"corpus in {output}")
    print(format_summary({k: v for k, v in summary.items() if isinstance(v, dict)}))


def add_parsers(commands: argparse._SubParsersAction) -> None:
    data = commands.add_parser("data", help="build corpora and manifests").add_subparsers(dest="action", required=True)
    p = data.add_parser("manifest", help="scan a folder of audio (any layout, LibriSpeech / Libri-Light too) into a JSONL manifest")
    p.add_argument("folder")
    p.add_argument("-o", "--output", required=True, help="manifest.jsonl; per-split manifests are written beside it")
    p.add_argument("--workers", type=count, default=8)
    p.add_argument("--valid-fraction", type=float, default=0.05, help="of speakers")
    p.add_argument("--test-fraction", type=float, default=0.05, help="of speakers")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lhotse-recipe", metavar="NAME", help="prepare the folder with lhotse's recipe (librispeech, librilight, ...)")
    p.add_argument("--lhotse-out", metavar="CUTS.jsonl.gz", help="also write a lhotse CutSet")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_data_manifest)
    p = data.add_parser("from-lhotse", help="convert a lhotse CutSet (or RecordingSet + SupervisionSet) into a manifest")
    p.add_argument("manifest")
    p.add_argument("--supervisions")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--valid-fraction", type=float, default=0.05)
    p.add_argument("--test-fraction", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_data_from_lhotse)
    p = data.add_parser("stats", help="hours, utterances and speakers of a manifest, per split")
    p.add_argument("manifest")
    p.set_defaults(func=cmd_data_stats)
    p = data.add_parser("speakers", help="how many distinct synthetic speakers the installed engines can make")
    p.set_defaults(func=cmd_data_speakers)
    p = data.add_parser("synth-speech", help="synthesize a multi-speaker English corpus with phone alignments (resumable)")
    p.add_argument("--hours", type=positive, required=True)
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--speakers", type=int, default=100, help="training speakers")
    p.add_argument("--valid-speakers", type=int, default=8)
    p.add_argument("--test-speakers", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=count, default=2)
    p.add_argument("--no-rooms", action="store_true", help="no per-speaker reverb, noise and level")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_synth_speech)
    p = data.add_parser("synth-piano", help="render piano clips from music21 scores and generated MIDI (resumable)")
    p.add_argument("--hours", type=positive, required=True)
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--clip-seconds", type=float, default=20.0)
    p.add_argument("--soundfont", help="a .sf2 file (default: FluidR3_GM)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=count, default=2)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_synth_piano)
