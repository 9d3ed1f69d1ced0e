"""Training throughput of the stage LMs: tokens per second of one optimizer step (forward, backward, gradient clipping,
AdamW) on full windows of random tokens, per stage, at a preset; and the paper presets' dry runs.

    .venv/bin/python benchmarks/bench_throughput.py                                  # the paper preset on CUDA, bf16 autocast
    .venv/bin/python benchmarks/bench_throughput.py --device cpu --preset tiny --steps 2   # a smoke run
    .venv/bin/python benchmarks/bench_throughput.py --dry-run [--world-size 16]     # -> benchmarks/results/dry_run.md

A step is the trainer's (audiolm/train/loop.py, one process, no accumulation): the stage's own loss (`stage_loss`,
`parallel_loss`), autocast to bf16 on CUDA (fp32 on the CPU, as `train.precision=auto`), clipping at the preset's
norm, AdamW with the preset's settings. The batch is one GPU's share of the preset's global batch over `--world-size`
GPUs (the paper: 256 over 16 devices = 16 windows) unless `--batch-size` says. Tokens are the sequence positions a
step reads (the parallel stage: frames of 12 codes and a semantic id). On CUDA the peak allocated memory stands beside
the dry run's estimate for the same batch on one GPU without DDP (18 P + activations, audiolm/train/dry_run.py).

Writes benchmarks/results/throughput.md and .json; rows are kept by device, preset, stage, batch and precision, so a
GPU run adds its rows to the CPU ones.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).parent / "results"
STAGES = ("semantic", "coarse", "fine", "parallel")
GIB = 1024**3


def random_batch(spec, batch: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """A training batch of full windows of random ids, built as the trainers build theirs."""
    from audiolm.lm.parallel import masked_example

    frames = spec.window_frames if spec.stage == "semantic" else spec.window_frames // spec.ratio  # semantic frames
    semantic = torch.randint(0, spec.semantic_vocab, (batch, frames), generator=generator)
    codes = torch.randint(0, spec.codebook_size, (batch, spec.num_coarse + spec.num_fine, frames * spec.ratio), generator=generator)
    if spec.stage == "parallel":
        return masked_example(spec, semantic if spec.use_semantic else None, codes, generator)
    return spec.example(semantic, codes)


def measure(preset: str, stage: str, device: torch.device, batch: int | None, world: int, steps: int, warmup: int, bf16: bool,
            overrides: list[str]) -> dict:
    from audiolm.lm.loss import stage_loss
    from audiolm.lm.model import build_model
    from audiolm.lm.parallel import parallel_loss
    from audiolm.train.dry_run import estimate, lm_plan
    from audiolm.train.lm import load_lm_config

    config = load_lm_config(preset, stage, overrides)
    spec = config.stage
    batch = batch or max(1, config.train.batch_size // world)
    torch.manual_seed(0)
    model = build_model(spec, config.model).to(device).train()
    parameters = sum(p.numel() for p in model.parameters())
    spec_opt = config.optimizer
    optimizer = torch.optim.AdamW(model.parameters(), lr=spec_opt.lr, betas=spec_opt.betas, weight_decay=spec_opt.weight_decay)
    example = {k: v.to(device) for k, v in random_batch(spec, batch, torch.Generator().manual_seed(0)).items()}
    loss_fn = parallel_loss if stage == "parallel" else stage_loss
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for _ in range(warmup + steps):
        began = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss, _ = loss_fn(model, spec, example)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), spec_opt.clip_grad_norm or float("inf"))
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - began)
    step = sum(times[warmup:]) / steps
    tokens = example["inputs"].shape[0] * example["inputs"].shape[1]
    plan = lm_plan(preset, stage, [*overrides, f"train.batch_size={batch}", "train.grad_accum=1"])
    figures = estimate(plan, world=1)
    return {"preset": preset, "stage": stage, "parameters": parameters, "batch": batch, "sequence": example["inputs"].shape[1],
            "window_seconds": spec.window_seconds, "precision": "bf16" if bf16 else "fp32", "step_s": step,
            "tokens_per_s": tokens / step, "audio_s_per_s": batch * spec.window_seconds / step,
            "peak_gib": torch.cuda.max_memory_allocated(device) / GIB if device.type == "cuda" else None,
            "estimate_gib": (18 * figures.trained + figures.activations) / GIB}


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    threads = torch.get_num_threads()
    return f"CPU {platform.processor() or platform.machine()}, {threads} thread{'s' if threads > 1 else ''}"


def write_throughput(rows: list[dict], command: str) -> str:
    from audiolm.formats.atomic import write_json, write_text
    from audiolm.formats.json_file import read_json

    path = RESULTS / "throughput.json"
    kept = read_json(path)["rows"] if path.is_file() else []
    key = lambda r: (r["device"], r["preset"], r["stage"], r["batch"], r["precision"])  # noqa: E731
    merged = {key(r): r for r in [*kept, *rows]}
    order = {s: i for i, s in enumerate(STAGES)}
    table = sorted(merged.values(), key=lambda r: (r["device"], r["preset"], order[r["stage"]], r["batch"]))
    lines = ["| device | preset | stage | parameters | batch x sequence | precision | step s | tokens/s | audio s/s "
             "| peak GiB (estimate) | load | command |", "|---|---|---|---:|---|---|---:|---:|---:|---:|---:|---|"]
    for r in table:
        peak = f"{r['peak_gib']:.1f} ({r['estimate_gib']:.1f})" if r["peak_gib"] is not None else "-"
        lines.append(f"| {r['device']} | {r['preset']} | {r['stage']} | {r['parameters'] / 1e6:.1f} M | {r['batch']} x "
                     f"{r['sequence']:,} | {r['precision']} | {r['step_s']:.3f} | {r['tokens_per_s']:,.0f} | "
                     f"{r['audio_s_per_s']:.1f} | {peak} | {r.get('load', '-')} | `{r['command']}` |")
    if not any("H200" in r["device"] for r in table):
        lines.append("| NVIDIA H200 | paper | all four | | 16 x window | bf16 | pending a lent GPU | | | | | "
                     "`benchmarks/bench_throughput.py` |")
    report = f"""# Training throughput of the stage LMs

