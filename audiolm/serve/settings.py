"""The server's settings: each one a flag of `audiolm serve`, with its default and bounds from audiolm/limits.py.

    settings = ServeSettings(workers=2, queue=8)     # AudiolmError naming the flag for a value out of range
    settings.capacity                               # 10: generations running or waiting at once; more get 503
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields

from audiolm import limits


@dataclass(frozen=True)
class Setting:
    """One setting: its flag, bounds (`above_low`: low itself excluded), whether it is a whole number, and its help."""

    flag: str
    low: float
    high: float
    whole: bool
    help: str
    above_low: bool = False


SETTINGS: dict[str, Setting] = {
    "upload_mb": Setting("--max-upload-mb", 0.0, limits.MAX_SERVE_UPLOAD_MB, False,
                         "largest request body in MiB (413 above it, refused before it is read)", above_low=True),
    "max_seconds": Setting("--max-seconds", 0.0, limits.MAX_GENERATE_SECONDS, False,
                           "most seconds of new audio a request may ask for, and the longest resynth input (422 above)", above_low=True),
    "max_prompt_seconds": Setting("--max-prompt-seconds", limits.MIN_PROMPT_SECONDS, limits.MAX_PROMPT_SECONDS, False,
                                  "most prompt_seconds a request may ask for (422 above)"),
    "max_input_seconds": Setting("--max-input-seconds", 0.0, limits.MAX_ENCODE_SECONDS, False,
                                 "longest audio codec/encode reads and codec/decode writes (422 above); detect scores a longer "
                                 "file's first this many seconds", above_low=True),
    "workers": Setting("--workers", 1, limits.MAX_SERVE_WORKERS, True, "generations that run at once"),
    "queue": Setting("--queue", 0, limits.MAX_SERVE_QUEUE, True,
                     "requests that may wait for a worker; beyond workers + queue: 503 with Retry-After"),
    "timeout": Setting("--timeout", 0.0, limits.MAX_SERVE_TIMEOUT, False,
                       "seconds from acceptance (waiting included) to the answer; past it the generation stops: 503",
                       above_low=True),
    "threads": Setting("--threads", 1, limits.MAX_THREADS, True, "CPU threads per generation (default: cores / workers)"),
    "requests": Setting("--max-requests", 1, limits.MAX_SERVE_REQUESTS, True,
                        "requests in flight at once, uploads being read included; beyond: 503 with Retry-After"),
    "results": Setting("--results", 1, limits.MAX_SERVE_RESULTS, True, "finished page jobs kept for their page to fetch"),
    "result_seconds": Setting("--result-seconds", 0.0, limits.MAX_SERVE_TIMEOUT, False,
                              "how long a finished page job is kept", above_low=True),
}


@dataclass(kw_only=True, frozen=True)
class ServeSettings:
    upload_mb: float = limits.SERVE_UPLOAD_MB
    max_seconds: float = limits.SERVE_SECONDS
    max_prompt_seconds: float = limits.SERVE_PROMPT_SECONDS
    max_input_seconds: float = limits.SERVE_INPUT_SECONDS
    workers: int = limits.SERVE_WORKERS
    queue: int = limits.SERVE_QUEUE
    timeout: float = limits.SERVE_TIMEOUT
    threads: int | None = None  # None: cores / workers, at least 1
    requests: int = limits.SERVE_REQUESTS
    results: int = limits.SERVE_RESULTS
    result_seconds: float = limits.SERVE_RESULT_SECONDS

    def __post_init__(self) -> None:
        for field in fields(self):
            value, setting = getattr(self, field.name), SETTINGS[field.name]
            if value is None:
                continue
            if setting.whole:
                limits.check_count(setting.flag, value, int(setting.low), int(setting.high))
            else:
                limits.check_number(setting.flag, value, setting.low, setting.high, above_low=setting.above_low)

    @property
    def upload_bytes(self) -> int:
        return int(self.upload_mb * 1024**2)

    @property
    def capacity(self) -> int:
        """Generations running or waiting at once."""
        return self.workers + self.queue

    @property
    def cpu_threads(self) -> int:
        return self.threads or max(1, (os.cpu_count() or 1) // self.workers)

    def public(self) -> dict:
        """What a client may know: the limits it must keep to."""
        return {"max_upload_bytes": self.upload_bytes, "max_seconds": self.max_seconds, "max_prompt_seconds": self.max_prompt_seconds,
                "max_input_seconds": self.max_input_seconds, "workers": self.workers, "queue": self.queue, "timeout": self.timeout}
