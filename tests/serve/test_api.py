"""The real app through an HTTP client (starlette's TestClient: httpx in-process, lifespan included), on a tiny random
bundle: every endpoint, every limit, every bad input, and answers equal to what the CLI writes."""

from __future__ import annotations

import io
import re
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from audiolm.cli.main import main  # noqa: E402
from audiolm.codec.codes_file import load_codes, save_codes  # noqa: E402
from audiolm.codec.model import Codec, CodecConfig  # noqa: E402
from audiolm.serve.app import create_app, load_bundles  # noqa: E402
from audiolm.serve.jobs import current_job  # noqa: E402
from audiolm.serve.settings import ServeSettings  # noqa: E402
from tests.helpers_lm import TINY_CODEC  # noqa: E402
from tests.serve.helpers import tiny_served_bundle, tone, wav_bytes  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")
SR = 16000


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tiny_served_bundle(tmp_path_factory.mktemp("serve") / "tiny")


@pytest.fixture(scope="module")
def bundles(folder):
    return load_bundles([str(folder)])


@pytest.fixture
def client(bundles):
    with TestClient(create_app(bundles, ServeSettings(threads=1)), raise_server_exceptions=False) as c:
        yield c


def served(bundles, **settings):
    return TestClient(create_app(bundles, ServeSettings(threads=1, **settings)), raise_server_exceptions=False)


PROMPT = wav_bytes(tone(1.5))


def read_wav(content: bytes) -> tuple[np.ndarray, int, str]:
    info = sf.info(io.BytesIO(content))
    data, rate = sf.read(io.BytesIO(content), dtype="float32")
    return data, rate, info.subtype


def cli_error(capsys, argv: list[str]) -> str:
    """The one line the CLI prints for `argv`, without its `audiolm: error: ` prefix."""
    assert main(argv) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("audiolm: error: "), lines
    return lines[0].removeprefix("audiolm: error: ")


class Blocker:
    """A forward pre-hook on the codec decoder that holds every job's decode until `release()` (at most `limit` s)."""

    def __init__(self, bundles, limit: float = 20.0) -> None:
        self.event, self.entered, self.limit = threading.Event(), threading.Event(), limit
        decoder = next(iter(bundles.values())).audiolm.codec.decoder
        self.handle = decoder.register_forward_pre_hook(self.hook)

    def hook(self, module, inputs):
        if current_job() is not None:
            self.entered.set()
            self.event.wait(self.limit)

    def release(self) -> None:
        self.event.set()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.release()
        self.handle.remove()


def wait_until(condition, timeout: float = 20.0) -> None:
    began = time.monotonic()
    while not condition():
        assert time.monotonic() - began < timeout, "timed out"
        time.sleep(0.02)


# --- health, info, docs, the page ---------------------------------------------------------------------------------------


def test_health_and_info(client, folder):
    assert client.get("/health").json() == {"status": "ok", "models": ["tiny"], "running": 0, "waiting": 0, "capacity": 5}
    info = client.get("/v1/info").json()
    (bundle,) = info["models"]
    assert bundle["name"] == "tiny" and bundle["sample_rate"] == SR and bundle["acoustic"] == ["parallel", "ar"]
    assert [p["file"] for p in bundle["prompts"]] == ["espeak-en-029-steph2-p70.wav", "espeak-en-gb-scotland-diogo-p70.wav"]
    first = bundle["prompts"][0]
    response = client.get(first["url"])
    assert response.status_code == 200 and response.content == (folder / "prompts" / first["file"]).read_bytes()
    assert info["limits"]["max_seconds"] == 20 and info["limits"]["max_upload_bytes"] == 16 * 1024**2
    assert client.get("/v1/models/tiny/prompts/nope.wav").status_code == 404
    assert client.get("/v1/models/tiny/prompts/..%2Fcodec%2Fconfig.json").status_code == 404


