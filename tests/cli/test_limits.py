"""Every length, count and size a user passes is bounded and checked before any work starts (audiolm/limits.py):
one line naming the limit, exit 1, nothing written; the pipeline refuses the same values; a 2-hour prompt file
is read only as far as --prompt-seconds."""

import argparse
import math
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from audiolm import limits
from audiolm.audio.io import TooLongAudioError, load_audio
from audiolm.cli.main import build_parser, main
from audiolm.errors import AudiolmError
from audiolm.generation.pipeline import AudioLM, StageSampling
from audiolm.generation.sampling import Sampling
from tests.conftest import write_sine

ROOT = Path(__file__).resolve().parents[2]
PROMPT = ROOT / "models" / "speech" / "prompts" / "espeak-en-tweaky-p30.wav"
TWO_HOURS = 7200


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code, err):
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and lines[0].startswith("audiolm: error: "), (code, err)
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture(scope="module")
def two_hour_file(tmp_path_factory):
    """2 h 5 s of 8 kHz FLAC: a 5 s tone, then silence (200 KB on disk, 230 MB as float32), written in blocks."""
    path = tmp_path_factory.mktemp("long") / "two-hours.flac"
    rate = 8000
    with sf.SoundFile(str(path), "w", rate, 1, subtype="PCM_16") as f:
        t = np.arange(5 * rate) / rate
        f.write((0.5 * np.sin(2 * np.pi * 220 * t)).astype(np.float32))
        block = np.zeros(600 * rate, np.float32)
        for _ in range(TWO_HOURS // 600):
            f.write(block)
    return path


@pytest.fixture(scope="module")
def speech():
    return AudioLM.load("speech")


# --- the reported case --------------------------------------------------------------------------------


def test_continue_for_1e9_seconds_fails_at_once_with_the_limit(tmp_path, capsys):
    began = time.perf_counter()
    code, out, err = run(capsys, "continue", PROMPT, "--seconds", "1e9", "-o", tmp_path / "x.wav")
    elapsed = time.perf_counter() - began
    assert one_line_error(code, err) == "audiolm: error: --seconds: must be at most 600 (got 1e+09)"
    assert elapsed < 5 and out == "" and not (tmp_path / "x.wav").exists() and list(tmp_path.iterdir()) == []


# --- every bounded option -------------------------------------------------------------------------------

P, M = "{prompt}", "{file}"  # filled in per test: a real prompt, a missing file
CASES = [
    # generation
    (["continue", P, "--seconds", "nan"], "--seconds: must be a finite number above 0 and at most 600 (got nan)"),
    (["continue", P, "--seconds", "inf"], "--seconds: must be a finite number above 0 and at most 600 (got inf)"),
    (["continue", P, "--seconds=-inf"], "(got -inf)"),
    (["continue", P, "--seconds", "-1"], "--seconds: must be above 0 (got -1)"),
    (["continue", P, "--seconds", "0"], "--seconds: must be above 0 (got 0)"),
    (["continue", P, "--seconds", "600.5"], "--seconds: must be at most 600 (got 600.5)"),
    (["continue", P, "--seconds", "seven"], "--seconds: must be a number above 0 and at most 600 (got 'seven')"),
    (["continue", P, "--prompt-seconds", "31"], "--prompt-seconds: must be at most 30 (got 31)"),
    (["continue", P, "--prompt-seconds", "0"], "--prompt-seconds: must be above 0"),
    (["continue", P, "--prompt-seconds", "nan"], "--prompt-seconds: must be a finite number"),
    (["continue", P, "--top-k", "-1"], "--top-k: must be at least 0 (got -1)"),
    (["continue", P, "--top-k", "1e9"], "--top-k: must be at most 65536 (got 1e+09)"),
    (["continue", P, "--top-k", "2.5"], "--top-k: must be a whole number from 0 to 65536 (got 2.5)"),
    (["continue", P, "--top-k", "nan"], "--top-k: must be a finite number from 0 to 65536 (got nan)"),
    (["continue", P, "--top-p", "0"], "--top-p: must be above 0 (got 0)"),
    (["continue", P, "--top-p", "1.5"], "--top-p: must be at most 1 (got 1.5)"),
    (["continue", P, "--top-p", "nan"], "--top-p: must be a finite number above 0 and at most 1 (got nan)"),
    (["continue", P, "--top-p=-inf"], "--top-p: must be a finite number"),
    (["continue", P, "--semantic-temperature", "-0.1"], "--semantic-temperature: must be at least 0 (got -0.1)"),
    (["continue", P, "--coarse-temperature", "inf"], "--coarse-temperature: must be a finite number from 0 to 10 (got inf)"),
    (["continue", P, "--fine-temperature", "nan"], "--fine-temperature: must be a finite number from 0 to 10 (got nan)"),
    (["continue", P, "--coarse-temperature", "11"], "--coarse-temperature: must be at most 10 (got 11)"),
    (["continue", P, "--seed", "-1"], "--seed: must be at least 0 (got -1)"),
    (["continue", P, "--seed", str(2**32)], "--seed: must be at most 4294967295 (got 4294967296)"),
    (["generate", "--seconds", "601"], "--seconds: must be at most 600 (got 601)"),
    (["generate", "--seconds", "1e308"], "--seconds: must be at most 600 (got 1e+308)"),
    (["generate", "--seconds", "1e999"], "--seconds: must be a finite number above 0 and at most 600 (got inf)"),
    (["generate", "--top-k", "70000"], "--top-k: must be at most 65536 (got 70000)"),
    (["resynth", P, "--seed", "nan"], "--seed: must be a finite number from 0 to 4294967295 (got nan)"),
    (["resynth", P, "--top-p", "2"], "--top-p: must be at most 1 (got 2)"),
    (["eval", "--manifest", M, "--seconds", "1e9"], "--seconds: must be at most 600 (got 1e+09)"),
    (["eval", "--manifest", M, "--prompt-seconds", "60"], "--prompt-seconds: must be at most 30 (got 60)"),
    (["eval", "--manifest", M, "--prompts", "0"], "--prompts: must be at least 1 (got 0)"),
    (["eval", "--manifest", M, "--prompts", "1e6"], "--prompts: must be at most 1000 (got 1e+06)"),
    (["eval", "--manifest", M, "--resynth", "-2"], "--resynth: must be at least 1 (got -2)"),
    (["eval", "--manifest", M, "--pairs", "inf"], "--pairs: must be a finite number from 1 to 1000 (got inf)"),
    (["eval", "--manifest", M, "--seed", "1e20"], "--seed: must be at most 4294967295 (got 1e+20)"),
    # audio files
    (["audio", "info", M, "--min-seconds", "-1"], "--min-seconds: must be at least 0 (got -1)"),
    (["audio", "info", M, "--min-seconds", "nan"], "--min-seconds: must be a finite number from 0 to 3600 (got nan)"),
    (["audio", "info", M, "--min-seconds", "4000"], "--min-seconds: must be at most 3600 (got 4000)"),
    (["audio", "convert", M, "--sample-rate", "0"], "--sample-rate: must be at least 1000 (got 0)"),
    (["audio", "convert", M, "--sample-rate", "1e9"], "--sample-rate: must be at most 192000 (got 1e+09)"),
    (["audio", "convert", M, "--sample-rate", "44100.5"], "--sample-rate: must be a whole number"),
    (["audio", "convert", M, "--normalize", "3"], "--normalize: must be at most 0 (got 3)"),
    (["audio", "convert", M, "--normalize=-inf"], "--normalize: must be a finite number from -70 to 0 (got -inf)"),
    (["audio", "convert", M, "--normalize", "nan"], "--normalize: must be a finite number"),
    (["audio", "plot", M, "--sample-rate", "999"], "--sample-rate: must be at least 1000 (got 999)"),
    # corpora and manifests
    (["data", "manifest", M, "--workers", "0"], "--workers: must be at least 1 (got 0)"),
    (["data", "manifest", M, "--workers", "1e6"], "--workers: must be at most 256 (got 1e+06)"),
    (["data", "manifest", M, "--workers", "nan"], "--workers: must be a finite number from 1 to 256 (got nan)"),
    (["data", "manifest", M, "--valid-fraction", "0.5"], "--valid-fraction: must be at most 0.4 (got 0.5)"),
    (["data", "manifest", M, "--test-fraction", "-0.1"], "--test-fraction: must be at least 0 (got -0.1)"),
    (["data", "manifest", M, "--valid-fraction", "nan"], "--valid-fraction: must be a finite number from 0 to 0.4 (got nan)"),
    (["data", "manifest", M, "--seed", "-5"], "--seed: must be at least 0 (got -5)"),
    (["data", "from-lhotse", M, "--test-fraction", "inf"], "--test-fraction: must be a finite number"),
    (["data", "synth-speech", "--hours", "0"], "--hours: must be above 0 (got 0)"),
    (["data", "synth-speech", "--hours", "-3"], "--hours: must be above 0 (got -3)"),
    (["data", "synth-speech", "--hours", "nan"], "--hours: must be a finite number above 0 and at most 10000 (got nan)"),
    (["data", "synth-speech", "--hours", "inf"], "--hours: must be a finite number above 0 and at most 10000 (got inf)"),
    (["data", "synth-speech", "--hours", "1e6"], "--hours: must be at most 10000 (got 1e+06)"),
    (["data", "synth-speech", "--hours", "1", "--speakers", "0"], "--speakers: must be at least 1 (got 0)"),
    (["data", "synth-speech", "--hours", "1", "--speakers", "1e9"], "--speakers: must be at most 10000 (got 1e+09)"),
    (["data", "synth-speech", "--hours", "1", "--valid-speakers", "-1"], "--valid-speakers: must be at least 0 (got -1)"),
    (["data", "synth-speech", "--hours", "1", "--test-speakers", "20000"], "--test-speakers: must be at most 10000 (got 20000)"),
    (["data", "synth-speech", "--hours", "1", "--workers", "1000"], "--workers: must be at most 256 (got 1000)"),
    (["data", "synth-piano", "--hours", "20000"], "--hours: must be at most 10000 (got 20000)"),
    (["data", "synth-piano", "--hours", "1", "--clip-seconds", "1"], "--clip-seconds: must be at least 4 (got 1)"),
    (["data", "synth-piano", "--hours", "1", "--clip-seconds", "1000"], "--clip-seconds: must be at most 300 (got 1000)"),
    (["data", "synth-piano", "--hours", "1", "--clip-seconds", "nan"], "--clip-seconds: must be a finite number from 4 to 300"),
    (["data", "synth-piano", "--hours", "1", "--workers", "0"], "--workers: must be at least 1 (got 0)"),
    # codec, semantic tokens, shards, training
    (["codec", "train", "--stop-after", "0"], "--stop-after: must be at least 1 (got 0)"),
    (["codec", "train", "--stop-after", "1e12"], "--stop-after: must be at most 10000000 (got 1e+12)"),
    (["codec", "encode", M, "--model", M, "--num-codebooks", "0"], "--num-codebooks: must be at least 1 (got 0)"),
    (["codec", "encode", M, "--model", M, "--num-codebooks", "100"], "--num-codebooks: must be at most 64 (got 100)"),
    (["codec", "encode", M, "--model", M, "--bitrate", "0"], "--bitrate: must be above 0 (got 0)"),
    (["codec", "encode", M, "--model", M, "--bitrate", "-1"], "--bitrate: must be above 0 (got -1)"),
    (["codec", "encode", M, "--model", M, "--bitrate", "nan"], "--bitrate: must be a finite number above 0 and at most 1000 (got nan)"),
    (["codec", "encode", M, "--model", M, "--bitrate", "inf"], "--bitrate: must be a finite number"),
    (["codec", "decode", M, "--model", M, "--bitrate", "1e6"], "--bitrate: must be at most 1000 (got 1e+06)"),
    (["codec", "decode", M, "--model", M, "--num-codebooks", "-1"], "--num-codebooks: must be at least 1 (got -1)"),
    (["semantic", "train", "--stop-after", "-5"], "--stop-after: must be at least 1 (got -5)"),
    (["semantic", "fit-kmeans", "--encoder", "mfcc", "--manifest", M, "--layer", "-1"], "--layer: must be at least 0 (got -1)"),
    (["semantic", "fit-kmeans", "--encoder", "mfcc", "--manifest", M, "--layer", "1000"], "--layer: must be at most 256 (got 1000)"),
    (["semantic", "fit-kmeans", "--encoder", "mfcc", "--manifest", M, "-k", "1"], "-k: must be at least 2 (got 1)"),
    (["semantic", "fit-kmeans", "--encoder", "mfcc", "--manifest", M, "-k", "1e6"], "-k: must be at most 4096 (got 1e+06)"),
    (["semantic", "fit-kmeans", "--encoder", "mfcc", "--manifest", M, "--max-hours", "0"], "--max-hours: must be above 0 (got 0)"),
    (["semantic", "fit-kmeans", "--encoder", "mfcc", "--manifest", M, "--max-hours", "1000"], "--max-hours: must be at most 100"),
    (["semantic", "fit-kmeans", "--encoder", "mfcc", "--manifest", M, "--max-hours", "nan"], "--max-hours: must be a finite number"),
    (["semantic", "fit-kmeans", "--encoder", "mfcc", "--manifest", M, "--max-frames", "0"], "--max-frames: must be at least 1 (got 0)"),
    (["semantic", "fit-kmeans", "--encoder", "mfcc", "--manifest", M, "--max-frames", "1e9"], "--max-frames: must be at most 1000000"),
    (["semantic", "fit-kmeans", "--encoder", "mfcc", "--manifest", M, "--interleave", "0"], "--interleave: must be at least 1 (got 0)"),
    (["semantic", "fit-kmeans", "--encoder", "mfcc", "--manifest", M, "--interleave", "100"], "--interleave: must be at most 8 (got 100)"),
    (["semantic", "fit-kmeans", "--encoder", "mfcc", "--manifest", M, "--seed", "inf"], "--seed: must be a finite number"),
    (["tokenize", M, "--semantic", M, "--codec", M, "--num-codebooks", "0"], "--num-codebooks: must be at least 1 (got 0)"),
    (["tokenize", M, "--semantic", M, "--codec", M, "--shard-size", "0"], "--shard-size: must be at least 1 (got 0)"),
    (["tokenize", M, "--semantic", M, "--codec", M, "--shard-size", "1e9"], "--shard-size: must be at most 100000 (got 1e+09)"),
    (["tokenize", M, "--semantic", M, "--codec", M, "--workers", "1e4"], "--workers: must be at most 256 (got 10000)"),
    (["lm", "train", "--stage", "coarse", "--stop-after", "0"], "--stop-after: must be at least 1 (got 0)"),
    (["lm", "train", "--stage", "coarse", "--dry-run", "--world-size", "0"], "--world-size: must be at least 1 (got 0)"),
    (["codec", "train", "--dry-run", "--world-size", "1e6"], "--world-size: must be at most 65536 (got 1e+06)"),
    (["bundle", "--tokenizer", M, "--codec", M, "--semantic-lm", M, "--coarse-lm", M, "--prompt-count", "0"],
     "--prompt-count: must be at least 1 (got 0)"),
    (["bundle", "--tokenizer", M, "--codec", M, "--semantic-lm", M, "--coarse-lm", M, "--prompt-count", "101"],
     "--prompt-count: must be at most 100 (got 101)"),
    (["bundle", "--tokenizer", M, "--codec", M, "--semantic-lm", M, "--coarse-lm", M, "--prompt-seconds", "inf"],
     "--prompt-seconds: must be a finite number above 0 and at most 30 (got inf)"),
]


@pytest.mark.parametrize("argv, words", CASES, ids=[" ".join(a[:2] + a[-2:]) for a, _ in CASES])
def test_every_bounded_option_is_refused_with_its_limit(argv, words, tmp_path, capsys):
    out_dir = tmp_path / "out"
    values = {P: str(PROMPT), M: str(tmp_path / "missing")}
    argv = [values.get(a, a) for a in argv] + ["-o", str(out_dir / "x")]
    began = time.perf_counter()
    code, out, err = run(capsys, *argv)
    line = one_line_error(code, err)
    assert words in line, line
    assert time.perf_counter() - began < 2 and out == "" and not out_dir.exists()


def test_every_number_option_of_every_command_is_bounded():
    """No option parses a plain int or float: each goes through a bounded type from audiolm/cli/args.py."""
    unbounded = []

    def walk(parser: argparse.ArgumentParser, path: str) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, f"{path} {name}")
            elif action.type in (int, float):
                unbounded.append(f"{path} {'/'.join(action.option_strings) or action.dest}")

    walk(build_parser(), "audiolm")
    assert unbounded == []


