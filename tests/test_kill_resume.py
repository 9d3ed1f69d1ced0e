"""kill -9 in the middle of every long command, then the same command again: it finishes and its result is the
uninterrupted run's.

Each test starts the real CLI in a subprocess (its own process group, so pool workers die with it), waits until
work is visible on disk (a shard, a checkpoint, an utterance; preferably while a temporary file is open), sends
SIGKILL to the group, and reruns the command to completion in-process beside an uninterrupted run. Guaranteed:
- nothing half-written survives: no temporary (hidden) files in the output, every JSON, JSONL and safetensors
  file parses;
- `tokenize`: the shards and index are byte-identical;
- `lm train`, `semantic train`: every checkpoint and the exported model are tensor-for-tensor identical
  (`torch.equal`), their JSON files equal;
- `semantic fit-kmeans`: does not resume (it starts over), and the rerun writes the identical tokenizer;
- `data synth-speech`, `data synth-piano`: the same manifests (the shortest prefix of items reaching the hours);
  piano clips, their MIDI and sidecars byte-identical; speech utterances with the same speaker, text, voice, split
  and phones, the audio byte-identical for flite and festival voices and within a few milliseconds for espeak
  (libespeak-ng keeps some state between utterances);
- `recipe`: killed while training its last LM, the rerun skips what is done, resumes that LM and writes the
  uninterrupted run's bundle, tensor for tensor.
"""

from __future__ import annotations

import ctypes.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from audiolm.cli.main import main
from tests.helpers_lm import tiny_token_corpus

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
SOUNDFONT = Path("/usr/share/sounds/sf2/TimGM6mb.sf2")


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """Tone clips, a tiny codec, a 25 Hz MFCC tokenizer (also the semantic encoder's targets) and their shards."""
    return tiny_token_corpus(tmp_path_factory.mktemp("models"), seconds=1.0)


# ---- killing ------------------------------------------------------------------------------------------------------

def log_of(out: Path) -> Path:
    return out.with_name(f"{out.name}.log")