def test_docs_work_without_network(client):
    html = client.get("/docs").text
    urls = re.findall(r'(?:src|href)="([^"]+)"', html) + re.findall(r"url: '([^']+)'", html)
    assert urls and all(u.startswith("/") for u in urls), urls  # nothing from a CDN
    for url in urls:
        assert client.get(url).status_code == 200, url
    schema = client.get("/openapi.json").json()
    for path in ("/v1/continue", "/v1/generate", "/v1/resynth", "/v1/codec/encode", "/v1/codec/decode", "/v1/jobs"):
        form = schema["paths"][path]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
        assert form["properties"], path
    continue_form = schema["paths"]["/v1/continue"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert continue_form["properties"]["audio"]["format"] == "binary" and continue_form["properties"]["seconds"]["maximum"] == 20


def test_page_and_its_files_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text)
    assert {"/static/app.js", "/static/style.css"} <= set(assets)
    for asset in [*assets, "/static/recorder-worklet.js"]:
        assert client.get(asset).status_code == 200, asset
    assert "http://" not in page.text and "https://" not in page.text


def test_unknown_paths_and_methods_are_json(client):
    response = client.get("/v2/nothing")
    assert response.status_code == 404 and response.json() == {"error": "Not Found"}
    response = client.get("/v1/continue")
    assert response.status_code == 405 and "error" in response.json()


# --- generation: the CLI's output, through the API ---------------------------------------------------------------------


def test_continue_answers_what_the_cli_writes(client, folder, tmp_path):
    (tmp_path / "prompt.wav").write_bytes(PROMPT)
    response = client.post("/v1/continue", files={"audio": ("prompt.wav", PROMPT, "audio/wav")},
                           data={"seconds": "1", "seed": "3", "prompt_seconds": "1"})
    assert response.status_code == 200 and response.headers["content-type"] == "audio/wav"
    api, rate, subtype = read_wav(response.content)
    assert rate == SR and subtype == "PCM_16"
    assert float(response.headers["x-audiolm-prompt-seconds"]) == pytest.approx(1.0, abs=0.05)
    assert len(api) / SR == pytest.approx(2.0, abs=0.05)  # the prompt's part first, then the new audio
    out = tmp_path / "cli.wav"
    assert main(["continue", str(tmp_path / "prompt.wav"), "--seconds", "1", "--seed", "3", "--prompt-seconds", "1",
                 "--models", str(folder), "--threads", "1", "-o", str(out), "--plot", str(tmp_path / "cli.png")]) == 0
    cli, _, _ = read_wav(out.read_bytes())
    np.testing.assert_array_equal(api, cli)
    assert (tmp_path / "cli.png").read_bytes()[:4] == b"\x89PNG"


def test_resynth_answers_what_the_cli_writes(client, folder, tmp_path):
    (tmp_path / "in.wav").write_bytes(PROMPT)
    response = client.post("/v1/resynth", files={"audio": ("in.wav", PROMPT, "audio/wav")}, data={"seed": "4", "acoustic": "ar"})
    assert response.status_code == 200 and response.headers["x-audiolm-acoustic"] == "ar"
    assert main(["resynth", str(tmp_path / "in.wav"), "--seed", "4", "--acoustic", "ar", "--models", str(folder), "--threads", "1",
                 "-o", str(tmp_path / "cli.wav")]) == 0
    np.testing.assert_array_equal(read_wav(response.content)[0], read_wav((tmp_path / "cli.wav").read_bytes())[0])


def test_continue_a_bundled_prompt_and_seeds(client):
    one = client.post("/v1/continue", data={"prompt": client.get("/v1/info").json()["models"][0]["prompts"][0]["file"],
                                            "seconds": "0.5", "seed": "1"})
    again = client.post("/v1/continue", data={"prompt": client.get("/v1/info").json()["models"][0]["prompts"][0]["file"],
                                              "seconds": "0.5", "seed": "1"})
    other = client.post("/v1/continue", data={"prompt": client.get("/v1/info").json()["models"][0]["prompts"][0]["file"],
                                              "seconds": "0.5", "seed": "2"})
    assert one.status_code == again.status_code == other.status_code == 200
    assert one.content == again.content and one.content != other.content
    assert len(read_wav(one.content)[0]) / SR == pytest.approx(3.5, abs=0.05)  # the 3 s default prompt_seconds, then 0.5 s


def test_continue_options(client):
    for data in ({"acoustic": "ar", "acoustic_only": "true"}, {"acoustic": "parallel", "levels": "2", "iterations": "2,1"},
                 {"semantic_temperature": "0", "top_k": "3", "top_p": "0.9", "parallel_temperature": "0.5"}):
        response = client.post("/v1/continue", files={"audio": ("p.flac", wav_bytes(tone(1.0), format="FLAC"), "audio/flac")},
                               data={"seconds": "0.5", **data})
        assert response.status_code == 200, (data, response.text)


