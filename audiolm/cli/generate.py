"""Generation: `audiolm continue | generate | resynth`."""

from __future__ import annotations

import argparse

from audiolm import limits
from audiolm.cli.args import check_audio_files, number, seconds, seed, whole, whole_list


def build_sampling(args: argparse.Namespace, audiolm):
    """The per-stage sampling of the options in `args` (`{stage}_temperature`, `top_k`, `top_p`, `iterations`,
    `parallel_temperature`, `guidance`; None for a default) for `audiolm`'s vocabularies. Shared with `audiolm serve`."""
    from audiolm.generation.maskgit import ParallelSampling
    from audiolm.generation.pipeline import StageSampling
    from audiolm.generation.sampling import Sampling

    vocabularies = audiolm.vocabularies
    limits.check_count("--top-k", args.top_k, 0, max(vocabularies.values()))
    sampling = StageSampling()
    for stage in ("semantic", "coarse", "fine"):
        temperature = getattr(args, f"{stage}_temperature")
        if temperature is None:
            temperature = getattr(sampling, stage).temperature  # AudioLM's default for the stage
        top_k = min(args.top_k, vocabularies[stage])  # top-k at or above a stage's vocabulary keeps every id
        setattr(sampling, stage, Sampling(temperature=temperature, top_k=top_k, top_p=args.top_p))
    first = sampling.parallel.first.temperature if args.parallel_temperature is None else args.parallel_temperature
    top_k = min(args.top_k, vocabularies["coarse"])
    guidance = sampling.parallel.guidance if getattr(args, "guidance", None) is None else args.guidance
    sampling.parallel = ParallelSampling(iterations=args.iterations or sampling.parallel.iterations,
                                         first=Sampling(temperature=first, top_k=top_k, top_p=args.top_p), guidance=guidance)
    return sampling


def acoustic_options(args: argparse.Namespace) -> dict:
    """The acoustic stage and watermark options as keyword arguments of `AudioLM.continue_audio / generate / resynthesize`."""
    return {"acoustic": args.acoustic, "levels": args.levels, "watermark": args.watermark}


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
    import torch

    from audiolm.generation.pipeline import AudioLM

    if args.threads:
        torch.set_num_threads(args.threads)
    return AudioLM.load(args.models)


def read_prompt(path, sample_rate: int, prompt_seconds: float):
    """The first `prompt_seconds` of the audio file `path` as a prompt `[1, 1, L]` at `sample_rate`: at least
    MIN_PROMPT_SECONDS long and not silent, else an `AudioError` naming the file. Shared with `audiolm serve`."""
    from audiolm.audio.io import load_audio

    return load_audio(path, sample_rate, duration=prompt_seconds, min_seconds=limits.MIN_PROMPT_SECONDS, allow_silent=False)[None]


def check_resynth_input(path, max_seconds: float = limits.MAX_GENERATE_SECONDS) -> None:
    """Refuse a resynthesis input from its header before any work: read whole, it may be at most `max_seconds` long
    (resynthesis generates as much audio as it reads)."""
    check_audio_files([path], max_seconds)


def read_resynth_input(path, sample_rate: int):
    """The whole audio file `path` as `[1, 1, L]` at `sample_rate`; silence has no speech to resynthesize."""
    from audiolm.audio.io import load_audio

    return load_audio(path, sample_rate, allow_silent=False)[None]


def cmd_continue(args: argparse.Namespace) -> None:
    audiolm = _bundle(args)
    sampling = build_sampling(args, audiolm)
    prompt = read_prompt(args.prompt, audiolm.sample_rate, args.prompt_seconds)  # [1, 1, L]
    out = audiolm.continue_audio(prompt, args.seconds, args.seed, sampling, acoustic_only=args.acoustic_only, **acoustic_options(args))
    _write_generation(args, out, prompt[0])


def cmd_generate(args: argparse.Namespace) -> None:
    audiolm = _bundle(args)
    out = audiolm.generate(args.seconds, args.seed, build_sampling(args, audiolm), **acoustic_options(args))
    _write_generation(args, out)


