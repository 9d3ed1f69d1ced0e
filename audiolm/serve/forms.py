"""The endpoints' multipart form fields, from one table: each field's parser (the CLI's argument types, so a bad value
gets the CLI's sentence with the field's name, e.g. `seconds: must be at most 20 (got 100)`), its default and its
OpenAPI schema (the /docs page shows and sends the form).

    fields = continue_fields(settings)
    options = parse_form(form, fields)        # argparse.Namespace; AudiolmError for a missing, unknown or bad field
    schema = openapi_body(fields)             # the endpoint's requestBody
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field

from audiolm import limits
from audiolm.cli import args as cli_args
from audiolm.errors import AudiolmError

ACOUSTIC = ("auto", "parallel", "ar")
MODES = ("continue", "generate", "resynth")
TRUE, FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


@dataclass(frozen=True)
class Field:
    name: str
    help: str
    schema: dict
    parse: Callable[[str], object] | None = None  # None: a file upload
    default: object = None
    required: bool = False
    example: object = None

    @property
    def is_file(self) -> bool:
        return self.parse is None


def upload(name: str, help: str, required: bool = False) -> Field:
    return Field(name, help, {"type": "string", "format": "binary"}, required=required)


def number(name: str, low: float, high: float, help: str, default: float | None = None, above_low: bool = False) -> Field:
    return Field(name, help, {"type": "number", "minimum": low, "maximum": high, **({"exclusiveMinimum": low} if above_low else {})},
                 cli_args.number(name, low, high, above_low=above_low), default)


def whole(name: str, low: int, high: int, help: str, default: int | None = None) -> Field:
    return Field(name, help, {"type": "integer", "minimum": low, "maximum": high}, cli_args.whole(name, low, high), default)


def choice(name: str, choices: tuple[str, ...], help: str, default: str | None = None) -> Field:
    def parse(text: str) -> str:
        if text not in choices:
            raise AudiolmError(f"{name}: must be one of {', '.join(choices)} (got {text!r})")
        return text

    return Field(name, help, {"type": "string", "enum": list(choices)}, parse, default)


def flag(name: str, help: str, default: bool = False) -> Field:
    def parse(text: str) -> bool:
        if text.lower() in TRUE:
            return True
        if text.lower() in FALSE:
            return False
        raise AudiolmError(f"{name}: must be true or false (got {text!r})")

    return Field(name, help, {"type": "boolean"}, parse, default)


def text(name: str, help: str, default: str | None = None) -> Field:
    return Field(name, help, {"type": "string"}, str, default)


@dataclass
class Uploaded:
    """A file field: what the client called it (for error messages, as the CLI names a file) and its stream."""

    filename: str
    file: object = field(repr=False)  # a binary file object (starlette's spooled upload)


def parse_form(form, fields: list[Field]) -> argparse.Namespace:
    """`form` (a starlette FormData: str values and UploadFile values) -> a Namespace with every field, absent ones at
    their default; an empty value (an HTML form's empty input, a file input with no file) counts as absent."""
    known = {f.name: f for f in fields}
    unknown = sorted(set(form.keys()) - set(known))
    if unknown:
        raise AudiolmError(f"unknown form field {unknown[0]!r}; this endpoint takes {', '.join(known)}")
    options = argparse.Namespace()
    for f in fields:
        values = [v for v in form.getlist(f.name) if not _empty(v)]
        if len(values) > 1:
            raise AudiolmError(f"{f.name}: given {len(values)} times")
        if not values:
            if f.required:
                raise AudiolmError(f"{f.name}: required")
            setattr(options, f.name, f.default)
            continue
        value = values[0]
        is_upload = hasattr(value, "filename") and hasattr(value, "file")
        if f.is_file != is_upload:
            raise AudiolmError(f"{f.name}: must be {'a file upload' if f.is_file else 'a value, not a file'}")
        setattr(options, f.name, Uploaded(value.filename or f.name, value.file) if f.is_file else f.parse(value.strip()))
    return options


def _empty(value) -> bool:
    if hasattr(value, "filename") and hasattr(value, "file"):
        return not value.filename and not (value.size or 0)
    return isinstance(value, str) and value.strip() == ""


def openapi_body(fields: list[Field]) -> dict:
    """The OpenAPI requestBody of a multipart form with `fields`."""
    properties = {}
    for f in fields:
        schema = {**f.schema, "description": f.help}
        if f.default is not None:
            schema["default"] = f.default
        properties[f.name] = schema
    required = [f.name for f in fields if f.required]
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {
        "schema": {"type": "object", "properties": properties, **({"required": required} if required else {})}}}}}


# --- the fields of each endpoint ---------------------------------------------------------------------------------


