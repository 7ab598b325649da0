"""Seconds from clicking the app's Sample to the result on the page, in headless Chromium, on
built artifacts (e.g. after `make reproduce`):

    python -m benchmarks.bench_app --profile quick --artifacts artifacts fmnist_mlp fmnist_resnet20

Selecting an experiment loads it and tests its fitting and held-out members once (a spinner
says so); the clicks are timed after that, as a user would press Sample on the loaded page.
Two clicks with other seeds are reported."""
from __future__ import annotations

import argparse
import re
import time

from playwright.sync_api import expect, sync_playwright

from .browser import chromium, serve

HEADING = re.compile(r"Generated( on \w+)?: mean (accuracy|Spearman)")


def time_samples(url: str, experiments: list[str], clicks: int = 2,
                 timeout_s: float = 600) -> dict[str, tuple[list[float], list[str]]]:
    """{experiment: (seconds per click, the page's own account of each action's stages)}"""
    out: dict[str, tuple[list[float], list[str]]] = {}
    with sync_playwright() as pw:
        browser = chromium(pw)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 2400})
            page.goto(url)
            for name in experiments:
                page.get_by_role("combobox", name="Experiment").select_option(name)
                sample = page.get_by_role("button", name="Sample")
                expect(sample).to_be_visible(timeout=timeout_s * 1000)
                members = page.get_by_text("Testing the fitting and held-out members once")
                try:                                  # the spinner shows while the members are tested
                    expect(members.first).to_be_visible(timeout=15_000)
                except AssertionError:                # already done (or cached from an earlier visit)
                    pass
                expect(members).to_have_count(0, timeout=timeout_s * 1000)
                times, stages = [], []
                for seed in range(clicks):
                    page.get_by_role("textbox", name=re.compile("seed")).fill(str(seed))
                    before = page.get_by_text(re.compile("The whole action took")).all_inner_texts()
                    t0 = time.perf_counter()
                    sample.click()
                    line = page.get_by_text(re.compile("The whole action took"))
                    expect(line).to_be_visible(timeout=timeout_s * 1000)
                    expect(line).not_to_have_text(before[0] if before else "-", timeout=timeout_s * 1000)
                    times.append(time.perf_counter() - t0)
                    stages.append(line.inner_text().split("No baselines")[0].strip())
                out[name] = (times, stages)
        finally:
            browser.close()
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("experiments", nargs="+")
    p.add_argument("--profile", default="quick")
    p.add_argument("--artifacts", default="artifacts")
    args = p.parse_args()
    with serve(args.profile, args.artifacts) as url:
        for name, (times, stages) in time_samples(url, args.experiments).items():
            print(f"{name} [{args.profile}]: Sample → page updated in " +
                  ", ".join(f"{t:.1f} s" for t in times) + " (two clicks, other seeds)")
            for line in stages:
                print(f"    {line}")


if __name__ == "__main__":
    main()
