"""Generation benchmark: wall time per stage and in total to continue a prompt by 2, 5, 10 and 20 s (and 1, 3,
6 s, the lengths measured for lucidrains' audiolm-pytorch), training tokens/s per stage, and peak memory, on
one CPU thread; for the bundled-size models and for a reference configuration other implementations can run:

    reference: 16 kHz; a 50 Hz codec with 8 levels x 1024 codes (3 coarse, 5 fine); semantic tokens at 50 Hz
    from a vocabulary of 500 (as HuBERT base gives); Transformers of dim 256, depth 4, 8 heads; a 2 s prompt.

    .venv/bin/python benchmarks/bench_generate.py [--bundle models/speech]

Without --bundle, the bundled-size configuration uses random weights of the `small` presets (timing does not
depend on the weights: there is no end-of-sequence token, every step is taken). On the CPU each generated token's
step is one compiled call (audiolm/lm/fused_step.py); the reference runs once more at 1, 3 and 6 s with PyTorch's
step (--no-torch-step skips it). Each configuration runs in its own process, so its peak memory (max RSS) is its
own. Writes benchmarks/results/generate.md and .json.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import resource
import time
from dataclasses import asdict
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results"
LUCIDRAINS = {1: 16.7, 3: 77.6, 6: 379.0}  # audiolm-pytorch 2.4.0, reference configuration, one thread, this kind of machine


def reference_pipeline():
    """Random models at the reference configuration."""
    from audiolm.codec.model import Codec, CodecConfig
    from audiolm.generation.pipeline import AudioLM, Stage
    from audiolm.lm.model import build_model
    from audiolm.lm.stages import StageSpec
    from audiolm.lm.transformer import TransformerConfig
    from audiolm.semantic.encoder import MFCCEncoder
    from audiolm.semantic.tokenizer import SemanticTokenizer

    torch.manual_seed(0)
    codec = Codec(CodecConfig(num_codebooks=8)).for_inference()
    tokenizer = SemanticTokenizer(MFCCEncoder(), 0, torch.zeros(39), torch.ones(39), torch.randn(500, 39))
    model = TransformerConfig(dim=256, num_layers=4, num_heads=8)
    stages = {}
    for stage in ("semantic", "coarse", "fine"):
        spec = StageSpec(stage=stage, semantic_vocab=500, codebook_size=1024, num_coarse=3, num_fine=5, semantic_rate=50.0,
                         acoustic_rate=50.0)
        stages[stage] = Stage(build_model(spec, model).eval(), spec, {})
    return AudioLM(tokenizer, codec, stages["semantic"], stages["coarse"], stages["fine"]), model


def bundled_size_pipeline(bundle: str | None):
    """The bundle if given, else random weights of the `small` presets with the bundled codec."""
    from audiolm.codec.model import Codec
    from audiolm.formats.config import load_config
    from audiolm.generation.pipeline import AudioLM, Stage
    from audiolm.lm.model import build_model
    from audiolm.lm.stages import StageSpec
    from audiolm.semantic.ssl import SSLConfig, SSLEncoder
    from audiolm.semantic.tokenizer import SemanticTokenizer
    from audiolm.train.lm import LMRunConfig, resolve_preset

    if bundle and (Path(bundle) / "semantic-lm").is_dir():
        audiolm = AudioLM.load(bundle)
        return audiolm, audiolm.semantic.model.config
    torch.manual_seed(0)
    codec = Codec.load(ROOT / "models" / "speech" / "codec")
    encoder = SSLEncoder(SSLConfig()).eval()
    tokenizer = SemanticTokenizer(encoder, 6, torch.zeros(256), torch.ones(256), torch.randn(1024, 256))
    run = load_config(LMRunConfig, resolve_preset("small"), ["stage.stage=coarse"])
    stages = {}
    for stage in ("semantic", "coarse", "fine"):
        spec = StageSpec(**{**asdict(run.stage), "stage": stage, "semantic_vocab": 1024, "window_seconds": 0.0})
        stages[stage] = Stage(build_model(spec, run.model).eval(), spec, {})
    return AudioLM(tokenizer, codec, stages["semantic"], stages["coarse"], stages["fine"]), run.model


def training_tokens_per_second(audiolm, steps: int = 3, batch: int = 8) -> dict[str, float]:
    """Tokens per second of one training step (forward, backward, AdamW) on full windows, per stage."""
    from audiolm.lm.loss import stage_loss

    rates = {}
    for name in ("semantic", "coarse", "fine"):
        stage = getattr(audiolm, name)
        if stage is None:  # a bundle without a fine stage
            continue
        model, spec = stage.model.train(), stage.spec
        frames = spec.window_frames if spec.stage == "semantic" else spec.window_frames // spec.ratio
        semantic = torch.randint(0, spec.semantic_vocab, (batch, frames))
        codes = torch.randint(0, spec.codebook_size, (batch, spec.num_coarse + spec.num_fine, frames * spec.ratio))
        example = spec.example(semantic, codes)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        times = []
        for _ in range(steps + 1):
            began = time.perf_counter()
            loss, _ = stage_loss(model, spec, example)  # as the trainer: each level's own ids, predicted positions only
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            times.append(time.perf_counter() - began)
        model.eval()
        rates[name] = example["inputs"].numel() / (sum(times[1:]) / steps)
    return rates


def run_configuration(name: str, bundle: str | None, lengths: list[float], prompt_seconds: float, repeats: int = 3,
                      torch_step: bool = False) -> dict:
    torch.set_num_threads(1)
    # this process only: each token's step through PyTorch, or always through the fused CPU step
    os.environ["AUDIOLM_FUSED_STEP"] = "0" if torch_step else "1"
    audiolm, model_config = reference_pipeline() if name == "reference" else bundled_size_pipeline(bundle)
    t = torch.arange(int(prompt_seconds * 16000)) / 16000
    prompt = (0.3 * torch.sin(2 * torch.pi * 180 * t) * (1 + torch.sin(2 * torch.pi * 3 * t)) / 2)[None, None]
    audiolm.continue_audio(prompt, 0.5, seed=0, acoustic="ar")  # warm-up
    rows = []
    for seconds in lengths:
        runs = []
        for _ in range(repeats if seconds <= 6 else 1):  # the median of a few runs: this machine's timings vary by ~15%
            began = time.perf_counter()
            out = audiolm.continue_audio(prompt, seconds, seed=0, acoustic="ar")
            runs.append((time.perf_counter() - began, out))
        wall, out = sorted(runs, key=lambda r: r[0])[len(runs) // 2]
        generated = out.wav.shape[-1] / 16000 - out.prompt_seconds
        rows.append({"seconds": seconds, "generated": generated, "wall": wall, "runs": [round(r[0], 3) for r in runs],
                     "per_second": wall / generated, **{f"stage_{k}": v for k, v in out.seconds_per_stage.items()}})
        print(f"[{name}] {seconds:g} s: {wall:.2f} s wall ({wall / generated:.2f} s per generated second)", flush=True)
    generation_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    training = {} if torch_step else training_tokens_per_second(audiolm)
    spec = audiolm.coarse.spec
    num_fine = audiolm.fine.spec.num_fine if audiolm.fine is not None else 0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"name": name, "torch_step": torch_step, "rows": rows, "training_tokens_per_second": training, "peak_rss_mb": peak,
            "generation_peak_rss_mb": generation_peak,
            "prompt_seconds": prompt_seconds, "model": asdict(model_config), "semantic_rate": spec.semantic_rate,
            "semantic_vocab": spec.semantic_vocab, "levels": f"{spec.num_coarse} coarse + {num_fine} fine",
            "parameters": {s: sum(p.numel() for p in getattr(audiolm, s).model.parameters()) for s in ("semantic", "coarse", "fine")
                           if getattr(audiolm, s) is not None}}


def _table(result: dict) -> str:
    lines = ["| new audio (s) | semantic (s) | coarse (s) | fine (s) | codec + tokenize (s) | total (s) | s per generated s | "
             "lucidrains (s) | speed-up |", "|---" * 9 + "|"]
    for r in result["rows"]:
        ref = LUCIDRAINS.get(int(r["seconds"])) if result["name"] == "reference" and r["seconds"] == int(r["seconds"]) else None
        speedup = f"{ref / r['wall']:.0f}x" if ref else ""
        lines.append(f"| {r['generated']:.2f} | {r['stage_semantic']:.2f} | {r['stage_coarse']:.2f} | {r['stage_fine']:.2f} | "
                     f"{r['stage_codec'] + r['stage_tokenize']:.2f} | {r['wall']:.2f} | {r['per_second']:.2f} | "
                     f"{ref or ''} | {speedup} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", default=str(ROOT / "models" / "speech"),
                        help="a model bundle folder (default: the bundled speech models; without LMs: random small-preset weights)")
    parser.add_argument("--lengths", default="1,2,3,5,6,10,20")
    parser.add_argument("--name", default="generate")
    parser.add_argument("--no-torch-step", action="store_true", help="skip the reference run with the PyTorch decode step")
    args = parser.parse_args()
    lengths = [float(x) for x in args.lengths.split(",")]
    context = multiprocessing.get_context("spawn")
    results = []
    for name, prompt in (("reference", 2.0), ("bundled-size", 3.0)):
        with context.Pool(1) as pool:
            results.append(pool.apply(run_configuration, (name, args.bundle, lengths, prompt)))
    if not args.no_torch_step:
        with context.Pool(1) as pool:
            torch_lengths = [x for x in lengths if x in LUCIDRAINS] or lengths[:1]
            results.append(pool.apply(run_configuration, ("reference", args.bundle, torch_lengths, 2.0), {"torch_step": True}))
    sections = []
    for result in results:
        if result["torch_step"]:
            sections.append(f"""## reference, PyTorch step

