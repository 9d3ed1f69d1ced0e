"""Training the codec: reconstruction (multi-scale mel), commitment, and, after `disc_start_step`,
hinge adversarial + feature-matching losses against STFT and waveform discriminators.

Quantizer dropout: each example of a batch draws its number of levels (1..K, uniformly, with
probability `quantizer_dropout`), from the step's generator, so one model serves every bitrate.
With `augment_p` > 0 that share of the training crops goes through audiolm.audio.augment (pitch shift, reverb,
noise, gain, each drawn on its own with its `augment.*_p`) before the codec hears it, and the codec reconstructs the augmented
crop: more voices and rooms than the corpus holds, against overfitting its speakers.
With `distill_tokenizer` and `losses.distill` > 0, the first level also learns to predict that semantic tokenizer's
ids (codec/distill.py): its head trains with the codec, lives in the checkpoints ("distill") and is left out of the
exported codec; validation reports the ids' top-1 accuracy from the first level alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from audiolm.audio.augment import Augment, AugmentConfig
from audiolm.codec.discriminators import DiscriminatorConfig, Discriminators
from audiolm.codec.distill import SemanticDistillation, distill_head
from audiolm.codec.losses import (
    CompressedComplexSTFTLoss,
    LossWeights,
    MultiResolutionSTFTLoss,
    MultiScaleMelLoss,
    feature_matching_loss,
    hinge_discriminator_loss,
    hinge_generator_loss,
)
from audiolm.codec.model import TRAINING_ONLY, Codec, CodecConfig
from audiolm.data.audio_shards import AudioStream, check_data_source, validation_clips
from audiolm.data.datasets import AudioClips, step_generator
from audiolm.errors import AudiolmError
from audiolm.train.loop import OptimizerConfig, TrainConfig


@dataclass(kw_only=True)
class CodecDataConfig:
    manifest: str = ""  # a manifest whose entries carry splits (e.g. from `audiolm data synth-speech`)
    audio_shards: str = ""  # or a folder from `audiolm data shar`, streamed (Libri-Light scale; audiolm/data/audio_shards.py)
    train_split: str = "train"
    valid_split: str = "valid"
    crop_seconds: float = 1.0
    max_hours: float | None = None  # manifest only
    shuffle_seconds: float = 3600.0  # audio_shards: audio a process shuffles crops from (115 MB an hour, twice: one block ahead)
    valid_clips: int = 8
    valid_seconds: float = 4.0

    def __post_init__(self) -> None:
        check_data_source(self)


@dataclass(kw_only=True)
class CodecRunConfig:
    data: CodecDataConfig = field(default_factory=CodecDataConfig)
    model: CodecConfig = field(default_factory=CodecConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    losses: LossWeights = field(default_factory=LossWeights)
    train: TrainConfig = field(default_factory=TrainConfig)
    codec_optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    discriminator_optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    quantizer_dropout: float = 1.0  # probability that an example uses a random number of levels
    init_from: str = ""  # a codec folder (model.safetensors + config.json) to start from, e.g. to continue the bundled one
    disc_start_step: int = 0  # adversarial training starts here (reconstruction-only warm-up before)
    decoder_only: bool = False  # freeze the encoder and codebooks (codes keep their meaning); with init_from, improves a decoder
    augment_p: float = 0.0  # probability that a training crop is augmented (the codec reconstructs the augmented crop)
    augment: AugmentConfig = field(default_factory=lambda: AugmentConfig(pitch_p=0.7, pitch_semitones=4.0, shift_p=0.0))
    distill_tokenizer: str = ""  # a semantic tokenizer folder whose ids the first level learns to predict (losses.distill)

    def __post_init__(self) -> None:
        if not 0.0 <= self.augment_p <= 1.0:
            raise ValueError(f"augment_p must be in [0, 1], got {self.augment_p}")
        if (self.losses.distill > 0) != bool(self.distill_tokenizer):
            raise ValueError("semantic distillation needs both losses.distill > 0 and distill_tokenizer=FOLDER")
        if self.losses.distill > 0 and self.decoder_only:
            raise ValueError("decoder_only freezes the encoder and codebooks: distillation has nothing to train")
        if self.train.strategy == "fsdp":  # two optimizers, and EMA codebooks (buffers) that only DDP keeps in sync
            raise ValueError("train.strategy=fsdp: the codec (a GAN, with EMA codebooks) trains with train.strategy=ddp only")


class CodecTask:
    def __init__(self, config: CodecRunConfig, train_clips: AudioClips | None = None, valid_clips: AudioClips | None = None,
                 progress: bool = False) -> None:
        self.config = config
        data = config.data
        hop = config.model.hop_length
        self.crop = max(hop, round(config.data.crop_seconds * config.model.sample_rate / hop) * hop)
        self.stream: AudioStream | None = None  # data.audio_shards: crops streamed from shards, no train_clips
        if data.audio_shards:
            self.stream = AudioStream(data.audio_shards, data.train_split, config.model.sample_rate, self.crop, config.train.seed,
                                      data.shuffle_seconds)
            valid_clips = valid_clips or validation_clips(data.audio_shards, data.valid_split, data.train_split,
                                                          config.model.sample_rate, data.valid_clips)
        else:
            train_clips = train_clips or AudioClips(data.manifest, config.model.sample_rate, data.train_split, data.max_hours, progress)
        self.train_clips = train_clips
        self.valid_clips = valid_clips
        if self.valid_clips is None and data.valid_split:
            try:
                self.valid_clips = AudioClips(data.manifest, config.model.sample_rate, data.valid_split, progress=progress)
            except AudiolmError:  # no validation split: validation falls back to training audio
                self.valid_clips = None
        self.codec = Codec(config.model)
        self.adversarial = config.losses.adversarial > 0 or config.losses.feature_matching > 0
        self.discriminators = Discriminators(config.discriminator) if self.adversarial else None
        self.mel_loss = MultiScaleMelLoss(config.model.sample_rate)
        self.stft_loss = MultiResolutionSTFTLoss()
        self.complex_loss = CompressedComplexSTFTLoss()
        self.augment = Augment(config.augment, config.model.sample_rate) if config.augment_p > 0 else None
        self.distill, self.distill_head = None, None
        if config.distill_tokenizer:
            from audiolm.semantic.tokenizer import SemanticTokenizer

            self.distill = SemanticDistillation(SemanticTokenizer.load(config.distill_tokenizer), config.model.frame_rate,
                                                config.model.sample_rate)
            self.distill_head = distill_head(config.model.latent_dim, self.distill.num_ids)

    def modules(self) -> dict[str, nn.Module]:
        modules: dict[str, nn.Module] = {"codec": self.codec}
        if self.discriminators is not None:
            modules["discriminators"] = self.discriminators
        if self.distill_head is not None:
            modules["distill"] = self.distill_head
        return modules

    def optimizers(self) -> dict[str, tuple[list[str], OptimizerConfig]]:
        specs = {"codec": (["codec", "distill"] if self.distill_head is not None else ["codec"], self.config.codec_optimizer)}
        if self.discriminators is not None:
            specs["discriminators"] = (["discriminators"], self.config.discriminator_optimizer)
        return specs

    def batch(self, step: int, start: int, stop: int) -> dict[str, torch.Tensor]:
        generator = step_generator(self.config.train.seed, step)
        size = self.config.train.batch_size
        # streamed: this process's next crops (its own stream); in memory: the step's whole batch, cut below
        wav = self.stream.crops(stop - start) if self.stream else self.train_clips.crops(size, self.crop, generator)[start:stop]
        levels = self.config.model.num_codebooks
        drop = torch.rand(size, generator=generator) < self.config.quantizer_dropout
        random_levels = torch.randint(1, levels + 1, (size,), generator=generator)
        num_quantizers = torch.where(drop, random_levels, torch.full((size,), levels))
        if self.augment is not None:  # after the other draws: a run without augmentation sees the same batches as before
            picked = (torch.rand(size, generator=generator) < self.config.augment_p)[start:stop].tolist()
            seeds = torch.randint(0, 2**31 - 1, (size,), generator=generator)[start:stop].tolist()  # one per example
            wav = torch.stack([self.augment(w, torch.Generator().manual_seed(seed)) if p else w
                               for w, p, seed in zip(wav, picked, seeds)])  # this micro-batch's examples only
        return {"wav": wav, "num_quantizers": num_quantizers[start:stop]}

    def data_state(self) -> dict | None:
        return self.stream.state() if self.stream else None

    def load_data_state(self, states: list[dict]) -> None:
        if self.stream:
            self.stream.load_state(states)

    def losses(self, batch: dict, models: dict[str, nn.Module], step: int) -> Iterator[tuple[str, torch.Tensor, dict[str, float]]]:
        weights = self.config.losses
        wav = batch["wav"]
        out = models["codec"](wav, batch["num_quantizers"])
        mel = self.mel_loss.to(wav.device)(out.wav, wav)
        logs = {"codec/mel": mel.item(), "vq/commit": out.commit_loss.item()}
        total = weights.mel * mel + weights.commitment * out.commit_loss
        if weights.stft > 0:
            spectral = self.stft_loss(wav, out.wav)
            total = total + weights.stft * spectral
            logs["codec/stft"] = spectral.item()
        if weights.complex > 0:
            complex_loss = self.complex_loss(wav, out.wav)
            total = total + weights.complex * complex_loss
            logs["codec/complex"] = complex_loss.item()
        if self.distill is not None:
            distill, accuracy = self.distill.loss(models["distill"], out.first, wav)
            total = total + weights.distill * distill
            logs.update({"codec/distill": distill.item(), "distill/accuracy": accuracy})
        if self.discriminators is not None and step >= self.config.disc_start_step:
            d_loss = hinge_discriminator_loss(models["discriminators"](wav), models["discriminators"](out.wav.detach()))
            yield "discriminators", d_loss, {"disc/hinge": d_loss.item()}
            real = self.discriminators(wav)  # the plain module: only the codec learns from these losses
            fake = self.discriminators(out.wav)
            adv, feat = hinge_generator_loss(fake), feature_matching_loss(real, fake)
            total = total + weights.adversarial * adv + weights.feature_matching * feat
            logs.update({"codec/adv": adv.item(), "codec/feat": feat.item()})
        logs["codec/total"] = total.item()
        yield "codec", total, logs

    def validate(self, models: dict[str, nn.Module], step: int) -> dict[str, float]:
        codec: Codec = models["codec"]
        device = next(codec.parameters()).device
        mel_loss = self.mel_loss.to(device)
        clips_source = self.valid_clips or self.train_clips
        clips = clips_source.fixed(self.config.data.valid_clips, int(self.config.data.valid_seconds * codec.sample_rate))
        metrics: dict[str, float] = {}
        levels = sorted({1, max(1, codec.num_codebooks // 3), codec.num_codebooks})
        all_codes = []
        for n in levels:
            mel = 0.0
            for wav in clips:
                wav = wav.to(device)
                codes = codec.encode(wav, n)
                mel += float(mel_loss(codec.decode(codes)[..., : wav.shape[-1]], wav)) / len(clips)
                if n == codec.num_codebooks:
                    all_codes.append(codes)
            metrics[f"mel@{codec.config.bitrate(n) / 1000:g}kbps"] = mel
        stats = codec.quantizer.codebook_stats(torch.cat(all_codes, dim=-1))
        for level, s in enumerate(stats, 1):
            metrics[f"vq/usage_{level}"] = s["usage"]
            metrics[f"vq/perplexity_{level}"] = s["perplexity"]
        if self.distill is not None:  # the ids from the first level's codes alone, as the acoustic stage would see them
            head = models["distill"]
            with torch.no_grad():
                accuracies = [self.distill.loss(head, codec.quantizer.decode(codes[:, :1]), wav.to(device))[1]
                              for codes, wav in zip(all_codes, clips)]
            metrics["distill/accuracy"] = sum(accuracies) / len(accuracies)
        return metrics

    def export(self, models: dict[str, nn.Module], run_dir: Path) -> None:
        models["codec"].save(run_dir / "model")


def run_config_dict(config: CodecRunConfig) -> dict:
    return {"kind": "codec-run", **asdict(config)}


def resolve_preset(preset: str) -> Path:
    """A codec preset name (tiny, small, base) or a path to a YAML file."""
    from audiolm.formats.config import resolve_preset as resolve

    return resolve(preset, "codec")


def load_codec_from_run(run_dir: str | Path) -> Codec:
    """The codec of a training run's latest checkpoint (for evaluating before training ends)."""
    from audiolm.formats.config import from_dict
    from audiolm.formats.json_file import read_json
    from audiolm.formats.tensors import load_module
    from audiolm.train.checkpoint import latest_checkpoint

    run_dir = Path(run_dir)
    checkpoint = latest_checkpoint(run_dir)
    if checkpoint is None:
        raise AudiolmError(f"{run_dir}: no checkpoint in this run folder")
    data = read_json(checkpoint / "config.json")
    data.pop("kind", None)
    config = from_dict(CodecRunConfig, data, str(checkpoint / "config.json"))
    codec = load_module(Codec(config.model), checkpoint / "codec.safetensors")
    return codec.eval()


