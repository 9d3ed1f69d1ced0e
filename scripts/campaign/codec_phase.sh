#!/usr/bin/env bash
# The whole codec again (issue 17, item 1), encoder included, on the mixed corpus (data/speech beside recorded voice
# acting, and Kokoro where built), with the phase: the encoder reads each STFT bin's phase beside its magnitude
# (`model.encoder_phase`), and a phase-sensitive loss (`losses.complex`: power-law compressed complex STFT; ~0.35 on a
# bundled-codec reconstruction where the mel loss is ~68, so weight 50 makes it about a quarter of the mel term)
# teaches the decoder the phase the codes carry. Augmentation on 30 % of the crops; no discriminators yet (a later
# decoder-only adversarial stage, as scripts/campaign/codec.sh). New codes: every LM must be retrained on them.
# Lowest priority, one thread; checkpoints and stops after MINUTES and resumes where it stopped when run again.
#   MINUTES=120 bash scripts/campaign/codec_phase.sh [overrides]
set -euo pipefail
cd "$(dirname "$0")/../.."
RUN=${RUN:-runs/codec-phase}
MINUTES=${MINUTES:-60}
A=(nice -n 19 .venv/bin/audiolm)
source scripts/campaign/codec_mix.sh
"${A[@]}" codec train --config small --manifest "$MIX" -o "$RUN" --quiet model.encoder_phase=true losses.complex=50 \
    augment_p=0.3 disc_start_step=1000000 train.steps=20000 train.valid_every=500 train.save_every=250 \
    train.num_threads=1 "train.stop_after_minutes=$MINUTES" "$@"
