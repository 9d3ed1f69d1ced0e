"""The `audiolm` command: argument parsing only; each command calls one library function.

Errors caused by input (a bad file, flag or folder) print one line, `audiolm: error: <file>: <problem>`,
and exit with status 1; set AUDIOLM_DEBUG=1 to see the traceback instead.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from audiolm import __version__
from audiolm.errors import AudiolmError


def _workers(value: str) -> int:
    n = int(value)
    if n < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return n


def _positive(value: str) -> float:
    x = float(value)
    if not x > 0:
        raise argparse.ArgumentTypeError("must be positive")
    return x


def cmd_audio_info(args: argparse.Namespace) -> None:
    from audiolm.audio.dsp import loudness
    from audiolm.audio.io import audio_info, load_audio

    for path in args.files:
        info = audio_info(path)
        wav = load_audio(path, None, min_seconds=args.min_seconds, allow_silent=False)
        print(json.dumps({"path": str(path), "sample_rate": info.sample_rate, "channels": info.num_channels,
                          "duration": round(info.duration, 4), "peak": round(float(wav.abs().max()), 4),
                          "loudness_lufs": round(loudness(wav, info.sample_rate), 2)}))


def cmd_audio_convert(args: argparse.Namespace) -> None:
    from audiolm.audio.dsp import normalize_loudness
    from audiolm.audio.io import load_audio, save_audio

    wav = load_audio(args.input, args.sample_rate, allow_silent=args.normalize is None)
    if args.normalize is not None:
        wav = normalize_loudness(wav, args.sample_rate, args.normalize)
    save_audio(args.output, wav, args.sample_rate)
    print(f"wrote {args.output} ({wav.shape[-1] / args.sample_rate:.2f} s at {args.sample_rate} Hz)")


def cmd_audio_plot(args: argparse.Namespace) -> None:
    from audiolm.audio.io import load_audio
    from audiolm.audio.plot import plot_spectrograms

    wavs = {Path(p).name: load_audio(p, args.sample_rate) for p in args.files}
    plot_spectrograms(wavs, args.sample_rate, args.output)
    print(f"wrote {args.output}")


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
        from audiolm.files import write_text

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


def cmd_codec_train(args: argparse.Namespace) -> None:
    from audiolm.train.codec import train_codec

    overrides = list(args.overrides)
    if args.manifest:
        overrides.append(f"data.manifest={Path(args.manifest).resolve()}")
    result = train_codec(args.config, args.output, overrides, progress=not args.quiet, stop_after=args.stop_after)
    print(f"trained to step {result.step}; run in {args.output} (model in {Path(args.output) / 'model'} when finished)")


def cmd_codec_export(args: argparse.Namespace) -> None:
    import torch

    from audiolm.train.codec import load_codec_from_run

    codec = load_codec_from_run(args.run)
    codec.save(args.output, dtype=torch.float16 if args.fp16 else None)
    size = (Path(args.output) / "model.safetensors").stat().st_size / 1e6
    print(f"wrote {args.output} ({size:.1f} MB{', fp16' if args.fp16 else ''}) from the latest checkpoint of {args.run}")


def _codebooks(args: argparse.Namespace, codec) -> int | None:
    if args.num_codebooks and args.bitrate:
        raise AudiolmError("give --num-codebooks or --bitrate, not both")
    if args.bitrate:
        return codec.config.codebooks_for_bitrate(args.bitrate)
    return args.num_codebooks


def cmd_codec_encode(args: argparse.Namespace) -> None:
    import torch

    from audiolm.audio.io import load_audio
    from audiolm.codec.codes_file import save_codes
    from audiolm.codec.model import Codec

    codec = Codec.load(args.model)
    wav = load_audio(args.input, codec.sample_rate, allow_silent=True)
    n = _codebooks(args, codec)
    with torch.inference_mode():
        codes = codec.encode(wav[None], n)
    save_codes(args.output, codes, codec, wav.shape[-1])
    print(f"wrote {args.output}: {codes.shape[1]} levels x {codes.shape[2]} frames ({codec.config.bitrate(codes.shape[1]) / 1000:g} kbps)")


def cmd_codec_decode(args: argparse.Namespace) -> None:
    import torch

    from audiolm.audio.io import save_audio
    from audiolm.codec.codes_file import load_codes
    from audiolm.codec.model import Codec

    codec = Codec.load(args.model)
    stored = load_codes(args.input)
    stored.check(codec, args.input)
    n = _codebooks(args, codec) or stored.num_codebooks
    if n > stored.num_codebooks:
        raise AudiolmError(f"{args.input}: holds {stored.num_codebooks} levels, cannot decode {n}")
    with torch.inference_mode():
        wav = codec.decode(stored.codes[None, :n])[..., : stored.num_samples]
    save_audio(args.output, wav[0], codec.sample_rate)
    print(f"wrote {args.output} ({wav.shape[-1] / codec.sample_rate:.2f} s from {n} levels)")


def cmd_semantic_train(args: argparse.Namespace) -> None:
    from audiolm.train.semantic import train_semantic

    overrides = list(args.overrides)
    if args.manifest:
        overrides.append(f"data.manifest={Path(args.manifest).resolve()}")
    if args.targets:
        overrides.append(f"targets={Path(args.targets).resolve()}")
    result = train_semantic(args.config, args.output, overrides, progress=not args.quiet, stop_after=args.stop_after)
    print(f"trained to step {result.step}; run in {args.output} (encoder in {Path(args.output) / 'model'} when finished)")


def cmd_semantic_fit_kmeans(args: argparse.Namespace) -> None:
    import torch

    from audiolm.semantic.tokenizer import fit_from_manifest

    tokenizer = fit_from_manifest(args.encoder, args.layer, args.k, args.manifest, args.split or None, args.max_hours, args.max_frames,
                                  seed=args.seed, progress=not args.quiet, interleave=args.interleave)
    tokenizer.save(args.output, dtype=torch.float16 if args.fp16 else None)
    print(f"wrote {args.output}: layer {args.layer}, K={args.k}, {tokenizer.frame_rate:g} tokens/s")


def cmd_semantic_tokenize(args: argparse.Namespace) -> None:
    from audiolm.audio.io import load_audio
    from audiolm.files import write_jsonl
    from audiolm.semantic.tokenizer import SemanticTokenizer, remove_repeats

    tokenizer = SemanticTokenizer.load(args.tokenizer)
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
    from audiolm.files import write_text
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
    result = train_lm(args.config, args.stage, args.output, overrides, progress=not args.quiet, stop_after=args.stop_after)
    print(f"trained the {args.stage} stage to step {result.step}; run in {args.output} (model in {Path(args.output) / 'model'} "
          "when finished)")


def cmd_recipe(args: argparse.Namespace) -> None:
    from audiolm.recipe import RecipeConfig, run_recipe
    from audiolm.train.config import load_config

    config = load_config(RecipeConfig, args.config, [f"kind={args.kind}", *args.overrides])
    workdir = args.workdir or f"runs/recipe-{args.kind}"
    run_recipe(config, workdir, args.output or f"models/{args.kind}", progress=not args.quiet)


def cmd_eval(args: argparse.Namespace) -> None:
    from audiolm.eval.bundle_eval import EvalConfig, evaluate_bundle

    config = EvalConfig(kind=args.kind, split=args.split, prompts=args.prompts, prompt_seconds=args.prompt_seconds,
                        continue_seconds=args.seconds, resynth=args.resynth,
                        pairs=args.pairs, seed=args.seed)
    evaluate_bundle(args.models, args.manifest, args.output, config, progress=not args.quiet)
    print(f"wrote {Path(args.output) / 'report.md'} (results.json, spectrograms and examples/ beside it)")


def cmd_bundle(args: argparse.Namespace) -> None:
    from audiolm.generation.bundle import write_bundle

    stages = {"semantic": args.semantic_lm, "coarse": args.coarse_lm}
    if args.fine_lm:
        stages["fine"] = args.fine_lm
    if args.acoustic_lm:
        stages["acoustic"] = args.acoustic_lm
    write_bundle(args.output, args.tokenizer, args.codec, stages, fp16=not args.fp32)
    if args.prompts_from:
        from audiolm.generation.bundle import write_prompts

        prompts = write_prompts(args.prompts_from, Path(args.output) / "prompts", args.prompt_count, args.prompt_seconds,
                                tuple(args.prompt_splits))
        print(f"cut {len(prompts)} prompts into {Path(args.output) / 'prompts'}")
    size = sum(f.stat().st_size for f in Path(args.output).rglob("*.safetensors")) / 1e6
    print(f"wrote the bundle {args.output} ({size:.1f} MB of weights)")


def _sampling(args: argparse.Namespace):
    from audiolm.generation.pipeline import StageSampling
    from audiolm.generation.sampling import Sampling

    sampling = StageSampling()
    for stage in ("semantic", "coarse", "fine"):
        temperature = getattr(args, f"{stage}_temperature")
        if temperature is None:
            temperature = getattr(sampling, stage).temperature  # AudioLM's default for the stage
        setattr(sampling, stage, Sampling(temperature=temperature, top_k=args.top_k, top_p=args.top_p))
    return sampling


def _write_generation(args: argparse.Namespace, out, prompt=None) -> None:
    from audiolm.audio.io import save_audio

    save_audio(args.output, out.wav[0].cpu(), out.sample_rate)
    seconds = out.wav.shape[-1] / out.sample_rate
    timing = ", ".join(f"{k} {v:.1f} s" for k, v in out.seconds_per_stage.items())
    print(f"wrote {args.output} ({seconds:.2f} s; new audio from {out.prompt_seconds:.2f} s; {timing})")
    if args.plot:
        from audiolm.audio.plot import plot_spectrograms

        wavs = {"prompt": prompt[0].cpu()} if prompt is not None else {}
        wavs[f"generated (new audio from {out.prompt_seconds:.2f} s)"] = out.wav[0].cpu()
        plot_spectrograms(wavs, out.sample_rate, args.plot)
        print(f"wrote {args.plot}")


def _bundle(args: argparse.Namespace):
    from audiolm.generation.pipeline import AudioLM

    return AudioLM.load(args.models)


def cmd_continue(args: argparse.Namespace) -> None:
    from audiolm.audio.io import load_audio

    audiolm = _bundle(args)
    prompt = load_audio(args.prompt, audiolm.sample_rate, duration=args.prompt_seconds, allow_silent=False)[None]  # [1, 1, L]
    out = audiolm.continue_audio(prompt, args.seconds, args.seed, _sampling(args), acoustic_only=args.acoustic_only)
    _write_generation(args, out, prompt[0])


def cmd_generate(args: argparse.Namespace) -> None:
    out = _bundle(args).generate(args.seconds, args.seed, _sampling(args))
    _write_generation(args, out)


def cmd_resynth(args: argparse.Namespace) -> None:
    from audiolm.audio.io import load_audio

    audiolm = _bundle(args)
    wav = load_audio(args.input, audiolm.sample_rate, allow_silent=False)[None]  # silence has no speech to resynthesize
    out = audiolm.resynthesize(wav, args.seed, _sampling(args))
    _write_generation(args, out, wav[0])


def _print_corpus(summary: dict, output: str) -> None:
    from audiolm.data.manifest import format_summary

    print(f"corpus in {output}")
    print(format_summary({k: v for k, v in summary.items() if isinstance(v, dict)}))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="audiolm", description="AudioLM: audio generation as language modelling over audio tokens.")
    parser.add_argument("--version", action="version", version=f"audiolm {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    audio = commands.add_parser("audio", help="inspect, convert and plot audio files").add_subparsers(dest="action", required=True)
    p = audio.add_parser("info", help="check audio files and print rate, length, peak and loudness")
    p.add_argument("files", nargs="+")
    p.add_argument("--min-seconds", type=float, default=0.0, help="fail on files shorter than this")
    p.set_defaults(func=cmd_audio_info)
    p = audio.add_parser("convert", help="resample to mono at a rate, optionally loudness-normalised")
    p.add_argument("input")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--sample-rate", type=int, default=16000)
    p.add_argument("--normalize", type=float, metavar="LUFS", help="target loudness, e.g. -23")
    p.set_defaults(func=cmd_audio_convert)
    p = audio.add_parser("plot", help="draw log-mel spectrograms of audio files into a PNG")
    p.add_argument("files", nargs="+")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--sample-rate", type=int, default=16000)
    p.set_defaults(func=cmd_audio_plot)

    data = commands.add_parser("data", help="build corpora and manifests").add_subparsers(dest="action", required=True)
    p = data.add_parser("manifest", help="scan a folder of audio (any layout, LibriSpeech / Libri-Light too) into a JSONL manifest")
    p.add_argument("folder")
    p.add_argument("-o", "--output", required=True, help="manifest.jsonl; per-split manifests are written beside it")
    p.add_argument("--workers", type=_workers, default=8)
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
    p.add_argument("--hours", type=_positive, required=True)
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--speakers", type=int, default=100, help="training speakers")
    p.add_argument("--valid-speakers", type=int, default=8)
    p.add_argument("--test-speakers", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=_workers, default=2)
    p.add_argument("--no-rooms", action="store_true", help="no per-speaker reverb, noise and level")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_synth_speech)
    p = data.add_parser("synth-piano", help="render piano clips from music21 scores and generated MIDI (resumable)")
    p.add_argument("--hours", type=_positive, required=True)
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--clip-seconds", type=float, default=20.0)
    p.add_argument("--soundfont", help="a .sf2 file (default: FluidR3_GM)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=_workers, default=2)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_synth_piano)
    codec = commands.add_parser("codec", help="train the SoundStream codec; encode audio to codes and back").add_subparsers(
        dest="action", required=True)
    p = codec.add_parser("train", help="train (or resume) a codec; torchrun for several processes")
    p.add_argument("--config", default="small", help="preset name (tiny, small, base) or a YAML file")
    p.add_argument("--manifest", help="training manifest with train/valid splits")
    p.add_argument("-o", "--output", required=True, help="run folder: checkpoints, logs, and the final model/")
    p.add_argument("--stop-after", type=int, help="stop after this many steps (resume later)")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. train.steps=100")
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
        p.add_argument("--num-codebooks", type=int, help="levels to use (default all)")
        p.add_argument("--bitrate", type=float, metavar="KBPS", help="the most levels within this bitrate")
        p.set_defaults(func=cmd_codec_encode if action == "encode" else cmd_codec_decode)
    semantic = commands.add_parser("semantic", help="semantic tokens: train the self-supervised encoder, fit k-means, tokenize, "
                                   "evaluate").add_subparsers(dest="action", required=True)
    p = semantic.add_parser("train", help="train (or resume) the self-supervised encoder (HuBERT-style); torchrun for several processes")
    p.add_argument("--config", default="small", help="preset name (tiny, small, base) or a YAML file")
    p.add_argument("--manifest", help="training manifest with train/valid splits")
    p.add_argument("--targets", help="tokenizer folder giving the targets (fit-kmeans on mfcc-25hz, or on the previous encoder)")
    p.add_argument("-o", "--output", required=True, help="run folder: checkpoints, logs, and the final model/")
    p.add_argument("--stop-after", type=int, help="stop after this many steps (resume later)")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. train.steps=100")
    p.set_defaults(func=cmd_semantic_train)
    p = semantic.add_parser("fit-kmeans", help="fit a tokenizer: one encoder layer, standardised, k-means")
    p.add_argument("--encoder", required=True, help="mfcc, mfcc-25hz, an encoder folder or training run, or a Hugging Face model folder")
    p.add_argument("--layer", type=int, default=0, help="0 = input to the first block, i = output of block i")
    p.add_argument("-k", type=int, default=1024, help="number of clusters")
    p.add_argument("--manifest", required=True)
    p.add_argument("--split", default="train", help="manifest split to fit on ('' for all)")
    p.add_argument("--max-hours", type=float)
    p.add_argument("--max-frames", type=int, default=200_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fp16", action="store_true", help="store the encoder weights as float16")
    p.add_argument("--interleave", type=int, default=1,
                   help="frames at this multiple of the encoder's rate (2: a 25 Hz encoder run on two shifted copies gives 50 Hz)")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_semantic_fit_kmeans)
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
    p = commands.add_parser("tokenize", help="a manifest's audio -> semantic ids and codec codes in uint16 shards (resumable; "
                            "torchrun splits the shards)")
    p.add_argument("manifest")
    p.add_argument("-o", "--output", required=True, help="shards folder: shard_*.safetensors + shard_*.json, index.json")
    p.add_argument("--semantic", required=True, help="semantic tokenizer folder")
    p.add_argument("--codec", required=True, help="codec folder (model.safetensors + config.json)")
    p.add_argument("--num-codebooks", type=int, help="codec levels to store (default all)")
    p.add_argument("--shard-size", type=_workers, default=256, help="utterances per shard")
    p.add_argument("--workers", type=_workers, default=1, help="processes, one thread each")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_tokenize)
    lm = commands.add_parser("lm", help="train the three stage language models on token shards").add_subparsers(dest="action",
                                                                                                                 required=True)
    p = lm.add_parser("train", help="train (or resume) one stage; torchrun for several processes")
    p.add_argument("--stage", required=True, choices=("semantic", "coarse", "fine"))
    p.add_argument("--config", default="small", help="preset name (tiny, small, base) or a YAML file")
    p.add_argument("--shards", help="token shards from `audiolm tokenize`")
    p.add_argument("--acoustic-only", action="store_true", help="coarse stage without semantic tokens (the baseline)")
    p.add_argument("-o", "--output", required=True, help="run folder: checkpoints, logs, and the final model/")
    p.add_argument("--stop-after", type=int, help="stop after this many steps (resume later)")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. train.steps=100")
    p.set_defaults(func=cmd_lm_train)
    recipe = commands.add_parser("recipe", help="corpus -> codec -> semantic tokens -> shards -> three LMs -> bundle, resumable "
                                 "step by step").add_subparsers(dest="kind", required=True)
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
    p.add_argument("--prompts", type=int, default=16, help="prompts to continue (per system)")
    p.add_argument("--prompt-seconds", type=_positive, default=3.0)
    p.add_argument("--seconds", type=_positive, default=4.0, help="seconds of continuation")
    p.add_argument("--resynth", type=int, default=16, help="utterances for WER and codec metrics")
    p.add_argument("--pairs", type=int, default=40, help="minimal pairs of each kind")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_eval)
    p = commands.add_parser("bundle", help="assemble a model bundle (tokenizer, codec, stage LMs) for continue / generate / resynth")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--tokenizer", required=True, help="semantic tokenizer folder")
    p.add_argument("--codec", required=True, help="codec folder")
    p.add_argument("--semantic-lm", required=True, help="stage run or model folder")
    p.add_argument("--coarse-lm", required=True)
    p.add_argument("--fine-lm", help="optional: without it the codec decodes the coarse levels alone (the paper's piano model)")
    p.add_argument("--acoustic-lm", help="the acoustic-only coarse LM (optional)")
    p.add_argument("--fp32", action="store_true", help="keep float32 weights (default: float16)")
    p.add_argument("--prompts-from", metavar="MANIFEST", help="also cut 3 s prompts of held-out speakers into prompts/")
    p.add_argument("--prompt-count", type=int, default=4)
    p.add_argument("--prompt-seconds", type=_positive, default=3.0)
    p.add_argument("--prompt-splits", nargs="+", default=["test"])
    p.set_defaults(func=cmd_bundle)
    for name, helptext in (("continue", "continue a speech (or piano) prompt, keeping its voice"),
                           ("generate", "unconditional generation"),
                           ("resynth", "new acoustic tokens for a file's semantic tokens: same words, another voice")):
        p = commands.add_parser(name, help=helptext)
        if name == "continue":
            p.add_argument("prompt", help="prompt audio (the first --prompt-seconds are used)")
            p.add_argument("--prompt-seconds", type=_positive, default=3.0)
            p.add_argument("--acoustic-only", action="store_true", help="the baseline: coarse LM without semantic tokens")
        if name == "resynth":
            p.add_argument("input")
        if name != "resynth":
            p.add_argument("--seconds", type=_positive, default=7.0 if name == "continue" else 10.0, help="seconds of new audio")
        p.add_argument("-o", "--output", required=True, help="wav file")
        p.add_argument("--models", default="speech",
                       help="model bundle folder, or `speech` (the default) / `piano`: the bundled models")
        p.add_argument("--seed", type=int, default=0)
        for stage in ("semantic", "coarse", "fine"):
            p.add_argument(f"--{stage}-temperature", type=float, help="sampling temperature (0: greedy)")
        p.add_argument("--top-k", type=int, default=0)
        p.add_argument("--top-p", type=float, default=1.0)
        p.add_argument("--plot", metavar="PNG", help="also draw spectrograms of the prompt and the result")
        p.set_defaults(func={"continue": cmd_continue, "generate": cmd_generate, "resynth": cmd_resynth}[name])
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (AudiolmError, ValueError) as error:
        if os.environ.get("AUDIOLM_DEBUG"):
            raise
        message = " ".join(str(error).split())
        print(f"audiolm: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("audiolm: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
