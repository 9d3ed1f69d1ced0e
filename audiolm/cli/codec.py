"""The codec: `audiolm codec train | export | encode | decode`."""

from __future__ import annotations

import argparse
from pathlib import Path

from audiolm import limits
from audiolm.cli.args import add_run_options, check_audio_files, number, whole
from audiolm.errors import AudiolmError, FileError


def cmd_codec_train(args: argparse.Namespace) -> None:
    from audiolm.train.codec import train_codec

    overrides = list(args.overrides)
    if args.manifest:
        overrides.append(f"data.manifest={Path(args.manifest).resolve()}")
    if args.audio_shards:
        overrides.append(f"data.audio_shards={Path(args.audio_shards).resolve()}")
    if args.dry_run:
        from audiolm.train.dry_run import codec_plan, report

        print(report(codec_plan(args.config, overrides), args.world_size))
        return
    result = train_codec(args.config, args.output, overrides, progress=not args.quiet, stop_after=args.stop_after)
    print(f"trained to step {result.step}; run in {args.output} (model in {Path(args.output) / 'model'} when finished)")


def cmd_codec_export(args: argparse.Namespace) -> None:
    import torch

    from audiolm.train.codec import load_codec_from_run

    codec = load_codec_from_run(args.run)
    codec.save(args.output, dtype=torch.float16 if args.fp16 else None)
    size = (Path(args.output) / "model.safetensors").stat().st_size / 1e6
    print(f"wrote {args.output} ({size:.1f} MB{', fp16' if args.fp16 else ''}) from the latest checkpoint of {args.run}")


def codebooks(codec, num_codebooks: int | None = None, bitrate: float | None = None) -> int | None:
    """The codec levels that `--num-codebooks` or `--bitrate` (at most one of them) ask for; None: all."""
    if num_codebooks and bitrate:
        raise AudiolmError("give --num-codebooks or --bitrate, not both")
    if bitrate:
        return codec.config.codebooks_for_bitrate(bitrate)
    return num_codebooks


def read_encode_input(path, codec, max_seconds: float = limits.MAX_ENCODE_SECONDS):
    """The audio file `path`, read whole, as `[1, L]` at the codec's rate; refused from its header when longer than
    `max_seconds` (encoded in one pass). Shared with `audiolm serve`."""
    from audiolm.audio.io import load_audio

    check_audio_files([path], max_seconds)
    return load_audio(path, codec.sample_rate, allow_silent=True)


def encode_file(path, output, codec, num_codebooks: int | None = None, max_seconds: float = limits.MAX_ENCODE_SECONDS):
    """Encode the audio file `path` into the codes file `output`; returns the codes `[1, K, T]`."""
    import torch

    from audiolm.codec.codes_file import save_codes

    wav = read_encode_input(path, codec, max_seconds)
    with torch.inference_mode():
        codes = codec.encode(wav[None], num_codebooks)
    save_codes(output, codes, codec, wav.shape[-1])
    return codes


def read_codes(path, max_seconds: float = limits.MAX_ENCODE_SECONDS):
    """The `.codes` file `path` (a `CodesFile`), refused when over MAX_CODES_FILE_BYTES or holding more than
    `max_seconds` of audio (decoded in one pass). Shared with `audiolm serve`."""
    from audiolm.codec.codes_file import load_codes

    limits.check_file_bytes(path, limits.MAX_CODES_FILE_BYTES)
    stored = load_codes(path)
    if stored.num_samples > max_seconds * stored.sample_rate:
        raise FileError(path, f"holds {stored.num_samples / stored.sample_rate:.0f} s of audio; decode reads at most {max_seconds:g} s")
    return stored


def decode_codes(stored, path, codec, num_codebooks: int | None = None):
    """`stored` codes (read from `path`) decoded by `codec`, which must be the codec that wrote them: `wav [1, 1, L]`
    from `num_codebooks` levels (default all the file holds)."""
    import torch

    stored.check(codec, path)
    n = num_codebooks or stored.num_codebooks
    if n > stored.num_codebooks:
        raise AudiolmError(f"{path}: holds {stored.num_codebooks} levels, cannot decode {n}")
    with torch.inference_mode():
        return codec.decode(stored.codes[None, :n])[..., : stored.num_samples]


def cmd_codec_encode(args: argparse.Namespace) -> None:
    from audiolm.codec.model import Codec

    codec = Codec.load(args.model)
    codes = encode_file(args.input, args.output, codec, codebooks(codec, args.num_codebooks, args.bitrate))
    print(f"wrote {args.output}: {codes.shape[1]} levels x {codes.shape[2]} frames ({codec.config.bitrate(codes.shape[1]) / 1000:g} kbps)")


def cmd_codec_decode(args: argparse.Namespace) -> None:
    from audiolm.audio.io import save_audio
    from audiolm.codec.model import Codec

    stored = read_codes(args.input)
    codec = Codec.load(args.model)
    n = codebooks(codec, args.num_codebooks, args.bitrate) or stored.num_codebooks
    wav = decode_codes(stored, args.input, codec, n)
    save_audio(args.output, wav[0], codec.sample_rate)
    print(f"wrote {args.output} ({wav.shape[-1] / codec.sample_rate:.2f} s from {n} levels)")


def add_parsers(commands: argparse._SubParsersAction) -> None:
    codec = commands.add_parser("codec", help="train the SoundStream codec; encode audio to codes and back").add_subparsers(
        dest="action", required=True)
    p = codec.add_parser("train", help="train (or resume) a codec; torchrun for several processes")
    p.add_argument("--config", default="small", help="preset name (tiny, small, base, paper) or a YAML file")
    p.add_argument("--manifest", help="training manifest with train/valid splits")
    p.add_argument("--audio-shards", metavar="DIR", help="instead of --manifest: audio shards from `audiolm data shar`, streamed "
                                                         "(for corpora too large for memory)")
    add_run_options(p)
    p.set_defaults(func=cmd_codec_train)
    p = codec.add_parser("export", help="write a run's latest checkpoint as an inference model (model.safetensors + config.json)")
    p.add_argument("run")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--fp16", action="store_true", help="store weights as float16 (half the size)")
    p.set_defaults(func=cmd_codec_export)
    for action, helptext in (("encode", "audio file -> .codes file"), ("decode", ".codes file -> wav")):
        p = codec.add_parser(action, help=helptext)
        p.add_argument("input")
        p.add_argument("-o", "--output", required=True)
        p.add_argument("--model", required=True, help="codec folder (model.safetensors + config.json)")
        p.add_argument("--num-codebooks", type=whole("--num-codebooks", 1, limits.MAX_CODEBOOKS), help="levels to use (default all)")
        p.add_argument("--bitrate", type=number("--bitrate", 0.0, limits.MAX_BITRATE_KBPS, above_low=True), metavar="KBPS",
                       help="the most levels within this bitrate")
        p.set_defaults(func=cmd_codec_encode if action == "encode" else cmd_codec_decode)