def cmd_resynth(args: argparse.Namespace) -> None:
    check_resynth_input(args.input)
    audiolm = _bundle(args)
    sampling = build_sampling(args, audiolm)
    wav = read_resynth_input(args.input, audiolm.sample_rate)
    out = audiolm.resynthesize(wav, args.seed, sampling, **acoustic_options(args))
    _write_generation(args, out, wav[0])


def add_parsers(commands: argparse._SubParsersAction) -> None:
    for name, helptext in (("continue", "continue a speech (or piano) prompt, keeping its voice"),
                           ("generate", "unconditional generation"),
                           ("resynth", "new acoustic tokens for a file's semantic tokens: same words, another voice")):
        p = commands.add_parser(name, help=helptext)
        if name == "continue":
            p.add_argument("prompt", help="prompt audio (the first --prompt-seconds are used)")
            p.add_argument("--prompt-seconds", type=seconds("--prompt-seconds", limits.MAX_PROMPT_SECONDS), default=3.0,
                           help=f"seconds of the prompt file to use (at most {limits.MAX_PROMPT_SECONDS:g})")
            p.add_argument("--acoustic-only", action="store_true",
                           help="the baseline: the acoustic stage's model trained without semantic tokens")
        if name == "resynth":
            p.add_argument("input")
        if name != "resynth":
            p.add_argument("--seconds", type=seconds("--seconds", limits.MAX_GENERATE_SECONDS), default=7.0 if name == "continue" else 10.0,
                           help=f"seconds of new audio (at most {limits.MAX_GENERATE_SECONDS:g})")
        p.add_argument("-o", "--output", required=True, help="wav file")
        p.add_argument("--models", default="speech",
                       help="model bundle folder, or `speech` (the default) / `piano`: the bundled models")
        p.add_argument("--seed", type=seed, default=0)
        for stage in ("semantic", "coarse", "fine"):
            p.add_argument(f"--{stage}-temperature", type=number(f"--{stage}-temperature", 0.0, limits.MAX_TEMPERATURE),
                           help=f"sampling temperature (0: greedy; at most {limits.MAX_TEMPERATURE:g})")
        p.add_argument("--top-k", type=whole("--top-k", 0, limits.MAX_TOP_K), default=0,
                       help="sample from the k likeliest ids (0: all; at most the bundle's vocabulary)")
        p.add_argument("--top-p", type=number("--top-p", 0.0, 1.0, above_low=True), default=1.0,
                       help="sample from the likeliest ids holding this probability (1: all)")
        p.add_argument("--acoustic", choices=("auto", "parallel", "ar"), default="auto",
                       help="acoustic stage: parallel (SoundStorm: every codec level in a few passes), ar (the paper's "
                            "coarse + fine LMs), auto (default: parallel where the bundle has it)")
        p.add_argument("--levels", type=whole("--levels", 1, limits.MAX_CODEBOOKS),
                       help="codec levels the parallel stage decodes (default: all it knows)")
        p.add_argument("--iterations", type=whole_list("--iterations", 1, limits.MAX_PARALLEL_ITERATIONS), metavar="N[,N...]",
                       help="parallel stage: forward passes per level, the last standing for later levels (default 16,1)")
        p.add_argument("--parallel-temperature", type=number("--parallel-temperature", 0.0, limits.MAX_TEMPERATURE),
                       help="parallel stage: level 1's sampling temperature (default 0.8; later levels are greedy)")
        p.add_argument("--guidance", type=number("--guidance", 0.0, limits.MAX_GUIDANCE), metavar="W",
                       help="parallel stage: classifier-free guidance of level 1 against the acoustic-only stage "
                            "(parallel-acoustic-lm/): log p + W (log p - log p_acoustic_only); default 0: none")
        p.add_argument("--threads", type=whole("--threads", 1, limits.MAX_THREADS),
                       help="CPU threads (default: PyTorch's, one per core; on a busy machine 1 is often faster)")
        p.add_argument("--plot", metavar="PNG", help="also draw spectrograms of the prompt and the result")
        p.add_argument("--no-watermark", dest="watermark", action="store_false",
                       help="leave out the inaudible watermark every output carries by default (`audiolm detect` finds it)")
        p.set_defaults(func={"continue": cmd_continue, "generate": cmd_generate, "resynth": cmd_resynth}[name])
