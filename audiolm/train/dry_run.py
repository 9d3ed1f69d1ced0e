"""What a training run would cost, from shapes alone: `audiolm lm | codec | semantic train --dry-run`.

The run's models are built on the meta device (shapes, no memory; the codec's discriminators are built on the CPU and
moved there, as they compute their STFT window's scale when built); no data is read and nothing is written.

    plan = lm_plan("paper", "coarse")            # or codec_plan(preset), semantic_plan(preset)
    figures = estimate(plan, world=16)           # an `Estimate`: parameters, per-step sizes, bytes per GPU
    print(report(plan, world=16))                # the table `--dry-run` prints

Figures (P parameters trained, N GPUs, b = train.batch_size / (N x train.grad_accum) examples per GPU at a time):

    per optimizer step   train.batch_size (global: across GPUs and accumulation) x one example: the stage's window
                         as a token sequence (S = StageSpec.max_seq_len) for the LMs, `data.crop_seconds` of audio
                         (and its frames) for the codec and the semantic encoder
    states, DDP          16 P: fp32 weights 4 + fp32 grads 4 + AdamW's exp_avg and exp_avg_sq 8
                         + 4 P: DDP's gradient buckets (train/sharding.py leaves gradient_as_bucket_view off)
                         + 2 P: the bf16 copies of the weights that autocast keeps for the backward     = 22 P bytes
    states, FSDP         16 P / N: fp32 weights, grads and AdamW states sharded over the N GPUs
                         + 10 U for the units gathered (train/sharding.py: FSDP2, bf16 compute, fp32 reduction): one
                         unit's bf16 weights 2 and the next one's, prefetched, 2; its bf16 grads 2 and their fp32 copy
                         for the reduce-scatter 4. U is the largest unit's parameters: a Transformer block, or what is
                         left of a model around its blocks (a model without blocks is one unit)
    activations (bf16)   Transformer blocks: b x S x D x L x 34 bytes, 34 = ACTIVATION_BYTES per token, dim and
                         layer (Korthikanti et al. 2022, "Reducing activation recomputation in large transformer
                         models", eq. 1: 34 s b h per layer in 16-bit, with flash attention's kernels dropping its
                         5 a s^2 b term); with activation checkpointing per block each block keeps its bf16 input and
                         one block is recomputed at a time: b x S x D x (2 L + 34)
                         output head: b x S x (2 V + 8 C) bytes: bf16 logits over the vocabulary V (a DDP / FSDP-wrapped
                         model computes them all), and the fp32 copy and log-softmax of one level's C ids that the
                         cross-entropy keeps
                         convolutions (the codec; the semantic encoder's waveform front end): 2 bytes per element of
                         every leaf module's output in a forward of one example on meta tensors (the codec: encoder,
                         decoder, and the discriminators on the real and the decoded audio, which the generator's
                         backward holds together); checkpointing leaves these as they are
    not counted          the CUDA context and kernel workspaces (about 0.5 - 1 GiB), allocator fragmentation,
                         the reconstruction losses' spectrograms, the data

Shapes: S sequence (tokens per example), D dim, L layers, V vocabulary, C one level's ids.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from audiolm.errors import AudiolmError

ACTIVATION_BYTES = 34  # per token x dim x layer of a bf16 Transformer block (Korthikanti et al. 2022, flash attention)
GIB = 1024**3


@dataclass
class Plan:
    """One run as the dry run sees it: its models (on the meta device) and the sizes of one example."""

    title: str
    modules: dict[str, nn.Module]
    batch_size: int  # global
    grad_accum: int
    sequence: int  # S: tokens (frames for the codec and the semantic encoder) per example
    unit: str  # what `sequence` counts: "tokens" or "frames"
    seconds: float  # audio per example
    dim: int = 0  # Transformer blocks (0: none)
    layers: int = 0
    vocab: int = 0  # output head (0: none)
    classes: int = 0  # ids of one level (the cross-entropy's softmax)
    conv_elements: int = 0  # leaf-module outputs of one example's forward through the convolutional parts
    notes: list[str] = field(default_factory=list)


@dataclass
class Estimate:
    """`estimate`'s figures; bytes are per GPU."""

    parameters: dict[str, int]  # "module.child" -> parameters (shared ones counted once, in their first place)
    total: int
    trained: int  # P: with requires_grad
    largest_unit: int  # U
    world: int
    micro_batch: int  # b
    states_ddp: int
    states_fsdp: int
    activations: int
    activations_checkpointed: int


def world_size(option: int | None = None) -> int:
    """GPUs: `--world-size`, else the WORLD_SIZE that torchrun sets, else 1."""
    if option is not None:
        return option
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        raise AudiolmError(f"WORLD_SIZE must be a whole number, got {os.environ['WORLD_SIZE']!r}") from None
    if world < 1:
        raise AudiolmError(f"WORLD_SIZE must be at least 1, got {world}")
    return world


