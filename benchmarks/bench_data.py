"""Data benchmark: synthesis speed of the speech and piano corpora, audio loading speed, corpus statistics.

    .venv/bin/python benchmarks/bench_data.py [--hours 1] [--workers 2] [--work-dir data/bench]

Builds (or resumes) a speech and a piano corpus of `--hours` each with `--workers` processes, times
each TTS engine on one core, times audio loading in several formats, prints a markdown table and
writes benchmarks/results/data.md and data.json. Delete the work folder to time a build from scratch.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

from audiolm.audio.io import load_audio, save_audio
from audiolm.data.espeak import Espeak
from audiolm.data.manifest import read_manifest
from audiolm.data.speakers import Speaker, speaker_inventory
from audiolm.data.synth_piano import PianoCorpusConfig, build_piano_corpus
from audiolm.data.synth_speech import SpeechCorpusConfig, build_speech_corpus
from audiolm.data.text import sentence_pool
from audiolm.data.tts import synthesize
from audiolm.formats.atomic import write_json, write_text

RESULTS = Path(__file__).parent / "results"


def engine_speed(sentences: list[str]) -> dict[str, float]:
    """x real time of each engine on one core (synthesis, resampling to 16 kHz and pitch shift included)."""
    espeak = Espeak()
    voices = {
        "espeak-ng": [Speaker("espeak", "en-us+m3", 50), Speaker("espeak", "en-gb-scotland+f2", 70)],
        "flite": [Speaker("flite", v, 1.5) for v in ("kal16", "awb", "rms", "slt")],
        "festival": [Speaker("festival", v, 0) for v in ("kal_diphone", "ked_diphone", "cmu_us_slt_arctic_hts")],
    }
    speeds = {}
    for engine, speakers in voices.items():
        jobs = [(speakers[i % len(speakers)], s) for i, s in enumerate(sentences)]
        start = time.perf_counter()
        outputs = synthesize(jobs, 16000, espeak)
        elapsed = time.perf_counter() - start
        speeds[engine] = sum(len(o.wav) for o in outputs) / 16000 / elapsed
    return speeds


def build_timed(build, out_dir: Path) -> tuple[dict, float, bool]:
    fresh = not (out_dir / "manifest.jsonl").exists()
    start = time.perf_counter()
    summary = build()
    return summary, time.perf_counter() - start, fresh


def loading_speed(manifest: Path, tmp: Path, limit: int = 200) -> dict[str, float]:
    """x real time of `load_audio` to 16 kHz mono: the corpus's wavs, and the same audio in other formats/rates."""
    entries = read_manifest(manifest)[:limit]
    paths = [e.audio_path(manifest.parent) for e in entries]
    total = sum(e.duration for e in entries)
    speeds = {}
    start = time.perf_counter()
    for p in paths:
        load_audio(p, 16000)
    speeds["wav 16 kHz mono"] = total / (time.perf_counter() - start)
    converted: dict[str, list[Path]] = {"flac 44.1 kHz stereo": [], "ogg 22.05 kHz mono": [], "mp3 48 kHz mono": []}
    for i, p in enumerate(paths[:50]):
        converted["flac 44.1 kHz stereo"].append(save_audio(tmp / f"{i}.flac", torch.cat([load_audio(p, 44100)] * 2), 44100))
        converted["ogg 22.05 kHz mono"].append(save_audio(tmp / f"{i}.ogg", load_audio(p, 22050), 22050))
        converted["mp3 48 kHz mono"].append(save_audio(tmp / f"{i}.mp3", load_audio(p, 48000), 48000))
    sub_total = sum(e.duration for e in entries[:50])
    for name, files in converted.items():
        start = time.perf_counter()
        for f in files:
            load_audio(f, 16000)
        speeds[name] = sub_total / (time.perf_counter() - start)
    return speeds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--work-dir", default="data/bench")
    args = parser.parse_args()
    torch.set_num_threads(1)
    work = Path(args.work_dir)

    sentences = sentence_pool(0)[:40]
    engines = engine_speed(sentences)

    speech_dir, piano_dir = work / "speech", work / "piano"
    speech, speech_time, speech_fresh = build_timed(lambda: build_speech_corpus(
        speech_dir, SpeechCorpusConfig(hours=args.hours), workers=args.workers, progress=True), speech_dir)
    piano, piano_time, piano_fresh = build_timed(lambda: build_piano_corpus(
        piano_dir, PianoCorpusConfig(hours=args.hours), workers=args.workers, progress=True), piano_dir)

    with tempfile.TemporaryDirectory() as tmp:
        loading = loading_speed(speech_dir / "manifest.jsonl", Path(tmp))

    inventory = speaker_inventory()
    by_engine: dict[str, int] = {}
    for s in inventory:
        by_engine[s.engine] = by_engine.get(s.engine, 0) + 1
    results = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "torch": torch.__version__},
        "engine_speed_x_realtime_1_core": engines,
        "speech_corpus": {"hours_requested": args.hours, "workers": args.workers, "seconds": speech_time,
                          "from_scratch": speech_fresh, "x_realtime": speech["all"]["hours"] * 3600 / speech_time, "summary": speech},
        "piano_corpus": {"hours_requested": args.hours, "workers": args.workers, "seconds": piano_time,
                         "from_scratch": piano_fresh, "x_realtime": piano["all"]["hours"] * 3600 / piano_time, "summary": piano},
        "loading_x_realtime_1_thread": loading,
        "speaker_inventory": {"total": len(inventory), **by_engine},
    }
    lines = [
        "# Data benchmark",
        "",
        f"Machine: {os.cpu_count()} CPU cores, {platform.machine()}, torch {torch.__version__}. "
        f"Command: `.venv/bin/python benchmarks/bench_data.py --hours {args.hours:g} --workers {args.workers}`.",
        "",
        f"## Corpus builds ({args.workers} workers)",
        "",
        "| corpus | hours | utterances / clips | speakers | wall time | x real time | built from scratch |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for name, r in (("speech", results["speech_corpus"]), ("piano", results["piano_corpus"])):
        s = r["summary"]["all"]
        lines.append(f"| {name} | {s['hours']:.3f} | {s['utterances']} | {s['speakers'] or '-'} | {r['seconds']:.0f} s | "
                     f"{r['x_realtime']:.0f} | {'yes' if r['from_scratch'] else 'no (resumed)'} |")
    lines += ["", "## Speech corpus splits (held-out speakers)", "", "| split | hours | utterances | speakers |", "|---|---:|---:|---:|"]
    for split in ("train", "valid", "test"):
        if split in speech:
            s = speech[split]
            lines.append(f"| {split} | {s['hours']:.3f} | {s['utterances']} | {s['speakers']} |")
    lines += ["", f"Piano: {piano['pieces']} pieces ({piano['generated_pieces']} generated), "
              f"{piano['skipped_pieces']} scores skipped (failed to parse or render).", "",
              "## TTS engines (one core, 16 kHz output)", "", "| engine | x real time |", "|---|---:|"]
    lines += [f"| {k} | {v:.0f} |" for k, v in engines.items()]
    lines += ["", "## Audio loading (`load_audio` to 16 kHz mono, one thread)", "", "| input | x real time |", "|---|---:|"]
    lines += [f"| {k} | {v:.0f} |" for k, v in loading.items()]
    lines += ["", "## Distinct speakers the engines can make", "", "| engine | speakers |", "|---|---:|"]
    lines += [f"| {k} | {v} |" for k, v in results["speaker_inventory"].items()]
    table = "\n".join(lines) + "\n"
    print(table)
    RESULTS.mkdir(exist_ok=True)
    write_text(RESULTS / "data.md", table)
    write_json(RESULTS / "data.json", results)
    print(f"wrote {RESULTS / 'data.md'} and {RESULTS / 'data.json'}")


if __name__ == "__main__":
    main()
