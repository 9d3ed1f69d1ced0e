"""How much of the semantic ids a codec's first level carries, and how much of the first level the ids decide
(issues 16 and 17): the parallel stage must draw level 1 from the semantic ids, and resynthesis loses its words there
(results/acoustic_oracle.md), so a codec whose first level the ids predict well is one the stage can follow.

For each codec, the frames of a manifest's training split (count tables) and of its held-out split (scored) are
aligned with the tokenizer's ids (repeated to the codec's frame rate), and the held-out cross-entropies are measured
from count tables smoothed by Witten-Bell interpolation (each conditional backs off to its unigram in proportion to
how many different targets its context was seen with; no parameter to tune):

    H(id), H(id | code)      the ids from one first-level code (what semantic distillation trains)
    H(code), H(code | id)    the first-level code from one id (what the parallel stage faces, before context)

with the top-1 accuracy of each prediction. Lower conditional entropy = more shared. One frame, no context: a bound
on neither side, but the same measure for every codec. Then, closer to the stage's task, a small probe (a dilated
convolution over the ids, ~0.3 s of context each side, at most `--probe-steps` Adam steps, stopped early on a tenth of
the training frames, seeded) learns the first-level code from the ids around it, and its held-out cross-entropy and
accuracy are reported beside H(code).

    .venv/bin/python benchmarks/bench_level1.py --model bundled=models/speech/codec --model new=runs/codec-distill-export \\
        --tokenizer models/speech/semantic --manifest data/mix-codec/manifest.jsonl

Prints a markdown table and writes benchmarks/results/level1.md and level1.json (or --name).
"""

from __future__ import annotations

import argparse
import os
import platform
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F
from tqdm import tqdm

from audiolm.codec.model import Codec
from audiolm.data.datasets import AudioClips
from audiolm.eval.counts import witten_bell
from audiolm.formats.atomic import write_json, write_text
from audiolm.semantic.tokenizer import SemanticTokenizer

RESULTS = Path(__file__).parent / "results"


