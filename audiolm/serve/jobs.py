"""The bounded worker pool that runs generations: at most `workers` at once and `queue` waiting; beyond that a request
is refused at once (`Busy`: 503 with Retry-After), so memory never grows with the load. Each job has a deadline (the
per-request time limit, waiting included) and a progress step; both work through forward pre-hooks on the shared
models, which run in the worker thread of the job that calls them:

    scheduler = Scheduler(workers=1, queue=4, threads=2, timeout=120)
    hooks = watch_models(audiolm)              # once per loaded bundle: names the step, stops a cancelled job
    job = scheduler.submit("continue", steps, work)   # work(job) runs in a worker thread; Busy when full
    await scheduler.wait(job, request)          # done, failed, or cancelled (deadline, client gone)

A stopped job raises `Cancelled` at its next model call (a window of an LM stage, a codec pass: well under a second
on the bundled models), so its worker is free again soon after; until then it still counts against the capacity.
"""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
import shutil
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import torch

from audiolm.errors import AudiolmError

log = logging.getLogger("audiolm.serve")

# The steps a job may go through, in order, with what the page calls them. A model's hook names its step.
STEPS = {"tokenize": "semantic ids of the input", "encode": "codec codes of the input", "semantic": "semantic LM",
         "coarse": "coarse acoustic LM", "fine": "fine acoustic LM", "parallel": "parallel acoustic stage",
         "decode": "codec decoder", "plot": "spectrograms", "detect": "generated-speech detector and watermark"}
PARTS = {"semantic": "semantic", "coarse": "coarse", "fine": "fine", "acoustic": "coarse", "parallel": "parallel",
         "parallel_acoustic": "parallel"}  # AudioLM.stages() names -> steps


