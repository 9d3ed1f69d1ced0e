"""Hypothesis strategies for damaged user files, and the property every reader must keep.

The property: a reader given a damaged file returns a value or raises `AudiolmError` (`FileError` is one) whose
message is one line naming the file; any other exception is a bug in the reader.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import torch
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from safetensors.torch import save_file

from audiolm.errors import AudiolmError

T = TypeVar("T")


def fuzz(max_examples: int) -> settings:
    """Reproducible settings (derandomized: CI runs the same examples every time)."""
    return settings(max_examples=max_examples, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def loads_or_refuses(call: Callable[[], T], names: str | Path) -> T | None:
    """`call()`'s value, or None where it raised `AudiolmError` with a one-line message naming `names`."""
    try:
        return call()
    except AudiolmError as error:
        message = str(error)
        assert "\n" not in message, f"a message of several lines: {message!r}"
        assert str(names) in message, f"{message!r} does not name {names}"
        return None


# --- JSON / YAML structures --------------------------------------------------------------------------------------
SPECIAL = [0, -1, 1, 2, 3, 4096, 100_000, 2**31, 2**63, 10**30, -(10**30), 1e308, -1e-300, 0.5, -0.5, math.nan, math.inf,
           -math.inf, True, False, None, "", "x", "nan", "1e400", "../x", [], {}, [1, 2], [-1], {"a": 1}, [[]], ["x"]]
scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10) | st.sampled_from(SPECIAL)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                           max_leaves=10)


@st.composite
def mutated(draw, valid: dict, max_mutations: int = 3) -> dict:
    """`valid` with 1..max_mutations values replaced (junk, wrong types, huge or negative numbers, NaN), deleted or added."""
    data = copy.deepcopy(valid)
    for _ in range(draw(st.integers(1, max_mutations))):
        node = data
        while True:
            keys = list(node) if isinstance(node, dict) else list(range(len(node)))
            if not keys:
                action = "add"
            else:
                key = draw(st.sampled_from(keys))
                if isinstance(node[key], (dict, list)) and node[key] and draw(st.booleans()):
                    node = node[key]
                    continue
                action = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
            if action == "replace":
                node[key] = copy.deepcopy(draw(json_values))
            elif action == "delete":
                del node[key]
            elif isinstance(node, dict):
                node[draw(st.text(max_size=8))] = copy.deepcopy(draw(json_values))
            else:
                node.append(copy.deepcopy(draw(json_values)))
            break
    return data


def structures(valid: dict) -> st.SearchStrategy:
    """Mostly near-misses of `valid`, sometimes any JSON value at all."""
    return st.one_of(mutated(valid), mutated(valid), json_values)


def json_bytes(valid: dict) -> st.SearchStrategy[bytes]:
    """A JSON file: a wrong structure, random bytes, or `valid` damaged."""
    text = json.dumps(valid, indent=2).encode()
    return st.one_of(structures(valid).map(lambda d: json.dumps(d).encode()), damaged(text))


# --- bytes ---------------------------------------------------------------------------------------------------------
def damaged(valid: bytes, boundaries: tuple[int, ...] = ()) -> st.SearchStrategy[bytes]:
    """`valid` truncated (at any length, and at `boundaries` such as the end of a header), with bytes overwritten,
    or random bytes."""
    lengths = st.one_of(st.sampled_from(sorted({n for n in (0, 1, 7, 8, 9, len(valid) - 1, *boundaries) if 0 <= n < len(valid)})),
                        st.integers(0, len(valid) - 1))

    def overwrite(edits: list[tuple[int, int]]) -> bytes:
        data = bytearray(valid)
        for position, value in edits:
            data[position % len(data)] = value
        return bytes(data)

    return st.one_of(lengths.map(lambda n: valid[:n]),
                     st.lists(st.tuples(st.integers(0, len(valid) - 1), st.integers(0, 255)), min_size=1, max_size=8).map(overwrite),
                     st.binary(max_size=300))


def safetensors_boundaries(data: bytes) -> tuple[int, ...]:
    """The end of the 8-byte length, of the JSON header, and the middle of the data."""
    header_end = 8 + int.from_bytes(data[:8], "little")
    return 8, header_end - 1, header_end, header_end + 1, (header_end + len(data)) // 2


# --- safetensors -----------------------------------------------------------------------------------------------------
DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.float64, torch.int64, torch.int32, torch.int16, torch.int8,
          torch.uint8, torch.uint16, torch.bool]
FILL = [0, 1, 3, 7, 255, 65535, -1, 2**40, 0.5, math.nan, math.inf]
shapes = st.lists(st.integers(0, 4), max_size=3).map(tuple)


@st.composite
def tensors(draw, shape: st.SearchStrategy = shapes) -> torch.Tensor:
    dtype, value, size = draw(st.sampled_from(DTYPES)), draw(st.sampled_from(FILL)), draw(shape)
    return torch.full(size, value, dtype=torch.float64).to(dtype)


@st.composite
def tensor_dicts(draw, valid: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`valid`'s tensors each kept, dropped, renamed, cast or reshaped (or refilled), plus a few strangers."""
    out = {}
    for name, tensor in valid.items():
        action = draw(st.sampled_from(["keep", "keep", "keep", "drop", "rename", "dtype", "shape", "fill"]))
        if action == "keep":
            out[name] = tensor
        elif action == "rename":
            out[draw(st.text(min_size=1, max_size=12))] = tensor
        elif action == "dtype":
            out[name] = tensor.to(draw(st.sampled_from(DTYPES)))
        elif action == "shape":
            out[name] = draw(tensors())
        elif action == "fill":
            out[name] = torch.full_like(tensor, draw(st.sampled_from(FILL)), dtype=torch.float64).to(tensor.dtype)
    out.update(draw(st.dictionaries(st.text(min_size=1, max_size=12), tensors(), max_size=2)))
    return out


def write_safetensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path), metadata=metadata)
