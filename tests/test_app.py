"""The app in a real browser: `marimo run app.py` served locally on a copy of the smoke artifacts,
driven by Playwright in headless Chromium. Sampling must put the generated nets' accuracy, the
plots and a download on the page; a new seed must change them; an experiment without artifacts
must offer training and then sample; a conditional flow samples for the chosen label; a long
sample and a training can be cancelled."""
from __future__ import annotations

import dataclasses
import json
import re
import shutil
import urllib.parse
import zipfile

import pytest
import torch
from playwright.sync_api import expect, sync_playwright
from safetensors import safe_open
from safetensors.torch import load_file

import dwf
from benchmarks.browser import ROOT, chromium, serve
from dwf import Zoo, experiments
from dwf.export import load_bert

from conftest import SMOKE_RUNS

SUMMARY = re.compile(r"Generated( on \w+)?: mean accuracy \d+\.\d+%")
SHOTS = ROOT / "artifacts" / "screenshots"   # kept for a look after the run (gitignored)


@pytest.fixture()
def server(artifacts, tmp_path):
    """URL of the app served on a private copy of the fixture's smoke runs only (the test trains
    into it what they lack, whatever other tests built beside them in the shared folder)."""
    root = tmp_path / "artifacts"
    for name in SMOKE_RUNS:
        shutil.copytree(artifacts / name, root / name)
    with serve("smoke", root) as url:
        yield url