def train_codec(preset: str, run_dir: str | Path, overrides: list[str] | None = None, progress: bool = True,
                stop_after: int | None = None):
    """Train (or resume) a codec from a preset and `key=value` overrides into `run_dir`; the final model
    lands in `run_dir/model/`."""
    from audiolm.codec.conv import remove_weight_norm
    from audiolm.formats.config import load_config
    from audiolm.formats.tensors import load_module
    from audiolm.train.checkpoint import latest_checkpoint
    from audiolm.train.loop import train

    config = load_config(CodecRunConfig, resolve_preset(preset), overrides)
    if not config.data.manifest and not config.data.audio_shards:
        raise AudiolmError("no training data: pass --manifest or --audio-shards (or data.manifest=..., data.audio_shards=...)")
    torch.manual_seed(config.train.seed)  # the models' initial weights
    task = CodecTask(config, progress=progress)
    if config.init_from:
        remove_weight_norm(task.codec)  # saved models are folded; fine-tuning goes on without weight norm
        if latest_checkpoint(Path(run_dir)) is None:
            load_module(task.codec, Path(config.init_from) / "model.safetensors", optional=TRAINING_ONLY)
            for layer in task.codec.quantizer.layers:
                layer.reset_statistics()
    if config.decoder_only:
        task.codec.freeze_encoder()  # after init_from: folding weight norms makes new parameters
    return train(task, config.train, run_dir, run_config_dict(config), progress=progress, stop_after=stop_after)