def test_generate_and_resynth(client):
    response = client.post("/v1/generate", data={"seconds": "1.5", "seed": "4"})
    assert response.status_code == 200 and len(read_wav(response.content)[0]) / SR == pytest.approx(1.5, abs=0.05)
    stereo8k = wav_bytes(tone(1.0, 8000, channels=2), 8000)  # resampled and mixed down, as the CLI does
    response = client.post("/v1/resynth", files={"audio": ("in.wav", stereo8k, "audio/wav")}, data={"seed": "5"})
    assert response.status_code == 200 and len(read_wav(response.content)[0]) / SR == pytest.approx(1.0, abs=0.05)


def test_results_are_watermarked_unless_watermark_is_false(client):
    from audiolm.watermark import detect

    for mode, data in (("generate", {"seconds": "1"}), ("resynth", {}), ("continue", {"seconds": "0.5", "prompt_seconds": "1"})):
        files = None if mode == "generate" else {"audio": ("p.wav", PROMPT, "audio/wav")}
        marked = client.post(f"/v1/{mode}", files=files, data={"seed": "2", **data})
        plain = client.post(f"/v1/{mode}", files=files, data={"seed": "2", "watermark": "false", **data})
        assert marked.status_code == plain.status_code == 200, (mode, marked.text, plain.text)
        assert marked.headers["x-audiolm-watermark"] == "true" and plain.headers["x-audiolm-watermark"] == "false"
        assert detect(read_wav(marked.content)[0], SR).watermark and not detect(read_wav(plain.content)[0], SR).watermark, mode
    job = client.post("/v1/jobs", data={"mode": "generate", "seconds": "0.5", "watermark": "off"}).json()["id"]
    wait_until(lambda: client.get(f"/v1/jobs/{job}").json()["state"] == "done")
    assert client.get(f"/v1/jobs/{job}").json()["result"]["watermark"] is False


def test_codec_encode_and_decode_match_the_cli(client, folder, tmp_path, capsys):
    (tmp_path / "in.wav").write_bytes(PROMPT)
    response = client.post("/v1/codec/encode", files={"audio": ("in.wav", PROMPT, "audio/wav")}, data={"bitrate": "1"})
    assert response.status_code == 200 and response.headers["content-disposition"] == 'attachment; filename="in.codes"'
    (tmp_path / "api.codes").write_bytes(response.content)
    assert main(["codec", "encode", str(tmp_path / "in.wav"), "-o", str(tmp_path / "cli.codes"), "--model", str(folder / "codec"),
                 "--bitrate", "1"]) == 0
    api, cli = load_codes(tmp_path / "api.codes"), load_codes(tmp_path / "cli.codes")
    assert torch.equal(api.codes, cli.codes) and api.num_samples == cli.num_samples == len(tone(1.5))
    response = client.post("/v1/codec/decode", files={"codes": ("api.codes", (tmp_path / "api.codes").read_bytes())})
    assert response.status_code == 200
    assert main(["codec", "decode", str(tmp_path / "cli.codes"), "-o", str(tmp_path / "cli.wav"), "--model", str(folder / "codec")]) == 0
    np.testing.assert_array_equal(read_wav(response.content)[0], read_wav((tmp_path / "cli.wav").read_bytes())[0])


def test_page_job_reports_progress_and_serves_its_files(client):
    response = client.post("/v1/jobs", data={"mode": "continue", "prompt": "espeak-en-029-steph2-p70.wav", "seconds": "1"})
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["steps"] == ["tokenize", "encode", "semantic", "parallel", "decode", "plot"]
    assert response.headers["location"] == f"/v1/jobs/{job['id']}"
    wait_until(lambda: client.get(f"/v1/jobs/{job['id']}").json()["state"] in ("done", "failed", "cancelled"))
    job = client.get(f"/v1/jobs/{job['id']}").json()
    assert job["state"] == "done" and job["progress"] == 1 and job["error"] is None, job
    assert set(job["files"]) == {"result.wav", "prompt.wav", "result.png", "prompt.png"}
    result = read_wav(client.get(job["files"]["result.wav"]).content)[0]
    prompt = read_wav(client.get(job["files"]["prompt.wav"]).content)[0]
    assert len(prompt) == 3 * SR and len(result) / SR == pytest.approx(4.0, abs=0.05)
    for png in ("result.png", "prompt.png"):
        assert client.get(job["files"][png]).content[:8] == b"\x89PNG\r\n\x1a\n"
    assert client.delete(f"/v1/jobs/{job['id']}").status_code == 200
    assert client.get(f"/v1/jobs/{job['id']}").status_code == 404
    assert client.get("/v1/jobs/nope").json()["error"].startswith("no job 'nope'")


