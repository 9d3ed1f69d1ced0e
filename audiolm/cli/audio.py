"""Audio files: `audiolm audio info | convert | plot`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from audiolm import limits
from audiolm.cli.args import check_audio_files, number, whole


def cmd_audio_info(args: argparse.Namespace) -> None:
    from audiolm.audio.dsp import loudness
    from audiolm.audio.io import audio_info, load_audio

    check_audio_files(args.files, limits.MAX_AUDIO_FILE_SECONDS)
    for path in args.files:
        info = audio_info(path)
        wav = load_audio(path, None, min_seconds=args.min_seconds, allow_silent=False)
        print(json.dumps({"path": str(path), "sample_rate": info.sample_rate, "channels": info.num_channels,
                          "duration": round(info.duration, 4), "peak": round(float(wav.abs().max()), 4),
                          "loudness_lufs": round(loudness(wav, info.sample_rate), 2)}))


def cmd_audio_convert(args: argparse.Namespace) -> None:
    from audiolm.audio.dsp import normalize_loudness
    from audiolm.audio.io import load_audio, save_audio

    check_audio_files([args.input], limits.MAX_AUDIO_FILE_SECONDS)
    wav = load_audio(args.input, args.sample_rate, allow_silent=args.normalize is None)
    if args.normalize is not None:
        wav = normalize_loudness(wav, args.sample_rate, args.normalize)
    save_audio(args.output, wav, args.sample_rate)
    print(f"wrote {args.output} ({wav.shape[-1] / args.sample_rate:.2f} s at {args.sample_rate} Hz)")


def cmd_audio_plot(args: argparse.Namespace) -> None:
    from audiolm.audio.io import load_audio
    from audiolm.audio.plot import plot_spectrograms

    limits.check_count("audio plot FILE count", len(args.files), 1, limits.MAX_PLOT_FILES)
    check_audio_files(args.files, limits.MAX_AUDIO_FILE_SECONDS)
    wavs = {Path(p).name: load_audio(p, args.sample_rate) for p in args.files}
    plot_spectrograms(wavs, args.sample_rate, args.output)
    print(f"wrote {args.output}")


_sample_rate = whole("--sample-rate", limits.MIN_SAMPLE_RATE, limits.MAX_SAMPLE_RATE)


def add_parsers(commands: argparse._SubParsersAction) -> None:
    audio = commands.add_parser("audio", help="inspect, convert and plot audio files").add_subparsers(dest="action", required=True)
    p = audio.add_parser("info", help="check audio files and print rate, length, peak and loudness")
    p.add_argument("files", nargs="+")
    p.add_argument("--min-seconds", type=number("--min-seconds", 0.0, limits.MAX_AUDIO_FILE_SECONDS), default=0.0,
                   help="fail on files shorter than this")
    p.set_defaults(func=cmd_audio_info)
    p = audio.add_parser("convert", help="resample to mono at a rate, optionally loudness-normalised")
    p.add_argument("input")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--sample-rate", type=_sample_rate, default=16000)
    p.add_argument("--normalize", type=number("--normalize", limits.MIN_LUFS, limits.MAX_LUFS), metavar="LUFS",
                   help="target loudness, e.g. -23")
    p.set_defaults(func=cmd_audio_convert)
    p = audio.add_parser("plot", help="draw log-mel spectrograms of audio files into a PNG")
    p.add_argument("files", nargs="+")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--sample-rate", type=_sample_rate, default=16000)
    p.set_defaults(func=cmd_audio_plot)
