"""Training a stage's language model on token shards, through the shared loop.

Each speaker's utterances (in corpus order) are joined into one stream of aligned semantic ids and codes
(an utterance is trimmed to whole semantic frames), and a training window is a random crop of
`stage.window_seconds` from a stream: long windows cross utterance boundaries of one voice, which is what
continuing a prompt asks for. The loss is next-token cross-entropy on the predicted stream only, with
accuracy per level.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from audiolm.data.datasets import step_generator
from audiolm.errors import AudiolmError, FileError
from audiolm.formats.tensors import load_module
from audiolm.lm.loss import LevelTotals, stage_loss
from audiolm.lm.model import build_model, save_stage, stage_fingerprints
from audiolm.lm.stages import STAGES, StageSpec
from audiolm.lm.transformer import TransformerConfig
from audiolm.semantic.tokenizer import remove_repeats
from audiolm.train.loop import OptimizerConfig, TrainConfig


@dataclass(kw_only=True)
class LMDataConfig:
    shards: str = ""  # a folder from `audiolm tokenize`
    train_split: str = "train"
    valid_split: str = "valid"
    valid_windows: int = 32


@dataclass(kw_only=True)
class ParallelConfig:
    """Training settings of the parallel stage only (train/parallel.py)."""

    level_weights: list[float] = field(default_factory=list)  # how often each level is the masked one; empty: uniform (SoundStorm)

    def __post_init__(self) -> None:
        if any(not w >= 0 for w in self.level_weights) or (self.level_weights and not sum(self.level_weights) > 0):
            raise ValueError("parallel.level_weights must be non-negative with a positive sum")


@dataclass(kw_only=True)
class LMRunConfig:
    data: LMDataConfig = field(default_factory=LMDataConfig)
    stage: StageSpec = field(default_factory=lambda: StageSpec(stage="semantic"))
    model: TransformerConfig = field(default_factory=TransformerConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    optimizer: OptimizerConfig = field(default_factory=lambda: OptimizerConfig(lr=1e-3, betas=(0.9, 0.95), weight_decay=0.1))
    parallel: ParallelConfig = field(default_factory=ParallelConfig)
    init_from: str = ""  # a stage model folder (e.g. a bundle's parallel-lm/) or a run whose weights start this run
    windows: dict[str, float] = field(default_factory=dict)  # seconds per stage (the paper's 30 / 10 / 3 s): `load_lm_config`

    def __post_init__(self) -> None:
        if any(stage not in STAGES or not seconds > 0 for stage, seconds in self.windows.items()):
            raise ValueError(f"windows: maps stages ({', '.join(STAGES)}) to positive seconds, got {self.windows}")


class TokenStreams:
    """Per-speaker streams of aligned semantic ids `[Ts]` and codes `[K, Ts * ratio]` from some utterances (an utterance
    without a speaker, such as a music clip, is a stream of its own: windows never join unrelated pieces).

    A stream is never joined in memory: it is its utterances' first n = min(T_s, T_a // ratio) frames end to end,
    kept as numpy columns (each segment's utterance and start), and a window reads from the memory-mapped shards
    only the few utterances it crosses. Streams are in the order of their names ("speaker NAME", "utterance
    NNNNNNNNN"), utterances in corpus order within one."""

    def __init__(self, shards, indices: list[int] | np.ndarray, ratio: int) -> None:
        self.shards, self.ratio = shards, ratio
        utterances = np.unique(np.asarray(indices, dtype=np.int64))  # corpus order
        frames = np.minimum(shards.semantic_lengths[utterances], shards.codes_lengths[utterances] // ratio).astype(np.int64)
        speaker = shards.speaker_of[utterances]
        alone = np.array([shards.speakers[c] is None for c in range(len(shards.speakers))], dtype=bool)[speaker]
        voices = np.unique(speaker[~alone])
        names = [f"speaker {shards.speakers[c]}" for c in voices] + [f"utterance {i:09d}" for i in utterances[alone]]
        rank = np.empty(len(names), dtype=np.int64)
        rank[sorted(range(len(names)), key=names.__getitem__)] = np.arange(len(names))
        stream = np.empty(len(utterances), dtype=np.int64)  # each utterance's stream
        stream[~alone] = rank[np.searchsorted(voices, speaker[~alone])]
        stream[alone] = rank[len(voices):]
        order = np.argsort(stream, kind="stable")
        self._utterance = utterances[order].astype(np.int32 if len(shards) < 2**31 else np.int64)  # [M] segments by stream
        self._ends = np.cumsum(frames[order])  # [M] where each segment ends, counting every stream before it
        first = np.searchsorted(stream[order], np.arange(len(names) + 1))  # [S + 1] each stream's first segment
        bounds = np.concatenate([[0], self._ends])[first]  # [S + 1] where each stream starts
        self._starts = bounds[:-1]
        self.lengths = torch.from_numpy(np.diff(bounds))  # [S] frames per stream

    def __len__(self) -> int:
        return len(self.lengths)

    def stream(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Stream `index` whole: semantic `[Ts]`, codes `[K, Ts * ratio]` (for tests and small corpora)."""
        return self._crop(index, 0, int(self.lengths[index]))

    def _segments(self, index: int, start: int, length: int) -> list[tuple[int, int, int]]:
        """The utterances under frames start:start + length of stream `index`: (utterance, its first frame, frames)."""
        begin = int(self._starts[index]) + start  # where the window starts, counting every stream before this one
        segments, done = [], 0
        segment = int(np.searchsorted(self._ends, begin, side="right"))  # the first segment ending past `begin`
        while done < length:
            end = int(self._ends[segment])
            frames = min(end - begin - done, length - done)
            if frames > 0:
                offset = begin + done - (int(self._ends[segment - 1]) if segment else 0)  # where the window is in the utterance
                segments.append((int(self._utterance[segment]), offset, frames))
                done += frames
            segment += 1
        return segments

    def _crop(self, index: int, start: int, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Frames start:start + length of stream `index`: semantic `[length]`, codes `[K, length * ratio]`."""
        return self._read(self._segments(index, start, length), length)

    def _read(self, segments: list[tuple[int, int, int]], length: int) -> tuple[torch.Tensor, torch.Tensor]:
        semantic = torch.empty(length, dtype=torch.int64)
        codes = torch.empty(self.shards.num_codebooks, length * self.ratio, dtype=torch.int64)
        done, r = 0, self.ratio
        for utterance, offset, frames in segments:
            semantic[done:done + frames] = self.shards.semantic(utterance, offset, offset + frames)
            codes[:, done * r:(done + frames) * r] = self.shards.codes(utterance, offset * r, (offset + frames) * r)
            done += frames
        return semantic, codes

    def windows(self, count: int, length: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """`count` random crops of `length` semantic frames: semantic `[count, length]`, codes `[count, K, length * ratio]`.
        Every crop's pages are asked for first (`TokenShards.prefetch`), so that cold ones load from disk together."""
        room = (self.lengths - length + 1).clamp_min(0).double()
        if room.sum() == 0:
            raise AudiolmError(f"no speaker has {length} semantic frames of audio: shorten stage.window_seconds")
        picks = torch.multinomial(room, count, replacement=True, generator=generator).tolist()
        crops = [self._segments(stream, int(torch.randint(0, int(room[stream]), (1,), generator=generator)), length)
                 for stream in picks]
        for utterance, offset, frames in (segment for segments in crops for segment in segments):
            self.shards.prefetch(utterance, (offset, offset + frames), (offset * self.ratio, (offset + frames) * self.ratio))
        semantic, codes = zip(*(self._read(segments, length) for segments in crops))
        return torch.stack(semantic), torch.stack(codes)


DEDUP_READ = 4  # frames read per unit of a window with repeats removed (runs average ~1.6 frames at 50 Hz, ~1.3 at 25)


def dedup_windows(raw: torch.Tensor, units: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Windows of ids `[B, T]` -> their first `units` ids with consecutive repeats removed `[B, units]` (a row with
    fewer is padded with its last id), how many of each row's are real `[B]`, and the frames those cover `[B]`."""
    out = torch.empty(raw.shape[0], units, dtype=raw.dtype)
    real, frames = torch.empty(raw.shape[0], dtype=torch.long), torch.empty(raw.shape[0], dtype=torch.long)
    for i, row in enumerate(raw):
        ids, runs = remove_repeats(row)
        n = min(len(ids), units)
        out[i, :n], out[i, n:] = ids[:n], ids[n - 1]
        real[i], frames[i] = n, runs[:n].sum()
    return out, real, frames


class LMTask:
    def __init__(self, config: LMRunConfig, shards, fingerprints: dict | None = None) -> None:
        self.config = config
        self.spec = config.stage
        self.fingerprints = fingerprints or {}
        ratio = self.spec.ratio
        self.train_streams = TokenStreams(shards, shards.split(config.data.train_split), ratio)
        valid = shards.split(config.data.valid_split) if config.data.valid_split else []
        self.valid_streams = TokenStreams(shards, valid, ratio) if len(valid) else self.train_streams
        self.model = build_model(self.spec, config.model)
        if config.init_from:
            load_module(self.model, _weights_of(config.init_from))
        self.window = self.spec.window_frames if self.spec.stage == "semantic" else self.spec.window_frames // ratio

    def modules(self) -> dict[str, nn.Module]:
        return {"lm": self.model}

    def optimizers(self) -> dict[str, tuple[list[str], OptimizerConfig]]:
        return {"lm": (["lm"], self.config.optimizer)}

    def _examples(self, streams: TokenStreams, count: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        if self.spec.dedup:  # `window` units from a longer crop; rows with fewer are padded, their padding unscored
            raw, _ = streams.windows(count, self.window * DEDUP_READ, generator)
            semantic, units, frames = dedup_windows(raw, self.window)
            example = self.spec.example(semantic, None)
            example["mask"] &= torch.arange(self.window) < units[:, None]
            example["frames"] = frames  # [B]: the frames each row's units cover (its seconds, for nats a second)
            return example
        semantic, codes = streams.windows(count, self.window, generator)
        return self.spec.example(semantic, codes)

    def batch(self, step: int, start: int, stop: int) -> dict[str, torch.Tensor]:
        examples = self._examples(self.train_streams, self.config.train.batch_size, step_generator(self.config.train.seed, step))
        return {k: v[start:stop] for k, v in examples.items()}

    def _loss(self, model: nn.Module, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        loss, totals = stage_loss(model, self.spec, batch)
        return loss, totals.logs(f"lm/{self.spec.stage}")

    def losses(self, batch: dict, models: dict[str, nn.Module], step: int) -> Iterator[tuple[str, torch.Tensor, dict[str, float]]]:
        loss, logs = self._loss(models["lm"], batch)
        yield "lm", loss, logs

    def _totals(self, model: nn.Module, examples: dict[str, torch.Tensor]) -> LevelTotals:
        device = next(model.parameters()).device
        totals = LevelTotals()
        for i in range(0, examples["inputs"].shape[0], 8):
            totals.add(stage_loss(model, self.spec, {k: v[i:i + 8].to(device) for k, v in examples.items()})[1])
        return totals

    @torch.no_grad()
    def validate(self, models: dict[str, nn.Module], step: int) -> dict[str, float]:
        """The held-out windows' cross-entropy and accuracy per level; for the coarse stage with semantic ids also
        `shuffled_ce_1`, level 1's cross-entropy with the semantic ids shuffled in time within each window (against
        `ce_1`: how much the stage reads its semantic conditioning)."""
        model = models["lm"]
        generator = torch.Generator().manual_seed(1234)
        if self.spec.dedup:
            examples = self._examples(self.valid_streams, self.config.data.valid_windows, generator)
            totals = self._totals(model, examples)
            frames = float(examples["frames"].sum())
        else:
            semantic, codes = self.valid_streams.windows(self.config.data.valid_windows, self.window, generator)
            totals = self._totals(model, self.spec.example(semantic, codes))
            frames = float(sum(totals.count.values()))  # the semantic stage: one id a frame
        logs = totals.logs(f"lm/{self.spec.stage}")
        if self.spec.stage == "semantic":  # comparable with and without repeats (which then leave their durations unmodelled)
            logs["lm/semantic/nats_per_second"] = sum(totals.ce.values()) / max(frames / self.spec.semantic_rate, 1e-9)
        if self.spec.stage == "coarse" and self.spec.use_semantic:
            order = torch.rand(semantic.shape, generator=generator).argsort(dim=1)  # [B, Ts]: a shuffle per window
            wrong = self._totals(model, self.spec.example(semantic.gather(1, order), codes))
            logs["lm/coarse/shuffled_ce_1"] = wrong.ce[0] / wrong.count[0]
        return logs

    def export(self, models: dict[str, nn.Module], run_dir: Path) -> None:
        save_stage(run_dir / "model", models["lm"], self.spec, self.fingerprints)


def _weights_of(folder: str | Path) -> Path:
    """The weights file of a stage model folder (`model.safetensors`), or of a run (its final `model/`, else its latest
    checkpoint); shapes are checked when they are loaded."""
    from audiolm.train.checkpoint import latest_checkpoint

    folder = Path(folder)
    for candidate in (folder / "model.safetensors", folder / "model" / "model.safetensors"):
        if candidate.is_file():
            return candidate
    checkpoint = latest_checkpoint(folder) if folder.is_dir() else None
    if checkpoint is None or not (checkpoint / "lm.safetensors").is_file():
        raise FileError(folder, "init_from: neither a stage model folder nor a training run with a checkpoint")
    return checkpoint / "lm.safetensors"


def resolve_preset(preset: str) -> Path:
    """A lm preset name (tiny, small, base) or a path to a YAML file."""
    from audiolm.formats.config import resolve_preset as resolve

    return resolve(preset, "lm")


def load_lm_config(preset: str, stage: str, overrides: list[str] | None = None) -> LMRunConfig:
    """The run config of `stage` from a preset and `key=value` overrides. A preset's `windows` (seconds per stage)
    sets the stage's window unless `stage.window_seconds` is given (in the preset or an override)."""
    from audiolm.formats.config import apply_overrides, from_dict, read_yaml

    path = resolve_preset(preset)
    data = apply_overrides(read_yaml(path), [f"stage.stage={stage}", *(overrides or [])])
    windows, section = data.get("windows"), data.get("stage")
    if isinstance(windows, dict) and isinstance(section, dict) and stage in windows and not section.get("window_seconds"):
        section["window_seconds"] = windows[stage]
    return from_dict(LMRunConfig, data, path.name)


def train_lm(preset: str, stage: str, run_dir: str | Path, overrides: list[str] | None = None, progress: bool = True,
             stop_after: int | None = None):
    """Train (or resume) one stage (`semantic`, `coarse`, `fine`, `parallel`: train/parallel.py) from a preset and
    overrides into `run_dir`; the final model lands in `run_dir/model/`. The vocabulary (semantic K, codebook size,
    frame rates) comes from the shards."""
    from audiolm.data.shards import TokenShards
    from audiolm.train.loop import train

    config = load_lm_config(preset, stage, overrides)
    if not config.data.shards:
        raise AudiolmError("no training data: pass --shards (a folder from `audiolm tokenize`)")
    shards = TokenShards(config.data.shards)
    spec = config.stage
    if spec.num_coarse + (spec.num_fine if spec.stage in ("fine", "parallel") else 0) > shards.num_codebooks:
        raise AudiolmError(f"{config.data.shards}: holds {shards.num_codebooks} codec levels; the stage wants "
                           f"{spec.num_coarse} coarse + {spec.num_fine} fine")
    config.stage = StageSpec(**{**asdict(spec), "semantic_vocab": shards.semantic_vocab, "codebook_size": shards.codebook_size,
                                "semantic_rate": shards.semantic_frame_rate, "acoustic_rate": shards.acoustic_frame_rate})
    fingerprints = stage_fingerprints(config.stage, shards.tokenizer_fingerprint, shards.codebook_fingerprint)
    torch.manual_seed(config.train.seed)
    if config.stage.stage == "parallel":
        from audiolm.train.parallel import ParallelTask

        task = ParallelTask(config, shards, fingerprints=fingerprints)
    else:
        task = LMTask(config, shards, fingerprints=fingerprints)
    return train(task, config.train, run_dir, {"kind": "lm-run", **asdict(config)}, progress=progress, stop_after=stop_after)
