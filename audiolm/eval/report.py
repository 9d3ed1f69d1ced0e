"""The markdown report of `audiolm eval` from its results dict (see `bundle_eval.py`)."""

from __future__ import annotations

import math
from pathlib import Path

from audiolm.formats.atomic import atomic_path

STAGE_NAMES = {"ar": "AR", "parallel": "parallel"}


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def _speed(section: dict) -> list[str]:
    """Time and the acoustic stage's forward passes per generated second, per system."""
    stages = section.get("acoustic", {})
    lines = ["| system | acoustic stage | s per generated s | acoustic forward passes per generated s |", "|---|---|---|---|"]
    for name, rate in section["generation_seconds_per_second"].items():
        passes = section.get("forward_passes_per_second", {}).get(name)
        shown = "-" if passes is None else f"{passes:.1f}"
        lines.append(f"| {name} | {STAGE_NAMES.get(stages.get(name, ''), '-')} | {rate:.2f} | {shown} |")
    return lines + ["", "A forward pass of the AR stage is one KV-cached step of one token (one per acoustic token); "
                    "one of the parallel stage reads a whole window.\n"]


def _continuation(section: dict) -> list[str]:
    lines = [f"## Continuation\n\n{section['prompts']} held-out prompts, each continued by {section['seconds']:g} s; "
             "every system continues the same prompts from the same seeds. Generation time (the semantic stage included) "
             "per generated second:\n", *_speed(section)]
    speaker = section.get("speaker")
    if speaker:
        first = next(iter(speaker.values()))
        lines += [f"Speaker identification (resemblyzer): each clip is assigned to the most similar of {first['speakers']} held-out "
                  f"speakers, enrolled from other utterances (chance {_pct(first['chance'])}); the paper's Table III reports this "
                  "for continuations (AudioLM 92.6 %). Similarity is the cosine of speaker vectors.\n",
                  "| audio | speaker accuracy | similarity to own speaker | to other speakers | similarity to own prompt | "
                  "to other speakers' prompts | closer to own prompt |",
                  "|---|---|---|---|---|---|---|"]
        for name, row in speaker.items():
            label = "the prompts themselves (real speech)" if name == "prompt" else f"continuation, {name} model"
            tail = (f"{row['own_prompt']:.3f} | {row['other_speakers']:.3f} | {_pct(row['closer_to_own'])}" if "own_prompt" in row
                    else "- | - | -")
            lines.append(f"| {label} | {_pct(row['accuracy'])} | {row['similarity_own']:.3f} | {row['similarity_other']:.3f} | {tail} |")
        lines.append("")
    if section.get("heard"):
        lines.append("What Whisper hears in the continuations (the new audio only) of the example prompts:\n")
        lines += [f"- prompt {h['prompt']}, {h['system']} model: \"{h['heard'] or '(nothing)'}\" (the prompt's utterance: "
                  f"\"{h['prompt_text']}\")" for h in section["heard"]]
        lines.append("")
    return lines


def _intelligibility(section: dict) -> list[str]:
    lines = [f"## Intelligibility and acoustic resynthesis\n\n{section.get('asr', 'Whisper tiny.en')} word error rate on "
             f"{section['utterances']} held-out "
             "utterances (the paper's Table II: original 2.5 %, SoundStream reconstruction 3.3 %, AudioLM resynthesis 6.0 %).\n",
             "| audio | WER |", "|---|---|"]
    lines += [f"| {name} | {_pct(wer)} |" for name, wer in section["wer"].items()]
    similarity = section["resynthesis_speaker_similarity"]
    similarity = similarity if isinstance(similarity, dict) else {"resynthesis": similarity}  # reports before both stages
    lines += ["", "Resynthesis keeps the words and draws a new voice: speaker similarity of resynthesis to the original "
              + "; ".join(f"{k}: {v:.3f}" if len(similarity) > 1 else f"{v:.3f}" for k, v in similarity.items()) + ".\n"]
    if "generation_seconds_per_second" in section:
        lines += ["Resynthesis time (the acoustic stage and the codec) per generated second:\n", *_speed(section)]
    lines += ["Codec reconstruction quality on the same clips:\n", "| codec | PESQ-wb | STOI |", "|---|---|---|"]
    lines += [f"| {name} | {row['pesq_wb']:.2f} | {row['stoi']:.3f} |" for name, row in section["codec"].items()]
    lines += ["", "What Whisper heard (first utterances):\n"]
    for example in section["examples"]:
        lines += [f"- **text**: {example['text']}"] + [f"  - {k}: {v or '(nothing)'}" for k, v in example.items() if k != "text"]
    lines.append("")
    return lines


def _semantic_lm(section: dict) -> list[str]:
    return [f"## Semantic LM\n\nPerplexity of {section['tokens']} held-out semantic tokens ({section['utterances']} utterances, "
            f"vocabulary {section['vocab']}): **{section['perplexity']:.2f}**, against {section['unigram_perplexity']:.2f} for their own "
            "unigram distribution (an optimistic baseline: it is fitted on the very tokens it scores).\n"]


