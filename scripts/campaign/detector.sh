#!/usr/bin/env bash
# The generated-speech detector (issue 19): a bundle that can make every kind (the bundled speech models plus the AR
# coarse LMs they carried until commit 15f077d), its detection corpus from the held-out-split corpora, the detector's
# training, and the bundle's copy. Resumable step by step; about 30 minutes on one thread.
#   bash scripts/campaign/detector.sh [overrides]
set -euo pipefail
cd "$(dirname "$0")/../.."
A=(nice -n 19 .venv/bin/audiolm)
AR=runs/ar-bundle
if [ ! -d "$AR/coarse-lm" ]; then
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
