"""Reading the JSON files users hand us (configs, indexes, states): one object, or a one-line `FileError`."""

from __future__ import annotations

import json
from pathlib import Path

from audiolm.errors import FileError


def read_json(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileError(path, "no such file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise FileError(path, f"cannot be read ({error.strerror})") from None
    except (ValueError, RecursionError) as error:  # bad JSON or UTF-8, an integer of too many digits, nesting too deep
        raise FileError(path, f"not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise FileError(path, "expected a JSON object")
    return data
