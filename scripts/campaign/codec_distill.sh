#!/usr/bin/env bash
# The phase-aware codec (scripts/campaign/codec_phase.sh) fine-tuned with semantic distillation into its first level
# (issues 16 and 17): a head on each frame's first-level code learns the bundled tokenizer's id for it, and the encoder
# with it, so that level 1 carries what the semantic ids carry (Mimi). Resynthesis loses its words at level 1
# (benchmarks/results/acoustic_oracle.md: the true level-1 codes alone bring the WER within twice the codec's), so
# this is the codec side of that lever. Same losses as codec_phase.sh plus losses.distill (CE ~4.6 nats at chance for
# K = 100, so weight 10 is ~40 beside a mel loss of ~70). New codes: every LM must be retrained on them.
# Lowest priority, one thread; checkpoints and stops after MINUTES and resumes where it stopped when run again.
#   MINUTES=120 bash scripts/campaign/codec_distill.sh [overrides]
set -euo pipefail
cd "$(dirname "$0")/../.."
RUN=${RUN:-runs/codec-distill}
FROM=${FROM:-runs/codec-phase}
TOKENIZER=${TOKENIZER:-models/speech/semantic}
MINUTES=${MINUTES:-60}
A=(nice -n 19 .venv/bin/audiolm)
source scripts/campaign/codec_mix.sh
INIT=$RUN-init  # the starting codec, exported once from FROM (finished or not: its latest checkpoint)
[ -f "$INIT/config.json" ] || "${A[@]}" codec export "$FROM" -o "$INIT"
"${A[@]}" codec train --config small --manifest "$MIX" -o "$RUN" --quiet "init_from=$INIT" model.encoder_phase=true \
    losses.complex=50 "distill_tokenizer=$TOKENIZER" losses.distill=10 augment_p=0.3 disc_start_step=1000000 \
    train.steps=10000 train.warmup_steps=200 train.valid_every=500 train.save_every=250 train.num_threads=1 \
    "train.stop_after_minutes=$MINUTES" "$@"