def test_checks_that_need_the_models_or_files(tmp_path, capsys):
    code, _, err = run(capsys, "continue", PROMPT, "--top-k", "2000", "-o", tmp_path / "x.wav")
    assert "--top-k: must be at most 1024 (got 2000)" in one_line_error(code, err)
    code, _, err = run(capsys, "semantic", "fit-kmeans", "--encoder", "mfcc", "-k", "500", "--max-frames", "100",
                       "--manifest", tmp_path / "m.jsonl", "-o", tmp_path / "tok")
    assert "-k: must be at most --max-frames, 100 (got 500)" in one_line_error(code, err)
    files = [write_sine(tmp_path / f"{i}.wav", seconds=0.1) for i in range(17)]
    code, _, err = run(capsys, "audio", "plot", *files, "-o", tmp_path / "x.png")
    assert "at most 16 (got 17)" in one_line_error(code, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in files)


# --- the library ----------------------------------------------------------------------------------------


def refused(call, *words):
    began = time.perf_counter()
    with pytest.raises(AudiolmError) as error:
        call()
    assert time.perf_counter() - began < 1, "the check must come before the work"
    message = str(error.value)
    assert "\n" not in message and all(w in message for w in words), message


def test_the_pipeline_refuses_unbounded_requests_before_working(speech):
    prompt = torch.randn(1, 1, 16000) * 0.1
    refused(lambda: speech.continue_audio(prompt, seconds=1e9), "seconds: must be at most 600 (got 1e+09)")
    for bad in (float("nan"), float("inf"), -float("inf"), 0.0, -1.0):
        refused(lambda bad=bad: speech.continue_audio(prompt, seconds=bad), "seconds: must be")
        refused(lambda bad=bad: speech.generate(seconds=bad), "seconds: must be")
    refused(lambda: speech.generate(seconds=601), "at most 600 (got 601)")
    long_prompt = torch.zeros(1, 1, 31 * 16000)
    refused(lambda: speech.continue_audio(long_prompt, 1.0), "prompt: must be at most 30 s long (got 31.0 s)")
    long_input = torch.zeros(1, 1, 601 * 16000)
    refused(lambda: speech.resynthesize(long_input), "wav: must be at most 600 s long (got 601.0 s)")


