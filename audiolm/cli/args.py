"""Argument types shared by the command modules."""

from __future__ import annotations

import argparse


def count(value: str) -> int:
    """An integer of at least 1 (workers, shard sizes)."""
    n = int(value)
    if n < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return n


def positive(value: str) -> float:
    """A float above 0 (seconds, hours)."""
    x = float(value)
    if not x > 0:
        raise argparse.ArgumentTypeError("must be positive")
    return x
