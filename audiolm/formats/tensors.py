"""Modules as safetensors files: parameters and buffers by name, optionally cast (e.g. to fp16), never a pickle.

    save_module(model, "model.safetensors", dtype=torch.float16)
    load_module(model, "model.safetensors")   # missing, corrupt or mismatched files raise FileError
    layout = tensor_layout("shard.safetensors")  # {name: TensorLayout}: where each tensor lies, from the header alone
    model = build_module(lambda: Model(config), "model.safetensors", "config.json")  # a config from a user's file
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_leaves

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


@dataclass(frozen=True)
class TensorLayout:
    """Where a tensor's bytes lie in a safetensors file: `dtype` as the header spells it ("U16", "F32", ...),
    `shape`, and `offset` (bytes from the start of the file) of `nbytes` contiguous little-endian values."""

    dtype: str
    shape: tuple[int, ...]
    offset: int
    nbytes: int


ITEMSIZE = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "U16": 2, "I16": 2, "F16": 2, "BF16": 2, "U32": 4, "I32": 4,
            "F32": 4, "U64": 8, "I64": 8, "F64": 8}
MAX_HEADER = 100_000_000  # the safetensors library's own limit


def tensor_layout(path: str | Path) -> dict[str, TensorLayout]:
    """Each tensor's layout from a safetensors file's header alone (8 bytes of little-endian header length, then a
    JSON object {name: {dtype, shape, data_offsets}} and the data), without reading any data: what memory-mapped
    readers need. Tensors of a dtype not listed in `ITEMSIZE` are left out. A missing, truncated or malformed file
    (offsets outside the file, a size that does not match the shape) raises a one-line `FileError`."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            length = int.from_bytes(f.read(8), "little") if size >= 8 else -1
            if not 0 < length <= min(MAX_HEADER, size - 8):
                raise ValueError(f"header length {length} does not fit a file of {size} bytes")
            header = json.loads(f.read(length))
        if not isinstance(header, dict):
            raise ValueError("the header is not a JSON object")
        start, layout = 8 + length, {}
        for name, info in header.items():
            if name == "__metadata__":
                continue
            dtype, shape, (begin, end) = info["dtype"], info["shape"], info["data_offsets"]
            if not (isinstance(shape, list) and all(type(n) is int and n >= 0 for n in shape) and type(begin) is int
                    and type(end) is int and 0 <= begin <= end <= size - start):
                raise ValueError(f"tensor {name!r} has a malformed shape or offsets")
            if dtype not in ITEMSIZE:
                continue
            if end - begin != math.prod(shape) * ITEMSIZE[dtype]:
                raise ValueError(f"tensor {name!r} holds {end - begin} bytes, not those of {dtype} {shape}")
            layout[name] = TensorLayout(dtype, tuple(shape), start + begin, end - begin)
    except FileNotFoundError:
        raise FileError(path, "no such file") from None
    except (OSError, ValueError, KeyError, TypeError, RecursionError) as error:
        raise FileError(path, f"corrupt or unreadable safetensors ({' '.join(str(error).split())[:160]})") from None
    return layout


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