def test_page_job_steps_follow_the_mode_and_stage(client):
    steps = {}
    for data in ({"mode": "generate", "seconds": "0.5", "acoustic": "ar"}, {"mode": "resynth", "prompt": "espeak-en-029-steph2-p70.wav"},
                 {"mode": "continue", "prompt": "espeak-en-029-steph2-p70.wav", "seconds": "0.5", "acoustic_only": "on"}):
        response = client.post("/v1/jobs", data=data)
        assert response.status_code == 202, response.text
        steps[data["mode"]], url = response.json()["steps"], f"/v1/jobs/{response.json()['id']}"
        wait_until(lambda url=url: client.get(url).json()["state"] == "done")
    assert steps == {"generate": ["semantic", "coarse", "fine", "decode", "plot"],
                     "resynth": ["tokenize", "encode", "parallel", "decode", "plot"],
                     "continue": ["tokenize", "encode", "parallel", "decode", "plot"]}
    response = client.post("/v1/jobs", data={"mode": "generate", "seconds": "1", "prompt_seconds": "2"})
    assert response.status_code == 422 and response.json()["error"].startswith("unknown form field 'prompt_seconds'")


def test_old_page_jobs_are_dropped(bundles):
    with served(bundles, results=1) as c:
        ids = []
        for seed in range(3):
            ids.append(c.post("/v1/jobs", data={"mode": "generate", "seconds": "0.5", "seed": str(seed)}).json()["id"])
            wait_until(lambda: c.get(f"/v1/jobs/{ids[-1]}").json()["state"] == "done")
        assert [c.get(f"/v1/jobs/{i}").status_code for i in ids] == [404, 404, 200]


# --- bad inputs: 4xx with the CLI's sentence ---------------------------------------------------------------------------

BAD_AUDIO = {
    "empty": b"",
    "random": np.random.default_rng(2).bytes(4000),
    "truncated": PROMPT[:40],
    "nan": wav_bytes(np.full(SR, np.nan, np.float32), subtype="FLOAT"),
    "silent": wav_bytes(np.zeros(SR, np.float32)),
    "short": wav_bytes(tone(0.05)),
}


@pytest.mark.parametrize("kind", list(BAD_AUDIO))
def test_bad_prompt_is_422_with_the_cli_sentence(client, folder, tmp_path, capsys, kind):
    path = tmp_path / f"bad-{kind}.wav"
    path.write_bytes(BAD_AUDIO[kind])
    expected = cli_error(capsys, ["continue", str(path), "--seconds", "0.5", "-o", str(tmp_path / "x.wav"), "--models", str(folder)])
    expected = expected.replace(str(path), path.name)
    response = client.post("/v1/continue", files={"audio": (path.name, path.read_bytes(), "audio/wav")}, data={"seconds": "0.5"})
    assert response.status_code == 422 and response.json() == {"error": expected}


@pytest.mark.parametrize("kind", ["empty", "random", "nan", "silent"])
def test_bad_resynth_and_encode_inputs_are_422(client, kind):
    files = {"audio": (f"{kind}.wav", BAD_AUDIO[kind], "audio/wav")}
    response = client.post("/v1/resynth", files=files)
    assert response.status_code == 422 and response.json()["error"].startswith(f"{kind}.wav: ")
    if kind != "silent":  # the codec encodes silence, as `audiolm codec encode` does
        response = client.post("/v1/codec/encode", files=files)
        assert response.status_code == 422 and response.json()["error"].startswith(f"{kind}.wav: ")


