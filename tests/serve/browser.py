"""Driving the page in Debian's headless Chromium (selenium + chromium-driver; no browser download, no network).

    python -m tests.serve.browser --screenshot docs/serve.png    # the README's screenshot: bundled models, a real run

Used by tests/serve/test_browser.py. The page is served by a real uvicorn server on loopback (tests/serve/helpers.py).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--window-size=1280,1070", "--hide-scrollbars",
         "--autoplay-policy=no-user-gesture-required",  # play() without a click
         "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream")  # the microphone: a generated beep, no prompt


def available() -> bool:
    return Path(CHROMIUM).exists() and Path(DRIVER).exists()


@contextmanager
def chromium():
    """A headless Chromium with a fresh profile, removed afterwards."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="audiolm-chromium-")
    options = Options()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=DRIVER))
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait(driver, condition, timeout: float = 60.0):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(condition)


def open_page(driver, url: str) -> None:
    driver.get(url)
    wait(driver, lambda d: d.execute_script("return document.body.dataset.ready === 'true'"), 30)


def choose(driver, name: str, value: str) -> None:
    driver.find_element("css selector", f"input[name={name}][value={value}]").click()


def set_number(driver, element_id: str, value: float) -> None:
    element = driver.find_element("id", element_id)
    element.clear()
    element.send_keys(str(value))


def generate(driver, timeout: float = 120.0) -> None:
    """Click Generate and wait for the results (or fail with the page's error)."""
    driver.find_element("id", "generate").click()
    wait(driver, lambda d: d.execute_script(
        "return !document.getElementById('results').hidden || !document.getElementById('error').hidden"), timeout)
    error = driver.find_element("id", "error")
    assert not error.is_displayed(), f"the page shows an error: {error.text}"


# Runs in the page: decode a played element's wav with the Web Audio API, play it, and look at an image.
CHECK_AUDIO = """
const [id, done] = arguments;
const audio = document.getElementById(id);
(async () => {
  const bytes = await (await fetch(audio.src)).arrayBuffer();
  const header = new DataView(bytes);
  const decoded = await new OfflineAudioContext(1, 1, 16000).decodeAudioData(bytes.slice(0));
  await audio.play();
  const began = performance.now();
  while (audio.currentTime < 0.2 && performance.now() - began < 10000) await new Promise((r) => setTimeout(r, 50));
  audio.pause();
  done({ duration: decoded.duration, channels: decoded.numberOfChannels, rate: header.getUint32(24, true),
         bits: header.getUint16(34, true), played: audio.currentTime, element_duration: audio.duration });
})().catch((e) => done({ error: String(e) }));
"""
CHECK_IMAGE = """
const img = document.getElementById(arguments[0]);
return { complete: img.complete, width: img.naturalWidth, height: img.naturalHeight, shown: img.offsetWidth > 0 && img.offsetHeight > 0 };
"""


def audio_facts(driver, element_id: str) -> dict:
    driver.set_script_timeout(30)
    return driver.execute_async_script(CHECK_AUDIO, element_id)


def image_facts(driver, element_id: str) -> dict:
    wait(driver, lambda d: d.execute_script(f"return document.getElementById('{element_id}').complete"), 30)
    return driver.execute_script(CHECK_IMAGE, element_id)


def screenshot(output: Path, seconds: float = 3.0, prompt_index: int = 1) -> None:
    """Serve the bundled speech models, continue a bundled prompt on the page, and screenshot the page."""
    from audiolm.serve.app import create_app, load_bundles
    from audiolm.serve.settings import ServeSettings
    from tests.serve.helpers import live_server

    app = create_app(load_bundles(["speech"]), ServeSettings(threads=1))
    with live_server(app) as url, chromium() as driver:
        open_page(driver, url)
        from selenium.webdriver.support.ui import Select

        Select(driver.find_element("id", "prompt")).select_by_index(prompt_index)
        set_number(driver, "seconds", seconds)
        set_number(driver, "seed", 7)
        generate(driver)
        for image in ("prompt-spectrogram", "result-spectrogram"):
            image_facts(driver, image)
        wait(driver, lambda d: d.execute_script("return !document.getElementById('result-detect').textContent.endsWith('…')"))
        driver.execute_script("window.scrollTo(0, 0)")
        output.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(output))
    print(f"wrote {output}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--screenshot", type=Path, required=True)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    screenshot(args.screenshot, args.seconds)