class Busy(Exception):
    """Every worker is busy and the queue is full."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Cancelled(Exception):
    """A job stopped before it finished: past its time limit, its client gone, or the server stopping."""


@dataclass
class Job:
    id: str
    mode: str
    steps: list[str]  # the steps it will go through (keys of STEPS)
    work: Callable[[Job], object] = field(repr=False)
    deadline: float  # time.monotonic()
    accepted: float = field(default_factory=time.monotonic)
    state: str = "queued"  # queued, running, done, failed, cancelled
    step: str | None = None
    started: float | None = None
    finished_at: float | None = None
    result: object = None
    error: str | None = None
    status: int = 200  # the HTTP status of the answer: 422 for a bad input found while it ran, 503 when stopped, 500
    cancel_reason: str | None = None
    folder: Path | None = None  # its temporary files, deleted when it ends (its answer is kept in memory)
    done: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    def cancel(self, reason: str) -> None:
        """Ask the job to stop (at its next model call; at once when still waiting)."""
        if self.cancel_reason is None:
            self.cancel_reason = reason

    def check(self) -> None:
        """Raise `Cancelled` when the job was asked to stop or is past its deadline (called from its worker thread)."""
        if self.cancel_reason is None and time.monotonic() > self.deadline:
            self.cancel_reason = "time limit"
        if self.cancel_reason is not None:
            raise Cancelled(self.cancel_reason)

    def enter(self, step: str) -> None:
        """Move on to `step` (never back: the tokenizer runs again inside later steps of some modes)."""
        self.check()
        if step in self.steps and (self.step not in self.steps or self.steps.index(step) > self.steps.index(self.step)):
            self.step = step

    def progress(self) -> float:
        if self.state == "done":
            return 1.0
        if self.step not in self.steps:
            return 0.0
        return self.steps.index(self.step) / len(self.steps)


_current = threading.local()  # .job: the job the calling worker thread runs


def current_job() -> Job | None:
    return getattr(_current, "job", None)


def watch_models(audiolm) -> list:
    """Forward pre-hooks on a bundle's models that name the running job's step and stop it when cancelled. They do
    nothing in threads that run no job. Returns the hook handles (`handle.remove()`)."""

    def hook(step: str):
        def pre_hook(module, inputs):
            job = current_job()
            if job is not None:
                job.enter(step)

        return pre_hook

    watched = [(audiolm.tokenizer, "tokenize"), (audiolm.codec.encoder, "encode"), (audiolm.codec.decoder, "decode")]
    watched += [(stage.model.embedding, PARTS[name]) for name, stage in audiolm.stages().items()]  # once per window or step
    return [module.register_forward_pre_hook(hook(step)) for module, step in watched]


class Scheduler:
    """A pool of `workers` threads, each running one job at a time with `threads` CPU threads, and at most `queue`
    jobs waiting. Its methods are called from the event loop's thread; jobs report back to it thread-safely."""

    def __init__(self, workers: int, queue: int, threads: int, timeout: float) -> None:
        self.workers, self.queue, self.threads, self.timeout = workers, queue, threads, timeout
        self.pending: OrderedDict[str, Job] = OrderedDict()  # accepted and not finished: waiting or running
        self.mean_seconds = 5.0  # a running mean of job durations, for Retry-After
        self.completed = 0
        self.executor: ThreadPoolExecutor | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.executor = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="audiolm-worker")

    def stop(self) -> None:
        """Cancel every job and wait for the running ones to stop (each at its next model call)."""
        for job in list(self.pending.values()):
            job.cancel("server stopping")
        if self.executor is not None:
            self.executor.shutdown(wait=True, cancel_futures=True)
        for job in list(self.pending.values()):  # never started: their folders are ours to delete
            if job.state == "queued" and job.folder is not None:
                shutil.rmtree(job.folder, ignore_errors=True)

    @property
    def running(self) -> int:
        return sum(job.state == "running" for job in self.pending.values())

    def retry_after(self) -> int:
        """Seconds until a worker is likely free: the mean job time for each round of the jobs ahead."""
        rounds = max(1, math.ceil(len(self.pending) / self.workers))
        return int(min(600, max(1, math.ceil(self.mean_seconds * rounds))))

    def check_capacity(self) -> None:
        """Raise `Busy` when every worker is busy and the queue is full (before a request's input is even read)."""
        if len(self.pending) >= self.workers + self.queue:
            raise Busy(f"server busy: {self.running} generations running and {len(self.pending) - self.running} waiting "
                       f"(at most {self.workers} + {self.queue}, --workers and --queue); retry later", self.retry_after())

    def submit(self, mode: str, steps: list[str], work: Callable[[Job], object], folder: Path | None = None) -> Job:
        """Accept a job or raise `Busy` at once; `work(job)` runs in a worker thread and returns the job's result. `folder`
        (its temporary files) is deleted when the job ends."""
        self.check_capacity()
        job = Job(secrets.token_urlsafe(12), mode, steps, work, deadline=time.monotonic() + self.timeout, folder=folder)
        self.pending[job.id] = job
        self.executor.submit(self._run, job)
        return job

    def position(self, job: Job) -> int:
        """Jobs waiting ahead of `job` (0 once it runs)."""
        if job.state != "queued":
            return 0
        ahead = 0
        for other in self.pending.values():
            if other is job:
                break
            ahead += other.state == "queued"
        return ahead

    def _run(self, job: Job) -> None:  # in a worker thread
        _current.job = job
        try:
            job.check()
            job.state, job.started = "running", time.monotonic()
            torch.set_num_threads(self.threads)  # per thread: each worker's own OpenMP team
            job.result = job.work(job)
            job.state = "done"
        except Cancelled as stop:
            job.state, job.status = "cancelled", 503
            job.error = self.time_limit_message() if str(stop) == "time limit" else f"cancelled: {stop}"
        except AudiolmError as error:  # a bad input found only while it ran
            job.state, job.status, job.error = "failed", 422, " ".join(str(error).split())
        except Exception as error:  # a bug: logged with its traceback, answered in one line
            log.exception("job %s (%s) failed", job.id, job.mode)
            job.state, job.status, job.error = "failed", 500, f"internal error: {type(error).__name__}: {' '.join(str(error).split())}"
        finally:
            _current.job = None
            if job.folder is not None:
                shutil.rmtree(job.folder, ignore_errors=True)
            job.finished_at = time.monotonic()
            self.loop.call_soon_threadsafe(self._finished, job)

    def _finished(self, job: Job) -> None:  # in the event loop
        self.pending.pop(job.id, None)
        if job.state == "done" and job.started is not None:
            self.completed += 1
            self.mean_seconds += (job.finished_at - job.started - self.mean_seconds) / min(self.completed, 20)
        job.done.set()

    def time_limit_message(self) -> str:
        return f"time limit: the request ran past the server's {self.timeout:g} s (--timeout); ask for less audio or retry later"

    async def wait(self, job: Job, request=None, poll: float = 0.25) -> bool:
        """Whether `job` ended. One still running a moment past its deadline, or whose client (`request`) went away, is
        cancelled and awaited no longer (False): the answer goes out now, and the worker stops at its next model call."""
        while not job.done.is_set():
            try:
                await asyncio.wait_for(job.done.wait(), timeout=poll)
            except asyncio.TimeoutError:
                pass
            if job.done.is_set():
                break
            if time.monotonic() > job.deadline + 1.0:
                job.cancel("time limit")
                return False
            if request is not None and await request.is_disconnected():
                job.cancel("the client went away")
                return False
        return True