Tokens per second of one optimizer step (forward, backward, clipping, AdamW) on full windows of random tokens, one
process; `audio s/s` is seconds of training audio per second of wall time. Batch: as the row's command says (by default
one GPU's share of the preset's global batch over `--world-size` 16 devices: the paper's 256 over 16 is 16 windows).
Peak (CUDA only): the peak allocated memory, beside the dry run's estimate for the same batch on one GPU without DDP
(audiolm/train/dry_run.py). `load`: the machine's 1-minute load average before the row ran (the 2-core CPU machine is
shared with background training, so its figures are lower bounds).

{chr(10).join(lines)}

The H200 (and H100) rows are pending a lent GPU: `.venv/bin/python benchmarks/bench_throughput.py` (default: the paper
preset, CUDA, bf16) adds them here. Last command: `{command}`.
"""
    RESULTS.mkdir(exist_ok=True)
    write_json(path, {"rows": table})
    write_text(RESULTS / "throughput.md", report)
    return report


def write_dry_run(world: int) -> str:
    from audiolm.formats.atomic import write_text
    from audiolm.train.dry_run import GIB as DRY_GIB
    from audiolm.train.dry_run import codec_plan, estimate, lm_plan, report, semantic_plan

    runs = [("audiolm codec train --config paper", codec_plan("paper")),
            ("audiolm semantic train --config paper", semantic_plan("paper"))]
    runs += [(f"audiolm lm train --config paper --stage {stage}", lm_plan("paper", stage)) for stage in STAGES]
    summary = ["| command | parameters | per optimizer step | per GPU | DDP GiB | DDP, checkpointed | FSDP GiB | FSDP, checkpointed |",
               "|---|---:|---|---:|---:|---:|---:|---:|"]
    sections, largest = [], 0.0
    for command, plan in runs:
        f = estimate(plan, world)
        largest = max(largest, (f.states_ddp + f.activations) / DRY_GIB)
        summary.append(f"| `{command}` | {f.total / 1e6:.1f} M | {plan.batch_size} x {plan.sequence:,} {plan.unit} "
                       f"({plan.batch_size * plan.seconds:,.0f} s) | {f.micro_batch} | "
                       f"{(f.states_ddp + f.activations) / DRY_GIB:.1f} | {(f.states_ddp + f.activations_checkpointed) / DRY_GIB:.1f} | "
                       f"{(f.states_fsdp + f.activations) / DRY_GIB:.1f} | {(f.states_fsdp + f.activations_checkpointed) / DRY_GIB:.1f} |")
        sections.append(f"## `{command} -o RUN --dry-run --world-size {world}`\n\n{report(plan, world)}\n")
    text = f"""# Dry runs of the paper presets

