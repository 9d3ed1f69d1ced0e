"""One command from nothing to a model bundle: corpus -> codec -> semantic encoder -> tokenizer -> shards ->
three stage LMs (+ the acoustic-only baseline) -> bundle -> its generated-speech detector.

    audiolm recipe speech --workdir runs/recipe-speech -o models/speech [key=value ...]

Every step is resumable: a finished step (its output's commit marker exists: `config.json`, written last, or the
shards' `index.json`) is skipped, a training step resumes from
its latest checkpoint, and each training step runs at most its `*_minutes` budget per invocation; when a budget
runs out the recipe stops and says so, and running the same command again goes on from there. An existing
codec or tokenizer can be reused (`codec=models/speech/codec`) instead of trained.

The detector (audiolm/detector) learns the traces of the bundle's own models, so it belongs to the parts it was
trained on: the last step builds a detection corpus (the corpus's utterances against what the bundle makes of them,
`detector_train` / `detector_valid` / `detector_test` utterances of each split), trains the detector on it and puts it
in the bundle as `detector/` (fp16), recording the parts' fingerprints (`part_fingerprints`) in its config.json. A
later run keeps it while the bundle's parts are the same and otherwise removes it and starts the step over (corpus
and training: `<workdir>/detector/parts.json` says which parts they belong to). `detector=false` skips the step.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from audiolm.errors import AudiolmError, FileError

KINDS = ("speech", "piano")


@dataclass(kw_only=True)
class RecipeConfig:
    kind: str = "speech"
    hours: float = 3.0  # corpus size
    manifest: str = ""  # an existing corpus manifest to train on; empty: synthesize `hours` of audio in the workdir
    workers: int = 2
    codec: str = ""  # a codec folder to reuse; empty: train one
    codec_preset: str = "small"
    codec_minutes: float = 60.0
    tokenizer: str = ""  # a semantic tokenizer folder to reuse; empty: train the encoder and fit one
    semantic_preset: str = "small"
    semantic_minutes: float = 60.0
    target_clusters: int = 100  # k-means of MFCCs: the first HuBERT iteration's targets
    tokenizer_layer: int = 0  # benchmarks/results/semantic-50hz.md: layer 0, K=100, interleaved to 50 Hz gave the lowest ABX across
    tokenizer_clusters: int = 100
    tokenizer_interleave: int = 2  # tokens at this multiple of the encoder's 25 Hz (audiolm/semantic/interleave.py)
    lm_preset: str = "small"
    lm_minutes: float = 30.0  # per stage
    acoustic: str = "ar"  # the acoustic stage(s): "ar" (the paper's coarse + fine LMs), "parallel" (SoundStorm) or "both"
    parallel_preset: str = "parallel"  # the parallel stage's preset (its levels: stage.num_coarse + stage.num_fine)
    parallel_acoustic_overrides: tuple[str, ...] = ()  # extra key=value for its acoustic-only baseline, e.g. "model.dim=192"
    acoustic_only: bool = True  # also train each acoustic stage's acoustic-only baseline
    fine_lm: bool = False  # our codec's fine levels are unpredictable (an LM's samples decode no better than random
    # codes, worse than the coarse levels alone: benchmarks/results/fine_stage.md), so by default the bundle decodes coarse only
    overrides: tuple[str, ...] = ()  # extra key=value for every LM stage, e.g. "train.steps=2000"
    detector: bool = True  # train the bundle's generated-speech detector (again whenever the bundle's parts change)
    detector_train: int = 240  # utterances of each split of the corpus, each giving an original and one generated item
    detector_valid: int = 24
    detector_test: int = 48
    detector_steps: int = 2000
    detector_minutes: float = 30.0
    detector_overrides: tuple[str, ...] = ()  # extra key=value for the detector's training, e.g. "train.batch_size=16"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if self.acoustic not in ("ar", "parallel", "both"):
            raise ValueError(f"acoustic must be ar, parallel or both, got {self.acoustic!r}")
        if min(self.detector_train, self.detector_valid, self.detector_test) < 0:
            raise ValueError("detector_train, detector_valid and detector_test must be at least 0")
        if self.detector and (self.detector_train < 1 or self.detector_steps < 1):
            raise ValueError("detector_train and detector_steps must be at least 1 (or detector=false)")


class BudgetSpent(AudiolmError):
    """A training step used its time budget before finishing: run the recipe again to resume."""


def _trained(run_dir: Path, train: Callable[[], object], what: str, log: Callable[[str], None]) -> Path:
    """Run (or resume) a training step unless it is finished; its final model is `run_dir/model` (complete once its
    config.json, written last, exists: a kill mid-export leaves the weights alone, and the trainer exports again)."""
    if not (run_dir / "model" / "config.json").is_file():
        log(f"{what}: training (or resuming) in {run_dir}")
        train()
        if not (run_dir / "model" / "config.json").is_file():
            raise BudgetSpent(f"{what}: this invocation's time budget is spent (checkpoint in {run_dir}); run the recipe again to go on")
    return run_dir / "model"


def run_recipe(config: RecipeConfig, workdir: str | Path, output: str | Path, progress: bool = True,
               log: Callable[[str], None] = print) -> Path:
    from audiolm.data.shards import tokenize_corpus
    from audiolm.generation.bundle import write_bundle
    from audiolm.semantic.tokenizer import fit_from_manifest
    from audiolm.train.codec import train_codec
    from audiolm.train.lm import train_lm
    from audiolm.train.semantic import train_semantic

    workdir = Path(workdir)
    manifest = Path(config.manifest) if config.manifest else _corpus(config, workdir / "data", progress, log)
    if not manifest.is_file():
        raise FileError(manifest, "no such corpus manifest")

    codec = Path(config.codec) if config.codec else None
    if codec is None:
        run = workdir / "codec"
        codec_model = _trained(run, lambda: train_codec(config.codec_preset, run, [f"data.manifest={manifest.resolve()}",
                                                                               f"train.stop_after_minutes={config.codec_minutes}"],
                                                        progress=progress), "codec", log)
        codec = codec_model

    tokenizer = Path(config.tokenizer) if config.tokenizer else workdir / "tokenizer"
    if not (tokenizer / "config.json").is_file():
        targets = workdir / "semantic-targets"
        if not (targets / "config.json").is_file():
            log(f"semantic targets: k-means (K={config.target_clusters}) of MFCCs")
            fit_from_manifest("mfcc-25hz", 0, config.target_clusters, manifest, progress=progress).save(targets)
        run = workdir / "semantic"
        _trained(run, lambda: train_semantic(config.semantic_preset, run, [f"data.manifest={manifest.resolve()}",
                                                                          f"targets={targets.resolve()}",
                                                                          f"train.stop_after_minutes={config.semantic_minutes}"],
                                             progress=progress), "semantic encoder", log)
        log(f"tokenizer: layer {config.tokenizer_layer}, K={config.tokenizer_clusters}, interleave {config.tokenizer_interleave}")
        fit_from_manifest(str(run), config.tokenizer_layer, config.tokenizer_clusters, manifest, progress=progress,
                          interleave=config.tokenizer_interleave).save(tokenizer)

    shards = workdir / "shards"
    if not (shards / "index.json").is_file():
        log("tokenize: semantic ids and codec codes into shards")
        summary = tokenize_corpus(manifest, tokenizer, codec, shards, workers=config.workers, progress=progress)
        if not summary["complete"]:
            raise BudgetSpent(f"tokenize: {shards} is incomplete; run the recipe again")

    stages = {"semantic": ("semantic", config.lm_preset, [])}  # part name -> (stage, preset, overrides)
    if config.acoustic in ("ar", "both"):
        stages["coarse"] = ("coarse", config.lm_preset, [])
        if config.fine_lm:
            stages["fine"] = ("fine", config.lm_preset, [])
        if config.acoustic_only:
            stages["acoustic"] = ("coarse", config.lm_preset, ["stage.use_semantic=false"])
    if config.acoustic in ("parallel", "both"):
        stages["parallel"] = ("parallel", config.parallel_preset, [])
        if config.acoustic_only:
            stages["parallel_acoustic"] = ("parallel", config.parallel_preset, ["stage.use_semantic=false",
                                                                               *config.parallel_acoustic_overrides])
    models = {}
    for name, (stage, preset, extra) in stages.items():
        run = workdir / f"lm-{name.replace('_', '-')}"
        overrides = [f"data.shards={shards.resolve()}", f"train.stop_after_minutes={config.lm_minutes}", *extra, *config.overrides]
        models[name] = _trained(run, lambda run=run, stage=stage, preset=preset, overrides=overrides: train_lm(
            preset, stage, run, overrides, progress=progress), f"{name.replace('_', ' ')} LM", log)
    write_bundle(output, tokenizer, codec, models)
    log(f"bundle written to {output}")
    _detector(config, manifest, Path(output), workdir / "detector", progress, log)
    return Path(output)


def _detector(config: RecipeConfig, manifest: Path, bundle: Path, folder: Path, progress: bool, log: Callable[[str], None]) -> None:
    """Make `bundle/detector/` a detector trained on the bundle's present parts (see the module docstring); `folder`
    holds its detection corpus and training run."""
    import torch

    from audiolm.detector.data import build_detection_corpus
    from audiolm.detector.model import Detector
    from audiolm.formats.atomic import write_json
    from audiolm.formats.json_file import read_json
    from audiolm.generation.bundle import detector_parts, part_fingerprints
    from audiolm.generation.pipeline import AudioLM
    from audiolm.train.detector import train_detector

    parts = part_fingerprints(bundle)
    bundled = bundle / "detector"
    recorded = detector_parts(bundled)  # None: no detector, or one that names no parts (`audiolm bundle --detector`)
    if recorded == parts:
        return
    if recorded is not None or (config.detector and bundled.exists()):
        shutil.rmtree(bundled)
        log(f"detector: removed {bundled} (trained on other parts of the bundle)")
    if not config.detector:
        return
    if (folder / "parts.json").is_file() and read_json(folder / "parts.json") != parts:
        log(f"detector: the bundle's parts changed; starting its corpus and training over in {folder}")
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / "parts.json", parts)
    corpus = folder / "corpus" / "manifest.jsonl"
    if not corpus.is_file():
        log(f"detector corpus: {config.detector_train} / {config.detector_valid} / {config.detector_test} utterances of the "
            "train / valid / test splits and what the bundle makes of each")
        build_detection_corpus(AudioLM.load(bundle), [manifest], corpus.parent, {"train": config.detector_train, "valid":
                               config.detector_valid, "test": config.detector_test}, bundle=str(bundle), progress=progress)
    run = folder / "run"
    overrides = [f"data.manifest={corpus.resolve()}", f"train.steps={config.detector_steps}",
                 f"train.stop_after_minutes={config.detector_minutes}", *config.detector_overrides]
    trained = _trained(run, lambda: train_detector(None, run, overrides, progress=progress), "detector", log)
    partial = bundle / "detector.partial"  # written whole, then renamed: never half a detector in the bundle
    if partial.exists():
        shutil.rmtree(partial)
    Detector.load(trained).save(partial, dtype=torch.float16, metadata={"parts": parts, "run": str(run.resolve())})
    partial.rename(bundled)
    log(f"detector: trained on the bundle's parts, in {bundled}")


def _corpus(config: RecipeConfig, folder: Path, progress: bool, log: Callable[[str], None]) -> Path:
    """Build (or resume) the synthetic corpus; its manifest."""
    if config.kind == "speech":
        from audiolm.data.synth_speech import SpeechCorpusConfig, build_speech_corpus

        log(f"corpus: {config.hours:g} h of synthetic speech")
        build_speech_corpus(folder, SpeechCorpusConfig(hours=config.hours), workers=config.workers, progress=progress)
    else:
        from audiolm.data.synth_piano import PianoCorpusConfig, build_piano_corpus

        log(f"corpus: {config.hours:g} h of rendered piano")
        build_piano_corpus(folder, PianoCorpusConfig(hours=config.hours), workers=config.workers, progress=progress)
    return folder / "manifest.jsonl"