The same models and prompt with every generated token's step through PyTorch (`AUDIOLM_FUSED_STEP=0`: what runs on
a GPU or without numba) instead of the fused CPU step (audiolm/lm/fused_step.py):

{_table(result)}
""")
            continue
        training = ", ".join(f"{k} {v:,.0f}" for k, v in result["training_tokens_per_second"].items())
        params = ", ".join(f"{k} {v / 1e6:.1f} M" for k, v in result["parameters"].items())
        m = result["model"]
        sections.append(f"""## {result['name']}

Transformers dim {m['dim']}, depth {m['num_layers']}, {m['num_heads']} heads ({params} parameters); semantic tokens at
{result['semantic_rate']:g} Hz from {result['semantic_vocab']}; codec levels {result['levels']}; a {result['prompt_seconds']:g} s prompt.

{_table(result)}

Training (one step: forward, backward, AdamW; batch 8 full windows; one thread), tokens/s: {training}.
Peak memory (max RSS of the process): {result['generation_peak_rss_mb']:.0f} MB while generating (models loaded, all
lengths); {result['peak_rss_mb']:.0f} MB after the training steps.
""")
    bundle = f" --bundle {os.path.relpath(args.bundle)}" if args.bundle else ""
    report = f"""# Generation speed

`benchmarks/bench_generate.py{bundle}` on {platform.processor() or platform.machine()},
**one CPU thread**, KV-cached sampling, each token's step fused into one compiled call (audiolm/lm/fused_step.py;
the last table is the same with PyTorch's step). "s per generated s" is the real-time factor; it must not grow with length
(the semantic and coarse stages slide by half a window, the fine stage decodes its 3 s windows as one batch).
Each length up to 6 s is the median of 3 runs (with its stage times), longer ones a single run.
lucidrains' audiolm-pytorch 2.4.0 at the reference configuration on this kind of machine: 16.7 s for 1 s,
77.6 s for 3 s, 379 s for 6 s.

{chr(10).join(sections)}"""
    RESULTS.mkdir(exist_ok=True)
    from audiolm.formats.atomic import write_json, write_text

    write_text(RESULTS / f"{args.name}.md", report)
    write_json(RESULTS / f"{args.name}.json", results)
    print(report)


if __name__ == "__main__":
    main()
