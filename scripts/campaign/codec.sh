#!/usr/bin/env bash
# The codec's decoder on the mixed corpus (issue 17, item 1), adversarially: encoder and codebooks frozen, so the codes
# and every LM trained on them stay valid. Lowest priority, one thread; checkpoints and stops after MINUTES and
# resumes where it stopped when run again. A new machine has no runs/: the run starts from the bundled codec.
#   MINUTES=140 bash scripts/campaign/codec.sh [overrides]
set -euo pipefail
cd "$(dirname "$0")/../.."
RUN=${RUN:-runs/codec-gan}
MINUTES=${MINUTES:-60}
A=(nice -n 19 .venv/bin/audiolm)
source scripts/campaign/codec_mix.sh
"${A[@]}" codec train --config small --manifest "$MIX" -o "$RUN" --quiet init_from=models/speech/codec decoder_only=true \
    augment_p=0.6 disc_start_step=0 codec_optimizer.lr=0.0002 train.steps=10000 train.warmup_steps=100 \
    train.valid_every=500 train.save_every=250 train.num_threads=1 "train.stop_after_minutes=$MINUTES" "$@"
