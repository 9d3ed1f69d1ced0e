"""Semantic-token features from a pretrained self-supervised checkpoint in a local Hugging Face folder.

`HFEncoder.from_folder(path)` loads HuBERT, wav2vec 2.0 or w2v-BERT 2.0 from a folder holding `config.json`,
`model.safetensors` and, optionally, `preprocessor_config.json` (what `save_pretrained` writes, or a hub snapshot),
and exposes it as a `FeatureEncoder`: `wav [B, 1, L]` at 16 kHz -> `[B, T, D]` features of one Transformer layer,
T ~= L * frame_rate / sample_rate (the model's own frame count: a few frames fewer than ceil(L / hop) at most).

- HuBERT / wav2vec 2.0 read the waveform, normalised per utterance to zero mean and unit variance when the
  preprocessor config says `do_normalize` (as `Wav2Vec2FeatureExtractor` does; default true), 50 Hz for 16 kHz.
- w2v-BERT 2.0 reads 80-bin fbanks from `SeamlessM4TFeatureExtractor` (10 ms hop) stacked in pairs, so 50 Hz too.

Weights are read only from safetensors, never unpickled. transformers is imported when a folder is loaded, so
`import audiolm.semantic.pretrained` works without it (`pip install 'audiolm[hf]'`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from audiolm.errors import FileError
from audiolm.semantic.encoder import check_layer

# config.json's model_type -> the transformers class of the bare encoder (no CTC or pre-training head)
MODEL_CLASSES = {"hubert": "HubertModel", "wav2vec2": "Wav2Vec2Model", "wav2vec2-bert": "Wav2Vec2BertModel"}
FBANK_HOP = 160  # SeamlessM4TFeatureExtractor's fbank hop in samples (10 ms at 16 kHz), fixed in its code


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise FileError(path, f"cannot read JSON: {e}") from e


def _check_weights(folder: Path) -> None:
    """Refuse a folder without safetensors weights: pickled `pytorch_model.bin` files are never loaded."""
    if (folder / "model.safetensors").is_file() or (folder / "model.safetensors.index.json").is_file():
        return
    if any(folder.glob("pytorch_model*.bin")):
        raise FileError(folder, "holds only pytorch_model.bin, a pickle that audiolm does not load: convert it to "
                                "model.safetensors first (e.g. safetensors.torch.save_file on a machine you trust)")
    raise FileError(folder, "no model.safetensors in this folder")


class HFEncoder(nn.Module):
    """A Hugging Face speech encoder as a `FeatureEncoder`; build it with `HFEncoder.from_folder`.

    `layer_features(wav [B, 1, L], layer) -> [B, T, hidden_size]`: layer 0 is the input to the first Transformer block
    and layer i the output of block i. Utterances in a batch must have equal lengths (no padding is handled).
    """

    def __init__(self, model: nn.Module, sample_rate: int, frame_rate: float, do_normalize: bool = False,
                 fbank_extractor: Any = None) -> None:
        super().__init__()
        self.model = model
        self.sample_rate = sample_rate
        self.frame_rate = frame_rate
        self.num_layers: int = len(model.encoder.layers)
        self.hidden_size: int = model.config.hidden_size
        self.do_normalize = do_normalize
        self.fbank_extractor = fbank_extractor  # a SeamlessM4TFeatureExtractor for w2v-BERT, None for raw-waveform models
        self.eval()

    @classmethod
    def from_folder(cls, path: str | Path, max_layer: int | None = None) -> HFEncoder:
        """Load a checkpoint folder; with `max_layer`, blocks after that layer are dropped (then num_layers = max_layer)."""
        folder = Path(path)
        if not folder.is_dir():
            raise FileError(folder, "no such checkpoint folder")
        if not (folder / "config.json").is_file():
            raise FileError(folder, "no config.json: not a Hugging Face model folder")
        config = _read_json(folder / "config.json")
        model_type = config.get("model_type")
        if model_type not in MODEL_CLASSES:
            raise FileError(folder / "config.json", f"unsupported model_type {model_type!r}: supported are {', '.join(MODEL_CLASSES)}")
        num_blocks = config.get("num_hidden_layers", 0)
        if max_layer is not None and not 1 <= max_layer <= num_blocks:
            raise FileError(folder, f"max_layer {max_layer} out of range: this model has layers 1..{num_blocks}")
        _check_weights(folder)
        try:
            import transformers
        except ImportError as e:
            raise FileError(folder, "loading a Hugging Face checkpoint needs transformers: pip install 'audiolm[hf]'") from e

        model_class = getattr(transformers, MODEL_CLASSES[model_type])
        model = model_class.from_pretrained(folder, use_safetensors=True, local_files_only=True).float()
        if max_layer is not None:
            model.encoder.layers = model.encoder.layers[:max_layer]
            model.config.num_hidden_layers = max_layer
        # Only the encoder blocks are read: an adapter (or w2v-BERT's FFN before it) on top would be wasted work.
        for head in ("adapter", "intermediate_ffn"):
            if getattr(model, head, None) is not None:
                setattr(model, head, None)

        preprocessor = folder / "preprocessor_config.json"
        if model_type == "wav2vec2-bert":
            extractor_class = transformers.SeamlessM4TFeatureExtractor
            fbanks = extractor_class.from_pretrained(folder) if preprocessor.is_file() else extractor_class()
            return cls(model, fbanks.sampling_rate, fbanks.sampling_rate / (FBANK_HOP * fbanks.stride), fbank_extractor=fbanks)
        settings = _read_json(preprocessor) if preprocessor.is_file() else {}
        sample_rate = settings.get("sampling_rate", 16000)
        frame_rate = sample_rate / math.prod(model.config.conv_stride)
        return cls(model, sample_rate, frame_rate, do_normalize=settings.get("do_normalize", True))

    def _model_inputs(self, wav: torch.Tensor) -> dict[str, torch.Tensor]:
        """`wav [B, 1, L]` -> the keyword arguments of the model's forward, on the model's device."""
        device = next(self.model.parameters()).device
        x = wav[:, 0].float()
        if self.fbank_extractor is not None:
            features = self.fbank_extractor(list(x.cpu().numpy()), sampling_rate=self.sample_rate, return_tensors="pt")
            return {"input_features": features["input_features"].to(device), "attention_mask": features["attention_mask"].to(device)}
        x = x.to(device)
        if self.do_normalize:  # Wav2Vec2FeatureExtractor.zero_mean_unit_var_norm
            x = (x - x.mean(-1, keepdim=True)) / torch.sqrt(x.var(-1, unbiased=False, keepdim=True) + 1e-7)
        return {"input_values": x}

    def layer_features(self, wav: torch.Tensor, layer: int) -> torch.Tensor:
        """`wav [B, 1, L]` at `sample_rate` -> `[B, T, hidden_size]`, the model's `hidden_states[layer]`.

        The top layer of a model with `do_stable_layer_norm` (the large wav2vec 2.0 / HuBERT) is the last block's output
        as transformers >= 5 gives it, before the encoder's final layer norm, so that `max_layer` changes no feature.
        """
        check_layer(self, layer)
        assert wav.dim() == 3 and wav.shape[1] == 1, f"expected wav [B, 1, L], got {tuple(wav.shape)}"
        # Hooks on the blocks rather than `output_hidden_states`, whose last entry depends on the transformers version.
        captured: list[torch.Tensor] = []
        blocks = self.model.encoder.layers
        if layer == 0:
            handle = blocks[0].register_forward_pre_hook(
                lambda _block, args, kwargs: captured.append(args[0] if args else kwargs["hidden_states"]), with_kwargs=True)
        else:
            handle = blocks[layer - 1].register_forward_hook(
                lambda _block, _args, out: captured.append(out[0] if isinstance(out, tuple) else out))
        try:
            with torch.no_grad():
                self.model(**self._model_inputs(wav))
        finally:
            handle.remove()
        return captured[0]
