"""The markdown report of `audiolm eval` from its results dict (see `bundle_eval.py`)."""

from __future__ import annotations

import math
from pathlib import Path

from audiolm.formats.atomic import atomic_path


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def _continuation(section: dict) -> list[str]:
    speed = ", ".join(f"{k} {v:.2f} s" for k, v in section["generation_seconds_per_second"].items())
    lines = [f"## Continuation\n\n{section['prompts']} held-out prompts, each continued by {section['seconds']:g} s "
             f"(generation time per generated second: {speed}).\n"]
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
    lines += ["", f"Resynthesis keeps the words and draws a new voice: speaker similarity of resynthesis to the original "
              f"{section['resynthesis_speaker_similarity']:.3f}.\n", "Codec reconstruction quality on the same clips:\n",
              "| codec | PESQ-wb | STOI |", "|---|---|---|"]
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
    levels = len(next(iter(systems.values()))["ce_per_level"])
    lines = [f"## Coarse LM\n\nCross-entropy (nats) of the coarse tokens of {section['utterances']} held-out utterances (their first "
             f"window), per level; a uniform guess costs ln {section['codebook_size']} = {math.log(section['codebook_size']):.2f}. "
             "The full model reads the true semantic tokens; the acoustic-only baseline does not.\n",
             "| model | mean | " + " | ".join(f"level {k + 1}" for k in range(levels)) + " | top-1 accuracy, level 1 |",
             "|---" * (levels + 3) + "|"]
    for name, row in systems.items():
        lines.append(f"| {name} | {row['ce']:.3f} | " + " | ".join(f"{x:.3f}" for x in row["ce_per_level"])
                     + f" | {_pct(row['accuracy_per_level'][0])} |")
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