def _count(module: nn.Module, seen: set[int]) -> tuple[int, int]:
    """(parameters, trained parameters) of `module` not already in `seen` (ids), which grows."""
    total = trained = 0
    for p in module.parameters():
        if id(p) not in seen:
            seen.add(id(p))
            total += p.numel()
            trained += p.numel() if p.requires_grad else 0
    return total, trained


def _units(module: nn.Module) -> list[int]:
    """Trained parameters per FSDP unit: each of the module's `blocks`, and the rest; a module without blocks is one unit."""
    blocks = getattr(module, "blocks", None)
    trained = sum(p.numel() for p in module.parameters() if p.requires_grad)
    if not isinstance(blocks, nn.ModuleList) or not len(blocks):
        return [trained]
    sizes = [sum(p.numel() for p in block.parameters() if p.requires_grad) for block in blocks]
    return [*sizes, trained - sum(sizes)]


def _parts(name: str, module: nn.Module) -> list[tuple[str, nn.Module]]:
    """The rows of the parameter table: a module's children, with a list of unlike modules (the discriminators)
    opened and a list of like ones (Transformer blocks) kept whole."""
    rows = []
    for child_name, child in module.named_children():
        label = f"{name}.{child_name}"
        if isinstance(child, nn.ModuleList) and len({type(m) for m in child}) == 1:
            rows.append((f"{label} ({len(child)} x {type(child[0]).__name__})", child))
        elif isinstance(child, nn.ModuleList):
            rows += [(f"{label}.{i} ({type(m).__name__})", m) for i, m in enumerate(child)]
        else:
            rows.append((f"{label} ({type(child).__name__})", child))
    return rows


