#!/usr/bin/env bash
# Session 8's second leg: the parallel stage and its acoustic-only baseline went on from their first 1,500 / 500 steps
# on data/speech (3 h) to data/speech20 (14 h, the same speakers), with a new cosine schedule.
set -euo pipefail
cd "$(dirname "$0")/../.."
MINUTES=${MINUTES:-58}
common=(train.steps=3600 train.warmup_steps=100)
SHARDS=data/shards-speech20 RUN=runs/parallel20 INIT=runs/parallel MINUTES=$MINUTES \
    nohup bash scripts/campaign/parallel.sh "${common[@]}" > runs/logs/parallel20.log 2>&1 &
SHARDS=data/shards-speech20 RUN=runs/parallel-acoustic20 INIT=runs/parallel-acoustic MINUTES=$MINUTES \
    nohup bash scripts/campaign/parallel.sh --acoustic-only model.dim=192 model.num_heads=6 "${common[@]}" > runs/logs/parallel-acoustic20.log 2>&1 &
wait
