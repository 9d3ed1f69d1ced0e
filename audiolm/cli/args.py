"""Argument types shared by the command modules: numbers bounded by `audiolm.limits`.

A value out of range raises `AudiolmError` while the arguments are parsed, so `main` prints one line such as
`audiolm: error: --seconds: must be at most 600 (got 1e+09)` and exits with status 1 before any work starts.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from audiolm.limits import (
    MAX_AUDIO_FILE_BYTES,
    MAX_SEED,
    MAX_TRAIN_STEPS,
    MAX_WORLD_SIZE,
    check_count,
    check_file_bytes,
    check_number,
)


def number(flag: str, low: float, high: float, *, above_low: bool = False) -> Callable[[str], float]:
    """A finite float in [low, high] ((low, high] with `above_low`) for the option `flag`."""

    def parse(text: str) -> float:
        try:
            value: float | str = float(text)
        except ValueError:
            value = text  # refused below as "must be a number"
        return check_number(flag, value, low, high, above_low=above_low)

    return parse


def seconds(flag: str, high: float) -> Callable[[str], float]:
    """A duration above 0 and at most `high` seconds (or hours) for the option `flag`."""
    return number(flag, 0.0, high, above_low=True)


def whole(flag: str, low: int, high: int) -> Callable[[str], int]:
    """A whole number in [low, high] for the option `flag`; `1e3` counts as 1000."""

    def parse(text: str) -> int:
        try:
            value: int | float | str = int(text)
        except ValueError:
            try:
                value = float(text)
            except ValueError:
                value = text
        return check_count(flag, value, low, high)

    return parse


seed = whole("--seed", 0, MAX_SEED)


def whole_list(flag: str, low: int, high: int) -> Callable[[str], tuple[int, ...]]:
    """Comma-separated whole numbers, each in [low, high], for the option `flag` (`16,1` -> (16, 1))."""
    one = whole(flag, low, high)

    def parse(text: str) -> tuple[int, ...]:
        return tuple(one(part.strip()) for part in text.split(","))

    return parse


def check_audio_files(paths: list, max_seconds: float) -> None:
    """Refuse audio files a command reads whole that are over MAX_AUDIO_FILE_BYTES on disk or longer than `max_seconds`
    (from the header), all of them before any is decoded; a missing or unreadable file fails here too."""
    from audiolm.audio.io import check_duration

    for path in paths:
        check_file_bytes(path, MAX_AUDIO_FILE_BYTES)
        check_duration(path, max_seconds)


def add_run_options(p: argparse.ArgumentParser) -> None:
    """The options every trainer shares: the run folder, a step budget, --quiet, --dry-run and `key=value` overrides."""
    p.add_argument("-o", "--output", required=True, help="run folder: checkpoints, logs, and the final model/")
    p.add_argument("--stop-after", type=whole("--stop-after", 1, MAX_TRAIN_STEPS), help="stop after this many steps (resume later)")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--dry-run", action="store_true", help="build the models on the meta device and print their parameters, the "
                   "tokens per optimizer step and an estimate of memory per GPU (DDP, FSDP); reads no data, writes nothing")
    p.add_argument("--world-size", type=whole("--world-size", 1, MAX_WORLD_SIZE), help="GPUs for --dry-run (default: WORLD_SIZE, else 1)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. train.steps=100")