def estimate(plan: Plan, world: int | None = None) -> Estimate:
    """The figures of the module docstring for `plan` on `world` GPUs (see `world_size`)."""
    world = world_size(world)
    if plan.batch_size % (world * plan.grad_accum):
        raise AudiolmError(f"batch_size {plan.batch_size} must divide by processes x grad_accum = {world * plan.grad_accum}")
    micro = plan.batch_size // (world * plan.grad_accum)
    parameters, seen, total, trained = {}, set(), 0, 0
    for name, module in plan.modules.items():
        children, listed = set(seen), 0
        for label, child in _parts(name, module):
            count, _ = _count(child, children)
            if count:
                parameters[label] = count
                listed += count
        own, own_trained = _count(module, seen)
        if own > listed:
            parameters[f"{name} (its own)"] = own - listed
        total, trained = total + own, trained + own_trained
    unit = max(size for module in plan.modules.values() for size in _units(module))
    S, D, L = plan.sequence, plan.dim, plan.layers
    head = S * (2 * plan.vocab + 8 * plan.classes)
    convolutions = 2 * plan.conv_elements
    blocks = S * D * L * ACTIVATION_BYTES
    blocks_checkpointed = S * D * (2 * L + ACTIVATION_BYTES) if L else 0
    return Estimate(parameters=parameters, total=total, trained=trained, largest_unit=unit, world=world, micro_batch=micro,
                    states_ddp=22 * trained, states_fsdp=-(-16 * trained // world) + 10 * unit,
                    activations=micro * (blocks + head + convolutions),
                    activations_checkpointed=micro * (blocks_checkpointed + head + convolutions))


def report(plan: Plan, world: int | None = None) -> str:
    """What `--dry-run` prints: parameters per module, sizes per optimizer step, memory per GPU (markdown tables)."""
    figures = estimate(plan, world)
    lines = [f"dry run: {plan.title} (nothing read or written)", "", "| module | parameters |", "|---|---:|"]
    lines += [f"| {name} | {count:,} |" for name, count in figures.parameters.items()]
    trained = "all trained" if figures.trained == figures.total else f"{figures.trained:,} trained"
    lines += [f"| **total** | **{figures.total:,}** ({figures.total / 1e9:.3f} B, {trained}) |", ""]
    per_step = plan.batch_size * plan.sequence
    lines.append(f"per optimizer step: {plan.batch_size} examples x {plan.sequence:,} {plan.unit} = {per_step:,} {plan.unit} "
                 f"({plan.batch_size} x {plan.seconds:g} s = {plan.batch_size * plan.seconds:,.0f} s of audio)")
    lines.append(f"world size {figures.world}: {figures.micro_batch} examples per GPU at a time "
                 f"(train.batch_size {plan.batch_size} / ({figures.world} GPU{'s' if figures.world > 1 else ''} x "
                 f"train.grad_accum {plan.grad_accum}))")
    lines += ["", "memory per GPU, GiB (estimate; formulas in audiolm/train/dry_run.py):", "",
              "| strategy | GPUs | weights, grads, AdamW | activations (bf16) | total | activations, checkpointed | total, checkpointed |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for strategy, states in (("DDP", figures.states_ddp), ("FSDP", figures.states_fsdp)):
        lines.append(f"| {strategy} | {figures.world} | {states / GIB:.2f} | {figures.activations / GIB:.2f} | "
                     f"{(states + figures.activations) / GIB:.2f} | {figures.activations_checkpointed / GIB:.2f} | "
                     f"{(states + figures.activations_checkpointed) / GIB:.2f} |")
    return "\n".join(lines + ([""] + plan.notes if plan.notes else []))


def _leaf_elements(module: nn.Module, run: Callable[[], object]) -> int:
    """Elements of the outputs of every leaf module while `run()` runs on meta tensors (a convolution with weight norm
    counts as a leaf, and so does its norm, whose output is the weight the backward keeps)."""
    total = 0

    def hook(_module, _inputs, output) -> None:
        nonlocal total
        total += sum(t.numel() for t in (output if isinstance(output, (list, tuple)) else [output]) if isinstance(t, torch.Tensor))

    leaves = [m for m in module.modules() if not isinstance(m, nn.Identity)
              and all(name == "parametrizations" for name, _ in m.named_children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    try:
        run()
    finally:
        for handle in handles:
            handle.remove()
    return total


def lm_plan(preset: str, stage: str, overrides: list[str] | None = None) -> Plan:
    """A stage LM run (`audiolm lm train`); the vocabulary and frame rates are the preset's `stage` values (at
    training they come from the shards: 1024 semantic ids, 1024 codes per level, 25 / 50 Hz unless set)."""
    from audiolm.lm.model import build_model
    from audiolm.train.lm import load_lm_config

    config = load_lm_config(preset, stage, overrides)
    spec = config.stage
    with torch.device("meta"):
        model = build_model(spec, config.model)
    title = f"lm {stage} stage, preset {preset}, window {spec.window_seconds:g} s"
    return Plan(title=title, modules={"lm": model}, batch_size=config.train.batch_size, grad_accum=config.train.grad_accum,
                sequence=spec.max_seq_len, unit="frames" if stage == "parallel" else "tokens", seconds=spec.window_seconds,
                dim=config.model.dim, layers=config.model.num_layers, vocab=spec.vocab_size,
                classes=spec.semantic_vocab if stage == "semantic" else spec.codebook_size)


def codec_plan(preset: str, overrides: list[str] | None = None) -> Plan:
    """A codec run (`audiolm codec train`): the codec and, when adversarial losses are on, the discriminators."""
    from audiolm.codec.discriminators import Discriminators
    from audiolm.codec.model import Codec
    from audiolm.formats.config import load_config
    from audiolm.train.codec import CodecRunConfig, resolve_preset

    config = load_config(CodecRunConfig, resolve_preset(preset), overrides)
    with torch.device("meta"):
        codec = Codec(config.model)
    modules: dict[str, nn.Module] = {"codec": codec}
    if config.losses.adversarial > 0 or config.losses.feature_matching > 0:
        modules["discriminators"] = Discriminators(config.discriminator).to("meta")
    if config.decoder_only:
        codec.freeze_encoder()
    hop = config.model.hop_length
    crop = max(hop, round(config.data.crop_seconds * config.model.sample_rate / hop) * hop)
    wav = torch.zeros(1, 1, crop, device="meta")

    def forward() -> None:
        codec.decoder(codec.encoder(wav))  # not the quantizer: its k-means and lookups need values (its outputs are latent-sized)
        if "discriminators" in modules:
            modules["discriminators"](wav)
            modules["discriminators"](wav)

    elements = _leaf_elements(nn.ModuleList(modules.values()), forward)
    return Plan(title=f"codec, preset {preset}, {config.model.bitrate() / 1000:g} kbps", modules=modules,
                batch_size=config.train.batch_size, grad_accum=config.train.grad_accum, sequence=crop // hop, unit="frames",
                seconds=crop / config.model.sample_rate, conv_elements=elements,
                notes=["activation checkpointing applies to Transformer blocks: the codec has none"])


def semantic_plan(preset: str, overrides: list[str] | None = None) -> Plan:
    """A self-supervised encoder run (`audiolm semantic train`); `model.num_targets` is the preset's (at training it
    comes from the targets' tokenizer)."""
    from audiolm.formats.config import load_config
    from audiolm.semantic.ssl import SSLEncoder
    from audiolm.train.semantic import SemanticRunConfig, resolve_preset

    config = load_config(SemanticRunConfig, resolve_preset(preset), overrides)
    model = config.model
    with torch.device("meta"):
        encoder = SSLEncoder(model)
    frames = max(model.mask_length, round(config.data.crop_seconds * model.frame_rate))
    wav = torch.zeros(1, 1, frames * model.hop_length, device="meta")
    elements = _leaf_elements(encoder.features, lambda: encoder.features(wav))
    return Plan(title=f"semantic encoder, preset {preset}, {model.frame_rate:g} frames/s", modules={"encoder": encoder},
                batch_size=config.train.batch_size, grad_accum=config.train.grad_accum, sequence=frames, unit="frames",
                seconds=frames / model.frame_rate, dim=model.dim, layers=model.num_layers, vocab=model.num_targets,
                classes=model.num_targets, conv_elements=elements)
