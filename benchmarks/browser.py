"""The app served by `marimo run` on a free local port, and headless Chromium to drive it
(Debian's chromium; never `playwright install`). Used by the browser tests and bench_app."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-quic", "--no-first-run"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve(profile: str, artifacts: str | Path, app: str = "app.py", timeout: float = 60) -> Iterator[str]:
    """The URL of `marimo run app` on `artifacts` with `profile`; stopped on exit."""
    port = _free_port()
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("marimo")), "run", app, "--headless", "--no-token",
         "--port", str(port), "--", "--profile", profile, "--artifacts", str(artifacts)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + timeout
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
            proc.wait()


def chromium(pw):
    """Headless Debian chromium through Playwright."""
    path = shutil.which("chromium")
    if not path:
        raise RuntimeError("Debian chromium is required (make setup installs it)")
    return pw.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
