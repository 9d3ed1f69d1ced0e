"""Training at cluster scale, on two CPU processes: FSDP (sharded weights, activation checkpointing), a run resumed
under the other strategy, two "nodes" meeting over a c10d rendezvous, and a two-process run killed mid-run.

The torchrun runs train the tiny coarse stage on the global batches of `one`, a run in this process, two micro-batches
a step (so gradients accumulate unsynchronised first); they must train like it (tests/helpers_ddp.py: each module's
difference against the last step's movement, and the gradient norms). The killed run is checked against its own
checkpoint instead.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from audiolm.errors import AudiolmError
from audiolm.formats.config import load_config
from audiolm.lm.model import load_stage
from audiolm.train.codec import CodecRunConfig, resolve_preset
from audiolm.train.lm import train_lm
from tests.helpers_ddp import assert_same_training
from tests.helpers_lm import tiny_token_corpus

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
STEPS = 6
pytestmark = pytest.mark.usefixtures("one_thread")
# constant learning rate: a run resumed with more train.steps follows the schedule of one run of STEPS steps
COMMON = [f"train.steps={STEPS}", "train.batch_size=4", "train.grad_accum=2", "train.save_every=1", "train.keep_checkpoints=100",
          "train.log_every=1", "train.valid_every=1000", "train.schedule=constant", "train.warmup_steps=1", "train.num_threads=1",
          "model.dropout=0.0"]


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    return tiny_token_corpus(tmp_path_factory.mktemp("corpus"))["shards"]


@pytest.fixture(scope="module")
def one(shards, tmp_path_factory) -> Path:
    """The reference: one process, STEPS steps, a checkpoint at every step."""
    run = tmp_path_factory.mktemp("one") / "run"
    threads = torch.get_num_threads()
    train_lm("tiny", "coarse", run, [f"data.shards={shards}", *COMMON], progress=False)
    torch.set_num_threads(threads)
    return run


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(launch: list[str], shards: Path, run: Path, *overrides: str) -> list[str]:
    """The command that trains the tiny coarse stage into `run` under torchrun with `launch` options."""
    return [sys.executable, "-m", "torch.distributed.run", *launch, "-m", "audiolm.cli.main", "lm", "train", "--stage", "coarse",
            "--config", "tiny", "--shards", str(shards), "-o", str(run), "--quiet", *COMMON, *overrides]


def two_processes() -> list[str]:
    return ["--nproc_per_node", "2", "--master_addr", "127.0.0.1", "--master_port", str(free_port())]


def start(command: list[str], log: Path) -> subprocess.Popen:
    """`command` in a session of its own, its output in `log`."""
    with open(log, "a") as out:
        return subprocess.Popen(command, cwd=ROOT, env=ENV, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def kill(process: subprocess.Popen) -> None:
    """SIGKILL torchrun's process group and those of its workers (torchrun starts each in a session of its own: killing
    torchrun alone leaves them training)."""
    for pid in [process.pid, *descendants(process.pid)]:
        try:
            os.killpg(os.getpgid(pid), signal.SIGKILL)
        except ProcessLookupError:  # already gone
            pass
    process.wait()


def descendants(pid: int) -> list[int]:
    """The processes below `pid` (from /proc)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):  # gone meanwhile
                pass
    found, frontier = [], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def finish(processes: list[subprocess.Popen], log: Path, timeout: float = 240.0) -> None:
    """Wait for `processes` to exit 0; kill them all (workers included) on a timeout or a failure."""
    deadline = time.monotonic() + timeout
    try:
        for process in processes:
            process.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        for process in processes:
            if process.poll() is None or descendants(process.pid):
                kill(process)
    assert all(p.returncode == 0 for p in processes), log.read_text()[-3000:]


def run_to_end(command: list[str], log: Path) -> None:
    finish([start(command, log)], log)


