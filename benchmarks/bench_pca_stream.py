"""Streamed DualPCA on a MiniLM zoo file: read throughput, peak memory, and agreement with the
in-memory fit.

The zoo is the aligned `vader_minilm` zoo (20 fine-tuned MiniLM-L6, 22.7M parameters each, one
stacked safetensors file of 1.8 GB) when `python -m dwf run vader_minilm` has built it; otherwise
a synthetic stand-in of the same size: 20 copies of the pretrained MiniLM-L6, each with
independent Gaussian noise of 1 % of every tensor's std. Each fit runs in a fresh subprocess so
its peak RSS is its own:
- streamed: `DualPCA(keep_components=False).fit(StackedColumns(file))`, column slabs of 1M;
- in memory: the whole (n, d) matrix loaded, then `DualPCA().fit(X)`.
The subspace error compares the streamed components with the in-memory ones through their
coefficients (both are V = W X): ||V_s - (V_s V_m^T) V_m||_2 = ||D X||_2 with
D = W_s - (W_s G W_m^T) W_m and G = X X^T, so no d-sized matrix is formed.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from dwf import ArchSpec, ParamLayout, archs
from dwf.columns import StackedColumns
from dwf.io import load_tensors, save_tensors

N_MODELS = 20
NOISE = 0.01
CHUNK = 1 << 20
ARCH = ArchSpec("bert", 0, (), 1, pretrained="minilm-l6")
REAL_ZOO = Path("artifacts/vader_minilm/quick/seed0/align/weights.safetensors")

_FIT = r"""
import json, sys, time
import torch
from dwf import ParamLayout, archs, ArchSpec
from dwf.columns import StackedColumns
from dwf.io import load_tensors, save_tensors
from dwf.pca import DualPCA
def peak_mb():  # this process's own high-water RSS (getrusage would include the parent's at fork)
    line = next(l for l in open("/proc/self/status") if l.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024
path, mode, chunk, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
layout = ParamLayout.from_module(archs.build(ArchSpec("bert", 0, (), 1, pretrained="minilm-l6")))
base = peak_mb()
t0 = time.perf_counter()
if mode == "stream":
    X = StackedColumns(path, layout)
    pca = DualPCA(device="cpu", chunk=chunk, keep_components=False).fit(X)
    read = X.bytes_read
else:
    X = layout.flatten(load_tensors(path), stacked=True)
    pca = DualPCA(device="cpu", chunk=chunk).fit(X)
    read = X.numel() * 4
seconds = time.perf_counter() - t0
peak = peak_mb()
save_tensors(out, {"coef": pca.coef_, "evr": pca.explained_variance_ratio_})
print(json.dumps({"seconds": seconds, "bytes_read": read, "peak_rss_mb": peak,
                  "rss_before_fit_mb": base}))
"""


@dataclass
class StreamResult:
    zoo: str                      # "vader_minilm (aligned)" or "synthetic"
    n_models: int
    n_params: int
    file_gb: float
    chunk: int
    stream_s: float
    stream_gb_per_s: float        # bytes the streamed fit read (two passes over X) per second
    stream_peak_rss_mb: float
    memory_s: float
    memory_peak_rss_mb: float
    rss_before_fit_mb: float      # the subprocess after importing torch, dwf and the layout
    subspace_error: float         # ||P_stream - P_memory||_2 of the component row spaces
    max_abs_evr_diff: float


def write_zoo(path: Path) -> ParamLayout:
    model = archs.build(ARCH, seed=0)
    layout = ParamLayout.from_module(model)
    base = {k: v for k, v in model.state_dict().items() if k in layout.names}
    g = torch.Generator().manual_seed(0)
    stacked = {k: torch.stack([v + NOISE * v.std(correction=0) * torch.randn(v.shape, generator=g)
                               for _ in range(N_MODELS)]) for k, v in base.items()}
    save_tensors(path, stacked)
    return layout


def _fit(path: Path, mode: str, out: Path) -> dict:
    proc = subprocess.run([sys.executable, "-c", _FIT, str(path), mode, str(CHUNK), str(out)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"the {mode} fit failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(zoo_file: Path | None = None) -> StreamResult:
    """Benchmark on `zoo_file` (a stacked MiniLM zoo), else on the real aligned vader_minilm zoo
    when it is on disk, else on a synthetic one."""
    if zoo_file is None and REAL_ZOO.exists():
        zoo_file = REAL_ZOO
    with tempfile.TemporaryDirectory() as tmp:
        if zoo_file is None:
            path, name = Path(tmp) / "zoo.safetensors", "synthetic"
            layout = write_zoo(path)
        else:
            path, name = Path(zoo_file), "vader_minilm (aligned)"
            layout = ParamLayout.from_module(archs.build(ARCH))
        stream = _fit(path, "stream", Path(tmp) / "stream.safetensors")
        memory = _fit(path, "memory", Path(tmp) / "memory.safetensors")
        s, m = load_tensors(Path(tmp) / "stream.safetensors"), load_tensors(Path(tmp) / "memory.safetensors")
        X = StackedColumns(path, layout)
        n = X.shape[0]
        G = torch.zeros(n, n, dtype=torch.float64)
        for j0 in range(0, layout.dim, CHUNK):
            S = X[:, j0:j0 + CHUNK].double()
            S -= S[0].clone()
            G += S @ S.T
        file_gb = path.stat().st_size / 1e9
    H = torch.eye(n, dtype=torch.float64) - 1.0 / n
    G = H @ G @ H                      # the centered Gram: what both coefficient sets act on
    Ws, Wm = s["coef"].double(), m["coef"].double()
    D = Ws - (Ws @ G @ Wm.T) @ Wm
    err = float(torch.linalg.eigvalsh(D @ G @ D.T).max().clamp_min(0).sqrt())
    return StreamResult(name, n, layout.dim, file_gb, CHUNK, stream["seconds"],
                        stream["bytes_read"] / 1e9 / stream["seconds"], stream["peak_rss_mb"],
                        memory["seconds"], memory["peak_rss_mb"], stream["rss_before_fit_mb"], err,
                        float((s["evr"] - m["evr"]).abs().max()))
