#!/usr/bin/env bash
# The corpora our training campaign reads (issues 15-17), built in the background at the lowest priority.
# Every step is resumable: re-running skips what is built. About 40 minutes on two shared cores.
set -euo pipefail
cd "$(dirname "$0")/../.."
A=(nice -n 19 .venv/bin/audiolm)
"${A[@]}" data synth-speech --hours 3 -o data/speech --workers 2 --quiet     # the bundled models' corpus (seed 0)
"${A[@]}" data synth-speech --hours 14 -o data/speech20 --workers 2 --quiet  # the same speakers, 14 h
"${A[@]}" data real-speech -o data/real --workers 2 --quiet                  # recorded voice acting, 6.1 h
[ -d data/kokoro ] || mkdir -p data/kokoro
sources=(--source data/real/manifest.jsonl:1.0 --source data/speech20/manifest.jsonl:1.0)
[ -n "$(ls data/kokoro 2>/dev/null)" ] && sources+=(--source data/kokoro:1.0)
"${A[@]}" data mix "${sources[@]}" -o data/mixed/manifest.jsonl
# the bundled tokenizer and codec's tokens of the mix (the parallel stage's training data, issue 16)
"${A[@]}" tokenize data/mixed/manifest.jsonl -o data/shards-mixed --semantic models/speech/semantic \
    --codec models/speech/codec --workers 2
