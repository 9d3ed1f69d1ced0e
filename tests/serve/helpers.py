"""Shared by the serve tests: a tiny bundle with prompts, audio bytes of every kind, a real server on loopback."""

from __future__ import annotations

import io
import json
import shutil
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import soundfile as sf

from audiolm.cli.serve import listen
from tests.helpers_lm import tiny_bundle

ROOT = Path(__file__).resolve().parents[2]
PROMPTS = ROOT / "models" / "speech" / "prompts"
SR = 16000


def tone(seconds: float, sample_rate: int = SR, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    wav = (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    return np.repeat(wav[:, None], channels, axis=1) if channels > 1 else wav


def wav_bytes(samples: np.ndarray, sample_rate: int = SR, subtype: str = "PCM_16", format: str = "WAV") -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, sample_rate, subtype=subtype, format=format)
    return buffer.getvalue()


def tiny_served_bundle(folder: Path) -> Path:
    """A tiny random bundle (both acoustic stages) that ships two of the speech bundle's prompts."""
    tiny_bundle(folder, parallel=True)
    (folder / "prompts").mkdir()
    listing = json.loads((PROMPTS / "prompts.json").read_text())[:2]
    for entry in listing:
        shutil.copy(PROMPTS / entry["file"], folder / "prompts" / entry["file"])
    (folder / "prompts" / "prompts.json").write_text(json.dumps(listing))
    return folder


@contextmanager
def live_server(app, host: str = "127.0.0.1"):
    """Serve `app` with uvicorn on a free loopback port in a thread; yields the base URL."""
    import uvicorn

    sock = listen(host, 0)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=5))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    began = time.monotonic()
    while not server.started:
        if time.monotonic() - began > 30 or not thread.is_alive():
            raise RuntimeError("the server did not start")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