def models_field(names: list[str]) -> Field:
    return choice("models", tuple(names), f"the model bundle (default {names[0]})", names[0])


def sampling_fields() -> list[Field]:
    """Sampling and acoustic-stage options, as `audiolm continue | generate | resynth` take them."""
    temperature = [number(f"{stage}_temperature", 0.0, limits.MAX_TEMPERATURE, f"{stage} stage temperature (0: greedy; default "
                          "AudioLM's)") for stage in ("semantic", "coarse", "fine")]
    return [
        whole("seed", 0, limits.MAX_SEED, "random seed: the same seed and options give the same audio", 0),
        *temperature,
        whole("top_k", 0, limits.MAX_TOP_K, "sample from the k likeliest ids (0: all)", 0),
        number("top_p", 0.0, 1.0, "sample from the likeliest ids holding this probability (1: all)", 1.0, above_low=True),
        choice("acoustic", ACOUSTIC, "acoustic stage: parallel, ar (the paper's coarse + fine LMs), auto (parallel where the bundle "
               "has it)", "auto"),
        whole("levels", 1, limits.MAX_CODEBOOKS, "codec levels the parallel stage decodes (default all)"),
        Field("iterations", "parallel stage: forward passes per level, comma-separated (default 16,1)", {"type": "string"},
              cli_args.whole_list("iterations", 1, limits.MAX_PARALLEL_ITERATIONS)),
        number("parallel_temperature", 0.0, limits.MAX_TEMPERATURE, "parallel stage: level 1's temperature (default 0.8)"),
        number("guidance", 0.0, limits.MAX_GUIDANCE, "parallel stage: classifier-free guidance weight against the acoustic-only "
               "stage (0: none)"),
    ]


def watermark_field() -> Field:
    return flag("watermark", "put the inaudible watermark on the result (`audiolm detect` finds it); false leaves it out", True)


def prompt_fields(what: str) -> list[Field]:
    return [upload("audio", f"{what}: an audio file in any format the CLI reads (WAV, FLAC, OGG/Opus, MP3, ...)"),
            text("prompt", f"{what}: instead of `audio`, the file name of one of the bundle's prompts (GET /v1/info lists them)")]


def continue_fields(settings, models: list[str]) -> list[Field]:
    return [*prompt_fields("the prompt"),
            number("seconds", 0.0, settings.max_seconds, "seconds of new audio", 7.0, above_low=True),
            number("prompt_seconds", 0.0, settings.max_prompt_seconds, "seconds of the prompt file to use", 3.0, above_low=True),
            flag("acoustic_only", "the baseline: the acoustic stage's model trained without semantic tokens"),
            *sampling_fields(), watermark_field(), models_field(models)]


def generate_fields(settings, models: list[str]) -> list[Field]:
    return [number("seconds", 0.0, settings.max_seconds, "seconds of audio", 10.0, above_low=True), *sampling_fields(),
            watermark_field(), models_field(models)]


def resynth_fields(settings, models: list[str]) -> list[Field]:
    return [*prompt_fields(f"the audio to resynthesize (at most {settings.max_seconds:g} s)"), *sampling_fields(), watermark_field(),
            models_field(models)]


def job_fields(settings, models: list[str]) -> list[Field]:
    """`POST /v1/jobs`: a mode and the fields of every mode (each mode reads its own)."""
    merged: dict[str, Field] = {}
    for fields in (continue_fields(settings, models), generate_fields(settings, models), resynth_fields(settings, models)):
        for f in fields:
            merged.setdefault(f.name, f)
    merged["seconds"] = number("seconds", 0.0, settings.max_seconds, "seconds of new audio (default 7 for continue, 10 for "
                               "generate)", above_low=True)
    return [choice("mode", MODES, "what to do: continue a prompt, generate from nothing, resynthesize a file", "continue"),
            *merged.values()]


def encode_fields(settings, models: list[str]) -> list[Field]:
    return [upload("audio", f"audio to encode (at most {settings.max_input_seconds:g} s)", required=True),
            number("bitrate", 0.0, limits.MAX_BITRATE_KBPS, "the most codec levels within this bitrate in kbps (default all)",
                   above_low=True),
            models_field(models)]


def detect_fields(settings, models: list[str]) -> list[Field]:
    return [upload("audio", "audio to score, any format the CLI reads (of a longer file the first "
                   f"{min(settings.max_input_seconds, limits.MAX_DETECT_SECONDS):g} s are scored)", required=True),
            models_field(models)]


def decode_fields(settings, models: list[str]) -> list[Field]:
    return [upload("codes", "a .codes file written by this bundle's codec (POST /v1/codec/encode, `audiolm codec encode`)",
                   required=True),
            models_field(models)]
