"""A tiny random model bundle (tokenizer, codec, three stage LMs and the acoustic-only one) for pipeline tests."""

from __future__ import annotations

from pathlib import Path

import torch

from audiolm.codec.model import Codec, CodecConfig
from audiolm.data.shards import tokenize_corpus
from audiolm.generation.pipeline import PARTS
from audiolm.lm.model import build_model, save_stage
from audiolm.lm.stages import StageSpec
from audiolm.lm.transformer import TransformerConfig
from audiolm.semantic.encoder import MFCCEncoder
from audiolm.semantic.tokenizer import fit_tokenizer

TINY_CODEC = dict(encoder_dim=16, encoder_layers=1, encoder_channels=4, latent_dim=16, num_codebooks=4, codebook_size=32,
                  decoder_dim=32, decoder_layers=1)


def tiny_bundle(folder: Path, window_seconds: float = 1.0, parallel: bool = False) -> Path:
    """Every part of a bundle, random; with `parallel`, the parallel acoustic stage and its baseline too (then the
    default acoustic stage is the parallel one)."""
    torch.manual_seed(0)
    codec = Codec(CodecConfig(**TINY_CODEC))
    codec.save(folder / "codec")
    clips = [torch.randn(1, 1, 8000, generator=torch.Generator().manual_seed(i)) * 0.1 for i in range(6)]
    tokenizer = fit_tokenizer(MFCCEncoder(stack=2), 0, clips, k=8, iterations=3)
    tokenizer.save(folder / "semantic")
    fingerprints = {"semantic": tokenizer.fingerprint(), "codec": Codec.load(folder / "codec").codebook_fingerprint()}
    for name, part in PARTS.items():
        if name.startswith("parallel") and not parallel:
            continue
        stage = {"acoustic": "coarse", "parallel_acoustic": "parallel"}.get(name, name)
        spec = StageSpec(stage=stage, semantic_vocab=8, codebook_size=32, num_coarse=2, num_fine=2, window_seconds=window_seconds,
                         use_semantic=name not in ("acoustic", "parallel_acoustic"))
        save_stage(folder / part, build_model(spec, TransformerConfig(dim=32, num_layers=1, num_heads=2)), spec, fingerprints)
    return folder


def tiny_token_corpus(folder: Path, count: int = 8, seconds: float = 2.0) -> dict[str, Path]:
    """Tone clips, a tiny random codec, a 25 Hz MFCC tokenizer and their token shards: {manifest, codec, semantic, shards}."""
    from tests.helpers_codec import tone_manifest

    manifest = tone_manifest(folder / "audio", count=count, seconds=seconds)
    torch.manual_seed(0)
    Codec(CodecConfig(**TINY_CODEC)).save(folder / "codec")
    clips = [torch.randn(1, 1, 8000, generator=torch.Generator().manual_seed(i)) * 0.1 for i in range(6)]
    fit_tokenizer(MFCCEncoder(stack=2), 0, clips, k=8, iterations=3).save(folder / "semantic")
    tokenize_corpus(manifest, folder / "semantic", folder / "codec", folder / "shards", progress=False)
    return {"manifest": manifest, "codec": folder / "codec", "semantic": folder / "semantic", "shards": folder / "shards"}