def test_bad_codes_are_422(client, tmp_path, capsys, folder):
    other = Codec(CodecConfig(**TINY_CODEC))  # another codec's codebooks
    save_codes(tmp_path / "other.codes", other.encode(torch.from_numpy(tone(1.0))[None, None]), other, SR)
    expected = cli_error(capsys, ["codec", "decode", str(tmp_path / "other.codes"), "-o", str(tmp_path / "x.wav"), "--model",
                                  str(folder / "codec")]).replace(str(tmp_path / "other.codes"), "other.codes")
    response = client.post("/v1/codec/decode", files={"codes": ("other.codes", (tmp_path / "other.codes").read_bytes())})
    assert response.status_code == 422 and response.json() == {"error": expected}
    for content in (b"", b"junk" * 50, (tmp_path / "other.codes").read_bytes()[:100]):
        response = client.post("/v1/codec/decode", files={"codes": ("x.codes", content)})
        assert response.status_code == 422 and response.json()["error"].startswith("x.codes: "), response.text


@pytest.mark.parametrize("data, error", [
    ({"seconds": "100"}, "seconds: must be at most 20 (got 100)"),
    ({"seconds": "nan"}, "seconds: must be a finite number above 0 and at most 20 (got nan)"),
    ({"seconds": "0"}, "seconds: must be above 0 (got 0)"),
    ({"seconds": "abc"}, "seconds: must be a number above 0 and at most 20 (got 'abc')"),
    ({"prompt_seconds": "11"}, "prompt_seconds: must be at most 10 (got 11)"),
    ({"seed": "-1"}, "seed: must be at least 0 (got -1)"),
    ({"seed": "1.5"}, "seed: must be a whole number from 0 to 4294967295 (got 1.5)"),
    ({"top_k": "100000"}, "top_k: must be at most 65536 (got 100000)"),
    ({"top_k": "64"}, "top_k: must be at most 32 (got 64)"),  # the bundle's own vocabulary
    ({"top_p": "0"}, "top_p: must be above 0 (got 0)"),
    ({"semantic_temperature": "inf"}, "semantic_temperature: must be a finite number from 0 to 10 (got inf)"),
    ({"acoustic": "fast"}, "acoustic: must be one of auto, parallel, ar (got 'fast')"),
    ({"acoustic_only": "maybe"}, "acoustic_only: must be true or false (got 'maybe')"),
    ({"watermark": "maybe"}, "watermark: must be true or false (got 'maybe')"),
    ({"iterations": "0"}, "iterations: must be at least 1 (got 0)"),
    ({"levels": "9"}, "levels: must be at most 4 (got 9)"),  # the bundle's parallel stage decodes 4
    ({"models": "piano"}, "models: must be one of tiny (got 'piano')"),
    ({"colour": "blue"}, "unknown form field 'colour'; this endpoint takes audio, prompt, seconds, prompt_seconds, acoustic_only, seed, "
                         "semantic_temperature, coarse_temperature, fine_temperature, top_k, top_p, acoustic, levels, iterations, "
                         "parallel_temperature, guidance, watermark, models"),
    ({"prompt": "nope.wav"}, "prompt: tiny has no bundled prompt 'nope.wav' (it has espeak-en-029-steph2-p70.wav, "
                             "espeak-en-gb-scotland-diogo-p70.wav)"),
])
def test_bad_fields_are_422_with_one_line(client, data, error):
    files = None if "prompt" in data else {"audio": ("p.wav", PROMPT, "audio/wav")}
    response = client.post("/v1/continue", files=files, data={"seconds": "1", **data})
    assert response.status_code == 422 and response.json() == {"error": error}


def test_missing_and_doubled_inputs(client):
    assert client.post("/v1/continue", data={"seconds": "1"}).json() == {
        "error": "audio: required (or prompt: the name of one of the bundle's prompts)"}
    response = client.post("/v1/continue", files={"audio": ("p.wav", PROMPT)}, data={"prompt": "espeak-en-029-steph2-p70.wav"})
    assert response.status_code == 422 and response.json()["error"].startswith("give audio (an upload) or prompt")
    assert client.post("/v1/codec/encode", data={}).json() == {"error": "audio: required"}
    response = client.post("/v1/continue", data={"audio": "not a file", "seconds": "1"})
    assert response.status_code == 422 and response.json() == {"error": "audio: must be a file upload"}
    response = client.post("/v1/generate", files=[("seconds", (None, "1")), ("seconds", (None, "2"))])
    assert response.status_code == 422 and response.json() == {"error": "seconds: given 2 times"}


