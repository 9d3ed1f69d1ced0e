"""POST /v1/detect through an HTTP client, on two tiny random bundles (one with a tiny random detector/, one without):
the answer is one line of `audiolm detect`, marked files are found, bad uploads get the one-line errors, and the work
goes through the bounded pool like every generation."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import soundfile as sf
import torch

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from audiolm.cli.main import main  # noqa: E402
from audiolm.detector.model import Detector, DetectorConfig  # noqa: E402
from audiolm.serve.app import create_app, load_bundles  # noqa: E402
from audiolm.serve.settings import ServeSettings  # noqa: E402
from audiolm.watermark import THRESHOLD, embed  # noqa: E402
from tests.helpers_lm import tiny_bundle  # noqa: E402
from tests.serve.helpers import tiny_served_bundle, tone, wav_bytes  # noqa: E402
from tests.serve.test_api import BAD_AUDIO, cli_error, wait_until  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")
SR = 16000
FIELDS = ["path", "generated", "watermark", "watermark_score"]


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    """{"tiny": a bundle with a tiny random detector/, "plain": one without}."""
    root = tmp_path_factory.mktemp("detect")
    tiny = tiny_served_bundle(root / "tiny")
    torch.manual_seed(0)
    Detector(DetectorConfig(channels=(4, 8, 8), n_mels=32, window_seconds=0.5)).save(tiny / "detector", dtype=torch.float16)
    return {"tiny": tiny, "plain": tiny_bundle(root / "plain")}


@pytest.fixture(scope="module")
def bundles(folders):
    return load_bundles([str(folders["tiny"]), str(folders["plain"])])


def served(bundles, **settings) -> TestClient:
    return TestClient(create_app(bundles, ServeSettings(threads=1, **settings)), raise_server_exceptions=False)


@pytest.fixture(scope="module")
def client(bundles):
    with served(bundles) as c:
        yield c


def speech(folders) -> Path:
    """One of the speech bundle's prompts that the tiny bundle ships: real speech, 3 s."""
    return sorted((folders["tiny"] / "prompts").glob("*.wav"))[0]


def test_the_answer_is_the_cli_line_with_the_clients_file_name(client, folders, tmp_path, capsys):
    clip = speech(folders).read_bytes()
    response = client.post("/v1/detect", files={"audio": ("dir/clip.wav", clip, "audio/wav")})
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == FIELDS and body["path"] == "clip.wav"
    assert isinstance(body["generated"], float) and 0 < body["generated"] < 1
    assert body["watermark"] is False and isinstance(body["watermark_score"], float) and body["watermark_score"] < THRESHOLD
    (tmp_path / "clip.wav").write_bytes(clip)
    assert main(["detect", str(tmp_path / "clip.wav"), "--models", str(folders["tiny"])]) == 0
    line = json.loads(capsys.readouterr().out)
    assert line == {**body, "path": str(tmp_path / "clip.wav")}  # the same verdict, from the same function
    plain = client.post("/v1/detect", files={"audio": ("clip.wav", clip)}, data={"models": "plain"}).json()
    assert plain == {**body, "generated": None}  # no detector/: null, the watermark all the same


def test_a_marked_file_is_found_in_any_format(client, folders):
    wav, rate = sf.read(speech(folders), dtype="float32")
    marked = embed(wav, rate)
    for name, content in (("marked.wav", wav_bytes(marked)), ("marked.flac", wav_bytes(marked, format="FLAC"))):
        body = client.post("/v1/detect", files={"audio": (name, content)}).json()
        assert body["path"] == name and body["watermark"] is True and body["watermark_score"] > THRESHOLD, body
    stereo = wav_bytes(tone(1.0, 8000, channels=2), 8000)  # resampled and mixed down, as the CLI reads it
    body = client.post("/v1/detect", files={"audio": ("stereo.wav", stereo)}).json()
    assert body["watermark"] is False and isinstance(body["generated"], float)


def test_info_says_which_bundles_have_a_detector(client):
    assert {m["name"]: m["detector"] for m in client.get("/v1/info").json()["models"]} == {"tiny": True, "plain": False}


