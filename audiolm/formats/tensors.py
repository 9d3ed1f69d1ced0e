"""Modules as safetensors files: parameters and buffers by name, optionally cast (e.g. to fp16), never a pickle.

    save_module(model, "model.safetensors", dtype=torch.float16)
    load_module(model, "model.safetensors")   # missing, corrupt or mismatched files raise FileError
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from audiolm.errors import FileError
from audiolm.formats.atomic import atomic_path


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
        state[name] = tensor.to(own[name].dtype)
    module.load_state_dict(state, strict=False)
    return module
