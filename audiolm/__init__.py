"""audiolm: audio generation as language modelling over discrete audio tokens (AudioLM)."""

__version__ = "0.1.0"
