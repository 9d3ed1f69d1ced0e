"""A bounded load test of `audiolm serve` on loopback: N clients x M short requests at once against the bundled models.

    .venv/bin/python benchmarks/bench_serve.py                                   # 20 clients x 3 continuations of 1 s
    .venv/bin/python benchmarks/bench_serve.py --workers 2 --queue 8 --label "2 workers"

Starts the server as `audiolm serve --port 0` (its own process, so its memory is its own), waits for /health, sends one
warm-up request, then lets every client send its requests one after another (a bundled prompt continued by `--seconds`
with its own seed); no client retries. Every answer must be a 200 (a wav) or a 503 with Retry-After. Measures latency
(p50 / p95 of the 200s and of the 503s), throughput (answers with audio per second of the run, and seconds of audio per
second), the server's resident memory (peak over its life, VmHWM, and sampled during the load) and its health afterwards,
then stops it with SIGINT. Results for each label go to benchmarks/results/serve.json and serve.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def start_server(args) -> tuple[subprocess.Popen, str]:
    command = [sys.executable, "-m", "audiolm.cli.main", "serve", "--port", "0", "--models", args.models, "--workers", str(args.workers),
               "--queue", str(args.queue), "--threads", str(args.threads), "--timeout", str(args.timeout), "--quiet"]
    server = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    line = server.stdout.readline()
    match = re.search(r"http://([^/]+)/", line)
    if not match:
        server.kill()
        raise SystemExit(f"the server did not start: {line!r}")
    url = f"http://{match.group(1)}"
    with httpx.Client(base_url=url, timeout=10) as http:
        began = time.monotonic()
        while True:
            try:
                if http.get("/health").json()["status"] == "ok":
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() - began > 120:
                server.kill()
                raise SystemExit("the server never became healthy")
            time.sleep(0.1)
    return server, url


def run(args) -> dict:
    server, url = start_server(args)
    try:
        with httpx.Client(base_url=url, timeout=args.timeout + 30) as http:
            prompts = http.get("/v1/info").json()["models"][0]["prompts"]
            began = time.perf_counter()
            warm = http.post("/v1/continue", data={"prompt": prompts[0]["file"], "seconds": str(args.seconds)})
            warm_seconds = time.perf_counter() - began
            assert warm.status_code == 200, warm.text
        rss_before = rss_mb(server.pid)
        answers: list[dict] = []
        lock = threading.Lock()
        barrier = threading.Barrier(args.clients + 1)
        done = threading.Event()
        peak = [rss_before]

        def sample() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], rss_mb(server.pid))
                time.sleep(0.05)

        def client(i: int) -> None:
            with httpx.Client(base_url=url, timeout=args.timeout + 30) as http:
                barrier.wait()
                for j in range(args.requests):
                    data = {"prompt": prompts[(i + j) % len(prompts)]["file"], "seconds": str(args.seconds), "seed": str(i * 100 + j)}
                    start = time.perf_counter()
                    try:
                        response = http.post("/v1/continue", data=data)
                        status, retry = response.status_code, response.headers.get("retry-after")
                        kind, size = response.headers.get("content-type", ""), len(response.content)
                        headers = response.headers
                        audio = float(headers.get("x-audiolm-seconds", 0)) - float(headers.get("x-audiolm-prompt-seconds", 0))
                    except httpx.HTTPError as error:
                        status, retry, kind, size, audio = f"{type(error).__name__}", None, "", 0, 0.0
                    with lock:
                        answers.append({"status": status, "seconds": time.perf_counter() - start, "retry_after": retry, "type": kind,
                                        "bytes": size, "audio": audio})

        threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
        sampler = threading.Thread(target=sample, daemon=True)
        for t in threads:
            t.start()
        sampler.start()
        barrier.wait()
        began = time.perf_counter()
        for t in threads:
            t.join()
        wall = time.perf_counter() - began
        done.set()
        with httpx.Client(base_url=url, timeout=30) as http:
            health = http.get("/health").json()
            waited = time.monotonic()
            while (health["running"] or health["waiting"]) and time.monotonic() - waited < 30:
                time.sleep(0.1)
                health = http.get("/health").json()
            after = http.post("/v1/continue", data={"prompt": prompts[0]["file"], "seconds": str(args.seconds)}).status_code
        peak_life = rss_mb(server.pid, "VmHWM")
    finally:
        server.send_signal(signal.SIGINT)
        try:
            exit_code = server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            exit_code = "killed"
    ok = [a for a in answers if a["status"] == 200]
    refused = [a for a in answers if a["status"] in (429, 503)]
    other = [a for a in answers if a not in ok and a not in refused]
    bad_refusals = [a for a in refused if not a["retry_after"]]
    return {
        "label": args.label, "models": args.models, "clients": args.clients, "requests": args.requests, "seconds": args.seconds,
        "workers": args.workers, "queue": args.queue, "threads": args.threads, "warm_up_seconds": round(warm_seconds, 2),
        "wall_seconds": round(wall, 2), "answers": len(answers), "ok": len(ok), "refused": len(refused), "other": len(other),
        "other_statuses": sorted({str(a["status"]) for a in other}), "refusals_without_retry_after": len(bad_refusals),
        "ok_p50": percentile([a["seconds"] for a in ok], 0.5), "ok_p95": percentile([a["seconds"] for a in ok], 0.95),
        "refused_p50": percentile([a["seconds"] for a in refused], 0.5), "refused_p95": percentile([a["seconds"] for a in refused], 0.95),
        "throughput_rps": len(ok) / wall, "audio_seconds_per_second": sum(a["audio"] for a in ok) / wall,
        "rss_before_mb": round(rss_before, 1), "rss_peak_load_mb": round(peak[0], 1), "rss_peak_life_mb": round(peak_life, 1),
        "health_after": health, "request_after": after, "exit_code": exit_code,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
    }


def write_tables(results: dict) -> str:
    def ms(value):
        return "-" if value is None else f"{value * 1000:.0f}"

    lines = ["| label | clients x requests | workers / queue / threads | 200 | 503 | other | p50 / p95 of 200s, ms | p50 / p95 of 503s, ms "
             "| answers with audio / s | s of audio / s | RSS: loaded / peak under load / peak, MB | healthy after |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in results.values():
        healthy = r["health_after"].get("status") == "ok" and not r["health_after"]["running"] and r["request_after"] == 200
        lines.append(f"| {r['label']} | {r['clients']} x {r['requests']} | {r['workers']} / {r['queue']} / {r['threads']} | {r['ok']} | "
                     f"{r['refused']} | {r['other']} | {ms(r['ok_p50'])} / {ms(r['ok_p95'])} | {ms(r['refused_p50'])} / "
                     f"{ms(r['refused_p95'])} | {r['throughput_rps']:.2f} | {r['audio_seconds_per_second']:.2f} | "
                     f"{r['rss_before_mb']:.0f} / {r['rss_peak_load_mb']:.0f} / {r['rss_peak_life_mb']:.0f} | "
                     f"{'yes' if healthy else 'NO'} (exit {r['exit_code']}) |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="speech")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=1.0, help="new audio per request")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--queue", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--label", default=None)
    args = parser.parse_args()
    args.label = args.label or f"{args.workers} worker(s), queue {args.queue}"
    result = run(args)
    print(json.dumps(result, indent=2))
    store = RESULTS / "serve.json"
    results = json.loads(store.read_text()) if store.exists() else {}
    results[args.label] = result
    RESULTS.mkdir(exist_ok=True)
    store.write_text(json.dumps(results, indent=2) + "\n")
    machine = result["machine"]
    (RESULTS / "serve.md").write_text(
        "# `audiolm serve` under load\n\n"
        "Command: `.venv/bin/python benchmarks/bench_serve.py [--clients N --requests M --seconds S --workers W --queue Q --threads T "
        "--label L]`: the server (`audiolm serve --port 0`, the bundled speech models) on loopback, N clients sending M requests "
        "each at once, every request a continuation of a bundled 3 s prompt by S seconds with its own seed, no retries. "
        "A 503 is the server refusing at once when W generations run and Q wait (with Retry-After); p50 / p95 are per request, "
        "as the client sees it; throughput counts answers with audio per second of the whole run; RSS is the server process's "
        "resident memory once loaded and warm, its peak sampled every 50 ms under the load, and its lifetime peak (VmHWM). "
        f"\"Healthy after\": /health answers ok with nothing running or waiting, one more request gets its wav, and SIGINT "
        f"stops the server with exit status 0. Machine: {machine}; two training processes at nice 19 shared the two cores.\n\n"
        + write_tables(results) + "\n")
    print(f"wrote {RESULTS / 'serve.md'}")
    if result["other"] or result["refusals_without_retry_after"] or result["request_after"] != 200 or result["exit_code"] != 0:
        raise SystemExit("FAILED: an answer other than 200 / 503-with-Retry-After, or the server was not healthy after")


if __name__ == "__main__":
    main()
