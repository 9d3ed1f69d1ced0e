"""The page in a real browser: Debian's headless Chromium (selenium + chromium-driver, which scripts/setup.sh installs)
against a real server on loopback with the bundled speech models. Pick a prompt, generate, wait; the result plays (an
audio element with a decodable 16-bit wav of the right length), both spectrograms show, and so does the detector's
verdict on the result. Also: a recording from the (fake) microphone, and the API docs page, both with no network."""

from __future__ import annotations

import os
import re

import pytest

pytest.importorskip("selenium")
pytest.importorskip("uvicorn")

from tests.serve import browser  # noqa: E402

if not browser.available():
    if os.environ.get("CI"):
        raise RuntimeError(f"CI runs the browser test, but {browser.CHROMIUM} or {browser.DRIVER} is missing "
                           "(scripts/setup.sh installs them)")
    pytest.skip(f"needs Debian's chromium and chromium-driver ({browser.CHROMIUM}, {browser.DRIVER}): bash scripts/setup.sh",
                allow_module_level=True)

from selenium.webdriver.support.ui import Select  # noqa: E402

from audiolm.serve.app import create_app, load_bundles  # noqa: E402
from audiolm.serve.settings import ServeSettings  # noqa: E402
from tests.serve.helpers import live_server  # noqa: E402


@pytest.fixture(scope="module")
def page():
    app = create_app(load_bundles(["speech"]), ServeSettings(threads=1))
    with live_server(app) as url, browser.chromium() as driver:
        yield driver, url


def test_continue_a_bundled_prompt_plays_and_shows_spectrograms(page, tmp_path):
    driver, url = page
    browser.open_page(driver, url)
    prompts = Select(driver.find_element("id", "prompt"))
    assert len(prompts.options) == 4
    prompts.select_by_index(2)
    assert driver.find_element("id", "prompt-text").text  # the prompt's words
    browser.set_number(driver, "seconds", 1)
    browser.set_number(driver, "seed", 5)
    browser.generate(driver)
    steps = [li.get_attribute("class") for li in driver.find_elements("css selector", "#steps li")]
    assert steps and set(steps) == {"done"}, steps
    result = browser.audio_facts(driver, "result-audio")
    assert "error" not in result, result
    assert result["rate"] == 16000 and result["bits"] == 16 and result["channels"] == 1
    assert result["duration"] == pytest.approx(4.0, abs=0.05)  # the 3 s prompt's part, then 1 s of new audio
    assert result["element_duration"] == pytest.approx(4.0, abs=0.05) and result["played"] >= 0.2
    prompt = browser.audio_facts(driver, "prompt-audio")
    assert prompt["duration"] == pytest.approx(3.0, abs=0.01) and prompt["played"] >= 0.2
    for image in ("prompt-spectrogram", "result-spectrogram"):
        facts = browser.image_facts(driver, image)
        assert facts["complete"] and facts["width"] >= 400 and facts["height"] >= 100 and facts["shown"], (image, facts)
    link = driver.find_element("id", "download")
    assert link.get_attribute("href").endswith("/result.wav") and link.get_attribute("download") == "continue-seed5.wav"
    browser.wait(driver, lambda d: d.find_element("id", "result-detect").text not in ("", "detector: …"), 60)
    verdict = driver.find_element("id", "result-detect").text  # POST /v1/detect on the result: the mark is found
    assert re.fullmatch(r"detector: (none in this bundle|P\(generated\) = [01]\.\d\d); watermark: yes \(score \d+\.\d\)", verdict), verdict
    driver.save_screenshot(str(tmp_path / "page.png"))
    assert (tmp_path / "page.png").stat().st_size > 10_000


def test_a_recording_from_the_microphone_is_continued(page):
    driver, url = page
    browser.open_page(driver, url)
    browser.choose(driver, "source", "record")
    driver.find_element("id", "record").click()
    browser.wait(driver, lambda d: d.find_element("id", "record-status").text.startswith("recording: 1."), 20)
    driver.find_element("id", "record").click()
    assert driver.find_element("id", "record-status").text.startswith("recorded 1.")
    browser.set_number(driver, "seconds", 0.5)
    browser.set_number(driver, "prompt-seconds", 1)
    browser.generate(driver)
    prompt = browser.audio_facts(driver, "prompt-audio")
    assert prompt["duration"] == pytest.approx(1.0, abs=0.01)  # the recording, cut to prompt_seconds and resampled
    assert browser.audio_facts(driver, "result-audio")["duration"] == pytest.approx(1.5, abs=0.05)


def test_bad_input_shows_the_error_on_the_page(page):
    driver, url = page
    browser.open_page(driver, url)
    browser.set_number(driver, "seconds", 100)
    driver.find_element("id", "generate").click()
    browser.wait(driver, lambda d: d.find_element("id", "error").is_displayed(), 20)
    assert driver.find_element("id", "error").text == "seconds: must be at most 20 (got 100)"


def test_api_docs_render_with_no_network(page):
    driver, url = page
    driver.get(f"{url}/docs")
    browser.wait(driver, lambda d: len(d.find_elements("css selector", ".opblock")) >= 8, 30)
    paths = {e.text for e in driver.find_elements("css selector", ".opblock-summary-path")}
    assert {"/v1/continue", "/v1/generate", "/v1/resynth", "/v1/codec/encode", "/v1/codec/decode", "/health"} <= paths


def test_the_acoustic_stage_is_chosen_on_the_page_where_a_bundle_has_both(tmp_path_factory):
    from tests.helpers_lm import tiny_bundle

    folder = tiny_bundle(tmp_path_factory.mktemp("both"), parallel=True)
    app = create_app(load_bundles([str(folder)]), ServeSettings(threads=1))
    with live_server(app) as url, browser.chromium() as driver:
        browser.open_page(driver, url)
        assert driver.find_element("id", "acoustic-row").is_displayed()
        browser.choose(driver, "mode", "generate")
        browser.set_number(driver, "seconds", 1)
        for stage, step in (("ar", "coarse acoustic LM"), ("parallel", "parallel acoustic stage")):
            Select(driver.find_element("id", "acoustic")).select_by_value(stage)
            browser.generate(driver)
            steps = " ".join(li.text for li in driver.find_elements("css selector", "#steps li"))
            assert step in steps, (stage, steps)
            assert browser.audio_facts(driver, "result-audio")["duration"] == pytest.approx(1.0, abs=0.05)
