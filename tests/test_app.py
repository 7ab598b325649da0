"""The app in a real browser: `marimo run app.py` served locally, driven by Playwright in
headless Chromium. Sampling must put the generated nets' accuracy, the plots and a download on
the page, and a new seed must change them."""
from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright
from safetensors.torch import load_file

from dwf import Zoo, experiments

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-quic", "--no-first-run"]
SUMMARY = re.compile(r"Generated: mean accuracy (\d+\.\d+)%")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def server(artifacts):
    port = _free_port()
    marimo = Path(sys.executable).with_name("marimo")
    proc = subprocess.Popen(
        [str(marimo), "run", "app.py", "--headless", "--no-token", "--port", str(port),
         "--", "--profile", "smoke", "--artifacts", str(artifacts)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"marimo did not serve the app: {proc.stdout.read().decode()[-2000:]}")
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_sampling_in_the_browser_updates_the_page(server, tmp_path):
    chromium = shutil.which("chromium")
    assert chromium, "Debian chromium is required (make test installs it)"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 2400}, accept_downloads=True)
            page.goto(server)
            sample = page.get_by_role("button", name="Sample")
            expect(sample).to_be_visible(timeout=60_000)
            expect(page.get_by_text("press Sample")).to_be_visible()
            assert not SUMMARY.search(page.inner_text("body"))

            sample.click()
            summary = page.get_by_role("heading", name=SUMMARY)
            expect(summary).to_be_visible(timeout=60_000)
            first = summary.inner_text()
            expect(page.locator(".js-plotly-plot").first).to_be_visible(timeout=30_000)
            page.screenshot(path=str(tmp_path / "sampled.png"), full_page=True)

            # a download of the sampled nets loads back as a dwf zoo of the right architecture
            with page.expect_download(timeout=30_000) as dl:
                page.get_by_text("Download the generated weights").click()
            path = tmp_path / dl.value.suggested_filename
            dl.value.save_as(path)
            assert path.name == "generated_fmnist_mlp.safetensors"
            zoo = Zoo(experiments.get("fmnist_mlp", "smoke").arch, load_file(str(path)))
            assert zoo.n == 64

            # another seed, another sample: the summary changes
            page.get_by_role("button", name=re.compile(r"^Increase .*seed")).click()
            expect(page.get_by_role("textbox", name=re.compile("seed"))).to_have_value("1")
            sample.click()
            expect(page.get_by_role("heading", name=SUMMARY)).not_to_have_text(first, timeout=60_000)
            page.screenshot(path=str(tmp_path / "resampled.png"), full_page=True)
        finally:
            browser.close()