def test_acoustic_stage_the_bundle_lacks_is_422(tmp_path):
    folder = tiny_served_bundle(tmp_path / "ar-only")
    for part in ("parallel-lm", "parallel-acoustic-lm"):
        import shutil

        shutil.rmtree(folder / part)
    with served(load_bundles([str(folder)])) as c:
        response = c.post("/v1/generate", data={"seconds": "1", "acoustic": "parallel"})
        assert response.status_code == 422 and response.json() == {"error": "this bundle has no parallel acoustic stage (parallel-lm/)"}


# --- limits ------------------------------------------------------------------------------------------------------------


def test_upload_over_the_limit_is_413_before_it_is_read(bundles):
    with served(bundles, upload_mb=0.1) as c:
        big = wav_bytes(tone(5.0))  # 160 kB
        response = c.post("/v1/continue", files={"audio": ("big.wav", big)}, data={"seconds": "1"})
        assert response.status_code == 413
        assert response.json() == {"error": "request body is larger than the server's 0.1 MiB limit (--max-upload-mb)"}

        def chunks():  # no Content-Length: counted as it arrives
            for i in range(0, len(big), 8192):
                yield big[i:i + 8192]

        response = c.post("/v1/codec/decode", content=chunks(), headers={"content-type": "multipart/form-data; boundary=x"})
        assert response.status_code == 413 and "0.1 MiB" in response.json()["error"]
        assert c.post("/v1/continue", files={"audio": ("p.wav", wav_bytes(tone(1.0)))}, data={"seconds": "0.5"}).status_code == 200


def test_input_length_limits(bundles):
    with served(bundles, max_seconds=2, max_input_seconds=2) as c:
        long = wav_bytes(tone(3.0))
        response = c.post("/v1/resynth", files={"audio": ("long.wav", long)})
        assert response.status_code == 422
        assert response.json() == {"error": "long.wav: audio is 3 s long; this command reads at most 2 s of a file"}
        response = c.post("/v1/codec/encode", files={"audio": ("long.wav", long)})
        assert response.status_code == 422 and response.json()["error"].startswith("long.wav: audio is 3 s long")
        response = c.post("/v1/continue", files={"audio": ("long.wav", long)}, data={"seconds": "1", "prompt_seconds": "1"})
        assert response.status_code == 200  # a prompt is cut to prompt_seconds: only that part is read
        assert c.post("/v1/generate", data={"seconds": "3"}).json() == {"error": "seconds: must be at most 2 (got 3)"}


def test_over_capacity_is_503_with_retry_after_at_once(bundles):
    with served(bundles, workers=1, queue=1) as c, Blocker(bundles) as blocker:
        results = []
        threads = [threading.Thread(target=lambda: results.append(c.post("/v1/generate", data={"seconds": "0.5"}))) for _ in range(2)]
        for t in threads:
            t.start()
        wait_until(lambda: c.get("/health").json()["waiting"] == 1 and blocker.entered.is_set())
        began = time.monotonic()
        refused = c.post("/v1/continue", files={"audio": ("p.wav", PROMPT)}, data={"seconds": "1"})
        assert time.monotonic() - began < 2
        assert refused.status_code == 503 and int(refused.headers["retry-after"]) >= 1
        assert refused.json()["error"].startswith("server busy: 1 generations running and 1 waiting (at most 1 + 1")
        page = c.post("/v1/jobs", data={"mode": "generate", "seconds": "1"})
        assert page.status_code == 503 and "retry-after" in page.headers
        blocker.release()
        for t in threads:
            t.join(30)
        assert [r.status_code for r in results] == [200, 200]
        wait_until(lambda: c.get("/health").json() == {"status": "ok", "models": ["tiny"], "running": 0, "waiting": 0, "capacity": 2})


def test_time_limit_stops_the_generation_and_frees_the_worker(bundles):
    with served(bundles, timeout=1) as c, Blocker(bundles, limit=2.5):
        began = time.monotonic()
        response = c.post("/v1/generate", data={"seconds": "1"})
        assert 1 <= time.monotonic() - began < 4
        assert response.status_code == 503 and "retry-after" in response.headers
        assert response.json() == {
            "error": "time limit: the request ran past the server's 1 s (--timeout); ask for less audio or retry later"}
        wait_until(lambda: c.get("/health").json()["running"] == 0)  # the worker stopped at its next model call
        job = c.post("/v1/jobs", data={"mode": "generate", "seconds": "1"}).json()
        wait_until(lambda: c.get(f"/v1/jobs/{job['id']}").json()["state"] != "queued")
        wait_until(lambda: c.get(f"/v1/jobs/{job['id']}").json()["state"] not in ("queued", "running"))
        job = c.get(f"/v1/jobs/{job['id']}").json()
        assert job["state"] == "cancelled" and job["error"].startswith("time limit: ")


