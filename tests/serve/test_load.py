"""A bounded load test on loopback: a real uvicorn server (tiny bundle, one worker, nothing waiting), 8 clients x 2
requests at once. Every answer is a 200 or a 503 with Retry-After, never a crash; the server is healthy afterwards.
(benchmarks/bench_serve.py is the same with the bundled models, and measures latency, throughput and memory.)"""

from __future__ import annotations

import threading
import time

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("uvicorn")

from audiolm.serve.app import create_app, load_bundles  # noqa: E402
from audiolm.serve.settings import ServeSettings  # noqa: E402
from tests.serve.helpers import live_server, tiny_served_bundle, tone, wav_bytes  # noqa: E402

CLIENTS, REQUESTS = 8, 2


def test_load_on_loopback_gives_only_200_or_503_and_stays_healthy(tmp_path):
    bundles = load_bundles([str(tiny_served_bundle(tmp_path / "tiny"))])
    app = create_app(bundles, ServeSettings(workers=1, queue=0, threads=1, timeout=60))
    prompt = wav_bytes(tone(1.0))
    answers: list[tuple[int, str | None, str]] = []
    lock = threading.Lock()
    with live_server(app) as url:
        start = threading.Barrier(CLIENTS)

        def client(i: int) -> None:
            with httpx.Client(base_url=url, timeout=60) as http:
                start.wait()
                for j in range(REQUESTS):
                    if (i + j) % 2:
                        response = http.post("/v1/generate", data={"seconds": "1", "seed": str(i)})
                    else:
                        response = http.post("/v1/continue", files={"audio": ("p.wav", prompt)}, data={"seconds": "1", "seed": str(j)})
                    kind = response.headers.get("content-type", "")
                    with lock:
                        answers.append((response.status_code, response.headers.get("retry-after"), kind))

        threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert len(answers) == CLIENTS * REQUESTS
        assert {status for status, _, _ in answers} <= {200, 503}, answers
        assert any(status == 200 for status, _, _ in answers) and any(status == 503 for status, _, _ in answers)  # capacity 1 held
        for status, retry_after, kind in answers:
            if status == 200:
                assert kind == "audio/wav"
            else:
                assert kind == "application/json" and retry_after is not None and int(retry_after) >= 1
        with httpx.Client(base_url=url, timeout=30) as http:
            began = time.monotonic()
            while http.get("/health").json()["running"] and time.monotonic() - began < 30:
                time.sleep(0.05)
            assert http.get("/health").json() == {"status": "ok", "models": ["tiny"], "running": 0, "waiting": 0, "capacity": 1}
            assert http.post("/v1/generate", data={"seconds": "0.5"}).status_code == 200