def test_sampling_and_training_in_the_browser(server, tmp_path):
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = chromium(pw)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 2400}, accept_downloads=True)
            requests: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            page.goto(server)
            sample = page.get_by_role("button", name="Sample")
            expect(sample).to_be_visible(timeout=60_000)
            expect(page.get_by_text("press Sample")).to_be_visible()
            expect(page.get_by_text("fmnist_mlp [smoke]: a zoo of 8 mlp networks")).to_be_visible()
            assert not SUMMARY.search(page.inner_text("body"))

            sample.click()
            summary = page.get_by_role("heading", name=SUMMARY)
            expect(summary).to_be_visible(timeout=60_000)
            first = summary.inner_text()
            # two plots of this sample and the history's histogram
            expect(page.locator(".js-plotly-plot")).to_have_count(3, timeout=30_000)
            expect(page.get_by_text("Each generated net")).to_be_visible(timeout=30_000)
            # Sample ran only what it shows (fmnist_mlp's report also has a frontier and baselines)
            stages = page.get_by_text(re.compile(r"The whole action took")).inner_text()
            assert re.search(r"testing the members \(once per experiment\) \d+\.\d+ s, sampling, decoding and "
                             r"BatchNorm \d+\.\d+ s, testing the generated nets \d+\.\d+ s\.", stages), stages
            assert "frontier" not in stages.split("No baselines")[0]
            page.screenshot(path=str(SHOTS / "sampled.png"), full_page=True)

            # the line between two generated nets: one more plot
            page.get_by_role("button", name="Interpolate").click()
            expect(page.locator(".js-plotly-plot")).to_have_count(4, timeout=60_000)
            expect(page.get_by_text("Between generated nets 0 and 1")).to_be_visible(timeout=30_000)

            # the download loads back as a dwf zoo of the right architecture, named in its metadata
            with page.expect_download(timeout=30_000) as dl:
                page.get_by_text("Download the generated weights").click()
            path = tmp_path / dl.value.suggested_filename
            dl.value.save_as(path)
            assert path.name == "generated_fmnist_mlp.safetensors"
            exp = experiments.get("fmnist_mlp", "smoke")
            assert Zoo(exp.arch, load_file(str(path))).n == exp.sample.n == 16   # the experiment's own size
            with safe_open(str(path), "pt") as f:
                meta = f.metadata()
            assert meta["experiment"] == "fmnist_mlp" and meta["dwf_version"] == dwf.__version__
            assert json.loads(meta["sample"]) == {**dataclasses.asdict(exp.sample),   # every setting
                                                "source_std": exp.flow.source_std}
            assert meta["flow_config_hash"] == exp.stage_hash("flow") and meta["flow_seed"] == str(exp.flow.seed)
            # the held-out members are shown beside the generated nets
            body = page.inner_text("body")
            assert "held-out members" in body and "spread" in body

            # another seed, another sample: the summary changes
            page.get_by_role("button", name=re.compile(r"^Increase .*seed")).click()
            expect(page.get_by_role("textbox", name=re.compile("seed"))).to_have_value("1")
            sample.click()
            expect(page.get_by_role("heading", name=SUMMARY)).not_to_have_text(first, timeout=60_000)
            # the history keeps both samples, and their histograms side by side
            history = page.locator("marimo-table[data-label*='Sample history']")
            expect(history.get_by_role("row")).to_have_count(3, timeout=30_000)      # header + 2 samples
            expect(page.get_by_text("sample 1 (seed 0").first).to_be_attached()
            expect(page.get_by_text("sample 2 (seed 1").first).to_be_attached()

            # a bad input is named, not clamped: nothing is sampled and the history stays at two
            page.get_by_role("textbox", name=re.compile("seed")).fill("1.5")
            sample.click()
            expect(page.get_by_text("Not sampled: sampling: seed must be a whole number >= 0, got 1.5")).to_be_visible(
                timeout=30_000)
            expect(history.get_by_role("row")).to_have_count(3)
            page.get_by_role("textbox", name=re.compile("seed")).fill("1")

            # a long sample (256 nets, 200 RK4 steps) runs in the background and can be cancelled:
            # nothing of it is kept, the last finished sample stays on the page
            for name in ("samples", "ODE steps"):
                page.get_by_role("slider", name=re.compile(name)).press("End")
            shown = page.get_by_role("heading", name=SUMMARY).inner_text()
            sample.click()
            page.get_by_role("button", name="Cancel").click(timeout=30_000)
            expect(page.get_by_text("Sample cancelled")).to_be_visible(timeout=60_000)
            expect(history.get_by_role("row")).to_have_count(3)
            assert page.get_by_role("heading", name=SUMMARY).inner_text() == shown
            page.screenshot(path=str(SHOTS / "cancelled.png"), full_page=True)

            # an experiment whose data is not on disk says so in the picker, and offers no training
            why = dwf.data.unavailable(experiments.get("cifar10_resnet20", "smoke").data)
            options = page.get_by_role("combobox", name="Experiment").inner_text()
            assert ("cifar10_resnet20 — data not on disk" in options) == (why is not None)
            if why is not None:
                page.get_by_role("combobox", name="Experiment").select_option(label="cifar10_resnet20 — data not on disk")
                expect(page.get_by_text("cifar10_resnet20 cannot be trained or sampled here")).to_be_visible(
                    timeout=30_000)
                expect(page.get_by_role("button", name="Train the smoke profile")).to_have_count(0)

            # an experiment without artifacts: train it from the page, then sample it
            page.get_by_role("combobox", name="Experiment").select_option("digits_mlp")
            train = page.get_by_role("button", name="Train the smoke profile")
            expect(train).to_be_visible(timeout=30_000)
            expect(page.get_by_text("No trained digits_mlp")).to_be_visible()
            assert not SUMMARY.search(page.inner_text("body"))
            # training runs in the background and can be cancelled; Train again resumes and finishes
            train.click()
            page.get_by_role("button", name="Cancel training").click(timeout=30_000)
            expect(page.get_by_text("Training cancelled")).to_be_visible(timeout=60_000)
            expect(page.get_by_text("No trained digits_mlp")).to_be_visible()
            train.click()
            expect(page.get_by_text("digits_mlp [smoke]: a zoo of 8")).to_be_visible(timeout=60_000)
            expect(page.get_by_text("No trained digits_mlp")).to_be_hidden()
            expect(train).to_be_hidden()
            page.get_by_role("button", name="Sample").click()
            expect(page.get_by_role("heading", name=SUMMARY)).to_be_visible(timeout=60_000)
            expect(page.get_by_text("Each generated net")).to_be_visible(timeout=30_000)
            page.screenshot(path=str(SHOTS / "trained.png"), full_page=True)

            # a BERT regressor: its net 0 downloads as a Hugging Face folder that dwf loads back
            page.get_by_role("combobox", name="Experiment").select_option("vader_tinybert")
            expect(page.get_by_text("vader_tinybert [smoke]: a zoo of 3")).to_be_visible(timeout=60_000)
            page.get_by_role("button", name="Sample").click()
            expect(page.get_by_role("heading", name=re.compile(r"Generated on vader: mean Spearman ρ"))).to_be_visible(
                timeout=60_000)
            with page.expect_download(timeout=60_000) as dl:
                page.get_by_text("as a Hugging Face folder").click()
            zipped = tmp_path / dl.value.suggested_filename
            dl.value.save_as(zipped)
            with zipfile.ZipFile(zipped) as z:
                z.extractall(tmp_path / "hf")
            folder = tmp_path / "hf" / "vader_tinybert_generated_0"
            bert = load_bert(folder)
            ids = torch.tensor([[2, 5, 3]])
            assert bert(ids).shape == (1, 1) and (folder / "tokenizer_config.json").exists()
            page.screenshot(path=str(SHOTS / "bert.png"), full_page=True)

            # a conditional flow: trained from the page, then sampled for its second label with
            # guidance; its nets are scored on that label's dataset and download with the label
            page.get_by_role("combobox", name="Experiment").select_option("fmnist_digits_mlp (conditional)")
            train = page.get_by_role("button", name="Train the smoke profile")
            expect(train).to_be_visible(timeout=30_000)
            train.click()
            expect(page.get_by_text(re.compile(r"one conditional flow over 16 mlp networks \(8 on fmnist, "
                                               r"8 on digits28\)"))).to_be_visible(timeout=120_000)
            page.get_by_role("combobox", name="generate for").select_option("digits28")
            page.get_by_role("textbox", name=re.compile("guidance w")).fill("2")
            page.get_by_role("button", name="Sample").click()
            heading = page.get_by_role("heading", name=re.compile(r"Generated on digits28: mean accuracy"))
            expect(heading).to_be_visible(timeout=60_000)
            expect(page.locator(".js-plotly-plot")).to_have_count(3, timeout=30_000)
            page.screenshot(path=str(SHOTS / "conditional.png"), full_page=True)
            with page.expect_download(timeout=30_000) as dl:
                page.get_by_text("Download the generated weights").click()
            path = tmp_path / "conditional.safetensors"
            dl.value.save_as(path)
            with safe_open(str(path), "pt") as f:
                assert f.metadata()["dataset"] == "digits28" and f.metadata()["label"] == "1"
            cexp = experiments.conditional("fmnist_digits_mlp", "smoke")
            assert Zoo(cexp.arch, load_file(str(path))).n == cexp.sample.n
            # nothing on the page was fetched from anywhere but the app's own server (no CDN)
            foreign = {urllib.parse.urlsplit(u).hostname for u in requests} - {"127.0.0.1", "localhost", None}
            assert not foreign, sorted(u for u in requests if urllib.parse.urlsplit(u).hostname in foreign)
        finally:
            browser.close()
