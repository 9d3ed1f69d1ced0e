#!/usr/bin/env bash
# A 50 Hz semantic encoder taught by Whisper base (issue 17): k-means of Whisper base's encoder output (layer 6, 50 Hz;
# trained with transcripts, so the student is not textless) as HuBERT-style targets, computed once per utterance,
# learned by an encoder the bundled one's size (configs/semantic/student50.yaml) on the synthetic corpus beside recorded
# voice acting; then k-means on the student and ABX / speaker probe on held-out synthetic speakers. Every step skips or
# resumes what is done; lowest priority, one thread; training checkpoints and stops after MINUTES, and continues where it
# stopped when run again (the student's tokenizers and the evaluation are redone from its latest checkpoint each time).
#   MINUTES=120 bash scripts/campaign/student.sh [training overrides]
set -euo pipefail
cd "$(dirname "$0")/../.."
W=${W:-runs/student}
MINUTES=${MINUTES:-60}
SPEECH=${SPEECH:-data/speech20/manifest.jsonl}
[ -f "$SPEECH" ] || SPEECH=data/speech/manifest.jsonl
MIX=${MIX:-data/mix-student/manifest.jsonl}
export OMP_NUM_THREADS=1
A=(nice -n 19 .venv/bin/audiolm)
if [ ! -f "$MIX" ]; then
    "${A[@]}" data mix --source "$SPEECH:1.0" --source data/real/manifest.jsonl:1.0 -o "$MIX"
fi
# 1. the teacher's units: K=100 on 1 h of the mix, in windows cut to each clip as the targets are (full 30 s windows
#    took over 30 min here: the recorded corpus's clips are short and each paid a whole window)
[ -f "$W/whisper-km100/config.json" ] || "${A[@]}" semantic fit-kmeans --encoder whisper-base --layer 6 -k 100 \
    --whisper-windows trimmed --manifest "$MIX" --max-hours 1 -o "$W/whisper-km100" --quiet
# 2. their ids of every train and valid utterance, once (each in a window cut to it; shard by shard, resumable)
"${A[@]}" semantic targets "$MIX" --tokenizer "$W/whisper-km100" -o "$W/targets" --split train,valid \
    ${TARGET_HOURS:+--max-hours "$TARGET_HOURS"} --quiet
# 3. the student, 50 frames/s like its targets
"${A[@]}" semantic train --config student50 --manifest "$MIX" --targets-dir "$W/targets" -o "$W/encoder" --quiet \
    train.num_threads=1 "train.stop_after_minutes=$MINUTES" "$@"
# 4. tokenizers on its layers (50 Hz already: no --interleave), scored beside the bundled tokenizer (the teacher's own
#    scores, 16.6 % ABX across speakers at K=100, are in benchmarks/results/whisper_teacher.md)
tokenizers=()
for layer in ${LAYERS:-4 6}; do
    "${A[@]}" semantic fit-kmeans --encoder "$W/encoder" --layer "$layer" -k 100 --manifest "$MIX" --max-hours 1 \
        -o "$W/student-l$layer-km100" --quiet
    tokenizers+=("$W/student-l$layer-km100")
done
"${A[@]}" semantic eval "${tokenizers[@]}" models/speech/semantic --manifest data/speech/manifest.jsonl -o "$W/eval.md" --quiet
