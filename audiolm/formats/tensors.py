"""Modules as safetensors files: parameters and buffers by name, optionally cast (e.g. to fp16), never a pickle.

    save_module(model, "model.safetensors", dtype=torch.float16)
    load_module(model, "model.safetensors")   # missing, corrupt or mismatched files raise FileError
    model = build_module(lambda: Model(config), "model.safetensors", "config.json")  # a config from a user's file
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves, tree_map

from audiolm.errors import FileError
from audiolm.formats.atomic import atomic_path, remove_temporaries

M = TypeVar("M")


def save_module(module: nn.Module, path: str | Path, dtype: torch.dtype | None = None, metadata: dict | None = None,
                skip: tuple[str, ...] = ()) -> Path:
    """Write a module's state (parameters and buffers) as safetensors, optionally cast (e.g. fp16); keys ending
    in one of `skip` are left out (training-only state)."""
    state = {}
    for name, tensor in module.state_dict().items():
        if skip and name.endswith(skip):
            continue
        tensor = tensor.detach().cpu()
        if dtype is not None and tensor.is_floating_point():
            tensor = tensor.to(dtype)
        state[name] = tensor.contiguous()
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata={k: str(v) for k, v in (metadata or {}).items()})
    return Path(path)


def load_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a safetensors file; a missing or corrupt file raises a one-line `FileError`."""
    path = Path(path)
    if not path.is_file():
        raise FileError(path, "no such checkpoint file")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise FileError(path, f"corrupt or unreadable safetensors ({' '.join(str(error).split())[:160]})") from None


def load_module(module: nn.Module, path: str | Path, optional: tuple[str, ...] = ()) -> nn.Module:
    """Load a safetensors state into `module` (cast to its dtypes); mismatched keys or shapes raise `FileError`.
    Keys ending in one of `optional` may be absent from the file (they keep the module's values)."""
    state = load_tensors(path)
    own = module.state_dict()
    missing = sorted(k for k in set(own) - set(state) if not (optional and k.endswith(optional)))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise FileError(path, f"does not match the model (missing {missing[:4]}, unexpected {unexpected[:4]})")
    for name, tensor in state.items():
        if tensor.shape != own[name].shape:
            raise FileError(path, f"tensor {name} has shape {tuple(tensor.shape)}, the model wants {tuple(own[name].shape)}")
        if _kind(tensor.dtype) != _kind(own[name].dtype):
            raise FileError(path, f"tensor {name} is {tensor.dtype}, the model wants {own[name].dtype}")
        state[name] = tensor.to(own[name].dtype)
    module.load_state_dict(state, strict=False)
    return module


def _kind(dtype: torch.dtype) -> str:
    """What a cast between dtypes of different kinds would lose (fp16 -> fp32 is fine, complex or bool -> float is not)."""
    return "bool" if dtype == torch.bool else "complex" if dtype.is_complex else "float" if dtype.is_floating_point else "int"


def build_module(build: Callable[[], M], weights: str | Path, config: str | Path) -> M:
    """`build()` (a model from a config read from the user's file `config`), refused with a `FileError` naming `config`
    when it fails or would allocate far more than `weights` holds: a config of huge sizes is refused before its
    tensors exist, so it can never exhaust memory. `weights` must be a readable safetensors file."""
    weights = Path(weights)
    if not weights.is_file():
        raise FileError(weights, "no such checkpoint file")
    try:
        with safe_open(str(weights), framework="pt") as f:
            shapes = [f.get_slice(name).get_shape() for name in f.keys()]
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise FileError(weights, f"corrupt or unreadable safetensors ({' '.join(str(error).split())[:160]})") from None
    held = sum(math.prod(shape) for shape in shapes)
    budget = _AllocationBudget(elements=4 * held + 2**24, allocations=16 * len(shapes) + 1024)
    try:
        with budget:
            return build()
    except _OverBudget:
        raise FileError(config, f"describes a model far bigger than {weights.name} holds ({held} values)") from None
    except (ArithmeticError, LookupError, TypeError, ValueError, RuntimeError) as error:
        raise FileError(config, f"describes a model that cannot be built ({' '.join(str(error).split())[:160]})") from None


class _OverBudget(Exception):
    pass


class _AllocationBudget(TorchDispatchMode):
    """Counts the tensors that operations allocate (sized on the meta device first, so nothing is allocated) and
    raises `_OverBudget` before one that would pass `elements` values in all or `allocations` tensors."""

    def __init__(self, elements: int, allocations: int) -> None:
        super().__init__()
        self.elements, self.allocations = elements, allocations

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if any(ret.alias_info is None for ret in func._schema.returns):  # a new tensor, not a view or an in-place result
            self.allocations -= 1
            self.elements -= _planned_size(func, args, kwargs)
            if self.allocations < 0 or self.elements < 0:
                raise _OverBudget
        return func(*args, **kwargs)


def _planned_size(func, args: tuple, kwargs: dict) -> int:
    """How many values `func(*args, **kwargs)` would allocate, found by running it on the meta device."""
    meta_args, meta_kwargs = tree_map(lambda x: x.to("meta") if isinstance(x, torch.Tensor) else x, (args, kwargs))
    if any(argument.name == "device" for argument in func._schema.arguments):
        meta_kwargs["device"] = torch.device("meta")
    try:
        out = func(*meta_args, **meta_kwargs)
    except Exception:  # an operation meta tensors cannot run (it reads values): count what its size argument asks for
        size = kwargs.get("size", args[0] if args else ())
        return math.prod(size) if isinstance(size, (list, tuple)) and all(isinstance(n, int) for n in size) else 0
    return sum(t.numel() for t in tree_leaves(out) if isinstance(t, torch.Tensor))


def start_model_folder(folder: str | Path) -> Path:
    """Make `folder` ready for a model's `model.safetensors` + `config.json`, written in that order: a folder is
    complete once its config.json exists, so an older config.json goes first (a save killed midway then leaves a
    folder that loaders refuse as incomplete, never new weights beside an old config), and so do the temporaries
    a killed save left."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").unlink(missing_ok=True)
    remove_temporaries(folder, ("model", "config"))
    return folder
