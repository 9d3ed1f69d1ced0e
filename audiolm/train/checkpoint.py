"""Checkpoints: safetensors for every tensor, JSON for everything else, never a pickle.

A training checkpoint is a folder `step_XXXXXXXX/` holding `<module>.safetensors` for each trained
module, `optimizers.safetensors` + `trainer_state.json` (optimizer moments, step, RNG states, and each process's
position in a streamed data set) and
`config.json` (the resolved run config). It is written under a temporary name and renamed, so a kill
mid-write leaves the previous checkpoint as the latest. A model for users is `model.safetensors` +
`config.json`.

The files hold full tensors whatever the strategy: the loop passes full state dicts (gathered under FSDP by
`sharding.py`), and optimizer moments are sharded again like their parameters when loaded.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn

from audiolm.errors import FileError
from audiolm.formats.atomic import atomic_path, write_json
from audiolm.formats.json_file import read_json
from audiolm.formats.tensors import load_module, load_tensors

LATEST = "latest.txt"


def _optimizer_state(optimizer_states: dict[str, dict]) -> tuple[dict[str, torch.Tensor], dict]:
    tensors, meta = {}, {}
    for name, state in optimizer_states.items():
        meta[name] = {"param_groups": state["param_groups"], "state": {}}
        for index, values in state["state"].items():
            meta[name]["state"][str(index)] = {}
            for key, value in values.items():
                if isinstance(value, torch.Tensor):
                    tensors[f"{name}/{index}/{key}"] = value.detach().cpu().contiguous()
                    meta[name]["state"][str(index)][key] = "tensor"
                else:
                    meta[name]["state"][str(index)][key] = value
    return tensors, meta


def _load_optimizer_state(optimizers: dict[str, torch.optim.Optimizer], tensors: dict, meta: dict) -> None:
    from audiolm.train.sharding import load_optimizer_state  # torch.distributed's FSDP and DTensor: a second to import

    for name, optimizer in optimizers.items():
        saved = meta[name]
        state = {}
        for index, values in saved["state"].items():
            state[int(index)] = {k: tensors[f"{name}/{index}/{k}"] if v == "tensor" else v for k, v in values.items()}
        load_optimizer_state(optimizer, {"param_groups": saved["param_groups"], "state": state})


def rng_state() -> tuple[dict[str, torch.Tensor], dict]:
    tensors = {"rng/torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        tensors["rng/cuda"] = torch.cuda.get_rng_state()
    np_state = np.random.get_state()
    py_state = random.getstate()
    meta = {"numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
            "python": [py_state[0], list(py_state[1]), py_state[2]]}
    return tensors, meta


def set_rng_state(tensors: dict[str, torch.Tensor], meta: dict) -> None:
    torch.set_rng_state(tensors["rng/torch"])
    if "rng/cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng/cuda"])
    kind, keys, *rest = meta["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), *rest))
    version, internal, gauss = meta["python"]
    random.setstate((version, tuple(internal), gauss))


def save_checkpoint(run_dir: Path, step: int, states: dict[str, dict[str, torch.Tensor]], optimizer_states: dict[str, dict],
                    config: dict, extra: dict | None = None, keep: int = 2) -> Path:
    """Write `run_dir/checkpoints/step_<step>/` atomically, point `latest.txt` at it, keep the newest `keep`.
    `states` maps each module's name to its state dict, `optimizer_states` each optimizer's to its `state_dict()`, with
    full tensors (as one process holds them; under FSDP, `Sharding.full_states` gathers them)."""
    root = run_dir / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step_{step:08d}"
    tmp = Path(tempfile.mkdtemp(prefix=f".step_{step:08d}.", dir=root))
    try:
        for name, state in states.items():
            save_file({k: v.detach().cpu().contiguous() for k, v in state.items()}, str(tmp / f"{name}.safetensors"))
        opt_tensors, opt_meta = _optimizer_state(optimizer_states)
        rng_tensors, rng_meta = rng_state()
        save_file({**opt_tensors, **rng_tensors}, str(tmp / "trainer_state.safetensors"))
        write_json(tmp / "trainer_state.json", {"step": step, "optimizers": opt_meta, "rng": rng_meta, **(extra or {})})
        write_json(tmp / "config.json", config)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    with atomic_path(root / LATEST) as pointer:
        pointer.write_text(final.name + "\n")
    for old in sorted(p for p in root.glob("step_*") if p.is_dir())[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(run_dir: Path) -> Path | None:
    pointer = run_dir / "checkpoints" / LATEST
    if not pointer.is_file():
        return None
    try:
        name = pointer.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as error:
        raise FileError(pointer, f"unreadable checkpoint pointer ({error})") from None
    if not name.startswith("step_") or "/" in name:
        raise FileError(pointer, f"does not name a checkpoint folder (holds {name[:40]!r})")
    path = run_dir / "checkpoints" / name
    return path if path.is_dir() else None


def load_checkpoint(path: Path, modules: dict[str, nn.Module], optimizers: dict[str, torch.optim.Optimizer]) -> dict:
    """Restore modules, optimizers and RNG states from a checkpoint folder; return its trainer state JSON."""
    load_weights(path, modules)
    return load_trainer_state(path, optimizers)


def load_weights(path: Path, modules: dict[str, nn.Module]) -> None:
    """Load each module's weights from a checkpoint folder (into whole modules: before FSDP shards them)."""
    for name, module in modules.items():
        load_module(module, path / f"{name}.safetensors")


def load_trainer_state(path: Path, optimizers: dict[str, torch.optim.Optimizer]) -> dict:
    """Restore the optimizers (sharded like their parameters) and RNG states from a checkpoint folder; return its
    trainer state JSON."""
    tensors = load_tensors(path / "trainer_state.safetensors")
    state = read_json(path / "trainer_state.json")
    try:
        _load_optimizer_state(optimizers, tensors, state["optimizers"])
        set_rng_state(tensors, state["rng"])
    except (KeyError, IndexError, ValueError, RuntimeError) as error:
        raise FileError(path, f"trainer state does not match this run ({error})") from None
    return state
