"""The detector's corpus: originals against everything a bundle makes of them, split by the originals' speakers.

    build_detection_corpus(AudioLM.load("speech"), ["data/speech/manifest.jsonl", "data/real/manifest.jsonl"],
                           "data/detect", per_split={"train": 240, "valid": 24, "test": 48})

For each source manifest and split, `per_split[split]` utterances of at least `MIN_SECONDS` are taken from its speakers
in turn; utterance i
gives its original (label 0, the first `seconds` of it) and one generated item (label 1) of kind
`kinds[i % len(kinds)]`, as long as the original:
- `codec-1.5kbps`, `codec-3kbps`, `codec-6kbps`: the bundle's codec at 3, 6 and 12 levels (every generation's decoder);
- `continue-parallel`, `continue-ar`: a continuation of its first `prompt_seconds` (at most half of it; the prompt's
  part is codec-decoded too, so the whole item is generated) by the parallel or the autoregressive acoustic stage;
- `continue-acoustic-only`: the same by the acoustic-only baseline;
- `resynth`: new acoustic tokens for its semantic tokens;
- `generate`: unconditional audio (no speaker; it takes the split of the utterance whose turn it is).
Kinds the bundle cannot make are left out. Generated items carry no watermark: the classifier must find the generator's
own traces (the watermark is found by `audiolm.watermark`, separately).

Layout: `audio/<kind>/<source>__<id>.wav`, written atomically, skipped when present (a re-run after a kill goes on
where it stopped), then `manifest.jsonl` (+ per-split manifests): entries with the original's speaker and split and
`label`, `kind`, `source` and `original` (the utterance's id).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import torch
from tqdm import tqdm

from audiolm import limits
from audiolm.audio.io import load_audio, save_audio
from audiolm.data.manifest import Entry, read_manifest, write_split_manifests
from audiolm.errors import AudiolmError

CODEC_KINDS = {"codec-1.5kbps": 3, "codec-3kbps": 6, "codec-6kbps": 12}
LM_KINDS = ("continue-parallel", "continue-ar", "continue-acoustic-only", "resynth", "generate")
KINDS = (*CODEC_KINDS, *LM_KINDS)
SPLITS = ("train", "valid", "test")
MIN_SECONDS = 2 * limits.MIN_PROMPT_SECONDS  # shorter utterances are left out: a continuation needs a prompt and more


def available_kinds(model) -> list[str]:
    """The kinds `model` (an `AudioLM`) can make."""
    kinds = [k for k, levels in CODEC_KINDS.items() if levels <= model.codec.num_codebooks]
    stages = model.stages()
    kinds += [k for k, needs in (("continue-parallel", "parallel"), ("continue-ar", "coarse")) if needs in stages]
    if "parallel_acoustic" in stages or "acoustic" in stages:
        kinds.append("continue-acoustic-only")
    return kinds + ["resynth", "generate"]


def take_in_turn(entries: list[Entry], count: int) -> list[Entry]:
    """Up to `count` entries, one speaker after another (a manifest lists a speaker's clips together)."""
    by_speaker: dict[str, list[Entry]] = {}
    for entry in entries:
        by_speaker.setdefault(entry.speaker or "", []).append(entry)
    queues = list(by_speaker.values())
    order = [q[i] for i in range(max(map(len, queues), default=0)) for q in queues if i < len(q)]
    return order[:count]


def make(model, kind: str, wav: torch.Tensor, seed: int, prompt_seconds: float) -> torch.Tensor:
    """`kind` made from `wav [1, 1, L]` (16 kHz) by `model` -> `[L]`: every kind is as long as its original, so that
    length (or the zero padding of a short crop) tells the classifier nothing."""
    length = wav.shape[-1]
    seconds = length / model.sample_rate
    with torch.inference_mode():
        if kind in CODEC_KINDS:
            out = model.codec.decode(model.codec.encode(wav, CODEC_KINDS[kind]))[0, 0]
        elif kind.startswith("continue-"):
            prompt = wav[..., : round(min(prompt_seconds, max(limits.MIN_PROMPT_SECONDS, seconds / 2)) * model.sample_rate)]
            more = max(0.1, seconds - prompt.shape[-1] / model.sample_rate)
            acoustic = "ar" if kind == "continue-ar" else "auto"
            if kind == "continue-acoustic-only":
                acoustic = "parallel" if model.parallel_acoustic is not None else "ar"
            out = model.continue_audio(prompt, more, seed=seed, acoustic=acoustic, acoustic_only=kind == "continue-acoustic-only",
                                       watermark=False).wav[0, 0]
        elif kind == "resynth":
            out = model.resynthesize(wav, seed=seed, watermark=False).wav[0, 0]
        elif kind == "generate":
            out = model.generate(seconds, seed=seed, watermark=False).wav[0, 0]
        else:
            raise AudiolmError(f"unknown kind {kind!r}; known: {', '.join(KINDS)}")
    return torch.nn.functional.pad(out[:length], (0, max(0, length - out.shape[-1])))


def build_detection_corpus(model, manifests: Sequence[str | Path], out_dir: str | Path, per_split: dict[str, int],
                           kinds: Sequence[str] | None = None, seconds: float = 8.0, prompt_seconds: float = 3.0,
                           bundle: str = "", progress: bool = True) -> Path:
    """Write the corpus (see the module docstring) and return its manifest's path."""
    out_dir = Path(out_dir)
    kinds = list(kinds or available_kinds(model))
    unknown = sorted(set(kinds) - set(available_kinds(model)))
    if unknown:
        raise AudiolmError(f"the bundle cannot make {', '.join(unknown)}; it can make {', '.join(available_kinds(model))}")
    plan: list[tuple[str, Entry, Path, int]] = []  # (kind or "original", utterance, its manifest's folder, seed)
    for manifest in map(Path, manifests):
        entries = read_manifest(manifest)
        for split in SPLITS:
            usable = [e for e in entries if e.split == split and e.duration >= MIN_SECONDS]
            chosen = take_in_turn(usable, per_split.get(split, 0))
            for i, entry in enumerate(chosen):
                plan += [("original", entry, manifest, i), (kinds[i % len(kinds)], entry, manifest, i)]
    if not plan:
        raise AudiolmError(f"no utterances in the splits asked for ({per_split}) of {', '.join(map(str, manifests))}")
    records = []
    for kind, entry, manifest, seed in tqdm(plan, desc="detection corpus", unit="item", disable=not progress):
        source = manifest.parent.name
        name = f"{source}__{re.sub(r'[^A-Za-z0-9_.-]', '_', entry.id)}"
        path = out_dir / "audio" / kind / f"{name}.wav"
        if not path.exists():
            wav = load_audio(entry.audio_path(manifest.parent), model.sample_rate, duration=seconds)[None]  # [1, 1, L]
            out = wav[0, 0] if kind == "original" else make(model, kind, wav, seed, prompt_seconds)
            save_audio(path, out.float().cpu()[None], model.sample_rate)
        duration = _duration(path)
        generated = kind != "original"
        records.append(Entry(id=f"{source}/{entry.id}/{kind}", path=str(path.relative_to(out_dir)), duration=duration,
                             sample_rate=model.sample_rate, speaker=None if kind == "generate" else f"{source}/{entry.speaker or ''}",
                             split=entry.split, extra={"label": int(generated), "kind": kind, "source": source,
                                                       "original": entry.id, **({"bundle": bundle} if bundle else {})}))
    manifest_path = out_dir / "manifest.jsonl"
    write_split_manifests(manifest_path, records)
    return manifest_path


def _duration(path: Path) -> float:
    import soundfile as sf

    info = sf.info(str(path))
    return info.frames / info.samplerate
