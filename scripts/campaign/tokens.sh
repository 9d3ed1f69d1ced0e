#!/usr/bin/env bash
# Token shards of the bundled tokenizer and codec (the parallel stage's training data, issue 16), at the lowest
# priority: data/speech (3 h) and data/speech20 (14 h, the same speakers). Resumable.
set -euo pipefail
cd "$(dirname "$0")/../.."
A=(nice -n 19 .venv/bin/audiolm)
for corpus in "$@"; do
  "${A[@]}" tokenize "data/$corpus/manifest.jsonl" -o "data/shards-$corpus" --semantic models/speech/semantic \
      --codec models/speech/codec --workers 2
done