@pytest.mark.parametrize("stage, sampling, words", [
    ("coarse", Sampling(temperature=float("nan")), "coarse temperature: must be a finite number from 0 to 10 (got nan)"),
    ("semantic", Sampling(temperature=float("inf")), "semantic temperature: must be a finite number"),
    ("fine", Sampling(temperature=50.0), "fine temperature: must be at most 10 (got 50)"),
    ("coarse", Sampling(top_k=5000), "coarse top_k: must be at most 1024 (got 5000)"),
    ("semantic", Sampling(top_k=101), "semantic top_k: must be at most 100 (got 101)"),
])
def test_the_pipeline_refuses_sampling_out_of_range(speech, stage, sampling, words):
    assert speech.vocabularies == {"semantic": 100, "coarse": 1024, "fine": 1024}  # the bundled speech models
    settings = StageSampling()
    setattr(settings, stage, sampling)
    prompt = torch.randn(1, 1, 16000) * 0.1
    refused(lambda: speech.continue_audio(prompt, 1.0, sampling=settings), words)
    refused(lambda: speech.generate(1.0, sampling=settings), words)
    refused(lambda: speech.resynthesize(prompt, sampling=settings), words)


def test_limit_checks_catch_nan_from_both_sides():
    nan = float("nan")
    assert not nan > 600 and not nan <= 0  # why a one-sided test is not enough
    for low, high in ((0.0, 600.0), (-70.0, 0.0)):
        with pytest.raises(AudiolmError, match="finite"):
            limits.check_number("x", nan, low, high)
        with pytest.raises(AudiolmError, match="finite"):
            limits.check_number("x", nan, low, high, above_low=True)
    with pytest.raises(AudiolmError, match="finite"):
        limits.check_count("n", nan, 1, 256)
    with pytest.raises(AudiolmError, match="whole number"):
        limits.check_count("n", 2.5, 1, 256)
    assert limits.check_number("x", 600, 0, 600) == 600 and limits.check_count("n", 4.0, 1, 8) == 4
    assert math.isfinite(limits.MAX_GENERATE_SECONDS) and limits.MAX_PROMPT_SECONDS < limits.MAX_GENERATE_SECONDS


