"""The one training loop, shared by every trainer (codec, semantic encoder, the three LM stages).

A `Task` owns the models, the data and the losses; the loop owns everything else: devices, DDP or FSDP
(torchrun: gloo on CPU, NCCL on GPU; `sharding.py`, with activation checkpointing), bf16 autocast on GPU,
gradient accumulation and clipping, the learning-rate schedule, periodic validation, JSONL + TensorBoard logs,
a progress bar, and checkpoints that resume exactly after a kill (a resumed run first removes the temporaries a
kill left behind);
`curves.png` in the run folder is redrawn at each validation.

Each step, `task.losses(batch, models, step)` yields `(optimizer, loss, logs)` in order; the loop
back-propagates each loss into that optimizer's parameters only and, on the last micro-batch, clips and
steps it before the task computes the next loss (so a GAN's generator sees the updated discriminator; FSDP
takes tasks of one optimizer only).
Batches are drawn from the step number (`task.batch(step, start, stop)` returns examples start..stop of
the step's global batch), so a resumed or distributed run sees exactly the data of an uninterrupted one. A task that
streams its data instead (audio shards) has a position to keep: its `data_state()` (JSON-able, or None when there is
none) is gathered from every process into the checkpoint, and `load_data_state(states)` gets the list back on resume.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from tqdm import tqdm

from audiolm.errors import AudiolmError
from audiolm.formats.atomic import remove_temporaries, write_json, write_text
from audiolm.train.checkpoint import latest_checkpoint, load_trainer_state, load_weights, save_checkpoint
from audiolm.train.plot import plot_log


@dataclass(kw_only=True)
class OptimizerConfig:
    lr: float = 3e-4
    betas: tuple[float, float] = (0.8, 0.99)
    weight_decay: float = 0.0
    clip_grad_norm: float = 1.0  # 0 turns clipping off

    def __post_init__(self) -> None:
        if self.lr <= 0 or self.clip_grad_norm < 0:
            raise ValueError("lr must be positive and clip_grad_norm non-negative")


@dataclass(kw_only=True)
class TrainConfig:
    steps: int = 1000
    batch_size: int = 16  # global, across processes and accumulation
    grad_accum: int = 1
    warmup_steps: int = 100
    schedule: str = "cosine"  # "cosine" | "constant"
    min_lr_ratio: float = 0.1
    precision: str = "auto"  # "auto" (bf16 on GPU, fp32 on CPU) | "fp32" | "bf16"
    device: str = "auto"  # "auto" | "cpu" | "cuda"
    num_threads: int = 0  # CPU threads per process; 0 leaves torch's default
    log_every: int = 10
    valid_every: int = 200
    save_every: int = 200
    keep_checkpoints: int = 2
    seed: int = 0
    tensorboard: bool = True
    stop_after_minutes: float = 0.0  # > 0: checkpoint and stop after this much wall time (resume later)
    strategy: str = "ddp"  # with several processes: "ddp" (a whole model each) | "fsdp" (weights, grads, AdamW sharded)
    activation_checkpointing: bool = False  # recompute each block's activations in the backward pass (less memory)

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or self.grad_accum < 1:
            raise ValueError("steps, batch_size and grad_accum must be at least 1")
        if self.schedule not in ("cosine", "constant"):
            raise ValueError(f"schedule must be cosine or constant, got {self.schedule!r}")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise ValueError(f"precision must be auto, fp32 or bf16, got {self.precision!r}")
        if self.strategy not in ("ddp", "fsdp"):
            raise ValueError(f"strategy must be ddp or fsdp, got {self.strategy!r}")


class Task(Protocol):
    def modules(self) -> dict[str, nn.Module]: ...

    def optimizers(self) -> dict[str, tuple[list[str], OptimizerConfig]]:
        """Optimizer name -> (the names of the modules it trains, its settings)."""
        ...

    def batch(self, step: int, start: int, stop: int) -> Any:
        """Examples start..stop of step `step`'s global batch (on CPU; the loop moves tensors)."""
        ...

    def losses(self, batch: Any, models: dict[str, nn.Module], step: int) -> Iterator[tuple[str, torch.Tensor, dict[str, float]]]: ...

    def validate(self, models: dict[str, nn.Module], step: int) -> dict[str, float]: ...

    # Optional, for streamed data: `data_state() -> dict | None`, this process's position (after the batches of the
    # steps done); `load_data_state(states: list[dict]) -> None`, resume from every process's saved position (by rank).

    def export(self, models: dict[str, nn.Module], run_dir: Path) -> None:
        """Write the user-facing model (e.g. model.safetensors + config.json) at the end of training."""
        ...


