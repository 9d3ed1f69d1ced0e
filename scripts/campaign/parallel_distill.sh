#!/usr/bin/env bash
# Issues 16 and 17: the parallel acoustic stage and its acoustic-only baseline on the codes of the semantically
# distilled codec (scripts/campaign/codec_distill.sh), whose first level was taught to carry the semantic ids.
# data/mix-codec tokenized once with the bundled tokenizer and the new codec (resumable), then one stage trained from
# the bundled stage's weights (its semantic embeddings and Transformer carry over; the code embeddings learn the new
# codes) with a new cosine schedule. Both stages must be trained on the same shards for guidance to work. One thread,
# lowest priority; checkpoints and stops after MINUTES, resumes when run again.
#   MINUTES=120 bash scripts/campaign/parallel_distill.sh parallel|acoustic [overrides]
set -euo pipefail
cd "$(dirname "$0")/../.."
WHICH=${1:?parallel or acoustic}; shift
FROM=${FROM:-runs/codec-distill-w30}  # weight 30: its level 1 shares the most with the ids (results/level1.md)
CODEC=${CODEC:-$FROM-export}
SHARDS=${SHARDS:-data/shards-distill30}
MINUTES=${MINUTES:-60}
export OMP_NUM_THREADS=1
A=(nice -n 19 .venv/bin/audiolm)
source scripts/campaign/codec_mix.sh
[ -f "$CODEC/config.json" ] || "${A[@]}" codec export "$FROM" -o "$CODEC" --fp16
[ -f "$SHARDS/index.json" ] || "${A[@]}" tokenize "$MIX" -o "$SHARDS" --semantic models/speech/semantic \
    --codec "$CODEC" --workers 1 --quiet
case "$WHICH" in
    parallel) RUN=${RUN:-runs/parallel-distill}; INIT=models/speech/parallel-lm; extra=() ;;
    acoustic) RUN=${RUN:-runs/parallel-acoustic-distill}; INIT=models/speech/parallel-acoustic-lm
              extra=(--acoustic-only model.dim=192 model.num_heads=6) ;;
    *) echo "parallel_distill.sh: expected 'parallel' or 'acoustic', got '$WHICH'" >&2; exit 2 ;;
esac
"${A[@]}" lm train --stage parallel --config parallel --shards "$SHARDS" -o "$RUN" --quiet "${extra[@]}" \
    "init_from=$INIT" train.steps=${STEPS:-3600} train.warmup_steps=100 train.num_threads=1 \
    "train.stop_after_minutes=$MINUTES" "$@"