@pytest.mark.parametrize("kind", ["empty", "random", "truncated", "nan"])
def test_a_bad_upload_is_422_with_the_cli_sentence(client, folders, tmp_path, capsys, kind):
    path = tmp_path / f"bad-{kind}.wav"
    path.write_bytes(BAD_AUDIO[kind])
    expected = cli_error(capsys, ["detect", str(path), "--models", str(folders["tiny"])]).replace(str(path), path.name)
    response = client.post("/v1/detect", files={"audio": (path.name, path.read_bytes(), "audio/wav")})
    assert response.status_code == 422 and response.json() == {"error": expected}


def test_bad_fields_are_422_with_one_line(client):
    clip = wav_bytes(tone(1.0))
    assert client.post("/v1/detect", data={}).json() == {"error": "audio: required"}
    response = client.post("/v1/detect", data={"audio": "not a file"})
    assert response.status_code == 422 and response.json() == {"error": "audio: must be a file upload"}
    response = client.post("/v1/detect", files={"audio": ("a.wav", clip)}, data={"models": "piano"})
    assert response.status_code == 422 and response.json() == {"error": "models: must be one of tiny, plain (got 'piano')"}
    response = client.post("/v1/detect", files={"audio": ("a.wav", clip)}, data={"seconds": "1"})
    assert response.status_code == 422 and response.json() == {"error": "unknown form field 'seconds'; this endpoint takes audio, models"}


def test_an_upload_over_the_limit_is_413_and_a_long_file_is_scored_in_part(bundles, folders):
    from audiolm.audio.io import load_audio
    from audiolm.detector.score import score_file

    with served(bundles, upload_mb=0.1, max_input_seconds=2) as c:
        response = c.post("/v1/detect", files={"audio": ("big.wav", wav_bytes(tone(5.0)))})  # 160 kB
        assert response.status_code == 413
        assert response.json() == {"error": "request body is larger than the server's 0.1 MiB limit (--max-upload-mb)"}
        body = c.post("/v1/detect", files={"audio": ("long.wav", speech(folders).read_bytes())}).json()  # 3 s: its first 2 s
    first = load_audio(speech(folders), SR, duration=2.0)
    assert body == {"path": "long.wav", **score_file(first, bundles["tiny"].detector)}


def test_detection_goes_through_the_bounded_pool(bundles):
    """One worker and no queue: while a detection runs (held in the detector), another request is refused at once."""
    release, entered = threading.Event(), threading.Event()

    def hold(module, inputs):
        entered.set()
        release.wait(20)

    handle = bundles["tiny"].detector.register_forward_pre_hook(hold)
    clip = wav_bytes(tone(1.0))
    try:
        with served(bundles, workers=1, queue=0) as c:
            answers = []
            thread = threading.Thread(target=lambda: answers.append(c.post("/v1/detect", files={"audio": ("a.wav", clip)})))
            thread.start()
            wait_until(entered.is_set)
            assert c.get("/health").json()["running"] == 1
            refused = c.post("/v1/detect", files={"audio": ("b.wav", clip)}, data={"models": "plain"})
            assert refused.status_code == 503 and int(refused.headers["retry-after"]) >= 1
            assert refused.json()["error"].startswith("server busy: 1 generations running and 0 waiting (at most 1 + 0")
            release.set()
            thread.join(30)
            assert answers[0].status_code == 200 and answers[0].json()["path"] == "a.wav"
    finally:
        release.set()
        handle.remove()


def test_the_endpoint_is_in_the_openapi_schema(client):
    schema = client.get("/openapi.json").json()
    post = schema["paths"]["/v1/detect"]["post"]
    form = post["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert set(form["properties"]) == {"audio", "models"} and form["required"] == ["audio"]
    assert form["properties"]["audio"]["format"] == "binary" and form["properties"]["models"]["enum"] == ["tiny", "plain"]
    answer = post["responses"]["200"]["content"]["application/json"]["schema"]
    assert answer["required"] == FIELDS and answer["properties"]["generated"]["type"] == ["number", "null"]
    assert {"413", "422", "503"} <= set(post["responses"])
