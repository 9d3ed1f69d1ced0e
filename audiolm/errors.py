"""The project's error types. The CLI prints any `AudiolmError` as one line and exits non-zero."""

from __future__ import annotations

from pathlib import Path


class AudiolmError(Exception):
    """An error caused by a user's input: a file, a flag, a checkpoint. Its message is one line."""


class FileError(AudiolmError):
    """A problem with one file. The message names the file first, then the problem."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")
