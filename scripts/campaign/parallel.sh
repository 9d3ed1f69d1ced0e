#!/usr/bin/env bash
# The parallel acoustic stage (issue 16) on the bundled tokenizer and codec's tokens, at the lowest priority on one
# thread; it checkpoints and stops after MINUTES and resumes where it stopped when run again. A new machine has no
# runs/: INIT (a stage model folder, e.g. models/speech/parallel-lm) starts a new run from those weights.
#   MINUTES=120 SHARDS=data/shards-speech20 bash scripts/campaign/parallel.sh [--acoustic-only]
set -euo pipefail
cd "$(dirname "$0")/../.."
SHARDS=${SHARDS:-data/shards-speech}
RUN=${RUN:-runs/parallel}
MINUTES=${MINUTES:-60}
INIT=${INIT:-}
nice -n 19 .venv/bin/audiolm lm train --stage parallel --config parallel --shards "$SHARDS" -o "$RUN" --quiet "$@" \
    train.num_threads=1 "train.stop_after_minutes=$MINUTES" ${INIT:+"init_from=$INIT"}
