"""In-process espeak-ng synthesis with phone alignments, through ctypes on libespeak-ng.

espeak-ng reports a phoneme event, with its offset in the output, for every phone it speaks when
initialised for synchronous output with phoneme events. The library holds global state, so a process
uses one `Espeak` at a time (each worker process of the corpus builder makes its own).
"""

from __future__ import annotations

import ctypes
import ctypes.util
from dataclasses import dataclass

import numpy as np

AUDIO_OUTPUT_SYNCHRONOUS = 2
INITIALIZE_PHONEME_EVENTS = 0x0001
INITIALIZE_PHONEME_IPA = 0x0002
INITIALIZE_DONT_EXIT = 0x8000
PHONEMES_IPA = 0x02
EVENT_LIST_TERMINATED = 0
EVENT_PHONEME = 7
CHARS_UTF8 = 1
PARAM_RATE, PARAM_PITCH, PARAM_RANGE = 1, 3, 4


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),  # milliseconds from the start of the output
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


@dataclass(frozen=True)
class EspeakResult:
    wav: np.ndarray  # [L] float32 at `sample_rate`
    sample_rate: int
    phones: list[tuple[str, float, float]]  # (IPA phone, start s, end s), contiguous, covering the audio


class Espeak:
    """A handle on libespeak-ng. `synth(text, voice, pitch, rate)` returns audio and phone times."""

    def __init__(self) -> None:
        name = ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1"
        try:
            self._lib = ctypes.CDLL(name)
        except OSError as error:
            raise RuntimeError(f"libespeak-ng not found ({error}); install the Debian package espeak-ng") from None
        options = INITIALIZE_PHONEME_EVENTS | INITIALIZE_PHONEME_IPA | INITIALIZE_DONT_EXIT
        self.sample_rate = self._lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, None, options)
        if self.sample_rate <= 0:
            raise RuntimeError("espeak_Initialize failed")
        self._libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        self._libc.srand.argtypes = [ctypes.c_uint]
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple[str, int]] = []
        self._callback = _CALLBACK(self._on_synth)  # keep a reference: the library calls it later
        self._lib.espeak_SetSynthCallback(self._callback)
        self._lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self._lib.espeak_Synth.argtypes = [
            ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
            ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]
        self._lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        self._lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_int, ctypes.c_int]

    def _on_synth(self, wav, num_samples, events) -> int:
        if num_samples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(num_samples,)).copy())
        i = 0
        while events[i].type != EVENT_LIST_TERMINATED:
            event = events[i]
            if event.type == EVENT_PHONEME:
                name = bytes(event.id.string).split(b"\0", 1)[0].decode("utf-8", "replace")
                self._events.append((name, event.audio_position))
            i += 1
        return 0

    def synth(self, text: str, voice: str, pitch: int = 50, rate: int = 175, seed: int = 0) -> EspeakResult:
        """Speak `text` with `voice` (e.g. "en-us+m3"); pitch 0-99, rate in words per minute.

        `seed` seeds the C library's rand(), which espeak's noise sources draw from. The library keeps a
        few samples of state between utterances, so a repeat can differ in length by a few samples.
        """
        self._libc.srand(seed & 0xFFFFFFFF)
        if self._lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ValueError(f"espeak-ng has no voice {voice!r}")
        self._lib.espeak_SetParameter(PARAM_PITCH, int(pitch), 0)
        self._lib.espeak_SetParameter(PARAM_RATE, int(rate), 0)
        self._chunks, self._events = [], []
        data = text.encode("utf-8") + b"\0"
        self._lib.espeak_Synth(data, len(data), 0, 0, 0, CHARS_UTF8, None, None)
        self._lib.espeak_Synchronize()
        pcm = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        wav = pcm.astype(np.float32) / 32768.0
        duration = len(wav) / self.sample_rate
        return EspeakResult(wav, self.sample_rate, _contiguous_phones(self._events, duration))


    def phonemize(self, text: str, voice: str = "en-us") -> str:
        """The IPA that `voice` would speak for `text`, as `espeak-ng -q --ipa` prints it (clauses joined by spaces,
        no punctuation; stress marks and length marks kept)."""
        if self._lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ValueError(f"espeak-ng has no voice {voice!r}")
        data = ctypes.create_string_buffer(text.encode("utf-8") + b"\0")
        pointer = ctypes.c_void_p(ctypes.addressof(data))  # the library moves it clause by clause, to NULL at the end
        clauses = []
        while pointer.value:
            clause = self._lib.espeak_TextToPhonemes(ctypes.byref(pointer), CHARS_UTF8, PHONEMES_IPA)
            if clause:
                clauses.append(clause.decode("utf-8", "replace"))
        return " ".join(" ".join(clauses).split())


def _contiguous_phones(events: list[tuple[str, int]], duration: float) -> list[tuple[str, float, float]]:
    """Turn (phone, start ms) events into contiguous (phone, start, end) segments from 0 to `duration`.

    Silence before the first phone becomes "sil"; empty names (word and pause markers) also become "sil";
    a phone that starts where the next one does is dropped.
    """
    starts = [(name.strip() or "sil", min(ms / 1000.0, duration)) for name, ms in events]
    if not starts or starts[0][1] > 0.0:
        starts.insert(0, ("sil", 0.0))
    phones: list[tuple[str, float, float]] = []
    for (name, start), (_, end) in zip(starts, [*starts[1:], ("", duration)]):
        if end <= start:
            continue
        if phones and phones[-1][0] == "sil" and name == "sil":
            phones[-1] = ("sil", phones[-1][1], end)
        else:
            phones.append((name, start, end))
    return phones