def kill_then_resume(argv: list, out: Path, ready: Callable[[], bool], straight: list, timeout: float = 240.0) -> None:
    """Start the CLI with `argv` (writing to `out`) in a new process group, its pool workers included; SIGKILL the
    group as soon as `ready()`, while `straight`, the uninterrupted command, runs in-process; then rerun `argv`
    (in-process) to completion. Prints the temporaries the kill left (shown on failure: where a kill lands varies)."""
    with open(log_of(out), "w") as log:
        process = subprocess.Popen([sys.executable, "-m", "audiolm.cli.main", *map(str, argv)], cwd=ROOT, env=ENV, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    with ThreadPoolExecutor(1) as pool:
        watch = pool.submit(_kill_when, process, ready, timeout)
        try:
            assert main([str(a) for a in straight]) == 0
        finally:
            killed = watch.result()
    assert killed, f"the command ended before the kill (exit {process.returncode}):\n{log_of(out).read_text()[-3000:]}"
    print(f"killed {' '.join(map(str, argv[:2]))}; temporaries left: {[str(p.relative_to(out)) for p in hidden(out)]}")
    assert main([str(a) for a in argv]) == 0


def _kill_when(process: subprocess.Popen, ready: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    try:
        while process.poll() is None and time.monotonic() < deadline:
            try:
                now = ready()
            except OSError:  # a folder went away while we looked (an old checkpoint removed)
                now = False
            if now:
                os.killpg(process.pid, signal.SIGKILL)
                return process.wait() == -signal.SIGKILL
            time.sleep(0.002)
        return False
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def hidden(folder: Path) -> list[Path]:
    """Temporaries: every hidden file or folder under `folder`."""
    return sorted(folder.rglob(".*"))


def latest_step(run: Path) -> int:
    pointer = run / "checkpoints" / "latest.txt"
    try:
        return int(pointer.read_text().strip().removeprefix("step_"))
    except (OSError, ValueError):
        return 0


def logged_steps(run: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (run / "log.jsonl").read_text().splitlines()]


def mid_checkpoint(run: Path, fallback_step: int) -> Callable[[], bool]:
    """Ready once a checkpoint exists and the next one is being written (or `fallback_step` is reached)."""
    return lambda: latest_step(run) > 0 and (bool(hidden(run / "checkpoints")) or latest_step(run) >= fallback_step)


# ---- checking -----------------------------------------------------------------------------------------------------

def assert_complete(folder: Path) -> None:
    """No temporaries; every JSON, JSONL and safetensors file parses."""
    assert not hidden(folder), f"temporaries left: {hidden(folder)}"
    assert not list(folder.parent.glob(f"{folder.name}.partial")), "a partial sibling folder was left"
    for path in folder.rglob("*"):
        if path.suffix == ".json":
            json.loads(path.read_text(encoding="utf-8"))
        elif path.suffix == ".jsonl":
            for line in path.read_text(encoding="utf-8").splitlines():
                json.loads(line)
        elif path.suffix == ".safetensors":
            load_file(str(path))


def assert_same_files(a: Path, b: Path, names: list[str] | None = None, skip: tuple[str, ...] = ()) -> None:
    """The same files (all under `a` and `b`, or `names`): safetensors tensor for tensor, JSON by value, others by bytes."""
    def listing(root: Path) -> list[str]:
        return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and p.name not in skip)

    if names is None:
        names = listing(a)
        assert names == listing(b)
    for name in names:
        x, y = a / name, b / name
        if x.suffix == ".safetensors":
            tx, ty = load_file(str(x)), load_file(str(y))
            assert tx.keys() == ty.keys(), name
            for key in tx:
                assert tx[key].dtype == ty[key].dtype and torch.equal(tx[key], ty[key]), f"{name}: {key}"
        elif x.suffix == ".json":
            assert json.loads(x.read_text()) == json.loads(y.read_text()), name
        else:
            assert x.read_bytes() == y.read_bytes(), name


def manifest_files(corpus: Path) -> list[str]:
    """The files of a corpus's manifest entries: audio, sidecar and (piano) MIDI, relative to the corpus."""
    names = []
    for line in (corpus / "manifest.jsonl").read_text().splitlines():
        entry = json.loads(line)
        audio = Path(entry["path"])
        names += [str(audio), str(audio.with_suffix(".json"))] + ([str(audio.with_name(entry["midi"]))] if "midi" in entry else [])
    return names


# ---- the commands -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("workers", [1, 2])
def test_tokenize(models, tmp_path, workers):
    def argv(out: Path) -> list:
        return ["tokenize", models["manifest"], "-o", out, "--semantic", models["semantic"], "--codec", models["codec"],
                "--shard-size", "1", "--workers", workers, "--quiet"]

    out = tmp_path / "killed"
    shards = lambda: len(list(out.glob("shard_*.json")))  # noqa: E731
    kill_then_resume(argv(out), out, lambda: shards() >= 1 and (bool(hidden(out)) or shards() >= 3), straight=argv(tmp_path / "straight"))
    assert_complete(out)
    assert_same_files(tmp_path / "straight", out)  # byte for byte: shards and index


def test_lm_train(models, tmp_path):
    def argv(out: Path) -> list:
        return ["lm", "train", "--stage", "coarse", "--config", "tiny", "--shards", models["shards"], "-o", out, "--quiet",
                "train.steps=12", "train.save_every=2", "train.valid_every=100", "train.log_every=1", "train.num_threads=1"]

    out = tmp_path / "killed"
    kill_then_resume(argv(out), out, mid_checkpoint(out, 6), straight=argv(tmp_path / "straight"))
    assert_complete(out)
    assert_same_files(tmp_path / "straight", out, skip=("log.jsonl", "curves.png"))
    assert (out / "model" / "model.safetensors").is_file()
    assert logged_steps(out) == logged_steps(tmp_path / "straight")  # what the killed run logged past its checkpoint is gone


def test_semantic_train(models, tmp_path):
    def argv(out: Path) -> list:
        return ["semantic", "train", "--config", "tiny", "--manifest", models["manifest"], "--targets", models["semantic"],
                "-o", out, "--quiet", "train.steps=6", "train.save_every=2", "train.valid_every=100", "train.log_every=1",
                "train.num_threads=1"]

    out = tmp_path / "killed"
    kill_then_resume(argv(out), out, mid_checkpoint(out, 4), straight=argv(tmp_path / "straight"))
    assert_complete(out)
    assert_same_files(tmp_path / "straight", out, skip=("log.jsonl", "curves.png"))
    assert (out / "model" / "model.safetensors").is_file()
    assert logged_steps(out) == logged_steps(tmp_path / "straight")


def test_semantic_fit_kmeans(models, tmp_path):
    """fit-kmeans keeps nothing of a killed run: it starts over, and writes the same tokenizer."""
    def argv(out: Path) -> list:
        return ["semantic", "fit-kmeans", "--encoder", "mfcc", "-k", "16", "--manifest", models["manifest"], "--split", "",
                "-o", out]

    out = tmp_path / "killed"
    kill_then_resume(argv(out), out, lambda: "features" in log_of(out).read_text(errors="replace"), straight=argv(tmp_path / "straight"))
    assert_complete(out)
    assert_same_files(tmp_path / "straight", out)


@pytest.mark.skipif(not ctypes.util.find_library("espeak-ng"), reason="libespeak-ng is not installed")
def test_synth_speech(tmp_path):
    def argv(out: Path, workers: int) -> list:
        return ["data", "synth-speech", "--hours", "0.01", "-o", out, "--speakers", "4", "--valid-speakers", "1",
                "--test-speakers", "1", "--seed", "3", "--workers", workers, "--quiet"]

    out = tmp_path / "killed"
    kill_then_resume(argv(out, 2), out, lambda: any((out / "audio").glob("*/*.json")), straight=argv(tmp_path / "straight", 1))
    assert_complete(out)
    engines = set()
    for name in ("manifest.jsonl", "manifest.train.jsonl", "manifest.valid.jsonl", "manifest.test.jsonl"):
        a = [json.loads(line) for line in (tmp_path / "straight" / name).read_text().splitlines()]
        b = [json.loads(line) for line in (out / name).read_text().splitlines()]
        assert [e["id"] for e in a] == [e["id"] for e in b], name
        for x, y in zip(a, b):
            engines.add(x["engine"])
            assert {k: x[k] for k in ("speaker", "text", "split", "voice")} == {k: y[k] for k in ("speaker", "text", "split", "voice")}
            assert [p[0] for p in x["phones"]] == [p[0] for p in y["phones"]]
            if x["engine"] == "espeak":
                assert abs(x["duration"] - y["duration"]) < 0.05, x["id"]
            else:
                assert_same_files(tmp_path / "straight", out, [x["path"]])
    assert_same_files(tmp_path / "straight", out, ["corpus.json"])
    assert engines > {"espeak"}  # the byte-for-byte check above ran


@pytest.mark.skipif(not (shutil.which("fluidsynth") and SOUNDFONT.is_file()), reason="fluidsynth or its GM soundfont is missing")
def test_synth_piano(tmp_path):
    def argv(out: Path) -> list:
        return ["data", "synth-piano", "--hours", "0.01", "--clip-seconds", "4", "--soundfont", SOUNDFONT, "-o", out,
                "--workers", "1", "--quiet"]

    out = tmp_path / "killed"
    pieces = lambda: {p.name[:len("piano-000000")] for p in (out / "audio").glob("piano-*.wav")}  # noqa: E731
    kill_then_resume(argv(out), out, lambda: len(pieces()) >= 2, straight=argv(tmp_path / "straight"))  # in the second piece
    assert_complete(out)
    names = ["manifest.jsonl", "manifest.train.jsonl", "manifest.valid.jsonl", "manifest.test.jsonl", "corpus.json", "summary.json"]
    assert_same_files(tmp_path / "straight", out, names)
    assert_same_files(tmp_path / "straight", out, manifest_files(out))


def _preset(family: str, folder: Path, **train) -> Path:
    """The tiny preset of `family` with other train settings, as a YAML file."""
    data = yaml.safe_load((ROOT / "configs" / family / "tiny.yaml").read_text())
    data["train"].update(train)
    path = folder / f"{family}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_recipe(models, tmp_path):
    short = dict(steps=4, save_every=2, valid_every=100, num_threads=1)
    presets = {family: _preset(family, tmp_path, **short) for family in ("codec", "semantic", "lm")}

    def argv(work: Path, bundle: Path) -> list:
        return ["recipe", "speech", "--workdir", work, "-o", bundle, "--quiet", f"manifest={models['manifest']}", "workers=1",
                f"codec_preset={presets['codec']}", f"semantic_preset={presets['semantic']}", f"lm_preset={presets['lm']}",
                "target_clusters=8", "tokenizer_layer=1", "tokenizer_clusters=8", "acoustic_only=false", "detector=false"]

    work, bundle = tmp_path / "work", tmp_path / "bundle"
    kill_then_resume(argv(work, bundle), work, mid_checkpoint(work / "lm-coarse", 4),  # killed in its last training step
                     straight=argv(tmp_path / "straight-work", tmp_path / "straight"))
    for folder in (work, bundle):
        assert_complete(folder)
    assert_same_files(tmp_path / "straight", bundle)
    assert_same_files(tmp_path / "straight-work" / "shards", work / "shards")
    for run in ("codec", "semantic", "lm-semantic", "lm-coarse"):
        assert_same_files(tmp_path / "straight-work" / run / "model", work / run / "model")
