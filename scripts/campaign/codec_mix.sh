#!/usr/bin/env bash
# The codec campaigns' corpus, sourced by codec.sh and codec_phase.sh: MIX (default data/mix-codec/manifest.jsonl), made
# once from data/speech beside recorded voice acting (data/real), and Kokoro where built, in equal shares.
MIX=${MIX:-data/mix-codec/manifest.jsonl}
if [ ! -f "$MIX" ]; then
    sources=(--source data/speech/manifest.jsonl:1.0 --source data/real/manifest.jsonl:1.0)
    [ -f data/kokoro/manifest.jsonl ] && sources+=(--source data/kokoro/manifest.jsonl:1.0)
    nice -n 19 .venv/bin/audiolm data mix "${sources[@]}" -o "$MIX"
fi
