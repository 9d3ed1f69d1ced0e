"""Training the self-supervised encoder (HuBERT-style masked prediction) through the shared loop.

Targets come from a semantic tokenizer with the encoder's frame rate: k-means of MFCCs
(`audiolm semantic fit-kmeans --encoder mfcc-25hz`) in the first iteration, k-means of an intermediate
layer of the previous iteration's encoder in the next. They are computed on the fly for each crop (`targets`),
or read from ids precomputed once per utterance (`targets_dir`, from `audiolm semantic targets`: a teacher as
slow as Whisper base, whose k-means a 50 Hz student learns, configs/semantic/student50.yaml); a crop then starts
at a whole target frame f and its targets are the utterance's ids f.., and frames past the utterance's end (the
zero padding of a short utterance) are never scored.
With `augment_p` > 0 the encoder hears a pitch-shifted / reverberant / noisy version of the crop while its
targets come from the clean one, which pushes speaker and room out of its features (as ContentVec does).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from audiolm.audio.augment import Augment, AugmentConfig
from audiolm.data.audio_shards import AudioStream, check_data_source, validation_clips
from audiolm.data.datasets import AudioClips, step_generator
from audiolm.errors import AudiolmError, FileError
from audiolm.semantic.ssl import SSLConfig, SSLEncoder, span_mask, ssl_loss
from audiolm.semantic.targets import PrecomputedTargets, TargetClips
from audiolm.semantic.tokenizer import SemanticTokenizer
from audiolm.train.loop import OptimizerConfig, TrainConfig


@dataclass(kw_only=True)
class SemanticDataConfig:
    manifest: str = ""
    audio_shards: str = ""  # or a folder from `audiolm data shar`, streamed (Libri-Light scale; audiolm/data/audio_shards.py)
    train_split: str = "train"
    valid_split: str = "valid"
    crop_seconds: float = 3.0
    max_hours: float | None = None  # manifest only
    shuffle_seconds: float = 3600.0  # audio_shards: audio a process shuffles crops from (115 MB an hour, twice: one block ahead)
    valid_clips: int = 16
    valid_seconds: float = 4.0

    def __post_init__(self) -> None:
        check_data_source(self)


@dataclass(kw_only=True)
class SemanticRunConfig:
    data: SemanticDataConfig = field(default_factory=SemanticDataConfig)
    model: SSLConfig = field(default_factory=SSLConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    optimizer: OptimizerConfig = field(default_factory=lambda: OptimizerConfig(lr=5e-4, betas=(0.9, 0.98), weight_decay=0.01))
    targets: str = ""  # a semantic tokenizer folder whose ids are the prediction targets (computed for each crop)
    targets_dir: str = ""  # or a folder of ids precomputed by `audiolm semantic targets` (manifest data only)
    augment_p: float = 0.0  # probability that an example's input is augmented (targets stay those of the clean audio)
    augment: AugmentConfig = field(default_factory=lambda: AugmentConfig(pitch_p=0.7, pitch_semitones=3.0, shift_p=0.0))


class SemanticTask:
    def __init__(self, config: SemanticRunConfig, targets: SemanticTokenizer | PrecomputedTargets,
                 train_clips: AudioClips | TargetClips | None = None, valid_clips: AudioClips | TargetClips | None = None,
                 progress: bool = False) -> None:
        self.config = config
        model = config.model
        if (abs(targets.frame_rate - model.frame_rate) > 1e-6 or targets.codebook_size != model.num_targets
                or targets.sample_rate != model.sample_rate):
            raise AudiolmError(f"targets {config.targets_dir or config.targets or '(given)'} are {targets.codebook_size} ids at "
                               f"{targets.frame_rate:g} Hz of {targets.sample_rate} Hz audio; the encoder wants {model.num_targets} at "
                               f"{model.frame_rate:g} Hz of {model.sample_rate} Hz audio")
        self.targets = targets
        self.precomputed = isinstance(targets, PrecomputedTargets)  # then the clips are `TargetClips`: audio with its ids
        data = config.data
        self.frames = max(model.mask_length, round(data.crop_seconds * model.frame_rate))
        self.stream: AudioStream | None = None  # data.audio_shards: crops streamed from shards, no train_clips
        if self.precomputed:
            if data.audio_shards:
                raise AudiolmError("targets_dir needs data.manifest: audio streamed from shards has no precomputed targets")
            train_clips = train_clips or targets.clips(data.manifest, data.train_split, data.max_hours, progress)
            if valid_clips is None and data.valid_split:
                try:
                    valid_clips = targets.clips(data.manifest, data.valid_split, progress=progress)
                except FileError:  # unreadable audio, audio that changed since its targets were written
                    raise
                except AudiolmError:  # no targets of a validation split: validation falls back to training audio
                    valid_clips = None
        elif data.audio_shards:
            self.stream = AudioStream(data.audio_shards, data.train_split, model.sample_rate, self.frames * model.hop_length,
                                      config.train.seed, data.shuffle_seconds)
            valid_clips = valid_clips or validation_clips(data.audio_shards, data.valid_split, data.train_split, model.sample_rate,
                                                          data.valid_clips)
        else:
            train_clips = train_clips or AudioClips(data.manifest, model.sample_rate, data.train_split, data.max_hours, progress)
        self.train_clips = train_clips
        self.valid_clips = valid_clips
        if self.valid_clips is None and data.valid_split and not self.precomputed:
            try:
                self.valid_clips = AudioClips(data.manifest, model.sample_rate, data.valid_split, progress=progress)
            except AudiolmError:  # no validation split: validation falls back to training audio
                self.valid_clips = None
        self.encoder = SSLEncoder(model)
        if config.augment.shift_p:
            raise AudiolmError("augment.shift_p must be 0: a time shift would misalign the input and its targets")
        self.augment = Augment(config.augment, model.sample_rate) if config.augment_p > 0 else None

    def modules(self) -> dict[str, nn.Module]:
        return {"encoder": self.encoder}

    def optimizers(self) -> dict[str, tuple[list[str], OptimizerConfig]]:
        return {"encoder": (["encoder"], self.config.optimizer)}

    def _example(self, wav: torch.Tensor, generator: torch.Generator, augment: bool = False, ids: torch.Tensor | None = None,
                 valid: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """A batch from crops `wav [B, 1, L]`: span masks `[B, T]`, targets `[B, T]` (the tokenizer's on `wav`, or the
        precomputed `ids [B, T]`, whose frames past an utterance's end, `valid` False, are left out of the mask) and
        the input (augmented, with `augment`, after the targets were taken from the clean audio)."""
        model = self.config.model
        mask = span_mask(wav.shape[0], self.frames, model.mask_prob, model.mask_length, generator)
        if ids is None:
            targets = self.targets(wav)
        else:
            targets, mask = ids, mask & valid
            empty = ~mask.any(dim=1)  # every span fell in the padding: mask the first frames instead (no extra draw)
            mask[empty, : model.mask_length] = valid[empty, : model.mask_length]
        if augment and self.augment is not None:
            picked = torch.rand(wav.shape[0], generator=generator) < self.config.augment_p
            wav = torch.stack([self.augment(w, generator) if p else w for w, p in zip(wav, picked.tolist())])
        return {"wav": wav, "mask": mask, "targets": targets}

    def batch(self, step: int, start: int, stop: int) -> dict[str, torch.Tensor]:
        generator = step_generator(self.config.train.seed, step)
        if self.stream is not None:
            return self._streamed_example(self.stream.crops(stop - start), generator, start, stop)
        if self.precomputed:
            wav, ids, valid = self.train_clips.crops(self.config.train.batch_size, self.frames, generator)
            example = self._example(wav, generator, augment=True, ids=ids, valid=valid)
        else:
            wav = self.train_clips.crops(self.config.train.batch_size, self.frames * self.config.model.hop_length, generator)
            example = self._example(wav, generator, augment=True)
        return {k: v[start:stop] for k, v in example.items()}

    def _streamed_example(self, wav: torch.Tensor, generator: torch.Generator, start: int, stop: int) -> dict[str, torch.Tensor]:
        """`_example` for examples start..stop of the step's batch, `wav` `[stop - start, 1, L]` (this process's next crops):
        masks and augmentation draws are the whole batch's, cut, so micro-batches and processes draw different ones."""
        model, size = self.config.model, self.config.train.batch_size
        mask = span_mask(size, self.frames, model.mask_prob, model.mask_length, generator)[start:stop]  # [B, T]
        targets = self.targets(wav)
        if self.augment is not None:
            picked = (torch.rand(size, generator=generator) < self.config.augment_p)[start:stop].tolist()
            seeds = torch.randint(0, 2**31 - 1, (size,), generator=generator)[start:stop].tolist()  # one per example
            wav = torch.stack([self.augment(w, torch.Generator().manual_seed(seed)) if p else w for w, p, seed in zip(wav, picked, seeds)])
        return {"wav": wav, "mask": mask, "targets": targets}

    def data_state(self) -> dict | None:
        return self.stream.state() if self.stream else None

    def load_data_state(self, states: list[dict]) -> None:
        if self.stream:
            self.stream.load_state(states)

    def losses(self, batch: dict, models: dict[str, nn.Module], step: int) -> Iterator[tuple[str, torch.Tensor, dict[str, float]]]:
        logits = models["encoder"](batch["wav"], batch["mask"])  # [B, T, V]
        loss, accuracy = ssl_loss(logits, batch["targets"], batch["mask"])
        yield "encoder", loss, {"ssl/ce": loss.item(), "ssl/accuracy": accuracy.item()}

    @torch.no_grad()
    def validate(self, models: dict[str, nn.Module], step: int) -> dict[str, float]:
        encoder: SSLEncoder = models["encoder"]
        device = next(encoder.parameters()).device
        hop = self.config.model.hop_length
        source = self.valid_clips or self.train_clips
        if self.precomputed:
            clips = source.fixed(self.config.data.valid_clips, self.frames)  # [(wav [1, 1, L], ids [1, T])]
        else:
            clips = [(wav, None) for wav in source.fixed(self.config.data.valid_clips, self.frames * hop)]
        generator = torch.Generator().manual_seed(1234)  # the same masks at every validation
        total = {"ssl/ce": 0.0, "ssl/accuracy": 0.0}
        pad = torch.nn.functional.pad
        for wav, ids in clips:
            if ids is None:
                wav = wav[..., : wav.shape[-1] // hop * hop]  # whole frames
                example = self._example(pad(wav, (0, self.frames * hop - wav.shape[-1])), generator)
            else:  # ids of every frame, the last one's audio zero-padded as the teacher heard it
                valid = torch.arange(self.frames)[None] < ids.shape[1]  # [1, T]
                example = self._example(pad(wav, (0, self.frames * hop - wav.shape[-1])), generator,
                                        ids=pad(ids, (0, self.frames - ids.shape[1])), valid=valid)
            logits = encoder(example["wav"].to(device), example["mask"].to(device))
            loss, accuracy = ssl_loss(logits, example["targets"].to(device), example["mask"].to(device))
            total["ssl/ce"] += loss.item() / len(clips)
            total["ssl/accuracy"] += accuracy.item() / len(clips)
        return total

    def export(self, models: dict[str, nn.Module], run_dir: Path) -> None:
        models["encoder"].save(run_dir / "model")


def resolve_preset(preset: str) -> Path:
    """A semantic preset name (tiny, small, base) or a path to a YAML file."""
    from audiolm.formats.config import resolve_preset as resolve

    return resolve(preset, "semantic")


def train_semantic(preset: str, run_dir: str | Path, overrides: list[str] | None = None, progress: bool = True,
                   stop_after: int | None = None):
    """Train (or resume) the self-supervised encoder from a preset and `key=value` overrides into `run_dir`;
    the final encoder lands in `run_dir/model/`. `model.num_targets` follows the targets' K (a tokenizer's, or that of
    precomputed targets)."""
    from audiolm.formats.config import load_config
    from audiolm.train.loop import train

    config = load_config(SemanticRunConfig, resolve_preset(preset), overrides)
    if not config.data.manifest and not config.data.audio_shards:
        raise AudiolmError("no training data: pass --manifest or --audio-shards (or data.manifest=..., data.audio_shards=...)")
    if config.targets and config.targets_dir:
        raise AudiolmError("targets and targets_dir both given: the targets are a tokenizer's (--targets) or precomputed ones "
                           "(--targets-dir), not both")
    if not config.targets and not config.targets_dir:
        raise AudiolmError("no targets: pass --targets, a tokenizer folder from `audiolm semantic fit-kmeans`, or --targets-dir, "
                           "ids from `audiolm semantic targets`")
    targets = PrecomputedTargets.load(config.targets_dir) if config.targets_dir else SemanticTokenizer.load(config.targets)
    config.model = SSLConfig(**{**asdict(config.model), "num_targets": targets.codebook_size})
    torch.manual_seed(config.train.seed)  # the model's initial weights
    task = SemanticTask(config, targets, progress=progress)
    return train(task, config.train, run_dir, {"kind": "semantic-run", **asdict(config)}, progress=progress, stop_after=stop_after)
