#!/usr/bin/env bash
# The generated-speech detector (issue 19): a bundle that can make every kind (the bundled speech models plus the AR
# coarse LMs they carried until commit 15f077d, while those read the bundled codec's codes), its detection corpus from the held-out-split corpora, the detector's
# training, and the bundle's copy. Resumable step by step; about 30 minutes on one thread.
#   bash scripts/campaign/detector.sh [overrides]
set -euo pipefail
cd "$(dirname "$0")/../.."
A=(nice -n 19 .venv/bin/audiolm)
AR=runs/ar-bundle
codec_of() { python3 -c 'import json, sys; print(json.load(sys.stdin)["fingerprints"]["codec"])'; }
if [ "$(git show 15f077d^:models/speech/coarse-lm/config.json | codec_of)" != \
     "$(codec_of < models/speech/parallel-lm/config.json)" ]; then
    AR=models/speech  # the bundle's codec is newer than those AR LMs: its own kinds only, no "continue-ar"
elif [ ! -d "$AR/coarse-lm" ]; then
    mkdir -p "$(dirname "$AR")" && rm -rf "$AR.partial" && cp -r models/speech "$AR.partial"
    for part in coarse-lm coarse-acoustic-lm; do
        mkdir -p "$AR.partial/$part"
        for f in $(git ls-tree --name-only 15f077d^ "models/speech/$part/"); do git show "15f077d^:$f" > "$AR.partial/$part/$(basename "$f")"; done
    done
    mv "$AR.partial" "$AR"
fi
manifests=(data/speech/manifest.jsonl)
[ -f data/real/manifest.jsonl ] && manifests+=(data/real/manifest.jsonl)
"${A[@]}" detector corpus "${manifests[@]}" --models "$AR" -o data/detect --train 320 --valid 24 --test 64 --threads 1 --quiet
"${A[@]}" detector train --data data/detect/manifest.jsonl -o runs/detector --quiet train.num_threads=1 "$@"
