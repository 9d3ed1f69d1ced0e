"""Audio I/O, DSP helpers and augmentation."""

from audiolm.audio.io import AudioError, AudioInfo, audio_info, load_audio, save_audio

__all__ = ["AudioError", "AudioInfo", "audio_info", "load_audio", "save_audio"]
