#!/usr/bin/env bash
# The semantic LM (issue 17, item 3) on more speech: a new cosine schedule from the bundled weights (init_from), at the
# lowest priority on one thread; checkpoints and stops after MINUTES and resumes where it stopped when run again.
#   MINUTES=100 SHARDS=data/shards-speech20 bash scripts/campaign/semantic_lm.sh [overrides]
set -euo pipefail
cd "$(dirname "$0")/../.."
SHARDS=${SHARDS:-data/shards-speech20}
RUN=${RUN:-runs/semantic-lm}
MINUTES=${MINUTES:-60}
INIT=${INIT:-models/speech/semantic-lm}
nice -n 19 .venv/bin/audiolm lm train --stage semantic --config small --shards "$SHARDS" -o "$RUN" --quiet \
    train.batch_size=8 train.steps=2000 train.warmup_steps=50 train.num_threads=1 "train.stop_after_minutes=$MINUTES" \
    ${INIT:+"init_from=$INIT"} "$@"
