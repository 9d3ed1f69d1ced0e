"""The `audiolm` command: argument parsing only; each command calls one library function, and each command
group has its own module here (audio, data, codec, semantic, lm, bundle, generate, detect, detector, serve).

Errors caused by input (a bad file, flag or folder) print one line, `audiolm: error: <file>: <problem>`,
and exit with status 1; set AUDIOLM_DEBUG=1 to see the traceback instead.
"""

from __future__ import annotations

import argparse
import os
import sys

from audiolm import __version__
from audiolm.cli import audio, bundle, codec, data, detect, detector, generate, lm, semantic, serve
from audiolm.errors import AudiolmError
from audiolm.formats.atomic import check_writable

GROUPS = (audio, data, codec, semantic, lm, bundle, generate, detect, detector, serve)  # in the order of `audiolm --help`
OUTPUTS = ("output", "workdir", "plot", "lhotse_out")  # the options that name what a command writes


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="audiolm", description="AudioLM: audio generation as language modelling over audio tokens.")
    parser.add_argument("--version", action="version", version=f"audiolm {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in GROUPS:
        group.add_parsers(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)  # an option out of its limits raises AudiolmError here (audiolm/limits.py)
        for name in OUTPUTS:
            if getattr(args, name, None):
                check_writable(getattr(args, name))  # before any work, not after it
        failed = args.func(args)  # None, or 1 from a command that went on past a bad file (detect)
    except (AudiolmError, ValueError) as error:
        if os.environ.get("AUDIOLM_DEBUG"):
            raise
        message = " ".join(str(error).split())
        print(f"audiolm: error: {message}", file=sys.stderr)
        return 1
    except OSError as error:  # the system refused a path: an output under a file, no permission, a full disk
        if os.environ.get("AUDIOLM_DEBUG"):
            raise
        where = error.filename if error.filename is not None else "audiolm"
        print(f"audiolm: error: {where}: {error.strerror or ' '.join(str(error).split())}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("audiolm: interrupted", file=sys.stderr)
        return 130
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