def aligned_frames(codec: Codec, tokenizer: SemanticTokenizer, clips: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Every clip's first-level codes and semantic ids at the codec's frame rate, concatenated: `([N], [N])`."""
    ratio = round(codec.config.frame_rate / tokenizer.frame_rate)
    codes, ids = [], []
    with torch.inference_mode():
        for wav in tqdm(clips, desc="frames", leave=False):
            first = codec.encode(wav, num_codebooks=1)[0, 0]  # [T]
            sem = tokenizer(wav)[0].repeat_interleave(ratio)  # [T']
            n = min(len(first), len(sem))
            codes.append(first[:n])
            ids.append(sem[:n])
    return torch.cat(codes).long(), torch.cat(ids).long()


def conditional_ce(given: torch.Tensor, target: torch.Tensor, held_given: torch.Tensor, held_target: torch.Tensor,
                   num_given: int, num_target: int) -> tuple[float, float, float, float]:
    """Held-out cross-entropy (nats) and top-1 accuracy of `target` from its unigram and from `given`, with the
    Witten-Bell tables of `audiolm.eval.counts.witten_bell` counted on the training frames."""
    conditional, unigram = witten_bell(given, target, num_given, num_target)
    h = float(-unigram[held_target].log().mean())
    h_given = float(-conditional[held_given, held_target].log().mean())
    acc = float((held_target == unigram.argmax()).double().mean())
    acc_given = float((conditional.argmax(1)[held_given] == held_target).double().mean())
    return h, h_given, acc, acc_given


def context_probe(ids: torch.Tensor, codes: torch.Tensor, held_ids: torch.Tensor, held_codes: torch.Tensor, num_ids: int,
                  num_codes: int, steps: int, seed: int = 0) -> tuple[float, float]:
    """Held-out cross-entropy (nats) and accuracy of the code at each frame from the ids around it: embedding, three
    dilated convolutions (kernel 5, dilations 1, 2, 4: 29 frames of context), a linear head; trained on random 1,000-frame
    chunks of the first 90 % of the training frames, and stopped early on the last 10 % (checked every 25 steps)."""
    torch.manual_seed(seed)
    width = 64
    probe = nn.Sequential(nn.Embedding(num_ids, width), Transpose(),
                          *(m for d in (1, 2, 4) for m in (nn.Conv1d(width, width, 5, padding=2 * d, dilation=d), nn.GELU())),
                          Transpose(), nn.Dropout(0.1), nn.Linear(width, num_codes))
    optimizer = torch.optim.AdamW(probe.parameters(), lr=1e-3, weight_decay=0.05)
    generator = torch.Generator().manual_seed(seed)
    cut, chunk = int(0.9 * len(ids)), 1000
    stop_ids, stop_codes, ids, codes = ids[cut:], codes[cut:], ids[:cut], codes[:cut]

    def score(x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
        probe.eval()
        with torch.no_grad():
            logits = probe(x[None])[0]
        probe.train()
        return float(F.cross_entropy(logits, y)), float((logits.argmax(-1) == y).double().mean())

    best, state = float("inf"), None
    for step in tqdm(range(1, steps + 1), desc="probe", leave=False):
        starts = torch.randint(0, len(ids) - chunk, (16,), generator=generator)
        x = torch.stack([ids[s:s + chunk] for s in starts])
        y = torch.stack([codes[s:s + chunk] for s in starts])
        loss = F.cross_entropy(probe(x).flatten(0, 1), y.flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 25 == 0 or step == steps:
            ce = score(stop_ids, stop_codes)[0]
            if ce < best:
                best, state = ce, {k: v.clone() for k, v in probe.state_dict().items()}
    probe.load_state_dict(state)
    return score(held_ids, held_codes)


class Transpose(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.transpose(1, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, action="append", metavar="[LABEL=]FOLDER", help="a codec folder; repeat to compare")
    parser.add_argument("--tokenizer", default="models/speech/semantic", help="the semantic tokenizer folder")
    parser.add_argument("--manifest", required=True, help="its train split gives the counts, --split is scored")
    parser.add_argument("--split", default="test")
    parser.add_argument("--train-hours", type=float, default=1.0)
    parser.add_argument("--clips", type=int, default=128, help="held-out clips (each speaker in turn)")
    parser.add_argument("--max-seconds", type=float, default=8.0)
    parser.add_argument("--probe-steps", type=int, default=300, help="training steps of the context probe (0: none)")
    parser.add_argument("--name", default="level1")
    args = parser.parse_args()

    torch.set_num_threads(max(1, (os.cpu_count() or 1)))
    tokenizer = SemanticTokenizer.load(args.tokenizer).eval()
    codecs = {}
    for i, given in enumerate(args.model):
        label, _, folder = given.rpartition("=")
        codecs[label or f"codec {i + 1}"] = Codec.load(folder).for_inference()
    rate = tokenizer.sample_rate
    train = AudioClips(args.manifest, rate, "train", max_hours=args.train_hours, progress=True)
    train_clips = [torch.from_numpy(c.astype("float32") / 32767)[None, None] for c in train.clips]
    held = AudioClips(args.manifest, rate, args.split).fixed(args.clips, int(args.max_seconds * rate))

    rows, results = [], {}
    for label, codec in codecs.items():
        codes, ids = aligned_frames(codec, tokenizer, train_clips)
        held_codes, held_ids = aligned_frames(codec, tokenizer, held)
        K, V = codec.config.codebook_size, tokenizer.codebook_size
        h_id, h_id_code, acc_id, acc_id_code = conditional_ce(codes, ids, held_codes, held_ids, K, V)
        h_code, h_code_id, acc_code, acc_code_id = conditional_ce(ids, codes, held_ids, held_codes, V, K)
        probe_ce, probe_acc = (context_probe(ids, codes, held_ids, held_codes, V, K, args.probe_steps) if args.probe_steps
                               else (float("nan"), float("nan")))
        used = int(torch.bincount(held_codes, minlength=K).gt(0).sum())
        results[label] = {"train_frames": len(codes), "held_frames": len(held_codes), "H_id": h_id, "H_id_given_code": h_id_code,
                          "acc_id_given_code": acc_id_code, "H_code": h_code, "H_code_given_id": h_code_id,
                          "acc_code_given_id": acc_code_id, "probe_ce": probe_ce, "probe_accuracy": probe_acc,
                          "codes_used": used, "acc_id_unigram": acc_id, "acc_code_unigram": acc_code}
        rows.append(f"| {label} | {used} | {h_id:.2f} | {h_id_code:.2f} | {h_id - h_id_code:.2f} | {100 * acc_id_code:.1f} | "
                    f"{h_code:.2f} | {h_code_id:.2f} | {h_code - h_code_id:.2f} | {100 * acc_code_id:.1f} | {probe_ce:.2f} | "
                    f"{100 * probe_acc:.1f} |")
        print(rows[-1], flush=True)

    seconds = sum(c.shape[-1] for c in held) / rate
    lines = [
        f"# What the first codec level shares with the semantic ids ({args.name})", "",
        f"Tokenizer `{args.tokenizer}` ({tokenizer.codebook_size} ids, {tokenizer.frame_rate:g} Hz, repeated to the codec's "
        f"frames). Counts from {train.seconds / 3600:.2f} h of the train split of `{args.manifest}`; scored on {len(held)} "
        f"clips ({seconds:.0f} s) of its `{args.split}` split (held-out speakers), each speaker in turn. Witten-Bell smoothing; "
        f"cross-entropies in nats a frame; {os.cpu_count()} CPU cores, "
        f"{platform.machine()}, torch {torch.__version__}.", "",
        "| codec | level-1 codes used | H(id) | H(id \\| code) | shared | id from code (acc. %) | H(code) | "
        "H(code \\| id) | shared | code from id (acc. %) | code from ids around (nats) | (acc. %) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|", *rows, "",
        "`shared` is the drop in cross-entropy that knowing the other token brings (an estimate of their mutual "
        "information, in nats; the two columns differ by the estimators' smoothing). `code from id` is the accuracy "
        "a stage without context would reach on level 1; `code from ids around` is the probe's "
        f"({args.probe_steps} steps), what semantic context alone gives.", ""]
    text = "\n".join(lines)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    write_text(RESULTS / f"{args.name}.md", text)
    write_json(RESULTS / f"{args.name}.json", {"models": args.model, "tokenizer": args.tokenizer, "manifest": args.manifest,
                                                 "smoothing": "witten-bell", "results": results})


if __name__ == "__main__":
    main()