`.venv/bin/python benchmarks/bench_throughput.py --dry-run --world-size {world}`: each training command's `--dry-run`
(models built on the meta device; nothing read or written) on {world} GPUs, the paper's 16 TPUv4 per stage. Memory
per GPU is an estimate, in GiB, from the formulas in audiolm/train/dry_run.py (fp32 weights, grads and AdamW states;
bf16 activations at 34 bytes per token x dim x layer; the CUDA context is not counted). Measured peaks are pending a
lent GPU (benchmarks/results/throughput.md).

{chr(10).join(summary)}

The largest, DDP without checkpointing, is {largest:.1f} GiB per GPU: every run fits an 80 GB H100 at this batch. The
stage LMs come to 0.15-0.18 B parameters, not the 0.3 B the AudioLM paper states: its own shapes (12 blocks of
d = 1024, FFN 4096) hold 151 M, plus 2-27 M of embeddings and head (tests/train/test_paper_presets.py). The semantic
encoder has w2v-BERT XL's depth and width in Transformer blocks: 0.31 B against the Conformer's 0.6 B.

{chr(10).join(sections)}"""
    RESULTS.mkdir(exist_ok=True)
    write_text(RESULTS / "dry_run.md", text)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="paper", help="an LM preset (tiny, small, base, paper) or a YAML file")
    parser.add_argument("--stages", default=",".join(STAGES), help="comma-separated stages")
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    parser.add_argument("--precision", default="auto", choices=("auto", "bf16", "fp32"), help="auto: bf16 on CUDA, fp32 on the CPU")
    parser.add_argument("--batch-size", type=int, help="windows per step (default: the preset's batch / --world-size)")
    parser.add_argument("--world-size", type=int, default=16, help="GPUs the preset's global batch is shared over (and of --dry-run)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    parser.add_argument("--dry-run", action="store_true", help="write the paper presets' dry runs to results/dry_run.md instead")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="LM config overrides, e.g. stage.window_seconds=4")
    args = parser.parse_args()
    if args.dry_run:
        print(write_dry_run(args.world_size))
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("no CUDA device: pass --device cpu (e.g. --device cpu --preset tiny)")
    bf16 = args.precision == "bf16" or (args.precision == "auto" and device.type == "cuda")
    rows = []
    command = "benchmarks/bench_throughput.py " + " ".join(sys.argv[1:])
    for stage in args.stages.split(","):
        load = f"{os.getloadavg()[0]:.1f}"
        row = measure(args.preset, stage, device, args.batch_size, args.world_size, args.steps, args.warmup, bf16, args.overrides)
        rows.append({**row, "device": device_name(device), "load": load, "command": command.strip()})
        print(f"{row['preset']} {stage}: {row['batch']} x {row['sequence']} {row['precision']}: {row['step_s']:.3f} s/step, "
              f"{row['tokens_per_s']:,.0f} tokens/s", flush=True)
    print(write_throughput(rows, command.strip()))


if __name__ == "__main__":
    main()
