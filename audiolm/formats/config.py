"""Configs as dataclasses, filled from YAML presets and `key=value` overrides; unknown keys are errors.

A preset is a YAML mapping whose top-level keys name the fields of a run config (itself a dataclass
of dataclasses). `load_config(RunConfig, "configs/codec/tiny.yaml", ["train.steps=10"])` returns a
validated instance; `to_dict` gives the resolved config that every run saves beside its outputs.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from audiolm.errors import AudiolmError, FileError

T = TypeVar("T")


def to_dict(config: Any) -> dict:
    """A dataclass (nested) as plain JSON-able data; tuples become lists."""
    return dataclasses.asdict(config)


def from_dict(cls: type[T], data: dict, where: str = "") -> T:
    """Build dataclass `cls` from `data`, recursing into nested dataclasses; unknown keys raise."""
    if not isinstance(data, dict):
        raise AudiolmError(f"{where or cls.__name__}: expected a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields), key=str)
    if unknown:
        raise AudiolmError(f"{where or cls.__name__}: unknown keys {unknown}; known: {sorted(fields)}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _coerce(hints[name], value, f"{where}.{name}" if where else name)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError, ArithmeticError) as error:  # what __post_init__ refuses (e.g. a zero divisor)
        raise AudiolmError(f"{where or cls.__name__}: {error}") from None


def _coerce(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, where)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None:
            return None
        return _coerce(args[0], value, where) if len(args) == 1 else value
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, (list, tuple)):
            raise AudiolmError(f"{where}: expected a list, got {value!r}")
        if args and args[-1] is not Ellipsis and len(value) != len(args):
            raise AudiolmError(f"{where}: expected {len(args)} values, got {value!r}")
        inners = args if args and args[-1] is not Ellipsis else [args[0] if args else Any] * len(value)
        return tuple(_coerce(inner, v, where) for inner, v in zip(inners, value))
    if origin is dict:
        if not isinstance(value, dict):
            raise AudiolmError(f"{where}: expected a mapping, got {value!r}")
        _, inner = typing.get_args(hint) or (Any, Any)
        return {k: _coerce(inner, v, f"{where}.{k}") for k, v in value.items()}
    if hint is float and isinstance(value, (int, float, str)) and not isinstance(value, bool):
        try:
            number = float(value)  # YAML 1.1 reads "3e-4" as a string
        except (ValueError, OverflowError):
            number = math.nan
        if not math.isfinite(number):
            raise AudiolmError(f"{where}: expected a finite number, got {value!r}")
        return number
    if hint is int and isinstance(value, bool):  # an int to Python, not to a config
        raise AudiolmError(f"{where}: expected int, got {value!r}")
    if hint in (int, float, str, bool) and not isinstance(value, hint):
        raise AudiolmError(f"{where}: expected {hint.__name__}, got {value!r}")
    return value


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply `a.b=value` overrides (values parsed as YAML) to nested dict `data`, in place."""
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise AudiolmError(f"override {item!r}: expected key=value, e.g. train.steps=100")
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise AudiolmError(f"override {item!r}: {part} is not a section")
        try:
            node[parts[-1]] = yaml.safe_load(raw)
        except (yaml.YAMLError, RecursionError) as error:
            raise AudiolmError(f"override {item!r}: the value is not valid YAML ({' '.join(str(error).split())})") from None
    return data


def read_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileError(path, "no such config file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as error:
        raise FileError(path, f"cannot be read ({error.strerror})") from None
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError) as error:
        raise FileError(path, f"not valid YAML ({' '.join(str(error).split())})") from None
    if not isinstance(data, dict):
        raise FileError(path, "a config must be a YAML mapping")
    return data


def load_config(cls: type[T], preset: str | Path | None = None, overrides: list[str] | None = None) -> T:
    """`cls` from a YAML preset (optional) and overrides; defaults fill what neither names."""
    data = read_yaml(preset) if preset else {}
    apply_overrides(data, overrides or [])
    where = Path(preset).name if preset else cls.__name__
    return from_dict(cls, data, where)


CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def resolve_preset(preset: str, family: str) -> Path:
    """A preset name (tiny, small, base) of `configs/<family>/`, or a path to a YAML file."""
    path = Path(preset)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return path
    return CONFIGS / family / f"{preset}.yaml"