class _AllocationBudget(TorchFunctionMode):
    """Raises `_OverBudget` before a torch call would take the tensors allocated so far past `elements` values in all,
    and after the one that passes `allocations` new tensors. It sees the calls a module's code makes (torch functions,
    tensor methods, `nn.init`; not what they do inside) and bounds what each may allocate from its arguments alone, never
    on the meta device or in a TorchDispatchMode, which would import torch._dynamo (a second or more per model load).
    Before a call, the largest of these bounds must fit in what is left:
    - factories (`torch.zeros(2, 3)`, `torch.full(size, v)`, `x.new_ones(size)`, `x.resize_(size)`, ...): the size
      asked for; `arange`, `linspace`, `eye`, windows (`hann_window(n)`), `randperm`: the length their numbers ask for;
    - every call: its largest tensor argument (a copy of it, which may view far more values than it holds, as
      `x.expand(n, m).contiguous()` does);
    - two or more tensor arguments: their broadcast shape; where they do not broadcast (outer products, matmul,
      indexing), the product of their sizes (`cat`, `stack`: the sum);
    - `repeat`, `tile`, `repeat_interleave`: the input's size times the integers (or repeat counts) asked for.
    After it, the tensors it returned that share no storage with its arguments (new ones, not views or in-place
    results) are charged. The bounds are loose, but a model does little arithmetic while it is built, and the budget
    is generous."""

    def __init__(self, elements: int, allocations: int) -> None:
        super().__init__()
        self.elements, self.allocations = elements, allocations

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        tensors = [t for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
        if _bound(name, args, kwargs, tensors) > self.elements:
            raise _OverBudget
        held = {_storage(t)[0] for t in tensors}
        out = func(*args, **kwargs)
        fresh = dict(_storage(t) for t in tree_leaves(out) if isinstance(t, torch.Tensor))
        fresh = {key: size for key, size in fresh.items() if key not in held}
        self.elements -= sum(fresh.values())
        self.allocations -= len(fresh)
        if self.elements < 0 or self.allocations < 0:
            raise _OverBudget
        return out


_FACTORIES = {"empty", "zeros", "ones", "full", "rand", "randn", "randint", "normal", "empty_strided", "new_empty",
              "new_zeros", "new_ones", "new_full", "new_empty_strided", "resize_"}
_LENGTHS = {"hann_window", "hamming_window", "blackman_window", "bartlett_window", "kaiser_window", "randperm"}
_JOINS = {"cat", "concat", "concatenate", "stack", "hstack", "vstack", "dstack", "column_stack", "row_stack"}
_REPEATS = {"repeat", "tile", "repeat_interleave"}


def _bound(name: str, args: tuple, kwargs: dict, tensors: list[torch.Tensor]) -> int:
    """At least how many values `func(*args, **kwargs)` would allocate, for the rules of `_AllocationBudget`."""
    sizes = [t.numel() for t in tensors]
    bound = max(sizes, default=0)
    if len(tensors) > 1:
        joint = _broadcast_size([t.shape for t in tensors])
        bound = max(bound, joint if joint is not None else sum(sizes) if name in _JOINS else math.prod(sizes))
    if name in _REPEATS and tensors:
        times = [max(1, n) for n in tree_leaves((args, kwargs)) if type(n) is int]
        counts = tensors[-1] if len(tensors) > 1 or len(args) == 1 else None  # repeat_interleave(x, counts) or (counts)
        if counts is not None and counts.numel() and not counts.is_floating_point():
            times.append(int(counts.max()))
        bound = max(bound, sizes[0] * math.prod(times))
    try:
        return max(bound, _requested(name, args, kwargs))
    except (TypeError, ValueError, OverflowError, ZeroDivisionError, IndexError, RuntimeError):
        return bound  # arguments the call itself refuses


def _requested(name: str, args: tuple, kwargs: dict) -> int:
    """The values a factory's size or length arguments ask for (0 for other functions)."""
    numbers = [a for a in args if isinstance(a, (int, float)) and not isinstance(a, bool)]
    if name in _FACTORIES:
        size = kwargs.get("size", next((a for a in args if isinstance(a, (tuple, list))), None))  # torch.Size is a tuple
        return math.prod(int(n) for n in (numbers if size is None else size))  # varargs sizes: torch.zeros(2, 3)
    if name in ("arange", "range"):  # arange(end) or arange(start, end, step)
        given = dict(zip(("start", "end", "step") if len(numbers) > 1 or "end" in kwargs else ("end",), numbers)) | kwargs
        start, end, step = (float(given.get(key, default)) for key, default in (("start", 0), ("end", 0), ("step", 1)))
        return math.ceil((end - start) / step) + 1
    if name in ("linspace", "logspace"):
        return int(kwargs.get("steps", args[2] if len(args) > 2 else 0))
    if name in ("eye", "tril_indices", "triu_indices"):
        return 2 * int(numbers[0]) * int(numbers[1] if len(numbers) > 1 else numbers[0])
    if name in _LENGTHS:
        return int(numbers[0])
    return 0


def _broadcast_size(shapes: list[torch.Size]) -> int | None:
    """The number of values of `shapes` broadcast together, or None where they do not broadcast."""
    dims: list[int] = []  # the broadcast shape, last dimension first
    for shape in shapes:
        for i, n in enumerate(reversed(shape)):
            if i == len(dims):
                dims.append(n)
            elif dims[i] == 1:
                dims[i] = n
            elif n not in (1, dims[i]):
                return None
    return math.prod(dims)


def _storage(tensor: torch.Tensor) -> tuple[int, int]:
    """(a key for the memory `tensor` lies in, how many of its values that memory holds)."""
    try:
        storage = tensor.untyped_storage()
        return storage.data_ptr(), storage.nbytes() // tensor.element_size()
    except (RuntimeError, NotImplementedError):  # no plain storage (e.g. sparse): count it as new
        return id(tensor), tensor.numel()


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