@dataclass
class Distributed:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls, device: torch.device) -> Distributed:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        if world > 1:
            return cls(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
        return cls()


@dataclass
class TrainResult:
    step: int
    logs: list[dict] = field(default_factory=list)


def lr_factor(step: int, config: TrainConfig) -> float:
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    if config.schedule == "constant":
        return 1.0
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    return config.min_lr_ratio + (1 - config.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def _device(name: str, local_rank: int) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise AudiolmError("device=cuda asked for, but no CUDA device is available")
        return torch.device("cuda", local_rank)
    return torch.device(name)


def _to(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: _to(v, device) for k, v in batch.items()}
    return batch


def train(task: Task, config: TrainConfig, run_dir: str | Path, run_config: dict, progress: bool = True,
          stop_after: int | None = None) -> TrainResult:
    """Train `task` into `run_dir`, resuming from its latest checkpoint; `stop_after` ends early (for tests)."""
    from audiolm.train.sharding import Sharding  # torch.distributed's FSDP and DTensor: a second to import

    run_dir = Path(run_dir)
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    device = _device(config.device, int(os.environ.get("LOCAL_RANK", "0")))
    if device.type == "cuda":
        torch.cuda.set_device(device)  # NCCL and FSDP's device mesh use the current device
    world = Distributed.from_env(device)
    if config.batch_size % (world.world * config.grad_accum):
        raise AudiolmError(f"batch_size {config.batch_size} must divide by processes x grad_accum = {world.world * config.grad_accum}")
    bf16 = config.precision == "bf16" or (config.precision == "auto" and device.type == "cuda")
    torch.manual_seed(config.seed)
    np.random.seed(config.seed)  # saved in checkpoints too: a run's trainer state does not depend on the process
    random.seed(config.seed)

    modules = {name: m.to(device) for name, m in task.modules().items()}
    opt_specs = task.optimizers()
    if config.strategy == "fsdp" and len(opt_specs) > 1:
        raise AudiolmError(f"train.strategy=fsdp trains one optimizer, this task has {len(opt_specs)}: use train.strategy=ddp")
    checkpoint = latest_checkpoint(run_dir)
    if checkpoint is not None:
        load_weights(checkpoint, modules)  # before sharding: FSDP shards the loaded weights
    sharding = Sharding(modules, config.strategy, world.world, device, bf16, config.activation_checkpointing, main=world.main)
    wrapped = sharding.models
    # after sharding: FSDP replaces the parameters by their shards
    params = {name: [p for m in names for p in modules[m].parameters() if p.requires_grad] for name, (names, _) in opt_specs.items()}
    optimizers = {
        name: torch.optim.AdamW(params[name], lr=spec.lr, betas=spec.betas, weight_decay=spec.weight_decay)
        for name, (_, spec) in opt_specs.items()
    }
    start = 0
    if checkpoint is not None:
        trainer_state = load_trainer_state(checkpoint, optimizers)
        start = int(trainer_state["step"])
        if "data" in trainer_state and hasattr(task, "load_data_state"):
            task.load_data_state(trainer_state["data"])
    if world.main:
        _remove_temporaries(run_dir)
    logger = _Logger(run_dir, config, enabled=world.main, resume_step=start)
    if world.main:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json(run_dir / "config.json", run_config)
    per_rank = config.batch_size // world.world
    micro = per_rank // config.grad_accum
    end = config.steps if stop_after is None else min(config.steps, stop_after)
    bar = tqdm(total=config.steps, initial=start, desc="train", unit="step", disable=not (progress and world.main))
    result = TrainResult(step=start)
    began = time.monotonic()
    for step in range(start, end):
        t0 = time.perf_counter()
        for name, optimizer in optimizers.items():
            for group in optimizer.param_groups:
                group["lr"] = opt_specs[name][1].lr * lr_factor(step, config)
        totals: dict[str, float] = {}
        for k in range(config.grad_accum):
            first = world.rank * per_rank + k * micro
            batch = _to(task.batch(step, first, first + micro), device)
            last = k == config.grad_accum - 1
            with contextlib.nullcontext() if last else sharding.no_sync(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                for name, loss, logs in task.losses(batch, wrapped, step):
                    # FSDP's shards are not the graph's leaves (it computes with gathered copies); its hooks reach them
                    (loss / config.grad_accum).backward(inputs=None if sharding.sharded else params[name])
                    for key, value in logs.items():
                        totals[key] = totals.get(key, 0.0) + value / config.grad_accum
                    if last:
                        totals[f"grad_norm/{name}"] = _step(optimizers[name], params[name], opt_specs[name][1].clip_grad_norm)
        step_time = time.perf_counter() - t0
        result.step = step + 1
        if world.main and ((step + 1) % config.log_every == 0 or step + 1 == end):
            record = {"step": step + 1, "lr": lr_factor(step, config), "time/step_s": step_time, **totals}
            logger.log(record)
            result.logs.append(record)
            bar.set_postfix({k: f"{v:.3g}" for k, v in totals.items() if not k.startswith("grad_norm")}, refresh=False)
        bar.update(1)
        if (step + 1) % config.valid_every == 0 or step + 1 == config.steps:
            _validate(task, modules, step + 1, world, logger, result, everywhere=sharding.sharded)
        out_of_time = _out_of_time(began, config.stop_after_minutes, world)
        if (step + 1) % config.save_every == 0 or step + 1 == end or out_of_time:
            states = sharding.full_states()  # every process: under FSDP they gather the shards together
            optimizer_states = {name: sharding.full_optimizer_state(o) for name, o in optimizers.items()}
            data = _data_states(task, world)  # every process: each one's position in its data stream
            if world.main:
                save_checkpoint(run_dir, step + 1, states, optimizer_states, run_config, extra=data, keep=config.keep_checkpoints)
            if world.world > 1:
                dist.barrier()
        if out_of_time:
            break
    bar.close()
    if result.step == config.steps:
        whole = sharding.whole()  # every process (FSDP gathers)
        if world.main:
            task.export(whole, run_dir)
    logger.close()
    return result


def _data_states(task: Task, world: Distributed) -> dict | None:
    """`{"data": [position of process 0, 1, ...]}` for a task that streams its data, else None."""
    state = task.data_state() if hasattr(task, "data_state") else None
    if state is None:
        return None
    states = [state]
    if world.world > 1:
        states = [None] * world.world
        dist.all_gather_object(states, state)
    return {"data": states}


def _remove_temporaries(run_dir: Path) -> None:
    """Remove what a killed run was writing: atomic writes' `.<name>.*.tmp*` files, safetensors' own `.tmp*` ones,
    and unfinished `.step_*` checkpoints."""
    for folder in (run_dir, run_dir / "checkpoints", run_dir / "model"):
        remove_temporaries(folder)
    for path in (run_dir / "checkpoints").glob(".step_*"):
        shutil.rmtree(path, ignore_errors=True)


def _out_of_time(began: float, minutes: float, world: Distributed) -> bool:
    """Whether the time budget is spent; every process follows rank 0's clock."""
    if minutes <= 0:
        return False
    flag = torch.tensor([float(time.monotonic() - began > minutes * 60)])
    if world.world > 1:
        dist.broadcast(flag, 0)
    return bool(flag.item())


def _step(optimizer: torch.optim.Optimizer, params: list[torch.Tensor], clip: float) -> float:
    norm = torch.nn.utils.clip_grad_norm_(params, clip if clip > 0 else float("inf"))
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return float(norm)


def _validate(task: Task, modules: dict[str, nn.Module], step: int, world: Distributed, logger: _Logger, result: TrainResult,
              everywhere: bool = False) -> None:
    """Validate on the main process, which logs; with `everywhere`, on every process (sharded modules run only on
    all processes together)."""
    if world.main or everywhere:
        for m in modules.values():
            m.eval()
        with torch.no_grad():
            metrics = {f"valid/{k}": v for k, v in task.validate(modules, step).items()}
        for m in modules.values():
            m.train()
    if world.main:
        record = {"step": step, **metrics}
        logger.log(record)
        result.logs.append(record)
        plot_log(logger.path, logger.path.with_name("curves.png"))
    if world.world > 1:
        dist.barrier()


class _Logger:
    """JSONL (`run_dir/log.jsonl`) and, when available, TensorBoard (`run_dir/tensorboard/`)."""

    def __init__(self, run_dir: Path, config: TrainConfig, enabled: bool, resume_step: int = 0) -> None:
        self.enabled, self.path, self.writer = enabled, run_dir / "log.jsonl", None
        if enabled and self.path.is_file():  # drop what a killed run logged after its last checkpoint (and a cut-off line)
            kept = [line for line in self.path.read_text(encoding="utf-8").splitlines() if _step_of(line) <= resume_step]
            write_text(self.path, "".join(line + "\n" for line in kept))
        if enabled and config.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard is optional; JSONL always works
                SummaryWriter = None
            if SummaryWriter is not None:
                self.writer = SummaryWriter(str(run_dir / "tensorboard"))

    def log(self, record: dict) -> None:
        if not self.enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        if self.writer is not None:
            for key, value in record.items():
                if key != "step" and isinstance(value, (int, float)):
                    self.writer.add_scalar(key, value, record["step"])

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _step_of(line: str) -> float:
    """The step of a log line; infinite for a blank or cut-off line (a kill mid-write), so that it is dropped."""
    try:
        return json.loads(line).get("step", 0)
    except (json.JSONDecodeError, AttributeError):
        return math.inf
