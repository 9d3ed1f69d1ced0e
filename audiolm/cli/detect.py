"""Is this audio ours? `audiolm detect FILE...`: one JSON line per file, from the detector (audiolm/detector) and the
watermark (audiolm/watermark.py)."""

from __future__ import annotations

import argparse
import json
import os
import sys

from audiolm import limits

DESCRIPTION = f"""Print one JSON line per file: {{"path": ..., "generated": P, "watermark": true|false, "watermark_score": S}}.
`generated` is the detector's probability that the audio was made by the bundle's models (a convolutional classifier
on log-mel spectrograms, trained on originals against the bundle's codec reconstructions, continuations, resyntheses
and unconditional audio, after everyday processing; marked or not), null when the bundle has no detector/.
`watermark` is true when the file carries the inaudible watermark that `audiolm continue | generate | resynth` and
`audiolm serve` put on their outputs (unless --no-watermark): `watermark_score` is the key sequence's largest
correlation in standard deviations, and true means above 5.46, which unmarked audio passes at most about once in
10,000 files. The key is public: a mark says "made by audiolm", it proves nothing. Of a longer file the first
{limits.MAX_DETECT_SECONDS:g} s are scored. A file that cannot be read gets the usual one-line error on stderr instead
of its line, the others are still scored, and the exit status is then 1."""


def cmd_detect(args: argparse.Namespace) -> int | None:
    from audiolm.audio.io import load_audio
    from audiolm.detector.model import load_bundled_detector
    from audiolm.detector.score import score_file
    from audiolm.errors import AudiolmError
    from audiolm.watermark import SAMPLE_RATE

    detector = load_bundled_detector(args.models)
    failed = False
    for path in args.files:
        try:
            wav = load_audio(path, SAMPLE_RATE, duration=limits.MAX_DETECT_SECONDS)  # [1, L]
        except (AudiolmError, OSError) as error:
            if os.environ.get("AUDIOLM_DEBUG"):
                raise
            problem = error.strerror if isinstance(error, OSError) and error.strerror else " ".join(str(error).split())
            where = f"{path}: " if isinstance(error, OSError) else ""
            print(f"audiolm: error: {where}{problem}", file=sys.stderr, flush=True)
            failed = True
            continue
        print(json.dumps({"path": str(path), **score_file(wav, detector)}), flush=True)
    return 1 if failed else None


def add_parsers(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("detect", help="was this audio generated? the detector's probability and the watermark, one JSON "
                            "line per file", description=DESCRIPTION)
    p.add_argument("files", nargs="+", metavar="FILE", help="audio files, any format and rate")
    p.add_argument("--models", default="speech", help="the bundle whose detector/ scores the files (default: the bundled speech models)")
    p.set_defaults(func=cmd_detect)
