#!/usr/bin/env bash
# Issue 16's last criterion (resynthesis WER at most twice the codec's): more training for the bundled parallel stage,
# on more and broader speech. data/mix-codec (data/speech beside recorded voice acting, ~9 h; scripts/campaign/codec_mix.sh)
# tokenized once with the bundled tokenizer and codec (resumable), then the bundled parallel stage fine-tuned from its
# weights with a new cosine schedule. Same parts, same ids: the bundle's other models stay valid (the detector does not:
# retrain it after bundling). One thread, lowest priority; checkpoints and stops after MINUTES, resumes when run again.
#   MINUTES=120 bash scripts/campaign/parallel_mix.sh [overrides]
set -euo pipefail
cd "$(dirname "$0")/../.."
RUN=${RUN:-runs/parallel-mix}
SHARDS=${SHARDS:-data/shards-mix}
MINUTES=${MINUTES:-60}
export OMP_NUM_THREADS=1
A=(nice -n 19 .venv/bin/audiolm)
source scripts/campaign/codec_mix.sh
[ -f "$SHARDS/index.json" ] || "${A[@]}" tokenize "$MIX" -o "$SHARDS" --semantic models/speech/semantic \
    --codec models/speech/codec --workers 1 --quiet
"${A[@]}" lm train --stage parallel --config parallel --shards "$SHARDS" -o "$RUN" --quiet \
    init_from=models/speech/parallel-lm train.steps=${STEPS:-5000} train.warmup_steps=100 train.num_threads=1 \
    "train.stop_after_minutes=$MINUTES" "$@"
