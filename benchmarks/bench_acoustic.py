"""Acoustic stages compared (issue 16): the autoregressive coarse LM ("AR", at its own levels: 3 in the bundled speech
models) against the parallel stage (SoundStorm-style) decoding 3, 6 and 12 codec levels, on held-out speakers, from
the same tokens and seeds:

- resynthesis from the true semantic tokens: Whisper word error rate next to the codec's own at the same levels (what
  the codec alone loses), and speaker similarity of the resynthesis to the original (resemblyzer);
- continuation of held-out prompts: speaker accuracy of the new audio against enrolled held-out speakers (other
  utterances of theirs) and similarity to its own prompt, as `audiolm eval` measures it;
- token accuracy per level, teacher-forced on each utterance's first window: the AR coarse LM's next-token accuracy,
  the parallel stage's accuracy on the masked codes of each level (different objectives: read each by its level);
- cost on one CPU thread: seconds and the acoustic stage's forward passes per generated second;
- with --sweep-iterations, level 1's iterations (the later levels' as --iterations says) against resynthesis WER,
  speaker similarity and speed, at the most levels measured;
- with --sweep-temperature, level 1's sampling temperature (0: greedy; later levels stay greedy) likewise;
- with --oracle-levels, resynthesis by the parallel stage at the most levels measured with the true codes of the first
  k levels kept (only the later ones generated): how much of the lost intelligibility each level accounts for;
- with --guidance, the parallel stage at the most levels measured again with level 1 guided by the acoustic-only stage
  (classifier-free guidance, generation/maskgit.py `guided`) at each weight given: every measure above.

    .venv/bin/python benchmarks/bench_acoustic.py --models models/speech --manifest data/speech/manifest.jsonl \\
        --utterances 16 --prompts 16 --levels 3,6,12 --iterations 16,1 --sweep-iterations 1,4,8,16

The bundle needs the parallel stage (parallel-lm/); the AR coarse LM (coarse-lm/) is measured beside it where the
bundle has one (the bundled speech models do not: runs/ar-bundle of scripts/campaign/detector.sh does); levels past
the parallel stage's are left out. Whisper is
base where installed, else tiny.en (--asr); --no-asr skips the word error rates. All measurements are `audiolm
eval`'s own code (audiolm/eval/bundle_eval.py) run on these systems. Writes benchmarks/results/acoustic.md and
acoustic.json (--out names the pair).
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import torch

from audiolm.errors import AudiolmError

RESULTS = Path(__file__).parent / "results"


def _numbers(text: str, kind: type, least: float, what: str) -> tuple:
    """Comma-separated numbers of `kind`, each at least `least`; `what` names them in the error."""
    try:
        values = tuple(kind(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"need comma-separated {'whole ' if kind is int else ''}numbers, got {text!r}") from None
    if not values or min(values) < least:
        raise argparse.ArgumentTypeError(f"need {what}, got {text!r}")
    return values


def _counts(text: str) -> tuple[int, ...]:
    """"16,1" -> (16, 1): positive whole numbers."""
    return _numbers(text, int, 1, "positive whole numbers")


def _temperatures(text: str) -> tuple[float, ...]:
    """"0.8,0.4,0" -> (0.8, 0.4, 0.0): temperatures, 0 or more."""
    return _numbers(text, float, 0, "temperatures of 0 or more")


def _weights(text: str) -> tuple[float, ...]:
    """"1,2" -> (1.0, 2.0): guidance weights, 0 or more."""
    return _numbers(text, float, 0, "guidance weights of 0 or more")


def _kept(k: int) -> str:
    """The true levels an oracle row keeps: "level 1", "levels 1-4"."""
    return "level 1" if k == 1 else f"levels 1-{k}"


def _levels(n: int) -> str:
    return f"{n} level" + ("s" if n > 1 else "")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="speech", help="bundle folder with the parallel stage, and the AR one if it has it "
                        "(default: the bundled speech models)")
    parser.add_argument("--manifest", default="data/speech/manifest.jsonl", help="corpus manifest with held-out speakers and transcripts")
    parser.add_argument("--split", default="test", help="the held-out split")
    parser.add_argument("--utterances", type=int, default=16, help="held-out utterances to resynthesize")
    parser.add_argument("--prompts", type=int, default=16, help="held-out prompts to continue")
    parser.add_argument("--prompt-seconds", type=float, default=3.0)
    parser.add_argument("--seconds", type=float, default=4.0, help="seconds of continuation")
    parser.add_argument("--levels", type=_counts, default=(3, 6, 12), help="codec levels the parallel stage decodes")
    parser.add_argument("--iterations", type=_counts, default=(16, 1),
                        help="the parallel stage's forward passes per level; the last stands for the later levels")
    parser.add_argument("--sweep-iterations", type=_counts, default=(), help="level-1 iterations to sweep, e.g. 1,4,8,16")
    parser.add_argument("--sweep-temperature", type=_temperatures, default=(),
                        help="level-1 sampling temperatures to sweep, e.g. 0.8,0.4,0 (the default is 0.8)")
    parser.add_argument("--guidance", type=_weights, default=(),
                        help="classifier-free guidance weights to measure as more systems, e.g. 1,2 (needs parallel-acoustic-lm/)")
    parser.add_argument("--oracle-levels", type=_counts, default=(),
                        help="resynthesis with the true codes of the first k levels kept, for each k, e.g. 1,2,4")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--asr", choices=("tiny.en", "base"), help="Whisper model (default: base where installed, else tiny.en)")
    parser.add_argument("--no-asr", action="store_true", help="no word error rates (no Whisper)")
    parser.add_argument("--out", default=str(RESULTS / "acoustic"), help="writes OUT.md and OUT.json")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    if min(args.utterances, args.prompts) < 1:
        parser.error("--utterances and --prompts must be at least 1")
    return args


def measure(args: argparse.Namespace) -> dict:
    """Every measure of every system: {"systems": [...], "sweep": [...], "token_accuracy": {...}, ...}."""
    from audiolm.eval.bundle_eval import BundleEvaluation, EvalConfig, System
    from audiolm.generation.maskgit import ParallelSampling
    from audiolm.generation.pipeline import StageSampling

    config = EvalConfig(split=args.split, prompts=args.prompts, prompt_seconds=args.prompt_seconds, continue_seconds=args.seconds,
                        resynth=args.utterances, examples=0, seed=args.seed, asr=args.asr)
    log = (lambda _: None) if args.quiet else print
    with tempfile.TemporaryDirectory() as scratch:  # the evaluation's report folder: nothing is written there without examples
        evaluation = BundleEvaluation(args.models, args.manifest, scratch, config, progress=not args.quiet, log=log)
        audiolm = evaluation.audiolm
        if audiolm.parallel is None:
            raise AudiolmError(f"{args.models}: the benchmark needs the parallel acoustic stage (parallel-lm/)")
        levels = sorted({n for n in args.levels if n <= audiolm.parallel_levels}) or [audiolm.parallel_levels]
        later = args.iterations[1:] or args.iterations[:1]

        def parallel(n: int, first: int, name: str, temperature: float | None = None, guidance: float = 0.0) -> System:
            settings = ParallelSampling(iterations=(first, *later), guidance=guidance)
            if temperature is not None:
                settings = replace(settings, first=replace(settings.first, temperature=temperature))
            return System(name=name, acoustic="parallel", levels=n, sampling=StageSampling(parallel=settings))

        systems = [System(name=f"AR, {_levels(audiolm.num_levels)}", acoustic="ar")] if audiolm.coarse is not None else []
        systems += [parallel(n, args.iterations[0], f"parallel, {_levels(n)}") for n in levels]
        plain = systems[-1]  # the parallel stage at the most levels, unguided: the sweeps' reference
        if args.guidance and audiolm.parallel_acoustic is None:
            raise AudiolmError(f"{args.models}: --guidance needs the acoustic-only parallel stage (parallel-acoustic-lm/)")
        systems += [parallel(levels[-1], args.iterations[0], f"parallel, {_levels(levels[-1])}, guidance {w:g}", guidance=w)
                    for w in sorted(set(args.guidance) - {0.0})]
        sweep = {args.iterations[0]: plain} if args.sweep_iterations else {}
        for first in sorted(set(args.sweep_iterations) - set(sweep)):
            sweep[first] = parallel(levels[-1], first, f"parallel, {_levels(levels[-1])}, level 1 in {first}")
        default_temperature = ParallelSampling().first.temperature
        temperatures = {t: parallel(levels[-1], args.iterations[0], f"parallel, {_levels(levels[-1])}, level 1 at temperature {t:g}", t)
                        for t in sorted(set(args.sweep_temperature) - {default_temperature}, reverse=True)}
        if args.sweep_temperature:
            temperatures[default_temperature] = plain
        oracles = {k: replace(plain, name=f"parallel, {_levels(levels[-1])}, true levels 1-{k}", keep_levels=k)
                   for k in sorted(set(args.oracle_levels)) if k < levels[-1]}
        log("acoustic benchmark: continuation")
        continuation = evaluation.continuation(systems)
        log("acoustic benchmark: resynthesis")
        codec = {f"{n} levels": n for n in sorted({audiolm.num_levels, *levels} - {0})}
        extra = [s for s in [*sweep.values(), *temperatures.values(), *oracles.values()] if s not in systems]
        resynthesis = evaluation.intelligibility(systems + extra, codec, wer=not args.no_asr)
        log("acoustic benchmark: token accuracy")
        tokens = evaluation.coarse_lm()
    if not resynthesis:
        raise AudiolmError(f"{args.manifest}: no held-out transcripts to score")
    wer = resynthesis.get("wer", {})
    rows = []
    for system in systems:
        n = audiolm.num_levels if system.acoustic == "ar" else system.levels
        speaker = continuation["speaker"][system.name]
        rows.append({"system": system.name, "acoustic": system.acoustic, "levels": n,
                     "iterations": list(system.sampling.parallel.iterations) if system.sampling else None,
                     "guidance": system.sampling.parallel.guidance if system.sampling else None,
                     "wer": wer.get(system.name), "codec_wer": wer.get(f"codec, {n} levels"),
                     "resynthesis_similarity": resynthesis["resynthesis_speaker_similarity"][system.name],
                     "continuation_accuracy": speaker["accuracy"], "continuation_similarity_own": speaker["similarity_own"],
                     "continuation_own_prompt": speaker["own_prompt"], "continuation_closer_to_own": speaker["closer_to_own"],
                     "resynthesis_seconds_per_second": resynthesis["generation_seconds_per_second"][system.name],
                     "continuation_seconds_per_second": continuation["generation_seconds_per_second"][system.name],
                     "forward_passes_per_second": resynthesis["forward_passes_per_second"][system.name]})
    sweep_rows = [{"level_1_iterations": first, "iterations": list(system.sampling.parallel.iterations), "levels": system.levels,
                   "wer": wer.get(system.name), "resynthesis_similarity": resynthesis["resynthesis_speaker_similarity"][system.name],
                   "seconds_per_second": resynthesis["generation_seconds_per_second"][system.name],
                   "forward_passes_per_second": resynthesis["forward_passes_per_second"][system.name]}
                  for first, system in sorted(sweep.items())]
    temperature_rows = [{"level_1_temperature": t, "levels": system.levels, "wer": wer.get(system.name),
                         "resynthesis_similarity": resynthesis["resynthesis_speaker_similarity"][system.name]}
                        for t, system in sorted(temperatures.items(), reverse=True)]
    oracle_rows = [{"true_levels": k, "levels": system.levels, "wer": wer.get(system.name),
                    "resynthesis_similarity": resynthesis["resynthesis_speaker_similarity"][system.name]}
                   for k, system in oracles.items()]
    full = {row["acoustic"]: row for row in tokens["systems"].values() if not row["acoustic_only"]}  # each stage's full model
    accuracy = {label: full[acoustic] for label, acoustic in (("AR", "ar"), ("parallel", "parallel")) if acoustic in full}
    return {"models": evaluation.results["models"], "manifest": evaluation.results["manifest"], "split": args.split,
            "iterations": list(args.iterations),
            "asr": None if args.no_asr else f"Whisper {config.asr}", "utterances": resynthesis["utterances"],
            "prompts": continuation["prompts"], "prompt_seconds": args.prompt_seconds, "seconds": args.seconds, "seed": args.seed,
            "original_wer": wer.get("original"), "prompt_accuracy": continuation["speaker"]["prompt"]["accuracy"],
            "chance": continuation["speaker"]["prompt"]["chance"], "speakers": continuation["speaker"]["prompt"]["speakers"],
            "systems": rows, "sweep": sweep_rows, "temperature_sweep": temperature_rows, "oracle": oracle_rows,
            "token_utterances": tokens["utterances"],
            "token_accuracy": {label: {"objective": row["objective"], "accuracy_per_level": row["accuracy_per_level"],
                                       "ce_per_level": row["ce_per_level"]} for label, row in accuracy.items()}}


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f} %"


def report(result: dict, command: str) -> str:
    rows = result["systems"]
    asr = result["asr"] or "no ASR (--no-asr)"
    lines = ["# Acoustic stages: AR coarse LM against the parallel stage\n",
             f"`{command}` on {platform.processor() or platform.machine()}, **one CPU thread** (torch {torch.__version__}).\n",
             f"Bundle `{result['models']}`; held-out split `{result['split']}` of `{result['manifest']}` ({result['speakers']} "
             f"speakers); seed {result['seed']}: every system reads the same tokens and draws from the same seeds. "
             "The parallel stage's forward passes per level (the last for every later level): "
             f"{','.join(map(str, result['iterations']))}.\n",
             f"## Resynthesis: intelligibility\n\n{asr} word error rate of {result['utterances']} held-out utterances resynthesized "
             f"from their true semantic tokens, next to the codec's own at the same levels (original audio: "
             f"{_pct(result['original_wer'])}).\n",
             "| system | levels | resynthesis WER | codec-only WER, same levels |", "|---|---|---|---|"]
    lines += [f"| {r['system']} | {r['levels']} | {_pct(r['wer'])} | {_pct(r['codec_wer'])} |" for r in rows]
    lines += ["", f"## Speaker\n\nResynthesis: cosine similarity (resemblyzer) of each resynthesis to its original; it draws a "
              f"new voice, so lower is expected. Continuation: {result['prompts']} held-out prompts of {result['prompt_seconds']:g} s, "
              f"each continued by {result['seconds']:g} s; the new audio is assigned to the nearest of {result['speakers']} enrolled "
              f"held-out speakers (chance {_pct(result['chance'])}; the prompts themselves: {_pct(result['prompt_accuracy'])}).\n",
              "| system | resynthesis similarity to original | continuation speaker accuracy | similarity to own speaker | "
              "similarity to own prompt | closer to own prompt |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['system']} | {r['resynthesis_similarity']:.3f} | {_pct(r['continuation_accuracy'])} | "
              f"{r['continuation_similarity_own']:.3f} | {r['continuation_own_prompt']:.3f} | {_pct(r['continuation_closer_to_own'])} |"
              for r in rows]
    accuracy = result["token_accuracy"]
    levels = max(len(row["accuracy_per_level"]) for row in accuracy.values())
    lines += ["", f"## Token accuracy per level\n\nTop-1 accuracy, teacher-forced, on the first window of {result['token_utterances']} "
              "held-out utterances, with the true semantic tokens: the AR coarse LM predicts each token from those before it "
              "(its coarse levels only); the parallel stage predicts the masked codes of one level from the rest (masks as in "
              "its training, seeded).\n",
              "| stage | objective | " + " | ".join(f"level {k + 1}" for k in range(levels)) + " |", "|---" * (levels + 2) + "|"]
    for label, row in accuracy.items():
        cells = [_pct(x) for x in row["accuracy_per_level"]] + ["-"] * (levels - len(row["accuracy_per_level"]))
        lines.append(f"| {label} | {row['objective']} | " + " | ".join(cells) + " |")
    lines += ["", "## Cost\n\nOne CPU thread. Resynthesis: the acoustic stage and the codec alone; continuation: the semantic "
              "stage too. A forward pass of the AR stage is one KV-cached step of one token; one of the parallel stage reads "
              "a whole window.\n",
              "| system | resynthesis s per generated s | acoustic forward passes per generated s | continuation s per generated s |",
              "|---|---|---|---|"]
    lines += [f"| {r['system']} | {r['resynthesis_seconds_per_second']:.3f} | {r['forward_passes_per_second']:.1f} | "
              f"{r['continuation_seconds_per_second']:.3f} |" for r in rows]
    if result["sweep"]:
        lines += ["", f"## Level-1 iterations\n\nResynthesis of the same utterances by the parallel stage at "
                  f"{result['sweep'][0]['levels']} levels, level 1 decoded in the given number of passes (each later level as above).\n",
                  "| level-1 iterations | resynthesis WER | similarity to original | acoustic forward passes per generated s | "
                  "s per generated s |", "|---|---|---|---|---|"]
        lines += [f"| {r['level_1_iterations']} | {_pct(r['wer'])} | {r['resynthesis_similarity']:.3f} | "
                  f"{r['forward_passes_per_second']:.1f} | {r['seconds_per_second']:.3f} |" for r in result["sweep"]]
    if result.get("temperature_sweep"):
        lines += ["", f"## Level-1 temperature\n\nResynthesis of the same utterances by the parallel stage at "
                  f"{result['temperature_sweep'][0]['levels']} levels, level 1 drawn at the given temperature (0: greedy; the "
                  "later levels greedy, as always).\n",
                  "| level-1 temperature | resynthesis WER | similarity to original |", "|---|---|---|"]
        lines += [f"| {r['level_1_temperature']:g} | {_pct(r['wer'])} | {r['resynthesis_similarity']:.3f} |"
                  for r in result["temperature_sweep"]]
    if result.get("oracle"):
        plain = next(r for r in rows if r["acoustic"] == "parallel" and r["levels"] == result["oracle"][0]["levels"]
                     and not r.get("guidance"))
        lines += ["", f"## Which levels carry the words\n\nResynthesis by the parallel stage at {plain['levels']} levels with the "
                  "true codes of the first levels kept (an oracle: only the later levels are generated), next to the "
                  "stage alone and the codec alone.\n",
                  "| true levels kept | resynthesis WER | similarity to original |", "|---|---|---|",
                  f"| none (the stage alone) | {_pct(plain['wer'])} | {plain['resynthesis_similarity']:.3f} |"]
        lines += [f"| {_kept(r['true_levels'])} | {_pct(r['wer'])} | {r['resynthesis_similarity']:.3f} |" for r in result["oracle"]]
        lines.append(f"| all (the codec alone) | {_pct(plain['codec_wer'])} | - |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = measure(args)
    except AudiolmError as error:
        print(f"bench_acoustic: error: {error}", file=sys.stderr)
        return 1
    finally:
        torch.set_num_threads(threads)
    command = " ".join(["benchmarks/bench_acoustic.py", *argv])
    result = {"command": command, "machine": platform.processor() or platform.machine(), "threads": 1, **result}
    from audiolm.formats.atomic import write_json, write_text

    text = report(result, command)
    write_text(Path(f"{args.out}.md"), text)
    write_json(Path(f"{args.out}.json"), result)
    if not args.quiet:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
