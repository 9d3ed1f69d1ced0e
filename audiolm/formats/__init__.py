"""The project's file formats, below every model and trainer: atomic writes, JSON and YAML configs (dataclasses,
`key=value` overrides), safetensors modules. Readers raise `audiolm.errors.FileError` / `AudiolmError` for any bad
input, never anything else (tests/formats/test_properties.py fuzzes them)."""
