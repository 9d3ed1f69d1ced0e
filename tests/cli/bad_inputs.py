"""The bad-input matrix: every CLI command x every bad input that applies to it, and what must happen.

`tests/cli/test_bad_inputs.py` runs every cell; the README's table of guarantees is rendered from `CASES` by
`render_table()` and checked against it (`python -m tests.cli.bad_inputs --write` rewrites it in README.md).

A cell is "error": `audiolm: error: <file>: <problem>` on one line (naming the bad file), exit status 1, no
traceback, and nothing at the output path; or "works": exit 0 (8 kHz stereo is resampled and mixed down; of a
2-hour prompt only the part the command needs is read).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

# Columns: the bad inputs, with the short header the README table uses.
INPUTS: dict[str, str] = {
    "missing": "missing path",
    "directory": "a directory",
    "empty": "empty file",
    "random": "random bytes",
    "truncated": "truncated file",
    "nan": "NaN samples",
    "silent": "silence",
    "short": "50 ms of audio",
    "stereo8k": "8 kHz stereo",
    "long": "2-hour file",
    "unwritable": "unwritable output",
    "non_utf8": "non-UTF-8 manifest",
    "half_written": "half-written manifest",
    "missing_fields": "manifest line missing fields",
    "other_codec": ".codes of another codec",
    "out_of_range": ".codes ids out of range",
    "missing_model": "missing model folder",
    "truncated_model": "truncated safetensors in a bundle",
    "unknown_key": "config.json: unknown key",
    "missing_key": "config.json: missing key",
    "other_shards": "shards of other models",
}

ERROR, WORKS = "error", "works"


@dataclass(frozen=True)
class Case:
    command: str  # as typed, e.g. "codec encode"
    input: str  # a key of INPUTS
    argv: tuple[str, ...]  # with placeholders: {audio}, {manifest}, {codes}, {bundle}, {codec}, {tokenizer}, {shards}, {out}, ...
    expect: str = ERROR
    bad: str = ""  # the placeholder naming the bad file (its path must appear in the error); default: the first one


AUDIO_COMMANDS = {
    "audio info": ("audio", "info", "{audio}"),
    "audio convert": ("audio", "convert", "{audio}", "-o", "{out}/x.wav"),
    "audio plot": ("audio", "plot", "{audio}", "-o", "{out}/x.png"),
    "codec encode": ("codec", "encode", "{audio}", "-o", "{out}/x.codes", "--model", "{codec}"),
    "semantic tokenize": ("semantic", "tokenize", "{audio}", "--tokenizer", "{tokenizer}", "-o", "{out}/x.jsonl"),
    "continue": ("continue", "{audio}", "--seconds", "0.2", "-o", "{out}/x.wav", "--models", "{bundle}"),
    "resynth": ("resynth", "{audio}", "-o", "{out}/x.wav", "--models", "{bundle}"),
    "detect": ("detect", "{audio}"),
}
# What each audio command does with audio that is valid but unusual: None = the default (ERROR for bad audio).
AUDIO_EXPECT: dict[tuple[str, str], str] = {
    **{(c, "stereo8k"): WORKS for c in AUDIO_COMMANDS},
    **{(c, "short"): WORKS for c in ("audio info", "audio convert", "audio plot", "codec encode", "semantic tokenize")},
    **{(c, "silent"): WORKS for c in ("audio convert", "audio plot", "codec encode", "semantic tokenize")},
    ("continue", "long"): WORKS,  # reads only --prompt-seconds of the file
    ("resynth", "short"): WORKS,  # new acoustic tokens for 50 ms of semantic tokens: short, but what was asked
    **{("detect", kind): WORKS for kind in ("silent", "short", "long")},  # no mark found (score 0); of a long file the first 600 s
}
AUDIO_INPUTS = ("missing", "directory", "empty", "random", "truncated", "nan", "silent", "short", "stereo8k", "long")

MANIFEST_COMMANDS = {
    "data stats": ("data", "stats", "{manifest}"),
    "data transcribe": ("data", "transcribe", "{manifest}", "--asr", "tiny.en", "--quiet"),  # rewrites it in place: no -o
    "codec train": ("codec", "train", "--config", "tiny", "--manifest", "{manifest}", "-o", "{out}/run", "--quiet", "train.steps=1"),
    "semantic train": ("semantic", "train", "--config", "tiny", "--manifest", "{manifest}", "--targets", "{tokenizer}", "-o", "{out}/run",
                       "--quiet", "train.steps=1"),
    "semantic fit-kmeans": ("semantic", "fit-kmeans", "--encoder", "mfcc", "-k", "2", "--manifest", "{manifest}", "-o", "{out}/tok",
                            "--quiet"),
    "semantic eval": ("semantic", "eval", "--mfcc", "--manifest", "{manifest}", "-o", "{out}/x.md", "--quiet"),
    "tokenize": ("tokenize", "{manifest}", "-o", "{out}/shards", "--semantic", "{tokenizer}", "--codec", "{codec}", "--quiet"),
    "eval": ("eval", "--models", "{bundle}", "--manifest", "{manifest}", "--split", "valid", "-o", "{out}/report", "--quiet"),
    "recipe speech": ("recipe", "speech", "--workdir", "{out}/work", "-o", "{out}/bundle", "--quiet", "manifest={manifest}"),
}
MANIFEST_INPUTS = ("missing", "directory", "empty", "random", "non_utf8", "half_written", "missing_fields")

BUNDLE_COMMANDS = {  # commands that load a model folder, with the placeholder that gets the corrupted copy
    "continue": (("continue", "{audio}", "--seconds", "0.2", "-o", "{out}/x.wav", "--models", "{bundle}"), "bundle"),
    "generate": (("generate", "--seconds", "0.2", "-o", "{out}/x.wav", "--models", "{bundle}"), "bundle"),
    "resynth": (("resynth", "{audio}", "-o", "{out}/x.wav", "--models", "{bundle}"), "bundle"),
    "serve": (("serve", "--models", "{bundle}", "--port", "0"), "bundle"),  # loads its bundles before it listens
    "codec encode": (("codec", "encode", "{audio}", "-o", "{out}/x.codes", "--model", "{codec}"), "codec"),
    "codec decode": (("codec", "decode", "{codes}", "-o", "{out}/x.wav", "--model", "{codec}"), "codec"),
    "semantic tokenize": (("semantic", "tokenize", "{audio}", "--tokenizer", "{tokenizer}", "-o", "{out}/x.jsonl"), "tokenizer"),
    "tokenize": (("tokenize", "{manifest}", "-o", "{out}/shards", "--semantic", "{tokenizer}", "--codec", "{codec}", "--quiet"), "codec"),
}
BUNDLE_INPUTS = ("missing_model", "truncated_model", "unknown_key", "missing_key")

OUTPUT_COMMANDS = {  # every command that writes, with its output under a path whose parent is a regular file
    "audio convert": ("audio", "convert", "{audio}", "-o", "{blocked}/x.wav"),
    "audio plot": ("audio", "plot", "{audio}", "-o", "{blocked}/x.png"),
    "data manifest": ("data", "manifest", "{corpus}", "-o", "{blocked}/manifest.jsonl", "--quiet"),
    "data synth-speech": ("data", "synth-speech", "--hours", "0.001", "-o", "{blocked}/corpus", "--quiet"),
    "data synth-piano": ("data", "synth-piano", "--hours", "0.001", "-o", "{blocked}/corpus", "--quiet"),
    "codec train": ("codec", "train", "--config", "tiny", "--manifest", "{manifest}", "-o", "{blocked}/run", "--quiet", "train.steps=1"),
    "codec encode": ("codec", "encode", "{audio}", "-o", "{blocked}/x.codes", "--model", "{codec}"),
    "codec decode": ("codec", "decode", "{codes}", "-o", "{blocked}/x.wav", "--model", "{codec}"),
    "semantic fit-kmeans": ("semantic", "fit-kmeans", "--encoder", "mfcc", "-k", "2", "--manifest", "{manifest}", "-o",
                            "{blocked}/tok", "--quiet"),
    "semantic tokenize": ("semantic", "tokenize", "{audio}", "--tokenizer", "{tokenizer}", "-o", "{blocked}/x.jsonl"),
    "tokenize": ("tokenize", "{manifest}", "-o", "{blocked}/shards", "--semantic", "{tokenizer}", "--codec", "{codec}", "--quiet"),
    "lm train": ("lm", "train", "--stage", "semantic", "--config", "tiny", "--shards", "{shards}", "-o", "{blocked}/run", "--quiet",
                 "train.steps=1"),
    "continue": ("continue", "{audio}", "--seconds", "0.2", "-o", "{blocked}/x.wav", "--models", "{bundle}"),
    "generate": ("generate", "--seconds", "0.2", "-o", "{blocked}/x.wav", "--models", "{bundle}"),
    "resynth": ("resynth", "{audio}", "-o", "{blocked}/x.wav", "--models", "{bundle}"),
    "bundle": ("bundle", "-o", "{blocked}/bundle", "--tokenizer", "{tokenizer}", "--codec", "{codec}", "--semantic-lm",
               "{bundle}/semantic-lm", "--coarse-lm", "{bundle}/coarse-lm"),
    "eval": ("eval", "--models", "{bundle}", "--manifest", "{manifest}", "--split", "valid", "-o", "{blocked}/report", "--quiet"),
    "data real-speech": ("data", "real-speech", "-o", "{blocked}/corpus", "--max-clips", "1", "--quiet"),
    "codec export": ("codec", "export", "{run}", "-o", "{blocked}/codec"),
    "semantic train": ("semantic", "train", "--config", "tiny", "--manifest", "{manifest}", "--targets", "{tokenizer}", "-o",
                       "{blocked}/run", "--quiet", "train.steps=1"),
    "semantic eval": ("semantic", "eval", "--mfcc", "--manifest", "{manifest}", "-o", "{blocked}/x.md", "--quiet"),
    "recipe speech": ("recipe", "speech", "--workdir", "{blocked}/work", "-o", "{out}/bundle", "--quiet", "manifest={manifest}"),
    "data mix": ("data", "mix", "--source", "{manifest}:2", "-o", "{blocked}/mixed.jsonl"),
}

CODES_INPUTS = ("missing", "directory", "empty", "random", "truncated", "other_codec", "out_of_range")
SHARDS_INPUTS = ("missing", "directory", "empty", "random", "other_shards")


def _cases() -> list[Case]:
    cases = []
    for command, argv in AUDIO_COMMANDS.items():
        for kind in AUDIO_INPUTS:
            cases.append(Case(command, kind, argv, AUDIO_EXPECT.get((command, kind), ERROR), "audio"))
    for command, argv in MANIFEST_COMMANDS.items():
        for kind in MANIFEST_INPUTS:
            cases.append(Case(command, kind, argv, ERROR, "manifest"))
    for command, (argv, placeholder) in BUNDLE_COMMANDS.items():
        for kind in BUNDLE_INPUTS:
            cases.append(Case(command, kind, argv, ERROR, placeholder))
    for command, argv in OUTPUT_COMMANDS.items():
        cases.append(Case(command, "unwritable", argv, ERROR, "blocked"))
    for kind in CODES_INPUTS:
        cases.append(Case("codec decode", kind, ("codec", "decode", "{codes}", "-o", "{out}/x.wav", "--model", "{codec}"), ERROR, "codes"))
    for kind in ("missing", "directory", "empty", "random"):
        cases.append(Case("data from-lhotse", kind, ("data", "from-lhotse", "{manifest}", "-o", "{out}/manifest.jsonl"), ERROR,
                          "manifest"))
        cases.append(Case("codec export", kind, ("codec", "export", "{run}", "-o", "{out}/codec"), ERROR, "run"))
        cases.append(Case("data mix", kind, ("data", "mix", "--source", "{manifest}:2", "-o", "{out}/mixed.jsonl"), ERROR, "manifest"))
    for kind in ("missing", "empty", "random"):
        cases.append(Case("data manifest", kind, ("data", "manifest", "{corpus}", "-o", "{out}/manifest.jsonl", "--quiet"), ERROR,
                          "corpus"))
    for kind in SHARDS_INPUTS:
        argv = ("lm", "train", "--stage", "semantic", "--config", "tiny", "--shards", "{shards}", "-o", "{out}/run", "--quiet",
                "train.steps=1")
        if kind == "other_shards":  # resuming a tokenization into shards that hold another codec's tokens
            argv = ("tokenize", "{manifest}", "-o", "{shards}", "--semantic", "{tokenizer}", "--codec", "{codec}", "--quiet")
        cases.append(Case("tokenize" if kind == "other_shards" else "lm train", kind, argv, ERROR, "shards"))
    return cases


CASES: list[Case] = _cases()
BEGIN, END = "<!-- bad-input-matrix: generated by `python -m tests.cli.bad_inputs --write` -->", "<!-- end of bad-input-matrix -->"


def render_table() -> str:
    """The README table: one row per command, one column per input that applies to some command."""
    used = [k for k in INPUTS if any(c.input == k for c in CASES)]
    commands = list(dict.fromkeys(c.command for c in CASES))
    cell = {(c.command, c.input): ("1" if c.expect == ERROR else "ok") for c in CASES}
    lines = ["| command | " + " | ".join(INPUTS[k] for k in used) + " |", "|---|" + "---|" * len(used)]
    for command in sorted(commands):
        lines.append(f"| `{command}` | " + " | ".join(cell.get((command, k), "") for k in used) + " |")
    return "\n".join(lines)


def readme_block() -> str:
    return f"{BEGIN}\n{render_table()}\n{END}"


def write_readme(readme: Path) -> None:
    text = readme.read_text(encoding="utf-8")
    start, end = text.index(BEGIN), text.index(END) + len(END)
    readme.write_text(text[:start] + readme_block() + text[end:], encoding="utf-8")


if __name__ == "__main__":
    if "--write" in sys.argv:
        write_readme(Path(__file__).resolve().parents[2] / "README.md")
    print(readme_block())