def test_fsdp_trains_like_one_process_and_resumes_under_ddp_and_back(shards, one, tmp_path):
    """FSDP with activation checkpointing from scratch to step 2, DDP from its checkpoint to step 4, FSDP again to the
    end: the same checkpoint files whoever wrote them, the optimizer moments carried across (a reset would move every
    weight by ~lr), and the exported model gathered whole."""
    run, log = tmp_path / "run", tmp_path / "run.log"
    fsdp = ["train.strategy=fsdp", "train.activation_checkpointing=true"]
    for steps, strategy in ((2, fsdp), (4, ["train.strategy=ddp"]), (STEPS, fsdp)):
        run_to_end(torchrun(two_processes(), shards, run, f"train.steps={steps}", *strategy), log)
        assert (run / "checkpoints" / "latest.txt").read_text().strip() == f"step_{steps:08d}"
    for step in (2, 4, STEPS):
        assert_same_training(one, run, step, ["lm.safetensors"])
    exported = load_file(str(run / "model" / "model.safetensors"))
    last = load_file(str(run / "checkpoints" / f"step_{STEPS:08d}" / "lm.safetensors"))
    assert exported.keys() == last.keys() and all(torch.equal(exported[k], last[k]) for k in last)
    assert load_stage(run / "model")[1].stage == "coarse"


def test_activation_checkpointing_changes_no_weight(shards, one, tmp_path):
    """Recomputing each block in the backward pass gives the same gradients, bit for bit, and the same file names."""
    train_lm("tiny", "coarse", tmp_path / "run", [f"data.shards={shards}", *COMMON, "train.activation_checkpointing=true"],
             progress=False)
    for name in (f"checkpoints/step_{STEPS:08d}/lm.safetensors", "model/model.safetensors"):
        a, b = load_file(str(one / name)), load_file(str(tmp_path / "run" / name))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name


def test_two_nodes_over_a_c10d_rendezvous_train_like_one_process(shards, one, tmp_path):
    """Two torchrun launches of one process each, as on two machines: `--nnodes 2` meeting at a c10d endpoint."""
    run, log = tmp_path / "run", tmp_path / "run.log"
    node = ["--nnodes", "2", "--nproc-per-node", "1", "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{free_port()}",
            "--rdzv-id", "test-two-nodes"]
    command = torchrun(node, shards, run)
    finish([start(command, log), start(command, log)], log)
    assert_same_training(one, run, STEPS, ["lm.safetensors"])


def test_a_killed_two_process_run_resumes_from_its_checkpoint(shards, tmp_path):
    """SIGKILL to every process once the first checkpoint is written, then the same command again: it starts from that
    checkpoint (left as it was: a run starting over would write it again) and finishes, leaving no temporaries."""
    run, log = tmp_path / "run", tmp_path / "run.log"
    command = torchrun(two_processes(), shards, run, "train.steps=16", "train.save_every=4")
    process = start(command, log)
    pointer = run / "checkpoints" / "latest.txt"
    deadline = time.monotonic() + 240
    try:
        while process.poll() is None and not pointer.is_file() and time.monotonic() < deadline:
            time.sleep(0.002)
    finally:
        kill(process)
    assert process.returncode == -signal.SIGKILL, f"ended before the kill (exit {process.returncode}):\n{log.read_text()[-3000:]}"
    resumed = int(pointer.read_text().removeprefix("step_"))
    assert 4 <= resumed < 16
    files = sorted((run / "checkpoints" / f"step_{resumed:08d}").iterdir())
    written = [(f.stat().st_ino, f.stat().st_mtime_ns) for f in files]
    run_to_end(command, log)
    assert pointer.read_text().strip() == "step_00000016" and (run / "model" / "model.safetensors").is_file()
    assert [(f.stat().st_ino, f.stat().st_mtime_ns) for f in files] == written
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    logged = [r["step"] for r in records if "time/step_s" in r]
    assert logged == list(range(1, 17))  # what the killed run logged past its checkpoint was dropped, then logged again
    assert not list(run.rglob(".*"))


def test_the_codec_refuses_fsdp():
    with pytest.raises(AudiolmError, match="train.strategy=fsdp"):
        load_config(CodecRunConfig, resolve_preset("tiny"), ["train.strategy=fsdp"])
