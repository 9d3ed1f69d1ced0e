"""Corpora and manifests: `audiolm data manifest | from-lhotse | stats | mix | shar | speakers | synth-speech | synth-piano |
real-speech | transcribe`."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from audiolm import limits
from audiolm.cli.args import number, seconds, seed, whole
from audiolm.errors import AudiolmError, FileError


def cmd_data_manifest(args: argparse.Namespace) -> None:
    from audiolm.data.manifest import format_summary, scan_folder, split_by_speaker, summarize, write_split_manifests
    from audiolm.formats.atomic import write_text

    for output in filter(None, (args.output, args.lhotse_out)):
        _check_output(Path(output))  # before a scan that can take hours
    if args.lhotse_recipe:
        from audiolm.data.lhotse_interop import from_recipe

        entries, failures = from_recipe(args.lhotse_recipe, args.folder, args.workers), []
    else:
        result = scan_folder(args.folder, workers=args.workers, progress=not args.quiet, header_only=args.header_only)
        entries, failures = result.entries, result.failures
    if not entries:
        raise AudiolmError(f"{args.folder}: no readable audio files found" + (f" ({len(failures)} unreadable)" if failures else ""))
    split_by_speaker(entries, args.valid_fraction, args.test_fraction, args.seed)
    failed_path = Path(args.output).with_suffix(".failed.txt")
    try:
        written = write_split_manifests(args.output, entries)
        if args.lhotse_out:
            from audiolm.data.lhotse_interop import write_cuts

            write_cuts(entries, Path(args.output).resolve().parent, args.lhotse_out)
        if failures:
            write_text(failed_path, "".join(f"{path}\t{problem}\n" for path, problem in failures))
        else:
            failed_path.unlink(missing_ok=True)  # a stale list from an earlier scan
    except OSError as error:
        raise FileError(args.output, f"cannot write ({error.strerror or error})") from None
    if failures:
        print(f"{len(failures)} unreadable files skipped, listed in {failed_path}", file=sys.stderr)
    print(format_summary(summarize(entries)))
    print("wrote " + ", ".join(str(p) for p in written.values()))


def _check_output(path: Path) -> None:
    """Raise a `FileError` if `path` cannot be written: it is a folder, or a file stands where a folder must."""
    if path.is_dir():
        raise FileError(path, "is a folder; name the manifest file, e.g. manifest.jsonl")
    parent = next(p for p in path.absolute().parents if p.exists())
    if not parent.is_dir():
        raise FileError(path, f"cannot write here: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK):
        raise FileError(path, f"cannot write here: {parent} is not writable")


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
    from audiolm.data.mix import format_sources, summarize_sources

    entries = read_manifest(args.manifest)
    if not entries:
        raise AudiolmError(f"{args.manifest}: holds no entries")
    print(format_summary(summarize(entries)))
    if any(e.extra.get("source") or e.extra.get("corpus") for e in entries):
        print()
        print(format_sources(summarize_sources(entries)))


def cmd_data_mix(args: argparse.Namespace) -> None:
    from audiolm.data.manifest import format_summary, summarize, write_split_manifests
    from audiolm.data.mix import format_sources, mix, summarize_sources

    _check_output(Path(args.output))
    entries = mix(args.source, args.output, args.seed, args.valid_fraction, args.test_fraction)
    written = write_split_manifests(args.output, entries)
    print(format_summary(summarize(entries)))
    print()
    print(format_sources(summarize_sources(entries)))
    print("wrote " + ", ".join(str(p) for p in written.values()))


def cmd_data_shar(args: argparse.Namespace) -> None:
    from audiolm.data.audio_shards import write_shards

    summary = write_shards(args.manifest, args.output, args.shard_size, args.max_seconds, args.seed, args.sample_rate,
                           workers=args.workers, progress=not args.quiet)
    for split, s in summary.splits.items():
        print(f"{split:<6} {s['shards']:>6} shards {s['cuts']:>9} cuts {s['hours']:>10.2f} h"
              + (f"  ({s['skipped']} unreadable pieces skipped)" if s["skipped"] else ""))
    if summary.failures:
        print(f"{len(summary.failures)} pieces unreadable in this run, listed in {Path(args.output) / 'failed.txt'}", file=sys.stderr)
    print(f"wrote {summary.written} shards into {args.output}" + (" (the others were complete)" if summary.written < sum(
        s["shards"] for s in summary.splits.values()) else ""))


def _mix_source(text: str):
    from audiolm.data.mix import parse_source

    return parse_source(text)


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
                                test_speakers=args.test_speakers, seed=args.seed, rooms=not args.no_rooms, engines=args.engines)
    summary = build_speech_corpus(args.output, config, workers=args.workers, progress=not args.quiet)
    _print_corpus(summary, args.output)
    print(f"speakers the engines can make: {summary['inventory_speakers']}; failed utterances: {summary['failed']}")


def cmd_synth_piano(args: argparse.Namespace) -> None:
    from audiolm.data.synth_piano import PianoCorpusConfig, build_piano_corpus

    config = PianoCorpusConfig(hours=args.hours, clip_seconds=args.clip_seconds, seed=args.seed, soundfont=args.soundfont or "")
    summary = build_piano_corpus(args.output, config, workers=args.workers, progress=not args.quiet)
    _print_corpus(summary, args.output)
    print(f"pieces: {summary['pieces']} ({summary['generated_pieces']} generated); scores skipped: {summary['skipped_pieces']}")


def cmd_real_speech(args: argparse.Namespace) -> None:
    from audiolm.data.pseudo_speakers import ClusterConfig
    from audiolm.data.real_speech import RealSpeechConfig, build_real_speech

    config = RealSpeechConfig(max_clips=args.max_clips, cluster=ClusterConfig(threshold=args.cluster_threshold),
                              valid_fraction=args.valid_fraction, test_fraction=args.test_fraction, seed=args.seed)
    summary = build_real_speech(args.output, config, cache=args.cache, workers=args.workers, progress=not args.quiet)
    _print_corpus({k: v for k, v in summary.items() if k in ("all", "train", "valid", "test")}, args.output)
    for package, s in summary["sources"].items():
        print(f"{package}: {s['hours']:.2f} h, {s['clips']} clips, {s['speakers']} pseudo-speakers")
    reasons = ", ".join(f"{n} {reason}" for reason, n in summary["dropped_by_reason"].items())
    print(f"clips kept: {summary['kept']} of {summary['clips']}" + (f"; dropped: {reasons} (manifest.failed.txt)" if reasons else ""))


def cmd_data_transcribe(args: argparse.Namespace) -> None:
    from audiolm.data.transcribe import transcribe_manifest

    splits = tuple(dict.fromkeys(args.split)) if args.split else None
    result = transcribe_manifest(args.manifest, splits, args.asr, workers=args.workers, overwrite=args.overwrite,
                                 progress=not args.quiet)
    for path, problem in result.failures:
        print(f"skipped {path}: {problem}", file=sys.stderr)
    print(f"transcribed {result.transcribed} clips" + (f", {result.resumed} more from an interrupted run" if result.resumed else "")
          + (f"; {result.kept} kept their text" if result.kept else "")
          + (f"; {len(result.failures)} unreadable, skipped" if result.failures else ""))
    if result.written:
        print("wrote " + ", ".join(str(p) for p in result.written))


def _print_corpus(summary: dict, output: str) -> None:
    from audiolm.data.manifest import format_summary

    print(f"corpus in {output}")
    print(format_summary({k: v for k, v in summary.items() if isinstance(v, dict)}))


def _engines(text: str) -> tuple[str, ...]:
    """--engines: a comma-separated list of TTS engines."""
    from audiolm.data.speakers import ENGINES

    names = tuple(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))
    unknown = [name for name in names if name not in ENGINES]
    if unknown or not names:
        raise AudiolmError(f"--engines: must be some of {','.join(ENGINES)} (got {text!r})")
    return names


def _fraction(flag: str):
    return number(flag, 0.0, limits.MAX_HELD_OUT_FRACTION)


def add_parsers(commands: argparse._SubParsersAction) -> None:
    data = commands.add_parser("data", help="build corpora and manifests").add_subparsers(dest="action", required=True)
    p = data.add_parser("manifest", help="scan a folder of audio (any layout, LibriSpeech / Libri-Light too) into a JSONL manifest")
    p.add_argument("folder")
    p.add_argument("-o", "--output", required=True, help="manifest.jsonl; per-split manifests are written beside it")
    p.add_argument("--workers", type=whole("--workers", 1, limits.MAX_WORKERS), default=8, help="processes reading the files")
    p.add_argument("--header-only", action="store_true",
                   help="read headers only, not samples: much faster on huge corpora, but files with NaN, infinite "
                        "or silent samples, or truncated after their header, then reach the manifest")
    p.add_argument("--valid-fraction", type=_fraction("--valid-fraction"), default=0.05, help="of speakers")
    p.add_argument("--test-fraction", type=_fraction("--test-fraction"), default=0.05, help="of speakers")
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument("--lhotse-recipe", metavar="NAME", help="prepare the folder with lhotse's recipe (librispeech, librilight, ...)")
    p.add_argument("--lhotse-out", metavar="CUTS.jsonl.gz", help="also write a lhotse CutSet")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_data_manifest)
    p = data.add_parser("from-lhotse", help="convert a lhotse CutSet (or RecordingSet + SupervisionSet) into a manifest")
    p.add_argument("manifest")
    p.add_argument("--supervisions")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--valid-fraction", type=_fraction("--valid-fraction"), default=0.05)
    p.add_argument("--test-fraction", type=_fraction("--test-fraction"), default=0.05)
    p.add_argument("--seed", type=seed, default=0)
    p.set_defaults(func=cmd_data_from_lhotse)
    p = data.add_parser("stats", help="hours, utterances and speakers of a manifest, per split")
    p.add_argument("manifest")
    p.set_defaults(func=cmd_data_stats)
    p = data.add_parser("mix", help="combine corpora into one manifest with per-source sampling weights, speakers namespaced "
                                    "by source, splits kept speaker-disjoint")
    p.add_argument("--source", type=_mix_source, action="append", required=True, metavar="[NAME=]PATH[:WEIGHT]",
                   help="a manifest or a corpus folder (one being built: its complete items so far), and its sampling weight "
                        "(default 1: each second counts once; 2: twice, as if listed twice); NAME (default: the manifest's "
                        "folder) prefixes its speakers and ids; repeat for each source")
    p.add_argument("-o", "--output", required=True, help="manifest.jsonl; per-split manifests are written beside it")
    p.add_argument("--valid-fraction", type=_fraction("--valid-fraction"), default=0.05, help="of the speakers of a source without splits")
    p.add_argument("--test-fraction", type=_fraction("--test-fraction"), default=0.05, help="of the speakers of a source without splits")
    p.add_argument("--seed", type=seed, default=0)
    p.set_defaults(func=cmd_data_mix)
    p = data.add_parser("shar", help="write a manifest's audio into sequential tar shards (lhotse Shar: FLAC + cuts) for "
                                     "streamed codec / semantic training (--audio-shards); resumable")
    p.add_argument("manifest")
    p.add_argument("-o", "--output", required=True, help="a new folder (or one an interrupted run left, to finish it)")
    p.add_argument("--shard-size", type=whole("--shard-size", 1, limits.MAX_AUDIO_SHARD_CUTS), default=1000, help="cuts per shard")
    p.add_argument("--max-seconds", type=seconds("--max-seconds", limits.MAX_CUT_SECONDS), default=30.0,
                   help="longer files are cut into equal pieces no longer than this")
    p.add_argument("--sample-rate", type=whole("--sample-rate", limits.MIN_SAMPLE_RATE, limits.MAX_SAMPLE_RATE), default=16000,
                   help="the models' rate (audio is resampled and mixed to mono)")
    p.add_argument("--seed", type=seed, default=0, help="shuffles each split's pieces over the shards")
    p.add_argument("--workers", type=whole("--workers", 1, limits.MAX_WORKERS), default=2, help="processes, one shard at a time each")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_data_shar)
    p = data.add_parser("speakers", help="how many distinct synthetic speakers the installed engines can make")
    p.set_defaults(func=cmd_data_speakers)
    p = data.add_parser("synth-speech", help="synthesize a multi-speaker English corpus with phone alignments (resumable)")
    p.add_argument("--hours", type=seconds("--hours", limits.MAX_HOURS), required=True)
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--speakers", type=whole("--speakers", 1, limits.MAX_SPEAKERS), default=100, help="training speakers")
    p.add_argument("--valid-speakers", type=whole("--valid-speakers", 0, limits.MAX_SPEAKERS), default=8)
    p.add_argument("--test-speakers", type=whole("--test-speakers", 0, limits.MAX_SPEAKERS), default=8)
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument("--workers", type=whole("--workers", 1, limits.MAX_WORKERS), default=2)
    p.add_argument("--no-rooms", action="store_true", help="no per-speaker reverb, noise and level")
    p.add_argument("--engines", type=_engines, default=("espeak", "flite", "festival"),
                   help="TTS engines, comma-separated, some of espeak,flite,festival,kokoro (kokoro: the neural voices of "
                        "the kokoro extra, ~1x real time per core); part of the corpus's identity")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_synth_speech)
    p = data.add_parser("synth-piano", help="render piano clips from music21 scores and generated MIDI (resumable)")
    p.add_argument("--hours", type=seconds("--hours", limits.MAX_HOURS), required=True)
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--clip-seconds", type=number("--clip-seconds", limits.MIN_CLIP_SECONDS, limits.MAX_CLIP_SECONDS), default=20.0)
    p.add_argument("--soundfont", help="a .sf2 file (default: FluidR3_GM)")
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument("--workers", type=whole("--workers", 1, limits.MAX_WORKERS), default=2)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_synth_piano)
    p = data.add_parser("real-speech", help="recorded English voice acting from two freeware games in Debian (fetched, "
                                            "never installed), with pseudo-speakers (resumable)")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--cache", help="where the .deb packages are downloaded and unpacked (default: OUTPUT/cache)")
    p.add_argument("--workers", type=whole("--workers", 1, limits.MAX_WORKERS), default=2)
    p.add_argument("--max-clips", type=whole("--max-clips", 1, 2**31 - 1), help="only the first N clips (both games in turn)")
    p.add_argument("--cluster-threshold", type=number("--cluster-threshold", 0.0, 2.0, above_low=True), default=0.25,
                   help="cosine distance at which pseudo-speaker clusters stop merging (average linkage)")
    p.add_argument("--valid-fraction", type=_fraction("--valid-fraction"), default=0.05, help="of pseudo-speakers")
    p.add_argument("--test-fraction", type=_fraction("--test-fraction"), default=0.05, help="of pseudo-speakers")
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_real_speech)
    p = data.add_parser("transcribe", help="Whisper transcripts of a manifest's held-out entries, for evaluation only (resumable)",
                        description="Write Whisper's transcript into the `text` of each entry of the chosen splits that has "
                                    "none, with `text_source` (e.g. whisper-base) saying that it is not a reference "
                                    "transcript, so that resynthesis WER can be measured on corpora without transcripts. "
                                    "Training transcripts are not needed (AudioLM is textless), and Whisper was trained "
                                    "with transcripts: transcribe held-out splits only.")
    p.add_argument("manifest", help="manifest.jsonl; its per-split manifests beside it are updated too")
    p.add_argument("--split", action="append", metavar="SPLIT", help="a split to transcribe; repeat for more "
                                                                    "(default: test and valid)")
    p.add_argument("--asr", choices=("base", "tiny.en"), help="Whisper model (default: base where installed, else tiny.en)")
    p.add_argument("--workers", type=whole("--workers", 1, limits.MAX_WORKERS), default=2,
                   help="processes, one thread and one Whisper model each")
    p.add_argument("--overwrite", action="store_true", help="transcribe entries that have a text already (reference "
                                                              "transcripts too)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_data_transcribe)