# --- long and large files -------------------------------------------------------------------------------


def test_a_two_hour_prompt_reads_only_its_first_seconds(two_hour_file):
    tracemalloc.start()
    try:
        wav = load_audio(two_hour_file, 16000, duration=3.0, allow_silent=False)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert wav.shape == (1, 48000)
    assert peak < 5e6, f"{peak / 1e6:.0f} MB traced: more than 3 s were read"  # the whole file would be 230 MB + 460 MB resampled
    with pytest.raises(TooLongAudioError, match="7205 s long; this command reads at most 3600 s"):
        load_audio(two_hour_file, 16000, max_seconds=3600)  # refused from the header
    assert load_audio(two_hour_file, 16000, duration=3.0, max_seconds=30).shape == (1, 48000)


def test_continue_from_a_two_hour_prompt_keeps_memory_low(two_hour_file, tmp_path):
    """In a fresh process: the peak RSS growth of `audiolm continue` on a 2-hour prompt, over the imports."""
    script = (
        "import resource, sys\n"
        "import torch\n"
        "from audiolm.cli.main import main\n"
        "from audiolm.generation.pipeline import AudioLM\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "code = main(sys.argv[1:])\n"
        "after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print('RESULT', code, (after - before) / 1024)\n"  # KB on Linux
    )
    out = tmp_path / "out.wav"
    result = subprocess.run([sys.executable, "-c", script, "continue", str(two_hour_file), "--seconds", "0.5", "--prompt-seconds", "3",
                             "-o", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    line = next(line for line in result.stdout.splitlines() if line.startswith("RESULT"))
    _, code, growth_mb = line.split()
    assert code == "0", result.stderr
    assert float(growth_mb) < 450, f"peak grew by {growth_mb} MB (reading the whole file adds 700 MB)"
    data, rate = sf.read(str(out))
    assert rate == 16000 and 3.3 < len(data) / rate < 3.7  # the 3 s prompt (codec-decoded) and 0.5 s of new audio


def test_files_read_whole_are_refused_from_the_header(two_hour_file, tmp_path, capsys):
    codec, tokenizer = ROOT / "models" / "speech" / "codec", ROOT / "models" / "speech" / "semantic"
    out = tmp_path / "out"
    cases = [
        (["audio", "info", two_hour_file], "7205 s long; this command reads at most 3600 s"),
        (["audio", "convert", two_hour_file, "-o", out], "reads at most 3600 s"),
        (["audio", "plot", two_hour_file, "-o", out], "reads at most 3600 s"),
        (["codec", "encode", two_hour_file, "-o", out, "--model", codec], "reads at most 1800 s"),
        (["semantic", "tokenize", PROMPT, two_hour_file, "--tokenizer", tokenizer, "-o", out], "reads at most 1800 s"),
        (["resynth", two_hour_file, "-o", out], "reads at most 600 s"),
    ]
    for argv, words in cases:
        began = time.perf_counter()
        code, stdout, err = run(capsys, *argv)
        line = one_line_error(code, err)
        assert str(two_hour_file) in line and words in line, line
        assert time.perf_counter() - began < 3 and stdout == "" and not out.exists()


def test_files_too_large_on_disk_are_refused_before_opening(tmp_path, capsys):
    big = tmp_path / "big.wav"
    with open(big, "wb") as f:  # sparse: no disk space used
        f.truncate(limits.MAX_AUDIO_FILE_BYTES + 2**20)
    code, _, err = run(capsys, "audio", "info", big)
    assert "2,049 MB, more than the 2,048 MB limit" in one_line_error(code, err)
    codes = tmp_path / "big.codes"
    with open(codes, "wb") as f:
        f.truncate(limits.MAX_CODES_FILE_BYTES + 2**20)
    code, _, err = run(capsys, "codec", "decode", codes, "-o", tmp_path / "x.wav", "--model", tmp_path / "none")
    assert "65 MB, more than the 64 MB limit" in one_line_error(code, err)
    assert not (tmp_path / "x.wav").exists()