def test_a_page_job_can_be_cancelled(bundles):
    with served(bundles) as c, Blocker(bundles) as blocker:
        job = c.post("/v1/jobs", data={"mode": "generate", "seconds": "1"}).json()
        wait_until(blocker.entered.is_set)
        assert c.delete(f"/v1/jobs/{job['id']}").status_code == 200
        blocker.release()
        wait_until(lambda: c.get(f"/v1/jobs/{job['id']}").json()["state"] == "cancelled")
        assert c.get(f"/v1/jobs/{job['id']}").json()["error"] == "cancelled: cancelled by the client"


def test_requests_in_flight_are_bounded_and_health_is_never_refused(bundles):
    with served(bundles, requests=1) as c, Blocker(bundles) as blocker:
        thread = threading.Thread(target=lambda: c.post("/v1/generate", data={"seconds": "0.5"}))
        thread.start()
        wait_until(blocker.entered.is_set)
        response = c.get("/v1/info")
        assert response.status_code == 503 and response.headers["retry-after"] == "1"
        assert response.json()["error"].startswith("server busy: 1 requests in flight (at most 1, --max-requests)")
        assert c.get("/health").status_code == 200
        blocker.release()
        thread.join(30)


def test_each_generation_runs_on_the_set_threads(bundles):
    seen = []
    decoder = next(iter(bundles.values())).audiolm.codec.decoder
    handle = decoder.register_forward_pre_hook(lambda module, inputs: seen.append(torch.get_num_threads()) if current_job() else None)
    try:
        with TestClient(create_app(bundles, ServeSettings(threads=2))) as c:
            assert c.post("/v1/generate", data={"seconds": "0.5"}).status_code == 200
    finally:
        handle.remove()
    assert seen == [2]


def test_settings_are_bounded():
    from audiolm.errors import AudiolmError

    assert ServeSettings().capacity == 5 and ServeSettings(workers=2, queue=0).capacity == 2
    for bad, message in (({"workers": 0}, "--workers: must be at least 1 (got 0)"),
                         ({"max_seconds": 1e9}, "--max-seconds: must be at most 600 (got 1e+09)"),
                         ({"upload_mb": float("nan")}, "--max-upload-mb: must be a finite number")):
        with pytest.raises(AudiolmError, match=re.escape(message)):
            ServeSettings(**bad)


def test_serve_command_binds_to_loopback_and_fails_in_one_line(capsys, tmp_path):
    from audiolm.cli.main import build_parser

    args = build_parser().parse_args(["serve"])
    assert args.host == "127.0.0.1" and args.port == 8000 and args.workers is None
    error = cli_error(capsys, ["serve", "--models", str(tmp_path / "none")])
    assert error == f"{tmp_path / 'none'}: no such model bundle folder"
    assert cli_error(capsys, ["serve", "--workers", "0"]) == "--workers: must be at least 1 (got 0)"


def test_no_temporary_files_are_left(bundles, tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with served(bundles, timeout=4) as c:  # the requests that must finish get 4 s, however busy the machine
        assert c.post("/v1/continue", files={"audio": ("p.wav", PROMPT)}, data={"seconds": "0.5"}).status_code == 200
        assert c.post("/v1/continue", files={"audio": ("bad.wav", b"junk")}, data={"seconds": "0.5"}).status_code == 422
        job = c.post("/v1/jobs", data={"mode": "generate", "seconds": "0.5"}).json()
        wait_until(lambda: c.get(f"/v1/jobs/{job['id']}").json()["state"] == "done")
        with Blocker(bundles, limit=6):
            assert c.post("/v1/generate", data={"seconds": "0.5"}).status_code == 503  # past the time limit
            wait_until(lambda: c.get("/health").json()["running"] == 0)
        assert c.get(f"/v1/jobs/{job['id']}/result.wav").status_code == 200  # kept in memory
    assert list(tmp_path.glob("audiolm-serve-*")) == []
