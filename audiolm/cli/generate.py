"""Generation: `audiolm continue | generate | resynth`."""

from __future__ import annotations

import argparse

from audiolm.cli.args import positive


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


def add_parsers(commands: argparse._SubParsersAction) -> None:
    for name, helptext in (("continue", "continue a speech (or piano) prompt, keeping its voice"),
                           ("generate", "unconditional generation"),
                           ("resynth", "new acoustic tokens for a file's semantic tokens: same words, another voice")):
        p = commands.add_parser(name, help=helptext)
        if name == "continue":
            p.add_argument("prompt", help="prompt audio (the first --prompt-seconds are used)")
            p.add_argument("--prompt-seconds", type=positive, default=3.0)
            p.add_argument("--acoustic-only", action="store_true", help="the baseline: coarse LM without semantic tokens")
        if name == "resynth":
            p.add_argument("input")
        if name != "resynth":
            p.add_argument("--seconds", type=positive, default=7.0 if name == "continue" else 10.0, help="seconds of new audio")
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