def _coarse_lm(section: dict) -> list[str]:
    systems = section["systems"]
    parallel = any(row.get("acoustic") == "parallel" for row in systems.values())
    ar = any(row.get("acoustic", "ar") == "ar" for row in systems.values())
    levels = max(len(row["ce_per_level"]) for row in systems.values())
    lines = [f"## {'Acoustic LMs' if parallel else 'Coarse LM'}\n\nCross-entropy (nats) of the acoustic tokens of "
             f"{section['utterances']} held-out utterances (their first window), per level, teacher-forced; a uniform guess costs "
             f"ln {section['codebook_size']} = {math.log(section['codebook_size']):.2f}. The full models read the true semantic "
             "tokens; the acoustic-only baselines do not."
             + (" The AR coarse LM predicts each token from the tokens before it (next-token); the parallel stage predicts the "
                "masked codes of one level from the unmasked ones and the levels below (masked, as in its training), so the two "
                "objectives are not the same measure: compare each stage with its own baseline." if parallel and ar else "")
             + (" Shuffled: the parallel stage's level-1 cross-entropy with the semantic tokens shuffled in time (how much "
                "it reads them)." if parallel else "") + "\n",
             "| model | objective | mean | " + " | ".join(f"level {k + 1}" for k in range(levels))
             + " | top-1 accuracy, level 1 |" + (" level 1, semantic tokens shuffled |" if parallel else ""),
             "|---" * (levels + 4 + parallel) + "|"]
    for name, row in systems.items():
        cells = [f"{x:.3f}" for x in row["ce_per_level"]] + ["-"] * (levels - len(row["ce_per_level"]))
        shuffled = (f" {row['shuffled_ce_1']:.3f} |" if "shuffled_ce_1" in row else " - |") if parallel else ""
        lines.append(f"| {name} | {row.get('objective', 'next-token')} | {row['ce']:.3f} | " + " | ".join(cells)
                     + f" | {_pct(row['accuracy_per_level'][0])} |" + shuffled)
    return lines + [""]


def _minimal_pairs(section: dict) -> list[str]:
    lines = ["## Minimal pairs\n\nThe semantic LM prefers the real member of a pair when its tokens are more likely (sum of "
             "log-probabilities; per-token mean as a length-fair variant); chance is 50 %. AudioLM: sWUGGY 71.5 %, sBLIMP 64.7 %. "
             f"Voices: {', '.join(section['voices'])}.\n",
             "| pairs | count | accuracy | accuracy (per token) | examples |", "|---|---|---|---|---|"]
    for kind in ("lexical", "syntactic"):
        if kind in section:
            row = section[kind]
            examples = "; ".join(f"{a} / {b}" for a, b in row["examples"])
            lines.append(f"| {kind} | {row['pairs']} | {_pct(row['accuracy'])} | {_pct(row['accuracy_per_token'])} | {examples} |")
    lines.append("")
    return lines


def _codec(section: dict) -> list[str]:
    lines = [f"## Codec\n\nLog-mel L1 distance of the codec's reconstructions of {section['clips']} held-out clips (lower is better).\n",
             "| codec | mel distance |", "|---|---|"]
    return lines + [f"| {name} | {value:.3f} |" for name, value in section["mel_distance"].items()] + [""]


def write_report(results: dict, figures: list[tuple[str, str]], path: str | Path) -> Path:
    """Write the markdown report (figures are PNG names next to it)."""
    lines = [f"# Evaluation of `{results['models']}`\n",
             f"Held-out split `{results['config']['split']}` of `{results['manifest']}`; {results.get('minutes', 0):.1f} min on CPU. "
             "Regenerate with `audiolm eval` (see the README).\n"]
    stages = results.get("acoustic_stages", {})
    if len(stages) > 1:
        lines += ["The bundle has two acoustic stages, each measured on the same prompts, utterances and seeds; a system's "
                  "name says which made its acoustic tokens:\n"]
        lines += [f"- **{label}**: {row['model']}, {row['levels']} codec levels"
                  + (f", level iterations {','.join(map(str, row['iterations']))}" if "iterations" in row else "")
                  + ("; with its acoustic-only baseline" if row["baseline"] else "") for label, row in stages.items()]
        lines.append("")
    for key, render in (("continuation", _continuation), ("intelligibility", _intelligibility), ("semantic_lm", _semantic_lm),
                        ("coarse_lm", _coarse_lm),
                        ("minimal_pairs", _minimal_pairs), ("codec", _codec)):
        if key in results:
            lines += render(results[key])
    if figures:
        lines.append("## Spectrograms\n\nExample audio is in `examples/`.\n")
        lines += [f"**{title}**\n\n![{title}]({name})\n" for title, name in figures]
    with atomic_path(path) as tmp:
        Path(tmp).write_text("\n".join(lines))
    return Path(path)
