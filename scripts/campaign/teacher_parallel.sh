#!/usr/bin/env bash
# Would better semantic tokens let resynthesis keep the words (issue 16)? The parallel acoustic stage conditioned on
# the Whisper-base teacher's K=100 units (layer 6, 50 Hz, windows cut to each clip; ABX across speakers 16.6 % against
# the bundled tokenizer's 20-21 %; trained with transcripts, so a diagnostic, never a bundled part) instead of the
# bundled tokenizer's: data/speech tokenized with the teacher, the bundled parallel stage fine-tuned on it (its
# semantic embedding rows relearn what the new ids mean), a short semantic LM only so the bundle loads, and
# bench_acoustic on held-out speakers beside the bundled models run the same way. One thread, lowest priority; the
# training checkpoints and stops after MINUTES and resumes when run again.
#   TEACHER=runs/student/whisper-km100 MINUTES=60 bash scripts/campaign/teacher_parallel.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
TEACHER=${TEACHER:-runs/student/whisper-km100}  # fitted by scripts/campaign/student.sh (--whisper-windows trimmed)
W=${W:-runs/teacher}
MINUTES=${MINUTES:-60}
export OMP_NUM_THREADS=1
A=(nice -n 19 .venv/bin/audiolm)
# 1. the teacher as a tokenizer that reads every clip in a window cut to it, as its k-means was fitted (an older
#    tokenizer folder fitted that way but saved before the encoder recorded its windows)
if [ ! -f "$W/tokenizer/config.json" ]; then
    mkdir -p "$W/tokenizer"
    cp "$TEACHER/model.safetensors" "$W/tokenizer/"
    .venv/bin/python - "$TEACHER/config.json" "$W/tokenizer/config.json" <<'EOF'
import json, sys
config = json.load(open(sys.argv[1]))
assert config["encoder"]["kind"] == "whisper", "the teacher must be a Whisper tokenizer"
config["encoder"] = {"kind": "whisper", "model": config["encoder"]["model"], "windows": "trimmed", "trained_with_transcripts": True}
json.dump(config, open(sys.argv[2], "w"), indent=2)
EOF
fi
# 2. the corpus in its units and the bundled codec's codes (resumable)
[ -f data/shards-teacher/index.json ] || "${A[@]}" tokenize data/speech/manifest.jsonl -o data/shards-teacher \
    --semantic "$W/tokenizer" --codec models/speech/codec --workers 1 --quiet
# 3. a semantic LM on its ids (a bundle needs one; resynthesis never reads it): 200 steps from the bundled weights
[ -f "$W/semantic-lm/model/config.json" ] || "${A[@]}" lm train --stage semantic --config small --shards data/shards-teacher \
    -o "$W/semantic-lm" --quiet init_from=models/speech/semantic-lm train.batch_size=8 train.steps=200 train.warmup_steps=20 \
    train.num_threads=1
# 4. the parallel stage, from the bundled one's weights, a new 3,000-step cosine schedule
"${A[@]}" lm train --stage parallel --config parallel --shards data/shards-teacher -o "$W/parallel" --quiet \
    init_from=models/speech/parallel-lm train.steps=${STEPS:-3000} train.warmup_steps=100 train.num_threads=1 \
    "train.stop_after_minutes=$MINUTES"
# 5. the bundle, and the benchmark on it and on the bundled models, the same utterances, prompts and seeds
"${A[@]}" bundle -o "$W/bundle" --tokenizer "$W/tokenizer" --codec models/speech/codec --semantic-lm "$W/semantic-lm" \
    --parallel-lm "$W/parallel"
for models in "$W/bundle" speech; do
    name=$([ "$models" = speech ] && echo bundled || echo teacher)
    nice -n 19 .venv/bin/python benchmarks/bench_acoustic.py --models "$models" --utterances 16 --prompts 16 --levels 3,12 \
        --out "$W/acoustic-$name" --quiet
done
